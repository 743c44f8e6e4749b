// docs/ci.md's ctest recipe, run as written: its CMake block is copied from the page into a
// CMake project with two tests that take lock_a and lock_b in opposite orders (the second in an
// exec'd child), its shell block is run, and `lockgraph analyze` on the log directory must find
// the cycle that no single test shows. If the page changes, this test runs the new text.
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

std::string ReadFile(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The first fenced block of `language` after `heading` in `markdown` ("" if none).
std::string FencedBlockAfter(const std::string& markdown, const std::string& heading,
                             const std::string& language) {
  std::size_t at = markdown.find(heading);
  if (at == std::string::npos) return {};
  const std::string fence = "```" + language + "\n";
  at = markdown.find(fence, at);
  if (at == std::string::npos) return {};
  at += fence.size();
  const std::size_t end = markdown.find("```", at);
  return end == std::string::npos ? std::string() : markdown.substr(at, end - at);
}

TEST(CiRecipe, CtestLauncherRecordsEveryTestAndAnalyzeFindsTheCrossTestCycle) {
  const std::string doc = ReadFile(fs::path(LOCKGRAPH_SOURCE_DIR) / "docs/ci.md");
  const std::string heading = "## ctest: `lockgraph run` as the launcher of every test";
  const std::string cmake_block = FencedBlockAfter(doc, heading, "cmake");
  const std::string sh_block = FencedBlockAfter(doc, heading, "sh");
  ASSERT_NE(cmake_block.find("--record ${CMAKE_BINARY_DIR}/lock-logs/"), std::string::npos)
      << cmake_block;
  ASSERT_NE(sh_block.find("lockgraph analyze build/lock-logs/"), std::string::npos) << sh_block;

  const fs::path dir = fs::temp_directory_path() / ("lockgraph-ctest-recipe-" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  {
    std::ofstream cml(dir / "CMakeLists.txt");
    cml << "cmake_minimum_required(VERSION 3.25)\n"
        << "project(lockgraph_ctest_recipe C)\n"
        << "enable_testing()\n"
        << cmake_block
        << "find_package(Threads REQUIRED)\n"
        << "add_executable(recipe_ab " << CROSS_ORDER_SOURCE << ")\n"
        << "add_executable(recipe_fork_exec_ba " << FORK_EXEC_BA_SOURCE << ")\n"
        << "foreach(t recipe_ab recipe_fork_exec_ba)\n"
        << "  target_compile_options(${t} PRIVATE -g -O0)\n"
        << "  target_link_libraries(${t} PRIVATE Threads::Threads)\n"
        << "endforeach()\n"
        << "add_test(NAME ab COMMAND recipe_ab)\n"
        << "add_test(NAME fork_exec_ba COMMAND recipe_fork_exec_ba)\n";
  }
  // The shell block as a script; `lockgraph` found on PATH as a user's would be. An earlier
  // run's logs are planted to show that the block's `rm -rf` keeps them out.
  fs::create_directories(dir / "build/lock-logs");
  { std::ofstream stale(dir / "build/lock-logs/stale.txt"); stale << "lockgraph-text 1\nlock t1 X\n"; }
  { std::ofstream script(dir / "recipe.sh"); script << "set -x\n" << sh_block; }
  const std::string cli_dir = fs::path(LOCKGRAPH_CLI_PATH).parent_path().string();
  const std::string cmd = "cd '" + dir.string() + "' && PATH='" + cli_dir + "':\"$PATH\" sh recipe.sh >out.txt 2>err.txt";
  const int status = std::system(cmd.c_str());
  ASSERT_TRUE(WIFEXITED(status));
  const std::string out = ReadFile(dir / "out.txt"), err = ReadFile(dir / "err.txt");
  // The script's status is the last command's: analyze found something (1).
  EXPECT_EQ(WEXITSTATUS(status), 1) << out << err;
  EXPECT_NE(out.find("100% tests passed, 0 tests failed out of 2"), std::string::npos) << out << err;
  EXPECT_NE(out.find("WARNING: possible circular locking dependency detected"), std::string::npos)
      << out << err;
  EXPECT_NE(out.find("(lock_a)"), std::string::npos) << out;
  EXPECT_NE(out.find("(lock_b)"), std::string::npos) << out;
  // Each edge names the run it came from: the ab test and the exec'd child of the other test.
  EXPECT_NE(out.find("recipe_ab["), std::string::npos) << out;
  EXPECT_NE(out.find("recipe_fork_exec_ba["), std::string::npos) << out;

  // One log per process, named <program>.<pid>.lglog: recipe_ab, and recipe_fork_exec_ba twice
  // (the test and its exec'd child; the forked child recorded nothing before exec, so no file).
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir / "build/lock-logs")) {
    names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  const std::regex ab(R"(recipe_ab\.[0-9]+\.lglog)"), ba(R"(recipe_fork_exec_ba\.[0-9]+\.lglog)");
  ASSERT_EQ(names.size(), 3u) << ::testing::PrintToString(names);
  EXPECT_TRUE(std::regex_match(names[0], ab)) << names[0];
  EXPECT_TRUE(std::regex_match(names[1], ba)) << names[1];
  EXPECT_TRUE(std::regex_match(names[2], ba)) << names[2];
  if (!HasFailure() && !getenv("KEEP")) fs::remove_all(dir);
}

}  // namespace
