// The lock-log recorder: one file per process, CRC-checked blocks from the log_format codec.
#include "recorder.h"

#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include <fmt/format.h>

#include "internal.h"

namespace lockgraph::runtime_internal {
namespace {

constexpr std::size_t kBlockCapacity = 64 * 1024;  // named limit: bytes per block

std::string ReadSelfFile(const char* path) {
  std::ifstream in(path, std::ios::binary);
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return s;
}

void WriteAll(int fd, const std::uint8_t* data, std::size_t size, bool* failed) {
  NoCancel no_cancel;
  while (size > 0) {
    const ssize_t n = write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      *failed = true;
      return;
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

}  // namespace

Recorder::Recorder() = default;
Recorder::~Recorder() = default;

void Recorder::Start(const std::string& path, const Symbolizer* symbolizer) {
  if (path.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  base_path_ = path;
  symbolizer_ = symbolizer;
  buffer_.resize(kBlockCapacity);
  encoder_ = std::make_unique<logfmt::BlockEncoder>(buffer_.data(), buffer_.size(), false);
  // The process `lockgraph run` started (or the first one under a plain LD_PRELOAD) writes
  // `path`; exec'd descendants see another pid in LOCKGRAPH_ROOT_PID and write `path.<pid>`.
  const char* root = getenv("LOCKGRAPH_ROOT_PID");
  const std::string self = std::to_string(getpid());
  std::string file = path;
  if (root == nullptr || *root == '\0') {
    setenv("LOCKGRAPH_ROOT_PID", self.c_str(), 1);
  } else if (self != root) {
    file = path + "." + self;
  }
  OpenLocked(file);
}

void Recorder::OpenLocked(const std::string& path) {
  path_ = path;
  pid_ = getpid();
  fd_ = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    LogWarning(fmt::format("cannot record to '{}': {}; recording is off", path,
                           std::strerror(errno)));
    enabled_.store(false);
    return;
  }
  write_failed_ = false;
  block_number_ = 0;
  encoder_->Reset();
  WriteHeaderLocked();
  enabled_.store(true);
  LogInfo(fmt::format("recording lock events to '{}'", path));
}

void Recorder::WriteHeaderLocked() {
  logfmt::FileHeader header;
  std::string cmdline = ReadSelfFile("/proc/self/cmdline");
  std::string program = cmdline.substr(0, cmdline.find('\0'));
  for (char& c : cmdline) {
    if (c == '\0') c = ' ';
  }
  while (!cmdline.empty() && cmdline.back() == ' ') cmdline.pop_back();
  header.program = program;
  header.pid = static_cast<std::uint64_t>(getpid());
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  header.start_unix_ns =
      static_cast<std::uint64_t>(now.tv_sec) * 1000000000ull + static_cast<std::uint64_t>(now.tv_nsec);
  header.command_line = cmdline;
  char host[256] = {0};
  if (gethostname(host, sizeof host - 1) == 0) header.hostname = host;
  std::string bytes;
  logfmt::EncodeFileHeader(header, &bytes);
  WriteAll(fd_, reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(),
           &write_failed_);
}

void Recorder::Put(logfmt::Event& event) {
  if (fd_ < 0) return;
  if (event.ip != 0 && sites_.insert(event.ip).second) pending_sites_.push_back(event.ip);
  if (encoder_->Put(event)) return;
  FlushLocked();
  if (!encoder_->Put(event)) {
    // Larger than an empty block: only a giant name can do that. Drop it, say so once.
    LogWarning("recorder: a record larger than a block was dropped");
  }
}

void Recorder::ResolvePendingLocked() {
  if (symbolizer_ == nullptr) return;
  // Symbolize into owned strings first: the events below hold views into them.
  std::vector<std::pair<std::uint64_t, std::string>> sites;
  for (std::uint64_t ip : pending_sites_) {
    std::string text;
    symbolizer_->AppendCallSite(ip, &text);
    sites.emplace_back(ip, std::move(text));
  }
  pending_sites_.clear();
  for (auto& [ip, text] : sites) {
    logfmt::Event e;
    e.type = logfmt::RecordType::kCallSiteDef;
    e.ip = ip;
    e.text = text;
    if (!encoder_->Put(e)) {
      FlushLocked();
      encoder_->Put(e);
    }
  }
  auto stacks = std::move(pending_stacks_);
  pending_stacks_.clear();
  for (auto& [id, frames] : stacks) {
    std::vector<std::string> texts;
    for (std::uint64_t ip : frames) {
      std::string text;
      symbolizer_->AppendCallSite(ip, &text);
      texts.push_back(std::move(text));
    }
    logfmt::Event e;
    e.type = logfmt::RecordType::kStackDef;
    e.stack = id;
    for (const auto& t : texts) e.frames.push_back(t);
    if (!encoder_->Put(e)) {
      FlushLocked();
      encoder_->Put(e);
    }
  }
}

void Recorder::FlushLocked() {
  if (fd_ < 0 || encoder_->empty()) return;
  auto block = encoder_->Finish(block_number_++);
  WriteAll(fd_, block.data(), block.size(), &write_failed_);
  encoder_->Reset();
  if (write_failed_) {
    LogWarning(fmt::format("recorder: writing '{}' failed: {}; recording is off", path_,
                           std::strerror(errno)));
    close(fd_);
    fd_ = -1;
    enabled_.store(false);
    return;
  }
  // Definitions collected while the block filled go into the next one (or this flush's tail).
  if (!pending_sites_.empty() || !pending_stacks_.empty()) ResolvePendingLocked();
}

void Recorder::ClassDefined(ClassId cls, std::uint8_t subclass, std::string_view identity,
                            std::string_view name) {
  if (!enabled()) return;
  std::lock_guard<std::mutex> lock(mu_);
  classes_.push_back({cls, subclass, std::string(identity), std::string(name)});
  logfmt::Event e;
  e.type = logfmt::RecordType::kClassDef;
  e.class_id = cls;
  e.subclass = subclass;
  e.text = classes_.back().identity;
  e.text2 = classes_.back().name;
  Put(e);
}

void Recorder::ContextNamed(ContextId context, std::string_view name) {
  if (!enabled()) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto [it, fresh] = contexts_.emplace(context, std::string(name));
  if (!fresh) return;
  logfmt::Event e;
  e.type = logfmt::RecordType::kContextName;
  e.context = context;
  e.text = it->second;
  Put(e);
}

void Recorder::StackDefined(StackId id, const std::uint64_t* frames, int count) {
  if (!enabled() || id == kNoStack) return;
  std::lock_guard<std::mutex> lock(mu_);
  pending_stacks_.emplace_back(id, std::vector<std::uint64_t>(frames, frames + count));
}

void Recorder::ThreadStart(const ThreadState& t) {
  if (!enabled()) return;
  std::lock_guard<std::mutex> lock(mu_);
  logfmt::Event e;
  e.type = logfmt::RecordType::kThreadStart;
  e.thread = t.key();
  e.text = t.name();
  Put(e);
}

void Recorder::ThreadExit(const ThreadState& t) {
  if (!enabled()) return;
  std::lock_guard<std::mutex> lock(mu_);
  held_.erase(t.key());
  logfmt::Event e;
  e.type = logfmt::RecordType::kThreadExit;
  e.thread = t.key();
  Put(e);
}

void Recorder::LockInit(const ThreadState& t, LockId lock_id, ClassId cls, std::uint64_t ip) {
  if (!enabled()) return;
  std::lock_guard<std::mutex> lock(mu_);
  instances_[lock_id] = cls;
  logfmt::Event e;
  e.type = logfmt::RecordType::kLockInit;
  e.thread = t.key();
  e.lock = lock_id;
  e.class_id = cls;
  e.ip = ip;
  Put(e);
}

void Recorder::LockDestroy(const ThreadState& t, LockId lock_id, std::uint64_t ip) {
  if (!enabled()) return;
  std::lock_guard<std::mutex> lock(mu_);
  instances_.erase(lock_id);
  logfmt::Event e;
  e.type = logfmt::RecordType::kLockDestroy;
  e.thread = t.key();
  e.lock = lock_id;
  e.ip = ip;
  Put(e);
}

void Recorder::SetClass(LockId lock_id, ClassId cls) {
  if (!enabled()) return;
  std::lock_guard<std::mutex> lock(mu_);
  instances_[lock_id] = cls;
  logfmt::Event e;
  e.type = logfmt::RecordType::kLockSetClass;
  e.lock = lock_id;
  e.class_id = cls;
  Put(e);
}

void Recorder::Acquire(const ThreadState& t, const AcquireRequest& req, StackId stack) {
  if (!enabled()) return;
  std::lock_guard<std::mutex> lock(mu_);
  AcquireRequest copy = req;
  copy.stack = stack;
  copy.stack_source = nullptr;
  held_[t.key()].push_back(copy);
  logfmt::Event e;
  e.type = logfmt::RecordType::kAcquire;
  e.thread = t.key();
  e.lock = req.lock;
  e.mode = req.mode;
  e.trylock = req.trylock;
  e.subclass = req.subclass;
  e.nest_lock = req.nest_lock;
  e.ip = req.ip;
  e.stack = stack;
  Put(e);
}

namespace {
void EraseInnermost(std::vector<AcquireRequest>* held, LockId lock) {
  for (auto it = held->rbegin(); it != held->rend(); ++it) {
    if (it->lock == lock) {
      held->erase(std::next(it).base());
      return;
    }
  }
}
}  // namespace

void Recorder::Release(const ThreadState& t, LockId lock_id, std::uint64_t ip) {
  if (!enabled()) return;
  std::lock_guard<std::mutex> lock(mu_);
  EraseInnermost(&held_[t.key()], lock_id);
  logfmt::Event e;
  e.type = logfmt::RecordType::kRelease;
  e.thread = t.key();
  e.lock = lock_id;
  e.ip = ip;
  Put(e);
}

void Recorder::Cancel(const ThreadState& t, LockId lock_id) {
  if (!enabled()) return;
  std::lock_guard<std::mutex> lock(mu_);
  EraseInnermost(&held_[t.key()], lock_id);
  logfmt::Event e;
  e.type = logfmt::RecordType::kCancelAcquire;
  e.thread = t.key();
  e.lock = lock_id;
  Put(e);
}

#define LG_CONTEXT_EVENT(Method, Type)                              \
  void Recorder::Method(const ThreadState& t, ContextId context) { \
    if (!enabled()) return;                                         \
    std::lock_guard<std::mutex> lock(mu_);                          \
    logfmt::Event e;                                                \
    e.type = logfmt::RecordType::Type;                              \
    e.thread = t.key();                                             \
    e.context = context;                                            \
    Put(e);                                                         \
  }
LG_CONTEXT_EVENT(EnterContext, kEnterContext)
LG_CONTEXT_EVENT(ExitContext, kExitContext)
LG_CONTEXT_EVENT(DisableContext, kDisableContext)
LG_CONTEXT_EVENT(EnableContext, kEnableContext)
#undef LG_CONTEXT_EVENT

void Recorder::SetDisabledMask(const ThreadState& t, ContextMask mask) {
  if (!enabled()) return;
  std::lock_guard<std::mutex> lock(mu_);
  logfmt::Event e;
  e.type = logfmt::RecordType::kSetDisabledMask;
  e.thread = t.key();
  e.mask = mask;
  Put(e);
}

void Recorder::Finish() {
  if (!enabled()) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (fd_ < 0) return;
  ResolvePendingLocked();
  logfmt::Event e;
  e.type = logfmt::RecordType::kRunEnd;
  Put(e);
  FlushLocked();
  if (!pending_sites_.empty() || !pending_stacks_.empty()) FlushLocked();
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  enabled_.store(false);
}

// Fork: the child must not inherit a half-used mutex or the parent's unwritten block.
void Recorder::BeforeFork() {
  if (enabled()) mu_.lock();
}

void Recorder::AfterForkParent() {
  if (enabled()) mu_.unlock();
}

void Recorder::AfterForkChild() {
  if (!enabled()) return;
  new (&mu_) std::mutex;
  std::lock_guard<std::mutex> lock(mu_);
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  pending_sites_.clear();
  pending_stacks_.clear();
  sites_.clear();
  OpenLocked(base_path_ + "." + std::to_string(getpid()));
  if (fd_ < 0) return;
  // The child's log starts with what the child inherited: classes, context names, live lock
  // instances, and the locks its only thread holds.
  const ThreadState* self = nullptr;
  (void)self;
  for (const ClassDef& c : classes_) {
    logfmt::Event e;
    e.type = logfmt::RecordType::kClassDef;
    e.class_id = c.cls;
    e.subclass = c.subclass;
    e.text = c.identity;
    e.text2 = c.name;
    Put(e);
  }
  for (const auto& [ctx, name] : contexts_) {
    logfmt::Event e;
    e.type = logfmt::RecordType::kContextName;
    e.context = ctx;
    e.text = name;
    Put(e);
  }
  const ThreadKey me = tls.record && tls.record->state ? tls.record->state->key() : 0;
  for (const auto& [lock_id, cls] : instances_) {
    logfmt::Event e;
    e.type = logfmt::RecordType::kLockInit;
    e.thread = me;
    e.lock = lock_id;
    e.class_id = cls;
    Put(e);
  }
  std::vector<AcquireRequest> mine;
  if (auto it = held_.find(me); it != held_.end()) mine = it->second;
  held_.clear();
  held_[me] = mine;
  for (const AcquireRequest& r : mine) {
    logfmt::Event e;
    e.type = logfmt::RecordType::kAcquire;
    e.thread = me;
    e.lock = r.lock;
    e.mode = r.mode;
    e.trylock = r.trylock;
    e.subclass = r.subclass;
    e.nest_lock = r.nest_lock;
    e.ip = r.ip;
    e.stack = r.stack;
    Put(e);
  }
}

}  // namespace lockgraph::runtime_internal
