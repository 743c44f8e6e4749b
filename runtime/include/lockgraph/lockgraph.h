/* lockgraph C annotation API: tell the validator about locks and interrupt contexts it cannot see.
 *
 * Everything here is implemented by liblockgraph (the same library LD_PRELOAD loads), so a
 * program annotated with it and run under `lockgraph run`, or linked with -llockgraph, feeds the
 * same engine as the pthread interposers. Locks are identified by address (any stable address
 * of the lock object); classes by a static key object, lockdep's lock_class_key.
 *
 * With LOCKGRAPH_DISABLE defined, every call compiles to nothing.
 *
 * Rules for every function: it never changes errno, never blocks on anything but lockgraph's
 * own short internal locks, and is a no-op once the validator has turned itself off.
 */
#ifndef LOCKGRAPH_LOCKGRAPH_H_
#define LOCKGRAPH_LOCKGRAPH_H_

#ifdef __cplusplus
extern "C" {
#endif

/* A class key: define one static object per lock class you want distinct; its address is the
 * key. Lockdep's `static struct lock_class_key`. */
typedef struct lg_class_key {
  char lg_opaque_;
} lg_class_key;

#define LG_DEFINE_CLASS_KEY(name) static lg_class_key name

/* Acquisition flags.
 * Supported by lg_acquire: one mode (LG_EXCLUSIVE, LG_READ, LG_READ_RECURSIVE), optionally
 * ORed with LG_TRY. */
#define LG_EXCLUSIVE 0x0u      /* mutex / write lock */
#define LG_READ 0x1u           /* non-recursive read lock (rwsem down_read) */
#define LG_READ_RECURSIVE 0x2u /* recursive read lock (rwlock_t read_lock) */
#define LG_TRY 0x10u           /* a trylock that succeeded: no dependency into it */

/* Interrupt context ids for lg_irq_* (numbered contexts 2..127 are the runtime's signals). */
#define LG_HARDIRQ 0u
#define LG_SOFTIRQ 1u

#ifndef LOCKGRAPH_DISABLE

/* Lock maps and classes ------------------------------------------------------------------ */

/* Initialises `lock` as an instance of the class given by `key` (or, with key NULL, the class of
 * this init site, as lockdep's spin_lock_init does), named `name` in reports (a NULL name uses
 * the symbol of `lock` or the init site). Re-initialising a held lock is reported.
 * `site` identifies the init site across runs ("file.c:42"); the lg_lock_init macro fills it. */
void lg_lock_init_site(const void *lock, const char *name, const lg_class_key *key,
                       const char *site);
#define LG_STRINGIFY_(x) #x
#define LG_STRINGIFY(x) LG_STRINGIFY_(x)
#define lg_lock_init(lock, name, key) \
  lg_lock_init_site((lock), (name), (key), __FILE__ ":" LG_STRINGIFY(__LINE__))

/* Gives `lock` the class of `key` named `name` if lockgraph has not seen the lock yet (a member or
 * global lock first met at an acquisition); no effect on a lock that already has a class, never
 * reports. lockgraph-instrument emits it before instrumented acquisitions. */
void lg_lock_class_hint(const void *lock, const char *name, const lg_class_key *key,
                        const char *site);

/* Moves `lock` to the class of `key` with `subclass` (lockdep_set_class_and_subclass). */
void lg_set_class(const void *lock, const char *name, const lg_class_key *key, unsigned subclass);

/* Ends `lock`; destroying a held lock and any later use are reported. */
void lg_lock_destroy(const void *lock);

/* Acquire and release -------------------------------------------------------------------- */

/* Records an acquisition of `lock`.
 * Supported flags: LG_EXCLUSIVE, LG_READ, LG_READ_RECURSIVE, each optionally | LG_TRY.
 * `subclass` (0..7) nests a lock of the same class (mutex_lock_nested); `nest_lock`, if not
 * NULL, is a held lock that serialises every acquisition of this class (lockdep's nest_lock). */
void lg_acquire(const void *lock, unsigned flags, unsigned subclass, const void *nest_lock);

/* Records the release of `lock`; releasing a lock that is not held is reported. */
void lg_release(const void *lock);

/* Shorthands. */
#define lg_lock(l) lg_acquire((l), LG_EXCLUSIVE, 0, 0)
#define lg_lock_nested(l, subclass) lg_acquire((l), LG_EXCLUSIVE, (subclass), 0)
#define lg_lock_nest_lock(l, nest) lg_acquire((l), LG_EXCLUSIVE, 0, (nest))
#define lg_read_lock(l) lg_acquire((l), LG_READ_RECURSIVE, 0, 0)
#define lg_down_read(l) lg_acquire((l), LG_READ, 0, 0)
#define lg_trylock(l) lg_acquire((l), LG_EXCLUSIVE | LG_TRY, 0, 0)
#define lg_unlock(l) lg_release(l)

/* Assertions: each reports (once per call site) when it does not hold, and returns 1 when it
 * holds, 0 otherwise. */
int lg_assert_held(const void *lock);
int lg_assert_not_held(const void *lock);
int lg_assert_no_locks_held(void);

/* Interrupt context ---------------------------------------------------------------------- */

/* Runs-in-interrupt markers: code between enter and exit is in that context. */
void lg_hardirq_enter(void);
void lg_hardirq_exit(void);
void lg_softirq_enter(void);
void lg_softirq_exit(void);

/* Interrupt enable state: local_irq_disable/enable, local_bh_disable/enable,
 * local_irq_save/restore. */
void lg_irq_disable(void);
void lg_irq_enable(void);
void lg_softirq_disable(void);
void lg_softirq_enable(void);
unsigned long lg_irq_save(void);
void lg_irq_restore(unsigned long flags);

/* Options and results -------------------------------------------------------------------- */

/* Sets an option by name, as in LOCKGRAPH_OPTIONS ("strict", "halt_on_error", "log_file",
 * "exitcode", "verbosity", ...). Returns 0 on success, -1 for an unknown name or bad value. */
int lg_set_option(const char *name, const char *value);

/* Called with each report's full text, in addition to (not instead of) the normal output. */
typedef void (*lg_report_callback)(const char *report, void *arg);
void lg_set_report_callback(lg_report_callback callback, void *arg);

/* Number of distinct findings reported so far in this process. */
unsigned long lg_findings_count(void);

#else /* LOCKGRAPH_DISABLE */

#define lg_lock_init_site(lock, name, key, site) do { } while (0)
#define lg_lock_init(lock, name, key) do { } while (0)
#define lg_set_class(lock, name, key, subclass) do { } while (0)
#define lg_lock_class_hint(lock, name, key, site) do { } while (0)
#define lg_lock_destroy(lock) do { } while (0)
#define lg_acquire(lock, flags, subclass, nest) do { } while (0)
#define lg_release(lock) do { } while (0)
#define lg_lock(l) do { } while (0)
#define lg_lock_nested(l, subclass) do { } while (0)
#define lg_lock_nest_lock(l, nest) do { } while (0)
#define lg_read_lock(l) do { } while (0)
#define lg_down_read(l) do { } while (0)
#define lg_trylock(l) do { } while (0)
#define lg_unlock(l) do { } while (0)
#define lg_assert_held(lock) 1
#define lg_assert_not_held(lock) 1
#define lg_assert_no_locks_held() 1
#define lg_hardirq_enter() do { } while (0)
#define lg_hardirq_exit() do { } while (0)
#define lg_softirq_enter() do { } while (0)
#define lg_softirq_exit() do { } while (0)
#define lg_irq_disable() do { } while (0)
#define lg_irq_enable() do { } while (0)
#define lg_softirq_disable() do { } while (0)
#define lg_softirq_enable() do { } while (0)
#define lg_irq_save() 0ul
#define lg_irq_restore(flags) do { (void)(flags); } while (0)
#define lg_set_option(name, value) 0
#define lg_set_report_callback(cb, arg) do { } while (0)
#define lg_findings_count() 0ul

#endif /* LOCKGRAPH_DISABLE */

#ifdef __cplusplus
}
#endif

#endif /* LOCKGRAPH_LOCKGRAPH_H_ */
