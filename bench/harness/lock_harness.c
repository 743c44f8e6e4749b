/* Whole-program lock benchmark: the same binary runs natively, under `lockgraph run`, under
 * Helgrind, and (built with -fsanitize=thread) under ThreadSanitizer; scripts/bench.sh runs them
 * side by side. Each mode times a steady-state loop of plain pthread calls, prints one result
 * line, and then plants one lock-order inversion among its own locks (outside the timed loop),
 * so the tool under test can show whether it still reports after the loop.
 *
 * Usage: lock_harness MODE [ITERATIONS] [--no-inversion]
 * Modes (one "op" each):
 *   flat     one mutex: lock+unlock pair
 *   flat-mt  the same after the process has started (and joined) one thread: glibc leaves out
 *            the lock prefix of its atomics while a process has never had a second thread, so
 *            this is the pair a threaded test binary pays (the "about 17 ns")
 *   nested   four mutexes taken in a fixed order and released in reverse: one chain of 4
 *   nested-mt the same after the process has started (and joined) one thread, as flat-mt
 *   many     a pool of 10,000 statically initialised mutexes (each its own lock class): random
 *            pairs (i, j), i < j, j within 8 of i, taken in index order: one pair. Prints two
 *            lines: many-learn (the first N pairs, where every pair is new) and many (the next
 *            N, steady state); then the very first pair is taken in the opposite order
 *   many-ordered  the same pool, but every possible pair is first taken once in index order
 *            (many-ordered-learn: one op per pair), then N random pairs from the same
 *            generator (many-ordered: the steady state with every pair known)
 *   rwlock   one rwlock: rdlock+unlock pair
 *   contended two threads on one mutex: lock+unlock pair (wall time / all pairs)
 *   private  two threads, each on its own mutex: lock+unlock pair (wall time / one thread's
 *            pairs; natively about the flat figure when the two threads really run in parallel)
 * Output: one line per mode (two for many) on stdout,
 *   "mode=M iterations=N ns_per_op=X cpu_ns_per_op=C seconds=S maxrss_kb=K"
 * where ns_per_op is wall time per op and cpu_ns_per_op the process's CPU time per lock pair
 * (per chain for nested) summed over its threads. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define POOL_SIZE 10000
#define POOL_SPAN 8 /* the second lock of a pair is at most this far after the first */

static pthread_mutex_t flat_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t inversion_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t chain_mu[4] = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
                                      PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER};
/* 128 bytes per thread (two cache lines: the adjacent-line prefetcher pairs them): natively
 * the two threads share nothing. */
struct PrivateLock {
  pthread_mutex_t mu;
  uint64_t count;
} __attribute__((aligned(128)));
static struct PrivateLock thread_lock[2] = {{PTHREAD_MUTEX_INITIALIZER, 0},
                                            {PTHREAD_MUTEX_INITIALIZER, 0}};
static pthread_rwlock_t rw = PTHREAD_RWLOCK_INITIALIZER;
static pthread_mutex_t pool[POOL_SIZE];

/* Keeps the compiler from merging or dropping critical sections. */
static volatile uint64_t sink;

static double Clock(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Process CPU time at the last Now(): on a loaded machine wall time also counts waiting for a
 * core, CPU time does not. */
static double cpu_at_now;
static double cpu_at_start;

static double Now(void) {
  cpu_at_now = Clock(CLOCK_PROCESS_CPUTIME_ID);
  return Clock(CLOCK_MONOTONIC);
}

/* Locks `first` then `second` and releases both: with the opposite order taken before, this is
 * the planted inversion. */
static void TakeInOrder(pthread_mutex_t* first, pthread_mutex_t* second) {
  pthread_mutex_lock(first);
  pthread_mutex_lock(second);
  sink++;
  pthread_mutex_unlock(second);
  pthread_mutex_unlock(first);
}

static void RunFlat(long n) {
  for (long i = 0; i < n; ++i) {
    pthread_mutex_lock(&flat_mu);
    sink++;
    pthread_mutex_unlock(&flat_mu);
  }
}

static void* Nothing(void* arg) { return arg; }

/* The -mt modes: from here on glibc's atomics carry the lock prefix, as in any threaded program. */
static int StartAndJoinThread(void) {
  pthread_t t;
  if (pthread_create(&t, NULL, Nothing, NULL) != 0 || pthread_join(t, NULL) != 0) {
    fprintf(stderr, "lock_harness: pthread_create failed\n");
    return 0;
  }
  return 1;
}

static void InvertFlat(void) {
  TakeInOrder(&flat_mu, &inversion_mu);
  TakeInOrder(&inversion_mu, &flat_mu);
}

static void RunNested(long n) {
  for (long i = 0; i < n; ++i) {
    pthread_mutex_lock(&chain_mu[0]);
    pthread_mutex_lock(&chain_mu[1]);
    pthread_mutex_lock(&chain_mu[2]);
    pthread_mutex_lock(&chain_mu[3]);
    sink++;
    pthread_mutex_unlock(&chain_mu[3]);
    pthread_mutex_unlock(&chain_mu[2]);
    pthread_mutex_unlock(&chain_mu[1]);
    pthread_mutex_unlock(&chain_mu[0]);
  }
}

static void InvertNested(void) { TakeInOrder(&chain_mu[3], &chain_mu[0]); }

/* A small xorshift generator: deterministic pairs, the same in every run and tool. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t Next(void) {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

static int first_a = -1, first_b = -1;

static void PoolPair(int* a, int* b) {
  const uint64_t r = Next();
  int i = (int)(r % (POOL_SIZE - POOL_SPAN));
  int j = i + 1 + (int)((r >> 32) % POOL_SPAN);
  *a = i;
  *b = j;
}

static void RunMany(long n) {
  for (long k = 0; k < n; ++k) {
    int a, b;
    PoolPair(&a, &b);
    if (first_a < 0) {
      first_a = a;
      first_b = b;
    }
    pthread_mutex_lock(&pool[a]);
    pthread_mutex_lock(&pool[b]);
    sink++;
    pthread_mutex_unlock(&pool[b]);
    pthread_mutex_unlock(&pool[a]);
  }
}

/* Every pair RunMany can draw, once, in index order: returns the number of pairs. */
static long LearnPoolInOrder(void) {
  long pairs = 0;
  for (int i = 0; i < POOL_SIZE - POOL_SPAN; ++i) {
    for (int d = 1; d <= POOL_SPAN; ++d) {
      pthread_mutex_lock(&pool[i]);
      pthread_mutex_lock(&pool[i + d]);
      sink++;
      pthread_mutex_unlock(&pool[i + d]);
      pthread_mutex_unlock(&pool[i]);
      ++pairs;
    }
  }
  if (first_a < 0) {
    first_a = 0;
    first_b = 1;
  }
  return pairs;
}

static void InvertMany(void) { TakeInOrder(&pool[first_b], &pool[first_a]); }

static void RunRwlock(long n) {
  for (long i = 0; i < n; ++i) {
    pthread_rwlock_rdlock(&rw);
    sink++;
    pthread_rwlock_unlock(&rw);
  }
}

static void InvertRwlock(void) {
  pthread_rwlock_wrlock(&rw);
  pthread_mutex_lock(&inversion_mu);
  pthread_mutex_unlock(&inversion_mu);
  pthread_rwlock_unlock(&rw);
  pthread_mutex_lock(&inversion_mu);
  pthread_rwlock_wrlock(&rw);
  pthread_rwlock_unlock(&rw);
  pthread_mutex_unlock(&inversion_mu);
}

struct Worker {
  pthread_mutex_t* mu;
  volatile uint64_t* count; /* written inside the critical section */
  long n;
};

static void* WorkerMain(void* arg) {
  const struct Worker* w = (const struct Worker*)arg;
  for (long i = 0; i < w->n; ++i) {
    pthread_mutex_lock(w->mu);
    (*w->count)++;
    pthread_mutex_unlock(w->mu);
  }
  return NULL;
}

static void RunTwoThreads(pthread_mutex_t* mu0, volatile uint64_t* count0, pthread_mutex_t* mu1,
                          volatile uint64_t* count1, long n) {
  pthread_t t[2];
  struct Worker w[2] = {{mu0, count0, n}, {mu1, count1, n}};
  for (int i = 0; i < 2; ++i) {
    if (pthread_create(&t[i], NULL, WorkerMain, &w[i]) != 0) {
      fprintf(stderr, "lock_harness: pthread_create failed\n");
      exit(2);
    }
  }
  for (int i = 0; i < 2; ++i) pthread_join(t[i], NULL);
}

/* `cpu_ops`: lock pairs done in the phase by all threads (CPU time is summed over threads). */
static void PrintResult(const char* mode, long n, long ops, long cpu_ops, double start,
                        double end) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("mode=%s iterations=%ld ns_per_op=%.2f cpu_ns_per_op=%.2f seconds=%.3f maxrss_kb=%ld\n",
         mode, n, (end - start) * 1e9 / (double)ops,
         (cpu_at_now - cpu_at_start) * 1e9 / (double)cpu_ops, end - start, ru.ru_maxrss);
  fflush(stdout);
}

static void InvertThreads(void) {
  TakeInOrder(&thread_lock[0].mu, &thread_lock[1].mu);
  TakeInOrder(&thread_lock[1].mu, &thread_lock[0].mu);
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr,
            "usage: lock_harness flat|flat-mt|nested|nested-mt|many|many-ordered|rwlock|contended|private [ITERATIONS] "
            "[--no-inversion]\n");
    return 2;
  }
  const char* mode = argv[1];
  long n = 0;
  int invert = 1;
  for (int i = 2; i < argc; ++i) {
    if (strcmp(argv[i], "--no-inversion") == 0) invert = 0;
    else n = atol(argv[i]);
  }
  for (int i = 0; i < POOL_SIZE; ++i) {
    /* Static initialisation: each pool element is its own object (and lock class). */
    static const pthread_mutex_t kInit = PTHREAD_MUTEX_INITIALIZER;
    memcpy(&pool[i], &kInit, sizeof kInit);
  }

  long ops = n;
  double start = 0, end = 0;
  void (*inversion)(void) = NULL;
  if (strcmp(mode, "flat") == 0) {
    if (n <= 0) n = ops = 10000000;
    RunFlat(1000); /* warm-up: first sight of the lock, chain cache */
    start = Now();
    cpu_at_start = cpu_at_now;
    RunFlat(n);
    end = Now();
    inversion = InvertFlat;
  } else if (strcmp(mode, "flat-mt") == 0) {
    if (!StartAndJoinThread()) return 2;
    if (n <= 0) n = ops = 10000000;
    RunFlat(1000);
    start = Now();
    cpu_at_start = cpu_at_now;
    RunFlat(n);
    end = Now();
    inversion = InvertFlat;
  } else if (strcmp(mode, "nested") == 0 || strcmp(mode, "nested-mt") == 0) {
    if (strcmp(mode, "nested-mt") == 0 && !StartAndJoinThread()) return 2;
    if (n <= 0) n = ops = 4000000;
    RunNested(1000);
    start = Now();
    cpu_at_start = cpu_at_now;
    RunNested(n);
    end = Now();
    inversion = InvertNested;
  } else if (strcmp(mode, "many") == 0) {
    if (n <= 0) n = ops = 2000000;
    /* Two phases of n pairs each. "many-learn": not warmed up, so the first pair is the first
     * dependency the tool ever sees, and the phase includes the first sight of every pool lock
     * and of (nearly) every one of the POOL_SIZE * POOL_SPAN possible pairs. "many": the next n
     * pairs from the same generator, the steady state. */
    start = Now();
    cpu_at_start = cpu_at_now;
    RunMany(n);
    end = Now();
    PrintResult("many-learn", n, n, n, start, end);
    start = Now();
    cpu_at_start = cpu_at_now;
    RunMany(n);
    end = Now();
    inversion = InvertMany;
  } else if (strcmp(mode, "many-ordered") == 0) {
    if (n <= 0) n = ops = 2000000;
    start = Now();
    cpu_at_start = cpu_at_now;
    const long pairs = LearnPoolInOrder();
    end = Now();
    PrintResult("many-ordered-learn", pairs, pairs, pairs, start, end);
    start = Now();
    cpu_at_start = cpu_at_now;
    RunMany(n);
    end = Now();
    inversion = InvertMany;
  } else if (strcmp(mode, "rwlock") == 0) {
    if (n <= 0) n = ops = 10000000;
    RunRwlock(1000);
    start = Now();
    cpu_at_start = cpu_at_now;
    RunRwlock(n);
    end = Now();
    inversion = InvertRwlock;
  } else if (strcmp(mode, "contended") == 0) {
    if (n <= 0) n = 2000000;
    ops = 2 * n; /* both threads' pairs */
    RunFlat(1000);
    start = Now();
    cpu_at_start = cpu_at_now;
    RunTwoThreads(&flat_mu, &sink, &flat_mu, &sink, n);
    end = Now();
    inversion = InvertFlat;
  } else if (strcmp(mode, "private") == 0) {
    if (n <= 0) n = ops = 5000000;
    RunTwoThreads(&thread_lock[0].mu, &thread_lock[0].count, &thread_lock[1].mu,
                  &thread_lock[1].count, 1000);
    start = Now();
    cpu_at_start = cpu_at_now;
    RunTwoThreads(&thread_lock[0].mu, &thread_lock[0].count, &thread_lock[1].mu,
                  &thread_lock[1].count, n);
    end = Now();
    inversion = InvertThreads;
  } else {
    fprintf(stderr, "lock_harness: unknown mode '%s'\n", mode);
    return 2;
  }
  PrintResult(mode, n, ops, strcmp(mode, "private") == 0 ? 2 * n : ops, start, end);
  if (invert && inversion != NULL) inversion();
  return 0;
}
