/* Dining philosophers: five forks of one lock class, each philosopher takes left then right.
 *
 * Philosopher i takes fork i, then fork (i + 1) % 5. If all five sit down at once, each holds
 * its left fork and waits for its right one forever. Every fork is initialised at the same
 * pthread_mutex_init() call, so all forks are one lock class: lockdep would only say "recursive
 * locking" for any fork-under-fork, fixed or not. lockgraph follows the instances within the
 * class and reports the cycle fork0 -> fork1 -> ... -> fork4 -> fork0, and nothing for an order
 * that cannot deadlock. The philosophers here eat one at a time, so the program never hangs.
 *
 * The twin (-DLG_EXAMPLE_FIXED) has every philosopher take the lower-numbered fork first (the
 * last one takes fork 0, then fork 4): the instance order is acyclic, and it is silent.
 *
 * A plain pthread program: run it as `lockgraph run -- build/examples/dining_philosophers`.
 */
#include <pthread.h>
#include <stdio.h>

#define N 5

static pthread_mutex_t forks[N];
static int meals[N];

static void *philosopher(void *arg) {
  int i = (int)(long)arg;
  int left = i, right = (i + 1) % N;
#ifndef LG_EXAMPLE_FIXED
  int first = left, second = right; /* BUG: the last philosopher closes the circle */
#else
  int first = left < right ? left : right;
  int second = left < right ? right : left;
#endif
  pthread_mutex_lock(&forks[first]);
  pthread_mutex_lock(&forks[second]);
  meals[i]++;
  pthread_mutex_unlock(&forks[second]);
  pthread_mutex_unlock(&forks[first]);
  return NULL;
}

int main(void) {
  for (int i = 0; i < N; i++) pthread_mutex_init(&forks[i], NULL);
  for (long i = 0; i < N; i++) {
    pthread_t t;
    pthread_create(&t, NULL, philosopher, (void *)i);
    pthread_join(t, NULL);
  }
  for (int i = 0; i < N; i++) printf("philosopher %d ate %d time(s)\n", i, meals[i]);
  for (int i = 0; i < N; i++) pthread_mutex_destroy(&forks[i]);
  return 0;
}
