// `lockgraph analyze|graph|baseline|convert` as a user runs them: reports, exit codes, errors.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

const std::string kLockgraph = LOCKGRAPH_CLI_PATH;
const std::string kScenarios = LOCKGRAPH_SCENARIOS_DIR;

struct Result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const fs::path& p, const std::string& data) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << data;
}

class AnalyzeCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("lockgraph-cli-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }

  // Runs lockgraph with `args` (already shell-quoted where needed), in the temp directory.
  Result Run(const std::string& args) {
    std::string cmd = "cd '" + dir_.string() + "' && '" + kLockgraph + "' " + args + " >'" +
                      (dir_ / "stdout").string() + "' 2>'" + (dir_ / "stderr").string() + "'";
    int status = std::system(cmd.c_str());
    Result r;
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = ReadFile(dir_ / "stdout");
    r.err = ReadFile(dir_ / "stderr");
    return r;
  }
  std::string Scenario(const std::string& name) { return "'" + kScenarios + "/" + name + "'"; }

  fs::path dir_;
};

int Count(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (std::size_t p = haystack.find(needle); p != std::string::npos;
       p = haystack.find(needle, p + 1))
    ++n;
  return n;
}

TEST_F(AnalyzeCli, AbbaSplitAcrossTwoRunsIsOneCircularFindingNamingBothRuns) {
  Result r = Run("analyze " + Scenario("abba_transfer.txt") + " " + Scenario("abba_audit.txt"));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(Count(r.out, "WARNING: possible circular locking dependency detected"), 1) << r.out;
  EXPECT_NE(r.out.find("(A)"), std::string::npos);
  EXPECT_NE(r.out.find("(B)"), std::string::npos);
  EXPECT_NE(r.out.find("./transfer[100] ("), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("./audit[200] ("), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("transfer (bank.c:41)"), std::string::npos);
  EXPECT_NE(r.err.find("1 new finding"), std::string::npos) << r.err;
}

// Logs of binary format version 1 (zlib's CRC-32, before version 2's CRC-32C), as an older
// lockgraph recorded them, are analyzed as before, damage included.
TEST_F(AnalyzeCli, VersionOneBinaryLogsAreStillAnalyzed) {
  const std::string corpus = LOCKGRAPH_CORPUS_DIR "/binary/";
  Result r = Run("analyze '" + corpus + "abba_transfer.lglog' '" + corpus + "abba_audit.lglog'");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(Count(r.out, "WARNING: possible circular locking dependency detected"), 1) << r.out;
  EXPECT_NE(r.out.find("(A)"), std::string::npos);
  EXPECT_NE(r.out.find("(B)"), std::string::npos);
  EXPECT_NE(r.err.find("1 new finding (2 runs analyzed, 16 events)"), std::string::npos) << r.err;
  std::string old = ReadFile(corpus + "abba_transfer.lglog");
  ASSERT_EQ(old[8], 1);
  const std::size_t block = old.find("LGBK");
  ASSERT_NE(block, std::string::npos);
  old[block + 20] ^= 0x10;
  WriteFile(dir_ / "damaged.lglog", old);
  Result d = Run("analyze damaged.lglog");
  EXPECT_EQ(d.exit_code, 2) << d.err;
  EXPECT_NE(d.err.find("damaged.lglog: offset " + std::to_string(block) +
                       ": corrupt block (CRC mismatch)"),
            std::string::npos)
      << d.err;
}

TEST_F(AnalyzeCli, EachHalfAloneIsClean) {
  for (const char* half : {"abba_transfer.txt", "abba_audit.txt", "clean.txt"}) {
    Result r = Run("analyze " + Scenario(half));
    EXPECT_EQ(r.exit_code, 0) << half << r.out << r.err;
    EXPECT_EQ(r.out.find("WARNING"), std::string::npos) << r.out;
  }
}

TEST_F(AnalyzeCli, SignalScenarioIsInconsistentLockState) {
  Result r = Run("analyze " + Scenario("signal_stats.txt"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("WARNING: inconsistent lock state"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("stats_lock"), std::string::npos);
  EXPECT_NE(r.out.find("SIGUSR1"), std::string::npos);
}

TEST_F(AnalyzeCli, RecursiveScenarioNamesTheLockAndThread) {
  Result r = Run("analyze " + Scenario("recursive.txt"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("WARNING: possible recursive locking detected"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(cache_lock)"), std::string::npos);
  EXPECT_NE(r.out.find("worker/"), std::string::npos);
}

TEST_F(AnalyzeCli, RecordedInstanceNamesReplaceAddresses) {
  Result r = Run("analyze " + Scenario("instance_names.txt"));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.out.find("WARNING: possible instance-order deadlock in one lock class detected"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("forks[0] --> forks[1]"), std::string::npos) << r.out;
  // The names survive a conversion to the binary format and back.
  ASSERT_EQ(Run("convert " + Scenario("instance_names.txt") + " -o f.lglog").exit_code, 0);
  Result bin = Run("analyze f.lglog");
  EXPECT_NE(bin.out.find("forks[0] --> forks[1]"), std::string::npos) << bin.out;
}

TEST_F(AnalyzeCli, DirectoryAndGlobInputsMergeLikeFiles) {
  fs::create_directories(dir_ / "logs" / "sub");
  fs::copy_file(kScenarios + "/abba_transfer.txt", dir_ / "logs" / "a.txt");
  fs::copy_file(kScenarios + "/abba_audit.txt", dir_ / "logs" / "sub" / "b.txt");
  WriteFile(dir_ / "logs" / "README", "not a log\n");
  Result r = Run("analyze logs");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(Count(r.out, "possible circular locking dependency"), 1);
  Result g = Run("analyze 'logs/*.txt' 'logs/sub/*.txt'");
  EXPECT_EQ(g.exit_code, 1) << g.err;
  EXPECT_EQ(g.out, r.out);
}

TEST_F(AnalyzeCli, JsonCarriesFingerprintClassesChainAndRuns) {
  Result r = Run("analyze --format json " + Scenario("abba_transfer.txt") + " " +
                 Scenario("abba_audit.txt"));
  ASSERT_EQ(r.exit_code, 1) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["findings"].size(), 1u);
  const auto& f = j["findings"][0];
  EXPECT_EQ(f["kind"], "circular-dependency");
  EXPECT_EQ(f["status"], "new");
  EXPECT_EQ(f["fingerprint"].get<std::string>().size(), 16u);
  auto classes = f["classes"].get<std::vector<std::string>>();
  EXPECT_NE(std::find(classes.begin(), classes.end(), "A"), classes.end());
  EXPECT_NE(std::find(classes.begin(), classes.end(), "B"), classes.end());
  ASSERT_EQ(f["chain"].size(), 2u);
  std::set<std::string> runs;
  for (const auto& d : f["chain"]) runs.insert(d["run"]["name"].get<std::string>());
  EXPECT_EQ(runs.size(), 2u);
  EXPECT_NE(f["report"].get<std::string>().find("WARNING: possible circular"), std::string::npos);
  EXPECT_EQ(j["runs"].size(), 2u);
  EXPECT_EQ(j["exit_code"], 1);
  // Deterministic: the same input gives byte-identical output.
  Result again = Run("analyze --format json " + Scenario("abba_transfer.txt") + " " +
                     Scenario("abba_audit.txt"));
  EXPECT_EQ(again.out, r.out);
}

TEST_F(AnalyzeCli, SarifPointsAtTheAcquisitionLines) {
  Result r = Run("analyze --format sarif " + Scenario("abba_transfer.txt") + " " +
                 Scenario("abba_audit.txt"));
  ASSERT_EQ(r.exit_code, 1) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["version"], "2.1.0");
  const auto& run = j["runs"][0];
  EXPECT_EQ(run["tool"]["driver"]["name"], "lockgraph");
  ASSERT_EQ(run["results"].size(), 1u);
  const auto& res = run["results"][0];
  EXPECT_EQ(res["ruleId"], "circular-dependency");
  const auto& loc = res["locations"][0]["physicalLocation"];
  EXPECT_EQ(loc["artifactLocation"]["uri"], "audit.c");
  EXPECT_EQ(loc["region"]["startLine"], 11);
  EXPECT_EQ(res["relatedLocations"].size(), 2u);
  EXPECT_TRUE(res["partialFingerprints"].contains("lockgraphFingerprint/v1"));
  // Every rule a result names exists at its index.
  int index = res["ruleIndex"];
  EXPECT_EQ(run["tool"]["driver"]["rules"][index]["id"], "circular-dependency");
}

TEST_F(AnalyzeCli, JunitHasOneFailurePerFinding) {
  Result r = Run("analyze --format junit -o report.xml " + Scenario("signal_stats.txt") + " " +
                 Scenario("recursive.txt"));
  EXPECT_EQ(r.exit_code, 1);
  std::string xml = ReadFile(dir_ / "report.xml");
  EXPECT_EQ(xml.rfind("<?xml", 0), 0u);
  EXPECT_EQ(Count(xml, "<failure "), 2) << xml;
  EXPECT_NE(xml.find("failures=\"2\""), std::string::npos);
  EXPECT_NE(xml.find("type=\"recursive-locking\""), std::string::npos);
  Result clean = Run("analyze --format junit " + Scenario("clean.txt"));
  EXPECT_EQ(clean.exit_code, 0);
  EXPECT_NE(clean.out.find("failures=\"0\""), std::string::npos);
}

TEST_F(AnalyzeCli, BaselineSilencesKnownFindingsOnly) {
  Result b = Run("baseline -o base.txt " + Scenario("abba_transfer.txt") + " " +
                 Scenario("abba_audit.txt"));
  ASSERT_EQ(b.exit_code, 0) << b.err;
  std::string base = ReadFile(dir_ / "base.txt");
  EXPECT_NE(base.find("circular-dependency"), std::string::npos) << base;
  Result known = Run("analyze --baseline base.txt " + Scenario("abba_transfer.txt") + " " +
                     Scenario("abba_audit.txt"));
  EXPECT_EQ(known.exit_code, 0) << known.err;
  EXPECT_EQ(known.out.find("WARNING"), std::string::npos);
  EXPECT_NE(known.err.find("1 in baseline"), std::string::npos) << known.err;
  Result more = Run("analyze --baseline base.txt " + Scenario("abba_transfer.txt") + " " +
                    Scenario("abba_audit.txt") + " " + Scenario("recursive.txt"));
  EXPECT_EQ(more.exit_code, 1);
  EXPECT_EQ(Count(more.out, "WARNING:"), 1);
  EXPECT_NE(more.out.find("recursive locking"), std::string::npos);
  // The baseline file is the same however often it is made.
  Run("baseline -o base2.txt " + Scenario("abba_transfer.txt") + " " + Scenario("abba_audit.txt"));
  EXPECT_EQ(ReadFile(dir_ / "base2.txt"), base);
}

TEST_F(AnalyzeCli, SuppressionsNeedReasonsAndUnusedOnesAreListed) {
  WriteFile(dir_ / "supp.txt",
            "# known issues\n"
            "kind=circular-dependency class=A class=B reason=\"legacy audit path, ticket 12\"\n"
            "kind=irq-* class=nothing_like_this reason=\"stale entry\"\n");
  Result r = Run("analyze --suppressions supp.txt " + Scenario("abba_transfer.txt") + " " +
                 Scenario("abba_audit.txt"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.find("WARNING"), std::string::npos);
  EXPECT_NE(r.err.find("supp.txt:3: unused suppression (stale entry)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("1 suppressed"), std::string::npos);

  WriteFile(dir_ / "bad.txt", "kind=circular-dependency colour=red reason=x\n");
  Result bad = Run("analyze --suppressions bad.txt " + Scenario("clean.txt"));
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("bad.txt:1: unknown suppression key 'colour'"), std::string::npos)
      << bad.err;
  WriteFile(dir_ / "noreason.txt", "class=A\n");
  Result nr = Run("analyze --suppressions noreason.txt " + Scenario("clean.txt"));
  EXPECT_EQ(nr.exit_code, 2);
  EXPECT_NE(nr.err.find("noreason.txt:1: suppression without reason"), std::string::npos);
}

TEST_F(AnalyzeCli, ConvertRoundTripGivesTheSameReports) {
  Result want = Run("analyze " + Scenario("abba_transfer.txt") + " " + Scenario("abba_audit.txt"));
  ASSERT_EQ(Run("convert " + Scenario("abba_transfer.txt") + " -o a.lglog").exit_code, 0);
  ASSERT_EQ(Run("convert " + Scenario("abba_audit.txt") + " -o b.lglog").exit_code, 0);
  EXPECT_EQ(ReadFile(dir_ / "a.lglog").rfind("\x89LGLOG", 0), 0u);
  Result bin = Run("analyze a.lglog b.lglog");
  EXPECT_EQ(bin.exit_code, 1) << bin.err;
  // Same report, except that run names carry the file they were read from.
  auto strip = [](std::string s) {
    for (const char* from : {"a.lglog", "b.lglog"}) {
      std::size_t p;
      while ((p = s.find(from)) != std::string::npos) s.replace(p, 7, "LOG");
    }
    return s;
  };
  std::string w = want.out;
  for (const std::string& f : {kScenarios + "/abba_transfer.txt", kScenarios + "/abba_audit.txt"}) {
    std::size_t p;
    while ((p = w.find(f)) != std::string::npos) w.replace(p, f.size(), "LOG");
  }
  EXPECT_EQ(strip(bin.out), w);
  ASSERT_EQ(Run("convert a.lglog -o a.txt").exit_code, 0);
  std::string text = ReadFile(dir_ / "a.txt");
  EXPECT_EQ(text.rfind("lockgraph-text 1\n", 0), 0u) << text;
  EXPECT_NE(text.find("site 0x"), std::string::npos);
  ASSERT_EQ(Run("convert a.txt -o a2.lglog").exit_code, 0);
  EXPECT_EQ(ReadFile(dir_ / "a2.lglog"), ReadFile(dir_ / "a.lglog"));
}

// A binary log of several blocks whose first and last blocks hold an ABBA.
std::string BigAbbaText(int filler) {
  std::string s = "lockgraph-text 1\nrun program=\"./big\" pid=7\n";
  s += "acquire t1 A at=\"first (big.c:1)\"\nacquire t1 B at=\"first (big.c:2)\"\n";
  s += "release t1 B\nrelease t1 A\n";
  for (int i = 0; i < filler; ++i)
    s += "acquire t2 F" + std::to_string(i % 50) + "\nrelease t2 F" + std::to_string(i % 50) + "\n";
  s += "acquire t3 B at=\"last (big.c:3)\"\nacquire t3 A at=\"last (big.c:4)\"\n";
  return s;
}

TEST_F(AnalyzeCli, CorruptBlockIsReportedAndTheBlocksAroundItAreAnalyzed) {
  WriteFile(dir_ / "big.txt", BigAbbaText(40000));
  ASSERT_EQ(Run("convert big.txt -o big.lglog").exit_code, 0);
  std::string bin = ReadFile(dir_ / "big.lglog");
  std::size_t first = bin.find("LGBK");
  std::size_t second = bin.find("LGBK", first + 1);
  ASSERT_NE(bin.find("LGBK", second + 1), std::string::npos) << "need three blocks";
  bin[second + 100] ^= 0x20;
  WriteFile(dir_ / "big.lglog", bin);
  Result r = Run("analyze big.lglog");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(Count(r.out, "possible circular locking dependency"), 1) << r.out;
  EXPECT_NE(r.err.find("big.lglog: offset " + std::to_string(second) + ": corrupt block (CRC mismatch)"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("analyzed the"), std::string::npos);
  EXPECT_EQ(Count(r.err, "error:"), 1) << r.err;
}

TEST_F(AnalyzeCli, TruncatedLogStopsCleanlyWithExitTwo) {
  ASSERT_EQ(Run("convert " + Scenario("clean.txt") + " -o c.lglog").exit_code, 0);
  std::string bin = ReadFile(dir_ / "c.lglog");
  WriteFile(dir_ / "c.lglog", bin.substr(0, bin.size() - 5));
  Result r = Run("analyze c.lglog");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("c.lglog: offset "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("truncated block"), std::string::npos) << r.err;
  EXPECT_EQ(Count(r.err, "error:"), 1) << r.err;
}

TEST_F(AnalyzeCli, NotALogWrongVersionAndMissingFileAreInputErrors) {
  WriteFile(dir_ / "junk.bin", "\x7f" "ELF garbage");
  Result junk = Run("analyze junk.bin");
  EXPECT_EQ(junk.exit_code, 2);
  EXPECT_NE(junk.err.find("junk.bin: offset 0: not a lockgraph log"), std::string::npos) << junk.err;

  ASSERT_EQ(Run("convert " + Scenario("clean.txt") + " -o v.lglog").exit_code, 0);
  std::string bin = ReadFile(dir_ / "v.lglog");
  bin[8] = 9;
  WriteFile(dir_ / "v.lglog", bin);
  Result v = Run("analyze v.lglog");
  EXPECT_EQ(v.exit_code, 2);
  EXPECT_NE(v.err.find("v.lglog: offset 8: unsupported log format version 9"), std::string::npos)
      << v.err;

  Result missing = Run("analyze nothere.lglog " + Scenario("recursive.txt"));
  EXPECT_EQ(missing.exit_code, 1);  // the findings of the readable input still fail the build
  EXPECT_NE(missing.err.find("nothere.lglog: no such file or directory"), std::string::npos);
  EXPECT_NE(missing.out.find("recursive locking"), std::string::npos);
}

TEST_F(AnalyzeCli, BadTextLineNamesFileAndLineAndTheRestIsAnalyzed) {
  WriteFile(dir_ / "s.txt",
            "lockgraph-text 1\n"
            "acquire t1 A\n"
            "acquire t1 B mode=sideways\n"
            "acquire t1 A\n");
  Result r = Run("analyze s.txt");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("s.txt:3: unknown mode 'sideways'"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("recursive locking"), std::string::npos);
}

TEST_F(AnalyzeCli, UsageErrorsExitTwo) {
  EXPECT_EQ(Run("analyze --format yaml " + Scenario("clean.txt")).exit_code, 2);
  EXPECT_EQ(Run("analyze").exit_code, 2);
  EXPECT_EQ(Run("frobnicate").exit_code, 2);
  EXPECT_EQ(Run("baseline " + Scenario("clean.txt")).exit_code, 2);
  EXPECT_EQ(Run("--help").exit_code, 0);
}

TEST_F(AnalyzeCli, GraphHighlightsTheCycle) {
  Result r = Run("graph " + Scenario("abba_transfer.txt") + " " + Scenario("abba_audit.txt") +
                 " " + Scenario("clean.txt"));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.out.rfind("digraph lockgraph {", 0), 0u);
  EXPECT_NE(r.out.find("label=\"A\""), std::string::npos) << r.out;
  EXPECT_EQ(Count(r.out, "penwidth=2.5"), 2) << r.out;  // A -> B and B -> A
  if (std::system("command -v dot >/dev/null 2>&1") == 0) {
    Result svg = Run("graph --format svg -o g.svg " + Scenario("abba_transfer.txt") + " " +
                     Scenario("abba_audit.txt"));
    EXPECT_EQ(svg.exit_code, 1) << svg.err;
    EXPECT_NE(ReadFile(dir_ / "g.svg").find("<svg"), std::string::npos);
  }
}

TEST_F(AnalyzeCli, GraphHighlightsOnlyFindingsAndTheIrqPath) {
  // A is taken in hardirq context, then A -> B with hardirqs off, then B with hardirqs on.
  WriteFile(dir_ / "irq.txt",
            "lockgraph-text 1\n"
            "enter t1 hardirq\nacquire t1 A\nrelease t1 A\nleave t1 hardirq\n"
            "disable t1 hardirq\nacquire t1 A\nacquire t1 B\nrelease t1 B\nrelease t1 A\n"
            "enable t1 hardirq\nacquire t1 B\nrelease t1 B\n"
            "acquire t1 C\nacquire t1 D\nrelease t1 D\nrelease t1 C\n");
  Result r = Run("graph irq.txt");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  // The A -> B edge of the irq path is drawn in colour; C -> D is not.
  std::size_t ab = r.out.find("c0 -> c1 [");
  ASSERT_NE(ab, std::string::npos) << r.out;
  EXPECT_NE(r.out.substr(ab, r.out.find('\n', ab) - ab).find("penwidth=2.5"), std::string::npos)
      << r.out;
  std::size_t cd = r.out.find("c2 -> c3 [");
  ASSERT_NE(cd, std::string::npos) << r.out;
  EXPECT_EQ(r.out.substr(cd, r.out.find('\n', cd) - cd).find("penwidth"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("#1 possible irq lock inversion dependency detected: A, B"), std::string::npos)
      << r.out;
  // --only-findings leaves C and D out.
  Result only = Run("graph --only-findings irq.txt");
  EXPECT_EQ(only.exit_code, 1);
  EXPECT_EQ(only.out.find("label=\"C\""), std::string::npos) << only.out;
  EXPECT_NE(only.out.find("label=\"A\""), std::string::npos) << only.out;
  // A clean graph: exit 0, nothing in colour; an unreadable input: exit 2.
  Result clean = Run("graph " + Scenario("clean.txt"));
  EXPECT_EQ(clean.exit_code, 0) << clean.err;
  EXPECT_EQ(clean.out.find("penwidth"), std::string::npos) << clean.out;
  EXPECT_EQ(Run("graph nothere.lglog").exit_code, 2);
  if (std::system("command -v dot >/dev/null 2>&1") == 0) {
    Result svg = Run("graph --format svg -o g.svg irq.txt");
    EXPECT_EQ(svg.exit_code, 1) << svg.err;
    std::string text = ReadFile(dir_ / "g.svg");
    EXPECT_NE(text.find("stroke=\"red\""), std::string::npos) << text;
  }
}

// The progress bar appears on a terminal (a pty made by script(1)), is erased before the
// summary, and never appears when stderr is not a terminal or with --no-progress.
TEST_F(AnalyzeCli, ProgressBarOnlyOnATerminal) {
  if (std::system("command -v script >/dev/null 2>&1") != 0) GTEST_SKIP() << "no script(1)";
  std::string log = BigAbbaText(40000);
  WriteFile(dir_ / "big.txt", log);
  ASSERT_EQ(Run("convert big.txt -o big.lglog").exit_code, 0);
  auto on_pty = [&](const std::string& args) {
    std::string cmd = "cd '" + dir_.string() + "' && TERM=xterm script -qfec \"'" + kLockgraph +
                      "' " + args + "\" pty.out >/dev/null 2>&1";
    int status = std::system(cmd.c_str());
    EXPECT_EQ(WIFEXITED(status) ? WEXITSTATUS(status) : -1, 1) << args;
    return ReadFile(dir_ / "pty.out");
  };
  std::string tty = on_pty("analyze big.lglog");
  EXPECT_NE(tty.find("analyzing ["), std::string::npos) << tty;
  std::size_t erase = tty.rfind("\r\033[K");
  ASSERT_NE(erase, std::string::npos) << tty;
  EXPECT_LT(erase, tty.find("lockgraph: 1 new finding")) << tty;
  EXPECT_EQ(on_pty("analyze --no-progress big.lglog").find("analyzing ["), std::string::npos);
  Result piped = Run("analyze big.lglog");
  EXPECT_EQ(piped.exit_code, 1);
  EXPECT_EQ(piped.err.find("analyzing ["), std::string::npos) << piped.err;
}

}  // namespace
