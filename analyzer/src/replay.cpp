// Log replay: every record becomes the engine call the live runtime made for it.
#include "replay.h"

#include <algorithm>
#include <bit>
#include <charconv>

#include "block_decode.h"
#include "progress.h"

namespace lockgraph::analyzer {

bool ParseLocation(const std::string& text, SourceLocation* loc) {
  // "function (file:line)": the last " (" opens the location, the last ':' ends the file.
  if (text.size() < 5 || text.back() != ')') return false;
  std::size_t open = text.rfind(" (");
  if (open == std::string::npos) return false;
  std::string_view inside(text.data() + open + 2, text.size() - open - 3);
  std::size_t colon = inside.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  std::uint64_t line = 0;
  auto r = std::from_chars(inside.data() + colon + 1, inside.data() + inside.size(), line);
  if (r.ec != std::errc() || r.ptr != inside.data() + inside.size()) return false;
  loc->function = text.substr(0, open);
  loc->file = std::string(inside.substr(0, colon));
  loc->line = line;
  return true;
}

void LogSymbolizer::AppendStack(StackId stack, int indent, std::string* out) const {
  const auto* frames = Stack(stack);
  if (!frames) {
    Symbolizer::AppendStack(stack, indent, out);
    return;
  }
  for (const auto& f : *frames) {
    out->append(static_cast<std::size_t>(indent), ' ');
    out->append(f);
    out->push_back('\n');
  }
}

void LogSymbolizer::AppendCallSite(std::uint64_t ip, std::string* out) const {
  if (const auto* s = CallSite(ip)) {
    out->append(*s);
    return;
  }
  Symbolizer::AppendCallSite(ip, out);
}

void LogSymbolizer::AppendLockInstance(LockId lock, std::string* out) const {
  auto it = lock_names.find(MapRunValue(current_run, lock));
  if (it != lock_names.end()) {
    out->append(it->second);
    return;
  }
  Symbolizer::AppendLockInstance(lock, out);
}

std::string LogSymbolizer::RunName(RunId run) const {
  if (!name_runs) return {};
  return RunLabel(run);
}

std::string LogSymbolizer::RunLabel(RunId run) const {
  if (run >= runs.size()) return "run " + std::to_string(run);
  const RunInfo& r = runs[run];
  if (r.program.empty()) return r.file;
  std::string s = r.program;
  if (r.pid) s += "[" + std::to_string(r.pid) + "]";
  return s + " (" + r.file + ")";
}

const std::string* LogSymbolizer::CallSite(std::uint64_t ip) const {
  auto it = sites.find(ip);
  return it == sites.end() ? nullptr : &it->second;
}

const std::vector<std::string>* LogSymbolizer::Stack(StackId stack) const {
  auto it = stacks.find(stack);
  return it == stacks.end() ? nullptr : &it->second;
}

void Replayer::AddTables(const LoadedLog& log, RunId run) {
  if (symbolizer_->runs.size() <= run) symbolizer_->runs.resize(run + 1);
  symbolizer_->runs[run] = {log.header.program, log.header.pid, log.path};
  for (const auto& [ip, text] : log.sites) symbolizer_->sites.try_emplace(MapRunValue(run, ip), text);
  for (const auto& [id, frames] : log.stacks)
    symbolizer_->stacks.try_emplace(MapRunValue(run, id), frames);
  for (const auto& [lock, name] : log.lock_names)
    symbolizer_->lock_names.try_emplace(MapRunValue(run, lock), name);
}

std::uint64_t Replayer::Replay(const LoadedLog& log, RunId run, Progress* progress) {
  AddTables(log, run);
  for (const auto& [ctx, name] : log.context_names) engine_->SetContextName(ctx, name);

  Engine& engine = *engine_;
  std::unordered_map<ThreadKey, std::unique_ptr<ThreadState>> threads;
  std::unordered_map<logfmt::LogClassId, ClassId> classes;
  ThreadKey last_key = 0;
  ThreadState* last = nullptr;

  auto thread = [&](ThreadKey key) -> ThreadState& {
    if (last && last_key == key) return *last;
    auto& slot = threads[key];
    if (!slot) slot = engine.NewThread(key, {}, run);
    last_key = key;
    last = slot.get();
    return *slot;
  };
  auto cls = [&](logfmt::LogClassId id) -> ClassId {
    auto it = classes.find(id);
    if (it != classes.end()) return it->second;
    ClassId c;
    auto def = log.classes.find(id);
    if (def != log.classes.end()) {
      const ClassDefinition& d = def->second;
      c = engine.RegisterClass(logfmt::StableClassKey(d.identity), d.name.empty() ? d.identity : d.name,
                               d.subclass);
    } else {
      // The definition was in a damaged block: a class of its own, named so a reader can tell.
      std::string name = "class#" + std::to_string(id) + "(" + log.path + ")";
      c = engine.RegisterClass(logfmt::StableClassKey("lost:" + name), name, 0);
    }
    classes.emplace(id, c);
    return c;
  };
  auto map = [run](std::uint64_t v) { return MapRunValue(run, v); };

  EventStream stream(log);
  logfmt::Event e;
  std::uint64_t n = 0, reported_bytes = 0, reported_events = 0;
  using logfmt::RecordType;
  while (stream.Next(&e)) {
    ++n;
    switch (e.type) {
      case RecordType::kThreadStart: {
        auto it = threads.find(e.thread);
        if (it != threads.end()) {
          it->second->set_name(std::string(e.text));
        } else {
          threads[e.thread] = engine.NewThread(e.thread, std::string(e.text), run);
          last = nullptr;
        }
        break;
      }
      case RecordType::kThreadName:
        thread(e.thread).set_name(std::string(e.text));
        break;
      case RecordType::kThreadExit: {
        engine.ThreadExit(thread(e.thread), map(e.ip));
        threads.erase(e.thread);
        last = nullptr;
        break;
      }
      case RecordType::kLockInit:
        engine.InitLock(thread(e.thread), map(e.lock), cls(e.class_id), map(e.ip), map(e.stack));
        break;
      case RecordType::kLockDestroy:
        engine.DestroyLock(thread(e.thread), map(e.lock), map(e.ip), nullptr, map(e.stack));
        break;
      case RecordType::kLockSetClass:
        engine.SetLockClass(map(e.lock), cls(e.class_id));
        break;
      case RecordType::kAcquire: {
        AcquireRequest req;
        req.lock = map(e.lock);
        req.mode = e.mode;
        req.trylock = e.trylock;
        req.subclass = e.subclass;
        req.nest_lock = map(e.nest_lock);
        req.ip = map(e.ip);
        req.stack = map(e.stack);
        engine.Acquire(thread(e.thread), req);
        break;
      }
      case RecordType::kRelease:
        engine.Release(thread(e.thread), map(e.lock), map(e.ip));
        break;
      case RecordType::kCancelAcquire:
        engine.CancelAcquire(thread(e.thread), map(e.lock));
        break;
      case RecordType::kEnterContext:
        engine.EnterContext(thread(e.thread), e.context);
        break;
      case RecordType::kExitContext:
        engine.ExitContext(thread(e.thread), e.context, map(e.ip));
        break;
      case RecordType::kDisableContext:
        engine.DisableContext(thread(e.thread), e.context);
        break;
      case RecordType::kEnableContext:
        engine.EnableContext(thread(e.thread), e.context);
        break;
      case RecordType::kSetDisabledMask:
        engine.SetDisabledContexts(thread(e.thread), e.mask);
        break;
      default:
        break;  // definitions were applied above; end-of-run needs nothing
    }
    if (progress && (n & 0xffff) == 0) {
      progress->Add(stream.bytes_done() - reported_bytes, n - reported_events);
      reported_bytes = stream.bytes_done();
      reported_events = n;
    }
  }
  if (progress) progress->Add(stream.bytes_done() - reported_bytes, n - reported_events);
  // The process ended: its threads' states go, without the thread-exit check (as at exit()).
  return n;
}

// --- Block replay (the pipeline) ---------------------------------------------------------------

// One open block of the merged order: where its replay stands and which thread its records
// act on there.
struct BlockReplayer::Cursor {
  std::unique_ptr<DecodedBlock> block;
  std::size_t pos = 0;
  MergeKey head;            // key of the record at `pos` (its first event when opened)
  ThreadKey key = 0;        // the thread set by the block's last switch so far
  ThreadState* state = nullptr;
  std::uint64_t epoch = 0;  // thread_epoch_ when `state` was looked up
};

BlockReplayer::BlockReplayer(Engine* engine, LoadedLog* log, RunId run, ContextMask* entered)
    : engine_(engine),
      log_(log),
      run_(run),
      run_bits_(std::uint64_t{run} << 48),
      entered_(entered) {
  for (auto& b : context_named_by_) b = -1;
}

// The process ended: its threads' states go, without the thread-exit check (as at exit()).
BlockReplayer::~BlockReplayer() = default;

ThreadState& BlockReplayer::Lookup(ThreadKey key) {
  auto& slot = threads_[key];
  if (!slot) slot = engine_->NewThread(key, {}, run_);
  return *slot;
}

inline ThreadState& BlockReplayer::Current() {
  if (!current_) current_ = &Lookup(current_key_);
  return *current_;
}

ClassId BlockReplayer::Class(logfmt::LogClassId id) {
  auto it = classes_.find(id);
  if (it != classes_.end()) return it->second;
  ClassId c;
  auto def = log_->classes.find(id);
  if (def != log_->classes.end()) {
    const ClassDefinition& d = def->second;
    c = engine_->RegisterClass(logfmt::StableClassKey(d.identity),
                               d.name.empty() ? d.identity : d.name, d.subclass);
  } else {
    // Not defined so far: the two-pass path may find the definition further on.
    failed_ = true;
    std::string name = "class#" + std::to_string(id) + "(" + log_->path + ")";
    c = engine_->RegisterClass(logfmt::StableClassKey("lost:" + name), name, 0);
  }
  classes_.emplace(id, c);
  return c;
}

// Makes room in handles_ for every lock slot `block` uses (its slots are below its limit).
void BlockReplayer::GrowHandles(const DecodedBlock& block) {
  if (block.lock_slot_limit > handles_.size()) {
    handles_.resize(std::max<std::size_t>(block.lock_slot_limit, 2 * handles_.size()), 0);
  }
}

// An acquisition of a lock whose slot has no handle yet (its first since the lock's init, or
// since the handle was found stale): the handle taken from the engine (0 while the lock is not
// live), then the cached path with it. False: make the full Acquire.
bool BlockReplayer::AcquireFirst(ThreadState& t, std::uint32_t slot, LockId lock,
                                 AcquireMode mode, bool trylock, std::uint64_t ip) {
  const InstanceHandle handle = engine_->HandleOf(lock);
  if (slot != 0) handles_[slot] = handle;  // slot 0 (lock kNoLock) keeps none
  return handle != 0 && engine_->TryAcquireCached(t, lock, mode, trylock, ip, handle);
}

// The events of records [begin, end) of a block. Run 0's values are used as they are (kMapped
// false), so a single log pays nothing for the run mapping.
template <bool kMapped>
void BlockReplayer::ReplayRecords(const DecodedBlock& block, std::size_t begin, std::size_t end) {
  Engine& engine = *engine_;
  const std::uint64_t rb = run_bits_;
  auto map = [rb](std::uint64_t v) {
    if constexpr (kMapped) return v ? v ^ rb : v;
    else return v;
  };
  using logfmt::RecordType;
  const CompactRecord* const records = block.records().data();
  const std::uint32_t* const slots = block.lock_slots();
  const InstanceHandle* const handles = handles_.data();  // not resized during a range
  // The inline cached path (as the shim's) does not look at whether the engine is still on: it
  // is skipped from the next range on once the engine has turned off (an acquisition in
  // between only pushes onto the thread's own stack, which nothing reads then).
  const bool on = engine.enabled();
  // The thread's state in a local for the two hot records: as far as the compiler knows, every
  // engine call could change the members, which would be reloaded and tested per record.
  ThreadState* cur = current_;
  for (std::size_t i = begin; i < end; ++i) {
    const CompactRecord& r = records[i];
    if (r.type == RecordType::kRelease) {
      ThreadState& t = cur ? *cur : *(cur = &Current());
      if (!engine_internal::TryReleaseInnermost(t.cache(), map(r.x))) {
        engine.Release(t, map(r.x), map(r.y));
      }
      continue;
    }
    if (r.type == RecordType::kAcquire) {
      ThreadState& t = cur ? *cur : *(cur = &Current());
      // The engine's cached path first, as the shim takes it: the same result as Acquire
      // without building a request (it takes no subclass and no nest lock), with the lock's
      // instance handle as the shim keeps one in each mutex: inline, the instance's slot (its
      // lock, class and noted chains) and the class's usage summary; else the engine's miss
      // path (the chain cache, the class's usage masks); neither needs the instance table.
      if ((r.c | r.index) == 0 && on) {
        const LockId lock = map(r.x);
        const auto mode = static_cast<AcquireMode>(r.a);
        const InstanceHandle h = handles[slots[i]];
        if (h == 0) {
          if (AcquireFirst(t, slots[i], lock, mode, r.b, map(r.y))) continue;
        } else {
          // Replay knows what comes next, the shim does not: the instance slot of the lock
          // acquired kAhead records on is started into the caches (over a large pool it is
          // the read that misses them). Records without a lock, and those past the block's
          // end, have slot 0: no handle.
          constexpr std::size_t kAhead = 8;
          static_assert(kAhead <= DecodedBlock::kLockSlotPad);
          if (const InstanceHandle next = handles[slots[i + kAhead]])
            __builtin_prefetch(reinterpret_cast<const void*>(next));
          if (engine_internal::TryAcquireFromSlot(t.cache(), lock, mode, r.b, map(r.y), h) ||
              engine.TryAcquireCachedAfterSlot(t, lock, mode, r.b, map(r.y), h)) {
            continue;
          }
          // A handle that names another lock now (the slot handed to another lock in merged
          // order, the engine's slot recycled) is taken afresh at the next acquisition.
          if (reinterpret_cast<const engine_internal::InstanceSlot*>(h)->lock.load(
                  std::memory_order_relaxed) != lock) {
            handles_[slots[i]] = 0;
          }
        }
      }
      AcquireRequest req;
      req.lock = map(r.x);
      req.mode = static_cast<AcquireMode>(r.a);
      req.trylock = r.b;
      req.subclass = r.c;
      if (r.index) req.nest_lock = map(block.nests[r.index - 1]);
      req.ip = map(r.y);
      req.stack = map(r.z);
      engine.Acquire(t, req);
      continue;
    }
    switch (r.type) {
      case RecordType::kThreadSwitch:
        if (r.x != current_key_ || !current_) {
          current_key_ = r.x;
          current_ = nullptr;
        }
        break;
      case RecordType::kThreadStart: {
        auto it = threads_.find(r.x);
        if (it != threads_.end()) {
          it->second->set_name(block.names[r.index]);
        } else {
          threads_[r.x] = engine.NewThread(r.x, block.names[r.index], run_);
        }
        current_key_ = r.x;
        current_ = nullptr;
        break;
      }
      case RecordType::kThreadName:
        Current().set_name(block.names[r.index]);
        break;
      case RecordType::kThreadExit:
        engine.ThreadExit(Current(), map(r.y));
        threads_.erase(current_key_);
        current_ = nullptr;
        ++thread_epoch_;
        break;
      case RecordType::kLockInit:
        // A new instance: its handle is taken afresh at its next acquisition (the engine
        // re-binds the slot of a lock it still remembers, but one it forgot gets a new slot).
        handles_[slots[i]] = 0;
        engine.InitLock(Current(), map(r.x), Class(r.index), map(r.y), map(r.z));
        break;
      case RecordType::kLockDestroy:
        handles_[slots[i]] = 0;
        engine.DestroyLock(Current(), map(r.x), map(r.y), nullptr, map(r.z));
        break;
      case RecordType::kLockSetClass:
        engine.SetLockClass(map(r.x), Class(r.index));
        break;
      case RecordType::kCancelAcquire:
        engine.CancelAcquire(Current(), map(r.x));
        break;
      case RecordType::kEnterContext:
        entered_->Set(r.a);
        engine.EnterContext(Current(), r.a);
        break;
      case RecordType::kExitContext:
        engine.ExitContext(Current(), r.a, map(r.y));
        break;
      case RecordType::kDisableContext:
        engine.DisableContext(Current(), r.a);
        break;
      case RecordType::kEnableContext:
        engine.EnableContext(Current(), r.a);
        break;
      case RecordType::kSetDisabledMask: {
        ContextMask m;
        m.words[0] = r.x;
        m.words[1] = r.y;
        engine.SetDisabledContexts(Current(), m);
        break;
      }
      default:
        break;  // end of run
    }
    cur = current_;
  }
}

void BlockReplayer::ReplayRange(const DecodedBlock& block, std::size_t begin, std::size_t end) {
  if (run_bits_) ReplayRecords<true>(block, begin, end);
  else ReplayRecords<false>(block, begin, end);
}

namespace {

bool SameDefinition(const ClassDefinition& a, const ClassDefinition& b) {
  return a.identity == b.identity && a.name == b.name && a.subclass == b.subclass;
}

}  // namespace

void BlockReplayer::ApplyDefinitions(const DecodedBlock& block) {
  const std::uint32_t here = block.file_index;
  for (const auto& [id, d] : block.classes) {
    auto [it, inserted] = log_->classes.try_emplace(id, d);
    auto [at, fresh] = class_def_block_.try_emplace(id, here);
    if (inserted || here >= at->second) continue;  // the first definition in the file wins
    // An earlier block of the file, merged after a later one: its definition is the one the
    // two-pass tables keep. A class registered with the other one gives a different result.
    if (!SameDefinition(it->second, d)) {
      if (classes_.count(id)) failed_ = true;
      it->second = d;
    }
    at->second = here;
  }
  for (const auto& [ctx, name] : block.contexts) {
    log_->context_names.emplace_back(ctx, name);
    // The last name in the file wins; a block merged after a later one keeps the later name.
    if (context_named_by_[ctx] > static_cast<std::int64_t>(here)) continue;
    context_named_by_[ctx] = here;
    // A context some thread has been in, renamed now: findings made before would have named
    // it differently with the whole file's tables.
    if (entered_->Test(ctx) && engine_->ContextName(ctx) != name) failed_ = true;
    engine_->SetContextName(ctx, name);
  }
}

void BlockReplayer::Replay(const DecodedBlock& block) {
  ApplyDefinitions(block);
  GrowHandles(block);
  ReplayRange(block, 0, block.records().size());
  events_ += block.events;
}

// --- Merged order ---

void BlockReplayer::Open(std::unique_ptr<DecodedBlock> block,
                         std::vector<std::unique_ptr<DecodedBlock>>* done) {
  ApplyDefinitions(*block);
  GrowHandles(*block);
  events_ += block->events;
  if (block->events == 0 || block->records().empty()) {
    done->push_back(std::move(block));
    return;
  }
  Cursor* c;
  if (cursors_.size() > heap_.size()) {
    // A closed cursor's slot (every cursor in cursors_ but not in heap_ is closed).
    c = nullptr;
    for (auto& slot : cursors_) {
      if (!slot->block) {
        c = slot.get();
        break;
      }
    }
  } else {
    cursors_.push_back(std::make_unique<Cursor>());
    c = cursors_.back().get();
  }
  c->head = {block->first_seq, block->file_index};
  c->block = std::move(block);
  c->pos = 0;
  c->key = 0;
  c->state = nullptr;
  c->epoch = thread_epoch_;
  // Sift up.
  std::size_t i = heap_.size();
  heap_.push_back(c);
  while (i > 0) {
    const std::size_t parent = (i - 1) / 2;
    if (!(heap_[i]->head < heap_[parent]->head)) break;
    std::swap(heap_[i], heap_[parent]);
    i = parent;
  }
}

MergeKey BlockReplayer::Head() const { return heap_.front()->head; }

void BlockReplayer::SiftDown(std::size_t i) {
  const std::size_t n = heap_.size();
  for (;;) {
    std::size_t least = i;
    const std::size_t l = 2 * i + 1, r = l + 1;
    if (l < n && heap_[l]->head < heap_[least]->head) least = l;
    if (r < n && heap_[r]->head < heap_[least]->head) least = r;
    if (least == i) return;
    std::swap(heap_[i], heap_[least]);
    i = least;
  }
}

namespace {

// The first record at or after `pos` whose stamp is above `stop`, thread switches excepted (they
// carry no stamp of their own). `pos` itself is within the run.
std::size_t RunEnd(const DecodedBlock& block, std::size_t pos, std::uint64_t stop) {
  const std::uint64_t* seqs = block.seqs().data();
  const std::size_t n = block.records().size();
  if (block.seq_sorted) {
    // Thread switches carry the stamp before them, so the array is sorted: gallop, then
    // bisect. Runs are often short (threads on two cores interleave finely), so the gallop
    // from `pos` costs little for them and log(run) for long ones.
    if (seqs[n - 1] <= stop) return n;
    std::size_t lo = pos, step = 1;  // seqs[lo] <= stop
    while (lo + step < n && seqs[lo + step] <= stop) {
      lo += step;
      step *= 2;
    }
    const std::size_t hi = std::min(lo + step, n);
    return static_cast<std::size_t>(std::upper_bound(seqs + lo + 1, seqs + hi, stop) - seqs);
  }
  const CompactRecord* records = block.records().data();
  std::size_t i = pos;
  while (i < n && (records[i].type == logfmt::RecordType::kThreadSwitch || seqs[i] <= stop)) ++i;
  return i;
}

}  // namespace

void BlockReplayer::ReplayUntil(MergeKey limit, std::vector<std::unique_ptr<DecodedBlock>>* done) {
  while (!heap_.empty() && heap_.front()->head < limit) {
    Cursor& c = *heap_.front();
    // It stays first until its next event comes after the other open blocks' heads or `limit`.
    MergeKey bound = limit;
    if (heap_.size() > 1) {
      const Cursor* next = heap_[1];
      if (heap_.size() > 2 && heap_[2]->head < next->head) next = heap_[2];
      if (next->head < bound) bound = next->head;
    }
    // Events of this block with a key below `bound`: stamps up to bound.seq, or below it when
    // this block is later in the file (c.head < bound, so the subtraction cannot wrap).
    const std::uint64_t stop = bound.seq - (c.head.block > bound.block ? 1 : 0);
    const DecodedBlock& block = *c.block;
    const std::size_t end = RunEnd(block, c.pos, stop);
    current_key_ = c.key;
    current_ = c.epoch == thread_epoch_ ? c.state : nullptr;
    ReplayRange(block, c.pos, end);
    c.key = current_key_;
    c.state = current_;
    c.epoch = thread_epoch_;
    c.pos = end;
    if (end == block.records().size()) {
      done->push_back(std::move(c.block));
      heap_.front() = heap_.back();
      heap_.pop_back();
    } else {
      c.head.seq = block.seqs()[end];
    }
    if (!heap_.empty()) SiftDown(0);
  }
}

}  // namespace lockgraph::analyzer
