// The lock-log recorder (--record): engine events encoded with the log_format codec into
// CRC-checked blocks, one file per process. One process-wide buffer under a mutex keeps the file
// in the order the engine saw the events (so no sequence stamps); a block is written with one
// write(2) when full, so kill -9 loses at most the block being filled.
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

  // Events of the calling thread.
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

  // Flushes everything buffered and writes kRunEnd (normal exit); Abandon() flushes without it.
  void Finish();
  void BeforeFork();
  void AfterForkParent();
  void AfterForkChild();

 private:
  void Put(logfmt::Event& event);     // requires mu_
  void FlushLocked();
  void ResolvePendingLocked();
  void WriteHeaderLocked();
  void OpenLocked(bool root);
  void OpenDeferredLocked();
  std::string FileName(bool root, int attempt) const;

  std::atomic<bool> enabled_{false};
  std::mutex mu_;
  std::string base_path_;    // FILE, or DIR in directory mode
  bool directory_mode_ = false;
  std::string path_;
  int fd_ = -1;
  int pid_ = 0;
  const ReportSymbolizer* symbolizer_ = nullptr;
  std::vector<std::uint8_t> buffer_;
  std::unique_ptr<logfmt::BlockEncoder> encoder_;
  std::uint32_t block_number_ = 0;
  bool write_failed_ = false;
  bool open_pending_ = false;     // forked child: the log is created at its first event
  bool writing_snapshot_ = false; // forked child: buffering what it inherited

  // Raw stacks and call sites waiting to be symbolized (outside the engine's locks).
  std::vector<std::pair<StackId, std::vector<std::uint64_t>>> pending_stacks_;
  std::vector<std::uint64_t> pending_sites_;
  std::unordered_set<std::uint64_t> sites_;

  // What a forked child's log must repeat: definitions, live instances, the forker's held locks.
  struct ClassDef {
    ClassId cls;
    std::uint8_t subclass;
    std::string identity, name;
  };
  std::vector<ClassDef> classes_;
  std::unordered_map<ContextId, std::string> contexts_;
  std::unordered_map<LockId, ClassId> instances_;
  std::unordered_map<ThreadKey, std::vector<AcquireRequest>> held_;
};

}  // namespace lockgraph::runtime_internal

#endif  // LOCKGRAPH_RUNTIME_RECORDER_H_
