// Analyzer throughput: encoding and decoding lock logs, and analyze (load + replay) end to end.
// Counters: events/s (items_per_second), bytes/event, and the engine's chain-cache hit rate.
// Figures go to docs/analyzer.md ("Measurements"); nothing here passes or fails.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "analysis.h"
#include "lockgraph/log_format.h"

namespace {

using namespace lockgraph;
using namespace lockgraph::logfmt;

// A synthetic run: `threads` threads each taking nested locks along a few fixed orders that are
// consistent with one global order (no findings), like a test suite's steady state.
struct Synthetic {
  std::vector<Event> events;
  std::vector<std::string> strings;  // backing store for names
};

// `burst`: critical sections a thread runs before the next thread is picked at random (1: every
// section; larger values are time slices of threads sharing few cores).
Synthetic MakeRun(std::size_t n_events, int threads, int classes, int depth, std::uint64_t seed,
                  int burst = 1) {
  Synthetic s;
  s.strings.reserve(static_cast<std::size_t>(classes) * 2 + 64);
  std::mt19937_64 rng(seed);
  const LockId base = 0x7f3a12340000ull;
  const std::uint64_t text = 0x555555554000ull;
  for (int c = 0; c < classes; ++c) {
    s.strings.push_back("sym:lock_" + std::to_string(c));
    s.strings.push_back("lock_" + std::to_string(c));
  }
  for (int c = 0; c < classes; ++c) {
    Event e;
    e.type = RecordType::kClassDef;
    e.class_id = static_cast<LogClassId>(c + 1);
    e.text = s.strings[2 * c];
    e.text2 = s.strings[2 * c + 1];
    s.events.push_back(e);
  }
  for (int t = 0; t < threads; ++t) {
    Event e;
    e.type = RecordType::kThreadStart;
    e.thread = 1000 + t;
    s.events.push_back(e);
  }
  for (int c = 0; c < classes; ++c) {
    Event e;
    e.type = RecordType::kLockInit;
    e.thread = 1000;
    e.lock = base + 64 * c;
    e.class_id = static_cast<LogClassId>(c + 1);
    e.ip = text + 0x100 + c;
    s.events.push_back(e);
  }
  // 16 fixed orders (ascending class numbers), chosen at random per critical section.
  std::vector<std::vector<int>> orders(16);
  for (auto& o : orders) {
    std::vector<int> pick;
    for (int d = 0; d < depth; ++d) pick.push_back(static_cast<int>(rng() % classes));
    std::sort(pick.begin(), pick.end());
    pick.erase(std::unique(pick.begin(), pick.end()), pick.end());
    o = pick;
  }
  ThreadKey t = 1000;
  for (std::uint64_t section = 0; s.events.size() < n_events; ++section) {
    if (section % burst == 0) t = 1000 + rng() % threads;
    const auto& o = orders[rng() % orders.size()];
    for (int c : o) {
      Event e;
      e.type = RecordType::kAcquire;
      e.thread = t;
      e.lock = base + 64 * c;
      e.ip = text + 0x2000 + 16 * c;
      s.events.push_back(e);
    }
    for (auto it = o.rbegin(); it != o.rend(); ++it) {
      Event e;
      e.type = RecordType::kRelease;
      e.thread = t;
      e.lock = base + 64 * *it;
      e.ip = text + 0x3000 + 16 * *it;
      s.events.push_back(e);
    }
  }
  return s;
}

std::string Encode(const std::vector<Event>& events, bool with_seq) {
  FileHeader h;
  h.program = "./synthetic";
  h.pid = 42;
  std::string file;
  EncodeFileHeader(h, &file);
  std::vector<std::uint8_t> buf(64 * 1024);
  BlockEncoder enc(buf.data(), buf.size(), with_seq);
  std::uint32_t n = 0;
  std::uint64_t seq = 0;
  for (Event e : events) {
    e.seq = ++seq;
    if (!enc.Put(e)) {
      auto b = enc.Finish(n++);
      file.append(reinterpret_cast<const char*>(b.data()), b.size());
      enc.Reset();
      enc.Put(e);
    }
  }
  auto b = enc.Finish(n++);
  file.append(reinterpret_cast<const char*>(b.data()), b.size());
  return file;
}

// As the recorder writes a multi-threaded program: each thread's records in a buffer of its own
// written out as a block when full (the definitions written first), the threads' last partial
// blocks at the end, then the end-of-run record. The threads' blocks interleave in the file, so
// `lockgraph analyze` merges them by stamp. Every event is stamped from one counter, as the
// recorder stamps its full-path events (and stamped every event before band stamps): the
// finest interleave, the merge's worst case; fast-path events of one band stamp per thread
// (docs/log-format.md "Ordering") and interleave more coarsely.
std::string EncodePerThread(const std::vector<Event>& events) {
  constexpr std::size_t kThreadBlock = 32 * 1024, kDefsBlock = 64 * 1024;  // as the recorder's
  FileHeader h;
  h.program = "./synthetic-mt";
  h.pid = 43;
  std::string file;
  EncodeFileHeader(h, &file);
  std::uint32_t n = 0;
  std::uint64_t seq = 0;
  std::vector<std::uint8_t> defs_buf(kDefsBlock);
  BlockEncoder defs(defs_buf.data(), defs_buf.size(), true);
  struct Buffer {
    std::vector<std::uint8_t> data = std::vector<std::uint8_t>(kThreadBlock);
    BlockEncoder enc{data.data(), data.size(), true};
  };
  std::map<ThreadKey, std::unique_ptr<Buffer>> buffers;
  auto write = [&](BlockEncoder& enc) {
    if (enc.empty()) return;
    auto b = enc.Finish(n++);
    file.append(reinterpret_cast<const char*>(b.data()), b.size());
    enc.Reset();
  };
  for (Event e : events) {
    e.seq = ++seq;
    if (IsDefinition(e.type) || !IsThreadBound(e.type)) {
      if (!defs.Put(e)) {
        write(defs);
        defs.Put(e);
      }
      continue;
    }
    auto& b = buffers[e.thread];
    if (!b) b = std::make_unique<Buffer>();
    if (!b->enc.Put(e)) {
      write(defs);
      write(b->enc);
      b->enc.Put(e);
    }
  }
  write(defs);
  for (auto& [t, b] : buffers) write(b->enc);
  Event end;
  end.type = RecordType::kRunEnd;
  end.seq = ++seq;
  defs.Put(end);
  write(defs);
  return file;
}

void BM_EncodeBlocks(benchmark::State& state) {
  Synthetic run = MakeRun(1 << 20, 8, 64, 3, 1);
  std::vector<std::uint8_t> buf(64 * 1024);
  std::size_t bytes = 0;
  for (auto _ : state) {
    BlockEncoder enc(buf.data(), buf.size(), state.range(0) != 0);
    bytes = 0;
    for (const Event& e : run.events) {
      if (!enc.Put(e)) {
        bytes += enc.Finish(0).size();
        enc.Reset();
        enc.Put(e);
      }
    }
    bytes += enc.Finish(0).size();
    benchmark::DoNotOptimize(bytes);
  }
  state.SetItemsProcessed(state.iterations() * run.events.size());
  state.counters["bytes/event"] = static_cast<double>(bytes) / run.events.size();
}
BENCHMARK(BM_EncodeBlocks)->Arg(0)->Arg(1)->ArgName("with_seq")->Unit(benchmark::kMillisecond);

void BM_DecodeBlocks(benchmark::State& state) {
  Synthetic run = MakeRun(1 << 20, 8, 64, 3, 2);
  std::string file = Encode(run.events, state.range(0) != 0);
  std::span<const std::uint8_t> bytes(reinterpret_cast<const std::uint8_t*>(file.data()), file.size());
  for (auto _ : state) {
    BinaryScanner scan(bytes);
    FileHeader h;
    DecodeError err;
    scan.ReadHeader(&h, &err);
    BlockView block;
    Event e;
    std::size_t n = 0;
    while (scan.NextBlock(&block, &err) == BinaryScanner::Next::kBlock) {
      BlockDecoder dec(block);
      while (dec.Next(&e, &err)) ++n;
    }
    benchmark::DoNotOptimize(n);
  }
  state.SetItemsProcessed(state.iterations() * run.events.size());
  state.SetBytesProcessed(state.iterations() * file.size());
  state.counters["bytes/event"] = static_cast<double>(file.size()) / run.events.size();
}
BENCHMARK(BM_DecodeBlocks)->Arg(0)->Arg(1)->ArgName("with_seq")->Unit(benchmark::kMillisecond);

void BM_DecodeText(benchmark::State& state) {
  Synthetic run = MakeRun(1 << 18, 8, 64, 3, 3);
  std::string text;
  for (const Event& e : run.events) EncodeTextLine(e, &text);
  for (auto _ : state) {
    TextDecoder dec;
    std::vector<Event> out;
    DecodeError err;
    dec.DecodeLine("lockgraph-text 1", 1, &out, &err);
    std::size_t pos = 0, line = 1;
    while (pos < text.size()) {
      std::size_t nl = text.find('\n', pos);
      out.clear();
      dec.DecodeLine(std::string_view(text).substr(pos, nl - pos), ++line, &out, &err);
      pos = nl + 1;
    }
  }
  state.SetItemsProcessed(state.iterations() * run.events.size());
  state.counters["bytes/event"] = static_cast<double>(text.size()) / run.events.size();
}
BENCHMARK(BM_DecodeText)->Unit(benchmark::kMillisecond);

// The whole `lockgraph analyze` pipeline on `logs` files of `events` events each; per_thread:
// the logs are written as the recorder writes a multi-threaded program (merged by stamp).
void BM_Analyze(benchmark::State& state) {
  const int logs = static_cast<int>(state.range(0));
  const unsigned jobs = static_cast<unsigned>(state.range(1));
  const std::size_t per_log = 1 << 20;
  auto dir = std::filesystem::temp_directory_path() /
             ("lockgraph-bench-" + std::to_string(getpid()) + "-" + std::to_string(logs));
  std::filesystem::create_directories(dir);
  std::uint64_t total_bytes = 0;
  for (int i = 0; i < logs; ++i) {
    Synthetic run = MakeRun(per_log, 8, 64, 3, 10 + i);
    std::string file = state.range(2) ? EncodePerThread(run.events) : Encode(run.events, false);
    total_bytes += file.size();
    std::ofstream(dir / ("run" + std::to_string(i) + ".lglog"), std::ios::binary) << file;
  }
  double hits = 0, events = 0, load = 0, replay = 0;
  for (auto _ : state) {
    analyzer::AnalyzeOptions o;
    o.inputs = {dir.string()};
    o.jobs = jobs;
    analyzer::Analysis a;
    analyzer::Analyze(o, &a);
    auto st = a.engine->stats();
    hits = static_cast<double>(st.chain_cache_hits);
    events = static_cast<double>(a.events);
    load += a.load_seconds;
    replay += a.replay_seconds;
    if (!a.findings.empty()) state.SkipWithError("synthetic logs must be clean");
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * events));
  state.counters["bytes/event"] = total_bytes / events;
  state.counters["cache_hit_rate"] = hits / events;
  state.counters["load_s"] = load / state.iterations();
  state.counters["replay_s"] = replay / state.iterations();
  std::filesystem::remove_all(dir);
}
BENCHMARK(BM_Analyze)
    ->Args({1, 1, 0})
    ->Args({4, 1, 0})
    ->Args({4, 2, 0})
    ->Args({1, 1, 1})
    ->ArgNames({"logs", "jobs", "per_thread"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

// `analyzer_bench --write-log FILE [EVENTS] [--per-thread [BURST]] [--threads N]` writes the
// synthetic suite's log (N threads, default 8, 64 classes, nesting depth up to 3, no findings;
// default 20,000,000 events)
// for timing `lockgraph analyze` by hand: by default in one stream of blocks in file order
// without stamps; with --per-thread as the recorder writes a multi-threaded program (stamped,
// per-thread blocks interleaving in the file), the thread changing every BURST critical
// sections (default 1). Otherwise the Google Benchmark suite runs.
int main(int argc, char** argv) {
  if (argc >= 3 && std::string(argv[1]) == "--write-log") {
    std::size_t n = 20000000;
    bool per_thread = false;
    int burst = 1, threads = 8;
    for (int i = 3; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg == "--per-thread") {
        per_thread = true;
        if (i + 1 < argc && argv[i + 1][0] != '-') burst = std::max(1, std::stoi(argv[++i]));
      } else if (arg == "--threads" && i + 1 < argc) {
        threads = std::max(1, std::stoi(argv[++i]));
      } else {
        n = std::stoull(arg);
      }
    }
    Synthetic run = MakeRun(n, threads, 64, 3, 99, burst);
    std::string file = per_thread ? EncodePerThread(run.events) : Encode(run.events, false);
    std::ofstream(argv[2], std::ios::binary) << file;
    std::printf("%s: %zu events, %zu bytes (%.2f bytes/event)\n", argv[2], run.events.size(),
                file.size(), static_cast<double>(file.size()) / run.events.size());
    return 0;
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
