/* A malloc that, like jemalloc, takes its own non-recursive pthread mutex around every call
 * (trylock first, then lock). Preloaded with the shim it must neither deadlock (lockgraph
 * allocates on its slow paths, while this lock may be held) nor be validated. Its name matches
 * none of the allocator names the shim knows: it is found as the library defining malloc. */
#define _GNU_SOURCE
#include <pthread.h>
#include <stddef.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);
extern void __libc_free(void *ptr);

static pthread_mutex_t arena_lock = PTHREAD_MUTEX_INITIALIZER;

static void arena_enter(void) {
  if (pthread_mutex_trylock(&arena_lock) != 0) pthread_mutex_lock(&arena_lock);
}
static void arena_leave(void) { pthread_mutex_unlock(&arena_lock); }

void *malloc(size_t size) {
  arena_enter();
  void *p = __libc_malloc(size);
  arena_leave();
  return p;
}
void *calloc(size_t count, size_t size) {
  arena_enter();
  void *p = __libc_calloc(count, size);
  arena_leave();
  return p;
}
void *realloc(void *ptr, size_t size) {
  arena_enter();
  void *p = __libc_realloc(ptr, size);
  arena_leave();
  return p;
}
void free(void *ptr) {
  arena_enter();
  __libc_free(ptr);
  arena_leave();
}
