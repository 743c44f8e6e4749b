// A progress bar on stderr for long analyses, drawn only when stderr is a terminal.
#ifndef LOCKGRAPH_ANALYZER_PROGRESS_H_
#define LOCKGRAPH_ANALYZER_PROGRESS_H_

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>

namespace lockgraph::analyzer {

class Progress {
 public:
  // `enabled` false makes every call a no-op (not a terminal, --no-progress, --quiet).
  explicit Progress(bool enabled);
  ~Progress();

  // True when stderr is a terminal and TERM is not "dumb".
  static bool StderrIsTerminal();

  // Starts a phase ("reading", "replaying") over `total_bytes` of input.
  void Begin(const char* phase, std::uint64_t total_bytes);
  // Adds work done; thread-safe, redraws at most ten times a second.
  void Add(std::uint64_t bytes, std::uint64_t events);
  // Erases the bar (before normal output is printed).
  void Clear();

 private:
  void Draw(bool force);
  bool enabled_;
  std::atomic<std::uint64_t> bytes_{0}, events_{0};
  std::uint64_t total_ = 0;
  const char* phase_ = "";
  std::mutex draw_mu_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  bool drawn_ = false;
};

}  // namespace lockgraph::analyzer

#endif  // LOCKGRAPH_ANALYZER_PROGRESS_H_
