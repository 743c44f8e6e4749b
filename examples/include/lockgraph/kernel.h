/* A kernel-style locking layer over the lockgraph C API, so that the kernel examples read like the
 * mm/ code they model and their reports name locks the way lockdep's would.
 *
 * Every lock here is a pure annotation: the struct only gives the lock an address, and taking it
 * tells lockgraph what the kernel code would have done. Nothing blocks and no interrupt has to
 * land: the examples are single-threaded and deterministic, and lockgraph still finds what lockdep
 * finds, because both reason about the orders and contexts they have seen, not about timing.
 * (Backing the locks with pthread locks would gain nothing and, under `lockgraph run`, would record
 * every acquisition twice.)
 *
 * Mapping to the C API
 *   spin_lock_irq(l)            lg_irq_disable(); lg_acquire(l)
 *   spin_lock_irqsave(l, f)     f = lg_irq_save(); lg_acquire(l)
 *   spin_lock_bh(l)             lg_softirq_disable(); lg_acquire(l)
 *   xa_erase(xa, i)             xa_lock(xa): the xarray's lock with IRQs as they are (usually on)
 *   xa_erase_irq(xa, i)         xa_lock_irq(xa): the same lock with IRQs off
 *   down_read / percpu_down_read / cpus_read_lock    LG_READ (non-recursive read, writer-fair)
 *   run_in_hardirq(fn, arg)     lg_hardirq_enter(); fn(arg); lg_hardirq_exit()
 *
 * Classes follow the kernel: each *_init() call site is one class (a static key per expansion,
 * like spin_lock_init's `static struct lock_class_key __key`), DEFINE_*() statics are one class
 * each, and lockdep_set_class() moves a lock to a class of your own key.
 */
#ifndef LOCKGRAPH_EXAMPLES_KERNEL_H_
#define LOCKGRAPH_EXAMPLES_KERNEL_H_

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "lockgraph/lockgraph.h"

#define __maybe_unused __attribute__((unused))
/* Example functions are kept out of line and unspecialised (no foo.constprop.0 clones) so that
 * report stacks name them like a kernel trace. The lock calls below are macros for the same
 * reason: a report's call site is then the example's own line, not a line of this header. */
#if defined(__clang__)
#define __kfunc __attribute__((noinline))
#else
#define __kfunc __attribute__((noipa))
#endif

/* Classes --------------------------------------------------------------------------------------- */

struct lock_class_key {
  lg_class_key key;
};

/* Strips the '&' a kernel-style call writes in front of a key or lock expression. */
static inline const char *lgk_name_(const char *expr) {
  return expr[0] == '&' ? expr + 1 : expr;
}

/* lockdep_set_class(lock, &key): the lock gets the class of `key`, named after the key. Works on
 * spinlock_t, struct mutex, struct rw_semaphore and struct xarray alike (anything with .dep_map). */
#define lockdep_set_class(lock, key) \
  lg_set_class(&(lock)->dep_map, lgk_name_(#key), &(key)->key, 0)
#define lockdep_set_class_and_name(lock, key, name) \
  lg_set_class(&(lock)->dep_map, (name), &(key)->key, 0)

/* The lock object: a byte with an address. Kernel locks carry a struct lockdep_map; so do these. */
struct lockdep_map {
  char byte;
};

/* One class per expansion site, named `name`, as the kernel's *_init macros do. */
#define lgk_init_at_site_(map, name)                                      \
  do {                                                                    \
    static lg_class_key lgk_site_key_;                                    \
    lg_lock_init((map), (name), &lgk_site_key_);                          \
  } while (0)

/* Statics: DEFINE_MUTEX(x) and friends register `x` before main(), one class per lock, named "x". */
#define lgk_define_(type, var, name)                                      \
  type var;                                                               \
  __attribute__((constructor)) static void lgk_define_##var##_(void) {    \
    static lg_class_key lgk_static_key_;                                  \
    lg_lock_init(&var.dep_map, name, &lgk_static_key_);                   \
  }

/* IRQ state ------------------------------------------------------------------------------------- */

#define local_irq_disable() lg_irq_disable()
#define local_irq_enable() lg_irq_enable()
#define local_irq_save(flags) ((flags) = lg_irq_save())
#define local_irq_restore(flags) lg_irq_restore(flags)
#define local_bh_disable() lg_softirq_disable()
#define local_bh_enable() lg_softirq_enable()

/* Runs fn(arg) as a hardirq (or softirq) handler would run: in that interrupt context, with that
 * interrupt disabled. No signal or timer is involved; the context is simply declared. */
#define run_in_hardirq(fn, arg) \
  do {                          \
    lg_hardirq_enter();         \
    (fn)(arg);                  \
    lg_hardirq_exit();          \
  } while (0)
#define run_in_softirq(fn, arg) \
  do {                          \
    lg_softirq_enter();         \
    (fn)(arg);                  \
    lg_softirq_exit();          \
  } while (0)

/* spinlock_t ------------------------------------------------------------------------------------ */

typedef struct spinlock {
  struct lockdep_map dep_map;
} spinlock_t;

#define spin_lock_init(lock) lgk_init_at_site_(&(lock)->dep_map, lgk_name_(#lock))
#define spin_lock_init_named(lock, name) lgk_init_at_site_(&(lock)->dep_map, (name))
#define DEFINE_SPINLOCK(x) lgk_define_(spinlock_t, x, #x)
/* The kernel has no spin_lock_destroy: freeing the object that holds a lock ends it (lockdep's
 * debug_check_no_locks_freed on kfree). Call this where the object is freed. */
#define spin_lock_destroy(l) lg_lock_destroy(&(l)->dep_map)

#define spin_lock(l) lg_acquire(&(l)->dep_map, LG_EXCLUSIVE, 0, 0)
#define spin_lock_nested(l, subclass) lg_acquire(&(l)->dep_map, LG_EXCLUSIVE, (subclass), 0)
/* Single-threaded examples: the trylock always succeeds. */
#define spin_trylock(l) (lg_acquire(&(l)->dep_map, LG_EXCLUSIVE | LG_TRY, 0, 0), 1)
#define spin_unlock(l) lg_release(&(l)->dep_map)
#define spin_lock_irq(l) (lg_irq_disable(), lg_acquire(&(l)->dep_map, LG_EXCLUSIVE, 0, 0))
#define spin_unlock_irq(l) (lg_release(&(l)->dep_map), lg_irq_enable())
#define spin_lock_irqsave(l, flags) \
  ((flags) = lg_irq_save(), lg_acquire(&(l)->dep_map, LG_EXCLUSIVE, 0, 0))
#define spin_unlock_irqrestore(l, flags) (lg_release(&(l)->dep_map), lg_irq_restore(flags))
#define spin_lock_bh(l) (lg_softirq_disable(), lg_acquire(&(l)->dep_map, LG_EXCLUSIVE, 0, 0))
#define spin_unlock_bh(l) (lg_release(&(l)->dep_map), lg_softirq_enable())
#define lockdep_assert_held(l) ((void)lg_assert_held(&(l)->dep_map))

/* struct mutex ---------------------------------------------------------------------------------- */

struct mutex {
  struct lockdep_map dep_map;
};

#define mutex_init(lock) lgk_init_at_site_(&(lock)->dep_map, lgk_name_(#lock))
#define mutex_init_named(lock, name) lgk_init_at_site_(&(lock)->dep_map, (name))
#define DEFINE_MUTEX(x) lgk_define_(struct mutex, x, #x)
#define mutex_lock(m) lg_acquire(&(m)->dep_map, LG_EXCLUSIVE, 0, 0)
#define mutex_lock_nested(m, subclass) lg_acquire(&(m)->dep_map, LG_EXCLUSIVE, (subclass), 0)
#define mutex_unlock(m) lg_release(&(m)->dep_map)
#define mutex_destroy(m) lg_lock_destroy(&(m)->dep_map)

/* struct rw_semaphore: down_read is a non-recursive read (a waiting writer blocks new readers) -- */

struct rw_semaphore {
  struct lockdep_map dep_map;
};

#define init_rwsem(sem) lgk_init_at_site_(&(sem)->dep_map, lgk_name_(#sem))
#define init_rwsem_named(sem, name) lgk_init_at_site_(&(sem)->dep_map, (name))
#define DECLARE_RWSEM(x) lgk_define_(struct rw_semaphore, x, #x)
#define down_read(sem) lg_acquire(&(sem)->dep_map, LG_READ, 0, 0)
#define up_read(sem) lg_release(&(sem)->dep_map)
#define down_write(sem) lg_acquire(&(sem)->dep_map, LG_EXCLUSIVE, 0, 0)
#define up_write(sem) lg_release(&(sem)->dep_map)

/* rwlock_t: read_lock is a recursive read (readers never wait for a waiting writer) ------------ */

typedef struct rwlock {
  struct lockdep_map dep_map;
} rwlock_t;

#define rwlock_init(lock) lgk_init_at_site_(&(lock)->dep_map, lgk_name_(#lock))
#define DEFINE_RWLOCK(x) lgk_define_(rwlock_t, x, #x)
#define read_lock(l) lg_acquire(&(l)->dep_map, LG_READ_RECURSIVE, 0, 0)
#define read_unlock(l) lg_release(&(l)->dep_map)
#define write_lock(l) lg_acquire(&(l)->dep_map, LG_EXCLUSIVE, 0, 0)
#define write_unlock(l) lg_release(&(l)->dep_map)

/* struct percpu_rw_semaphore and the CPU hotplug lock ------------------------------------------ */

struct percpu_rw_semaphore {
  struct lockdep_map dep_map;
};

#define DEFINE_STATIC_PERCPU_RWSEM(x) static lgk_define_(struct percpu_rw_semaphore, x, #x)
#define percpu_down_read(sem) lg_acquire(&(sem)->dep_map, LG_READ, 0, 0)
#define percpu_up_read(sem) lg_release(&(sem)->dep_map)
#define percpu_down_write(sem) lg_acquire(&(sem)->dep_map, LG_EXCLUSIVE, 0, 0)
#define percpu_up_write(sem) lg_release(&(sem)->dep_map)

/* The CPU hotplug lock, one per program as in the kernel: cpus_read_lock() is a percpu rwsem read. */
DEFINE_STATIC_PERCPU_RWSEM(cpu_hotplug_lock)
#define cpus_read_lock() percpu_down_read(&cpu_hotplug_lock)
#define cpus_read_unlock() percpu_up_read(&cpu_hotplug_lock)
#define cpus_write_lock() percpu_down_write(&cpu_hotplug_lock)
#define cpus_write_unlock() percpu_up_write(&cpu_hotplug_lock)
#define lockdep_assert_cpus_held() ((void)lg_assert_held(&cpu_hotplug_lock.dep_map))

/* Blocking notifier chains: a chain is an rwsem taken for read while the callbacks run -------- */

struct notifier_block;
typedef int (*notifier_fn_t)(struct notifier_block *nb, unsigned long action, void *data);
struct notifier_block {
  notifier_fn_t notifier_call;
  struct notifier_block *next;
};
struct blocking_notifier_head {
  struct rw_semaphore rwsem;
  struct notifier_block *head;
};

/* BLOCKING_NOTIFIER_HEAD(memory_chain): its rwsem's class is named "memory_chain.rwsem". */
#define BLOCKING_NOTIFIER_HEAD(x)                                          \
  struct blocking_notifier_head x;                                         \
  __attribute__((constructor)) static void lgk_notifier_##x##_(void) {     \
    static lg_class_key lgk_static_key_;                                   \
    lg_lock_init(&x.rwsem.dep_map, #x ".rwsem", &lgk_static_key_);         \
  }

static __kfunc __maybe_unused void blocking_notifier_chain_register(
    struct blocking_notifier_head *nh, struct notifier_block *nb) {
  down_write(&nh->rwsem);
  nb->next = nh->head;
  nh->head = nb;
  up_write(&nh->rwsem);
}

static __kfunc __maybe_unused int blocking_notifier_call_chain(
    struct blocking_notifier_head *nh, unsigned long action, void *data) {
  int ret = 0;
  down_read(&nh->rwsem);
  for (struct notifier_block *nb = nh->head; nb != NULL; nb = nb->next) {
    ret = nb->notifier_call(nb, action, data);
  }
  up_read(&nh->rwsem);
  return ret;
}

/* struct xarray: a small fixed-size array of entries behind the xarray's spinlock -------------- */

#define XA_SLOTS 64

struct xarray {
  /* xa_lock's lockdep_map; `dep_map` so that lockdep_set_class() works on an xarray too. */
  struct lockdep_map dep_map;
  void *slots[XA_SLOTS];
};

#define xa_init(xa) lgk_init_at_site_(&(xa)->dep_map, lgk_name_(#xa))
#define xa_init_named(xa, name) lgk_init_at_site_(&(xa)->dep_map, (name))

#define xa_lock(xa) lg_acquire(&(xa)->dep_map, LG_EXCLUSIVE, 0, 0)
#define xa_unlock(xa) lg_release(&(xa)->dep_map)
#define xa_lock_irq(xa) (lg_irq_disable(), lg_acquire(&(xa)->dep_map, LG_EXCLUSIVE, 0, 0))
#define xa_unlock_irq(xa) (lg_release(&(xa)->dep_map), lg_irq_enable())
#define xa_lock_irqsave(xa, flags) \
  ((flags) = lg_irq_save(), lg_acquire(&(xa)->dep_map, LG_EXCLUSIVE, 0, 0))
#define xa_unlock_irqrestore(xa, flags) (lg_release(&(xa)->dep_map), lg_irq_restore(flags))

/* The __xa_* calls expect the lock held, as in the kernel. */
static inline void *__xa_store(struct xarray *xa, unsigned long index, void *entry) {
  void *old = xa->slots[index % XA_SLOTS];
  xa->slots[index % XA_SLOTS] = entry;
  return old;
}
static inline void *__xa_erase(struct xarray *xa, unsigned long index) {
  return __xa_store(xa, index, NULL);
}
/* xa_load needs no lock (RCU in the kernel). */
static inline void *xa_load(struct xarray *xa, unsigned long index) {
  return xa->slots[index % XA_SLOTS];
}

/* xa_erase takes the xarray lock as it finds the IRQ state: with IRQs enabled, that marks the
 * lock HARDIRQ-unsafe. xa_erase_irq disables IRQs around it, as an IRQ-safe xarray needs. */
#define xa_erase(xa, index)                      \
  ({                                             \
    struct xarray *xa_ = (xa);                   \
    xa_lock(xa_);                                \
    void *old_ = __xa_erase(xa_, (index));       \
    xa_unlock(xa_);                              \
    old_;                                        \
  })
#define xa_erase_irq(xa, index)                  \
  ({                                             \
    struct xarray *xa_ = (xa);                   \
    xa_lock_irq(xa_);                            \
    void *old_ = __xa_erase(xa_, (index));       \
    xa_unlock_irq(xa_);                          \
    old_;                                        \
  })
#define xa_store(xa, index, entry)                   \
  ({                                                 \
    struct xarray *xa_ = (xa);                       \
    xa_lock(xa_);                                    \
    void *old_ = __xa_store(xa_, (index), (entry));  \
    xa_unlock(xa_);                                  \
    old_;                                            \
  })
#define xa_store_irq(xa, index, entry)               \
  ({                                                 \
    struct xarray *xa_ = (xa);                       \
    xa_lock_irq(xa_);                                \
    void *old_ = __xa_store(xa_, (index), (entry));  \
    xa_unlock_irq(xa_);                              \
    old_;                                            \
  })

/* Lists and memory ------------------------------------------------------------------------------ */

struct list_head {
  struct list_head *next, *prev;
};

static inline void INIT_LIST_HEAD(struct list_head *h) { h->next = h->prev = h; }
static inline void list_add(struct list_head *n, struct list_head *h) {
  n->next = h->next;
  n->prev = h;
  h->next->prev = n;
  h->next = n;
}
static inline void list_del_init(struct list_head *n) {
  n->prev->next = n->next;
  n->next->prev = n->prev;
  INIT_LIST_HEAD(n);
}
static inline int list_empty(const struct list_head *h) { return h->next == h; }
/* Moves every entry of `from` to the front of `to`. */
static inline void list_splice_init(struct list_head *from, struct list_head *to) {
  if (list_empty(from)) return;
  struct list_head *first = from->next, *last = from->prev;
  last->next = to->next;
  to->next->prev = last;
  to->next = first;
  first->prev = to;
  INIT_LIST_HEAD(from);
}

static inline void *kzalloc(size_t size) { return calloc(1, size); }

/* kfree() leaves the memory mapped until exit, like a KASAN quarantine that never drains: the
 * examples that show a late use of a freed lock must not touch freed memory themselves; lockgraph
 * reports the use instead. */
static inline void kfree(void *p) { (void)p; }

#endif /* LOCKGRAPH_EXAMPLES_KERNEL_H_ */
