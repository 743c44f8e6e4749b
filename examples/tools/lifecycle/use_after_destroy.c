/* Lifetime check for examples/tools/compare.sh: a mutex locked after it was destroyed. */
#include <pthread.h>
#include <stdio.h>

static pthread_mutex_t cache_lock;
static int cache_entries;

int main(void) {
  pthread_mutex_init(&cache_lock, NULL);
  pthread_mutex_destroy(&cache_lock); /* shutdown */
  pthread_mutex_lock(&cache_lock);    /* a late user */
  cache_entries++;
  pthread_mutex_unlock(&cache_lock);
  printf("entries: %d\n", cache_entries);
  return 0;
}
