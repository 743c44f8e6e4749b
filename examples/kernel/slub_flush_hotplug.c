/* slub flush_all() against memory hotplug: a five-lock cycle through two read-held rwsems.
 *
 * Model of the lockdep splat the slub rework met on linux-mm. Each of these is fine alone:
 *
 *   flush_all()                     flush_lock -> cpu_hotplug_lock (read)
 *   online_pages()                  cpu_hotplug_lock (read) -> pcp_batch_high_lock
 *                                   pcp_batch_high_lock -> memory_chain.rwsem (read)
 *   slab_memory_callback()          memory_chain.rwsem (read) -> slab_mutex
 *   kmem_cache_shrink()             slab_mutex -> flush_lock
 *
 * Together they close the cycle flush_lock -> cpu_hotplug_lock -> pcp_batch_high_lock ->
 * memory_chain.rwsem -> slab_mutex -> flush_lock. The two rwsems are only read-held, but a
 * read of a writer-fair rwsem (cpus_read_lock, down_read) waits behind a queued writer (CPU
 * hotplug, a notifier registration), so the cycle can deadlock. lockgraph reports it when the
 * last of the five orders is first taken, with every link and where it was established.
 *
 * The fixed twin (-DLG_EXAMPLE_FIXED) takes cpus_read_lock() before slab_mutex and flush_lock and
 * never under them, as mainline resolved it (flush_all_cpus_locked()): silent.
 */
#include <stdio.h>

#include "lockgraph/kernel.h"

static DEFINE_MUTEX(flush_lock);
static DEFINE_MUTEX(slab_mutex);
static DEFINE_MUTEX(pcp_batch_high_lock);
static BLOCKING_NOTIFIER_HEAD(memory_chain);

#define MEM_GOING_ONLINE 1

struct kmem_cache {
  const char *name;
};

/* mm/slub.c: flush every CPU's slab with flush_lock serialising the flush works. */
static __kfunc __maybe_unused void flush_all_cpus_locked(struct kmem_cache *s) {
  (void)s;
  lockdep_assert_cpus_held();
  mutex_lock(&flush_lock);
  /* queue_work_on() + flush_work() for each online CPU */
  mutex_unlock(&flush_lock);
}

static __kfunc void flush_all(struct kmem_cache *s) {
#ifndef LG_EXAMPLE_FIXED
  /* BUG: cpus_read_lock() is taken under flush_lock, and flush_all() runs under slab_mutex. */
  mutex_lock(&flush_lock);
  cpus_read_lock();
  (void)s; /* queue_work_on() + flush_work() for each online CPU */
  cpus_read_unlock();
  mutex_unlock(&flush_lock);
#else
  cpus_read_lock();
  flush_all_cpus_locked(s);
  cpus_read_unlock();
#endif
}

/* mm/slab_common.c: kmem_cache_shrink() flushes the cache under slab_mutex. */
static __kfunc void kmem_cache_shrink(struct kmem_cache *s) {
#ifndef LG_EXAMPLE_FIXED
  mutex_lock(&slab_mutex);
  flush_all(s);
  mutex_unlock(&slab_mutex);
#else
  cpus_read_lock();
  mutex_lock(&slab_mutex);
  flush_all_cpus_locked(s);
  mutex_unlock(&slab_mutex);
  cpus_read_unlock();
#endif
}

/* mm/slub.c: the memory notifier takes slab_mutex to set up the new node's structures. */
static __kfunc int slab_memory_callback(struct notifier_block *nb, unsigned long action, void *arg) {
  (void)nb;
  (void)arg;
  if (action == MEM_GOING_ONLINE) {
    mutex_lock(&slab_mutex);
    /* init_kmem_cache_node() for every cache */
    mutex_unlock(&slab_mutex);
  }
  return 0;
}

/* mm/page_alloc.c: freeze the per-cpu page lists while a zone changes. */
static int pcp_high_frozen;
static __kfunc void zone_pcp_disable(void) {
  mutex_lock(&pcp_batch_high_lock);
  pcp_high_frozen = 1; /* __zone_set_pageset_high_and_batch(zone, 0, 1) */
}
static __kfunc void zone_pcp_enable(void) {
  pcp_high_frozen = 0;
  mutex_unlock(&pcp_batch_high_lock);
}

/* mm/memory_hotplug.c: online a memory block. mem_hotplug_begin() takes cpus_read_lock(). */
static __kfunc void online_pages(void) {
  cpus_read_lock();
  zone_pcp_disable();
  blocking_notifier_call_chain(&memory_chain, MEM_GOING_ONLINE, NULL);
  zone_pcp_enable();
  cpus_read_unlock();
}

int main(void) {
  static struct notifier_block slab_memory_nb = {.notifier_call = slab_memory_callback};
  struct kmem_cache kmalloc_64 = {.name = "kmalloc-64"};

  blocking_notifier_chain_register(&memory_chain, &slab_memory_nb);

  /* A cache is flushed on its own (sysfs "validate"): flush_lock -> cpu_hotplug_lock. */
  flush_all(&kmalloc_64);
  /* A memory block goes online: cpu_hotplug_lock -> pcp_batch_high_lock -> memory_chain.rwsem
   * -> slab_mutex. */
  online_pages();
  /* A cache is shrunk: slab_mutex -> flush_lock closes the cycle. */
  kmem_cache_shrink(&kmalloc_64);

  printf("slub_flush_hotplug%s: done\n",
#ifdef LG_EXAMPLE_FIXED
         "_fixed"
#else
         ""
#endif
  );
  return 0;
}
