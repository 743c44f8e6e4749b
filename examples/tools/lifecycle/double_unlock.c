/* Lifetime check for examples/tools/compare.sh: an error path unlocks twice. */
#include <pthread.h>
#include <stdio.h>

static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;

static int update(int fail) {
  pthread_mutex_lock(&state_lock);
  if (fail) {
    pthread_mutex_unlock(&state_lock);
    goto out;
  }
out:
  pthread_mutex_unlock(&state_lock); /* second unlock on the error path */
  return fail ? -1 : 0;
}

int main(void) {
  printf("update: %d\n", update(1));
  return 0;
}
