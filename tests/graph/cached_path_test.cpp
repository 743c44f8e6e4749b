// Engine::TryAcquireCached, the shim's cached path, with instance handles as the shim passes
// them: it takes only what was validated before, and whatever it declines the full Acquire
// still reports (no forgetting over thousands of locks, usage rules, changed interrupt state).
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "harness.h"

namespace lockgraph {
namespace {

using testing::Harness;

// Takes `lock` the way the shim does: the cached path first, the full Acquire if it declines.
// Returns whether the cached path took it.
bool Take(Engine& engine, ThreadState& t, LockId lock, AcquireMode mode = AcquireMode::kExclusive,
          bool trylock = false) {
  if (engine.TryAcquireCached(t, lock, mode, trylock, 0x4000, engine.HandleOf(lock))) return true;
  AcquireRequest r;
  r.lock = lock;
  r.mode = mode;
  r.trylock = trylock;
  r.ip = 0x4000;
  engine.Acquire(t, r);
  return false;
}

void Drop(Engine& engine, ThreadState& t, LockId lock) {
  if (!engine.TryReleaseInnermost(t, lock)) engine.Release(t, lock);
}

// A pool of `n` locks, each its own class, named pool.<i>.
std::vector<LockId> Pool(Harness& h, int n) {
  std::vector<LockId> locks;
  for (int i = 0; i < n; ++i) locks.push_back(h.Lock("pool." + std::to_string(i)));
  return locks;
}

TEST(CachedPath, FirstPairInversionIsReportedAfterManyCachedPairsOverAPool) {
  Harness h;
  Engine& e = h.engine();
  constexpr int kLocks = 3000, kSpan = 8;
  const std::vector<LockId> pool = Pool(h, kLocks);
  ThreadState& t = h.T(1);
  std::uint64_t x = 0x9e3779b97f4a7c15ull;
  auto next_pair = [&x](int* a, int* b) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *a = static_cast<int>(x % (kLocks - kSpan));
    *b = *a + 1 + static_cast<int>((x >> 32) % kSpan);
  };
  int first_a = -1, first_b = -1;
  long cached = 0;
  for (int round = 0; round < 2; ++round) {
    for (int k = 0; k < 200000; ++k) {
      int a, b;
      next_pair(&a, &b);
      if (first_a < 0) first_a = a, first_b = b;
      const bool ca = Take(e, t, pool[a]);
      const bool cb = Take(e, t, pool[b]);
      if (round == 1) cached += ca + cb;
      Drop(e, t, pool[b]);
      Drop(e, t, pool[a]);
    }
  }
  EXPECT_TRUE(h.findings().empty()) << h.AllReports();
  // Every pair is known by the second round: the cached path takes (nearly) all of them.
  EXPECT_GT(cached, 2 * 200000 * 99 / 100);
  // The very first pair, inverted, after 400,000 others.
  Take(e, t, pool[first_b]);
  Take(e, t, pool[first_a]);
  ASSERT_EQ(h.Count(FindingKind::kCircularDependency), 1u) << h.AllReports();
  const Finding* f = h.First(FindingKind::kCircularDependency);
  EXPECT_EQ(f->headline, "possible circular locking dependency detected");
  const std::string all = h.AllReports();
  EXPECT_NE(all.find("pool." + std::to_string(first_a)), std::string::npos) << all;
  EXPECT_NE(all.find("pool." + std::to_string(first_b)), std::string::npos) << all;
}

TEST(CachedPath, ChainNeverValidatedIsDeclinedAndItsInversionReported) {
  Harness h;
  Engine& e = h.engine();
  const LockId a = h.Lock("A"), b = h.Lock("B"), c = h.Lock("C");
  ThreadState& t = h.T(1);
  // A -> B is validated; C -> A too (by another thread).
  Take(e, t, a), Take(e, t, b), Drop(e, t, b), Drop(e, t, a);
  Take(e, h.T(2), c), Take(e, h.T(2), a), Drop(e, h.T(2), a), Drop(e, h.T(2), c);
  EXPECT_TRUE(h.findings().empty());
  // Holding A, B is known but C is not: the cached path takes B and declines C.
  Take(e, t, a);
  EXPECT_TRUE(e.TryAcquireCached(t, b, AcquireMode::kExclusive, false, 0, e.HandleOf(b)));
  Drop(e, t, b);
  EXPECT_FALSE(e.TryAcquireCached(t, c, AcquireMode::kExclusive, false, 0, e.HandleOf(c)));
  Take(e, t, c);
  ASSERT_TRUE(h.Has(FindingKind::kCircularDependency)) << h.AllReports();
  EXPECT_EQ(h.First(FindingKind::kCircularDependency)->classes.size(), 2u);
}

TEST(CachedPath, SameClassChainIsLeftToTheFullAcquire) {
  Harness h;
  Engine& e = h.engine();
  const LockId x1 = h.Lock("x1", "node"), x2 = h.Lock("x2", "node");
  ThreadState& t = h.T(1);
  for (int i = 0; i < 3; ++i) Take(e, t, x1), Take(e, t, x2), Drop(e, t, x2), Drop(e, t, x1);
  Take(e, t, x2);
  EXPECT_FALSE(e.TryAcquireCached(t, x1, AcquireMode::kExclusive, false, 0, e.HandleOf(x1)));
  Take(e, t, x1);
  EXPECT_TRUE(h.Has(FindingKind::kSameClassInstanceOrder)) << h.AllReports();
}

TEST(CachedPath, LockUsedInHardirqIsDeclinedWithIrqsOnAndReported) {
  Harness h;
  Engine& e = h.engine();
  const LockId l = h.Lock("irq_lock");
  ThreadState& t = h.T(1);
  // Taken with hardirqs off only: its class has no HARDIRQ-ON-W bit.
  h.IrqOff(1);
  for (int i = 0; i < 3; ++i) Take(e, t, l), Drop(e, t, l);
  EXPECT_TRUE(e.TryAcquireCached(t, l, AcquireMode::kExclusive, false, 0, e.HandleOf(l)));
  Drop(e, t, l);
  h.Enter(1, kHardirqContext);
  Take(e, t, l), Drop(e, t, l);  // IN-HARDIRQ-W
  h.Exit(1, kHardirqContext);
  h.IrqOn(1);
  // Hardirqs on now: the acquisition needs HARDIRQ-ON-W, which the class lacks.
  EXPECT_FALSE(e.TryAcquireCached(t, l, AcquireMode::kExclusive, false, 0, e.HandleOf(l)));
  Take(e, t, l);
  ASSERT_TRUE(h.Has(FindingKind::kInconsistentLockState)) << h.AllReports();
  EXPECT_EQ(h.First(FindingKind::kInconsistentLockState)->headline, "inconsistent lock state");
}

TEST(CachedPath, ContextEnabledLaterIsNotCoveredByEarlierUsage) {
  // A signal context that no thread had enabled when the lock's usage was recorded: once a
  // thread enables it, the lock's ENABLED bits no longer cover that thread's state.
  Harness h;
  Engine& e = h.engine();
  const LockId l = h.Lock("sig_lock");
  const ContextId sig = kFirstNumberedContext + 9;
  ThreadState& t1 = h.T(1);
  for (int i = 0; i < 3; ++i) Take(e, t1, l), Drop(e, t1, l);
  // Thread 2 runs the signal's handler (the signal blocked, as during any handler) and takes
  // the lock in it: IN-<sig>.
  ThreadState& t2 = h.T(2);
  h.Enter(2, sig);
  Take(e, t2, l), Drop(e, t2, l);
  h.Exit(2, sig);
  EXPECT_TRUE(e.TryAcquireCached(t1, l, AcquireMode::kExclusive, false, 0, e.HandleOf(l)));
  Drop(e, t1, l);
  EXPECT_TRUE(h.findings().empty()) << h.AllReports();
  // Thread 3 is the first with the signal unblocked: taking the lock now needs <sig>-ON-W,
  // which the class lacks. Declined, and the full path reports.
  ThreadState& t3 = h.T(3);
  h.IrqOn(3, sig);
  EXPECT_FALSE(e.TryAcquireCached(t3, l, AcquireMode::kExclusive, false, 0, e.HandleOf(l)));
  Take(e, t3, l);
  ASSERT_TRUE(h.Has(FindingKind::kInconsistentLockState)) << h.AllReports();
}

TEST(CachedPath, ReaderAndTrylockStepsAreTheirOwnChains) {
  Harness h;
  Engine& e = h.engine();
  const LockId a = h.Lock("A"), b = h.Lock("B");
  ThreadState& t = h.T(1);
  Take(e, t, a), Take(e, t, b), Drop(e, t, b), Drop(e, t, a);
  Take(e, t, a);
  // A -> B validated exclusive; a shared or trylock B after A is another chain.
  EXPECT_FALSE(e.TryAcquireCached(t, b, AcquireMode::kShared, false, 0, e.HandleOf(b)));
  EXPECT_FALSE(e.TryAcquireCached(t, b, AcquireMode::kExclusive, true, 0, e.HandleOf(b)));
  EXPECT_TRUE(e.TryAcquireCached(t, b, AcquireMode::kExclusive, false, 0, e.HandleOf(b)));
}

TEST(CachedPath, DestroyedLockHandleIsDeclined) {
  Harness h;
  Engine& e = h.engine();
  const LockId a = h.Lock("A");
  ThreadState& t = h.T(1);
  const InstanceHandle handle = e.HandleOf(a);
  Take(e, t, a), Drop(e, t, a);
  e.DestroyLock(t, a);
  EXPECT_FALSE(e.TryAcquireCached(t, a, AcquireMode::kExclusive, false, 0, handle));
  AcquireRequest r;
  r.lock = a;
  e.Acquire(t, r);
  EXPECT_TRUE(h.Has(FindingKind::kUseOfDestroyedLock)) << h.AllReports();
}

}  // namespace
}  // namespace lockgraph
