// The lock-log recorder (--record): engine events encoded with the log_format codec into
// CRC-checked blocks, one file per process.
//
// Each thread fills its own block buffer without a lock; every event is stamped from one
// process-wide counter (an atomic increment), so the analyzer replays the threads' blocks merged
// in the order the events happened. A full buffer is sealed and written with one write(2) under
// the recorder's mutex (once per block, not per event), after the definitions (classes, stacks,
// call sites) it refers to, so kill -9 loses at most the blocks being filled.
#ifndef LOCKGRAPH_RUNTIME_RECORDER_H_
#define LOCKGRAPH_RUNTIME_RECORDER_H_

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

struct RecordBuffer;  // one thread's block buffer (recorder.cpp)

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
  std::uint64_t NextSeq() { return seq_.fetch_add(1, std::memory_order_relaxed) + 1; }

  std::atomic<bool> enabled_{false};
  std::atomic<bool> open_pending_{false};  // forked child: the log is created at its first event
  std::atomic<std::uint64_t> seq_{0};
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
  std::vector<std::pair<StackId, std::vector<std::uint64_t>>> pending_stacks_;
  std::vector<std::uint64_t> pending_sites_;
  std::unordered_set<std::uint64_t> sites_;

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
