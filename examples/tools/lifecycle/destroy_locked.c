/* Lifetime check for examples/tools/compare.sh: a mutex destroyed while held. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

struct session {
  pthread_mutex_t lock;
  int open;
};

int main(void) {
  struct session *s = malloc(sizeof(*s));
  pthread_mutex_init(&s->lock, NULL);
  pthread_mutex_lock(&s->lock);
  s->open = 0;
  printf("destroy: %d\n", pthread_mutex_destroy(&s->lock)); /* still held */
  free(s);
  return 0;
}
