// Progress bar: one line on stderr, rewritten in place with '\r', erased before results print.
#include "progress.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace lockgraph::analyzer {

Progress::Progress(bool enabled) : enabled_(enabled) {}

Progress::~Progress() { Clear(); }

bool Progress::StderrIsTerminal() {
  if (!isatty(STDERR_FILENO)) return false;
  const char* term = std::getenv("TERM");
  return !(term && std::strcmp(term, "dumb") == 0);
}

void Progress::Begin(const char* phase, std::uint64_t total_bytes) {
  if (!enabled_) return;
  std::lock_guard<std::mutex> lock(draw_mu_);
  phase_ = phase;
  total_ = total_bytes;
  bytes_ = 0;
  events_ = 0;
  start_ = std::chrono::steady_clock::now();
  last_draw_ = {};
}

void Progress::Add(std::uint64_t bytes, std::uint64_t events) {
  if (!enabled_) return;
  bytes_.fetch_add(bytes, std::memory_order_relaxed);
  events_.fetch_add(events, std::memory_order_relaxed);
  Draw(false);
}

void Progress::Draw(bool force) {
  std::unique_lock<std::mutex> lock(draw_mu_, std::try_to_lock);
  if (!lock.owns_lock()) return;
  auto now = std::chrono::steady_clock::now();
  if (!force && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  const std::uint64_t done = bytes_.load(std::memory_order_relaxed);
  const std::uint64_t events = events_.load(std::memory_order_relaxed);
  const double frac = total_ ? std::min(1.0, static_cast<double>(done) / total_) : 0.0;
  const double secs = std::chrono::duration<double>(now - start_).count();
  constexpr int kWidth = 30;
  char bar[kWidth + 1];
  int filled = static_cast<int>(frac * kWidth);
  for (int i = 0; i < kWidth; ++i) bar[i] = i < filled ? '#' : '.';
  bar[kWidth] = 0;
  std::fprintf(stderr, "\r%-9s [%s] %3d%%  %7.1f MiB  %7.2fM events/s ", phase_, bar,
               static_cast<int>(frac * 100), done / 1048576.0,
               secs > 0 ? events / secs / 1e6 : 0.0);
  std::fflush(stderr);
  drawn_ = true;
}

void Progress::Clear() {
  if (!enabled_) return;
  std::lock_guard<std::mutex> lock(draw_mu_);
  if (!drawn_) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
  drawn_ = false;
}

}  // namespace lockgraph::analyzer
