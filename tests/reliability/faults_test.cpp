// Faults a host program puts the shim through: fork with locks held, threads exiting or being
// cancelled with locks held, signal storms landing inside hooks, exceptions unwinding through
// guards. Under `lockgraph run` each must behave exactly as natively: same output, same exit
// status, no hang, and no report unless the program really has a locking bug.
#include <gtest/gtest.h>

#include "harness.h"

namespace lockgraph::reliability {
namespace {

constexpr int kTimeout = 60;

// Runs `args` natively and under lockgraph; expects the same stdout and exit status, no
// report and no internal failure.
void ExpectSameAndSilent(const std::vector<std::string>& args) {
  const Result native = RunProgram(Native(args), kTimeout);
  ASSERT_FALSE(native.timed_out);
  ASSERT_EQ(native.exit_code, 0) << native.err;
  const Result lg = RunProgram(UnderLockgraph(args), kTimeout);
  ASSERT_FALSE(lg.timed_out) << "hang under lockgraph; stderr:\n" << lg.err;
  EXPECT_EQ(lg.exit_code, native.exit_code) << lg.err;
  EXPECT_EQ(lg.out, native.out);
  EXPECT_EQ(Count(lg.err, "WARNING:"), 0) << lg.err;
  EXPECT_EQ(Count(lg.err, "turning off the validator"), 0) << lg.err;
}

TEST(Fork, LockHeldAcrossForkIsReleasedByTheChildWithoutAReport) {
  ExpectSameAndSilent({"fork-held"});
}

TEST(Fork, ForksWhileOtherThreadsAreInsideHooksNeverHangTheChild) {
  ExpectSameAndSilent({"fork-storm"});
}

TEST(ThreadExit, ThreadEndingWithALockHeldIsReportedOnce) {
  const Result lg = RunProgram(UnderLockgraph({"thread-exit-held"}, {"--exitcode", "66"}), kTimeout);
  ASSERT_FALSE(lg.timed_out);
  EXPECT_EQ(lg.out, "joined\n");
  EXPECT_EQ(lg.exit_code, 66) << lg.err;
  EXPECT_EQ(Count(lg.err, "WARNING:"), 1) << lg.err;
  EXPECT_EQ(Count(lg.err, "still has locks held!"), 1) << lg.err;
  EXPECT_NE(lg.err.find("lock_c"), std::string::npos) << lg.err;
}

TEST(ThreadExit, ProcessExitingWhileThreadsHoldLocksIsNotAFinding) {
  ExpectSameAndSilent({"exit-held"});
}

TEST(Cancellation, CancelledThreadsReleasingLocksInCleanupHandlersAreClean) {
  ExpectSameAndSilent({"cancel"});
}

TEST(Signals, AlarmStormInterruptingHooksKeepsCountsAndStaysSilent) {
  ExpectSameAndSilent({"signal-storm"});
}

TEST(Exceptions, UnwindingThroughLockGuardsReleasesEveryLock) {
  ExpectSameAndSilent({"exceptions"});
}

// A check that the tests above can fail: the same program with a real inversion is reported.
TEST(Sanity, RealInversionIsReportedWithBothLocks) {
  const Result lg = RunProgram(UnderLockgraph({"abba"}), kTimeout);
  ASSERT_FALSE(lg.timed_out);
  EXPECT_EQ(lg.exit_code, 0);
  EXPECT_EQ(Count(lg.err, "WARNING: possible circular locking dependency detected"), 1) << lg.err;
  EXPECT_NE(lg.err.find("lock_a"), std::string::npos) << lg.err;
  EXPECT_NE(lg.err.find("lock_b"), std::string::npos) << lg.err;
}

}  // namespace
}  // namespace lockgraph::reliability
