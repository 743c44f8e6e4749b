/* Small pthread programs for the runtime tests: `runtime_cases NAME` runs one case. Each buggy
 * case has a clean twin; the test runs them under liblockgraph and checks what a user sees. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))

static pthread_mutex_t lock_a = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t lock_b = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t lock_c = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t lock_d = PTHREAD_MUTEX_INITIALIZER;

typedef void (*body_fn)(void);

static void *run_body(void *arg) {
  ((body_fn)arg)();
  return NULL;
}

/* Runs `body` on a new thread and waits for it: the orders never overlap in time. */
static void on_thread(body_fn body) {
  pthread_t t;
  pthread_create(&t, NULL, run_body, (void *)body);
  pthread_join(t, NULL);
}

static NOINLINE void lock2(pthread_mutex_t *x, pthread_mutex_t *y) {
  pthread_mutex_lock(x);
  pthread_mutex_lock(y);
  pthread_mutex_unlock(y);
  pthread_mutex_unlock(x);
}

/* --- ABBA and longer cycles ------------------------------------------------------------------ */
static void take_ab(void) { lock2(&lock_a, &lock_b); }
static void take_ba(void) { lock2(&lock_b, &lock_a); }
static void take_bc(void) { lock2(&lock_b, &lock_c); }
static void take_ca(void) { lock2(&lock_c, &lock_a); }
static void take_cd(void) { lock2(&lock_c, &lock_d); }
static void take_da(void) { lock2(&lock_d, &lock_a); }
static void take_ac(void) { lock2(&lock_a, &lock_c); }
static void take_ad(void) { lock2(&lock_a, &lock_d); }
static void take_bd(void) { lock2(&lock_b, &lock_d); }

static void abba(void) { take_ab(); on_thread(take_ba); }
static void abba_ok(void) { take_ab(); on_thread(take_ab); }
static void cycle3(void) { take_ab(); on_thread(take_bc); on_thread(take_ca); }
static void cycle3_ok(void) { take_ab(); on_thread(take_bc); on_thread(take_ac); }
static void cycle4(void) { take_ab(); on_thread(take_bc); on_thread(take_cd); on_thread(take_da); }
static void cycle4_ok(void) { take_ab(); on_thread(take_bc); on_thread(take_cd); on_thread(take_ad); on_thread(take_bd); }

/* --- trylock: a trylock taken in reverse order cannot deadlock ------------------------------ */
static void try_ba(void) {
  pthread_mutex_lock(&lock_b);
  if (pthread_mutex_trylock(&lock_a) == 0) pthread_mutex_unlock(&lock_a);
  pthread_mutex_unlock(&lock_b);
}
static void trylock_reverse_ok(void) { take_ab(); on_thread(try_ba); }

/* --- timed locks are blocking acquisitions ---------------------------------------------------- */
static void timed_ba(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += 5;
  pthread_mutex_lock(&lock_b);
  if (pthread_mutex_timedlock(&lock_a, &ts) == 0) pthread_mutex_unlock(&lock_a);
  pthread_mutex_unlock(&lock_b);
}
static void timed_ab(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_sec += 5;
  pthread_mutex_lock(&lock_a);
  if (pthread_mutex_timedlock(&lock_b, &ts) == 0) pthread_mutex_unlock(&lock_b);
  pthread_mutex_unlock(&lock_a);
}
static void timedlock_abba(void) { take_ab(); on_thread(timed_ba); }
static void timedlock_ok(void) { take_ab(); on_thread(timed_ab); }

/* A timed lock that times out leaves nothing held: unlocking the outer lock is balanced. */
static void hold_b_briefly(void) {}
/* A thread that holds lock_b from `held` being posted until `release` is posted: tests that need
 * "another thread holds lock_b now" use it instead of sleeping, so a loaded machine cannot turn
 * them into a different scenario. */
static sem_t b_held, b_release;
static void *holder(void *arg) {
  (void)arg;
  pthread_mutex_lock(&lock_b);
  sem_post(&b_held);
  while (sem_wait(&b_release) != 0) {
  }
  pthread_mutex_unlock(&lock_b);
  return NULL;
}
static void start_b_holder(pthread_t *t) {
  sem_init(&b_held, 0, 0);
  sem_init(&b_release, 0, 0);
  pthread_create(t, NULL, holder, NULL);
  while (sem_wait(&b_held) != 0) {
  }
}
static void stop_b_holder(pthread_t t) {
  sem_post(&b_release);
  pthread_join(t, NULL);
}
static void timedlock_timeout_ok(void) {
  pthread_t t;
  start_b_holder(&t);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  ts.tv_nsec += 10 * 1000 * 1000;
  if (ts.tv_nsec >= 1000000000) { ts.tv_sec++; ts.tv_nsec -= 1000000000; }
  pthread_mutex_lock(&lock_a);
  int rc = pthread_mutex_timedlock(&lock_b, &ts);
  if (rc == 0) pthread_mutex_unlock(&lock_b);
  pthread_mutex_unlock(&lock_a);
  stop_b_holder(t);
  hold_b_briefly();
  printf("timedlock rc=%s\n", rc == ETIMEDOUT ? "ETIMEDOUT" : "0");
}

/* --- condition variables: a wait releases and re-takes its mutex ---------------------------- */
static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t queue_cond = PTHREAD_COND_INITIALIZER;
static int queue_items;

static void *cv_producer(void *arg) {
  int nest = arg != NULL;
  usleep(20 * 1000);
  if (nest) pthread_mutex_lock(&lock_a); /* lock_a -> queue_lock */
  pthread_mutex_lock(&queue_lock);
  queue_items++;
  pthread_cond_signal(&queue_cond);
  pthread_mutex_unlock(&queue_lock);
  if (nest) pthread_mutex_unlock(&lock_a);
  return NULL;
}
static void cv_wait_then(int nest) {
  pthread_t t;
  pthread_create(&t, NULL, cv_producer, nest ? (void *)1 : NULL);
  pthread_mutex_lock(&queue_lock);
  while (queue_items == 0) pthread_cond_wait(&queue_cond, &queue_lock);
  if (nest) {
    pthread_mutex_lock(&lock_a); /* queue_lock -> lock_a, taken after the wait */
    pthread_mutex_unlock(&lock_a);
  }
  pthread_mutex_unlock(&queue_lock);
  pthread_join(t, NULL);
}
static void condvar_inversion(void) { cv_wait_then(1); }
static void condvar_ok(void) { cv_wait_then(0); }

/* --- recursive and errorcheck mutexes --------------------------------------------------------- */
static pthread_mutex_t rec_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static void recursive_ok(void) {
  pthread_mutexattr_t attr;
  pthread_mutex_t m;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
  pthread_mutex_init(&m, &attr);
  pthread_mutex_lock(&m);
  pthread_mutex_lock(&m);
  if (pthread_mutex_trylock(&m) == 0) pthread_mutex_unlock(&m);
  pthread_mutex_unlock(&m);
  pthread_mutex_unlock(&m);
  pthread_mutex_destroy(&m);
  pthread_mutex_lock(&rec_lock);
  pthread_mutex_lock(&lock_a);
  pthread_mutex_lock(&rec_lock); /* re-lock by the owner: not a rec_lock -> lock_a -> rec_lock cycle */
  pthread_mutex_unlock(&rec_lock);
  pthread_mutex_unlock(&lock_a);
  pthread_mutex_unlock(&rec_lock);
}
static void errorcheck_relock(void) {
  pthread_mutexattr_t attr;
  static pthread_mutex_t checked;
  pthread_mutexattr_init(&attr);
  pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ERRORCHECK);
  pthread_mutex_init(&checked, &attr);
  pthread_mutex_lock(&checked);
  int rc = pthread_mutex_lock(&checked);
  printf("relock rc=%s\n", rc == EDEADLK ? "EDEADLK" : "other");
  pthread_mutex_unlock(&checked);
  pthread_mutex_destroy(&checked);
}

/* --- rwlocks ---------------------------------------------------------------------------------- */
static pthread_rwlock_t table_lock = PTHREAD_RWLOCK_INITIALIZER;
static pthread_rwlock_t index_lock = PTHREAD_RWLOCK_INITIALIZER;
static pthread_rwlock_t wp_table;  /* writer-preferring, non-recursive readers */
static pthread_rwlock_t wp_index;

static NOINLINE void read2(pthread_rwlock_t *x, pthread_rwlock_t *y) {
  pthread_rwlock_rdlock(x);
  pthread_rwlock_rdlock(y);
  pthread_rwlock_unlock(y);
  pthread_rwlock_unlock(x);
}
static void rd_ti(void) { read2(&table_lock, &index_lock); }
static void rd_it(void) { read2(&index_lock, &table_lock); }
static void rwlock_read_read_ok(void) { rd_ti(); on_thread(rd_it); }
static void wp_ti(void) { read2(&wp_table, &wp_index); }
static void wp_it(void) { read2(&wp_index, &wp_table); }
/* Each lock its own init site (one site would make them one class). */
#define INIT_WP(l)                                                                   \
  do {                                                                               \
    pthread_rwlockattr_t attr;                                                       \
    pthread_rwlockattr_init(&attr);                                                  \
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP); \
    pthread_rwlock_init((l), &attr);                                                 \
  } while (0)
static void rwlock_writer_pref_read_read(void) {
  INIT_WP(&wp_table);
  INIT_WP(&wp_index);
  wp_ti();
  on_thread(wp_it);
}
static void wr_ti(void) {
  pthread_rwlock_wrlock(&table_lock);
  pthread_rwlock_rdlock(&index_lock);
  pthread_rwlock_unlock(&index_lock);
  pthread_rwlock_unlock(&table_lock);
}
static void wr_it(void) {
  pthread_rwlock_wrlock(&index_lock);
  pthread_rwlock_rdlock(&table_lock);
  pthread_rwlock_unlock(&table_lock);
  pthread_rwlock_unlock(&index_lock);
}
static void rwlock_write_inversion(void) { wr_ti(); on_thread(wr_it); }

/* --- spinlocks -------------------------------------------------------------------------------- */
static pthread_spinlock_t spin_x, spin_y;
static void spin_xy(void) {
  pthread_spin_lock(&spin_x);
  pthread_spin_lock(&spin_y);
  pthread_spin_unlock(&spin_y);
  pthread_spin_unlock(&spin_x);
}
static void spin_yx(void) {
  pthread_spin_lock(&spin_y);
  pthread_spin_lock(&spin_x);
  pthread_spin_unlock(&spin_x);
  pthread_spin_unlock(&spin_y);
}
static void spin_abba(void) {
  pthread_spin_init(&spin_x, 0);
  pthread_spin_init(&spin_y, 0);
  spin_xy();
  on_thread(spin_yx);
}
static void spin_ok(void) {
  pthread_spin_init(&spin_x, 0);
  pthread_spin_init(&spin_y, 0);
  spin_xy();
  on_thread(spin_xy);
}

/* --- lock arrays from one init site ----------------------------------------------------------- */
#define NSLOTS 6
static pthread_mutex_t slots[NSLOTS];
static void init_slots(void) {
  for (int i = 0; i < NSLOTS; i++) pthread_mutex_init(&slots[i], NULL);
}
static NOINLINE void lock_pair(int first, int second) {
  pthread_mutex_lock(&slots[first]);
  pthread_mutex_lock(&slots[second]);
  pthread_mutex_unlock(&slots[second]);
  pthread_mutex_unlock(&slots[first]);
}
static void array_ascending_ok(void) {
  init_slots();
  for (int i = 0; i + 1 < NSLOTS; i++) lock_pair(i, i + 1);
  lock_pair(0, NSLOTS - 1);
}
static void array_inversion(void) {
  init_slots();
  lock_pair(1, 2);
  lock_pair(2, 1);
}

/* --- heap address reuse: a new lock at an old address inherits nothing ------------------------ */
struct obj {
  pthread_mutex_t lock;
  long payload[4];
};
static NOINLINE void first_user(struct obj *o) { /* lock_a -> o->lock */
  pthread_mutex_lock(&lock_a);
  pthread_mutex_lock(&o->lock);
  pthread_mutex_unlock(&o->lock);
  pthread_mutex_unlock(&lock_a);
}
static NOINLINE void second_user(struct obj *o) { /* o->lock -> lock_a */
  pthread_mutex_lock(&o->lock);
  pthread_mutex_lock(&lock_a);
  pthread_mutex_unlock(&lock_a);
  pthread_mutex_unlock(&o->lock);
}
static NOINLINE struct obj *make_obj_static_init(void) {
  struct obj *o = malloc(sizeof *o);
  pthread_mutex_t init = PTHREAD_MUTEX_INITIALIZER;
  memcpy(&o->lock, &init, sizeof init);
  return o;
}
static NOINLINE struct obj *make_obj_site1(void) {
  struct obj *o = malloc(sizeof *o);
  pthread_mutex_init(&o->lock, NULL);
  return o;
}
static NOINLINE struct obj *make_obj_site2(void) {
  struct obj *o = malloc(sizeof *o);
  pthread_mutex_init(&o->lock, NULL);
  return o;
}
static void address_reuse_ok(void) {
  struct obj *o1 = make_obj_static_init();
  first_user(o1);
  free(o1);
  struct obj *o2 = make_obj_static_init();
  second_user(o2);
  printf("reused=%d\n", o1 == o2);
  free(o2);
  struct obj *o3 = make_obj_site1();
  first_user(o3);
  pthread_mutex_destroy(&o3->lock);
  free(o3);
  struct obj *o4 = make_obj_site2();
  second_user(o4);
  printf("reused=%d\n", o3 == o4);
  pthread_mutex_destroy(&o4->lock);
  free(o4);
}
/* The same init site is the same class: reuse or not, this is a real inversion. */
static void address_reuse_same_class(void) {
  struct obj *o1 = make_obj_site1();
  struct obj *o2 = make_obj_site1();
  first_user(o1);
  pthread_mutex_lock(&o2->lock);
  pthread_mutex_lock(&lock_a);
  pthread_mutex_unlock(&lock_a);
  pthread_mutex_unlock(&o2->lock);
  free(o1);
  free(o2);
}

/* --- lifecycle -------------------------------------------------------------------------------- */
static void *unlock_a(void *arg) {
  (void)arg;
  pthread_mutex_unlock(&lock_a);
  return NULL;
}
static void unlock_by_non_owner(void) {
  pthread_mutex_lock(&lock_a);
  pthread_t t;
  pthread_create(&t, NULL, unlock_a, NULL);
  pthread_join(t, NULL);
}
static void unlock_by_owner_ok(void) {
  pthread_mutex_lock(&lock_a);
  pthread_mutex_unlock(&lock_a);
}
static void destroy_held(void) {
  pthread_mutex_t m;
  pthread_mutex_init(&m, NULL);
  pthread_mutex_lock(&m);
  int rc = pthread_mutex_destroy(&m);
  printf("destroy rc=%s\n", rc == EBUSY ? "EBUSY" : "0");
}
static void destroy_unseen_ok(void) {
  pthread_mutex_t m;
  memset(&m, 0, sizeof m);
  pthread_mutex_destroy(&m); /* never locked, never initialised through pthread_mutex_init */
  pthread_mutex_t n = PTHREAD_MUTEX_INITIALIZER;
  pthread_mutex_destroy(&n);
}
/* Lock, trylock and unlock of a mutex after pthread_mutex_destroy: glibc fails each with EINVAL;
 * lockgraph reports one use of a destroyed lock (not a bad unlock balance). */
static pthread_mutex_t dead_lock;
static void use_after_destroy(void) {
  pthread_mutex_init(&dead_lock, NULL);
  pthread_mutex_lock(&dead_lock);
  pthread_mutex_unlock(&dead_lock);
  pthread_mutex_destroy(&dead_lock);
  int lock_rc = pthread_mutex_lock(&dead_lock);
  int try_rc = pthread_mutex_trylock(&dead_lock);
  int unlock_rc = pthread_mutex_unlock(&dead_lock);
  printf("lock=%s trylock=%s unlock=%s\n", lock_rc == EINVAL ? "EINVAL" : "?",
         try_rc == EINVAL ? "EINVAL" : "?", unlock_rc == EINVAL ? "EINVAL" : "?");
}
/* Destroyed, then initialised again: a live lock, nothing to report. */
static void destroy_reinit_ok(void) {
  pthread_mutex_init(&dead_lock, NULL);
  pthread_mutex_destroy(&dead_lock);
  pthread_mutex_init(&dead_lock, NULL);
  lock2(&lock_a, &dead_lock);
  pthread_mutex_destroy(&dead_lock);
  pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
  memcpy(&dead_lock, &fresh, sizeof fresh); /* static re-initialisation of the same memory */
  lock2(&lock_a, &dead_lock);
}
/* Two locks of two classes each unlocked without being held: two reports. */
static void bad_unlock_two_classes(void) {
  pthread_mutex_unlock(&lock_a);
  pthread_mutex_unlock(&lock_b);
}
static void *exit_holding(void *arg) {
  (void)arg;
  pthread_mutex_lock(&lock_c);
  return NULL; /* BUG: lock_c still held */
}
static void *exit_clean(void *arg) {
  (void)arg;
  pthread_mutex_lock(&lock_c);
  pthread_mutex_unlock(&lock_c);
  return NULL;
}
static void thread_exit_holding(void) {
  pthread_t t;
  pthread_create(&t, NULL, exit_holding, NULL);
  pthread_join(t, NULL);
}
static void thread_exit_ok(void) {
  pthread_t t;
  pthread_create(&t, NULL, exit_clean, NULL);
  pthread_join(t, NULL);
}
static void exit_holding_lock_ok(void) {
  pthread_mutex_lock(&lock_a);
  exit(0); /* the process ends with lock_a held: not a finding */
}

/* --- signals ---------------------------------------------------------------------------------- */
static volatile sig_atomic_t got_signal;
static void handler_takes_a(int sig) {
  (void)sig;
  pthread_mutex_lock(&lock_a);
  got_signal = 1;
  pthread_mutex_unlock(&lock_a);
}
static void install(int sig, void (*fn)(int)) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = fn;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, NULL);
}
static void block(int sig, int on) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  pthread_sigmask(on ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL);
}
static void signal_inconsistent(void) {
  install(SIGUSR1, handler_takes_a);
  pthread_mutex_lock(&lock_a); /* SIGUSR1 unblocked */
  pthread_mutex_unlock(&lock_a);
  raise(SIGUSR1);
  printf("got=%d\n", got_signal);
}
static void signal_inconsistent_blocked_ok(void) {
  install(SIGUSR1, handler_takes_a);
  block(SIGUSR1, 1);
  pthread_mutex_lock(&lock_a);
  pthread_mutex_unlock(&lock_a);
  block(SIGUSR1, 0);
  raise(SIGUSR1);
  printf("got=%d\n", got_signal);
}
/* lock_a is SIGUSR2-safe (used in the handler), lock_b SIGUSR2-unsafe (taken with SIGUSR2
 * unblocked); then the dependency lock_a -> lock_b is made with SIGUSR2 blocked (so lock_a's own
 * uses stay consistent): a safe -> unsafe order. */
static void signal_safe_to_unsafe_common(int b_blocked) {
  install(SIGUSR2, handler_takes_a);
  raise(SIGUSR2);
  if (b_blocked) block(SIGUSR2, 1);
  pthread_mutex_lock(&lock_b);
  pthread_mutex_unlock(&lock_b);
  if (b_blocked) block(SIGUSR2, 0);
  block(SIGUSR2, 1);
  lock2(&lock_a, &lock_b);
  block(SIGUSR2, 0);
  printf("got=%d\n", got_signal);
}
static void signal_safe_to_unsafe(void) { signal_safe_to_unsafe_common(0); }
static void signal_safe_to_unsafe_blocked_ok(void) { signal_safe_to_unsafe_common(1); }
/* The same three facts in another order: the dependency first, then lock_b's unsafe use. */
static void signal_irq_inversion(void) {
  install(SIGUSR2, handler_takes_a);
  raise(SIGUSR2);
  block(SIGUSR2, 1);
  lock2(&lock_a, &lock_b);
  block(SIGUSR2, 0);
  pthread_mutex_lock(&lock_b);
  pthread_mutex_unlock(&lock_b);
}
/* A lock taken with a signal unblocked before any handler exists is not unsafe by itself. */
static void signal_no_handler_ok(void) {
  pthread_mutex_lock(&lock_a);
  pthread_mutex_unlock(&lock_a);
  signal(SIGUSR1, SIG_IGN);
  raise(SIGUSR1);
}
/* signal(): handler installed through the BSD interface and run with the signal masked. */
static void signal_bsd_inconsistent(void) {
  signal(SIGUSR1, handler_takes_a);
  pthread_mutex_lock(&lock_a);
  pthread_mutex_unlock(&lock_a);
  raise(SIGUSR1);
  printf("got=%d\n", got_signal);
}

/* Waits that run with their own signal mask (sigsuspend, pselect, ppoll, epoll_pwait): SIGUSR1 is
 * blocked everywhere except during the wait, where its handler takes lock_a. lock_a is never
 * taken with SIGUSR1 unblocked outside the handler: no finding. After the wait the thread's mask
 * is the old one again, and lockgraph must know it (the lock after the wait is not
 * SIGUSR1-unsafe). */
static void wait_with_mask(const char *how, const sigset_t *mask) {
  if (strcmp(how, "sigsuspend") == 0) {
    sigsuspend(mask);
  } else if (strcmp(how, "pselect") == 0) {
    struct timespec ts = {5, 0};
    pselect(0, NULL, NULL, NULL, &ts, mask);
  } else if (strcmp(how, "ppoll") == 0) {
    struct timespec ts = {5, 0};
    ppoll(NULL, 0, &ts, mask);
  } else {
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev;
    epoll_pwait(ep, &ev, 1, 5000, mask);
    close(ep);
  }
}
static void signal_during_wait(const char *how, int unblock_after) {
  install(SIGUSR1, handler_takes_a);
  block(SIGUSR1, 1);
  pthread_mutex_lock(&lock_a); /* SIGUSR1 blocked */
  pthread_mutex_unlock(&lock_a);
  raise(SIGUSR1); /* pending until the wait unblocks it */
  sigset_t open_mask;
  sigemptyset(&open_mask);
  wait_with_mask(how, &open_mask);
  pthread_mutex_lock(&lock_a); /* SIGUSR1 blocked again */
  pthread_mutex_unlock(&lock_a);
  if (unblock_after) {
    block(SIGUSR1, 0);
    pthread_mutex_lock(&lock_a); /* SIGUSR1 unblocked: inconsistent with the handler's use */
    pthread_mutex_unlock(&lock_a);
  }
  printf("%s got=%d\n", how, got_signal);
}
static void sigsuspend_handler_ok(void) { signal_during_wait("sigsuspend", 0); }
static void pselect_handler_ok(void) { signal_during_wait("pselect", 0); }
static void ppoll_handler_ok(void) { signal_during_wait("ppoll", 0); }
static void epoll_pwait_handler_ok(void) { signal_during_wait("epoll_pwait", 0); }
static void sigsuspend_handler_then_unblocked(void) { signal_during_wait("sigsuspend", 1); }
/* sigwaitinfo/sigtimedwait/sigwait take a blocked signal without running its handler. */
static void sigwait_family_ok(void) {
  install(SIGUSR1, handler_takes_a);
  block(SIGUSR1, 1);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGUSR1);
  raise(SIGUSR1);
  int a = sigwaitinfo(&set, NULL);
  raise(SIGUSR1);
  struct timespec ts = {5, 0};
  int b = sigtimedwait(&set, NULL, &ts);
  raise(SIGUSR1);
  int c = 0;
  sigwait(&set, &c);
  pthread_mutex_lock(&lock_a);
  pthread_mutex_unlock(&lock_a);
  block(SIGUSR1, 0);
  printf("sigwait: %d %d %d got=%d\n", a, b, c, got_signal);
}

/* SA_RESETHAND: after the first delivery SIGUSR1 is back to its default action, so lock_a taken
 * with SIGUSR1 unblocked afterwards cannot meet the handler: no finding. */
static void signal_resethand_ok(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = handler_takes_a;
  sa.sa_flags = SA_RESETHAND;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGUSR1, &sa, NULL);
  raise(SIGUSR1);
  pthread_mutex_lock(&lock_a);
  pthread_mutex_unlock(&lock_a);
  struct sigaction now;
  sigaction(SIGUSR1, NULL, &now);
  printf("got=%d default=%d\n", got_signal, now.sa_handler == SIG_DFL);
}
/* The same, but the handler is installed again before the unblocked use: inconsistent. */
static void signal_resethand_reinstalled(void) {
  signal_resethand_ok();
  install(SIGUSR1, handler_takes_a);
  pthread_mutex_lock(&lock_a);
  pthread_mutex_unlock(&lock_a);
}

/* --- fork -------------------------------------------------------------------------------------- */
static int wait_child(pid_t pid) {
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
static void fork_ok(void) {
  pthread_t t;
  start_b_holder(&t); /* lock_b is held by another thread across the fork */
  pthread_mutex_lock(&lock_a); /* held by the forking thread: the child keeps it */
  pid_t pid = fork();
  if (pid == 0) {
    pthread_mutex_unlock(&lock_a);           /* balanced in the child */
    if (pthread_mutex_trylock(&lock_b) == 0) /* lock_b's holder does not exist here */
      pthread_mutex_unlock(&lock_b);
    lock2(&lock_c, &lock_d);
    _exit(0);
  }
  pthread_mutex_unlock(&lock_a);
  stop_b_holder(t);
  printf("child=%d\n", wait_child(pid));
}
static void fork_child_abba(void) {
  pid_t pid = fork();
  if (pid == 0) {
    take_ab();
    on_thread(take_ba);
    exit(0);
  }
  int code = wait_child(pid);
  printf("child=%d\n", code);
  exit(code);
}

/* fork + exec: the child takes lock_a -> lock_b, then execs this program, whose new image takes
 * lock_b -> lock_a. Two processes: nothing live; recorded, the two orders meet offline only if
 * the child's events before exec reached its log. */
static const char *self_path;
static void exec_take_ba(void) { take_ba(); }
static void fork_exec_abba(void) {
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    take_ab();
    execl(self_path, self_path, "exec_take_ba", (char *)NULL);
    _exit(127);
  }
  printf("child=%d\n", wait_child(pid));
}

/* --- many short-lived locks ------------------------------------------------------------------- */
static long rss_kib(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kib = -1;
  while (f && fgets(line, sizeof line, f)) {
    if (strncmp(line, "VmRSS:", 6) == 0) kib = atol(line + 6);
  }
  if (f) fclose(f);
  return kib;
}
static void many_short_lived_locks_ok(void) {
  long before = 0;
  for (int i = 0; i < 400000; i++) {
    pthread_mutex_t *m = malloc(sizeof *m + (i % 7) * 16);
    pthread_mutex_init(m, NULL);
    pthread_mutex_lock(&lock_a);
    pthread_mutex_lock(m);
    pthread_mutex_unlock(m);
    pthread_mutex_unlock(&lock_a);
    pthread_mutex_destroy(m);
    free(m);
    if (i == 100000) before = rss_kib();
  }
  long after = rss_kib();
  printf("rss growth %ld KiB\n", after - before);
}

/* Records many events, then dies by SIGKILL: no exit handler, no flush. */
/* Recording while threads are still locking at exit: two workers take lock_a then lock_b in a
 * loop (main's order too) and are still running when main returns; each thread's complete
 * records must reach the log. */
static void *order_worker(void *arg) {
  (void)arg;
  for (;;) lock2(&lock_a, &lock_b);
  return NULL;
}
static void threads_running_at_exit_ok(void) {
  pthread_t t[2];
  for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, order_worker, NULL);
  usleep(200 * 1000);
  take_ab();
}

/* 48 new dependencies (pool[0] -> pool[i]), each captured from the same call path: one stack. */
static pthread_mutex_t dep_pool[49] = {[0 ... 48] = PTHREAD_MUTEX_INITIALIZER};
static void many_dependencies_one_path_ok(void) {
  for (int i = 1; i < 49; i++) lock2(&dep_pool[0], &dep_pool[i]);
}

/* Statically initialised locks in two arrays, first seen alternately: each is its own class,
 * named after its array and index (the symbolizer's last-symbol cache must not name one array's
 * element after the other). */
static pthread_mutex_t left_locks[4] = {[0 ... 3] = PTHREAD_MUTEX_INITIALIZER};
static pthread_mutex_t right_locks[4] = {[0 ... 3] = PTHREAD_MUTEX_INITIALIZER};
static void static_arrays_abba(void) {
  lock2(&left_locks[0], &left_locks[3]);
  lock2(&left_locks[1], &right_locks[2]);
  lock2(&right_locks[0], &left_locks[2]);
  lock2(&right_locks[2], &left_locks[1]);
}

static void killed_after_locks(void) {
  for (int i = 0; i < 100000; i++) lock2(&lock_a, &lock_b);
  kill(getpid(), SIGKILL);
}

/* Allocation-heavy threads around a lock: with an allocator that locks inside malloc
 * (jemalloc preloaded next to the shim) this must neither hang nor report. */
static void *malloc_worker(void *arg) {
  for (int i = 0; i < 20000; i++) {
    char *p = malloc(16 + (size_t)(i % 4000));
    pthread_mutex_lock(&lock_a);
    memset(p, 1, 16);
    pthread_mutex_unlock(&lock_a);
    free(p);
  }
  return arg;
}
static void malloc_threads_ok(void) {
  pthread_t t[4];
  for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, malloc_worker, NULL);
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  take_ab();
}

/* --- Recorded order across threads (band stamps, docs/log-format.md "Ordering") -------------
 * Threads hand over with semaphores, which lockgraph does not see: only the stamps order the
 * threads' records in the log. */
static sem_t band_go, band_done;

/* A lock at a heap address (no symbol: its class is its init site) that one thread uses on the
 * fast path thousands of times (more than one band of stamps) and another destroys and
 * initialises again at another site, then takes in the opposite order against lock_a. The two
 * inits are two classes: nothing to report, live or offline. Replayed out of order (a fast
 * acquisition of the first thread after the re-init), it would be an A -> site-2 dependency and
 * a false circular report, or a use of a destroyed lock. */
static pthread_mutex_t *band_slot;
static NOINLINE void band_init_first(void) { pthread_mutex_init(band_slot, NULL); }
static NOINLINE void band_init_second(void) { pthread_mutex_init(band_slot, NULL); }
static void *band_fast_user(void *arg) {
  for (int i = 0; i < 3000; i++) lock2(&lock_a, band_slot);
  sem_post(&band_go);
  sem_wait(&band_done); /* still alive (no thread exit) while the other thread goes on */
  return arg;
}
static void *band_reinit(void *arg) {
  sem_wait(&band_go);
  pthread_mutex_destroy(band_slot);
  band_init_second();
  lock2(band_slot, &lock_a);
  sem_post(&band_done);
  return arg;
}
static void band_reinit_other_thread_ok(void) {
  band_slot = malloc(sizeof *band_slot);
  band_init_first();
  sem_init(&band_go, 0, 0);
  sem_init(&band_done, 0, 0);
  pthread_t t[2];
  pthread_create(&t[0], NULL, band_fast_user, NULL);
  pthread_create(&t[1], NULL, band_reinit, NULL);
  pthread_join(t[0], NULL);
  pthread_join(t[1], NULL);
}

/* One thread validates lock_a -> lock_b (the dependency's first acquisition, its site and
 * stack) while the other waits; the other then takes the same chain through lock2, whose call
 * sites it already knows, so its acquisitions go the fast path on the first one (the chain is
 * in the engine's cache). main then takes lock_b -> lock_a: the report quotes the dependency as
 * the first thread recorded it. Replayed out of order (the fast acquisitions first), the
 * dependency would be the second thread's, without its stack: another report text. */
static NOINLINE void band_validate_ab(void) {
  pthread_mutex_lock(&lock_a);
  pthread_mutex_lock(&lock_b);
  pthread_mutex_unlock(&lock_b);
  pthread_mutex_unlock(&lock_a);
}
static void *band_validator(void *arg) {
  band_validate_ab();
  sem_post(&band_go);
  return arg;
}
static void *band_follower(void *arg) {
  for (int i = 0; i < 10; i++) lock2(&lock_c, &lock_d); /* lock2's call sites, known */
  sem_post(&band_done);
  sem_wait(&band_go);
  for (int i = 0; i < 2000; i++) lock2(&lock_a, &lock_b);
  return arg;
}
static void band_chain_handoff(void) {
  sem_init(&band_go, 0, 0);
  sem_init(&band_done, 0, 0);
  pthread_t t[2];
  pthread_create(&t[0], NULL, band_follower, NULL);
  sem_wait(&band_done); /* the follower is ready before the chain is validated */
  pthread_create(&t[1], NULL, band_validator, NULL);
  pthread_join(t[0], NULL);
  pthread_join(t[1], NULL);
  take_ba();
}

struct entry {
  const char *name;
  body_fn fn;
};
/* Stack captures block every signal and answer libunwind's own mask calls without the kernel:
 * after a report (stacks captured for two new dependencies and the finding) the thread's mask
 * must be exactly what the program set, and a signal it left unblocked is still delivered. */
static void note_signal(int sig) {
  (void)sig;
  got_signal = 1;
}
static void capture_keeps_signal_mask(void) {
  install(SIGUSR1, note_signal);
  block(SIGUSR2, 1);
  take_ab();
  take_ba();
  sigset_t cur;
  sigemptyset(&cur);
  pthread_sigmask(SIG_BLOCK, NULL, &cur);
  const int ok = sigismember(&cur, SIGUSR2) == 1 && sigismember(&cur, SIGUSR1) == 0 &&
                 sigismember(&cur, SIGTERM) == 0;
  raise(SIGUSR1);
  printf("mask ok=%d got=%d\n", ok, got_signal);
}

static const struct entry entries[] = {
#define E(x) {#x, x}
    E(abba), E(abba_ok), E(cycle3), E(cycle3_ok), E(cycle4), E(cycle4_ok),
    E(trylock_reverse_ok), E(timedlock_abba), E(timedlock_ok), E(timedlock_timeout_ok),
    E(condvar_inversion), E(condvar_ok), E(recursive_ok), E(errorcheck_relock),
    E(rwlock_read_read_ok), E(rwlock_writer_pref_read_read), E(rwlock_write_inversion),
    E(spin_abba), E(spin_ok), E(array_ascending_ok), E(array_inversion), E(address_reuse_ok),
    E(address_reuse_same_class), E(unlock_by_non_owner), E(unlock_by_owner_ok), E(destroy_held),
    E(destroy_unseen_ok), E(thread_exit_holding), E(thread_exit_ok), E(exit_holding_lock_ok),
    E(signal_inconsistent), E(signal_inconsistent_blocked_ok), E(capture_keeps_signal_mask), E(signal_safe_to_unsafe),
    E(signal_safe_to_unsafe_blocked_ok), E(signal_irq_inversion), E(signal_no_handler_ok), E(signal_bsd_inconsistent),
    E(fork_ok), E(fork_child_abba), E(fork_exec_abba), E(exec_take_ba), E(many_short_lived_locks_ok), E(killed_after_locks),
    E(threads_running_at_exit_ok), E(many_dependencies_one_path_ok), E(static_arrays_abba),
    E(malloc_threads_ok), E(use_after_destroy), E(destroy_reinit_ok), E(bad_unlock_two_classes),
    E(sigsuspend_handler_ok), E(pselect_handler_ok), E(ppoll_handler_ok), E(epoll_pwait_handler_ok),
    E(sigsuspend_handler_then_unblocked), E(sigwait_family_ok), E(signal_resethand_ok),
    E(signal_resethand_reinstalled), E(band_reinit_other_thread_ok), E(band_chain_handoff),
#undef E
};

int main(int argc, char **argv) {
  self_path = argv[0];
  if (argc < 2) {
    fprintf(stderr, "usage: %s CASE\n", argv[0]);
    return 2;
  }
  for (size_t i = 0; i < sizeof entries / sizeof entries[0]; i++) {
    if (strcmp(entries[i].name, argv[1]) == 0) {
      entries[i].fn();
      printf("%s: done\n", argv[1]);
      return 0;
    }
  }
  fprintf(stderr, "unknown case %s\n", argv[1]);
  return 2;
}
