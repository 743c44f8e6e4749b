// Engine memory per class, per dependency and per chain: the engine's own estimate
// (stats().bytes) beside the heap it really holds (mallinfo2) and the resident set, measured
// as deltas while classes, then dependencies, then long chains are added. Prints one line per
// step; docs/performance.md quotes it.
//
// Usage: engine_memory [CLASSES] [DEPENDENCIES_PER_CLASS]
#include <malloc.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "lockgraph/engine.h"

namespace {

using lockgraph::AcquireRequest;
using lockgraph::Engine;

struct Sample {
  double heap;  // bytes malloc has handed out
  double rss;   // resident bytes
  double est;   // the engine's estimate
};

Sample Take(const Engine& engine) {
  Sample s;
  s.heap = static_cast<double>(mallinfo2().uordblks);
  long pages = 0, resident = 0;
  std::ifstream statm("/proc/self/statm");
  statm >> pages >> resident;
  s.rss = static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE));
  s.est = static_cast<double>(engine.stats().bytes);
  return s;
}

void Report(const char* what, double count, const Sample& before, const Sample& after) {
  std::printf("%-40s %9.0f  heap %7.1f B each  rss %7.1f B each  engine estimate %7.1f B each\n",
              what, count, (after.heap - before.heap) / count, (after.rss - before.rss) / count,
              (after.est - before.est) / count);
}

}  // namespace

int main(int argc, char** argv) {
  const int classes = argc > 1 ? std::atoi(argv[1]) : 10000;
  const int span = argc > 2 ? std::atoi(argv[2]) : 8;
  Engine engine;
  auto thread = engine.NewThread(1, "memory");
  const lockgraph::LockId base = 0x100000;

  Sample s0 = Take(engine);
  for (int i = 0; i < classes; ++i) {
    const auto c = engine.RegisterClass(1000 + i, "pool[" + std::to_string(i) + "]");
    engine.InitLock(*thread, base + 64ull * i, c);
  }
  Sample s1 = Take(engine);
  Report("class + one instance (name ~9 chars)", classes, s0, s1);

  // Dependencies i -> i+d (d = 1..span): each pair is also a new two-lock chain.
  long deps = 0;
  for (int i = 0; i + span < classes; ++i) {
    for (int d = 1; d <= span; ++d) {
      AcquireRequest a, b;
      a.lock = base + 64ull * i;
      b.lock = base + 64ull * (i + d);
      engine.Acquire(*thread, a);
      engine.Acquire(*thread, b);
      engine.Release(*thread, b.lock);
      engine.Release(*thread, a.lock);
      ++deps;
    }
  }
  Sample s2 = Take(engine);
  Report("dependency (+ its two-lock chain)", static_cast<double>(deps), s1, s2);

  // Chains over known dependencies: i -> i+1 -> i+2 -> i+3 adds 2 chains per i (the two-lock
  // prefix is known) and two dependencies i+1 -> i+3 and i -> i+2... all already present for
  // span >= 3, so this step measures chains alone.
  const auto before_chains = engine.stats().chains;
  for (int i = 0; i + 3 < classes; ++i) {
    AcquireRequest r[4];
    for (int k = 0; k < 4; ++k) {
      r[k].lock = base + 64ull * (i + k);
      engine.Acquire(*thread, r[k]);
    }
    for (int k = 3; k >= 0; --k) engine.Release(*thread, r[k].lock);
  }
  Sample s3 = Take(engine);
  const double chains = static_cast<double>(engine.stats().chains - before_chains);
  Report("chain (over known dependencies)", chains, s2, s3);
  const auto st = engine.stats();
  std::printf("totals: %zu classes, %zu dependencies, %zu chains, %zu instances; engine estimate "
              "%.1f MiB, heap %.1f MiB, rss %.1f MiB\n",
              st.classes, st.dependencies, st.chains, st.instances, s3.est / 1048576.0,
              s3.heap / 1048576.0, s3.rss / 1048576.0);
  return 0;
}
