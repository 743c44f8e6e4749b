// The lock-log recorder: one file per process, CRC-checked blocks from the log_format codec,
// filled per thread without a lock (see recorder.h).
#include "recorder.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include <fmt/format.h>

#include "internal.h"

namespace lockgraph::runtime_internal {
namespace {

constexpr std::size_t kDefsBlockCapacity = 64 * 1024;  // named limit: bytes per definitions block

constexpr std::size_t kMaxRecordPath = 4096;  // named limit: PATH_MAX
constexpr int kMaxNameAttempts = 100;         // named limit: fallback names tried per process

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

// The program's name for log file names: argv[0]'s last component, restricted to a portable
// character set and bounded (it is also untrusted).
std::string ProgramName() {
  std::string cmdline = ReadSelfFile("/proc/self/cmdline");
  std::string argv0 = cmdline.substr(0, cmdline.find('\0'));
  if (auto slash = argv0.rfind('/'); slash != std::string::npos) argv0.erase(0, slash + 1);
  std::string out;
  for (char c : argv0) {
    if (out.size() >= 64) break;  // named limit: program part of a log file name
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-' || c == '+' || (c == '.' && !out.empty());
    out.push_back(ok ? c : '_');
  }
  return out.empty() ? std::string("process") : out;
}

// Creates a new log file. Never follows a symlink at the last component and never writes into
// an existing regular file (O_CREAT | O_EXCL | O_NOFOLLOW); mode 0666 less the umask. An
// existing character device or FIFO (/dev/null, /dev/full, a named pipe read by another tool)
// is opened for writing as it is. kExists: pick another name.
enum class OpenResult { kOpened, kExists, kFailed };
OpenResult CreateLogFile(const std::string& path, int* fd) {
  *fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666);
  if (*fd >= 0) return OpenResult::kOpened;
  if (errno != EEXIST) return OpenResult::kFailed;
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0 || !(S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode))) {
    return OpenResult::kExists;
  }
  *fd = open(path.c_str(), O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
  if (*fd < 0) return OpenResult::kFailed;
  // Checked on the open file: the path may have been replaced since lstat.
  if (fstat(*fd, &st) != 0 || !(S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode))) {
    close(*fd);
    *fd = -1;
    return OpenResult::kExists;
  }
  const int flags = fcntl(*fd, F_GETFL);
  if (flags >= 0) fcntl(*fd, F_SETFL, flags & ~O_NONBLOCK);
  return OpenResult::kOpened;
}

}  // namespace

RecordBuffer::RecordBuffer(ThreadKey k) : key(k), enc(data, sizeof data, /*with_seq=*/true) {
  committed.store(enc.size(), std::memory_order_relaxed);
  held.Reserve();
}

void RecordBuffer::Reset(ThreadKey k) {
  key = k;
  enc.Reset();
  committed.store(enc.size(), std::memory_order_release);
  std::memset(sites, 0, sizeof sites);
  held.clear();
}

__thread RecordBuffer* t_record_buffer __attribute__((tls_model("initial-exec"))) = nullptr;

namespace {
__thread bool t_snapshot __attribute__((tls_model("initial-exec"))) = false;
}  // namespace

Recorder::Recorder() = default;
Recorder::~Recorder() = default;

void Recorder::Start(const std::string& path, const ReportSymbolizer* symbolizer) {
  if (path.empty()) return;
  // The path comes from the environment (LOCKGRAPH_OPTIONS): untrusted. It is only ever used as
  // a file name (never as a format string), bounded, and free of control characters.
  if (path.size() > kMaxRecordPath) {
    LogWarning(fmt::format("the record path is too long ({} bytes, at most {}); recording is off",
                           path.size(), kMaxRecordPath));
    return;
  }
  for (char c : path) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      LogWarning("the record path contains a control character; recording is off");
      return;
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  symbolizer_ = symbolizer;
  defs_buffer_.resize(kDefsBlockCapacity);
  defs_ = std::make_unique<logfmt::BlockEncoder>(defs_buffer_.data(), defs_buffer_.size(), true);
  // A directory (an existing one, or a path ending in '/'): every process writes its own
  // DIR/<program>.<pid>.lglog.
  struct stat st {};
  directory_mode_ = path.back() == '/' || (stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode));
  base_path_ = path;
  if (directory_mode_) {
    while (base_path_.size() > 1 && base_path_.back() == '/') base_path_.pop_back();
    if (mkdir(base_path_.c_str(), 0777) != 0 && errno != EEXIST) {
      LogWarning(fmt::format("cannot record to the directory '{}': {}; recording is off",
                             base_path_, std::strerror(errno)));
      return;
    }
    OpenLocked(/*root=*/false);
    return;
  }
  // The process `lockgraph run` started (or the first one under a plain LD_PRELOAD) writes
  // `path`; exec'd descendants see another pid in LOCKGRAPH_ROOT_PID and write `path.<pid>`.
  const char* root = getenv("LOCKGRAPH_ROOT_PID");
  const std::string self = std::to_string(getpid());
  bool is_root = true;
  if (root == nullptr || *root == '\0') {
    setenv("LOCKGRAPH_ROOT_PID", self.c_str(), 1);
  } else if (self != root) {
    is_root = false;
  }
  OpenLocked(is_root);
}

// The name this process logs to, and the fallbacks when a file of that name already exists.
std::string Recorder::FileName(bool root, int attempt) const {
  const std::string pid = std::to_string(getpid());
  if (directory_mode_) {
    std::string name = base_path_ + "/" + ProgramName() + "." + pid;
    if (attempt > 0) name += "." + std::to_string(attempt);
    return name + ".lglog";
  }
  // FILE (root), FILE.<pid> (children, and a root whose FILE exists), FILE.<pid>.<n>.
  if (root && attempt == 0) return base_path_;
  if (root) --attempt;
  std::string name = base_path_ + "." + pid;
  if (attempt > 0) name += "." + std::to_string(attempt);
  return name;
}

void Recorder::OpenLocked(bool root) {
  pid_ = getpid();
  fd_ = -1;
  std::string first;
  for (int attempt = 0; attempt < kMaxNameAttempts; ++attempt) {
    const std::string name = FileName(root, attempt);
    if (attempt == 0) first = name;
    const OpenResult r = CreateLogFile(name, &fd_);
    if (r == OpenResult::kOpened) {
      path_ = name;
      if (attempt > 0) {
        // The name the user gave (FILE for the first process) deserves a warning; the per-process
        // names of children and directory logs are taken in turn as a matter of course.
        const std::string text = fmt::format(
            "'{}' already exists and is not overwritten; recording to '{}'", first, name);
        if (root && !directory_mode_) LogWarning(text);
        else LogInfo(text);
      }
      break;
    }
    if (r == OpenResult::kFailed) {
      LogWarning(fmt::format("cannot record to '{}': {}; recording is off", name,
                             std::strerror(errno)));
      enabled_.store(false);
      return;
    }
  }
  if (fd_ < 0) {
    LogWarning(fmt::format("cannot record to '{}': it and {} other names exist; recording is off",
                           first, kMaxNameAttempts - 1));
    enabled_.store(false);
    return;
  }
  write_failed_ = false;
  closed_ = false;
  WriteHeaderLocked();
  enabled_.store(true);
  LogInfo(fmt::format("recording lock events to '{}'", path_));
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
  WriteLocked({reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()});
}

RecordBuffer* Recorder::Buffer(ThreadKey key) {
  RecordBuffer* b = t_record_buffer;
  if (__builtin_expect(b != nullptr, 1)) return b;
  return NewBuffer(key);
}

RecordBuffer* Recorder::NewBuffer(ThreadKey key) {
  std::lock_guard<std::mutex> lock(mu_);
  RecordBuffer* b = free_;
  if (b != nullptr) {
    free_ = b->next;
    b->Reset(key);
  } else {
    b = new (std::nothrow) RecordBuffer(key);
    if (b == nullptr) return nullptr;
  }
  b->next = buffers_;
  buffers_ = b;
  t_record_buffer = b;
  return b;
}

// A full-path event: no lock, the encoder writing into this thread's block (the caller took
// the stamp, a fresh band).
void Recorder::Put(RecordBuffer* b, logfmt::Event& event) {
  if (__builtin_expect(open_pending_.load(std::memory_order_relaxed), 0) && !t_snapshot) {
    OpenPendingSlow();
  }
  if (event.ip != 0) NoteSite(b, event.ip);
  if (__builtin_expect(!b->enc.Put(event), 0)) {
    FlushBuffer(b);
    if (!b->enc.Put(event)) {
      LogWarning("recorder: a record larger than a block was dropped");
      return;
    }
  }
  b->committed.store(b->enc.size(), std::memory_order_release);
}

// The same for the fixed-layout acquire and release records: `put` encodes without an Event.
template <typename PutFn>
void Recorder::PutWith(RecordBuffer* b, std::uint64_t ip, PutFn put) {
  if (__builtin_expect(open_pending_.load(std::memory_order_relaxed), 0) && !t_snapshot) {
    OpenPendingSlow();
  }
  if (ip != 0) NoteSite(b, ip);
  if (__builtin_expect(!put(), 0)) {
    FlushBuffer(b);
    if (!put()) return;
  }
  b->committed.store(b->enc.size(), std::memory_order_release);
}

// A call site this thread has not used before is handed to the recorder, which symbolizes it
// before the block using it is written.
void Recorder::NoteSite(RecordBuffer* b, std::uint64_t ip) {
  std::uint64_t& slot = b->sites[RecordBuffer::SiteSlot(ip)];
  if (__builtin_expect(slot == ip, 1)) return;
  slot = ip;
  std::lock_guard<std::mutex> lock(mu_);
  if (sites_.insert(ip).second) pending_sites_.push_back(ip);
}

void Recorder::FlushBuffer(RecordBuffer* b) {
  std::lock_guard<std::mutex> lock(mu_);
  WriteBufferLocked(b, /*partial=*/false);
  b->enc.Reset();
  b->committed.store(b->enc.size(), std::memory_order_release);
}

// Writes the definitions the block may use, then the block. `partial`: the buffer belongs to
// another thread that may still be adding records; its complete records are copied and sealed
// (Finish only: nothing is written for the buffer after that).
void Recorder::WriteBufferLocked(RecordBuffer* b, bool partial) {
  if (closed_) return;
  if (fd_ < 0 && open_pending_.load(std::memory_order_relaxed)) {
    open_pending_.store(false, std::memory_order_relaxed);
    OpenLocked(/*root=*/false);
  }
  if (fd_ < 0) return;
  ResolvePendingLocked();
  FlushDefsLocked();
  if (fd_ < 0) return;
  if (!partial) {
    if (!b->enc.empty()) WriteLocked(b->enc.Finish(block_number_++));
    return;
  }
  const std::size_t n = b->committed.load(std::memory_order_acquire);
  if (n <= logfmt::kBlockHeaderSize + 1) return;  // the header and the flags byte: no records
  std::vector<std::uint8_t> copy(b->data, b->data + n);
  WriteLocked(logfmt::SealBlock(copy.data(), copy.size(), block_number_++));
}

void Recorder::WriteLocked(std::span<const std::uint8_t> bytes) {
  if (fd_ < 0) return;
  WriteAll(fd_, bytes.data(), bytes.size(), &write_failed_);
  if (!write_failed_) return;
  LogWarning(fmt::format("recorder: writing '{}' failed: {}; recording is off", path_,
                         std::strerror(errno)));
  close(fd_);
  fd_ = -1;
  closed_ = true;
  enabled_.store(false);
  InvalidateFastPath();  // threads validated for the recorded fast path take the plain one
}

void Recorder::PutDefLocked(logfmt::Event& event) {
  if (defs_->Put(event)) return;
  if (fd_ < 0 && open_pending_.load(std::memory_order_relaxed)) {
    open_pending_.store(false, std::memory_order_relaxed);
    OpenLocked(/*root=*/false);
  }
  FlushDefsLocked();
  if (!defs_->Put(event)) LogWarning("recorder: a definition larger than a block was dropped");
}

void Recorder::FlushDefsLocked() {
  if (fd_ < 0 || closed_ || defs_->empty()) return;
  WriteLocked(defs_->Finish(block_number_++));
  defs_->Reset();
}

void Recorder::ResolvePendingLocked() {
  if (symbolizer_ == nullptr) return;
  if (pending_sites_.empty() && pending_stacks_.empty()) return;
  // Symbolize into owned strings first: the events below hold views into them.
  std::vector<std::pair<std::uint64_t, std::string>> sites;
  for (std::uint64_t ip : pending_sites_) {
    std::string text;
    symbolizer_->AppendCallSite(ip, &text, &locations_);
    sites.emplace_back(ip, std::move(text));
  }
  pending_sites_.clear();
  for (auto& [ip, text] : sites) {
    logfmt::Event e;
    e.type = logfmt::RecordType::kCallSiteDef;
    e.ip = ip;
    e.text = text;
    PutDefLocked(e);
  }
  auto stacks = std::move(pending_stacks_);
  pending_stacks_.clear();
  for (auto& [id, frames] : stacks) {
    // Exactly the lines a live report prints for this stack (offsets, inlined frames, the
    // signal trampoline folded into the handler, nothing below main).
    std::vector<std::string> texts = symbolizer_->FrameLines(frames, &locations_);
    if (texts.empty()) texts.emplace_back("(no stack)");
    logfmt::Event e;
    e.type = logfmt::RecordType::kStackDef;
    e.stack = id;
    for (const auto& t : texts) e.frames.push_back(t);
    PutDefLocked(e);
  }
}

// A forked child's log is created at its first event: a child that only execs (fork + exec,
// system(), posix_spawn) leaves no file behind, and its exec'd image can have the name.
void Recorder::OpenPendingSlow() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!open_pending_.load(std::memory_order_relaxed)) return;
  open_pending_.store(false, std::memory_order_relaxed);
  OpenLocked(/*root=*/false);
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
  PutDefLocked(e);
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
  PutDefLocked(e);
}

void Recorder::StackDefined(StackId id, const std::uint64_t* frames, int count) {
  if (!enabled() || id == kNoStack) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (!stacks_defined_.insert(id).second) return;  // defined in this log already
  pending_stacks_.emplace_back(id, std::vector<std::uint64_t>(frames, frames + count));
}

void Recorder::ThreadStart(const ThreadState& t) {
  if (!enabled()) return;
  RecordBuffer* b = Buffer(t.key());
  if (b == nullptr) return;
  logfmt::Event e;
  e.type = logfmt::RecordType::kThreadStart;
  e.seq = SlowStamp(b);
  e.thread = t.key();
  e.text = t.name();
  Put(b, e);
}

void Recorder::ThreadExit(const ThreadState& t) {
  if (!enabled()) return;
  RecordBuffer* b = Buffer(t.key());
  if (b == nullptr) return;
  logfmt::Event e;
  e.type = logfmt::RecordType::kThreadExit;
  e.seq = SlowStamp(b);
  e.thread = t.key();
  Put(b, e);
  // The thread's last block goes out now; the buffer is kept for the next thread.
  std::lock_guard<std::mutex> lock(mu_);
  WriteBufferLocked(b, /*partial=*/false);
  for (RecordBuffer** p = &buffers_; *p != nullptr; p = &(*p)->next) {
    if (*p == b) {
      *p = b->next;
      break;
    }
  }
  b->enc.Reset();
  b->committed.store(b->enc.size(), std::memory_order_release);
  b->next = free_;
  free_ = b;
  t_record_buffer = nullptr;
}

void Recorder::LockInit(const ThreadState& t, LockId lock_id, ClassId cls, std::uint64_t ip) {
  if (!enabled()) return;
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    instances_[lock_id] = cls;
  }
  RecordBuffer* b = Buffer(t.key());
  if (b == nullptr) return;
  logfmt::Event e;
  e.type = logfmt::RecordType::kLockInit;
  e.seq = SlowStamp(b);
  e.thread = t.key();
  e.lock = lock_id;
  e.class_id = cls;
  e.ip = ip;
  Put(b, e);
}

void Recorder::LockDestroy(const ThreadState& t, LockId lock_id, std::uint64_t ip,
                           StackId stack) {
  if (!enabled()) return;
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    instances_.erase(lock_id);
  }
  RecordBuffer* b = Buffer(t.key());
  if (b == nullptr) return;
  logfmt::Event e;
  e.type = logfmt::RecordType::kLockDestroy;
  e.seq = SlowStamp(b);
  e.thread = t.key();
  e.lock = lock_id;
  e.ip = ip;
  e.stack = stack;
  Put(b, e);
}

void Recorder::SetClass(LockId lock_id, ClassId cls) {
  if (!enabled()) return;
  {
    std::lock_guard<std::mutex> lock(state_mu_);
    instances_[lock_id] = cls;
  }
  RecordBuffer* b = Buffer(static_cast<ThreadKey>(CurrentTid()));
  if (b == nullptr) return;
  logfmt::Event e;
  e.type = logfmt::RecordType::kLockSetClass;
  e.seq = SlowStamp(b);
  e.lock = lock_id;
  e.class_id = cls;
  Put(b, e);
}

void Recorder::Acquire(const ThreadState& t, const AcquireRequest& req, StackId stack) {
  if (!enabled()) return;
  RecordBuffer* b = Buffer(t.key());
  if (b == nullptr) return;
  b->held.Push({req.lock, req.nest_lock, req.ip, stack, req.mode, req.trylock, req.subclass});
  const std::uint64_t seq = SlowStamp(b);
  const ThreadKey key = t.key();
  PutWith(b, req.ip, [&] {
    return b->enc.PutAcquire(key, seq, req.lock, req.mode, req.trylock, req.subclass,
                             req.nest_lock, req.ip, stack);
  });
}

void HeldList::EraseInnermost(LockId lock) {
  for (std::size_t i = size_; i-- > 0;) {
    if (data_[i].lock == lock) {
      std::copy(data_.get() + i + 1, data_.get() + size_, data_.get() + i);
      --size_;
      return;
    }
  }
}

void HeldList::Grow() {
  const std::size_t cap = cap_ == 0 ? kHeldReserve : 2 * cap_;
  std::unique_ptr<HeldRecord[]> data(new HeldRecord[cap]);
  std::copy(begin(), end(), data.get());
  data_ = std::move(data);
  cap_ = cap;
}

void Recorder::Release(const ThreadState& t, LockId lock_id, std::uint64_t ip) {
  if (!enabled()) return;
  RecordBuffer* b = Buffer(t.key());
  if (b == nullptr) return;
  if (!b->held.empty() && b->held.back().lock == lock_id) b->held.pop_back();
  else b->held.EraseInnermost(lock_id);
  const std::uint64_t seq = SlowStamp(b);
  const ThreadKey key = t.key();
  PutWith(b, ip, [&] { return b->enc.PutRelease(key, seq, lock_id, ip); });
}

void Recorder::Cancel(const ThreadState& t, LockId lock_id) {
  if (!enabled()) return;
  RecordBuffer* b = Buffer(t.key());
  if (b == nullptr) return;
  b->held.EraseInnermost(lock_id);
  logfmt::Event e;
  e.type = logfmt::RecordType::kCancelAcquire;
  e.seq = SlowStamp(b);
  e.thread = t.key();
  e.lock = lock_id;
  Put(b, e);
}

#define LG_CONTEXT_EVENT(Method, Type)                              \
  void Recorder::Method(const ThreadState& t, ContextId context) { \
    if (!enabled()) return;                                         \
    RecordBuffer* b = Buffer(t.key());                              \
    if (b == nullptr) return;                                       \
    logfmt::Event e;                                                \
    e.type = logfmt::RecordType::Type;                              \
    e.seq = SlowStamp(b);                                           \
    e.thread = t.key();                                             \
    e.context = context;                                            \
    Put(b, e);                                                      \
  }
LG_CONTEXT_EVENT(EnterContext, kEnterContext)
LG_CONTEXT_EVENT(ExitContext, kExitContext)
LG_CONTEXT_EVENT(DisableContext, kDisableContext)
LG_CONTEXT_EVENT(EnableContext, kEnableContext)
#undef LG_CONTEXT_EVENT

void Recorder::SetDisabledMask(const ThreadState& t, ContextMask mask) {
  if (!enabled()) return;
  RecordBuffer* b = Buffer(t.key());
  if (b == nullptr) return;
  logfmt::Event e;
  e.type = logfmt::RecordType::kSetDisabledMask;
  e.seq = SlowStamp(b);
  e.thread = t.key();
  e.mask = mask;
  Put(b, e);
}

void Recorder::Finish() {
  if (!enabled()) return;
  std::lock_guard<std::mutex> lock(mu_);
  // A forked child that recorded nothing of its own (it only exec'd or exited) leaves no log.
  if (closed_ || fd_ < 0) return;
  // Every thread's complete records: this thread's whole block, other threads' up to their
  // last complete record (they may still be running).
  for (RecordBuffer* b = buffers_; b != nullptr; b = b->next) {
    WriteBufferLocked(b, /*partial=*/b != t_record_buffer);
    if (b == t_record_buffer) {
      b->enc.Reset();
      b->committed.store(b->enc.size(), std::memory_order_release);
    }
  }
  ResolvePendingLocked();
  logfmt::Event e;
  e.type = logfmt::RecordType::kRunEnd;
  e.seq = SlowStamp(nullptr);
  PutDefLocked(e);
  FlushDefsLocked();
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
  closed_ = true;
  enabled_.store(false);
  InvalidateFastPath();  // threads validated for the recorded fast path take the plain one
}

// Only the calling thread's block: exec ends the other threads, and if exec fails their buffers
// are written later as usual (writing their complete records now as well would write them twice).
void Recorder::FlushBeforeExec() {
  if (!enabled()) return;
  if (open_pending_.load(std::memory_order_relaxed)) return;  // nothing of its own recorded
  RecordBuffer* b = t_record_buffer;
  if (b == nullptr) return;
  FlushBuffer(b);
}

// Fork: the child must not inherit a half-used mutex. Other threads are outside lockgraph here
// (runtime BeforeFork), so their buffers are not being written.
void Recorder::BeforeFork() {
  if (!enabled()) return;
  mu_.lock();
  state_mu_.lock();
}

void Recorder::AfterForkParent() {
  if (!enabled()) return;
  state_mu_.unlock();
  mu_.unlock();
}

void Recorder::AfterForkChild() {
  if (!enabled()) return;
  new (&mu_) std::mutex;
  new (&state_mu_) std::mutex;
  RecordBuffer* me = t_record_buffer;
  const ThreadKey key =
      me != nullptr ? me->key
                    : (tls.record && tls.record->state ? tls.record->state->key() : 0);
  std::vector<HeldRecord> held;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
    closed_ = false;
    write_failed_ = false;
    pending_sites_.clear();
    pending_stacks_.clear();
    sites_.clear();
    stacks_defined_.clear();  // the child's log defines the stacks it uses again
    block_number_ = 0;
    defs_->Reset();
    // The other threads do not exist here; their unwritten events are the parent's.
    for (RecordBuffer* b = buffers_; b != nullptr;) {
      RecordBuffer* next = b->next;
      if (b != me) {
        b->next = free_;
        free_ = b;
      }
      b = next;
    }
    buffers_ = me;
    if (me != nullptr) {
      held.assign(me->held.begin(), me->held.end());
      me->next = nullptr;
      me->Reset(key);  // the unwritten block is the parent's
    }
    open_pending_.store(true, std::memory_order_relaxed);
    // The child's log starts with what the child inherited: classes, context names, live lock
    // instances, and the locks its only thread holds. They wait in the buffers until the child
    // records its first event of its own.
    for (const ClassDef& c : classes_) {
      logfmt::Event e;
      e.type = logfmt::RecordType::kClassDef;
      e.class_id = c.cls;
      e.subclass = c.subclass;
      e.text = c.identity;
      e.text2 = c.name;
      PutDefLocked(e);
    }
    for (const auto& [ctx, name] : contexts_) {
      logfmt::Event e;
      e.type = logfmt::RecordType::kContextName;
      e.context = ctx;
      e.text = name;
      PutDefLocked(e);
    }
  }
  RecordBuffer* b = Buffer(key);
  if (b == nullptr) return;
  t_snapshot = true;
  for (const auto& [lock_id, cls] : instances_) {
    logfmt::Event e;
    e.type = logfmt::RecordType::kLockInit;
    e.seq = SlowStamp(b);
    e.thread = key;
    e.lock = lock_id;
    e.class_id = cls;
    Put(b, e);
  }
  for (const HeldRecord& r : held) {
    b->held.Push(r);
    logfmt::Event e;
    e.type = logfmt::RecordType::kAcquire;
    e.seq = SlowStamp(b);
    e.thread = key;
    e.lock = r.lock;
    e.mode = r.mode;
    e.trylock = r.trylock;
    e.subclass = r.subclass;
    e.nest_lock = r.nest_lock;
    e.ip = r.ip;
    e.stack = r.stack;
    Put(b, e);
  }
  t_snapshot = false;
}

}  // namespace lockgraph::runtime_internal
