/* THP deferred split on a list_lru needs its own lock class.
 *
 * Model of a class-level false alarm from linux-mm: every list_lru initialises its per-node lock
 * at the same spin_lock_init() site, so all list_lru locks share one lock class. When the THP
 * deferred-split queue became a list_lru, its lock started being taken when a large folio is
 * freed from interrupt context, while other list_lrus (the dentry LRU here) take theirs with
 * IRQs on and never from interrupts. Two different locks, no deadlock, but one class: lockdep
 * (and lockgraph) see a lock that is both HARDIRQ-safe and HARDIRQ-unsafe and report
 * "inconsistent lock state". The kernel's fix gives the deferred-split list_lru a dedicated class
 * key; so does the twin (-DLG_EXAMPLE_FIXED), which is silent.
 */
#include <stdio.h>

#include "lockgraph/kernel.h"

struct list_lru_node {
  spinlock_t lock;
  struct list_head list;
  long nr_items;
};

struct list_lru {
  struct list_lru_node node[1]; /* one NUMA node is enough here */
};

/* mm/list_lru.c: one init site for every list_lru's lock, hence one class unless a key is given. */
static void __list_lru_init(struct list_lru *lru, struct lock_class_key *key, const char *key_name) {
  spin_lock_init_named(&lru->node[0].lock, "list_lru_node::lock");
  if (key != NULL) lockdep_set_class_and_name(&lru->node[0].lock, key, key_name);
  INIT_LIST_HEAD(&lru->node[0].list);
}
#define list_lru_init(lru) __list_lru_init((lru), NULL, NULL)
#define list_lru_init_key(lru, key) __list_lru_init((lru), (key), lgk_name_(#key))

static void list_lru_add(struct list_lru *lru, struct list_head *item) {
  struct list_lru_node *nlru = &lru->node[0];
  spin_lock(&nlru->lock);
  list_add(item, &nlru->list);
  nlru->nr_items++;
  spin_unlock(&nlru->lock);
}

/* Callers that may run in interrupt context use the irqsave variants. */
static void list_lru_del_irqsave(struct list_lru *lru, struct list_head *item) {
  struct list_lru_node *nlru = &lru->node[0];
  unsigned long flags;
  spin_lock_irqsave(&nlru->lock, flags);
  list_del_init(item);
  nlru->nr_items--;
  spin_unlock_irqrestore(&nlru->lock, flags);
}
static void list_lru_add_irqsave(struct list_lru *lru, struct list_head *item) {
  struct list_lru_node *nlru = &lru->node[0];
  unsigned long flags;
  spin_lock_irqsave(&nlru->lock, flags);
  list_add(item, &nlru->list);
  nlru->nr_items++;
  spin_unlock_irqrestore(&nlru->lock, flags);
}

static struct list_lru deferred_split_lru; /* mm/huge_memory.c */
static struct list_lru dentry_lru;         /* fs/dcache.c: sb->s_dentry_lru */
#ifdef LG_EXAMPLE_FIXED
static struct lock_class_key deferred_split_key;
#endif

struct folio {
  struct list_head _deferred_list;
};
struct dentry {
  struct list_head d_lru;
};

/* mm/huge_memory.c: a partially unmapped THP is queued for splitting. */
static __kfunc void deferred_split_folio(struct folio *folio) {
  list_lru_add_irqsave(&deferred_split_lru, &folio->_deferred_list);
}

/* mm/huge_memory.c: freeing a large folio takes it off the queue; the last folio_put() can run
 * in interrupt context (an I/O completion dropping the final reference). */
static __kfunc void folio_undo_large_rmappable(void *arg) {
  struct folio *folio = arg;
  list_lru_del_irqsave(&deferred_split_lru, &folio->_deferred_list);
}

/* fs/dcache.c: an unused dentry goes onto its superblock's LRU, IRQs on. */
static __kfunc void d_lru_add(struct dentry *dentry) { list_lru_add(&dentry_lru, &dentry->d_lru); }

int main(void) {
  struct folio thp;
  struct dentry dentry;
  INIT_LIST_HEAD(&thp._deferred_list);
  INIT_LIST_HEAD(&dentry.d_lru);

#ifndef LG_EXAMPLE_FIXED
  list_lru_init(&deferred_split_lru); /* BUG: shares the class of every other list_lru */
#else
  list_lru_init_key(&deferred_split_lru, &deferred_split_key);
#endif
  list_lru_init(&dentry_lru);

  deferred_split_folio(&thp);
  run_in_hardirq(folio_undo_large_rmappable, &thp); /* the last reference dropped in an irq */
  d_lru_add(&dentry);

  printf("thp_deferred_split%s: done\n",
#ifdef LG_EXAMPLE_FIXED
         "_fixed"
#else
         ""
#endif
  );
  return 0;
}
