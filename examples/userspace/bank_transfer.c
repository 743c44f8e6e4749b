/* Bank transfer: the classic ABBA deadlock between two accounts.
 *
 * transfer(from, to) locks the source account, then the destination. Alice paying Bob takes
 * alice -> bob; Bob paying Alice takes bob -> alice. Run at the same moment, each thread holds one
 * account and waits for the other forever. This program runs the two transfers one after the
 * other, so it never hangs; `lockgraph run` reports the inverted order anyway.
 *
 * The twin (-DLG_EXAMPLE_FIXED) always locks the account with the lower number first: silent.
 *
 * A plain pthread program: it does not link lockgraph. Run it as
 *   lockgraph run -- build/examples/bank_transfer
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

struct account {
  pthread_mutex_t lock;
  int number;
  long balance;
};

static struct account alice = {PTHREAD_MUTEX_INITIALIZER, 1, 100};
static struct account bob = {PTHREAD_MUTEX_INITIALIZER, 2, 100};

struct transfer {
  struct account *from, *to;
  long amount;
  long rounds;
};

static void transfer(struct account *from, struct account *to, long amount) {
#ifndef LG_EXAMPLE_FIXED
  struct account *first = from, *second = to; /* BUG: the order depends on the direction */
#else
  struct account *first = from->number < to->number ? from : to;
  struct account *second = first == from ? to : from;
#endif
  pthread_mutex_lock(&first->lock);
  pthread_mutex_lock(&second->lock);
  from->balance -= amount;
  to->balance += amount;
  pthread_mutex_unlock(&second->lock);
  pthread_mutex_unlock(&first->lock);
}

static void *teller(void *arg) {
  struct transfer *t = arg;
  for (long i = 0; i < t->rounds; i++) transfer(t->from, t->to, t->amount);
  return NULL;
}

int main(int argc, char **argv) {
  /* An optional round count makes this a lock-heavy workload for measuring overhead. */
  long rounds = argc > 1 ? atol(argv[1]) : 1;
  struct transfer pay_bob = {&alice, &bob, 30, rounds};
  struct transfer pay_alice = {&bob, &alice, 10, rounds};
  pthread_t t;

  pthread_create(&t, NULL, teller, &pay_bob);
  pthread_join(t, NULL);
  pthread_create(&t, NULL, teller, &pay_alice);
  pthread_join(t, NULL);

  printf("alice %ld, bob %ld\n", alice.balance, bob.balance);
  return 0;
}
