// Many threads at once, and the capacity lockgraph promises (1,024 held locks per thread,
// 100,000 classes, 1,000,000 dependencies) within a stated memory bound.
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "lockgraph/engine.h"

namespace lockgraph {
namespace {

class CountingSink : public FindingSink {
 public:
  void OnFinding(const Finding& f) override {
    std::lock_guard<std::mutex> g(mu_);
    headlines_.push_back(f.headline);
    classes_.push_back(f.classes);
  }
  void OnTurnedOff(std::string_view why) override {
    std::lock_guard<std::mutex> g(mu_);
    off_ = std::string(why);
  }
  std::vector<std::string> headlines() {
    std::lock_guard<std::mutex> g(mu_);
    return headlines_;
  }
  std::vector<std::vector<std::string>> classes() {
    std::lock_guard<std::mutex> g(mu_);
    return classes_;
  }
  std::string off() {
    std::lock_guard<std::mutex> g(mu_);
    return off_;
  }

 private:
  std::mutex mu_;
  std::vector<std::string> headlines_;
  std::vector<std::vector<std::string>> classes_;
  std::string off_;
};

AcquireRequest Req(LockId lock) {
  AcquireRequest r;
  r.lock = lock;
  return r;
}

TEST(Concurrency, ManyThreadsConsistentOrderAndOneInversion) {
  CountingSink sink;
  Engine engine({}, &sink);
  constexpr int kLocks = 64, kThreads = 8, kIterations = 20000;
  auto setup = engine.NewThread(0, "setup");
  for (int i = 0; i < kLocks; ++i) {
    const ClassId c = engine.RegisterClass(1000 + i, "pool." + std::to_string(i));
    engine.InitLock(*setup, 0x10000 + i * 64, c);
  }
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&engine, t] {
      auto ts = engine.NewThread(100 + t, "worker");
      unsigned x = 12345u + t;
      for (int i = 0; i < kIterations; ++i) {
        x = x * 1103515245u + 12345u;
        int a = static_cast<int>((x >> 8) % kLocks), b = static_cast<int>((x >> 20) % kLocks);
        if (a == b) continue;
        if (a > b) std::swap(a, b);  // consistent order: ascending class index
        engine.Acquire(*ts, Req(0x10000 + a * 64));
        engine.Acquire(*ts, Req(0x10000 + b * 64));
        engine.Release(*ts, 0x10000 + b * 64);
        engine.Release(*ts, 0x10000 + a * 64);
      }
      engine.ThreadExit(*ts);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_TRUE(sink.headlines().empty());
  // One thread now takes a pair in descending order: exactly one report.
  auto late = engine.NewThread(999, "late");
  engine.Acquire(*late, Req(0x10000 + 7 * 64));
  engine.Acquire(*late, Req(0x10000 + 3 * 64));
  ASSERT_EQ(sink.headlines(),
            std::vector<std::string>{"possible circular locking dependency detected"});
  EXPECT_EQ(sink.classes()[0], (std::vector<std::string>{"pool.3", "pool.7"}));
  EXPECT_EQ(engine.CheckInvariants(), "");
  EXPECT_GT(engine.stats().chain_cache_hits, 100000u);
}

// The shim's cached path (instance handles, lock-free chain-cache and instance-slot reads, the
// slots' chain notes) on many threads while others keep validating new chains, which grows the
// chain cache under the readers.
TEST(Concurrency, CachedPathWhileOtherThreadsValidateNewChains) {
  CountingSink sink;
  Engine engine({}, &sink);
  constexpr int kLocks = 512, kThreads = 4, kIterations = 20000;
  auto setup = engine.NewThread(0, "setup");
  std::vector<InstanceHandle> handles(kLocks);
  for (int i = 0; i < kLocks; ++i) {
    const ClassId c = engine.RegisterClass(5000 + i, "pool." + std::to_string(i));
    engine.InitLock(*setup, 0x20000 + i * 64, c);
    handles[i] = engine.HandleOf(0x20000 + i * 64);
  }
  std::atomic<long> cached{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto ts = engine.NewThread(200 + t, "worker");
      unsigned x = 777u + t;
      long mine = 0;
      for (int i = 0; i < kIterations; ++i) {
        x = x * 1103515245u + 12345u;
        // Thread 0 and 1 roam the whole pool (new chains for a long time); 2 and 3 stay on the
        // first 32 locks (cached soon).
        const int range = t < 2 ? kLocks : 32;
        int a = static_cast<int>((x >> 8) % range), b = static_cast<int>((x >> 20) % range);
        if (a == b) continue;
        if (a > b) std::swap(a, b);
        for (int l : {a, b}) {
          const LockId id = 0x20000 + l * 64;
          if (engine.TryAcquireCached(*ts, id, AcquireMode::kExclusive, false, 0, handles[l])) {
            ++mine;
          } else {
            engine.Acquire(*ts, Req(id));
          }
        }
        for (int l : {b, a}) {
          const LockId id = 0x20000 + l * 64;
          if (!engine.TryReleaseInnermost(*ts, id)) engine.Release(*ts, id);
        }
      }
      cached += mine;
      engine.ThreadExit(*ts);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_TRUE(sink.headlines().empty());
  EXPECT_GT(cached.load(), 20000);
  auto late = engine.NewThread(999, "late");
  engine.Acquire(*late, Req(0x20000 + 9 * 64));
  engine.Acquire(*late, Req(0x20000 + 4 * 64));
  ASSERT_EQ(sink.headlines(),
            std::vector<std::string>{"possible circular locking dependency detected"});
  EXPECT_EQ(sink.classes()[0], (std::vector<std::string>{"pool.4", "pool.9"}));
  EXPECT_EQ(engine.CheckInvariants(), "");
}

TEST(Capacity, HundredThousandClassesAndAMillionDependencies) {
  CountingSink sink;
  Engine engine({}, &sink);
  constexpr int kOuter = 100000, kInner = 1000, kFanOut = 10;
  auto t = engine.NewThread(1, "builder");
  std::vector<ClassId> outer(kOuter), inner(kInner);
  for (int i = 0; i < kOuter; ++i) {
    outer[i] = engine.RegisterClass(std::uint64_t{1} << 40 | i, "outer." + std::to_string(i));
    engine.InitLock(*t, 0x100000000ull + i * 64ull, outer[i]);
  }
  for (int j = 0; j < kInner; ++j) {
    inner[j] = engine.RegisterClass(std::uint64_t{2} << 40 | j, "inner." + std::to_string(j));
    engine.InitLock(*t, 0x900000000ull + j * 64ull, inner[j]);
  }
  for (int i = 0; i < kOuter; ++i) {
    engine.Acquire(*t, Req(0x100000000ull + i * 64ull));
    for (int k = 0; k < kFanOut; ++k) {
      const LockId l = 0x900000000ull + ((i * 7 + k * 101) % kInner) * 64ull;
      engine.Acquire(*t, Req(l));
      engine.Release(*t, l);
    }
    engine.Release(*t, 0x100000000ull + i * 64ull);
  }
  const EngineStats s = engine.stats();
  EXPECT_TRUE(engine.enabled()) << sink.off();
  EXPECT_EQ(s.classes, static_cast<std::size_t>(kOuter + kInner));
  EXPECT_EQ(s.dependencies, static_cast<std::size_t>(kOuter * kFanOut));
  EXPECT_LT(s.bytes, std::size_t{1} << 30) << "stated bound: under 1 GiB at this size";
  EXPECT_TRUE(sink.headlines().empty());
  // The inversion of the very first dependency is still found after a million others.
  engine.Acquire(*t, Req(0x900000000ull + 0));
  engine.Acquire(*t, Req(0x100000000ull));
  ASSERT_EQ(sink.headlines().size(), 1u);
  EXPECT_EQ(sink.classes()[0], (std::vector<std::string>{"outer.0", "inner.0"}));
}

}  // namespace
}  // namespace lockgraph
