/* The C annotation API on locks the shim cannot see: `runtime_api_cases NAME` runs one case. */
#include <stdio.h>
#include <string.h>

#include "lockgraph/lockgraph.h"

struct spin {
  int word; /* stands for a lock implemented without pthreads */
};

static struct spin dev_lock, queue_lock, inode_locks[2];
LG_DEFINE_CLASS_KEY(inode_key);

void disabled_calls(void); /* api_disabled.c: the same calls with LOCKGRAPH_DISABLE */

/* dev_lock taken `times` times with hardirqs enabled, then once in a hardirq. */
static void enabled_then_hardirq(int times) {
  lg_lock_init(&dev_lock, "dev_lock", NULL);
  for (int i = 0; i < times; i++) {
    lg_lock(&dev_lock); /* hardirqs enabled */
    lg_unlock(&dev_lock);
  }
  lg_hardirq_enter();
  lg_lock(&dev_lock); /* in hardirq */
  lg_unlock(&dev_lock);
  lg_hardirq_exit();
}

static void irq_inconsistent(void) { enabled_then_hardirq(1); }

/* The cached path (the same annotations taken many times) must not hide what comes after. */
static void cached_pair_then_inversion(void) {
  lg_lock_init(&dev_lock, "dev_lock", NULL);
  lg_lock_init(&queue_lock, "queue_lock", NULL);
  for (int i = 0; i < 100000; i++) {
    lg_lock(&dev_lock);
    lg_lock(&queue_lock);
    lg_unlock(&queue_lock);
    lg_unlock(&dev_lock);
  }
  lg_lock(&queue_lock);
  lg_lock(&dev_lock);
  lg_unlock(&dev_lock);
  lg_unlock(&queue_lock);
}

static void cached_lock_then_hardirq(void) { enabled_then_hardirq(100000); }

static void irq_save_ok(void) {
  lg_lock_init(&dev_lock, "dev_lock", NULL);
  unsigned long flags = lg_irq_save();
  lg_lock(&dev_lock);
  lg_unlock(&dev_lock);
  lg_irq_restore(flags);
  lg_hardirq_enter();
  lg_lock(&dev_lock);
  lg_unlock(&dev_lock);
  lg_hardirq_exit();
}

static void softirq_safe_to_unsafe(void) {
  lg_lock_init(&dev_lock, "dev_lock", NULL);
  lg_lock_init(&queue_lock, "queue_lock", NULL);
  lg_softirq_enter();
  lg_lock(&dev_lock); /* dev_lock is SOFTIRQ-safe */
  lg_unlock(&dev_lock);
  lg_softirq_exit();
  lg_lock(&queue_lock); /* queue_lock is SOFTIRQ-unsafe */
  lg_unlock(&queue_lock);
  lg_softirq_disable();
  lg_lock(&dev_lock);
  lg_lock(&queue_lock); /* dev_lock -> queue_lock: safe -> unsafe */
  lg_unlock(&queue_lock);
  lg_unlock(&dev_lock);
  lg_softirq_enable();
}

static void nested_ok(void) {
  lg_lock_init(&inode_locks[0], "inode_lock", &inode_key);
  lg_lock_init(&inode_locks[1], "inode_lock", &inode_key);
  lg_lock(&inode_locks[0]);
  lg_lock_nested(&inode_locks[1], 1); /* parent, then child: annotated nesting */
  lg_unlock(&inode_locks[1]);
  lg_unlock(&inode_locks[0]);
}

static void recursive_same_lock(void) {
  lg_lock_init(&dev_lock, "dev_lock", NULL);
  lg_lock(&dev_lock);
  lg_lock(&dev_lock);
  lg_unlock(&dev_lock);
  lg_unlock(&dev_lock);
}

static void assert_held_fails(void) {
  lg_lock_init(&dev_lock, "dev_lock", NULL);
  int held = lg_assert_held(&dev_lock);
  lg_lock(&dev_lock);
  int held_now = lg_assert_held(&dev_lock);
  int none = lg_assert_no_locks_held();
  lg_unlock(&dev_lock);
  printf("held=%d held_now=%d none=%d findings=%lu\n", held, held_now, none, lg_findings_count());
}

static void assert_ok(void) {
  lg_lock_init(&dev_lock, "dev_lock", NULL);
  lg_lock(&dev_lock);
  lg_assert_held(&dev_lock);
  lg_unlock(&dev_lock);
  lg_assert_not_held(&dev_lock);
  lg_assert_no_locks_held();
}

/* Two annotated locks of two classes released without being held: two reports. */
static void bad_release_two_classes(void) {
  lg_lock_init(&dev_lock, "dev_lock", NULL);
  lg_lock_init(&queue_lock, "queue_lock", NULL);
  lg_release(&dev_lock);
  lg_release(&queue_lock);
  printf("findings=%lu\n", lg_findings_count());
}

static int callback_calls;
static void count_reports(const char *report, void *arg) {
  (void)arg;
  if (strstr(report, "WARNING:") != NULL) callback_calls++;
}

static void callback_and_options(void) {
  lg_set_report_callback(count_reports, NULL);
  int bad = lg_set_option("no_such_option", "1");
  int good = lg_set_option("strict", "0");
  recursive_same_lock();
  printf("bad=%d good=%d callback=%d findings=%lu\n", bad, good, callback_calls,
         lg_findings_count());
}

static void disabled_ok(void) { disabled_calls(); }

struct entry {
  const char *name;
  void (*fn)(void);
};
static const struct entry entries[] = {
    {"irq_inconsistent", irq_inconsistent},
    {"irq_save_ok", irq_save_ok},
    {"cached_pair_then_inversion", cached_pair_then_inversion},
    {"cached_lock_then_hardirq", cached_lock_then_hardirq},
    {"softirq_safe_to_unsafe", softirq_safe_to_unsafe},
    {"nested_ok", nested_ok},
    {"recursive_same_lock", recursive_same_lock},
    {"assert_held_fails", assert_held_fails},
    {"assert_ok", assert_ok},
    {"callback_and_options", callback_and_options},
    {"disabled_ok", disabled_ok},
    {"bad_release_two_classes", bad_release_two_classes},
};

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++) {
    if (strcmp(entries[i].name, argv[1]) == 0) {
      entries[i].fn();
      printf("%s: done\n", argv[1]);
      return 0;
    }
  }
  return 2;
}
