// Runs real programs under liblockgraph (LD_PRELOAD, or linked) and checks what a user sees:
// the report's headline, the locks it names, the exit code; every buggy case has a silent twin.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <span>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "lockgraph/log_format.h"

namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr int kFoundExit = 66;

struct RunResult {
  int exit_code = -1;
  std::string out, err;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string TempPath(const std::string& tag) {
  const char* dir = getenv("TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/lg_rt_" + tag + "_" + std::to_string(getpid()) +
         "_" + std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
}

// Runs argv with extra environment entries; stdout/stderr captured; killed after 60 s.
RunResult RunProgram(const std::vector<std::string>& argv, const std::vector<std::string>& env = {}) {
  const std::string out_path = TempPath("out"), err_path = TempPath("err");
  const pid_t pid = fork();
  if (pid == 0) {
    int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(out, 1);
    dup2(err, 2);
    for (const std::string& e : env) putenv(strdup(e.c_str()));
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(strdup(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  RunResult r;
  int status = 0;
  for (int waited_ms = 0;; waited_ms += 10) {
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (waited_ms > 60000) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      ADD_FAILURE() << argv.back() << ": timed out (hung?)";
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = ReadFile(out_path);
  r.err = ReadFile(err_path);
  unlink(out_path.c_str());
  unlink(err_path.c_str());
  return r;
}

std::string Preload() { return std::string("LD_PRELOAD=") + LG_RUNTIME_LIB; }

RunResult RunCase(const char* program, const std::string& name,
                  const std::string& options = "exitcode=66") {
  return RunProgram({program, name}, {Preload(), "LOCKGRAPH_OPTIONS=" + options});
}
RunResult RunC(const std::string& name) { return RunCase(LG_CASES, name); }
RunResult RunCpp(const std::string& name) { return RunCase(LG_CASES_CPP, name); }
RunResult RunApi(const std::string& name) {
  return RunProgram({LG_API_CASES, name}, {"LOCKGRAPH_OPTIONS=exitcode=66"});  // linked, no preload
}

int CountOf(const std::string& text, const std::string& what) {
  int n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

std::string Shown(const RunResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\n--- stdout ---\n" + r.out +
         "--- stderr ---\n" + r.err;
}

void ExpectSilent(const RunResult& r) {
  EXPECT_EQ(r.exit_code, 0) << Shown(r);
  EXPECT_THAT(r.err, Not(HasSubstr("WARNING"))) << Shown(r);
  EXPECT_THAT(r.err, Not(HasSubstr("turning off the validator"))) << Shown(r);
}

void ExpectOneReport(const RunResult& r, const std::string& headline) {
  EXPECT_EQ(r.exit_code, kFoundExit) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("WARNING: " + headline)) << Shown(r);
  EXPECT_EQ(CountOf(r.err, "WARNING:"), 1) << Shown(r);
}

const char kCircular[] = "possible circular locking dependency detected";

// --- Allocators that lock inside malloc ----------------------------------------------------------

// jemalloc (what Debian's redis-server is linked with) trylocks its own mutexes inside malloc;
// lockgraph must pass those through, in either preload order, and still check the program.
const char kJemalloc[] = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2";

RunResult RunWithAllocator(const std::string& allocator, const std::string& name,
                           bool allocator_first) {
  const std::string preload = allocator_first ? allocator + ":" + LG_RUNTIME_LIB
                                              : std::string(LG_RUNTIME_LIB) + ":" + allocator;
  return RunProgram({LG_CASES, name},
                    {"LD_PRELOAD=" + preload, "LOCKGRAPH_OPTIONS=exitcode=66"});
}

TEST(ShimAllocator, JemallocPreloadedWithTheShimNeitherHangsNorReports) {
  if (access(kJemalloc, R_OK) != 0) GTEST_SKIP() << kJemalloc << " not installed (libjemalloc2)";
  for (bool first : {true, false}) {
    RunResult r = RunWithAllocator(kJemalloc, "malloc_threads_ok", first);
    ExpectSilent(r);
    EXPECT_THAT(r.out, HasSubstr("malloc_threads_ok: done")) << Shown(r);
  }
}

TEST(ShimAllocator, JemallocPreloadedWithTheShimStillFindsAbba) {
  if (access(kJemalloc, R_OK) != 0) GTEST_SKIP() << kJemalloc << " not installed (libjemalloc2)";
  for (bool first : {true, false}) {
    RunResult r = RunWithAllocator(kJemalloc, "abba", first);
    ExpectOneReport(r, kCircular);
    EXPECT_THAT(r.err, HasSubstr("(lock_a)")) << Shown(r);
    EXPECT_THAT(r.err, HasSubstr("(lock_b)")) << Shown(r);
  }
}

// Any preloaded library that defines malloc and locks inside it is treated like jemalloc.
TEST(ShimAllocator, UnknownAllocatorLockingInsideMallocNeitherHangsNorReports) {
  for (bool first : {true, false}) {
    RunResult r = RunWithAllocator(LG_LOCK_ALLOC, "malloc_threads_ok", first);
    ExpectSilent(r);
    EXPECT_THAT(r.out, HasSubstr("malloc_threads_ok: done")) << Shown(r);
    r = RunWithAllocator(LG_LOCK_ALLOC, "abba", first);
    ExpectOneReport(r, kCircular);
    EXPECT_THAT(r.err, HasSubstr("(lock_b)")) << Shown(r);
    EXPECT_THAT(r.err, Not(HasSubstr("arena_lock"))) << Shown(r);
  }
}

// --- Lock orders --------------------------------------------------------------------------------

TEST(ShimOrder, AbbaAcrossThreadsNamesBothLocksAndTheSites) {
  RunResult r = RunC("abba");
  ExpectOneReport(r, kCircular);
  EXPECT_THAT(r.err, HasSubstr("(lock_a)")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("(lock_b)")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("lock2 (cases.c:")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("take_ba")) << Shown(r);
  EXPECT_THAT(r.out, HasSubstr("abba: done")) << Shown(r);
}

TEST(ShimOrder, SameOrderOnBothThreadsIsSilent) { ExpectSilent(RunC("abba_ok")); }

TEST(ShimOrder, CycleOfThreeLocks) {
  RunResult r = RunC("cycle3");
  ExpectOneReport(r, kCircular);
  EXPECT_THAT(r.err, HasSubstr("(lock_c)")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("Chain exists of")) << Shown(r);
}

TEST(ShimOrder, ThreeLocksWithoutCycleIsSilent) { ExpectSilent(RunC("cycle3_ok")); }

TEST(ShimOrder, CycleOfFourLocks) {
  RunResult r = RunC("cycle4");
  ExpectOneReport(r, kCircular);
  EXPECT_THAT(r.err, HasSubstr("(lock_d)")) << Shown(r);
}

TEST(ShimOrder, FourLocksWithoutCycleIsSilent) { ExpectSilent(RunC("cycle4_ok")); }

TEST(ShimOrder, TrylockInReverseOrderIsNoFalseAlarm) { ExpectSilent(RunC("trylock_reverse_ok")); }

TEST(ShimOrder, TimedLockIsABlockingAcquisition) {
  RunResult r = RunC("timedlock_abba");
  ExpectOneReport(r, kCircular);
  EXPECT_THAT(r.err, HasSubstr("timed_ba")) << Shown(r);
}

TEST(ShimOrder, TimedLockInOrderIsSilent) { ExpectSilent(RunC("timedlock_ok")); }

TEST(ShimOrder, TimedLockThatTimesOutLeavesNothingHeld) {
  RunResult r = RunC("timedlock_timeout_ok");
  ExpectSilent(r);
  EXPECT_THAT(r.out, HasSubstr("timedlock rc=ETIMEDOUT")) << Shown(r);
}

TEST(ShimOrder, ConditionWaitReleasesAndRetakesItsMutex) {
  RunResult r = RunC("condvar_inversion");
  ExpectOneReport(r, kCircular);
  EXPECT_THAT(r.err, HasSubstr("(queue_lock)")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("(lock_a)")) << Shown(r);
}

TEST(ShimOrder, ConditionWaitWithoutNestingIsSilent) { ExpectSilent(RunC("condvar_ok")); }

TEST(ShimOrder, SpinlockAbba) {
  RunResult r = RunC("spin_abba");
  ExpectOneReport(r, kCircular);
  EXPECT_THAT(r.err, HasSubstr("(spin_x)")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("(spin_y)")) << Shown(r);
}

TEST(ShimOrder, SpinlocksInOrderAreSilent) { ExpectSilent(RunC("spin_ok")); }

// --- Lock kinds ---------------------------------------------------------------------------------

TEST(ShimKinds, RecursiveMutexRelockedByOwnerIsNotRecursiveLocking) {
  ExpectSilent(RunC("recursive_ok"));
}

TEST(ShimKinds, ErrorcheckRelockIsRecursiveLockingAndKeepsEdeadlk) {
  RunResult r = RunC("errorcheck_relock");
  ExpectOneReport(r, "possible recursive locking detected");
  EXPECT_THAT(r.err, HasSubstr("(checked)")) << Shown(r);
  EXPECT_THAT(r.out, HasSubstr("relock rc=EDEADLK")) << Shown(r);  // real result unchanged
}

TEST(ShimKinds, DefaultRwlockReadReadInversionIsSilent) {
  ExpectSilent(RunC("rwlock_read_read_ok"));
}

TEST(ShimKinds, WriterPreferringRwlockReadReadInversionIsReported) {
  RunResult r = RunC("rwlock_writer_pref_read_read");
  ExpectOneReport(r, kCircular);
  EXPECT_THAT(r.err, HasSubstr("wp_table")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("wp_index")) << Shown(r);
}

TEST(ShimKinds, RwlockWriteReadInversionIsReported) {
  RunResult r = RunC("rwlock_write_inversion");
  ExpectOneReport(r, kCircular);
  EXPECT_THAT(r.err, HasSubstr("(table_lock)")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("(index_lock)")) << Shown(r);
}

TEST(ShimKinds, LockArrayFromOneInitSiteAscendingIsSilent) {
  ExpectSilent(RunC("array_ascending_ok"));
}

TEST(ShimKinds, LockArrayFromOneInitSiteInvertedIsInstanceOrder) {
  RunResult r = RunC("array_inversion");
  ExpectOneReport(r, "possible instance-order deadlock in one lock class detected");
  EXPECT_THAT(r.err, HasSubstr("slots")) << Shown(r);
}

// --- Classes and lifetimes ------------------------------------------------------------------------

TEST(ShimClasses, ReusedHeapAddressInheritsNoDependencies) {
  RunResult r = RunC("address_reuse_ok");
  ExpectSilent(r);
  EXPECT_THAT(r.out, HasSubstr("reused=1")) << Shown(r);  // the test really reused an address
}

TEST(ShimClasses, OneInitSiteIsOneClassAcrossInstances) {
  RunResult r = RunC("address_reuse_same_class");
  ExpectOneReport(r, kCircular);
  EXPECT_THAT(r.err, HasSubstr("make_obj_site1")) << Shown(r);
}

TEST(ShimClasses, StaticArrayElementsAreNamedByArrayAndIndex) {
  RunResult r = RunC("static_arrays_abba");
  ExpectOneReport(r, kCircular);
  EXPECT_THAT(r.err, HasSubstr("(left_locks[1])")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("(right_locks[2])")) << Shown(r);
  EXPECT_THAT(r.err, Not(HasSubstr("left_locks[2]"))) << Shown(r);  // not in the cycle
}

// -O2: one pthread_mutex_init call in the source is one class however it was copied.
TEST(ShimClasses, InitCallInlinedIntoTwoCallersIsOneClassAtO2) {
  RunResult r = RunCase(LG_INIT_SITES_O2, "inlined_helper");
  ExpectOneReport(r, kCircular);
  EXPECT_THAT(r.err, HasSubstr("(mutex@bucket_init:")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("(lock_a)")) << Shown(r);
  ExpectSilent(RunCase(LG_INIT_SITES_O2, "inlined_helper_ok"));
}

TEST(ShimClasses, UnrolledInitLoopIsOneClassAtO2) {
  RunResult r = RunCase(LG_INIT_SITES_O2, "unrolled_loop");
  ExpectOneReport(r, kCircular);
  EXPECT_THAT(r.err, HasSubstr("(slots)")) << Shown(r);
  ExpectSilent(RunCase(LG_INIT_SITES_O2, "unrolled_loop_ok"));
}

TEST(ShimClasses, HeapLockFirstTakenByAnInlinedHelperIsTheHelpersClassAtO2) {
  RunResult r = RunCase(LG_INIT_SITES_O2, "inlined_first_lock");
  ExpectOneReport(r, kCircular);
  EXPECT_THAT(r.err, HasSubstr("(mutex@bucket_lock)")) << Shown(r);
  ExpectSilent(RunCase(LG_INIT_SITES_O2, "inlined_first_lock_ok"));
}

TEST(ShimClasses, TwoInitCallsOnOneLineAreOneClass) {
  RunResult r = RunCase(LG_INIT_SITES_O2, "one_line");
  ExpectOneReport(r, kCircular);
  EXPECT_THAT(r.err, HasSubstr("(pair_p)")) << Shown(r);
  ExpectSilent(RunCase(LG_INIT_SITES_O2, "one_line_ok"));
}

TEST(ShimLifecycle, UnlockByNonOwnerIsBadUnlockBalance) {
  RunResult r = RunC("unlock_by_non_owner");
  ExpectOneReport(r, "bad unlock balance detected!");
  EXPECT_THAT(r.err, HasSubstr("(lock_a)")) << Shown(r);
}

TEST(ShimLifecycle, UnlockByOwnerIsSilent) { ExpectSilent(RunC("unlock_by_owner_ok")); }

TEST(ShimLifecycle, DestroyOfHeldLockIsReported) {
  RunResult r = RunC("destroy_held");
  EXPECT_EQ(r.exit_code, kFoundExit) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("WARNING: held lock freed!")) << Shown(r);
  EXPECT_THAT(r.out, HasSubstr("destroy rc=EBUSY")) << Shown(r);
}

TEST(ShimLifecycle, DestroyOfLocksNeverSeenIsSilent) { ExpectSilent(RunC("destroy_unseen_ok")); }

TEST(ShimLifecycle, LockAfterDestroyIsUseOfDestroyedLock) {
  RunResult r = RunC("use_after_destroy");
  ExpectOneReport(r, "use of destroyed lock detected!");
  EXPECT_THAT(r.err, HasSubstr("(dead_lock)")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("use_after_destroy (cases.c:")) << Shown(r);
  EXPECT_THAT(r.err, Not(HasSubstr("(trylock)"))) << Shown(r);  // the first use was a lock
  EXPECT_THAT(r.err, Not(HasSubstr("bad unlock balance"))) << Shown(r);
  // The program still sees glibc's own results.
  EXPECT_THAT(r.out, HasSubstr("lock=EINVAL trylock=EINVAL unlock=EINVAL")) << Shown(r);
}

TEST(ShimLifecycle, DestroyThenInitAgainIsSilent) { ExpectSilent(RunC("destroy_reinit_ok")); }

TEST(ShimLifecycle, BadUnlocksOfTwoClassesAreTwoReports) {
  RunResult r = RunC("bad_unlock_two_classes");
  EXPECT_EQ(r.exit_code, kFoundExit) << Shown(r);
  EXPECT_EQ(CountOf(r.err, "WARNING: bad unlock balance detected!"), 2) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("release lock (lock_a)")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("release lock (lock_b)")) << Shown(r);
}

TEST(ShimLifecycle, ThreadExitWithLockHeld) {
  RunResult r = RunC("thread_exit_holding");
  EXPECT_EQ(r.exit_code, kFoundExit) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("still has locks held!")) << Shown(r);
  EXPECT_EQ(CountOf(r.err, "WARNING:"), 1) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("(lock_c)")) << Shown(r);
}

TEST(ShimLifecycle, ThreadExitWithNothingHeldIsSilent) { ExpectSilent(RunC("thread_exit_ok")); }

TEST(ShimLifecycle, ProcessExitWhileHoldingALockIsSilent) {
  ExpectSilent(RunC("exit_holding_lock_ok"));
}

TEST(ShimLifecycle, MillionsOfShortLivedLocksKeepMemoryBounded) {
  RunResult r = RunC("many_short_lived_locks_ok");
  ExpectSilent(r);
  long growth = -1;
  std::sscanf(r.out.c_str(), "rss growth %ld", &growth);
  EXPECT_GE(growth, 0) << Shown(r);
  EXPECT_LT(growth, 64 * 1024) << Shown(r);  // 300,000 more locks: under 64 MiB of growth
}

// --- Signals --------------------------------------------------------------------------------------

TEST(ShimSignals, LockInHandlerAndWithSignalUnblockedIsInconsistent) {
  RunResult r = RunC("signal_inconsistent");
  ExpectOneReport(r, "inconsistent lock state");
  EXPECT_THAT(r.err, HasSubstr("{SIGUSR1-ON-W} -> {IN-SIGUSR1-W}")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("(lock_a)")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("handler_takes_a")) << Shown(r);
  EXPECT_THAT(r.out, HasSubstr("got=1")) << Shown(r);
}

// Stack captures block every signal once and answer libunwind's per-frame mask calls
// themselves: the report still has its stacks, and the program's own mask is back afterwards.
TEST(ShimSignals, StackCaptureLeavesTheThreadsSignalMaskAsItWas) {
  RunResult r = RunC("capture_keeps_signal_mask");
  ExpectOneReport(r, kCircular);
  EXPECT_THAT(r.err, HasSubstr("take_ab")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("take_ba")) << Shown(r);
  EXPECT_THAT(r.out, HasSubstr("mask ok=1 got=1")) << Shown(r);
}

// Waits with their own mask: the handler runs during the wait with SIGUSR1 unblocked; outside it
// SIGUSR1 stays blocked, so lock_a is consistent. After the wait lockgraph must have the thread's
// real mask back (a false "inconsistent lock state" otherwise).
TEST(ShimSignals, HandlerDuringMaskedWaitsIsSilent) {
  for (const char* how : {"sigsuspend", "pselect", "ppoll", "epoll_pwait"}) {
    RunResult r = RunC(std::string(how) + "_handler_ok");
    ExpectSilent(r);
    EXPECT_THAT(r.out, HasSubstr(std::string(how) + " got=1")) << Shown(r);
  }
}

TEST(ShimSignals, HandlerDuringSigsuspendThenUnblockedUseIsInconsistent) {
  RunResult r = RunC("sigsuspend_handler_then_unblocked");
  ExpectOneReport(r, "inconsistent lock state");
  EXPECT_THAT(r.err, HasSubstr("{IN-SIGUSR1-W} -> {SIGUSR1-ON-W}")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("(lock_a)")) << Shown(r);
  EXPECT_THAT(r.out, HasSubstr("sigsuspend got=1")) << Shown(r);
}

TEST(ShimSignals, SigwaitFamilyTakesSignalsWithoutAHandler) {
  RunResult r = RunC("sigwait_family_ok");
  ExpectSilent(r);
  EXPECT_THAT(r.out, HasSubstr("sigwait: 10 10 10 got=0")) << Shown(r);
}

TEST(ShimSignals, ResetHandlerLeavesNoInterruptContextAfterItsDelivery) {
  RunResult r = RunC("signal_resethand_ok");
  ExpectSilent(r);
  EXPECT_THAT(r.out, HasSubstr("got=1 default=1")) << Shown(r);
}

TEST(ShimSignals, ResetHandlerInstalledAgainMakesTheUnblockedUseInconsistent) {
  RunResult r = RunC("signal_resethand_reinstalled");
  ExpectOneReport(r, "inconsistent lock state");
  EXPECT_THAT(r.err, HasSubstr("(lock_a)")) << Shown(r);
}

TEST(ShimSignals, SignalBlockedAroundTheLockIsSilent) {
  RunResult r = RunC("signal_inconsistent_blocked_ok");
  ExpectSilent(r);
  EXPECT_THAT(r.out, HasSubstr("got=1")) << Shown(r);
}

TEST(ShimSignals, SafeToUnsafeOrderNamesTheSignal) {
  RunResult r = RunC("signal_safe_to_unsafe");
  ExpectOneReport(r, "SIGUSR2-safe -> SIGUSR2-unsafe lock order detected");
  EXPECT_THAT(r.err, HasSubstr("(lock_a)")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("(lock_b)")) << Shown(r);
}

TEST(ShimSignals, UnsafeUseAfterTheDependencyIsAnIrqInversion) {
  RunResult r = RunC("signal_irq_inversion");
  ExpectOneReport(r, "possible irq lock inversion dependency detected");
  EXPECT_THAT(r.err, HasSubstr("SIGUSR2")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("(lock_b)")) << Shown(r);
}

TEST(ShimSignals, SafeToUnsafeWithSignalBlockedIsSilent) {
  ExpectSilent(RunC("signal_safe_to_unsafe_blocked_ok"));
}

TEST(ShimSignals, NoHandlerMeansNoInterruptContext) {
  ExpectSilent(RunC("signal_no_handler_ok"));
}

TEST(ShimSignals, BsdSignalHandlerIsAnInterruptContextToo) {
  RunResult r = RunC("signal_bsd_inconsistent");
  ExpectOneReport(r, "inconsistent lock state");
  EXPECT_THAT(r.err, HasSubstr("SIGUSR1")) << Shown(r);
}

// --- fork -----------------------------------------------------------------------------------------

TEST(ShimFork, ChildKeepsOnlyTheForkingThreadsLocks) {
  RunResult r = RunC("fork_ok");
  ExpectSilent(r);
  EXPECT_THAT(r.out, HasSubstr("child=0")) << Shown(r);
}

TEST(ShimFork, ChildReportsItsOwnFindings) {
  RunResult r = RunC("fork_child_abba");
  ExpectOneReport(r, kCircular);
  EXPECT_THAT(r.out, HasSubstr("child=66")) << Shown(r);
}

// --- C++ standard library locks -----------------------------------------------------------------

TEST(ShimCpp, StdMutexAbbaNamesTheGlobals) {
  RunResult r = RunCpp("mutex_abba");
  ExpectOneReport(r, kCircular);
  EXPECT_THAT(r.err, HasSubstr("config_mu")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("stats_mu")) << Shown(r);
}

TEST(ShimCpp, StdMutexInOrderIsSilent) { ExpectSilent(RunCpp("mutex_ok")); }

TEST(ShimCpp, HeapStdMutexMembersInvertedAreReported) {
  RunResult r = RunCpp("heap_abba");
  EXPECT_EQ(r.exit_code, kFoundExit) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("Transfer")) << Shown(r);
}

TEST(ShimCpp, HeapStdMutexMembersInOrderAreSilent) { ExpectSilent(RunCpp("heap_ok")); }

TEST(ShimCpp, RecursiveMutexRelockIsSilent) { ExpectSilent(RunCpp("recursive_ok")); }

TEST(ShimCpp, SharedMutexReadReadInversionIsSilent) {
  ExpectSilent(RunCpp("shared_read_read_ok"));
}

TEST(ShimCpp, SharedMutexWriteInversionIsReported) {
  RunResult r = RunCpp("shared_write_inversion");
  ExpectOneReport(r, kCircular);
  EXPECT_THAT(r.err, HasSubstr("routes_mu")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("peers_mu")) << Shown(r);
}

TEST(ShimCpp, TimedMutexAbba) {
  RunResult r = RunCpp("timed_abba");
  ExpectOneReport(r, kCircular);
  EXPECT_THAT(r.err, HasSubstr("disk_mu")) << Shown(r);
}

TEST(ShimCpp, TimedMutexInOrderIsSilent) { ExpectSilent(RunCpp("timed_ok")); }

TEST(ShimCpp, ConditionVariableWaitIsSilent) { ExpectSilent(RunCpp("condvar_ok")); }

TEST(ShimCpp, AnnotatedWrappersCarryTheirNames) {
  RunResult r = RunCpp("wrapper_abba");
  ExpectOneReport(r, kCircular);
  EXPECT_THAT(r.err, HasSubstr("(cache_mu)")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("(index_mu)")) << Shown(r);
}

// lockgraph.hpp built by clang++-14 -Wthread-safety -Werror (tests/runtime/CMakeLists.txt).
TEST(ShimCpp, HeaderCompiledByClang14ReportsTheWrappersInversion) {
#ifdef LG_HPP_CLANG
  RunResult r = RunProgram({LG_HPP_CLANG, "abba"}, {"LOCKGRAPH_OPTIONS=exitcode=66"});
  ExpectOneReport(r, kCircular);
  EXPECT_THAT(r.err, HasSubstr("(ledger_mu)")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("(audit_mu)")) << Shown(r);
  EXPECT_THAT(r.out, HasSubstr("abba: balance 5 rate 3")) << Shown(r);
#else
  GTEST_SKIP() << "clang++-14 not found at configure time";
#endif
}

TEST(ShimCpp, HeaderCompiledByClang14InOrderIsSilent) {
#ifdef LG_HPP_CLANG
  RunResult r = RunProgram({LG_HPP_CLANG, "ok"}, {"LOCKGRAPH_OPTIONS=exitcode=66"});
  ExpectSilent(r);
  EXPECT_THAT(r.out, HasSubstr("ok: balance 6 rate 3")) << Shown(r);
#else
  GTEST_SKIP() << "clang++-14 not found at configure time";
#endif
}

TEST(ShimCpp, AnnotatedWrappersWithScopedLockAreSilent) { ExpectSilent(RunCpp("wrapper_ok")); }

TEST(ShimCpp, AnnotatedCustomLockJoinsTheGraph) {
  RunResult r = RunCpp("annotated_abba");
  ExpectOneReport(r, kCircular);
  EXPECT_THAT(r.err, HasSubstr("(ring_lock)")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("config_mu")) << Shown(r);
}

// --- C API (linked, not preloaded) ----------------------------------------------------------------

TEST(CApi, HardirqUseAndIrqsEnabledUseIsInconsistent) {
  RunResult r = RunApi("irq_inconsistent");
  ExpectOneReport(r, "inconsistent lock state");
  EXPECT_THAT(r.err, HasSubstr("(dev_lock)")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("HARDIRQ")) << Shown(r);
}

TEST(CApi, InversionAfterManyCachedPairsIsReported) {
  RunResult r = RunApi("cached_pair_then_inversion");
  ExpectOneReport(r, kCircular);
  EXPECT_THAT(r.err, HasSubstr("(dev_lock)")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("(queue_lock)")) << Shown(r);
}

TEST(CApi, HardirqUseAfterManyCachedLocksIsInconsistent) {
  RunResult r = RunApi("cached_lock_then_hardirq");
  ExpectOneReport(r, "inconsistent lock state");
  EXPECT_THAT(r.err, HasSubstr("(dev_lock)")) << Shown(r);
}

TEST(CApi, IrqSaveRestoreAroundTheLockIsSilent) { ExpectSilent(RunApi("irq_save_ok")); }

TEST(CApi, SoftirqSafeToUnsafe) {
  RunResult r = RunApi("softirq_safe_to_unsafe");
  ExpectOneReport(r, "SOFTIRQ-safe -> SOFTIRQ-unsafe lock order detected");
  EXPECT_THAT(r.err, HasSubstr("(queue_lock)")) << Shown(r);
}

TEST(CApi, NestedSubclassIsSilent) { ExpectSilent(RunApi("nested_ok")); }

TEST(CApi, SameLockTwiceIsRecursiveLocking) {
  RunResult r = RunApi("recursive_same_lock");
  ExpectOneReport(r, "possible recursive locking detected");
  EXPECT_THAT(r.err, HasSubstr("(dev_lock)")) << Shown(r);
}

TEST(CApi, FailedAssertionsAreReportedOncePerSite) {
  RunResult r = RunApi("assert_held_fails");
  EXPECT_EQ(r.exit_code, kFoundExit) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("lock assertion failed: dev_lock is not held")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("none expected")) << Shown(r);
  EXPECT_THAT(r.out, HasSubstr("held=0 held_now=1 none=0 findings=2")) << Shown(r);
}

TEST(CApi, AssertionsThatHoldAreSilent) { ExpectSilent(RunApi("assert_ok")); }

TEST(CApi, ReportCallbackAndOptions) {
  RunResult r = RunApi("callback_and_options");
  EXPECT_THAT(r.out, HasSubstr("bad=-1 good=0 callback=1 findings=1")) << Shown(r);
}

TEST(CApi, BadReleasesOfTwoClassesAreTwoReports) {
  RunResult r = RunApi("bad_release_two_classes");
  EXPECT_EQ(r.exit_code, kFoundExit) << Shown(r);
  EXPECT_EQ(CountOf(r.err, "WARNING: bad unlock balance detected!"), 2) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("release lock (dev_lock)")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("release lock (queue_lock)")) << Shown(r);
  EXPECT_THAT(r.out, HasSubstr("findings=2")) << Shown(r);
}

TEST(CApi, DisabledBuildCompilesToNothing) { ExpectSilent(RunApi("disabled_ok")); }

// --- Options --------------------------------------------------------------------------------------

TEST(ShimOptions, WithoutExitcodeTheProgramsOwnStatusIsKept) {
  RunResult r = RunCase(LG_CASES, "abba", "verbosity=1");
  EXPECT_EQ(r.exit_code, 0) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("WARNING: ")) << Shown(r);
}

TEST(ShimOptions, HaltOnErrorStopsAtTheFirstReport) {
  RunResult r = RunCase(LG_CASES, "abba", "halt_on_error=1:exitcode=7");
  EXPECT_EQ(r.exit_code, 7) << Shown(r);
  EXPECT_THAT(r.out, Not(HasSubstr("abba: done"))) << Shown(r);
}

TEST(ShimOptions, LogFileReceivesTheReport) {
  const std::string log = TempPath("log");
  RunResult r = RunCase(LG_CASES, "abba", "exitcode=66:log_file=" + log);
  EXPECT_EQ(r.exit_code, kFoundExit) << Shown(r);
  EXPECT_THAT(r.err, Not(HasSubstr("WARNING"))) << Shown(r);
  EXPECT_THAT(ReadFile(log), HasSubstr("WARNING: possible circular locking dependency"));
  unlink(log.c_str());
}

TEST(ShimOptions, BadOptionIsNamedAndTheRunGoesOn) {
  RunResult r = RunCase(LG_CASES, "abba", "exitcode=66:frobnicate=1");
  EXPECT_THAT(r.err, HasSubstr("unknown option 'frobnicate'")) << Shown(r);
  EXPECT_THAT(r.out, HasSubstr("abba: done")) << Shown(r);
}

// --- lockgraph run and the recorder ---------------------------------------------------------------

#ifdef LG_CLI
RunResult RunCli(std::vector<std::string> args) {
  args.insert(args.begin(), {LG_CLI, "run"});
  return RunProgram(args, {"LOCKGRAPH_OPTIONS="});
}

TEST(LockgraphRun, ExitcodeWhenFoundElseTheProgramsOwn) {
  RunResult found = RunCli({"--exitcode", "66", "--", LG_CASES, "abba"});
  EXPECT_EQ(found.exit_code, 66) << Shown(found);
  EXPECT_THAT(found.err, HasSubstr("WARNING: possible circular locking dependency"));
  RunResult clean = RunCli({"--exitcode", "66", "--", LG_CASES, "abba_ok"});
  EXPECT_EQ(clean.exit_code, 0) << Shown(clean);
  RunResult unknown_case = RunCli({"--exitcode", "66", "--", LG_CASES, "no_such_case"});
  EXPECT_EQ(unknown_case.exit_code, 2) << Shown(unknown_case);  // the program's own status
}

TEST(LockgraphRun, FindingsOfAForkedChildCount) {
  RunResult r = RunCli({"--exitcode", "9", "--", LG_CASES, "fork_child_abba"});
  EXPECT_EQ(r.exit_code, 9) << Shown(r);
}

TEST(LockgraphRun, MissingProgramIsAClearError) {
  RunResult r = RunCli({"--", "/nonexistent/program"});
  EXPECT_EQ(r.exit_code, 127) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("cannot run '/nonexistent/program'")) << Shown(r);
}

// Decodes a binary lock log with the codec; returns the events (by type) and whether it ended.
struct LogSummary {
  bool header_ok = false;
  int acquires = 0, class_defs = 0, stacks = 0, ends = 0, errors = 0;
  std::set<lockgraph::StackId> stack_ids;  // the ids the stack definitions define
};
LogSummary Summarize(const std::string& bytes) {
  LogSummary s;
  std::span<const std::uint8_t> file(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                     bytes.size());
  lockgraph::logfmt::BinaryScanner scanner(file);
  lockgraph::logfmt::FileHeader header;
  lockgraph::logfmt::DecodeError error;
  s.header_ok = scanner.ReadHeader(&header, &error) ==
                lockgraph::logfmt::BinaryScanner::HeaderResult::kOk;
  lockgraph::logfmt::BlockView block;
  for (;;) {
    auto next = scanner.NextBlock(&block, &error);
    if (next == lockgraph::logfmt::BinaryScanner::Next::kEnd) break;
    if (next == lockgraph::logfmt::BinaryScanner::Next::kError) {
      ++s.errors;
      continue;
    }
    lockgraph::logfmt::BlockDecoder decoder(block);
    lockgraph::logfmt::Event e;
    while (decoder.Next(&e, &error)) {
      using lockgraph::logfmt::RecordType;
      if (e.type == RecordType::kAcquire) ++s.acquires;
      if (e.type == RecordType::kClassDef) ++s.class_defs;
      if (e.type == RecordType::kStackDef) {
        ++s.stacks;
        s.stack_ids.insert(e.stack);
      }
      if (e.type == RecordType::kRunEnd) ++s.ends;
    }
  }
  return s;
}

TEST(LockgraphRun, RecordWritesOneLogPerProcess) {
  const std::string log = TempPath("rec") + ".lglog";
  RunResult r = RunCli({"--record", log, "--", LG_CASES, "fork_ok"});
  EXPECT_EQ(r.exit_code, 0) << Shown(r);
  LogSummary parent = Summarize(ReadFile(log));
  EXPECT_TRUE(parent.header_ok);
  EXPECT_GE(parent.acquires, 2);    // lock_b on the sleeper thread, lock_a before fork
  EXPECT_GE(parent.class_defs, 2);
  EXPECT_EQ(parent.ends, 1);
  EXPECT_EQ(parent.errors, 0);
  // The forked child wrote LOG.<pid>.
  bool child_found = false;
  const std::string dir = log.substr(0, log.rfind('/'));
  const std::string base = log.substr(log.rfind('/') + 1);
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(base + ".", 0) == 0) {
      LogSummary child = Summarize(ReadFile(entry.path().string()));
      EXPECT_TRUE(child.header_ok);
      EXPECT_GE(child.acquires, 3);  // inherited lock_a, then lock_c, lock_d (flushed at _exit)
      child_found = true;
      unlink(entry.path().c_str());
    }
  }
  EXPECT_TRUE(child_found);
  unlink(log.c_str());
}

// --record DIR/: every process, the first one included, writes DIR/<program>.<pid>.lglog; the
// forked child's log starts with what it inherited and has its own events.
TEST(LockgraphRun, RecordDirWritesOneLogPerProcessNamedAfterTheProgram) {
  const std::string dir = TempPath("recdir");
  RunResult r = RunCli({"--record", dir + "/", "--", LG_CASES, "fork_ok"});
  EXPECT_EQ(r.exit_code, 0) << Shown(r);
  EXPECT_THAT(r.err, Not(HasSubstr("warning"))) << Shown(r);
  const std::string program = std::string(LG_CASES).substr(std::string(LG_CASES).rfind('/') + 1);
  std::vector<LogSummary> logs;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    EXPECT_EQ(name.rfind(program + ".", 0), 0u) << name;
    EXPECT_TRUE(name.size() > 6 && name.compare(name.size() - 6, 6, ".lglog") == 0) << name;
    logs.push_back(Summarize(ReadFile(entry.path().string())));
  }
  ASSERT_EQ(logs.size(), 2u);  // the program and its forked child
  std::sort(logs.begin(), logs.end(),
            [](const LogSummary& a, const LogSummary& b) { return a.acquires < b.acquires; });
  for (const LogSummary& s : logs) {
    EXPECT_TRUE(s.header_ok);
    EXPECT_EQ(s.errors, 0);
    EXPECT_GE(s.acquires, 2);
  }
  std::filesystem::remove_all(dir);
}

// fork + exec: what the child recorded before exec is written before its image is replaced, so
// lock_a -> lock_b (the child, before exec) and lock_b -> lock_a (the exec'd image) meet offline.
// Live there is nothing to report: they are two processes.
TEST(LockgraphRun, RecordKeepsAForkedChildsEventsAcrossExec) {
  const std::string dir = TempPath("execdir");
  RunResult r = RunCli({"--record", dir + "/", "--", LG_CASES, "fork_exec_abba"});
  EXPECT_EQ(r.exit_code, 0) << Shown(r);
  EXPECT_THAT(r.out, HasSubstr("child=0")) << Shown(r);
  EXPECT_THAT(r.out, HasSubstr("exec_take_ba: done")) << Shown(r);
  EXPECT_THAT(r.err, Not(HasSubstr("WARNING"))) << Shown(r);
  RunResult analyzed = RunProgram({LG_CLI, "analyze", dir});
  EXPECT_EQ(analyzed.exit_code, 1) << Shown(analyzed);
  EXPECT_THAT(analyzed.out, HasSubstr("WARNING: possible circular locking dependency detected"))
      << Shown(analyzed);
  EXPECT_THAT(analyzed.out, HasSubstr("lock_a")) << Shown(analyzed);
  EXPECT_THAT(analyzed.out, HasSubstr("lock_b")) << Shown(analyzed);
  std::filesystem::remove_all(dir);
}

// Per-thread buffers: threads still locking when the program exits have their complete records
// written at exit, the log decodes without errors, and replaying it (events merged across the
// threads by sequence number) is as clean as the live run.
TEST(LockgraphRun, RecordWithThreadsRunningAtExitIsCompleteAndReplaysClean) {
  const std::string log = TempPath("threads") + ".lglog";
  RunResult r = RunCli({"--record", log, "--", LG_CASES, "threads_running_at_exit_ok"});
  EXPECT_EQ(r.exit_code, 0) << Shown(r);
  EXPECT_THAT(r.err, Not(HasSubstr("WARNING"))) << Shown(r);
  LogSummary s = Summarize(ReadFile(log));
  EXPECT_TRUE(s.header_ok);
  EXPECT_EQ(s.errors, 0);
  EXPECT_EQ(s.ends, 1);
  EXPECT_GT(s.acquires, 1000);
  RunResult analyzed = RunProgram({LG_CLI, "analyze", log});
  EXPECT_EQ(analyzed.exit_code, 0) << Shown(analyzed);
  EXPECT_THAT(analyzed.out, Not(HasSubstr("WARNING"))) << Shown(analyzed);
  EXPECT_THAT(analyzed.err, Not(HasSubstr("error"))) << Shown(analyzed);
  unlink(log.c_str());
}

// A stack is symbolized and defined once per log however often the engine captures it: 48 new
// dependencies from one call path are one stack definition (each capture was defined, and
// symbolized, again before: --record cost hundreds of microseconds per new dependency).
TEST(LockgraphRun, RecordDefinesEachStackOnce) {
  const std::string log = TempPath("stacks") + ".lglog";
  RunResult r = RunCli({"--record", log, "--", LG_CASES, "many_dependencies_one_path_ok"});
  EXPECT_EQ(r.exit_code, 0) << Shown(r);
  EXPECT_THAT(r.err, Not(HasSubstr("WARNING"))) << Shown(r);
  LogSummary s = Summarize(ReadFile(log));
  EXPECT_EQ(s.errors, 0);
  EXPECT_GE(s.acquires, 96);
  EXPECT_GE(s.stacks, 1);
  EXPECT_EQ(s.stacks, static_cast<int>(s.stack_ids.size()));
  EXPECT_LE(s.stacks, 4);
  // The offline analysis still has every dependency and nothing to report.
  RunResult analyzed = RunProgram({LG_CLI, "analyze", "--stats", log});
  EXPECT_EQ(analyzed.exit_code, 0) << Shown(analyzed);
  EXPECT_THAT(analyzed.err, HasSubstr("48 dependencies")) << Shown(analyzed);
  unlink(log.c_str());
}

// Four threads each locking and unlocking one mutex 20,000 times: after the first round of its
// block, every event of a thread's loop is a one-byte compact record (format version 3), so the
// whole log, thread starts and block headers included, stays near one byte per event; the log
// replays clean.
TEST(LockgraphRun, RecordedLoopCostsAboutOneBytePerEvent) {
  const std::string log = TempPath("loop") + ".lglog";
  RunResult r = RunCli({"--record", log, "--", LG_CASES, "malloc_threads_ok"});
  EXPECT_EQ(r.exit_code, 0) << Shown(r);
  EXPECT_THAT(r.out, HasSubstr("malloc_threads_ok: done")) << Shown(r);
  LogSummary s = Summarize(ReadFile(log));
  EXPECT_EQ(s.errors, 0);
  EXPECT_GE(s.acquires, 80000);
  RunResult analyzed = RunProgram({LG_CLI, "analyze", "--stats", log});
  EXPECT_EQ(analyzed.exit_code, 0) << Shown(analyzed);
  EXPECT_THAT(analyzed.err, Not(HasSubstr("error"))) << Shown(analyzed);
  const std::size_t at = analyzed.err.find(" bytes/event)");
  ASSERT_NE(at, std::string::npos) << Shown(analyzed);
  const std::size_t open = analyzed.err.rfind('(', at);
  ASSERT_NE(open, std::string::npos) << Shown(analyzed);
  const double bytes_per_event = std::strtod(analyzed.err.c_str() + open + 1, nullptr);
  EXPECT_GT(bytes_per_event, 0.9) << Shown(analyzed);
  EXPECT_LT(bytes_per_event, 1.5) << Shown(analyzed);  // 4.5 with version 2's records
  unlink(log.c_str());
}

// Report text without blank lines (the live run separates reports with one, analyze does not).
std::string WithoutBlankLines(const std::string& text) {
  std::istringstream in(text);
  std::string line, out;
  while (std::getline(in, line))
    if (!line.empty()) out += line + "\n";
  return out;
}

// Records `name` under `lockgraph run --record`, analyzes the log, and expects the live report
// text from the offline analysis; returns the live report (stderr through --log-file) and the
// number of records the recorder's fast path stamped (a stamp inside a band: not a multiple of
// 2^10, runtime/src/recorder.h kBandBits), so a test can check it exercised that path.
struct LiveAndOffline {
  std::string live;
  int fast_stamped = 0;
};
LiveAndOffline ExpectOfflineEqualsLive(const std::string& name) {
  LiveAndOffline result;
  const std::string log = TempPath(name) + ".lglog", live = TempPath(name) + ".live";
  RunResult r = RunCli({"--record", log, "--log-file", live, "--", LG_CASES, name});
  EXPECT_THAT(r.out, HasSubstr(name + ": done")) << Shown(r);
  result.live = ReadFile(live);
  RunResult analyzed = RunProgram({LG_CLI, "analyze", log});
  EXPECT_EQ(analyzed.exit_code, result.live.find("WARNING") == std::string::npos ? 0 : 1)
      << Shown(analyzed);
  EXPECT_EQ(WithoutBlankLines(analyzed.out), WithoutBlankLines(result.live)) << Shown(analyzed);
  EXPECT_THAT(analyzed.err, Not(HasSubstr("error"))) << Shown(analyzed);
  const std::string bytes = ReadFile(log);
  std::span<const std::uint8_t> file(reinterpret_cast<const std::uint8_t*>(bytes.data()),
                                     bytes.size());
  lockgraph::logfmt::BinaryScanner scanner(file);
  lockgraph::logfmt::FileHeader header;
  lockgraph::logfmt::DecodeError error;
  scanner.ReadHeader(&header, &error);
  lockgraph::logfmt::BlockView block;
  for (;;) {
    auto next = scanner.NextBlock(&block, &error);
    if (next == lockgraph::logfmt::BinaryScanner::Next::kEnd) break;
    if (next != lockgraph::logfmt::BinaryScanner::Next::kBlock) continue;
    lockgraph::logfmt::BlockDecoder decoder(block);
    lockgraph::logfmt::Event e;
    while (decoder.Next(&e, &error))
      if (!lockgraph::logfmt::IsDefinition(e.type) && e.seq % 1024 != 0) ++result.fast_stamped;
  }
  if (!::testing::Test::HasFailure()) {
    unlink(log.c_str());
    unlink(live.c_str());
  }
  return result;
}

// Band stamps (docs/log-format.md "Ordering"): a thread's fast-path acquisitions of a lock,
// thousands of them (more than one band), then another thread destroys the lock and initialises
// it again at another site (another class) and takes it against lock_a in the other order. Only
// the stamps order the two threads (they hand over through semaphores): replayed out of order,
// a fast acquisition after the re-init would make a circular report the live run did not make.
TEST(LockgraphRun, RecordedFastPathBeforeAnotherThreadsReinitReplaysInOrder) {
  LiveAndOffline r = ExpectOfflineEqualsLive("band_reinit_other_thread_ok");
  EXPECT_THAT(r.live, Not(HasSubstr("WARNING"))) << r.live;
  EXPECT_GT(r.fast_stamped, 2048);  // the first thread's loop went the fast path
}

// The other direction: one thread validates lock_a -> lock_b, then another takes the same chain
// on the fast path at once (the chain is cached), and main inverts it. The report quotes the
// dependency as the validating thread took it (its stack); replayed with the fast acquisitions
// first, the offline report would quote the other thread's, without a stack.
TEST(LockgraphRun, RecordedFastPathAfterAnotherThreadsValidationReplaysInOrder) {
  LiveAndOffline r = ExpectOfflineEqualsLive("band_chain_handoff");
  EXPECT_THAT(r.live, HasSubstr("WARNING: possible circular locking dependency")) << r.live;
  EXPECT_THAT(r.live, HasSubstr("band_validate_ab")) << r.live;
  EXPECT_GT(r.fast_stamped, 2000);
}

TEST(LockgraphRun, RecordSurvivesKillUpToTheLastCompleteBlock) {
  const std::string log = TempPath("kill") + ".lglog";
  // Many events, then SIGKILL: no exit handler runs, the block being filled is lost.
  RunResult r = RunProgram({LG_CASES, "killed_after_locks"},
                    {Preload(), "LOCKGRAPH_OPTIONS=record=" + log, "LOCKGRAPH_ROOT_PID="});
  EXPECT_EQ(r.exit_code, 128 + SIGKILL) << Shown(r);
  LogSummary s = Summarize(ReadFile(log));
  EXPECT_TRUE(s.header_ok);
  EXPECT_GT(s.acquires, 1000);
  EXPECT_EQ(s.ends, 0);
  unlink(log.c_str());
}
#endif  // LG_CLI

}  // namespace
