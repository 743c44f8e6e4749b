/* Reader/writer locks: a read-read "inversion" is safe, a read-write one is not.
 *
 * Two rwlocks, routes and config (glibc's default rwlock prefers readers, so a read lock never
 * waits behind a queued writer: lockdep's recursive read). lookup() reads routes then config;
 * report() reads config then routes. That is an inversion, but of two reads of reader-preferring
 * locks: each thread can always get its second read, so it cannot deadlock, and lockgraph (like
 * lockdep since its recursive-read rules) stays silent about it.
 *
 * reload() writes config, then routes, nested. Now a lookup() holding routes for read waits for
 * config's writer, and reload() waits for routes' reader: deadlock. The cycle routes -> config ->
 * routes now has a writer on each side, and lockgraph reports it.
 *
 * The twin (-DLG_EXAMPLE_FIXED) keeps the safe read-read inversion and has reload() take the two
 * write locks one after the other, never nested: silent.
 *
 * A plain pthread program: run it as `lockgraph run -- build/examples/rwlock_readers`.
 */
#include <pthread.h>
#include <stdio.h>

static pthread_rwlock_t routes = PTHREAD_RWLOCK_INITIALIZER;
static pthread_rwlock_t config = PTHREAD_RWLOCK_INITIALIZER;
static int route_count = 3, max_routes = 8;

static void *lookup(void *arg) {
  (void)arg;
  pthread_rwlock_rdlock(&routes);
  pthread_rwlock_rdlock(&config);
  int ok = route_count <= max_routes;
  pthread_rwlock_unlock(&config);
  pthread_rwlock_unlock(&routes);
  return ok ? NULL : arg;
}

static void *report(void *arg) {
  (void)arg;
  pthread_rwlock_rdlock(&config); /* the other order: safe, both are reads */
  pthread_rwlock_rdlock(&routes);
  printf("%d of %d routes\n", route_count, max_routes);
  pthread_rwlock_unlock(&routes);
  pthread_rwlock_unlock(&config);
  return NULL;
}

static void *reload(void *arg) {
  (void)arg;
#ifndef LG_EXAMPLE_FIXED
  pthread_rwlock_wrlock(&config);
  pthread_rwlock_wrlock(&routes); /* BUG: config -> routes with writers, against lookup() */
  max_routes = 16;
  route_count = 4;
  pthread_rwlock_unlock(&routes);
  pthread_rwlock_unlock(&config);
#else
  pthread_rwlock_wrlock(&config);
  max_routes = 16;
  pthread_rwlock_unlock(&config);
  pthread_rwlock_wrlock(&routes);
  route_count = 4;
  pthread_rwlock_unlock(&routes);
#endif
  return NULL;
}

int main(void) {
  void *(*steps[])(void *) = {lookup, report, reload};
  for (unsigned i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
    pthread_t t;
    pthread_create(&t, NULL, steps[i], NULL);
    pthread_join(t, NULL);
  }
  return 0;
}
