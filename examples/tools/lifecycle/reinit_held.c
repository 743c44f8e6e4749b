/* Lifetime check for examples/tools/compare.sh: a held mutex initialised again. */
#include <pthread.h>
#include <stdio.h>

static pthread_mutex_t stats_lock;
static long hits;

static void stats_reset(void) {
  pthread_mutex_init(&stats_lock, NULL); /* "reset" while a caller holds it */
  hits = 0;
}

int main(void) {
  pthread_mutex_init(&stats_lock, NULL);
  pthread_mutex_lock(&stats_lock);
  hits++;
  stats_reset();
  pthread_mutex_unlock(&stats_lock);
  printf("hits: %ld\n", hits);
  return 0;
}
