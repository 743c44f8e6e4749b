// Log replay: every record becomes the engine call the live runtime made for it.
#include "replay.h"

#include <charconv>

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

std::uint64_t Replayer::Replay(const LoadedLog& log, RunId run, Progress* progress) {
  if (symbolizer_->runs.size() <= run) symbolizer_->runs.resize(run + 1);
  symbolizer_->runs[run] = {log.header.program, log.header.pid, log.path};
  for (const auto& [ip, text] : log.sites) symbolizer_->sites.try_emplace(MapRunValue(run, ip), text);
  for (const auto& [id, frames] : log.stacks)
    symbolizer_->stacks.try_emplace(MapRunValue(run, id), frames);
  for (const auto& [lock, name] : log.lock_names)
    symbolizer_->lock_names.try_emplace(MapRunValue(run, lock), name);
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

}  // namespace lockgraph::analyzer
