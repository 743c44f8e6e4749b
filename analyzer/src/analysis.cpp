// The analysis driver: load in parallel, replay in input order, classify findings.
#include "analysis.h"

#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "block_decode.h"
#include "progress.h"

namespace lockgraph::analyzer {

namespace {

class CollectingSink : public FindingSink {
 public:
  void OnFinding(const Finding& finding) override { findings.push_back(finding); }
  void OnTurnedOff(std::string_view why) override { turned_off = std::string(why); }
  std::vector<Finding> findings;
  std::string turned_off;
};

}  // namespace

std::size_t Analysis::CountNew() const {
  std::size_t n = 0;
  for (const auto& f : findings) n += f.status == FindingStatus::kNew;
  return n;
}

int Analysis::ExitCode() const {
  if (CountNew() > 0) return 1;
  if (input_error || !turned_off.empty()) return 2;
  return 0;
}

namespace {

// --- The pipeline: decoder threads fill blocks, the calling thread replays them ----------------

// Decoded blocks are recycled: a block's record array is large (hundreds of KiB), and fresh
// allocations of that size would be fresh mappings, page-faulted in for every block.
class BlockPool {
 public:
  std::unique_ptr<DecodedBlock> Get() {
    std::lock_guard<std::mutex> g(mu_);
    if (free_.empty()) return std::make_unique<DecodedBlock>();
    auto b = std::move(free_.back());
    free_.pop_back();
    return b;
  }
  void Put(std::unique_ptr<DecodedBlock> b) {
    std::lock_guard<std::mutex> g(mu_);
    free_.push_back(std::move(b));
  }

 private:
  std::mutex mu_;
  std::vector<std::unique_ptr<DecodedBlock>> free_;
};

std::int64_t ThreadCpuNs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return std::int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

// One log's hand-over from its decoder thread to the replay thread.
class LogChannel {
 public:
  // Blocks decoded ahead of the replay, per log: enough to keep both sides busy, few enough to
  // stay in the caches.
  static constexpr std::size_t kDepth = 4;

  enum class Mode {
    kWhole,   // loaded whole by the first pass (text logs, unreadable files): replay in two passes
    kBlocks,  // blocks in file order, each replayed whole
    kMerged,  // a stamped log's blocks in the order of their first stamp, merged by stamp
  };

  // Decoder: how the log's blocks will come.
  void Start(Mode mode) {
    std::lock_guard<std::mutex> g(mu_);
    started_ = true;
    mode_ = mode;
    cv_.notify_all();
  }
  void Push(std::unique_ptr<DecodedBlock> b) {
    std::unique_lock<std::mutex> g(mu_);
    cv_.wait(g, [this] { return queue_.size() < kDepth; });
    queue_.push_back(std::move(b));
    cv_.notify_all();
  }
  void Finish() {
    std::lock_guard<std::mutex> g(mu_);
    started_ = finished_ = true;
    cv_.notify_all();
  }
  // Replay side: waits until the decoder has decided.
  Mode WaitStarted() {
    std::unique_lock<std::mutex> g(mu_);
    cv_.wait(g, [this] { return started_; });
    return mode_;
  }
  // The next block, or null once the log is finished.
  std::unique_ptr<DecodedBlock> Pop() {
    std::unique_lock<std::mutex> g(mu_);
    cv_.wait(g, [this] { return !queue_.empty() || finished_; });
    if (queue_.empty()) return nullptr;
    auto b = std::move(queue_.front());
    queue_.pop_front();
    cv_.notify_all();
    return b;
  }
  // Decoder: the streamed replay cannot give the two-pass result (blocks' stamps out of file
  // order, or a damaged block in the merged order); the analysis must be redone.
  void SetNeedsTwoPass() { needs_two_pass_.store(true, std::memory_order_relaxed); }
  bool needs_two_pass() const { return needs_two_pass_.load(std::memory_order_relaxed); }
  void WaitFinished() {
    std::unique_lock<std::mutex> g(mu_);
    cv_.wait(g, [this] { return finished_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<DecodedBlock>> queue_;
  bool started_ = false, finished_ = false;
  Mode mode_ = Mode::kWhole;
  std::atomic<bool> needs_two_pass_{false};
};

// Where each table entry of a merged log came from (file position of its block): the merged
// order decodes blocks out of file order, and the two-pass tables keep the first stack and call
// site definition of the file and the last lock name.
struct TableOrigins {
  std::unordered_map<StackId, std::uint32_t> stacks;
  std::unordered_map<std::uint64_t, std::uint32_t> sites;
  std::unordered_map<LockId, std::uint32_t> lock_names;
};

void MergeTables(DecodedBlock* b, LoadedLog* log, TableOrigins* origins) {
  const std::uint32_t here = b->file_index;
  for (auto& [id, frames] : b->stacks) {
    auto [it, fresh] = origins->stacks.try_emplace(id, here);
    if (!fresh && here >= it->second) continue;
    it->second = here;
    log->stacks.insert_or_assign(id, std::move(frames));
  }
  for (auto& [ip, text] : b->sites) {
    auto [it, fresh] = origins->sites.try_emplace(ip, here);
    if (!fresh && here >= it->second) continue;
    it->second = here;
    log->sites.insert_or_assign(ip, std::move(text));
  }
  for (auto& [lock, name] : b->lock_names) {
    auto [it, fresh] = origins->lock_names.try_emplace(lock, here);
    if (!fresh && here < it->second) continue;
    it->second = here;
    log->lock_names.insert_or_assign(lock, std::move(name));
  }
}

// A stamped log whose blocks IndexStampedBlocks found: decoded in merged order (blocks of
// definitions only first, then by first stamp, ties by file position), with the checks and
// counters of LoadLog's first pass. Any damage found on the way (a CRC mismatch, a bad record)
// marks the channel for the two-pass path, which reports it as the file-order reader does.
void StreamMergedLog(LoadedLog* log, std::uint16_t version,
                     const std::vector<IndexedBlock>& index, LogChannel* ch, BlockPool* pool,
                     Progress* progress) {
  const auto bytes = log->file.bytes();
  std::vector<std::uint32_t> order(index.size());
  for (std::uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&index](std::uint32_t a, std::uint32_t b) {
    const IndexedBlock& x = index[a];
    const IndexedBlock& y = index[b];
    if (x.has_events != y.has_events) return !x.has_events;
    return x.has_events && x.first_seq < y.first_seq;
  });
  ch->Start(LogChannel::Mode::kMerged);
  std::vector<logfmt::BlockView> views(index.size());
  TableOrigins origins;
  LockSlots slots;
  logfmt::DecodeError err;
  for (std::uint32_t i : order) {
    if (!CheckIndexedBlock(bytes, index[i], version, &views[i])) {
      ch->SetNeedsTwoPass();
      ch->Finish();
      return;
    }
    auto b = pool->Get();
    DecodeBlock(views[i], b.get(), &err);
    if (!err.message.empty() || !b->has_seq || (b->events > 0) != index[i].has_events ||
        (b->events > 0 && b->first_seq != index[i].first_seq)) {
      pool->Put(std::move(b));
      ch->SetNeedsTwoPass();
      ch->Finish();
      return;
    }
    AssignLockSlots(b.get(), &slots);
    b->file_index = i;
    log->records += b->records_seen;
    log->events += b->events;
    log->complete = log->complete || b->end;
    MergeTables(b.get(), log, &origins);
    if (progress) progress->Add(b->bytes, 0);
    ch->Push(std::move(b));
  }
  std::vector<std::uint32_t> numbers;
  numbers.reserve(views.size());
  for (const auto& v : views) numbers.push_back(v.number);
  log->blocks = std::move(views);
  FinishBinaryBlockChecks(log, /*any_seq=*/true, /*any_plain=*/false, &numbers);
  log->usable = true;
  ch->Finish();
}

// A binary log through the pipeline: the same checks and messages as the first pass of
// LoadLog, each block decoded once. A stamped log that frames cleanly is merged by stamp
// (StreamMergedLog); otherwise blocks come in file order, and if a damaged stamped log's blocks
// turn out not to follow each other in stamp order, the channel is marked and the analysis is
// redone in two passes.
void StreamBinaryLog(LoadedLog* log, LogChannel* ch, BlockPool* pool, Progress* progress) {
  auto bytes = log->file.bytes();
  logfmt::BinaryScanner scan(bytes);
  logfmt::DecodeError err;
  auto header = scan.ReadHeader(&log->header, &err);
  if (header != logfmt::BinaryScanner::HeaderResult::kOk) {
    AddLogError(log, {log->path, err.offset, 0, true, err.message});
    if (header == logfmt::BinaryScanner::HeaderResult::kFatal) {
      log->fatal = true;
      ch->Finish();
      return;
    }
  }
  {
    std::vector<IndexedBlock> index;
    if (IndexStampedBlocks(bytes, scan.offset(), &index)) {
      StreamMergedLog(log, scan.version(), index, ch, pool, progress);
      return;
    }
  }
  bool any_seq = false, any_plain = false, started = false, have_last_seq = false;
  std::uint64_t last_seq = 0;
  std::vector<std::uint32_t> numbers;
  LockSlots slots;
  logfmt::BlockView block;
  std::uint64_t last_offset = scan.offset();
  for (;;) {
    auto r = scan.NextBlock(&block, &err);
    if (r == logfmt::BinaryScanner::Next::kEnd) break;
    if (r == logfmt::BinaryScanner::Next::kError) {
      ++log->damaged_blocks;
      AddLogError(log, {log->path, err.offset, 0, true, err.message});
      continue;
    }
    auto b = pool->Get();
    DecodeBlock(block, b.get(), &err);
    AssignLockSlots(b.get(), &slots);
    if (!started) {
      ch->Start(LogChannel::Mode::kBlocks);
      started = true;
    }
    // Stamped blocks replay in merged stamp order. When each block's stamps follow the previous
    // block's (a single-threaded program, or threads that took turns), that is file order;
    // otherwise the pipeline's file-order replay is wrong and the analysis is redone in two
    // passes.
    if (b->has_seq && b->events > 0) {
      if (!b->seq_sorted || (have_last_seq && b->first_seq < last_seq)) ch->SetNeedsTwoPass();
      last_seq = b->last_seq;
      have_last_seq = true;
    }
    if (!err.message.empty()) {
      ++log->damaged_blocks;
      AddLogError(log, {log->path, err.offset, 0, true, err.message});
    }
    (b->has_seq ? any_seq : any_plain) = true;
    b->file_index = static_cast<std::uint32_t>(log->blocks.size());
    log->blocks.push_back(block);
    numbers.push_back(block.number);
    log->records += b->records_seen;
    log->events += b->events;
    log->complete = log->complete || b->end;
    for (auto& [id, frames] : b->stacks) log->stacks.try_emplace(id, std::move(frames));
    for (auto& [ip, text] : b->sites) log->sites.try_emplace(ip, std::move(text));
    for (auto& [lock, name] : b->lock_names) log->lock_names[lock] = std::move(name);
    if (progress) progress->Add(scan.offset() - last_offset, 0);
    last_offset = scan.offset();
    ch->Push(std::move(b));
  }
  if (!started) ch->Start(LogChannel::Mode::kBlocks);
  log->skipped_bytes = scan.skipped_bytes();
  FinishBinaryBlockChecks(log, any_seq, any_plain, &numbers);
  log->usable = !log->blocks.empty() || header == logfmt::BinaryScanner::HeaderResult::kOk;
  ch->Finish();
}

void PrepareAnalysis(const AnalyzeOptions& options, const std::vector<std::string>& paths,
                     Analysis* a, CollectingSink* sink) {
  a->logs.clear();
  for (auto& p : paths) {
    a->logs.push_back(std::make_unique<LoadedLog>());
    a->logs.back()->path = p;
  }
  a->runs.clear();
  a->symbolizer = LogSymbolizer();
  EngineOptions eo;
  eo.strict_same_class = options.strict;
  a->engine = std::make_unique<Engine>(eo, sink);
  a->events = 0;
  a->merged_logs = 0;
  a->two_pass_reason.clear();
}

// The two-pass path: every log loaded whole (tables first), then replayed in input order.
void AnalyzeTwoPass(const AnalyzeOptions& options, const std::vector<std::string>& paths,
                    unsigned jobs, Progress* progress, Analysis* a, CollectingSink* sink) {
  using Clock = std::chrono::steady_clock;
  PrepareAnalysis(options, paths, a, sink);
  auto t0 = Clock::now();
  progress->Begin("reading", a->bytes);
  LoadLogs(a->logs, jobs, progress);
  auto t1 = Clock::now();
  a->load_seconds = std::chrono::duration<double>(t1 - t0).count();
  Replayer replayer(a->engine.get(), &a->symbolizer);
  progress->Begin("replaying", a->bytes);
  RunId next_run = 0;
  for (auto& log : a->logs) {
    for (auto& e : log->errors) a->errors.push_back(e);
    if (!log->errors.empty()) a->input_error = true;
    if (log->fatal || !log->usable || next_run > kMaxRuns) {
      if (!log->fatal && next_run > kMaxRuns)
        a->errors.push_back({log->path, 0, 0, false, "more than 65535 runs in one analysis; skipped"});
      a->runs.push_back(static_cast<RunId>(-1));
      continue;
    }
    a->runs.push_back(next_run);
    a->events += replayer.Replay(*log, next_run, progress);
    ++next_run;
  }
  a->replay_seconds = std::chrono::duration<double>(Clock::now() - t1).count();
}

// The pipeline. Returns false when a log's definitions came after their first use (see
// BlockReplayer); the caller then redoes the analysis with AnalyzeTwoPass.
bool AnalyzePipelined(const AnalyzeOptions& options, const std::vector<std::string>& paths,
                      unsigned jobs, Progress* progress, Analysis* a, CollectingSink* sink) {
  using Clock = std::chrono::steady_clock;
  PrepareAnalysis(options, paths, a, sink);
  auto t0 = Clock::now();
  progress->Begin("analyzing", a->bytes);
  const std::size_t n = a->logs.size();
  std::vector<LogChannel> channels(n);
  BlockPool pool;
  std::atomic<std::size_t> next{0};
  std::atomic<std::int64_t> decode_ns{0};
  auto worker = [&] {
    for (std::size_t i = next++; i < n; i = next++) {
      LoadedLog* log = a->logs[i].get();
      if (!OpenLog(log)) {
        channels[i].Finish();
      } else if (log->format == logfmt::Format::kBinary) {
        StreamBinaryLog(log, &channels[i], &pool, progress);
      } else {
        LoadOpenedLog(log, progress);
        channels[i].Finish();
      }
    }
    decode_ns += ThreadCpuNs();
  };
  std::vector<std::thread> workers;
  const unsigned nworkers = static_cast<unsigned>(std::max<std::size_t>(1, std::min<std::size_t>(jobs, n)));
  for (unsigned t = 0; t < nworkers && n > 0; ++t) workers.emplace_back(worker);

  const std::int64_t replay_cpu0 = ThreadCpuNs();
  Replayer replayer(a->engine.get(), &a->symbolizer);
  ContextMask entered;
  bool failed = false;
  // Why the pipeline's result cannot stand (the first log that says so), for --stats.
  auto fail = [&](const LoadedLog& log, bool speculation, bool damaged) {
    if (failed || !(speculation || damaged)) return;
    failed = true;
    a->two_pass_reason =
        log.path + (damaged ? ": a damaged stamped log" : ": definitions after their use");
  };
  RunId next_run = 0;
  for (std::size_t i = 0; i < n; ++i) {
    LoadedLog* log = a->logs[i].get();
    LogChannel& ch = channels[i];
    const LogChannel::Mode mode = ch.WaitStarted();
    if (mode == LogChannel::Mode::kWhole) {
      ch.WaitFinished();
      for (auto& e : log->errors) a->errors.push_back(e);
      if (!log->errors.empty()) a->input_error = true;
      if (log->fatal || !log->usable || next_run > kMaxRuns) {
        if (!log->fatal && next_run > kMaxRuns)
          a->errors.push_back({log->path, 0, 0, false, "more than 65535 runs in one analysis; skipped"});
        a->runs.push_back(static_cast<RunId>(-1));
        continue;
      }
      a->runs.push_back(next_run);
      a->events += replayer.Replay(*log, next_run, progress);
      // Which contexts that log's threads entered is not tracked: count them all as entered,
      // so a later block-replayed log that renames one falls back to the two-pass path.
      entered = ~ContextMask{};
      ++next_run;
      continue;
    }
    if (next_run > kMaxRuns || failed) {
      // Skipped, or the result will be thrown away: only drain the decoder.
      while (auto b = ch.Pop()) pool.Put(std::move(b));
      fail(*log, false, ch.needs_two_pass());
    } else if (mode == LogChannel::Mode::kBlocks) {
      BlockReplayer r(a->engine.get(), log, next_run, &entered);
      std::uint64_t since = 0;
      while (auto b = ch.Pop()) {
        if (failed || ch.needs_two_pass()) {
          fail(*log, false, ch.needs_two_pass());
          pool.Put(std::move(b));
          continue;
        }
        r.Replay(*b);
        since += b->events;
        if (since >= (1u << 16)) {
          progress->Add(0, since);
          since = 0;
        }
        pool.Put(std::move(b));
      }
      progress->Add(0, since);
      a->events += r.events();
      fail(*log, r.speculation_failed(), ch.needs_two_pass());
    } else {
      // Merged by stamp: blocks arrive in the order of their first event; each is opened when
      // the merge reaches that event, and the open blocks are merged up to the next one's.
      BlockReplayer r(a->engine.get(), log, next_run, &entered);
      std::vector<std::unique_ptr<DecodedBlock>> done;
      std::uint64_t since = 0;
      auto pending = ch.Pop();
      while (!ch.needs_two_pass()) {
        while (pending && (!r.HasOpen() || pending->events == 0 ||
                           MergeKey{pending->first_seq, pending->file_index} < r.Head())) {
          since += pending->events;
          r.Open(std::move(pending), &done);
          pending = ch.Pop();
        }
        if (!r.HasOpen()) break;
        r.ReplayUntil(pending ? MergeKey{pending->first_seq, pending->file_index}
                              : MergeKey{~std::uint64_t{0}, ~std::uint32_t{0}},
                      &done);
        for (auto& b : done) pool.Put(std::move(b));
        done.clear();
        if (since >= (1u << 16)) {
          progress->Add(0, since);
          since = 0;
        }
      }
      progress->Add(0, since);
      for (auto& b : done) pool.Put(std::move(b));
      if (pending) pool.Put(std::move(pending));
      while (auto b = ch.Pop()) pool.Put(std::move(b));
      a->events += r.events();
      ++a->merged_logs;
      fail(*log, r.speculation_failed(), ch.needs_two_pass());
    }
    // The decoder has finished with the log: its counters and tables are complete.
    for (auto& e : log->errors) a->errors.push_back(e);
    if (!log->errors.empty()) a->input_error = true;
    if (log->fatal || !log->usable || next_run > kMaxRuns) {
      if (!log->fatal && log->usable && next_run > kMaxRuns)
        a->errors.push_back({log->path, 0, 0, false, "more than 65535 runs in one analysis; skipped"});
      a->runs.push_back(static_cast<RunId>(-1));
      continue;
    }
    replayer.AddTables(*log, next_run);
    a->runs.push_back(next_run);
    ++next_run;
  }
  a->replay_cpu_seconds = static_cast<double>(ThreadCpuNs() - replay_cpu0) / 1e9;
  for (auto& w : workers) w.join();
  a->replay_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  a->load_seconds = 0;
  a->decode_seconds = static_cast<double>(decode_ns.load()) / 1e9;
  a->pipelined = true;
  return !failed;
}

}  // namespace

bool Analyze(const AnalyzeOptions& options, Analysis* a) {
  auto paths = ExpandInputs(options.inputs, &a->errors);
  if (!a->errors.empty()) a->input_error = true;
  std::uint64_t total = 0;
  for (auto& p : paths) {
    std::error_code ec;
    auto size = std::filesystem::file_size(p, ec);
    if (!ec) total += size;
  }
  a->bytes = total;
  Progress progress(options.progress);
  unsigned jobs = options.jobs ? options.jobs : std::max(1u, std::thread::hardware_concurrency());

  CollectingSink sink;
  const auto input_errors = a->errors;
  const bool input_error = a->input_error;
  if (options.two_pass || !AnalyzePipelined(options, paths, jobs, &progress, a, &sink)) {
    // Exactly as if each log's tables had been read first: start again, two passes.
    sink.findings.clear();
    sink.turned_off.clear();
    a->errors = input_errors;
    a->input_error = input_error;
    a->pipelined = false;
    std::string reason = options.two_pass ? "asked for" : a->two_pass_reason;
    AnalyzeTwoPass(options, paths, jobs, &progress, a, &sink);
    a->two_pass_reason = reason;
  }
  progress.Clear();
  std::size_t usable = 0;
  for (auto r : a->runs) usable += r != static_cast<RunId>(-1);
  a->symbolizer.name_runs = usable > 1;
  a->turned_off = sink.turned_off;
  bool any = usable > 0;

  for (auto& f : sink.findings) {
    AnalyzedFinding af;
    af.finding = std::move(f);
    // Instances print as the run's own addresses (the engine saw them shifted into one space).
    RunId run = af.finding.run;
    auto unmap = [run](LockId& l) { l = MapRunValue(run, l); };
    unmap(af.finding.target.instance);
    for (auto& h : af.finding.held) unmap(h.instance);
    for (auto& i : af.finding.instances) unmap(i);
    a->symbolizer.current_run = run;
    af.report = FormatReport(af.finding, a->symbolizer);
    if (options.suppressions) {
      for (auto& s : *options.suppressions) {
        if (SuppressionMatches(s, af.finding)) {
          ++s.uses;
          if (!af.suppression) af.suppression = &s;
        }
      }
    }
    if (af.suppression) af.status = FindingStatus::kSuppressed;
    else if (options.baseline && options.baseline->count(af.finding.fingerprint))
      af.status = FindingStatus::kBaselined;
    a->findings.push_back(std::move(af));
  }
  return any;
}

}  // namespace lockgraph::analyzer
