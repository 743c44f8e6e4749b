/* A connection pool whose get and drop take two locks in opposite orders around a condition
 * variable.
 *
 * A client holds its session's lock while it asks the pool for a connection; pool_get() takes
 * pool_lock and, while the pool is empty, waits on the pool's condition variable. The wait releases
 * pool_lock but not the session lock: session.lock -> pool_lock. When a connection breaks,
 * pool_drop() takes pool_lock and then the lock of the session using it, to detach it:
 * pool_lock -> session.lock. If a connection breaks while its would-be client waits, the dropper
 * blocks on the session lock the waiter holds, and the waiter waits for a signal the dropper never
 * sends: deadlock. This program runs the two paths one after the other, so it never hangs;
 * lockgraph still sees both orders.
 *
 * The twin (-DLG_EXAMPLE_FIXED) has pool_drop() take the connection out of the pool under
 * pool_lock and detach the session after unlocking it: silent.
 *
 * A plain pthread program: run it as `lockgraph run -- build/examples/pool_condvar`.
 */
#include <pthread.h>
#include <stdio.h>

#define NCONN 4

struct session;

struct conn {
  int id;
  struct session *user;
};

struct session {
  pthread_mutex_t lock;
  struct conn *conn;
  int requests;
};

static struct conn conns[NCONN];
static struct conn *free_list[NCONN];
static int nfree;
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cond = PTHREAD_COND_INITIALIZER;
static struct session session = {PTHREAD_MUTEX_INITIALIZER, NULL, 0};

/* Waits for a free connection. Called with the session locked. */
static struct conn *pool_get(struct session *s) {
  pthread_mutex_lock(&pool_lock);
  while (nfree == 0) pthread_cond_wait(&pool_cond, &pool_lock);
  struct conn *c = free_list[--nfree];
  c->user = s;
  pthread_mutex_unlock(&pool_lock);
  return c;
}

/* Returns a connection to the pool and wakes a waiter. */
static void pool_put(struct conn *c) {
  pthread_mutex_lock(&pool_lock);
  c->user = NULL;
  free_list[nfree++] = c;
  pthread_cond_signal(&pool_cond);
  pthread_mutex_unlock(&pool_lock);
}

/* A connection broke: take it out of the pool and detach its session. */
static void pool_drop(struct conn *c) {
  pthread_mutex_lock(&pool_lock);
  for (int i = 0; i < nfree; i++) {
    if (free_list[i] == c) free_list[i] = free_list[--nfree];
  }
  struct session *s = c->user;
#ifndef LG_EXAMPLE_FIXED
  if (s != NULL) {
    pthread_mutex_lock(&s->lock); /* BUG: pool_lock -> session lock */
    s->conn = NULL;
    pthread_mutex_unlock(&s->lock);
  }
  pthread_mutex_unlock(&pool_lock);
#else
  c->user = NULL;
  pthread_mutex_unlock(&pool_lock);
  if (s != NULL) {
    pthread_mutex_lock(&s->lock);
    if (s->conn == c) s->conn = NULL;
    pthread_mutex_unlock(&s->lock);
  }
#endif
}

static void *client(void *arg) {
  struct session *s = arg;
  pthread_mutex_lock(&s->lock);
  s->conn = pool_get(s); /* may wait on pool_cond, holding s->lock */
  s->requests++;
  pthread_mutex_unlock(&s->lock);
  return NULL;
}

int main(void) {
  for (int i = 0; i < NCONN; i++) conns[i].id = i;

  /* The client starts with the pool empty and waits on the condition variable ... */
  pthread_t t;
  pthread_create(&t, NULL, client, &session);
  /* ... until a connection is handed in. */
  pool_put(&conns[0]);
  pthread_join(t, NULL);
  /* Later the connection breaks while the session still uses it. */
  pool_drop(&conns[0]);

  printf("session made %d request(s), connection %s\n", session.requests,
         session.conn == NULL ? "detached" : "still attached");
  return 0;
}
