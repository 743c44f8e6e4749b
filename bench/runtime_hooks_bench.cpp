// Shim microbenchmarks: what a pthread call costs through liblockgraph's interposers (and
// through the C API), beside libc's own function reached by dlsym, in the same process.
// The binary links liblockgraph, so its pthread_mutex_lock & co. are the interposers.
#include <dlfcn.h>
#include <pthread.h>

#include <cstdint>

#include <benchmark/benchmark.h>

#include "lockgraph/lockgraph.h"

namespace {

using MutexFn = int (*)(pthread_mutex_t*);

// libc's own functions, bypassing the interposers.
struct Libc {
  MutexFn lock = nullptr;
  MutexFn unlock = nullptr;
  Libc() {
    void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    if (libc == nullptr) return;
    lock = reinterpret_cast<MutexFn>(dlsym(libc, "pthread_mutex_lock"));
    unlock = reinterpret_cast<MutexFn>(dlsym(libc, "pthread_mutex_unlock"));
  }
};

const Libc& GetLibc() {
  static const Libc libc;
  return libc;
}

// True when pthread_mutex_lock in this process is not libc's, i.e. the shim is in front.
bool Interposed() { return GetLibc().lock != nullptr && GetLibc().lock != &pthread_mutex_lock; }

pthread_mutex_t g_flat = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t g_chain[4] = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER,
                              PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER};
pthread_mutex_t g_private[2] = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER};
pthread_rwlock_t g_rw = PTHREAD_RWLOCK_INITIALIZER;
constexpr int kPool = 10000;
constexpr int kSpan = 8;
pthread_mutex_t g_pool[kPool];  // zero = PTHREAD_MUTEX_INITIALIZER: each its own class

// Baseline: libc's lock+unlock pair.
void BM_LibcMutexPair(benchmark::State& state) {
  const Libc& libc = GetLibc();
  for (auto _ : state) {
    libc.lock(&g_flat);
    libc.unlock(&g_flat);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LibcMutexPair);

// The interposed pair: pre-hook, libc, (post-hook), on a lock whose chain is cached.
void BM_ShimMutexPair(benchmark::State& state) {
  if (!Interposed()) state.SkipWithError("pthread_mutex_lock is not interposed");
  for (auto _ : state) {
    pthread_mutex_lock(&g_flat);
    pthread_mutex_unlock(&g_flat);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ShimMutexPair);

void BM_LibcNested4(benchmark::State& state) {
  const Libc& libc = GetLibc();
  for (auto _ : state) {
    for (auto& m : g_chain) libc.lock(&m);
    for (int i = 3; i >= 0; --i) libc.unlock(&g_chain[i]);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LibcNested4);

void BM_ShimNested4(benchmark::State& state) {
  for (auto _ : state) {
    for (auto& m : g_chain) pthread_mutex_lock(&m);
    for (int i = 3; i >= 0; --i) pthread_mutex_unlock(&g_chain[i]);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ShimNested4);

// Takes every pair the benchmark can draw once, in index order (so first sight registers the
// classes in an order consistent with the pairs, the cheap way to learn them): the loop then
// measures the steady state only. The learning cost is the harness's many-learn figure.
void WarmPool() {
  static bool warmed = false;
  if (warmed) return;
  warmed = true;
  for (int a = 0; a < kPool - kSpan; ++a) {
    for (int d = 1; d <= kSpan; ++d) {
      pthread_mutex_lock(&g_pool[a]);
      pthread_mutex_lock(&g_pool[a + d]);
      pthread_mutex_unlock(&g_pool[a + d]);
      pthread_mutex_unlock(&g_pool[a]);
    }
  }
}

template <bool kShim>
void PoolPairs(benchmark::State& state) {
  const Libc& libc = GetLibc();
  if (kShim) WarmPool();
  std::uint64_t x = 0x9e3779b97f4a7c15ull;
  for (auto _ : state) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const int a = static_cast<int>(x % (kPool - kSpan));
    const int b = a + 1 + static_cast<int>((x >> 32) % kSpan);
    if (kShim) {
      pthread_mutex_lock(&g_pool[a]);
      pthread_mutex_lock(&g_pool[b]);
      pthread_mutex_unlock(&g_pool[b]);
      pthread_mutex_unlock(&g_pool[a]);
    } else {
      libc.lock(&g_pool[a]);
      libc.lock(&g_pool[b]);
      libc.unlock(&g_pool[b]);
      libc.unlock(&g_pool[a]);
    }
  }
  state.SetItemsProcessed(state.iterations());
}
// Consistent-order pairs over 10,000 locks (each its own class), second lock within 8 of the
// first: at most 80,000 dependencies, all learned before the loop, so this is the cached path
// with a working set larger than the per-thread caches.
void BM_LibcPool10k(benchmark::State& state) { PoolPairs<false>(state); }
void BM_ShimPool10k(benchmark::State& state) { PoolPairs<true>(state); }
BENCHMARK(BM_LibcPool10k);
BENCHMARK(BM_ShimPool10k);

void BM_ShimRwlockReadPair(benchmark::State& state) {
  for (auto _ : state) {
    pthread_rwlock_rdlock(&g_rw);
    pthread_rwlock_unlock(&g_rw);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ShimRwlockReadPair);

// Two threads, each on its own mutex: the steady state must not share anything.
void BM_ShimPrivateThreads(benchmark::State& state) {
  pthread_mutex_t* m = &g_private[state.thread_index() % 2];
  for (auto _ : state) {
    pthread_mutex_lock(m);
    pthread_mutex_unlock(m);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ShimPrivateThreads)->Threads(1)->Threads(2)->UseRealTime();

void BM_LibcPrivateThreads(benchmark::State& state) {
  const Libc& libc = GetLibc();
  pthread_mutex_t* m = &g_private[state.thread_index() % 2];
  for (auto _ : state) {
    libc.lock(m);
    libc.unlock(m);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LibcPrivateThreads)->Threads(1)->Threads(2)->UseRealTime();

// The C API on an annotated lock (what lockgraph-instrument's output calls).
int g_annotated;
void BM_ApiAcquireRelease(benchmark::State& state) {
  static lg_class_key key;
  lg_lock_init(&g_annotated, "bench.annotated", &key);
  for (auto _ : state) {
    lg_acquire(&g_annotated, LG_EXCLUSIVE, 0, nullptr);
    lg_release(&g_annotated);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ApiAcquireRelease);

}  // namespace

BENCHMARK_MAIN();
