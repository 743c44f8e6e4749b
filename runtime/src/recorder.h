// The lock-log recorder (--record): engine events encoded with the log_format codec into
// CRC-checked blocks, one file per process.
//
// Each thread fills its own block buffer without a lock. Every event carries a stamp, so the
// analyzer replays the threads' blocks merged in an order the live engine could have seen: the
// engine's full-path events take a fresh "band" from one process-wide epoch (an atomic
// increment), its cached steps (the shim's fast path) a stamp inside the current band from a
// plain read of the epoch and the thread's own last stamp, with no shared write (see "Band
// stamps" below and docs/log-format.md "Ordering"). A full buffer is sealed and written with one
// write(2) under the recorder's mutex (once per block, not per event), after the definitions
// (classes, stacks, call sites) it refers to, so kill -9 loses at most the blocks being filled.
#ifndef LOCKGRAPH_RUNTIME_RECORDER_H_
#define LOCKGRAPH_RUNTIME_RECORDER_H_

#include <sys/single_threaded.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "lockgraph/engine.h"
#include "lockgraph/finding.h"
#include "lockgraph/log_format.h"
#include "symbolize.h"

namespace lockgraph::runtime_internal {

// Named limit: bytes per thread block. A block of compact records (one byte per event in a loop's
// steady state) decodes to 40 bytes per event in the analyzer's pipeline, so 8 KiB keeps a
// decoded block near the 0.3 MiB a 32 KiB block of 4.5-byte records took before them.
inline constexpr std::size_t kThreadBlockCapacity = 8 * 1024;
inline constexpr std::size_t kSiteCacheSize = 256;  // call sites a thread remembers as known
inline constexpr std::size_t kHeldReserve = 32;     // held-list entries allocated at first
// Band stamps: a stamp is epoch << kBandBits | offset. Full-path events take offset 0 of a fresh
// epoch; a thread's cached steps take offsets 1 .. 2^kBandBits - 1 of the epoch they read, and
// the thread opens a fresh epoch itself after that many in one band (one atomic increment per
// 1,023 events at worst). A band jump costs two or three bytes of stamp delta once, where a
// stamp that only counts costs one.
inline constexpr int kBandBits = 10;

// A lock the thread holds, as a forked child's log repeats it.
struct HeldRecord {
  LockId lock;
  LockId nest_lock;
  std::uint64_t ip;
  StackId stack;
  AcquireMode mode;
  bool trylock;
  std::uint8_t subclass;
};

// A thread's held locks in acquisition order, as its recorded events left them. The inline
// path pushes and pops without a call; Push grows the array (the out-of-line path only).
class HeldList {
 public:
  bool empty() const { return size_ == 0; }
  bool full() const { return size_ == cap_; }
  std::size_t size() const { return size_; }
  const HeldRecord* begin() const { return data_.get(); }
  const HeldRecord* end() const { return data_.get() + size_; }
  HeldRecord& back() { return data_[size_ - 1]; }
  void pop_back() { --size_; }
  void clear() { size_ = 0; }
  void PushUnchecked(const HeldRecord& r) { data_[size_++] = r; }  // !full()
  void Push(const HeldRecord& r) {
    if (full()) Grow();
    PushUnchecked(r);
  }
  // Removes the innermost entry of `lock`, if any.
  void EraseInnermost(LockId lock);
  void Reserve() {
    if (cap_ == 0) Grow();
  }

 private:
  void Grow();
  std::unique_ptr<HeldRecord[]> data_;
  std::size_t size_ = 0, cap_ = 0;
};

// One thread's block buffer. Only its thread writes records into it; the committed size says
// how much of the block holds complete records, for Finish() running on another thread.
struct RecordBuffer {
  explicit RecordBuffer(ThreadKey k);
  void Reset(ThreadKey k);
  // The inline path may append a lock record at `ip`: the call site is known to the recorder,
  // the block's current thread is this buffer's (so no thread switch is due) and there is room.
  bool ReadyFor(std::uint64_t ip) const {
    return sites[SiteSlot(ip)] == ip && enc.ReadyForLockRecord(key);
  }
  // The multiply of logfmt::CompactSlot (its top 6 bits of these 8), computed once for both.
  static std::size_t SiteSlot(std::uint64_t ip) { return (ip * 0x9e3779b97f4a7c15ull) >> 56; }
  static_assert(kSiteCacheSize == 256);

  ThreadKey key;
  std::uint8_t data[kThreadBlockCapacity];
  logfmt::BlockEncoder enc;
  std::atomic<std::size_t> committed{0};
  std::uint64_t sites[kSiteCacheSize] = {};  // call sites already handed to the recorder
  HeldList held;                              // this thread's held locks (for fork)
  std::uint64_t last_seq = 0;                 // the thread's last stamp (Recorder::FastStamp)
  RecordBuffer* next = nullptr;               // registry (under the recorder's mutex)
};

// The calling thread's buffer, or null before its first recorded event.
extern __thread RecordBuffer* t_record_buffer __attribute__((tls_model("initial-exec")));

class Recorder {
 public:
  Recorder();
  ~Recorder();

  // Opens the log for this process: `path` for the process that `lockgraph run` started (or a
  // process run with LD_PRELOAD directly), `path.<pid>` for forked and exec'd children; when
  // `path` is a directory (or ends in '/'), `path/<program>.<pid>.lglog` for every process.
  // An existing file is never overwritten (the next free name is taken) and a symlink is never
  // followed.
  void Start(const std::string& path, const ReportSymbolizer* symbolizer);
  bool enabled() const { return enabled_.load(std::memory_order_relaxed); }
  // A forked child whose log is still to be created (at its first event, by the full hook):
  // ValidateFastPath refuses the recorded fast path meanwhile, so that path need not check.
  // Set only in AfterForkChild, before the runtime invalidates the fast path.
  bool open_pending() const { return open_pending_.load(std::memory_order_relaxed); }
  // The process the open log belongs to.
  int pid() const { return pid_; }

  // Definitions.
  void ClassDefined(ClassId cls, std::uint8_t subclass, std::string_view identity,
                    std::string_view name);
  void ContextNamed(ContextId context, std::string_view name);
  void StackDefined(StackId id, const std::uint64_t* frames, int count);

  // Events of the calling thread (`t` is the calling thread's state).
  void ThreadStart(const ThreadState& thread);
  void ThreadExit(const ThreadState& thread);
  void LockInit(const ThreadState& t, LockId lock, ClassId cls, std::uint64_t ip);
  // `stack`: the stack the engine captured for the destroy (kNoStack if none).
  void LockDestroy(const ThreadState& t, LockId lock, std::uint64_t ip, StackId stack = kNoStack);
  void SetClass(LockId lock, ClassId cls);
  void Acquire(const ThreadState& t, const AcquireRequest& req, StackId stack);
  void Release(const ThreadState& t, LockId lock, std::uint64_t ip);
  // The shim's fast path with recording on, around the engine's cached step (TryAcquireCached /
  // TryReleaseInnermost). FastBufferForAcquire / FastBufferForRelease, before the step: the
  // calling thread's block when it can take the record inline, else null (the full hook must
  // run then, which records through Acquire / Release). Inline means: the thread has a block
  // whose current thread is its own, with room for a lock record, the call site already known,
  // room in the held list (a release: its innermost entry is the lock); no log still to open
  // (ValidateFastPath checks that, see open_pending()).
  // Then PutFastAcquire / PutFastRelease write the record, the same bytes Acquire / Release
  // would, with no call, no lock and no allocation.
  RecordBuffer* FastBufferForAcquire(std::uint64_t ip) const {
    RecordBuffer* b = t_record_buffer;
    if (b == nullptr || !b->ReadyFor(ip) || b->held.full()) return nullptr;
    return b;
  }
  RecordBuffer* FastBufferForRelease(LockId lock, std::uint64_t ip) const {
    RecordBuffer* b = t_record_buffer;
    if (b == nullptr || !b->ReadyFor(ip) || b->held.empty() || b->held.back().lock != lock) {
      return nullptr;
    }
    return b;
  }
  [[gnu::always_inline]] void PutFastAcquire(RecordBuffer* b, LockId lock, AcquireMode mode,
                                             bool trylock, std::uint64_t ip) {
    b->held.PushUnchecked({lock, kNoLock, ip, kNoStack, mode, trylock, 0});
    b->enc.PutPlainAcquire(FastStamp(b), lock, mode, trylock, ip);
    b->committed.store(b->enc.size(), std::memory_order_release);
  }
  [[gnu::always_inline]] void PutFastRelease(RecordBuffer* b, LockId lock, std::uint64_t ip) {
    b->held.pop_back();
    b->enc.PutPlainRelease(FastStamp(b), lock, ip);
    b->committed.store(b->enc.size(), std::memory_order_release);
  }
  void Cancel(const ThreadState& t, LockId lock);
  void EnterContext(const ThreadState& t, ContextId context);
  void ExitContext(const ThreadState& t, ContextId context);
  void DisableContext(const ThreadState& t, ContextId context);
  void EnableContext(const ThreadState& t, ContextId context);
  void SetDisabledMask(const ThreadState& t, ContextMask mask);

  // Flushes everything buffered (every thread's buffer up to its last complete record) and
  // writes kRunEnd; recording stops.
  void Finish();
  // Before exec (which runs no exit handler): writes the calling thread's block, so what a forked
  // child recorded between fork and exec is in its log. Nothing when the process has recorded
  // nothing of its own yet (fork + exec leaves no file). Recording goes on if exec fails.
  void FlushBeforeExec();
  void BeforeFork();
  void AfterForkParent();
  void AfterForkChild();

 private:
  RecordBuffer* Buffer(ThreadKey key);            // the calling thread's buffer
  RecordBuffer* NewBuffer(ThreadKey key);
  void Put(RecordBuffer* b, logfmt::Event& event);
  void NoteSite(RecordBuffer* b, std::uint64_t ip);
  template <typename PutFn>
  void PutWith(RecordBuffer* b, std::uint64_t ip, PutFn put);
  void FlushBuffer(RecordBuffer* b);               // takes mu_
  void WriteBufferLocked(RecordBuffer* b, bool partial);
  void PutDefLocked(logfmt::Event& event);
  void FlushDefsLocked();
  void ResolvePendingLocked();
  void WriteLocked(std::span<const std::uint8_t> bytes);
  void WriteHeaderLocked();
  void OpenLocked(bool root);
  void OpenPendingSlow();
  std::string FileName(bool root, int attempt) const;
  // --- Band stamps ---
  // Full-path events (everything not appended by PutFastAcquire / PutFastRelease: slow-path
  // acquisitions and releases, init, destroy, set-class, cancel, contexts, thread start and
  // exit, the fork snapshot, the end of the run) stamp NewBand(): a fresh epoch e, stamp
  // e << kBandBits, unique and totally ordered with every other full-path stamp as the
  // process-wide counter was. A cached step (the shim's fast path, which changes nothing but its
  // own thread's held stack) reads the epoch g without writing it and stamps
  // max(last + 1, (g << kBandBits) + 1), inside band g. So a cached step that happens after a
  // full-path event (it read the epoch that event's increment wrote, or a later one) stamps above
  // it, one that happens before it stamps below it (the increment reads at least the g the step
  // read), and a thread's stamps increase. Cached steps of different threads inside one band may
  // tie or merge in any order: each touches only its own thread's held stack, so any merge of
  // them leaves the engine in the same state (docs/log-format.md "Ordering" has the argument).
  //
  // The increment: while the process has only one thread (glibc's __libc_single_threaded,
  // cleared by pthread_create before the second thread exists and covering the threads glibc
  // starts itself), an xadd without the lock prefix: one instruction, so atomic with respect to a
  // signal handler recording on the same thread, which is all that can interleave (glibc's own
  // single-thread locks rely on the same). A new thread sees every epoch taken before
  // pthread_create; from then on every thread uses `lock xadd`.
  std::uint64_t NewBand() {
#if defined(__x86_64__)
    if (__libc_single_threaded) {
      std::uint64_t v = 1;
      asm volatile("xaddq %0, %1" : "+r"(v), "+m"(epoch_.value));
      return (v + 1) << kBandBits;
    }
#endif
    return (__atomic_fetch_add(&epoch_.value, 1, __ATOMIC_RELAXED) + 1) << kBandBits;
  }
  // A full-path event's stamp; `b`: the thread's buffer (null for the end-of-run record).
  std::uint64_t SlowStamp(RecordBuffer* b) {
    const std::uint64_t s = NewBand();
    if (b != nullptr) b->last_seq = s;
    return s;
  }
  // A cached step's stamp: a plain load of the epoch (its line is written only by full-path
  // events), no shared write. `last` < (g + 1) << kBandBits always holds here (the thread's own
  // stamps came from epochs it has seen), so only a thread that took 2^kBandBits - 1 steps in
  // one band reaches the next band's first stamp and opens a band itself.
  [[gnu::always_inline]] std::uint64_t FastStamp(RecordBuffer* b) {
    const std::uint64_t floor = __atomic_load_n(&epoch_.value, __ATOMIC_RELAXED) << kBandBits;
    std::uint64_t s = b->last_seq + 1;
    if (s <= floor) s = floor + 1;
    if (__builtin_expect(s - floor >= (std::uint64_t{1} << kBandBits), 0)) s = NewBand();
    b->last_seq = s;
    return s;
  }

  std::atomic<bool> enabled_{false};
  std::atomic<bool> open_pending_{false};  // forked child: the log is created at its first event
  // The epoch of band stamps, alone on its cache line: full-path events increment it (through
  // NewBand: atomic builtins or a one-instruction xadd), cached steps only read it, so in the
  // steady state the line stays shared in every core's cache.
  struct alignas(64) EpochWord {
    std::uint64_t value = 0;
  };
  EpochWord epoch_;
  std::mutex mu_;  // the file, the definitions buffer, the registry of thread buffers
  std::string base_path_;  // FILE, or DIR in directory mode
  bool directory_mode_ = false;
  std::string path_;
  int fd_ = -1;
  int pid_ = 0;
  bool closed_ = false;
  bool write_failed_ = false;
  const ReportSymbolizer* symbolizer_ = nullptr;
  std::uint32_t block_number_ = 0;

  // Definitions (classes, context names, stacks, call sites): a block of their own, written
  // before any thread block that may refer to them.
  std::vector<std::uint8_t> defs_buffer_;
  std::unique_ptr<logfmt::BlockEncoder> defs_;

  // Thread buffers: a registry for Finish and fork; a reused buffer of an exited thread.
  RecordBuffer* buffers_ = nullptr;
  RecordBuffer* free_ = nullptr;

  // Raw stacks and call sites waiting to be symbolized (outside the engine's locks).
  // Each stack id and each call site is symbolized once per log: the engine hands over a stack
  // every time it captures one (the depot's id of an equal stack is the same), and the frames of
  // different stacks are mostly the same few return addresses, so their locations are cached.
  std::vector<std::pair<StackId, std::vector<std::uint64_t>>> pending_stacks_;
  std::vector<std::uint64_t> pending_sites_;
  std::unordered_set<std::uint64_t> sites_;
  std::unordered_set<StackId> stacks_defined_;
  ReportSymbolizer::LocationCache locations_;

  // What a forked child's log must repeat: definitions and live instances (the forker's held
  // locks are in its buffer). Init, destroy and set-class are not the steady state; they update
  // this table under state_mu_.
  struct ClassDef {
    ClassId cls;
    std::uint8_t subclass;
    std::string identity, name;
  };
  std::vector<ClassDef> classes_;
  std::unordered_map<ContextId, std::string> contexts_;
  std::mutex state_mu_;
  std::unordered_map<LockId, ClassId> instances_;
};

}  // namespace lockgraph::runtime_internal

#endif  // LOCKGRAPH_RUNTIME_RECORDER_H_
