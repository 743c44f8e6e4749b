// The reason lockgraph analyzes logs together: one program takes lock_a then lock_b, another
// lock_b then lock_a. Each run is clean under `lockgraph run`; their logs together are one
// circular dependency that names both runs.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

namespace {

namespace fs = std::filesystem;

const std::string kLockgraph = LOCKGRAPH_CLI_PATH;
const std::string kAb = CROSS_AB_PATH;
const std::string kBa = CROSS_BA_PATH;

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

class CrossRun : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("lockgraph-cross-" + std::to_string(getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "logs");
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }
  int Record(const std::string& program, const std::string& log) {
    return Shell("'" + kLockgraph + "' run --record '" + (dir_ / "logs" / log).string() +
                 "' -- '" + program + "' >/dev/null 2>'" + (dir_ / (log + ".err")).string() + "'");
  }
  int Analyze(const std::string& args, std::string* out) {
    int rc = Shell("cd '" + dir_.string() + "' && '" + kLockgraph + "' analyze " + args + " >out 2>err");
    *out = ReadFile(dir_ / "out");
    return rc;
  }
  fs::path dir_;
};

TEST_F(CrossRun, EachRunIsCleanAndTogetherTheyAreOneCycleNamingBothRuns) {
  ASSERT_EQ(Record(kAb, "ab.lglog"), 0) << ReadFile(dir_ / "ab.lglog.err");
  ASSERT_EQ(Record(kBa, "ba.lglog"), 0) << ReadFile(dir_ / "ba.lglog.err");
  std::string out;
  EXPECT_EQ(Analyze("logs/ab.lglog", &out), 0) << out;
  EXPECT_EQ(Analyze("logs/ba.lglog", &out), 0) << out;
  EXPECT_EQ(Analyze("logs", &out), 1) << ReadFile(dir_ / "err");
  EXPECT_NE(out.find("WARNING: possible circular locking dependency detected"), std::string::npos)
      << out;
  EXPECT_NE(out.find("(lock_a)"), std::string::npos) << out;
  EXPECT_NE(out.find("(lock_b)"), std::string::npos) << out;
  EXPECT_NE(out.find("analyzer_cross_ab["), std::string::npos) << out;
  EXPECT_NE(out.find("analyzer_cross_ba["), std::string::npos) << out;
  EXPECT_NE(out.find("(logs/ab.lglog)"), std::string::npos) << out;
  EXPECT_NE(out.find("cross_order.c:"), std::string::npos) << out;

  // SARIF places the finding on a line of cross_order.c, by its path in the source tree.
  EXPECT_EQ(Analyze("--format sarif --source-root '" + std::string(LOCKGRAPH_SOURCE_DIR) + "' logs", &out), 1);
  auto j = nlohmann::json::parse(out);
  const auto& loc = j["runs"][0]["results"][0]["locations"][0]["physicalLocation"];
  EXPECT_EQ(loc["artifactLocation"]["uri"], "tests/analyzer/cross_order.c") << loc.dump();
  EXPECT_GT(loc["region"]["startLine"].get<int>(), 0);
}

}  // namespace
