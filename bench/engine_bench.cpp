// Engine microbenchmarks: the cost of an acquisition on the fast path (cached chain), on nested
// chains, over a large lock pool (learning, and the steady state of known pairs through the
// shim's cached path), from two threads on private locks, of a new dependency, and
// of learning a 10,000-lock pool's dependencies with classes registered at first sight, and of
// the class graph's order maintenance alone over the same dependencies.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "dep_graph.h"
#include "lockgraph/engine.h"

namespace {

using lockgraph::AcquireRequest;
using lockgraph::Engine;
using lockgraph::LockId;

AcquireRequest Req(LockId lock) {
  AcquireRequest r;
  r.lock = lock;
  return r;
}

void Setup(Engine& engine, int locks) {
  auto t = engine.NewThread(1, "setup");
  for (int i = 0; i < locks; ++i) {
    const auto c = engine.RegisterClass(1000 + i, "lock." + std::to_string(i));
    engine.InitLock(*t, 0x10000 + i * 64ull, c);
  }
}

// One lock, acquired and released: the chain is cached after the first pair.
void BM_AcquireReleaseCached(benchmark::State& state) {
  Engine engine;
  Setup(engine, 1);
  auto t = engine.NewThread(2, "bench");
  const AcquireRequest r = Req(0x10000);
  for (auto _ : state) {
    engine.Acquire(*t, r);
    engine.Release(*t, r.lock);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AcquireReleaseCached);

// Four nested locks in a consistent order.
void BM_NestedChain4(benchmark::State& state) {
  Engine engine;
  Setup(engine, 4);
  auto t = engine.NewThread(2, "bench");
  for (auto _ : state) {
    for (int i = 0; i < 4; ++i) engine.Acquire(*t, Req(0x10000 + i * 64ull));
    for (int i = 3; i >= 0; --i) engine.Release(*t, 0x10000 + i * 64ull);
  }
  state.SetItemsProcessed(state.iterations() * 4);
}
BENCHMARK(BM_NestedChain4);

// Random consistent-order pairs over a pool of 10,000 locks (each class its own lock).
void BM_PoolPairs10k(benchmark::State& state) {
  constexpr int kLocks = 10000;
  Engine engine;
  Setup(engine, kLocks);
  auto t = engine.NewThread(2, "bench");
  unsigned x = 1;
  for (auto _ : state) {
    x = x * 1103515245u + 12345u;
    int a = static_cast<int>((x >> 4) % kLocks), b = static_cast<int>((x >> 17) % kLocks);
    if (a == b) b = (b + 1) % kLocks;
    if (a > b) std::swap(a, b);
    engine.Acquire(*t, Req(0x10000 + a * 64ull));
    engine.Acquire(*t, Req(0x10000 + b * 64ull));
    engine.Release(*t, 0x10000 + b * 64ull);
    engine.Release(*t, 0x10000 + a * 64ull);
  }
  state.counters["dependencies"] = static_cast<double>(engine.stats().dependencies);
  state.SetItemsProcessed(state.iterations() * 2);
}
BENCHMARK(BM_PoolPairs10k);

// Learning a 10,000-lock pool as the shim does: a class is registered when its lock is first
// seen, so class order is first-sight order. `Random`: the harness's `many-learn` (xorshift
// pairs (i, j), i < j <= i + 8, locks first seen in random order, ~half of the new dependencies
// against the current class order); `Ordered`: its `many-ordered-learn` (every pair once, in
// index order, so every new dependency agrees with the order). Argument: pairs per iteration
// (0 = every pair once). Each iteration starts from an empty engine.
constexpr int kPoolLocks = 10000, kPoolSpan = 8;

class PoolLearner {
 public:
  PoolLearner() : thread_(engine_.NewThread(2, "bench")), class_of_(kPoolLocks, lockgraph::kNoClass) {}

  void Pair(int a, int b) {
    Touch(a);
    Touch(b);
    engine_.Acquire(*thread_, Req(Lock(a)));
    engine_.Acquire(*thread_, Req(Lock(b)));
    engine_.Release(*thread_, Lock(b));
    engine_.Release(*thread_, Lock(a));
  }
  const Engine& engine() const { return engine_; }

 private:
  static LockId Lock(int i) { return 0x10000 + i * 64ull; }
  void Touch(int i) {
    if (class_of_[i] != lockgraph::kNoClass) return;
    class_of_[i] = engine_.RegisterClass(1000 + i, "pool[" + std::to_string(i) + "]");
    engine_.InitLock(*thread_, Lock(i), class_of_[i]);
  }

  Engine engine_;
  std::unique_ptr<lockgraph::ThreadState> thread_;
  std::vector<lockgraph::ClassId> class_of_;
};

void RunLearn(benchmark::State& state, bool ordered) {
  const long pairs_wanted = state.range(0);
  long pairs = 0;
  double dependencies = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto learner = std::make_unique<PoolLearner>();
    std::uint64_t rng = 0x9e3779b97f4a7c15ull;  // the harness's xorshift, same pairs
    state.ResumeTiming();
    if (ordered) {
      for (int i = 0; i < kPoolLocks - kPoolSpan; ++i) {
        for (int d = 1; d <= kPoolSpan; ++d) {
          learner->Pair(i, i + d);
          ++pairs;
        }
      }
    } else {
      for (long k = 0; k < pairs_wanted; ++k) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        const int i = static_cast<int>(rng % (kPoolLocks - kPoolSpan));
        learner->Pair(i, i + 1 + static_cast<int>((rng >> 32) % kPoolSpan));
        ++pairs;
      }
    }
    state.PauseTiming();
    dependencies += static_cast<double>(learner->engine().stats().dependencies);
    learner.reset();
    state.ResumeTiming();
  }
  state.SetItemsProcessed(pairs);
  state.counters["dependencies"] = dependencies / static_cast<double>(state.iterations());
  state.counters["pair"] =
      benchmark::Counter(static_cast<double>(pairs), benchmark::Counter::kIsRate |
                                                         benchmark::Counter::kInvert);
  state.counters["dependency"] = benchmark::Counter(
      dependencies, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_LearnPool10kRandom(benchmark::State& state) { RunLearn(state, false); }
BENCHMARK(BM_LearnPool10kRandom)->Arg(200000)->Arg(2000000)->Iterations(1)->Unit(benchmark::kMillisecond);

void BM_LearnPool10kOrdered(benchmark::State& state) { RunLearn(state, true); }
BENCHMARK(BM_LearnPool10kOrdered)->Arg(0)->Iterations(3)->Unit(benchmark::kMillisecond);

// The class graph alone (graph/src/dep_graph.h): the pool's dependencies, classes numbered in
// first-sight order as the shim registers them, each new one checked for a cycle
// (ClosesCycle) and added (Add), as the engine's learning does; no engine, no chains. The
// harness's pairs (i, i+1..8) from its xorshift, 2,000,000 draws (79,936 distinct, ~23%
// against the current order). Counter `dependency`: time per distinct dependency.
void BM_DepGraphOrderPool10k(benchmark::State& state) {
  using lockgraph::graph_internal::DepGraph;
  using lockgraph::graph_internal::Dependency;
  double dependencies = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto graph = std::make_unique<DepGraph>();
    std::vector<lockgraph::ClassId> class_of(kPoolLocks, lockgraph::kNoClass);
    lockgraph::ClassId next = 0;
    auto seen = [&](int i) {
      if (class_of[i] == lockgraph::kNoClass) class_of[i] = next++;
      return class_of[i];
    };
    std::uint64_t rng = 0x9e3779b97f4a7c15ull;
    state.ResumeTiming();
    for (long k = 0; k < 2000000; ++k) {
      rng ^= rng << 13;
      rng ^= rng >> 7;
      rng ^= rng << 17;
      const int i = static_cast<int>(rng % (kPoolLocks - kPoolSpan));
      const lockgraph::ClassId from = seen(i);
      const lockgraph::ClassId to = seen(i + 1 + static_cast<int>((rng >> 32) % kPoolSpan));
      if (graph->Find(from, to) != nullptr) continue;
      if (graph->ClosesCycle(from, to)) state.SkipWithError("unexpected cycle");
      Dependency d;
      d.from = from;
      d.to = to;
      d.types = lockgraph::kDepEN;
      graph->Add(d);
    }
    state.PauseTiming();
    dependencies += static_cast<double>(graph->dependency_count());
    graph.reset();
    state.ResumeTiming();
  }
  state.counters["dependencies"] = dependencies / static_cast<double>(state.iterations());
  state.counters["dependency"] = benchmark::Counter(
      dependencies, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_DepGraphOrderPool10k)->Iterations(3)->Unit(benchmark::kMillisecond);

// Two threads, each on its own private lock: steady state must not share a global lock.
Engine* g_shared_engine = nullptr;
void BM_PrivateLocksThreads(benchmark::State& state) {
  if (state.thread_index() == 0) {
    g_shared_engine = new Engine;
    Setup(*g_shared_engine, 16);
  }
  // The benchmark library starts all threads' loops together after setup.
  auto t = g_shared_engine->NewThread(10 + state.thread_index(), "bench");
  const AcquireRequest r = Req(0x10000 + state.thread_index() * 64ull);
  for (auto _ : state) {
    g_shared_engine->Acquire(*t, r);
    g_shared_engine->Release(*t, r.lock);
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    t.reset();
  }
}
BENCHMARK(BM_PrivateLocksThreads)->Threads(1)->Threads(2)->UseRealTime();

// The steady state of the harness's `many-ordered` mode on the engine alone, as the shim drives
// it: 10,000 locks (each its own class, with instance handles), every pair (i, i+1..8) learned
// once in index order, then random known pairs through TryAcquireCached / TryReleaseInnermost
// (Acquire / Release only when the cached path declines: counter `declined` per pair).
void BM_PoolSteady10k(benchmark::State& state) {
  constexpr int kLocks = 10000, kSpan = 8;
  Engine engine;
  Setup(engine, kLocks);
  auto t = engine.NewThread(2, "bench");
  std::vector<lockgraph::InstanceHandle> handles(kLocks);
  for (int i = 0; i < kLocks; ++i) handles[i] = engine.HandleOf(0x10000 + i * 64ull);
  for (int i = 0; i < kLocks - kSpan; ++i) {
    for (int d = 1; d <= kSpan; ++d) {
      engine.Acquire(*t, Req(0x10000 + i * 64ull));
      engine.Acquire(*t, Req(0x10000 + (i + d) * 64ull));
      engine.Release(*t, 0x10000 + (i + d) * 64ull);
      engine.Release(*t, 0x10000 + i * 64ull);
    }
  }
  auto take = [&](int i) {
    const LockId l = 0x10000 + i * 64ull;
    if (engine.TryAcquireCached(*t, l, lockgraph::AcquireMode::kExclusive, false, 0, handles[i])) {
      return 0;
    }
    engine.Acquire(*t, Req(l));
    return 1;
  };
  auto drop = [&](int i) {
    const LockId l = 0x10000 + i * 64ull;
    if (!engine.TryReleaseInnermost(*t, l)) engine.Release(*t, l);
  };
  std::uint64_t x = 0x9e3779b97f4a7c15ull;  // the harness's xorshift
  long declined = 0;
  for (auto _ : state) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const int a = static_cast<int>(x % (kLocks - kSpan));
    const int b = a + 1 + static_cast<int>((x >> 32) % kSpan);
    declined += take(a);
    declined += take(b);
    drop(b);
    drop(a);
  }
  state.counters["declined"] =
      benchmark::Counter(static_cast<double>(declined), benchmark::Counter::kAvgIterations);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PoolSteady10k);

// The slow path: every iteration records a brand-new dependency.
void BM_NewDependency(benchmark::State& state) {
  Engine engine;
  auto t = engine.NewThread(2, "bench");
  const auto outer = engine.RegisterClass(1, "outer");
  engine.InitLock(*t, 0x10, outer);
  std::uint64_t i = 0;
  for (auto _ : state) {
    state.PauseTiming();
    const auto c = engine.RegisterClass(100 + i, "inner");
    const LockId l = 0x100000 + i * 64;
    engine.InitLock(*t, l, c);
    ++i;
    state.ResumeTiming();
    engine.Acquire(*t, Req(0x10));
    engine.Acquire(*t, Req(l));
    engine.Release(*t, l);
    engine.Release(*t, 0x10);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_NewDependency);

}  // namespace

BENCHMARK_MAIN();
