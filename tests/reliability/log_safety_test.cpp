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

// A symlink planted at the log path is not followed: the file it points to keeps its bytes.
// DISABLED: fails for an open bug, see /tmp/team/requests.md "reliability helper: log files
// follow symlinks and overwrite" (the recorder opens with O_TRUNC and without O_NOFOLLOW).
TEST(LogFiles, DISABLED_SymlinkAtTheLogPathIsNotFollowed) {
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
}

// Another process's log at the path is never overwritten.
// DISABLED: same open bug as above.
TEST(LogFiles, DISABLED_ExistingLogIsNotOverwritten) {
  ScratchDir dir;
  const std::string log = dir / "run.lglog";
  WriteFile(log, "another process's log\n");
  const Result lg = RunProgram(UnderLockgraph({"abba"}, {"--record", log}), kTimeout);
  ASSERT_FALSE(lg.timed_out);
  EXPECT_EQ(lg.exit_code, 0) << lg.err;
  EXPECT_EQ(ReadFile(log), "another process's log\n");
  EXPECT_EQ(Count(lg.err, kCycle), 1) << lg.err;
}

}  // namespace
}  // namespace lockgraph::reliability
