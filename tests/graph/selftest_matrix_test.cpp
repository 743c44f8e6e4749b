// A self-test matrix in the spirit of the kernel's lib/locking-selftest.c, written from scratch:
// lock-order families across lock kinds, reader/writer cycles, lifecycle cases and the IRQ
// families for hardirq and softirq, each with its expected verdict.
#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "harness.h"

namespace lockgraph::testing {
namespace {

enum class Kind { kMutex, kWriter, kRecursiveReader, kReader };

std::string KindName(Kind k) {
  switch (k) {
    case Kind::kMutex: return "mutex";
    case Kind::kWriter: return "writer";
    case Kind::kRecursiveReader: return "rlock";
    case Kind::kReader: return "rsem";
  }
  return "?";
}

AcquireMode ModeOf(Kind k) {
  switch (k) {
    case Kind::kRecursiveReader: return AcquireMode::kSharedRecursive;
    case Kind::kReader: return AcquireMode::kShared;
    default: return AcquireMode::kExclusive;
  }
}

// Each pair "XY" of a family is one critical section: lock X, lock Y, unlock Y, unlock X.
struct Family {
  const char* name;
  std::vector<const char*> pairs;
};

const Family kFamilies[] = {
    {"ABBA", {"AB", "BA"}},
    {"ABBCCA", {"AB", "BC", "CA"}},
    {"ABCABC", {"AB", "CA", "BC"}},
    {"ABBCCDDA", {"AB", "BC", "CD", "DA"}},
    {"ABCDBDDA", {"AB", "CD", "BD", "DA"}},
    {"ABCDBCDA", {"AB", "CD", "BC", "DA"}},
};

void RunPairs(Harness& h, const std::vector<const char*>& pairs, Kind kind) {
  const AcquireMode mode = ModeOf(kind);
  int thread = 0;
  for (const char* p : pairs) {
    const std::string x(1, p[0]), y(1, p[1]);
    h.Acq(thread, x, mode).Acq(thread, y, mode).U(thread, y).U(thread, x);
    ++thread;
  }
}

TEST(SelfTestMatrix, CircularFamiliesAcrossLockKinds) {
  for (const Family& family : kFamilies) {
    for (Kind kind : {Kind::kMutex, Kind::kWriter, Kind::kRecursiveReader, Kind::kReader}) {
      Harness h;
      RunPairs(h, family.pairs, kind);
      // Only recursive readers cannot deadlock on each other.
      const bool expect_report = kind != Kind::kRecursiveReader;
      EXPECT_EQ(h.Has(FindingKind::kCircularDependency), expect_report)
          << family.name << "_" << KindName(kind) << "\n" << h.AllReports();
      EXPECT_EQ(h.Count(FindingKind::kCircularDependency), expect_report ? 1u : 0u)
          << family.name << "_" << KindName(kind);
      EXPECT_EQ(h.engine().CheckInvariants(), "");
    }
  }
}

TEST(SelfTestMatrix, AaAcrossLockKinds) {
  for (Kind kind : {Kind::kMutex, Kind::kWriter, Kind::kRecursiveReader, Kind::kReader}) {
    Harness h;
    h.Acq(0, "A", ModeOf(kind)).Acq(0, "A", ModeOf(kind));
    const bool expect_report = kind != Kind::kRecursiveReader;
    EXPECT_EQ(h.Has(FindingKind::kRecursiveLocking), expect_report) << "AA_" << KindName(kind);
  }
}

TEST(SelfTestMatrix, DoubleUnlockAndInitOfHeldLock) {
  for (Kind kind : {Kind::kMutex, Kind::kWriter, Kind::kRecursiveReader, Kind::kReader}) {
    Harness h;
    h.Acq(0, "A", ModeOf(kind)).U(0, "A").U(0, "A");
    EXPECT_TRUE(h.Has(FindingKind::kBadUnlockBalance)) << "double_unlock_" << KindName(kind);
    Harness g;
    const LockId a = g.Lock("A");
    g.Acq(0, "A", ModeOf(kind));
    g.engine().InitLock(g.T(0), a, g.engine().LockClass(a));
    EXPECT_TRUE(g.Has(FindingKind::kHeldLockReinit)) << "init_held_" << KindName(kind);
  }
}

// Mixed read/write ABBA: X read (recursive or not) against Y write.
struct Mixed {
  const char* name;
  AcquireMode x_first, y_first, y_second, x_second;
  bool deadlock;
};

TEST(SelfTestMatrix, MixedReadWriteAbba) {
  const AcquireMode W = AcquireMode::kExclusive, R = AcquireMode::kSharedRecursive,
                    N = AcquireMode::kShared;
  const Mixed cases[] = {
      {"rlock_ABBA1 (read X, Y | Y, write X)", R, W, W, W, true},
      {"rlock_ABBA2 (read X, Y | Y, read X)", R, W, W, R, false},
      {"rlock_ABBA3 (write X, Y | Y, read X)", W, W, W, R, true},
      {"rsem_ABBA1 (read X, Y | Y, read X)", N, W, W, N, true},
      {"rsem_ABBA2 (read X, Y | Y, write X)", N, W, W, W, true},
      {"rsem_ABBA3 (write X, read Y | read Y, write X)", W, N, N, W, true},
      {"rlock_rlock (read X, read Y | read Y, read X)", R, R, R, R, false},
  };
  for (const Mixed& c : cases) {
    Harness h;
    h.Acq(0, "X", c.x_first).Acq(0, "Y", c.y_first).U(0, "Y").U(0, "X");
    h.Acq(1, "Y", c.y_second).Acq(1, "X", c.x_second).U(1, "X").U(1, "Y");
    EXPECT_EQ(h.Has(FindingKind::kCircularDependency), c.deadlock) << c.name << "\n"
                                                                   << h.AllReports();
  }
}

// Three-lock reader/writer cycles: only strong cycles can deadlock.
TEST(SelfTestMatrix, ThreeLockReaderWriterCycles) {
  const AcquireMode W = AcquireMode::kExclusive, R = AcquireMode::kSharedRecursive;
  struct Cycle {
    const char* name;
    AcquireMode m[6];  // X1 Y1 | Y2 Z2 | Z3 X3
    bool deadlock;
  };
  const Cycle cases[] = {
      {"W1R2_W2R3_W3R1", {W, R, W, R, W, R}, true},
      {"W1W2_R2R3_W3R1", {W, W, R, R, W, R}, true},
      {"W1R2_R2R3_W3W1", {W, R, R, R, W, W}, false},
      {"W1W2_R2R3_R3W1", {W, W, R, R, R, W}, false},
      {"W1R2_W2W3_R3W1", {W, R, W, W, R, W}, true},   // ER, EN, SN: strong
      {"R1R2_W2W3_R3R1", {R, R, W, W, R, R}, false},  // SR, EN, SR: SR then SR is not strong
      {"W1W2_W2W3_W3W1", {W, W, W, W, W, W}, true},
  };
  for (const Cycle& c : cases) {
    Harness h;
    h.Acq(0, "X", c.m[0]).Acq(0, "Y", c.m[1]).U(0, "Y").U(0, "X");
    h.Acq(1, "Y", c.m[2]).Acq(1, "Z", c.m[3]).U(1, "Z").U(1, "Y");
    h.Acq(2, "Z", c.m[4]).Acq(2, "X", c.m[5]).U(2, "X").U(2, "Z");
    EXPECT_EQ(h.Has(FindingKind::kCircularDependency), c.deadlock) << c.name << "\n"
                                                                   << h.AllReports();
  }
}

// --- IRQ families ------------------------------------------------------------------------

using Event = std::function<void(Harness&)>;

// Runs every order of `events` (each on its own thread) and checks the verdict.
void EveryOrder(const std::string& name, std::vector<Event> events, bool expect_report) {
  std::vector<int> order(events.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  do {
    Harness h;
    for (int i : order) events[i](h);
    std::string seq;
    for (int i : order) seq += std::to_string(i + 1);
    const bool reported = !h.findings().empty();
    EXPECT_EQ(reported, expect_report) << name << " order E" << seq << "\n" << h.AllReports();
  } while (std::next_permutation(order.begin(), order.end()));
}

class IrqFamilies : public ::testing::TestWithParam<ContextId> {};

TEST_P(IrqFamilies, IrqSafeLockTakenWithIrqsOn) {
  const ContextId ctx = GetParam();
  EveryOrder("irqsafe1",
             {[ctx](Harness& h) { h.Enter(0, ctx).L(0, "A").U(0, "A").Exit(0, ctx); },
              [](Harness& h) { h.L(1, "A").U(1, "A"); }},
             true);
  EveryOrder("irqsafe1_irqs_off",
             {[ctx](Harness& h) { h.Enter(0, ctx).L(0, "A").U(0, "A").Exit(0, ctx); },
              [ctx](Harness& h) { h.IrqOff(1, ctx).L(1, "A").U(1, "A").IrqOn(1, ctx); }},
             false);
}

TEST_P(IrqFamilies, SafeAToUnsafeBInEveryOrder) {
  const ContextId ctx = GetParam();
  EveryOrder("irqsafe2",
             {[ctx](Harness& h) { h.Enter(0, ctx).L(0, "A").U(0, "A").Exit(0, ctx); },
              [](Harness& h) { h.L(1, "B").U(1, "B"); },
              [ctx](Harness& h) {
                h.IrqOff(2, ctx).L(2, "A").L(2, "B").U(2, "B").U(2, "A").IrqOn(2, ctx);
              }},
             true);
  // Unsafe B -> safe A is fine: an interrupt taking A cannot wait on a B holder.
  EveryOrder("irqsafe2_reverse_ok",
             {[ctx](Harness& h) { h.Enter(0, ctx).L(0, "A").U(0, "A").Exit(0, ctx); },
              [](Harness& h) { h.L(1, "B").U(1, "B"); },
              [ctx](Harness& h) {
                h.IrqOff(2, ctx).L(2, "B").L(2, "A").U(2, "A").U(2, "B").IrqOn(2, ctx);
              }},
             false);
}

TEST_P(IrqFamilies, IrqInversionThroughAMiddleLock) {
  const ContextId ctx = GetParam();
  EveryOrder("irq_inversion",
             {[ctx](Harness& h) { h.Enter(0, ctx).L(0, "A").U(0, "A").Exit(0, ctx); },
              [](Harness& h) { h.L(1, "C").U(1, "C"); },
              [ctx](Harness& h) {
                h.IrqOff(2, ctx).L(2, "A").L(2, "B").U(2, "B").U(2, "A").IrqOn(2, ctx);
              },
              [ctx](Harness& h) {
                h.IrqOff(3, ctx).L(3, "B").L(3, "C").U(3, "C").U(3, "B").IrqOn(3, ctx);
              }},
             true);
}

TEST_P(IrqFamilies, IrqReadRecursion) {
  const ContextId ctx = GetParam();
  // Read-locking A in the interrupt while a writer of A waits on a reader of B.
  EveryOrder("irq_read_recursion",
             {[ctx](Harness& h) {
                h.IrqOff(0, ctx).L(0, "A").L(0, "B").U(0, "B").U(0, "A").IrqOn(0, ctx);
              },
              [](Harness& h) { h.R(1, "B").U(1, "B"); },
              [ctx](Harness& h) { h.Enter(2, ctx).R(2, "A").U(2, "A").Exit(2, ctx); }},
             true);
  // Recursive reads of A both in the interrupt and with interrupts on: fine.
  EveryOrder("irq_read_recursion_ok",
             {[ctx](Harness& h) { h.R(1, "A").U(1, "A"); },
              [ctx](Harness& h) { h.Enter(2, ctx).R(2, "A").U(2, "A").Exit(2, ctx); }},
             false);
}

INSTANTIATE_TEST_SUITE_P(HardAndSoft, IrqFamilies,
                         ::testing::Values(kHardirqContext, kSoftirqContext),
                         [](const auto& info) {
                           return info.param == kHardirqContext ? std::string("hardirq")
                                                                : std::string("softirq");
                         });

}  // namespace
}  // namespace lockgraph::testing
