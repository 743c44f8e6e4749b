/* zswap adds an entry to an offline memcg's list_lru after its lists were reparented and freed.
 *
 * Model of a use-after-free race discussed on linux-mm: zswap_store() looks up the memcg of the
 * page being swapped out and adds the new entry to that memcg's list in the zswap list_lru. If the
 * memcg went offline meanwhile, memcg_reparent_list_lrus() has already spliced its lists into the
 * parent's and freed them, so the add takes a lock inside freed memory. KASAN sees it only if the
 * memory is not reused first; lockgraph sees the lock was destroyed (the free ends it) and reports
 * the use with where it was destroyed.
 *
 * The twin (-DLG_EXAMPLE_FIXED) does what mainline does: an offline memcg's list_lru requests go
 * to the nearest online ancestor, so the entry is added to the parent's list: silent.
 */
#include <stdbool.h>
#include <stdio.h>

#include "lockgraph/kernel.h"

struct list_lru_one {
  spinlock_t lock;
  struct list_head list;
  long nr_items;
};

struct mem_cgroup {
  int kmemcg_id;
  bool online;
  struct mem_cgroup *parent;
};

struct list_lru {
  struct xarray xa; /* kmemcg_id -> struct list_lru_one */
};

struct zswap_entry {
  struct list_head lru;
  struct mem_cgroup *memcg;
};

static struct list_lru zswap_list_lru; /* mm/zswap.c */
static struct mem_cgroup root_mem_cgroup = {.kmemcg_id = 0, .online = true, .parent = NULL};

static __kfunc void memcg_list_lru_alloc(struct list_lru *lru, struct mem_cgroup *memcg) {
  struct list_lru_one *l = kzalloc(sizeof(*l));
  spin_lock_init_named(&l->lock, "list_lru_one::lock");
  INIT_LIST_HEAD(&l->list);
  xa_store_irq(&lru->xa, memcg->kmemcg_id, l);
}

static __kfunc void list_lru_one_free(struct list_lru_one *l) {
  spin_lock_destroy(&l->lock);
  kfree(l);
}

/* mm/list_lru.c: offlining moves the memcg's items to the parent and frees its lists. */
static __kfunc void memcg_reparent_list_lrus(struct list_lru *lru, struct mem_cgroup *memcg,
                                             struct mem_cgroup *parent) {
  struct list_lru_one *src = xa_load(&lru->xa, memcg->kmemcg_id);
  struct list_lru_one *dst = xa_load(&lru->xa, parent->kmemcg_id);
  spin_lock_irq(&src->lock);
  spin_lock_nested(&dst->lock, 1);
  list_splice_init(&src->list, &dst->list);
  dst->nr_items += src->nr_items;
  src->nr_items = 0;
  spin_unlock(&dst->lock);
  spin_unlock_irq(&src->lock);
  xa_erase_irq(&lru->xa, memcg->kmemcg_id);
  list_lru_one_free(src);
}

static __kfunc void mem_cgroup_css_offline(struct mem_cgroup *memcg) {
  memcg->online = false;
  memcg_reparent_list_lrus(&zswap_list_lru, memcg, memcg->parent);
}

/* The list of `memcg` in `lru`. The buggy version trusts a list it looked up before the memcg
 * went offline; the fixed one walks up to the nearest online memcg under the lookup. */
static __kfunc struct list_lru_one *list_lru_from_memcg(struct list_lru *lru,
                                                        struct mem_cgroup *memcg,
                                                        struct list_lru_one *cached) {
#ifndef LG_EXAMPLE_FIXED
  (void)lru;
  (void)memcg;
  return cached; /* BUG: looked up while the memcg was online, used after it went offline */
#else
  (void)cached;
  while (!memcg->online) memcg = memcg->parent;
  return xa_load(&lru->xa, memcg->kmemcg_id);
#endif
}

/* mm/zswap.c: zswap_store() adds the compressed entry to its memcg's LRU. */
static __kfunc void zswap_lru_add(struct list_lru *lru, struct zswap_entry *entry,
                                  struct list_lru_one *cached) {
  struct list_lru_one *l = list_lru_from_memcg(lru, entry->memcg, cached);
  spin_lock(&l->lock);
  list_add(&entry->lru, &l->list);
  l->nr_items++;
  spin_unlock(&l->lock);
}

int main(void) {
  struct mem_cgroup child = {.kmemcg_id = 5, .online = true, .parent = &root_mem_cgroup};
  struct zswap_entry entry = {.memcg = &child};

  xa_init_named(&zswap_list_lru.xa, "zswap_list_lru.xa");
  memcg_list_lru_alloc(&zswap_list_lru, &root_mem_cgroup);
  memcg_list_lru_alloc(&zswap_list_lru, &child);

  /* zswap_store() on one CPU looks up the child's list (the memcg is still online) ... */
  struct list_lru_one *looked_up = xa_load(&zswap_list_lru.xa, child.kmemcg_id);
  /* ... while rmdir on another CPU offlines the memcg and frees its lists ... */
  mem_cgroup_css_offline(&child);
  /* ... then the store adds its entry. */
  zswap_lru_add(&zswap_list_lru, &entry, looked_up);

  printf("zswap_memcg_offline%s: done\n",
#ifdef LG_EXAMPLE_FIXED
         "_fixed"
#else
         ""
#endif
  );
  return 0;
}
