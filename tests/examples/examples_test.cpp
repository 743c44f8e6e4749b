// Runs every example and its fixed twin as a user would, and checks what the user sees: the
// report headline, the locks and lines it names, the exit code, and that the twin is silent.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace {

using ::testing::HasSubstr;
using ::testing::Not;

struct RunResult {
  int exit_code = -1;  // 128 + signal when killed
  std::string out;
  std::string err;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs argv with stdout and stderr captured in temporary files; `env` entries ("NAME=value") are
// added to the environment.
RunResult RunProgram(const std::vector<std::string>& argv,
                     const std::vector<std::string>& env = {}) {
  RunResult result;
  std::string dir = ::testing::TempDir();
  std::string out_path = dir + "lg_example_out_XXXXXX";
  std::string err_path = dir + "lg_example_err_XXXXXX";
  int out_fd = mkstemp(out_path.data());
  int err_fd = mkstemp(err_path.data());
  if (out_fd < 0 || err_fd < 0) {
    ADD_FAILURE() << "cannot create temporary files in " << dir;
    return result;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_fd, STDERR_FILENO);

  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    // A LOCKGRAPH_OPTIONS from the caller's shell must not change what the test sees.
    if (std::string(*e).rfind("LOCKGRAPH_OPTIONS=", 0) == 0) continue;
    env_strings.emplace_back(*e);
  }
  for (const auto& e : env) env_strings.push_back(e);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> argp;
  for (auto& a : args) argp.push_back(a.data());
  argp.push_back(nullptr);

  pid_t pid = 0;
  int rc = posix_spawn(&pid, argp[0], &actions, nullptr, argp.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(out_fd);
  close(err_fd);
  if (rc != 0) {
    ADD_FAILURE() << "cannot run " << argv[0] << ": " << strerror(rc);
  } else {
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  result.out = ReadFile(out_path);
  result.err = ReadFile(err_path);
  unlink(out_path.c_str());
  unlink(err_path.c_str());
  return result;
}

int CountOf(const std::string& text, const std::string& needle) {
  int n = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos;
       at = text.find(needle, at + needle.size())) {
    ++n;
  }
  return n;
}

std::string Example(const std::string& name) { return std::string(LG_EXAMPLES_DIR) + "/" + name; }

// With exitcode=66 a finding shows in the exit status, so a test also fails if the report were
// printed by something other than the validator.
constexpr int kFoundExit = 66;

#ifdef LG_HAVE_KERNEL_EXAMPLES
// Kernel examples link liblockgraph and run directly.
RunResult RunKernelExample(const std::string& name) {
  return RunProgram({Example(name)}, {"LOCKGRAPH_OPTIONS=exitcode=66"});
}
#endif

#ifdef LG_HAVE_CLI
// Userspace examples are plain pthread programs run under `lockgraph run`.
RunResult RunUnderLockgraph(const std::string& name) {
  return RunProgram({LG_CLI, "run", "--exitcode", "66", "--", Example(name)});
}
#endif

// The whole report, for failure messages.
std::string Shown(const RunResult& r) {
  return "exit " + std::to_string(r.exit_code) + "\n--- stdout ---\n" + r.out + "--- stderr ---\n" +
         r.err;
}

void ExpectSilentTwin(const RunResult& r) {
  EXPECT_EQ(r.exit_code, 0) << Shown(r);
  EXPECT_THAT(r.err, Not(HasSubstr("WARNING"))) << Shown(r);
  EXPECT_THAT(r.err, Not(HasSubstr("turning off the validator"))) << Shown(r);
}

// Exactly one report, with this headline.
void ExpectOneReport(const RunResult& r, const std::string& headline) {
  EXPECT_EQ(r.exit_code, kFoundExit) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("WARNING: " + headline)) << Shown(r);
  EXPECT_EQ(CountOf(r.err, "WARNING:"), 1) << Shown(r);
}

// `first` appears in `text` before `second`.
void ExpectBefore(const std::string& text, const std::string& first, const std::string& second) {
  std::size_t a = text.find(first), b = text.find(second);
  EXPECT_NE(a, std::string::npos) << "missing: " << first << "\n" << text;
  EXPECT_NE(b, std::string::npos) << "missing: " << second << "\n" << text;
  if (a != std::string::npos && b != std::string::npos) {
    EXPECT_LT(a, b) << first << " should come before " << second << "\n" << text;
  }
}

#ifdef LG_HAVE_KERNEL_EXAMPLES

TEST(KernelExamples, ListLruReparentReportsSafeToUnsafeOrder) {
  RunResult r = RunKernelExample("list_lru_reparent");
  ExpectOneReport(r, "HARDIRQ-safe -> HARDIRQ-unsafe lock order detected");
  // The new dependency, the safe lock and the unsafe lock, each with where it got that way.
  EXPECT_THAT(r.err, HasSubstr("(address_space::i_pages)")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("(shadow_nodes.xa)")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("filemap_add_folio")) << Shown(r);         // the new dependency
  EXPECT_THAT(r.err, HasSubstr("folio_end_writeback")) << Shown(r);       // became HARDIRQ-safe
  EXPECT_THAT(r.err, HasSubstr("memcg_reparent_list_lrus")) << Shown(r);  // became HARDIRQ-unsafe
  // The scenario: the interrupt lands while shadow_nodes.xa is held with IRQs on.
  EXPECT_THAT(r.err, HasSubstr("<Interrupt>")) << Shown(r);
  ExpectBefore(r.err, "lock(shadow_nodes.xa);", "<Interrupt>");
  EXPECT_THAT(r.err, HasSubstr("*** DEADLOCK ***")) << Shown(r);
}

TEST(KernelExamples, ListLruReparentWithXaEraseIrqIsSilent) {
  ExpectSilentTwin(RunKernelExample("list_lru_reparent_fixed"));
}

TEST(KernelExamples, SlubFlushHotplugReportsTheFiveLockCycle) {
  RunResult r = RunKernelExample("slub_flush_hotplug");
  ExpectOneReport(r, "possible circular locking dependency detected");
  // Acquiring flush_lock while holding slab_mutex closes the cycle ...
  ExpectBefore(r.err, "(flush_lock)", "(slab_mutex)");
  // ... and the existing chain is listed in reverse, #4 (the held lock) down to #0 (the new one).
  ExpectBefore(r.err, "#4 (slab_mutex)", "#3 (memory_chain.rwsem)");
  ExpectBefore(r.err, "#3 (memory_chain.rwsem)", "#2 (pcp_batch_high_lock)");
  ExpectBefore(r.err, "#2 (pcp_batch_high_lock)", "#1 (cpu_hotplug_lock)");
  ExpectBefore(r.err, "#1 (cpu_hotplug_lock)", "#0 (flush_lock)");
  // Each link says where it was established.
  EXPECT_THAT(r.err, HasSubstr("slab_memory_callback")) << Shown(r);  // memory_chain -> slab_mutex
  EXPECT_THAT(r.err, HasSubstr("zone_pcp_disable")) << Shown(r);      // cpu_hotplug -> pcp
  EXPECT_THAT(r.err, HasSubstr("online_pages")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("kmem_cache_shrink")) << Shown(r);  // slab_mutex -> flush_lock
  EXPECT_THAT(r.err, HasSubstr("*** DEADLOCK ***")) << Shown(r);
}

TEST(KernelExamples, SlubFlushHotplugWithCpusReadLockFirstIsSilent) {
  ExpectSilentTwin(RunKernelExample("slub_flush_hotplug_fixed"));
}

TEST(KernelExamples, ThpDeferredSplitReportsInconsistentLockState) {
  RunResult r = RunKernelExample("thp_deferred_split");
  ExpectOneReport(r, "inconsistent lock state");
  EXPECT_THAT(r.err, HasSubstr("{IN-HARDIRQ-W} -> {HARDIRQ-ON-W}")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("(list_lru_node::lock)")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("folio_undo_large_rmappable")) << Shown(r);  // the IN-HARDIRQ use
  EXPECT_THAT(r.err, HasSubstr("d_lru_add")) << Shown(r);                   // the HARDIRQ-ON use
  EXPECT_THAT(r.err, HasSubstr("<Interrupt>")) << Shown(r);
}

TEST(KernelExamples, ThpDeferredSplitWithItsOwnClassKeyIsSilent) {
  ExpectSilentTwin(RunKernelExample("thp_deferred_split_fixed"));
}

TEST(KernelExamples, ZswapMemcgOfflineReportsUseOfDestroyedLock) {
  RunResult r = RunKernelExample("zswap_memcg_offline");
  ExpectOneReport(r, "use of destroyed lock detected!");
  EXPECT_THAT(r.err, HasSubstr("list_lru_one::lock")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("zswap_lru_add")) << Shown(r);      // the late use
  EXPECT_THAT(r.err, HasSubstr("list_lru_one_free")) << Shown(r);  // where it was destroyed
}

TEST(KernelExamples, ZswapMemcgOfflineAddingToTheParentIsSilent) {
  ExpectSilentTwin(RunKernelExample("zswap_memcg_offline_fixed"));
}

#ifdef LG_HAVE_CLI
// The README's first command: the flagship under `lockgraph run` (the shim is loaded twice over:
// preloaded and linked) reports exactly what the direct run reports.
TEST(KernelExamples, FlagshipUnderLockgraphRunGivesTheSameReport) {
  RunResult r = RunProgram({LG_CLI, "run", "--exitcode", "66", "--", Example("list_lru_reparent")});
  ExpectOneReport(r, "HARDIRQ-safe -> HARDIRQ-unsafe lock order detected");
  EXPECT_THAT(r.err, HasSubstr("(address_space::i_pages)")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("(shadow_nodes.xa)")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("<Interrupt>")) << Shown(r);
  ExpectSilentTwin(
      RunProgram({LG_CLI, "run", "--exitcode", "66", "--", Example("list_lru_reparent_fixed")}));
}
#endif

#endif  // LG_HAVE_KERNEL_EXAMPLES

#ifdef LG_HAVE_CLI

TEST(UserspaceExamples, BankTransferReportsAbbaBetweenTwoAccounts) {
  RunResult r = RunUnderLockgraph("bank_transfer");
  ExpectOneReport(r, "possible circular locking dependency detected");
  EXPECT_THAT(r.err, HasSubstr("(alice)")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("(bob)")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("transfer")) << Shown(r);
  EXPECT_THAT(r.out, HasSubstr("alice 80, bob 120")) << Shown(r);  // the program ran unchanged
}

TEST(UserspaceExamples, BankTransferInAccountOrderIsSilent) {
  RunResult r = RunUnderLockgraph("bank_transfer_fixed");
  ExpectSilentTwin(r);
  EXPECT_THAT(r.out, HasSubstr("alice 80, bob 120")) << Shown(r);
}

TEST(UserspaceExamples, SignalLoggerReportsInconsistentLockState) {
  RunResult r = RunUnderLockgraph("signal_logger");
  ExpectOneReport(r, "inconsistent lock state");
  EXPECT_THAT(r.err, HasSubstr("{SIGUSR1-ON-W} -> {IN-SIGUSR1-W}")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("(log_lock)")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("on_sigusr1")) << Shown(r);
  EXPECT_THAT(r.out, HasSubstr("got SIGUSR1")) << Shown(r);
}

TEST(UserspaceExamples, SignalLoggerBlockingTheSignalIsSilent) {
  RunResult r = RunUnderLockgraph("signal_logger_fixed");
  ExpectSilentTwin(r);
  EXPECT_THAT(r.out, HasSubstr("got SIGUSR1")) << Shown(r);
}

TEST(UserspaceExamples, PoolCondvarReportsGetAndDropInOppositeOrders) {
  RunResult r = RunUnderLockgraph("pool_condvar");
  ExpectOneReport(r, "possible circular locking dependency detected");
  EXPECT_THAT(r.err, HasSubstr("(pool_lock)")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("(session)")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("pool_get")) << Shown(r);   // session -> pool_lock, before the wait
  EXPECT_THAT(r.err, HasSubstr("pool_drop")) << Shown(r);  // pool_lock -> session
  EXPECT_THAT(r.out, HasSubstr("connection detached")) << Shown(r);
}

TEST(UserspaceExamples, PoolCondvarWithoutNestingIsSilent) {
  RunResult r = RunUnderLockgraph("pool_condvar_fixed");
  ExpectSilentTwin(r);
  EXPECT_THAT(r.out, HasSubstr("connection detached")) << Shown(r);
}

TEST(UserspaceExamples, RwlockReadersReportsReadWriteInversionOnly) {
  RunResult r = RunUnderLockgraph("rwlock_readers");
  ExpectOneReport(r, "possible circular locking dependency detected");
  EXPECT_THAT(r.err, HasSubstr("(routes)")) << Shown(r);
  EXPECT_THAT(r.err, HasSubstr("(config)")) << Shown(r);
  // Found when reload() nests the writers, not at report()'s read-read inversion.
  EXPECT_THAT(r.err, HasSubstr("reload")) << Shown(r);
}

TEST(UserspaceExamples, RwlockReadersReadReadInversionIsSilent) {
  ExpectSilentTwin(RunUnderLockgraph("rwlock_readers_fixed"));
}

TEST(UserspaceExamples, DiningPhilosophersReportsTheInstanceCycle) {
  RunResult r = RunUnderLockgraph("dining_philosophers");
  ExpectOneReport(r, "possible instance-order deadlock in one lock class detected");
  EXPECT_THAT(r.err, HasSubstr("philosopher")) << Shown(r);
}

TEST(UserspaceExamples, DiningPhilosophersLowerForkFirstIsSilent) {
  ExpectSilentTwin(RunUnderLockgraph("dining_philosophers_fixed"));
}

// lockdep's own rule (--strict) cannot tell the fixed order from the buggy one: any fork taken
// under another fork is "recursive locking". This is what the default mode improves on.
TEST(UserspaceExamples, DiningPhilosophersFixedIsRecursiveLockingInStrictMode) {
  RunResult r = RunProgram(
      {LG_CLI, "run", "--strict", "--exitcode", "66", "--", Example("dining_philosophers_fixed")});
  ExpectOneReport(r, "possible recursive locking detected");
  EXPECT_THAT(r.err, HasSubstr("(forks)")) << Shown(r);
}

// Hand-written text logs of the examples (tests/examples/scenarios/) replayed by `lockgraph
// analyze` give the live run's headline: the same engine sees the same events.
struct ScenarioCase {
  const char* file;
  const char* headline;  // nullptr: silent
  const char* detail;
};

// Shown in ctest's test list instead of the parameter's bytes.
void PrintTo(const ScenarioCase& c, std::ostream* os) { *os << c.file; }

class ScenarioTest : public ::testing::TestWithParam<ScenarioCase> {};

TEST_P(ScenarioTest, AnalyzeGivesTheLiveHeadline) {
  const ScenarioCase& c = GetParam();
  std::string path = std::string(LG_EXAMPLES_SOURCE_DIR) + "/scenarios/" + c.file;
  RunResult r = RunProgram({LG_CLI, "analyze", path});
  std::string all = r.out + r.err;
  EXPECT_THAT(all, Not(HasSubstr(std::string(c.file) + ":"))) << "a line was rejected\n"
                                                              << Shown(r);
  if (c.headline == nullptr) {
    EXPECT_THAT(all, Not(HasSubstr("WARNING"))) << Shown(r);
    EXPECT_EQ(r.exit_code, 0) << Shown(r);
    return;
  }
  EXPECT_THAT(all, HasSubstr(std::string("WARNING: ") + c.headline)) << Shown(r);
  EXPECT_EQ(CountOf(all, "WARNING:"), 1) << Shown(r);
  EXPECT_THAT(all, HasSubstr(c.detail)) << Shown(r);
  EXPECT_NE(r.exit_code, 0) << Shown(r);
}

INSTANTIATE_TEST_SUITE_P(
    Examples, ScenarioTest,
    ::testing::Values(
        ScenarioCase{"list_lru_reparent.txt", "HARDIRQ-safe -> HARDIRQ-unsafe lock order detected",
                     "<Interrupt>"},
        ScenarioCase{"list_lru_reparent_fixed.txt", nullptr, nullptr},
        ScenarioCase{"slub_flush_hotplug.txt", "possible circular locking dependency detected",
                     "#4 (slab_mutex)"},
        ScenarioCase{"thp_deferred_split.txt", "inconsistent lock state",
                     "{IN-HARDIRQ-W} -> {HARDIRQ-ON-W}"},
        ScenarioCase{"bank_transfer.txt", "possible circular locking dependency detected",
                     "(alice)"},
        ScenarioCase{"signal_logger.txt", "inconsistent lock state",
                     "{SIGUSR1-ON-W} -> {IN-SIGUSR1-W}"},
        ScenarioCase{"rwlock_readers_fixed.txt", nullptr, nullptr},
        ScenarioCase{"zswap_memcg_offline.txt", "use of destroyed lock detected!",
                     "list_lru_one_free"},
        ScenarioCase{"dining_philosophers.txt",
                     "possible instance-order deadlock in one lock class detected", "(forks)"},
        ScenarioCase{"dining_philosophers_fixed.txt", nullptr, nullptr}),
    [](const ::testing::TestParamInfo<ScenarioCase>& info) {
      std::string name;
      bool upper = true;
      for (const char* p = info.param.file; *p != '\0' && *p != '.'; ++p) {
        if (*p == '_') {
          upper = true;
          continue;
        }
        name += upper ? static_cast<char>(std::toupper(static_cast<unsigned char>(*p))) : *p;
        upper = false;
      }
      return name;
    });

// docs/reports.md gives a minimal cause for each headline; tests/examples/scenarios/reports/ has
// each one as a text log, and `lockgraph analyze` must print that headline for it.
struct ReportCase {
  const char* file;
  const char* headline;
};

void PrintTo(const ReportCase& c, std::ostream* os) { *os << c.file; }

class ReportScenarioTest : public ::testing::TestWithParam<ReportCase> {};

TEST_P(ReportScenarioTest, MinimalCauseGivesItsHeadline) {
  const ReportCase& c = GetParam();
  std::string path = std::string(LG_EXAMPLES_SOURCE_DIR) + "/scenarios/reports/" + c.file;
  RunResult r = RunProgram({LG_CLI, "analyze", path});
  std::string all = r.out + r.err;
  EXPECT_THAT(all, Not(HasSubstr(std::string(c.file) + ":"))) << "a line was rejected\n"
                                                              << Shown(r);
  EXPECT_THAT(all, HasSubstr(std::string("WARNING: ") + c.headline)) << Shown(r);
  EXPECT_EQ(r.exit_code, 1) << Shown(r);
}

INSTANTIATE_TEST_SUITE_P(
    Reports, ReportScenarioTest,
    ::testing::Values(ReportCase{"recursive_locking.txt", "possible recursive locking detected"},
                      ReportCase{"irq_inversion.txt",
                                 "possible irq lock inversion dependency detected"},
                      ReportCase{"bad_unlock_balance.txt", "bad unlock balance detected!"},
                      ReportCase{"held_lock_freed.txt", "held lock freed!"},
                      ReportCase{"held_lock_reinit.txt", "held lock re-initialized!"},
                      ReportCase{"locks_held_at_exit.txt", "worker/7 still has locks held!"},
                      ReportCase{"locks_held_at_irq_exit.txt",
                                 "lock held when returning from interrupt context!"}),
    [](const ::testing::TestParamInfo<ReportCase>& info) {
      std::string name;
      bool upper = true;
      for (const char* p = info.param.file; *p != '\0' && *p != '.'; ++p) {
        if (*p == '_') {
          upper = true;
          continue;
        }
        name += upper ? static_cast<char>(std::toupper(static_cast<unsigned char>(*p))) : *p;
        upper = false;
      }
      return name;
    });

#endif  // LG_HAVE_CLI

// Without the runtime or the CLI (a build with LOCKGRAPH_BUILD_RUNTIME or _ANALYZER off) those
// examples cannot run: say so in the test list instead of passing silently.
#if !defined(LG_HAVE_KERNEL_EXAMPLES) || !defined(LG_HAVE_CLI)
TEST(Examples, AllExamplesAreBuilt) {
#ifndef LG_HAVE_KERNEL_EXAMPLES
  GTEST_SKIP() << "the kernel examples were not built (no lockgraph::runtime target)";
#else
  GTEST_SKIP() << "the lockgraph CLI was not built: userspace examples cannot run";
#endif
}
#endif

}  // namespace
