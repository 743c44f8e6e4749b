// Offline == live: every example run under `lockgraph run --record` gives, when its log is
// analyzed, the findings (and the report text) the live run printed; and the analysis pipeline
// (which merges the recorder's per-thread blocks by stamp as it decodes them) gives exactly what
// the two-pass path (every block read first) gives on that log.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "analysis.h"

namespace {

namespace fs = std::filesystem;

const std::string kLockgraph = LOCKGRAPH_CLI_PATH;
const std::string kExamplesDir = LOCKGRAPH_EXAMPLES_DIR;

std::vector<std::string> Examples() {
  std::vector<std::string> out;
  std::stringstream ss(LOCKGRAPH_EXAMPLES);
  std::string name;
  while (std::getline(ss, name, ','))
    if (!name.empty()) out.push_back(name);
  return out;
}

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int Shell(const std::string& cmd) {
  int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::vector<std::string> Headlines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("WARNING: ", 0) == 0) out.push_back(line);
  return out;
}

// Report text without blank lines: the live run separates reports with an empty line, the
// offline output does not. Everything else (headlines, chains, frames with their offsets,
// call sites) must be identical.
std::string Normalize(const std::string& text) {
  std::istringstream in(text);
  std::string line, out;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    out += line + "\n";
  }
  return out;
}

class ReplayEquivalence : public ::testing::TestWithParam<std::string> {};

TEST_P(ReplayEquivalence, OfflineAnalysisGivesTheLiveFindings) {
  const std::string example = GetParam();
  const fs::path dir = fs::temp_directory_path() /
                       ("lockgraph-equiv-" + std::to_string(getpid()) + "-" + example);
  fs::remove_all(dir);
  fs::create_directories(dir);
  const fs::path log = dir / "run.lglog", live = dir / "live.txt", off = dir / "offline.txt";
  const int run_status =
      Shell("'" + kLockgraph + "' run --record '" + log.string() + "' --log-file '" +
            live.string() + "' -- '" + kExamplesDir + "/" + example + "' >/dev/null 2>&1");
  ASSERT_TRUE(fs::exists(log)) << "no log recorded; run exit status " << run_status;
  const int analyze_status = Shell("'" + kLockgraph + "' analyze '" + log.string() + "' >'" +
                                   off.string() + "' 2>'" + (dir / "err.txt").string() + "'");
  const std::string live_text = ReadFile(live), off_text = ReadFile(off);
  const auto live_headlines = Headlines(live_text);
  EXPECT_EQ(Headlines(off_text), live_headlines) << ReadFile(dir / "err.txt");
  EXPECT_EQ(analyze_status, live_headlines.empty() ? 0 : 1) << ReadFile(dir / "err.txt");
  EXPECT_EQ(Normalize(off_text), Normalize(live_text));
  // A fixed example is silent, a buggy one is not: the comparison above is not empty == empty.
  const bool fixed = example.size() > 6 && example.compare(example.size() - 6, 6, "_fixed") == 0;
  if (fixed) EXPECT_TRUE(live_headlines.empty()) << live_text;

  // The same log through both replay paths: identical reports, errors and exit code.
  auto analyzed = [&log](bool two_pass, lockgraph::analyzer::Analysis* a) {
    lockgraph::analyzer::AnalyzeOptions o;
    o.inputs = {log.string()};
    o.two_pass = two_pass;
    lockgraph::analyzer::Analyze(o, a);
    std::vector<std::string> out;
    for (const auto& f : a->findings) out.push_back(f.report);
    for (const auto& e : a->errors) out.push_back(lockgraph::analyzer::FormatInputError(e));
    out.push_back("exit " + std::to_string(a->ExitCode()) + ", " + std::to_string(a->events) +
                  " events");
    return out;
  };
  lockgraph::analyzer::Analysis streamed, two_pass;
  const auto streamed_out = analyzed(false, &streamed);
  EXPECT_TRUE(streamed.pipelined);
  EXPECT_EQ(streamed.merged_logs, 1u);  // a stamped, undamaged log: merged by stamp
  EXPECT_EQ(streamed_out, analyzed(true, &two_pass));
  EXPECT_EQ(streamed_out.size(), live_headlines.size() + 1);
  if (!HasFailure()) fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Examples, ReplayEquivalence, ::testing::ValuesIn(Examples()),
                         [](const auto& info) { return info.param; });

}  // namespace
