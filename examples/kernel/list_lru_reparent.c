/* list_lru reparenting: xa_erase() on an IRQ-safe xarray lock (the flagship example).
 *
 * Model of the linux-mm report that motivated lockgraph. Three paths, run once each, one thread:
 *
 *   1. Writeback completion runs in hardirq context and takes the page cache lock, i_pages:
 *      i_pages becomes HARDIRQ-safe.
 *   2. A dying memcg is reparented: memcg_reparent_list_lrus() erases the memcg's entry from the
 *      shadow-node list_lru's xarray with xa_erase(), which takes shadow_nodes.xa with IRQs on:
 *      shadow_nodes.xa becomes HARDIRQ-unsafe.
 *   3. Adding a folio to the page cache holds i_pages with IRQs off and allocates an xarray node
 *      through the shadow-node list_lru, which takes shadow_nodes.xa under it: the new dependency
 *      i_pages -> shadow_nodes.xa connects a HARDIRQ-safe lock to a HARDIRQ-unsafe one.
 *
 * The deadlock needs a writeback interrupt to land on the CPU that is inside xa_erase() while
 * another CPU holds i_pages and waits for shadow_nodes.xa; this program never lets that happen,
 * and lockgraph reports it anyway, from the orders and contexts alone.
 *
 * Built twice: list_lru_reparent (xa_erase) and list_lru_reparent_fixed (-DLG_EXAMPLE_FIXED,
 * xa_erase_irq, as mainline fixed it), which is silent.
 */
#include <stdio.h>

#include "lockgraph/kernel.h"

struct mem_cgroup {
  int kmemcg_id;
  struct mem_cgroup *parent;
};

struct list_lru_one {
  struct list_head list;
  long nr_items;
};

/* A memcg-aware list_lru: per-memcg lists in an xarray indexed by the memcg's kmemcg_id. */
struct list_lru {
  struct xarray xa;
};

struct address_space {
  struct xarray i_pages;
};

struct folio {
  struct address_space *mapping;
  unsigned long index;
  struct mem_cgroup *memcg;
};

static struct list_lru shadow_nodes; /* mm/workingset.c: the LRU of page-cache shadow nodes */
static struct mem_cgroup root_mem_cgroup = {.kmemcg_id = 0, .parent = NULL};

static void list_lru_init(struct list_lru *lru, const char *name) { xa_init_named(&lru->xa, name); }

/* mm/list_lru.c: make sure `memcg` has its lists in `lru` (called on allocation, possibly with
 * other locks held and IRQs off: hence the irqsave). */
static __kfunc void memcg_list_lru_alloc(struct mem_cgroup *memcg, struct list_lru *lru) {
  unsigned long flags;
  xa_lock_irqsave(&lru->xa, flags);
  if (xa_load(&lru->xa, memcg->kmemcg_id) == NULL) {
    struct list_lru_one *l = kzalloc(sizeof(*l));
    INIT_LIST_HEAD(&l->list);
    __xa_store(&lru->xa, memcg->kmemcg_id, l);
  }
  xa_unlock_irqrestore(&lru->xa, flags);
}

/* mm/slub.c: kmem_cache_alloc_lru() charges the object to a memcg and prepares its lru lists. */
static __kfunc void *kmem_cache_alloc_lru(struct list_lru *lru, struct mem_cgroup *memcg) {
  memcg_list_lru_alloc(memcg, lru);
  return kzalloc(64);
}

/* mm/filemap.c: insert a folio into the page cache; the xarray may need a new node, and nodes are
 * allocated through the shadow-node list_lru, under the i_pages lock. */
static __kfunc void filemap_add_folio(struct address_space *mapping, struct folio *folio) {
  xa_lock_irq(&mapping->i_pages);
  void *node = kmem_cache_alloc_lru(&shadow_nodes, folio->memcg);
  (void)node;
  __xa_store(&mapping->i_pages, folio->index, folio);
  xa_unlock_irq(&mapping->i_pages);
}

/* mm/filemap.c: writeback completion, called from the block layer's completion interrupt. */
static __kfunc void folio_end_writeback(void *arg) {
  struct folio *folio = arg;
  unsigned long flags;
  xa_lock_irqsave(&folio->mapping->i_pages, flags);
  /* clear PAGECACHE_TAG_WRITEBACK */
  xa_unlock_irqrestore(&folio->mapping->i_pages, flags);
}

/* mm/list_lru.c: an offlined memcg's lists are spliced into the parent's and its entry erased. */
static __kfunc void memcg_reparent_list_lrus(struct list_lru *lru, struct mem_cgroup *memcg,
                                             struct mem_cgroup *parent) {
  (void)parent;
#ifndef LG_EXAMPLE_FIXED
  struct list_lru_one *l = xa_erase(&lru->xa, memcg->kmemcg_id); /* BUG: IRQs on */
#else
  struct list_lru_one *l = xa_erase_irq(&lru->xa, memcg->kmemcg_id);
#endif
  kfree(l);
}

int main(void) {
  static struct address_space mapping;
  struct mem_cgroup dying = {.kmemcg_id = 7, .parent = &root_mem_cgroup};
  struct mem_cgroup live = {.kmemcg_id = 3, .parent = &root_mem_cgroup};
  struct folio written = {.mapping = &mapping, .index = 1, .memcg = &live};
  struct folio added = {.mapping = &mapping, .index = 2, .memcg = &live};

  xa_init_named(&mapping.i_pages, "address_space::i_pages");
  list_lru_init(&shadow_nodes, "shadow_nodes.xa");
  memcg_list_lru_alloc(&dying, &shadow_nodes);

  /* 1. A write completes: the block layer's interrupt ends writeback on the folio. */
  run_in_hardirq(folio_end_writeback, &written);
  /* 2. The dying memcg goes offline and its list_lru entry is reparented. */
  memcg_reparent_list_lrus(&shadow_nodes, &dying, dying.parent);
  /* 3. A read fault adds a folio to the page cache. */
  filemap_add_folio(&mapping, &added);

  printf("list_lru_reparent%s: done\n",
#ifdef LG_EXAMPLE_FIXED
         "_fixed"
#else
         ""
#endif
  );
  return 0;
}
