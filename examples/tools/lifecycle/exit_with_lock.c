/* Lifetime check for examples/tools/compare.sh: a thread returns holding a lock. */
#include <pthread.h>
#include <stdio.h>

static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static int queued;

static void *worker(void *arg) {
  pthread_mutex_lock(&queue_lock);
  if (arg != NULL) return NULL; /* early return: queue_lock stays held */
  queued++;
  pthread_mutex_unlock(&queue_lock);
  return NULL;
}

int main(void) {
  pthread_t t;
  pthread_create(&t, NULL, worker, &queued);
  pthread_join(t, NULL);
  printf("queued: %d\n", queued);
  return 0;
}
