/* A connection pool whose get and put take two locks in opposite orders around a condition
 * variable.
 *
 * pool_get() waits on the pool's condition variable until a connection is free, then, still
 * holding pool_lock, locks the connection to claim it: pool_lock -> conn lock. pool_put() is
 * called with the connection locked (the caller just finished with it) and takes pool_lock to
 * return it and signal the waiters: conn lock -> pool_lock. A getter woken by the signal
 * re-acquires pool_lock inside pthread_cond_wait() and then wants a connection lock that a putter
 * holds while it waits for pool_lock: deadlock. Here a producer thread puts and a consumer gets,
 * in turn, so the program never hangs; lockgraph still sees both orders.
 *
 * The twin (-DLG_EXAMPLE_FIXED) releases the connection lock before pool_put() takes pool_lock.
 *
 * A plain pthread program: run it as `lockgraph run -- build/examples/pool_condvar`.
 */
#include <pthread.h>
#include <stdio.h>

#define NCONN 4

struct conn {
  pthread_mutex_t lock;
  int id;
  int uses;
};

static struct conn conns[NCONN];
static struct conn *free_list[NCONN];
static int nfree;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cond = PTHREAD_COND_INITIALIZER;

/* Returns a connection, locked. */
static struct conn *pool_get(void) {
  pthread_mutex_lock(&pool_lock);
  while (nfree == 0) pthread_cond_wait(&pool_cond, &pool_lock);
  struct conn *c = free_list[--nfree];
#ifndef LG_EXAMPLE_FIXED
  pthread_mutex_lock(&c->lock); /* BUG: pool_lock -> conn lock */
  pthread_mutex_unlock(&pool_lock);
#else
  pthread_mutex_unlock(&pool_lock);
  pthread_mutex_lock(&c->lock); /* the connection is ours already; no need for pool_lock */
#endif
  return c;
}

/* Takes a locked connection back. */
static void pool_put(struct conn *c) {
#ifdef LG_EXAMPLE_FIXED
  pthread_mutex_unlock(&c->lock);
#endif
  pthread_mutex_lock(&pool_lock); /* buggy: conn lock -> pool_lock */
  free_list[nfree++] = c;
  pthread_cond_signal(&pool_cond);
  pthread_mutex_unlock(&pool_lock);
#ifndef LG_EXAMPLE_FIXED
  pthread_mutex_unlock(&c->lock);
#endif
}

static void *consumer(void *arg) {
  (void)arg;
  struct conn *c = pool_get();
  c->uses++;
  pthread_mutex_unlock(&c->lock);
  return NULL;
}

int main(void) {
  for (int i = 0; i < NCONN; i++) {
    pthread_mutex_init(&conns[i].lock, NULL);
    conns[i].id = i;
  }

  /* The consumer starts with the pool empty and waits on the condition variable. */
  pthread_t t;
  pthread_create(&t, NULL, consumer, NULL);

  /* The producer hands in one connection, locked as a caller finishing with it would have it. */
  pthread_mutex_lock(&conns[0].lock);
  pool_put(&conns[0]);
  pthread_join(t, NULL);

  printf("connection 0 used %d time(s)\n", conns[0].uses);
  return 0;
}
