/* Half of a cross-process ABBA: built twice, as analyzer_cross_ab (takes lock_a then lock_b) and
 * analyzer_cross_ba (lock_b then lock_a). Each run is consistent on its own; only an analysis of
 * both runs' logs sees the cycle. The locks are globals, so their classes are named (and
 * identified across processes) by their symbols. */
#include <pthread.h>
#include <stdio.h>

pthread_mutex_t lock_a = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t lock_b = PTHREAD_MUTEX_INITIALIZER;

static void take_in_order(pthread_mutex_t *first, pthread_mutex_t *second) {
  pthread_mutex_lock(first);
  pthread_mutex_lock(second);
  pthread_mutex_unlock(second);
  pthread_mutex_unlock(first);
}

int main(void) {
#ifdef CROSS_ORDER_BA
  take_in_order(&lock_b, &lock_a);
#else
  take_in_order(&lock_a, &lock_b);
#endif
  puts("done");
  return 0;
}
