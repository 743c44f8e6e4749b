// One test per lockdep rule: what is reported, with which headline and which locks, and what is not.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "harness.h"

namespace lockgraph::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

constexpr ContextId kSigusr1 = kFirstNumberedContext + 10 - 1;

// --- Circular dependencies -----------------------------------------------------------------

TEST(Circular, AbbaAcrossThreadsIsReportedOnceNamingBothLocks) {
  Harness h;
  h.L(0, "A").L(0, "B").U(0, "B").U(0, "A");
  h.L(1, "B").L(1, "A").U(1, "A").U(1, "B");
  h.L(1, "B").L(1, "A").U(1, "A").U(1, "B");  // again: no second report
  ASSERT_EQ(h.findings().size(), 1u);
  const Finding& f = h.findings()[0];
  EXPECT_EQ(f.kind, FindingKind::kCircularDependency);
  EXPECT_EQ(f.headline, "possible circular locking dependency detected");
  EXPECT_THAT(f.classes, ElementsAre("A", "B"));
  EXPECT_EQ(f.thread_name, "t1");
  const std::string& r = h.reports()[0];
  EXPECT_THAT(r, HasSubstr("WARNING: possible circular locking dependency detected"));
  EXPECT_THAT(r, HasSubstr("is trying to acquire lock:"));
  EXPECT_THAT(r, HasSubstr("-> #1 (B)"));
  EXPECT_THAT(r, HasSubstr("-> #0 (A)"));
  EXPECT_THAT(r, HasSubstr(" *** DEADLOCK ***"));
}

TEST(Circular, ConsistentOrderIsClean) {
  Harness h;
  for (int t = 0; t < 3; ++t) h.L(t, "A").L(t, "B").L(t, "C").U(t, "C").U(t, "B").U(t, "A");
  h.L(3, "A").L(3, "C").U(3, "C").U(3, "A");
  EXPECT_THAT(h.Headlines(), IsEmpty());
}

TEST(Circular, FiveLockCycleListsEveryLinkInReverseOrder) {
  Harness h;
  const char* order[] = {"flush_lock", "cpu_hotplug_lock", "pcp_batch_high_lock",
                         "memory_chain.rwsem", "slab_mutex"};
  for (int i = 0; i < 4; ++i) h.L(i, order[i]).L(i, order[i + 1]).U(i, order[i + 1]).U(i, order[i]);
  h.L(4, "slab_mutex").L(4, "flush_lock");
  ASSERT_EQ(h.findings().size(), 1u);
  const Finding& f = h.findings()[0];
  ASSERT_EQ(f.chain.size(), 5u);
  EXPECT_EQ(f.chain.front().to, "slab_mutex");  // #4: the held lock
  EXPECT_EQ(f.chain.back().to, "flush_lock");   // #0: the lock being acquired
  const std::string& r = h.reports()[0];
  for (int i = 0; i <= 4; ++i) EXPECT_THAT(r, HasSubstr("-> #" + std::to_string(i) + " ("));
  EXPECT_THAT(r, HasSubstr("Chain exists of:"));
  EXPECT_THAT(r, HasSubstr("flush_lock --> cpu_hotplug_lock --> pcp_batch_high_lock --> "
                           "memory_chain.rwsem --> slab_mutex"));
}

TEST(Circular, FingerprintIgnoresWhereTheCycleWasClosed) {
  Harness h1, h2;
  h1.L(0, "A").L(0, "B").U(0, "B").U(0, "A").L(1, "B").L(1, "A");
  h2.L(0, "B").L(0, "A").U(0, "A").U(0, "B").L(1, "A").L(1, "B");
  ASSERT_EQ(h1.findings().size(), 1u);
  ASSERT_EQ(h2.findings().size(), 1u);
  EXPECT_EQ(h1.findings()[0].fingerprint, h2.findings()[0].fingerprint);
  EXPECT_EQ(h1.findings()[0].fingerprint.size(), 16u);
}

TEST(Circular, ValidationGoesOnAfterAFinding) {
  Harness h;
  h.L(0, "A").L(0, "B").U(0, "B").U(0, "A").L(1, "B").L(1, "A").U(1, "A").U(1, "B");
  h.L(0, "C").L(0, "D").U(0, "D").U(0, "C").L(1, "D").L(1, "C");
  EXPECT_EQ(h.Count(FindingKind::kCircularDependency), 2u);
}

TEST(Circular, RecursiveReadReadInversionIsClean) {
  Harness h;
  h.R(0, "A").R(0, "B").U(0, "B").U(0, "A");
  h.R(1, "B").R(1, "A").U(1, "A").U(1, "B");
  EXPECT_THAT(h.Headlines(), IsEmpty());
}

TEST(Circular, ReaderHolderAgainstRecursiveReaderAcquirerIsClean) {
  // A -(SN)-> B and B -(ER)-> A: -(ER)-> then -(SN)-> is not strong; T1's recursive read of A
  // succeeds while T0 only reads A.
  Harness h;
  h.R(0, "A").L(0, "B").U(0, "B").U(0, "A");
  h.L(1, "B").R(1, "A").U(1, "A").U(1, "B");
  EXPECT_THAT(h.Headlines(), IsEmpty());
}

TEST(Circular, ReadWriteInversionIsReported) {
  Harness h;
  h.R(0, "A").L(0, "B").U(0, "B").U(0, "A");
  h.L(1, "B").L(1, "A");
  EXPECT_TRUE(h.Has(FindingKind::kCircularDependency));
}

TEST(Circular, NonRecursiveReadersCanDeadlock) {
  Harness h;
  h.N(0, "A").L(0, "B").U(0, "B").U(0, "A");
  h.L(1, "B").N(1, "A");
  EXPECT_TRUE(h.Has(FindingKind::kCircularDependency));
}

// --- Recursive locking ---------------------------------------------------------------------

TEST(Recursive, SameLockTwiceIsReported) {
  Harness h;
  h.L(0, "A").L(0, "A");
  ASSERT_EQ(h.Headlines(), std::vector<std::string>{"possible recursive locking detected"});
  EXPECT_THAT(h.findings()[0].classes, ElementsAre("A"));
  EXPECT_THAT(h.reports()[0], HasSubstr("but task is already holding lock:"));
}

TEST(Recursive, RecursiveReadAfterReadIsAllowed) {
  Harness h;
  h.R(0, "A").R(0, "A").U(0, "A").U(0, "A");
  h.N(1, "A").R(1, "A").U(1, "A").U(1, "A");
  EXPECT_THAT(h.Headlines(), IsEmpty());
}

TEST(Recursive, NonRecursiveReadOrWriteAfterReadIsReported) {
  Harness h1, h2;
  h1.R(0, "A").N(0, "A");
  h2.L(0, "A").R(0, "A");
  EXPECT_TRUE(h1.Has(FindingKind::kRecursiveLocking));
  EXPECT_TRUE(h2.Has(FindingKind::kRecursiveLocking));
}

TEST(Recursive, SubclassAndNestLockSilenceStrictMode) {
  EngineOptions strict;
  strict.strict_same_class = true;
  Harness h(strict);
  h.Lock("a1", "node");
  h.Lock("a2", "node");
  h.L(0, "a1").L(0, "a2", 1).U(0, "a2").U(0, "a1");
  h.L(1, "big").Acq(1, "a1", AcquireMode::kExclusive, false, 0, "big");
  h.Acq(1, "a2", AcquireMode::kExclusive, false, 0, "big");
  EXPECT_THAT(h.Headlines(), IsEmpty());
}

TEST(Recursive, StrictModeReportsUnannotatedSameClassNesting) {
  EngineOptions strict;
  strict.strict_same_class = true;
  Harness h(strict);
  h.Lock("a1", "node");
  h.Lock("a2", "node");
  h.L(0, "a1").L(0, "a2");
  ASSERT_TRUE(h.Has(FindingKind::kRecursiveLocking));
  EXPECT_THAT(h.reports()[0], HasSubstr("missing lock nesting notation"));
}

TEST(Recursive, SameInstanceAfterCachedSameClassChainIsStillReported) {
  Harness h;
  h.Lock("a1", "node");
  h.Lock("a2", "node");
  h.L(0, "a1").L(0, "a2").U(0, "a2").U(0, "a1");  // caches the chain (node, node)
  EXPECT_THAT(h.Headlines(), IsEmpty());
  h.L(0, "a1").L(0, "a1");
  EXPECT_TRUE(h.Has(FindingKind::kRecursiveLocking));
}

// --- Same class, different instances (default mode) ---------------------------------------

TEST(SameClass, AscendingOnlyIsClean) {
  Harness h;
  for (int i = 0; i < 8; ++i) h.Lock("n" + std::to_string(i), "node_lock");
  for (int t = 0; t < 3; ++t) {
    for (int i = 0; i + 1 < 8; ++i) {  // hand-over-hand
      h.L(t, "n" + std::to_string(i)).L(t, "n" + std::to_string(i + 1));
      h.U(t, "n" + std::to_string(i)).U(t, "n" + std::to_string(i + 1));
    }
  }
  EXPECT_THAT(h.Headlines(), IsEmpty());
}

TEST(SameClass, AscendingAndDescendingIsReportedNamingClassAndInstances) {
  Harness h;
  const LockId a = h.Lock("acct1", "account.lock");
  const LockId b = h.Lock("acct2", "account.lock");
  h.L(0, "acct1").L(0, "acct2").U(0, "acct2").U(0, "acct1");
  EXPECT_THAT(h.Headlines(), IsEmpty());
  h.L(1, "acct2").L(1, "acct1");
  ASSERT_EQ(h.Headlines(), std::vector<std::string>{
                               "possible instance-order deadlock in one lock class detected"});
  const Finding& f = h.findings()[0];
  EXPECT_THAT(f.classes, ElementsAre("account.lock"));
  EXPECT_THAT(f.instances, ElementsAre(a, b));
  EXPECT_THAT(h.reports()[0], HasSubstr("(account.lock)"));
}

TEST(SameClass, ReusedAddressDoesNotInheritInstanceOrder) {
  Harness h;
  const LockId a = h.Lock("x1", "obj.lock");
  const LockId b = h.Lock("x2", "obj.lock");
  h.L(0, "x1").L(0, "x2").U(0, "x2").U(0, "x1");
  // x1 is destroyed and a new object of the class lives at the same address.
  const ClassId c = h.engine().LockClass(a);
  h.engine().DestroyLock(h.T(0), a);
  h.engine().InitLock(h.T(0), a, c);
  h.L(1, "x2").L(1, "x1");
  EXPECT_THAT(h.Headlines(), IsEmpty());
  (void)b;
}

// --- Trylock --------------------------------------------------------------------------------

TEST(Trylock, ReverseOrderTrylockIsClean) {
  Harness h;
  h.L(0, "A").L(0, "B").U(0, "B").U(0, "A");
  h.L(1, "B").Try(1, "A").U(1, "A").U(1, "B");
  EXPECT_THAT(h.Headlines(), IsEmpty());
}

TEST(Trylock, TrylockedLockIsHeldForLaterDependencies) {
  Harness h;
  h.Try(0, "A").L(0, "B").U(0, "B").U(0, "A");
  h.L(1, "B").L(1, "A");
  EXPECT_TRUE(h.Has(FindingKind::kCircularDependency));
}

TEST(Trylock, DependenciesReachPastATrylockToTheLockBelow) {
  // A held, B trylocked, then C: lockdep records B -> C and A -> C.
  Harness h;
  h.L(0, "A").Try(0, "B").L(0, "C").U(0, "C").U(0, "B").U(0, "A");
  h.L(1, "C").L(1, "A");
  EXPECT_TRUE(h.Has(FindingKind::kCircularDependency));
}

// --- IRQ usage ------------------------------------------------------------------------------

TEST(Irq, LockUsedInHardirqAndWithIrqsOnIsInconsistent) {
  Harness h;
  h.Enter(0, kHardirqContext).L(0, "A").U(0, "A").Exit(0, kHardirqContext);
  h.L(1, "A").U(1, "A");
  ASSERT_EQ(h.Headlines(), std::vector<std::string>{"inconsistent lock state"});
  EXPECT_THAT(h.reports()[0], HasSubstr("inconsistent {IN-HARDIRQ-W} -> {HARDIRQ-ON-W} usage."));
  EXPECT_THAT(h.reports()[0], HasSubstr("<Interrupt>"));
}

TEST(Irq, EnabledFirstThenUsedInIrqIsInconsistentToo) {
  Harness h;
  h.L(1, "A").U(1, "A");
  h.Enter(0, kHardirqContext).L(0, "A").U(0, "A").Exit(0, kHardirqContext);
  ASSERT_TRUE(h.Has(FindingKind::kInconsistentLockState));
  EXPECT_THAT(h.reports()[0], HasSubstr("inconsistent {HARDIRQ-ON-W} -> {IN-HARDIRQ-W} usage."));
}

// A report names where the earlier usage bit was first set: each bit has the trace of the
// acquisition that set it, also when one acquisition set several and a later one more.
TEST(Irq, InconsistentReportsShowWhereEachEarlierBitWasFirstSet) {
  Harness h;
  auto take = [&](int t, std::uint64_t ip) {
    AcquireRequest r;
    r.lock = h.Lock("A");
    r.ip = ip;
    h.engine().Acquire(h.T(t), r);
    h.U(t, "A");
  };
  h.IrqOff(1, kSoftirqContext);
  take(1, 0x111);  // HARDIRQ-ON-W
  h.IrqOn(1, kSoftirqContext);
  take(1, 0x222);  // SOFTIRQ-ON-W
  take(1, 0x333);  // nothing new
  h.Enter(0, kHardirqContext);
  take(0, 0x444);
  h.Exit(0, kHardirqContext);
  h.Enter(2, kSoftirqContext);
  take(2, 0x555);
  h.Exit(2, kSoftirqContext);
  ASSERT_EQ(h.Count(FindingKind::kInconsistentLockState), 2u) << h.AllReports();
  EXPECT_EQ(h.findings()[0].previous_bit, "HARDIRQ-ON-W");
  EXPECT_EQ(h.findings()[0].safe_usage.ip, 0x111u);
  EXPECT_EQ(h.findings()[1].previous_bit, "SOFTIRQ-ON-W");
  EXPECT_EQ(h.findings()[1].safe_usage.ip, 0x222u);
  EXPECT_THAT(h.reports()[1], HasSubstr("{SOFTIRQ-ON-W} state was registered at:"));
}

TEST(Irq, IrqsDisabledTwinIsClean) {
  Harness h;
  h.Enter(0, kHardirqContext).L(0, "A").U(0, "A").Exit(0, kHardirqContext);
  h.IrqOff(1).L(1, "A").U(1, "A").IrqOn(1);
  EXPECT_THAT(h.Headlines(), IsEmpty());
}

TEST(Irq, SafeToUnsafeOrderIsReportedWithoutTheInterruptLanding) {
  Harness h;
  h.Enter(0, kHardirqContext).L(0, "i_pages").U(0, "i_pages").Exit(0, kHardirqContext);
  h.L(1, "shadow_nodes.xa").U(1, "shadow_nodes.xa");  // irqs on: hardirq-unsafe
  h.IrqOff(2).L(2, "i_pages").L(2, "shadow_nodes.xa");
  ASSERT_EQ(h.Headlines(),
            std::vector<std::string>{"HARDIRQ-safe -> HARDIRQ-unsafe lock order detected"});
  const Finding& f = h.findings()[0];
  EXPECT_EQ(f.safe_lock, "i_pages");
  EXPECT_EQ(f.unsafe_lock, "shadow_nodes.xa");
  const std::string& r = h.reports()[0];
  EXPECT_THAT(r, HasSubstr("which would create a new lock dependency:"));
  EXPECT_THAT(r, HasSubstr(" (i_pages) -> (shadow_nodes.xa)"));
  EXPECT_THAT(r, HasSubstr("<Interrupt>"));
  EXPECT_THAT(r, HasSubstr("the dependencies between HARDIRQ-irq-safe lock and the holding lock:"));
  EXPECT_THAT(r, HasSubstr("the dependencies between the lock to be acquired and HARDIRQ-irq-unsafe lock:\n"
                           " -> (shadow_nodes.xa)\n"));
}

TEST(Irq, SafeToUnsafeThroughAChainIsReported) {
  Harness h;
  h.Enter(0, kHardirqContext).L(0, "A").U(0, "A").Exit(0, kHardirqContext);
  h.L(1, "C").U(1, "C");
  h.IrqOff(1).L(1, "B").L(1, "C").U(1, "C").U(1, "B").IrqOn(1);
  h.IrqOff(2).L(2, "A").L(2, "B");
  ASSERT_TRUE(h.Has(FindingKind::kIrqSafeToUnsafe));
  const Finding* f = h.First(FindingKind::kIrqSafeToUnsafe);
  EXPECT_EQ(f->safe_lock, "A");
  EXPECT_EQ(f->unsafe_lock, "C");
  EXPECT_THAT(h.reports()[0], HasSubstr("Chain exists of:"));
}

TEST(Irq, UsageArrivingAfterTheDependencyIsAnInversion) {
  Harness h;
  h.Enter(0, kHardirqContext).L(0, "A").U(0, "A").Exit(0, kHardirqContext);
  h.IrqOff(1).L(1, "A").L(1, "B").U(1, "B").U(1, "A").IrqOn(1);
  EXPECT_THAT(h.Headlines(), IsEmpty());
  h.L(2, "B").U(2, "B");  // B becomes hardirq-unsafe
  ASSERT_EQ(h.Headlines(),
            std::vector<std::string>{"possible irq lock inversion dependency detected"});
  EXPECT_EQ(h.findings()[0].safe_lock, "A");
  EXPECT_EQ(h.findings()[0].unsafe_lock, "B");
  EXPECT_THAT(h.reports()[0], HasSubstr("but this lock was taken by another, HARDIRQ-safe lock"));
}

TEST(Irq, SafeUsageArrivingLastIsAnInversionToo) {
  Harness h;
  h.L(2, "B").U(2, "B");
  h.IrqOff(1).L(1, "A").L(1, "B").U(1, "B").U(1, "A").IrqOn(1);
  h.Enter(0, kHardirqContext).L(0, "A").U(0, "A").Exit(0, kHardirqContext);
  ASSERT_TRUE(h.Has(FindingKind::kIrqInversion));
  EXPECT_THAT(h.reports()[0], HasSubstr("but this lock took another, HARDIRQ-unsafe lock"));
}

TEST(Irq, SoftirqStatesAreTrackedSeparately) {
  Harness h;
  h.Enter(0, kSoftirqContext).L(0, "A").U(0, "A").Exit(0, kSoftirqContext);
  h.IrqOff(1, kSoftirqContext).L(1, "A").U(1, "A").IrqOn(1, kSoftirqContext);  // bh off: fine
  EXPECT_THAT(h.Headlines(), IsEmpty());
  h.L(2, "A");
  ASSERT_TRUE(h.Has(FindingKind::kInconsistentLockState));
  EXPECT_THAT(h.reports()[0], HasSubstr("{IN-SOFTIRQ-W} -> {SOFTIRQ-ON-W}"));
}

TEST(Irq, HardirqsOffImplySoftirqsCannotInterrupt) {
  Harness h;
  h.Enter(0, kSoftirqContext).L(0, "A").U(0, "A").Exit(0, kSoftirqContext);
  h.IrqOff(1).L(1, "A").U(1, "A").IrqOn(1);  // hardirqs off: no softirq can run either
  EXPECT_THAT(h.Headlines(), IsEmpty());
}

TEST(Irq, SoftirqDisableNests) {
  Harness h;
  h.Enter(0, kSoftirqContext).L(0, "A").U(0, "A").Exit(0, kSoftirqContext);
  h.IrqOff(1, kSoftirqContext).IrqOff(1, kSoftirqContext).IrqOn(1, kSoftirqContext);
  h.L(1, "A").U(1, "A");  // still one level of local_bh_disable
  EXPECT_THAT(h.Headlines(), IsEmpty());
}

TEST(Irq, RecursiveReadInIrqAndReadWithIrqsOnIsClean) {
  Harness h;
  h.Enter(0, kHardirqContext).R(0, "tasklist_lock").U(0, "tasklist_lock").Exit(0, kHardirqContext);
  h.R(1, "tasklist_lock").U(1, "tasklist_lock");
  EXPECT_THAT(h.Headlines(), IsEmpty());
  h.L(2, "tasklist_lock");
  ASSERT_TRUE(h.Has(FindingKind::kInconsistentLockState));
  EXPECT_THAT(h.reports()[0], HasSubstr("{IN-HARDIRQ-R} -> {HARDIRQ-ON-W}"));
}

TEST(Irq, TrylockInIrqDoesNotMakeTheLockIrqSafe) {
  Harness h;
  h.Enter(0, kHardirqContext).Try(0, "A").U(0, "A").Exit(0, kHardirqContext);
  h.L(1, "A").U(1, "A");
  EXPECT_THAT(h.Headlines(), IsEmpty());
}

TEST(Irq, NumberedContextsAreNamedInReports) {
  Harness h;
  h.engine().SetContextName(kSigusr1, "SIGUSR1");
  h.IrqOn(1, kSigusr1);  // numbered contexts start disabled: the signal is now deliverable
  h.Enter(0, kSigusr1).L(0, "log_lock").U(0, "log_lock").Exit(0, kSigusr1);
  h.L(1, "log_lock").U(1, "log_lock");
  ASSERT_EQ(h.Headlines(), std::vector<std::string>{"inconsistent lock state"});
  EXPECT_EQ(h.findings()[0].context, "SIGUSR1");
  EXPECT_THAT(h.reports()[0], HasSubstr("{IN-SIGUSR1-W} -> {SIGUSR1-ON-W}"));
  EXPECT_THAT(h.reports()[0], HasSubstr("<SIGUSR1 handler>"));
}

TEST(Irq, BlockedSignalTwinIsClean) {
  Harness h;
  h.engine().SetContextName(kSigusr1, "SIGUSR1");
  h.Enter(0, kSigusr1).L(0, "log_lock").U(0, "log_lock").Exit(0, kSigusr1);
  h.L(1, "log_lock").U(1, "log_lock");  // SIGUSR1 never enabled on thread 1
  EXPECT_THAT(h.Headlines(), IsEmpty());
}

TEST(Irq, SignalSafeToUnsafeUsesTheSignalName) {
  Harness h;
  h.engine().SetContextName(kSigusr1, "SIGUSR1");
  h.Enter(0, kSigusr1).L(0, "A").U(0, "A").Exit(0, kSigusr1);
  h.IrqOn(1, kSigusr1).L(1, "B").U(1, "B");
  h.L(2, "A").L(2, "B");
  ASSERT_EQ(h.Headlines(),
            std::vector<std::string>{"SIGUSR1-safe -> SIGUSR1-unsafe lock order detected"});
  EXPECT_THAT(h.reports()[0], HasSubstr("block(SIGUSR1);"));
}

TEST(Irq, DependenciesDoNotCrossIntoInterruptContext) {
  // A lock taken in a handler while process context holds another is no dependency.
  Harness h;
  h.L(0, "A").Enter(0, kHardirqContext).L(0, "B").U(0, "B").Exit(0, kHardirqContext).U(0, "A");
  h.IrqOff(1).L(1, "B").L(1, "A");
  EXPECT_FALSE(h.Has(FindingKind::kCircularDependency));
}

// --- Lifecycle -----------------------------------------------------------------------------

TEST(Lifecycle, DoubleUnlockIsBadUnlockBalance) {
  Harness h;
  h.L(0, "A").U(0, "A").U(0, "A");
  ASSERT_EQ(h.Headlines(), std::vector<std::string>{"bad unlock balance detected!"});
  EXPECT_THAT(h.findings()[0].classes, ElementsAre("A"));
  EXPECT_THAT(h.reports()[0], HasSubstr("but there are no more locks to release!"));
}

TEST(Lifecycle, BadUnlockOfTwoDifferentLocksIsReportedTwice) {
  Harness h;
  h.Lock("X");
  h.Lock("Y");
  h.U(0, "X").U(0, "Y").U(0, "X");
  EXPECT_EQ(h.Count(FindingKind::kBadUnlockBalance), 2u);
}

TEST(Lifecycle, InitOfAHeldLockIsReported) {
  Harness h;
  const LockId a = h.Lock("A");
  h.L(0, "A");
  h.engine().InitLock(h.T(0), a, h.engine().LockClass(a));
  ASSERT_EQ(h.Headlines(), std::vector<std::string>{"held lock re-initialized!"});
}

TEST(Lifecycle, DestroyOfAHeldLockIsReported) {
  Harness h;
  const LockId a = h.Lock("A");
  h.L(0, "A");
  h.engine().DestroyLock(h.T(0), a, 0x42);
  ASSERT_EQ(h.Headlines(), std::vector<std::string>{"held lock freed!"});
  EXPECT_THAT(h.findings()[0].classes, ElementsAre("A"));
}

TEST(Lifecycle, UseOfADestroyedLockNamesItAndWhereItWasDestroyed) {
  Harness h;
  const LockId a = h.Lock("lru.lock");
  h.L(0, "lru.lock").U(0, "lru.lock");
  h.engine().DestroyLock(h.T(0), a, 0x4242);
  h.L(1, "lru.lock");
  ASSERT_EQ(h.Headlines(), std::vector<std::string>{"use of destroyed lock detected!"});
  EXPECT_EQ(h.findings()[0].destroy_ip, 0x4242u);
  EXPECT_THAT(h.reports()[0], HasSubstr("which was destroyed at:"));
  EXPECT_THAT(h.reports()[0], HasSubstr("(lru.lock)"));
}

TEST(Lifecycle, LockStateTellsDestroyedFromUnknown) {
  Harness h;
  const LockId a = h.Lock("A");
  EXPECT_EQ(h.engine().GetLockState(a), Engine::LockState::kLive);
  EXPECT_EQ(h.engine().GetLockState(0xdead0), Engine::LockState::kUnknown);
  h.engine().DestroyLock(h.T(0), a);
  EXPECT_EQ(h.engine().GetLockState(a), Engine::LockState::kDestroyed);
  h.engine().InitLock(h.T(0), a, h.engine().RegisterClass(1, "A2"));
  EXPECT_EQ(h.engine().GetLockState(a), Engine::LockState::kLive);
}

TEST(Lifecycle, ThreadExitWithALockHeldIsReported) {
  Harness h;
  h.L(3, "A");
  h.engine().ThreadExit(h.T(3));
  ASSERT_EQ(h.Headlines(), std::vector<std::string>{"t3/103 still has locks held!"});
  EXPECT_THAT(h.reports()[0], HasSubstr("1 lock held by t3/103:"));
}

TEST(Lifecycle, InterruptExitWithALockHeldIsReported) {
  Harness h;
  h.Enter(0, kHardirqContext).L(0, "A").Exit(0, kHardirqContext);
  ASSERT_EQ(h.Headlines(),
            std::vector<std::string>{"lock held when returning from interrupt context!"});
  EXPECT_EQ(h.T(0).held_count(), 0u);
}

TEST(Lifecycle, OutOfOrderReleaseKeepsTheRestConsistent) {
  Harness h;
  h.L(0, "A").L(0, "B").L(0, "C").U(0, "B").L(0, "D").U(0, "D").U(0, "C").U(0, "A");
  EXPECT_THAT(h.Headlines(), IsEmpty());
  EXPECT_EQ(h.T(0).held_count(), 0u);
  h.L(1, "D").L(1, "A");
  EXPECT_TRUE(h.Has(FindingKind::kCircularDependency));  // A -> B -> C -> D existed
  EXPECT_EQ(h.engine().CheckInvariants(), "");
}

// --- Capacity and turning off --------------------------------------------------------------

TEST(Capacity, ThousandsOfHeldLocksWork) {
  Harness h;
  for (int i = 0; i < 1500; ++i) h.L(0, "l" + std::to_string(i));
  EXPECT_EQ(h.T(0).held_count(), 1500u);
  EXPECT_TRUE(h.engine().enabled());
  EXPECT_THAT(h.Headlines(), IsEmpty());
}

TEST(Capacity, HittingAClassBoundTurnsTheValidatorOffWithAReason) {
  EngineOptions o;
  o.max_classes = 8;
  Harness h(o);
  for (int i = 0; i < 10; ++i) h.L(0, "l" + std::to_string(i));
  EXPECT_FALSE(h.engine().enabled());
  EXPECT_THAT(h.turned_off(), HasSubstr("more than 8 lock classes"));
}

TEST(Capacity, HittingTheMemoryCeilingTurnsTheValidatorOff) {
  EngineOptions o;
  o.memory_limit_bytes = 64 << 10;
  Harness h(o);
  for (int i = 0; i < 2000 && h.engine().enabled(); ++i) {
    h.L(0, "a" + std::to_string(i)).L(0, "b" + std::to_string(i)).U(0, "b" + std::to_string(i));
    h.U(0, "a" + std::to_string(i));
  }
  EXPECT_FALSE(h.engine().enabled());
  EXPECT_THAT(h.turned_off(), HasSubstr("memory limit"));
}

}  // namespace
}  // namespace lockgraph::testing
