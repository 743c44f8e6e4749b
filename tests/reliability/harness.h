// Runs programs natively and under `lockgraph run` with a hard time limit, capturing what a user
// sees: exit status, stdout, stderr (where reports go by default) and peak RSS.
#ifndef LOCKGRAPH_TESTS_RELIABILITY_HARNESS_H_
#define LOCKGRAPH_TESTS_RELIABILITY_HARNESS_H_

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace lockgraph::reliability {

inline const char* kCli = LOCKGRAPH_CLI_PATH;
inline const char* kProgram = LOCKGRAPH_FAULT_PROGRAM;

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// A fresh scratch directory, removed with its contents at scope exit.
class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "lg-reliability-XXXXXX").string();
    path_ = mkdtemp(tmpl.data());
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

struct Result {
  int exit_code = -1;  // 128 + signal when killed by a signal, as a shell reports it
  bool timed_out = false;
  std::string out, err;
  long max_rss_kb = 0;
};

// A started process (in its own process group, so a hang is killed with all its children).
class Child {
 public:
  explicit Child(const std::vector<std::string>& argv, mode_t umask_value = 022) {
    out_path_ = dir_ / "stdout";
    err_path_ = dir_ / "stderr";
    pid_ = fork();
    if (pid_ == 0) {
      setpgid(0, 0);
      umask(umask_value);
      const int out = open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      const int err = open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
      dup2(out, 1);
      dup2(err, 2);
      std::vector<char*> args;
      for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
      args.push_back(nullptr);
      execv(args[0], args.data());
      _exit(127);
    }
    setpgid(pid_, pid_);
  }
  pid_t pid() const { return pid_; }

  // Waits at most `timeout_s` seconds; a process still running then is killed and reported
  // as timed out (a hang is a failure, never a stuck ctest).
  Result Wait(int timeout_s) {
    Result r;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    int status = 0;
    rusage usage{};
    for (;;) {
      const pid_t w = wait4(pid_, &status, WNOHANG, &usage);
      if (w == pid_) break;
      if (std::chrono::steady_clock::now() > deadline) {
        r.timed_out = true;
        killpg(pid_, SIGKILL);
        wait4(pid_, &status, 0, &usage);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    killpg(pid_, SIGKILL);  // stray children (a forked server) go too
    if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status)) r.exit_code = 128 + WTERMSIG(status);
    r.out = ReadFile(out_path_);
    r.err = ReadFile(err_path_);
    r.max_rss_kb = usage.ru_maxrss;
    return r;
  }

 private:
  ScratchDir dir_;
  std::string out_path_, err_path_;
  pid_t pid_ = -1;
};

inline Result RunProgram(const std::vector<std::string>& argv, int timeout_s = 60) {
  return Child(argv).Wait(timeout_s);
}

// The fault program natively, and under `lockgraph run [options]`.
inline std::vector<std::string> Native(const std::vector<std::string>& args) {
  std::vector<std::string> v{kProgram};
  v.insert(v.end(), args.begin(), args.end());
  return v;
}
inline std::vector<std::string> UnderLockgraph(const std::vector<std::string>& args,
                                               const std::vector<std::string>& options = {}) {
  std::vector<std::string> v{kCli, "run"};
  v.insert(v.end(), options.begin(), options.end());
  v.push_back("--");
  v.push_back(kProgram);
  v.insert(v.end(), args.begin(), args.end());
  return v;
}

inline int Count(const std::string& text, const std::string& what) {
  int n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Lines of `text` that contain `what`.
inline std::vector<std::string> LinesWith(const std::string& text, const std::string& what) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.find(what) != std::string::npos) lines.push_back(line);
  }
  return lines;
}

}  // namespace lockgraph::reliability

#endif  // LOCKGRAPH_TESTS_RELIABILITY_HARNESS_H_
