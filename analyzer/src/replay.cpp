// Log replay: every record becomes the engine call the live runtime made for it.
#include "replay.h"

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

BlockReplayer::BlockReplayer(Engine* engine, LoadedLog* log, RunId run, ContextMask* entered)
    : engine_(engine),
      log_(log),
      run_(run),
      run_bits_(std::uint64_t{run} << 48),
      entered_(entered) {}

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

// The events of one block. Run 0's values are used as they are (kMapped false), so a single
// log pays nothing for the run mapping.
template <bool kMapped>
void BlockReplayer::ReplayRecords(const DecodedBlock& block) {
  Engine& engine = *engine_;
  const std::uint64_t rb = run_bits_;
  auto map = [rb](std::uint64_t v) {
    if constexpr (kMapped) return v ? v ^ rb : v;
    else return v;
  };
  using logfmt::RecordType;
  for (const CompactRecord& r : block.records()) {
    switch (r.type) {
      case RecordType::kAcquire: {
        AcquireRequest req;
        req.lock = map(r.x);
        req.mode = static_cast<AcquireMode>(r.a);
        req.trylock = r.b;
        req.subclass = r.c;
        if (r.index) req.nest_lock = map(block.nests[r.index - 1]);
        req.ip = map(r.y);
        req.stack = map(r.z);
        engine.Acquire(Current(), req);
        break;
      }
      case RecordType::kRelease:
        engine.Release(Current(), map(r.x), map(r.y));
        break;
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
        break;
      case RecordType::kLockInit:
        engine.InitLock(Current(), map(r.x), Class(r.index), map(r.y), map(r.z));
        break;
      case RecordType::kLockDestroy:
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
  }
}

void BlockReplayer::Replay(const DecodedBlock& block) {
  for (const auto& [id, d] : block.classes) log_->classes.try_emplace(id, d);
  for (const auto& [ctx, name] : block.contexts) {
    // A context some thread has been in, renamed now: findings made before would have named
    // it differently with the whole file's tables.
    if (entered_->Test(ctx) && engine_->ContextName(ctx) != name) failed_ = true;
    log_->context_names.emplace_back(ctx, name);
    engine_->SetContextName(ctx, name);
  }
  if (run_bits_) ReplayRecords<true>(block);
  else ReplayRecords<false>(block);
  events_ += block.events;
}

}  // namespace lockgraph::analyzer
