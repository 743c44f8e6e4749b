// The lock log under faults: kill -9 while recording, a full or unwritable log path, a symlink
// planted at the log path, another process's log already there, the user's umask.
#include <signal.h>
#include <sys/stat.h>

#include <gtest/gtest.h>

#include "harness.h"

namespace lockgraph::reliability {
namespace {

constexpr int kTimeout = 60;
constexpr const char* kCycle = "WARNING: possible circular locking dependency detected";

long FileSize(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 ? static_cast<long>(st.st_size) : -1;
}

// The logs in `dir` whose names start with `prefix` (the fallback names a recorder chose).
std::vector<std::string> LogsStartingWith(const std::string& dir, const std::string& prefix) {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) == 0 && name != prefix) out.push_back(e.path().string());
  }
  return out;
}

// kill -9 in the middle of a recorded run: every complete block still analyzes, so the
// inversion recorded before the kill is found offline.
TEST(KillDuringRecord, CompleteBlocksOfTheLogStillAnalyze) {
  ScratchDir dir;
  const std::string log = dir / "run.lglog";
  const std::string ready = dir / "ready";
  Child run(UnderLockgraph({"record-until-killed", ready}, {"--record", log}));
  // Wait until the program is past the inversion and several 64 KiB blocks are on disk.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < deadline &&
         (ReadFile(ready).empty() || FileSize(log) < 4 * 65536)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const pid_t program = std::atoi(ReadFile(ready).c_str());
  ASSERT_GT(program, 0) << "the program never got ready";
  ASSERT_GE(FileSize(log), 4 * 65536);
  ASSERT_EQ(kill(program, SIGKILL), 0);
  const Result killed = run.Wait(kTimeout);
  ASSERT_FALSE(killed.timed_out);
  EXPECT_EQ(killed.exit_code, 128 + SIGKILL);

  const Result analyzed = RunProgram({kCli, "analyze", log}, kTimeout);
  ASSERT_FALSE(analyzed.timed_out) << analyzed.err;
  EXPECT_EQ(analyzed.exit_code, 1) << analyzed.err;  // findings
  EXPECT_EQ(Count(analyzed.out, kCycle), 1) << analyzed.out << analyzed.err;
  EXPECT_NE(analyzed.out.find("lock_a"), std::string::npos) << analyzed.out;
  EXPECT_NE(analyzed.out.find("lock_b"), std::string::npos) << analyzed.out;
}

// Disk full: one clear warning naming the file, recording stops, the program and the live
// checking go on.
TEST(UnwritableLog, DiskFullWarnsOnceAndLiveCheckingContinues) {
  const Result lg = RunProgram(UnderLockgraph({"record-then-abba"}, {"--record", "/dev/full"}), kTimeout);
  ASSERT_FALSE(lg.timed_out) << lg.err;
  EXPECT_EQ(lg.exit_code, 0) << lg.err;
  EXPECT_EQ(lg.out, "done\n");
  EXPECT_EQ(LinesWith(lg.err, "/dev/full").size(), 1u) << lg.err;
  EXPECT_EQ(Count(lg.err, kCycle), 1) << lg.err;
  EXPECT_EQ(Count(lg.err, "turning off the validator"), 0) << lg.err;
}

// A log path that cannot be created (its parent is not a directory; the tests may run as root,
// which ignores read-only modes): one warning naming it, the program runs, live checking goes on.
TEST(UnwritableLog, UncreatablePathWarnsOnceAndLiveCheckingContinues) {
  ScratchDir dir;
  WriteFile(dir / "file", "not a directory\n");
  const std::string log = dir / "file/run.lglog";
  const Result lg = RunProgram(UnderLockgraph({"record-then-abba"}, {"--record", log}), kTimeout);
  ASSERT_FALSE(lg.timed_out) << lg.err;
  EXPECT_EQ(lg.exit_code, 0) << lg.err;
  EXPECT_EQ(lg.out, "done\n");
  EXPECT_EQ(LinesWith(lg.err, log).size(), 1u) << lg.err;
  EXPECT_EQ(Count(lg.err, kCycle), 1) << lg.err;
}

// The same for the report file: reports fall back to stderr, with one line saying why.
TEST(UnwritableLog, UncreatableReportFileFallsBackToStderr) {
  ScratchDir dir;
  WriteFile(dir / "file", "not a directory\n");
  const std::string reports = dir / "file/reports.txt";
  const Result lg = RunProgram(UnderLockgraph({"abba"}, {"--log-file", reports}), kTimeout);
  ASSERT_FALSE(lg.timed_out) << lg.err;
  EXPECT_EQ(lg.exit_code, 0) << lg.err;
  EXPECT_EQ(lg.out, "done\n");
  EXPECT_EQ(LinesWith(lg.err, reports).size(), 1u) << lg.err;
  EXPECT_EQ(Count(lg.err, kCycle), 1) << lg.err;
}

// The report file (--log-file) is appended to by every process of a run, but a symlink planted at
// its path is not followed: the file it points to keeps its bytes, reports go to stderr with one
// line naming the path.
TEST(LogFiles, SymlinkAtTheReportFilePathIsNotFollowed) {
  ScratchDir dir;
  const std::string victim = dir / "victim.txt";
  WriteFile(victim, "precious\n");
  const std::string reports = dir / "reports.txt";
  ASSERT_EQ(symlink(victim.c_str(), reports.c_str()), 0);
  const Result lg = RunProgram(UnderLockgraph({"abba"}, {"--log-file", reports}), kTimeout);
  ASSERT_FALSE(lg.timed_out) << lg.err;
  EXPECT_EQ(lg.exit_code, 0) << lg.err;
  EXPECT_EQ(lg.out, "done\n");
  EXPECT_EQ(ReadFile(victim), "precious\n");
  EXPECT_EQ(LinesWith(lg.err, "cannot open log file '" + reports + "'").size(), 1u) << lg.err;
  EXPECT_EQ(Count(lg.err, kCycle), 1) << lg.err;
}

// The report file gets the user's umask too (002 here, so a fixed mode would show).
TEST(LogFiles, ReportFileCreatedWithTheUsersUmask) {
  ScratchDir dir;
  const std::string reports = dir / "reports.txt";
  Child run(UnderLockgraph({"abba"}, {"--log-file", reports}), 002);
  const Result lg = run.Wait(kTimeout);
  ASSERT_EQ(lg.exit_code, 0) << lg.err;
  EXPECT_EQ(Count(ReadFile(reports), kCycle), 1) << lg.err;
  struct stat st {};
  ASSERT_EQ(stat(reports.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0664u);  // 0666 less the umask, not a fixed 0644
}

// Log files get the user's umask.
TEST(LogFiles, CreatedWithTheUsersUmask) {
  ScratchDir dir;
  const std::string log = dir / "run.lglog";
  Child run(UnderLockgraph({"abba"}, {"--record", log}), 077);
  const Result lg = run.Wait(kTimeout);
  ASSERT_EQ(lg.exit_code, 0) << lg.err;
  struct stat st {};
  ASSERT_EQ(stat(log.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

// A symlink planted at the log path is not followed: the file it points to keeps its bytes, and
// the log goes to the next free name (LOG.<pid>), which the warning names.
TEST(LogFiles, SymlinkAtTheLogPathIsNotFollowed) {
  ScratchDir dir;
  const std::string victim = dir / "victim.txt";
  WriteFile(victim, "precious\n");
  const std::string log = dir / "run.lglog";
  ASSERT_EQ(symlink(victim.c_str(), log.c_str()), 0);
  const Result lg = RunProgram(UnderLockgraph({"abba"}, {"--record", log}), kTimeout);
  ASSERT_FALSE(lg.timed_out);
  EXPECT_EQ(lg.exit_code, 0) << lg.err;
  EXPECT_EQ(lg.out, "done\n");
  EXPECT_EQ(ReadFile(victim), "precious\n");
  EXPECT_EQ(Count(lg.err, kCycle), 1) << lg.err;  // live checking goes on either way
  struct stat st {};
  ASSERT_EQ(lstat(log.c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  const auto logs = LogsStartingWith(dir.path(), "run.lglog.");
  ASSERT_EQ(logs.size(), 1u);
  EXPECT_EQ(LinesWith(lg.err, "recording to '" + logs[0] + "'").size(), 1u) << lg.err;
  const Result analyzed = RunProgram({kCli, "analyze", logs[0]}, kTimeout);
  EXPECT_EQ(analyzed.exit_code, 1) << analyzed.err;
  EXPECT_EQ(Count(analyzed.out, kCycle), 1) << analyzed.out;
}

// Another process's log at the path is never overwritten; the log goes to LOG.<pid> instead.
TEST(LogFiles, ExistingLogIsNotOverwritten) {
  ScratchDir dir;
  const std::string log = dir / "run.lglog";
  WriteFile(log, "another process's log\n");
  const Result lg = RunProgram(UnderLockgraph({"abba"}, {"--record", log}), kTimeout);
  ASSERT_FALSE(lg.timed_out);
  EXPECT_EQ(lg.exit_code, 0) << lg.err;
  EXPECT_EQ(ReadFile(log), "another process's log\n");
  EXPECT_EQ(Count(lg.err, kCycle), 1) << lg.err;
  const auto logs = LogsStartingWith(dir.path(), "run.lglog.");
  ASSERT_EQ(logs.size(), 1u);
  EXPECT_EQ(LinesWith(lg.err, "is not overwritten; recording to '" + logs[0] + "'").size(), 1u)
      << lg.err;
  const Result analyzed = RunProgram({kCli, "analyze", logs[0]}, kTimeout);
  EXPECT_EQ(analyzed.exit_code, 1) << analyzed.err;
  EXPECT_EQ(Count(analyzed.out, kCycle), 1) << analyzed.out;
}

// A record path from the environment is untrusted: an overlong one (or one with control
// characters) is refused with one clear line; the program and live checking go on.
TEST(LogFiles, OverlongRecordPathFromTheEnvironmentIsRefused) {
  const std::string path = "/tmp/" + std::string(5000, 'x') + "%s%n";
  std::vector<std::string> argv = UnderLockgraph({"abba"});
  argv.insert(argv.begin(), {"/usr/bin/env", "LOCKGRAPH_OPTIONS=record=" + path});
  const Result lg = RunProgram(argv, kTimeout);
  ASSERT_FALSE(lg.timed_out);
  EXPECT_EQ(lg.exit_code, 0) << lg.err;
  EXPECT_EQ(lg.out, "done\n");
  EXPECT_EQ(LinesWith(lg.err, "the record path is too long (5009 bytes, at most 4096)").size(), 1u)
      << lg.err;
  EXPECT_EQ(Count(lg.err, kCycle), 1) << lg.err;
}

}  // namespace
}  // namespace lockgraph::reliability
