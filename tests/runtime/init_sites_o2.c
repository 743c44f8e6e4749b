/* Init-site classes under -O2 (`runtime_init_sites_o2 CASE`): one pthread_mutex_init call in the
 * source must be one lock class however the optimiser copies it (a helper inlined into two
 * callers, an unrolled init loop, two calls on one line). Each inverted case makes a cycle only
 * if its two locks share a class; each _ok twin takes them in one order. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
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

/* A heap lock without an init call (zeroed memory: a default mutex), first taken through a
 * helper inlined into two callers: its class is the helper's, as at -O0. */
static inline __attribute__((always_inline)) void bucket_lock(struct bucket *b) {
  pthread_mutex_lock(&b->lock);
}
static inline __attribute__((always_inline)) void bucket_unlock(struct bucket *b) {
  pthread_mutex_unlock(&b->lock);
}
__attribute__((noinline)) static void fill(struct bucket *b) {
  pthread_mutex_lock(&lock_a);
  bucket_lock(b);
  b->n++;
  bucket_unlock(b);
  pthread_mutex_unlock(&lock_a);
}
__attribute__((noinline)) static void drain(struct bucket *b, int inverted) {
  if (!inverted) pthread_mutex_lock(&lock_a);
  bucket_lock(b);
  b->n--;
  if (inverted) pthread_mutex_lock(&lock_a);
  pthread_mutex_unlock(&lock_a);
  bucket_unlock(b);
}
static void inlined_first_lock(int inverted) {
  /* zeroed heap memory is a default mutex: no init call */
  struct bucket *p1 = malloc(sizeof *p1), *p2 = malloc(sizeof *p2);
  memset(p1, 0, sizeof *p1);
  memset(p2, 0, sizeof *p2);
  fill(p1);
  drain(p2, inverted);
  free(p1);
  free(p2);
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
               {"one_line", one_line}, {"inlined_first_lock", inlined_first_lock}};
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
