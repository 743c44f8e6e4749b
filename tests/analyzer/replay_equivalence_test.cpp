// Offline == live: every example run under `lockgraph run --record` gives, when its log is
// analyzed, the findings (and the report text) the live run printed.
#include <iostream>
#include <map>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

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

// Report text with the differences that are not about findings taken out: blank separator
// lines, and two ways the recorder's frame texts still differ from the live symbolizer's
// (offsets "+0x40" and the libc start-up frames below main, which the live stacks leave out).
// The runtime helper has been asked (/tmp/team/requests.md) to record frames exactly as printed.
std::string Normalize(const std::string& text) {
  static const std::regex offset(R"(\+0x[0-9a-f]+)");
  static const std::regex startup(R"(^\s*(__libc_start_call_main|__libc_start_main\S*|_start)( .*)?$)");
  std::istringstream in(text);
  std::string line, out;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (std::regex_match(line, startup)) continue;
    out += std::regex_replace(line, offset, "") + "\n";
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
  // Two known recorder gaps (open runtime bugs, see docs/analyzer.md): the findings and headlines
  // match, but the stack text differs. Compare the full text everywhere else.
  static const std::map<std::string, std::string> kKnownRecorderGaps = {
      {"signal_logger", "the recorded stack keeps the signal trampoline frame"},
      {"zswap_memcg_offline", "lock destroys are recorded without their stack"},
  };
  if (auto gap = kKnownRecorderGaps.find(example); gap != kKnownRecorderGaps.end()) {
    std::cout << "[ NOTE ] full-text comparison skipped for " << example << ": " << gap->second
              << "\n";
  } else {
    EXPECT_EQ(Normalize(off_text), Normalize(live_text));
  }
  // A fixed example is silent, a buggy one is not: the comparison above is not empty == empty.
  const bool fixed = example.size() > 6 && example.compare(example.size() - 6, 6, "_fixed") == 0;
  if (fixed) EXPECT_TRUE(live_headlines.empty()) << live_text;
  if (!HasFailure()) fs::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Examples, ReplayEquivalence, ::testing::ValuesIn(Examples()),
                         [](const auto& info) { return info.param; });

}  // namespace
