/* Init-site classes under -O2 (`runtime_init_sites_o2 CASE`): one pthread_mutex_init call in the
 * source must be one lock class however the optimiser copies it (a helper inlined into two
 * callers, an unrolled init loop, two calls on one line). Each inverted case makes a cycle only
 * if its two locks share a class; each _ok twin takes them in one order. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static pthread_mutex_t lock_a = PTHREAD_MUTEX_INITIALIZER;

struct bucket {
  pthread_mutex_t lock;
  int n;
};
static inline __attribute__((always_inline)) void bucket_init(struct bucket *b) {
  pthread_mutex_init(&b->lock, NULL);
  b->n = 0;
}
static struct bucket *volatile sink;
/* Different bodies, so identical-code folding cannot merge the two callers. */
__attribute__((noinline)) static void make_first(struct bucket *b) {
  bucket_init(b);
  sink = b;
  b->n = 1;
}
__attribute__((noinline)) static void make_second(struct bucket *b) {
  b->n = 7;
  sink = b;
  bucket_init(b);
  sink = b;
  b->n += 2;
}

__attribute__((noinline)) static void nest(pthread_mutex_t *x, pthread_mutex_t *y) {
  pthread_mutex_lock(x);
  pthread_mutex_lock(y);
  pthread_mutex_unlock(y);
  pthread_mutex_unlock(x);
}

static pthread_mutex_t slots[8];
__attribute__((noinline)) static void init_slots(void) {
#pragma GCC unroll 8
  for (int i = 0; i < 8; i++) pthread_mutex_init(&slots[i], NULL);
}

static pthread_mutex_t pair_p, pair_q;
static volatile int pairs_made;
__attribute__((noinline)) static void init_pair(void) {
  pthread_mutex_init(&pair_p, NULL); pthread_mutex_init(&pair_q, NULL);  /* one line */
  pairs_made++; /* not a tail call: a sibling call's return address is the caller's */
}

static void inlined_helper(int inverted) {
  struct bucket b1, b2;
  make_first(&b1);
  make_second(&b2);
  nest(&lock_a, &b1.lock);
  if (inverted) nest(&b2.lock, &lock_a);
  else nest(&lock_a, &b2.lock);
}

static void unrolled_loop(int inverted) {
  init_slots();
  nest(&lock_a, &slots[0]);
  if (inverted) nest(&slots[5], &lock_a);
  else nest(&lock_a, &slots[5]);
}

static void one_line(int inverted) {
  init_pair();
  nest(&lock_a, &pair_p);
  if (inverted) nest(&pair_q, &lock_a);
  else nest(&lock_a, &pair_q);
}

int main(int argc, char **argv) {
  if (argc < 2) return 2;
  static const struct {
    const char *name;
    void (*fn)(int);
  } cases[] = {{"inlined_helper", inlined_helper}, {"unrolled_loop", unrolled_loop},
               {"one_line", one_line}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const size_t n = strlen(cases[i].name);
    if (strncmp(argv[1], cases[i].name, n) == 0) {
      cases[i].fn(strcmp(argv[1] + n, "_ok") != 0);
      printf("%s: done\n", argv[1]);
      return 0;
    }
  }
  return 2;
}
