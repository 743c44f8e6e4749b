// `lockgraph run`: runs a program and its children under the liblockgraph shim (LD_PRELOAD),
// passes options through LOCKGRAPH_OPTIONS, and turns findings into --exitcode.
//
// How findings reach the exit status: every process under the shim appends one line per
// distinct finding to a status file that this command creates and names in the options
// (status_file=...). The line is written when the finding is reported, so it survives _exit,
// abort and kill -9 of the program, and it counts the findings of forked and exec'd children.
#include "run_command.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

namespace lockgraph::cli {
namespace {

namespace fs = std::filesystem;

volatile sig_atomic_t g_child_pid = 0;

void ForwardSignal(int sig) {
  if (g_child_pid > 0) kill(g_child_pid, sig);
}

// liblockgraph.so next to this binary: the build tree (build/analyzer/lockgraph ->
// build/runtime/liblockgraph.so) or an install prefix (bin/lockgraph -> lib/liblockgraph.so).
std::string FindRuntimeLibrary() {
  if (const char* env = getenv("LOCKGRAPH_RUNTIME_LIB"); env != nullptr && *env != '\0') {
    return env;
  }
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  const fs::path dir = exe.parent_path();
  const fs::path candidates[] = {
      dir / "../runtime/liblockgraph.so",
      dir / "../lib/liblockgraph.so",
      dir / "../lib/x86_64-linux-gnu/liblockgraph.so",
      dir / "../lib64/liblockgraph.so",
      dir / "liblockgraph.so",
  };
  for (const fs::path& p : candidates) {
    if (fs::exists(p, ec)) return fs::weakly_canonical(p, ec).string();
  }
  return {};
}

// Option values travel in LOCKGRAPH_OPTIONS, where ':', ',' and blanks separate pairs.
bool SafeOptionValue(const std::string& v) {
  return v.find_first_of(":, \t\n") == std::string::npos;
}

int CountLines(const std::string& path) {
  std::ifstream in(path);
  int n = 0;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) ++n;
  }
  return n;
}

}  // namespace

int RunCommand(int argc, char** argv) {
  CLI::App app{"Run PROG (and the processes it starts) under the lockgraph validator.\n"
               "Options are also read from LOCKGRAPH_OPTIONS (name=value:name=value)."};
  app.name("lockgraph run");
  std::string log_file, record;
  int exitcode = 0;
  int verbosity = -1;
  int max_held_locks = 0;
  bool halt = false, strict = false, no_stacks = false;
  std::vector<std::string> command;
  app.add_option("--log-file", log_file, "write reports to FILE (appended) instead of stderr");
  app.add_option("--exitcode", exitcode, "exit with N when something was found")
      ->check(CLI::Range(0, 255));
  app.add_flag("--halt-on-error", halt, "exit right after the first report");
  app.add_flag("--strict", strict,
               "lockdep's strict mode: report any unannotated same-class nesting");
  app.add_option("--record", record,
                 "write a lock log to FILE (children: FILE.<pid>), or with DIR/ one log per "
                 "process, DIR/<program>.<pid>.lglog; for `lockgraph analyze`");
  app.add_option("--verbosity,-v", verbosity, "lockgraph's own diagnostics: 0 errors .. 4 trace")
      ->check(CLI::Range(0, 4));
  app.add_flag("--no-stacks", no_stacks, "do not capture stacks (call sites only)");
  app.add_option("--max-held-locks", max_held_locks,
                 "locks one thread may hold before lockgraph turns itself off (default 4096)")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("command", command, "-- PROG ARGS...")->required();
  app.footer(
      "Examples:\n"
      "  lockgraph run -- ./my_tests\n"
      "  lockgraph run --exitcode 66 --record run.lglog -- ./server --port 8080\n"
      "  lockgraph run --record lock-logs/ -- ./test_transfer   # ctest launcher\n"
      "  LOCKGRAPH_OPTIONS=strict=1 lockgraph run -- make check");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  const std::string lib = FindRuntimeLibrary();
  if (lib.empty()) {
    std::fprintf(stderr,
                 "lockgraph run: cannot find liblockgraph.so next to this program; set "
                 "LOCKGRAPH_RUNTIME_LIB to its path\n");
    return 127;
  }
  for (const auto* v : {&log_file, &record}) {
    if (!SafeOptionValue(*v)) {
      std::fprintf(stderr, "lockgraph run: the path '%s' must not contain ':', ',' or blanks\n",
                   v->c_str());
      return 2;
    }
  }
  if (!log_file.empty()) log_file = fs::absolute(log_file).string();
  if (!record.empty()) {
    // DIR/ (or an existing directory): one log per process in it. Created here so that a
    // launcher command line works on a clean build tree.
    const bool dir = record.back() == '/';
    record = fs::absolute(record).string();
    if (dir) {
      std::error_code ec;
      fs::create_directories(record, ec);
      if (ec) {
        std::fprintf(stderr, "lockgraph run: cannot create the record directory '%s': %s\n",
                     record.c_str(), ec.message().c_str());
        return 2;
      }
      if (record.back() != '/') record += '/';
    }
  }

  char status_path[] = "/tmp/lockgraph-status-XXXXXX";
  const int status_fd = mkstemp(status_path);
  if (status_fd < 0) {
    std::fprintf(stderr, "lockgraph run: cannot create a status file in /tmp: %s\n",
                 std::strerror(errno));
    return 127;
  }
  close(status_fd);

  std::string options;
  if (const char* env = getenv("LOCKGRAPH_OPTIONS"); env != nullptr && *env != '\0') {
    options = env;
    // exitcode=N given there (and not on the command line) decides this command's exit too.
    if (exitcode == 0) {
      for (std::size_t at = options.find("exitcode="); at != std::string::npos;
           at = options.find("exitcode=", at + 1)) {
        if (at == 0 || options.find_first_of(":, \t", at - 1) == at - 1) {
          exitcode = std::atoi(options.c_str() + at + 9);
        }
      }
    }
  }
  auto add = [&options](const std::string& pair) {
    if (!options.empty()) options += ':';
    options += pair;
  };
  if (!log_file.empty()) add("log_file=" + log_file);
  if (exitcode != 0) add("exitcode=" + std::to_string(exitcode));
  if (halt) add("halt_on_error=1");
  if (strict) add("strict=1");
  if (!record.empty()) add("record=" + record);
  if (verbosity >= 0) add("verbosity=" + std::to_string(verbosity));
  if (no_stacks) add("stacks=0");
  if (max_held_locks > 0) add("max_held_locks=" + std::to_string(max_held_locks));
  add(std::string("status_file=") + status_path);

  std::string preload = lib;
  if (const char* env = getenv("LD_PRELOAD"); env != nullptr && *env != '\0') {
    preload += ':';
    preload += env;
  }

  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) {
    std::fprintf(stderr, "lockgraph run: fork failed: %s\n", std::strerror(errno));
    unlink(status_path);
    return 127;
  }
  if (pid == 0) {
    setenv("LD_PRELOAD", preload.c_str(), 1);
    setenv("LOCKGRAPH_OPTIONS", options.c_str(), 1);
    setenv("LOCKGRAPH_ROOT_PID", std::to_string(getpid()).c_str(), 1);
    std::vector<char*> args;
    for (std::string& s : command) args.push_back(s.data());
    args.push_back(nullptr);
    execvp(args[0], args.data());
    std::fprintf(stderr, "lockgraph run: cannot run '%s': %s\n", args[0], std::strerror(errno));
    _exit(127);
  }
  g_child_pid = pid;
  struct sigaction forward {};
  forward.sa_handler = &ForwardSignal;
  sigemptyset(&forward.sa_mask);
  sigaction(SIGTERM, &forward, nullptr);
  sigaction(SIGHUP, &forward, nullptr);
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  sigaction(SIGINT, &ignore, nullptr);  // the terminal sends it to the child too
  sigaction(SIGQUIT, &ignore, nullptr);

  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      std::fprintf(stderr, "lockgraph run: waitpid failed: %s\n", std::strerror(errno));
      unlink(status_path);
      return 127;
    }
  }
  const int findings = CountLines(status_path);
  unlink(status_path);

  int code = 0;
  if (WIFEXITED(status)) code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status)) code = 128 + WTERMSIG(status);
  if (findings > 0 && exitcode != 0) return exitcode;
  return code;
}

}  // namespace lockgraph::cli
