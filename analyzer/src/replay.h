// Replaying loaded logs into one Engine: per-run numbering mapped into one space, classes merged
// by identity, and a Symbolizer built from the logs' stack and call-site tables.
#ifndef LOCKGRAPH_ANALYZER_REPLAY_H_
#define LOCKGRAPH_ANALYZER_REPLAY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "lockgraph/engine.h"
#include "lockgraph/finding.h"
#include "log_reader.h"

namespace lockgraph::analyzer {

class Progress;

// Lock ids, ips and stack ids of run R live in one engine-wide space: R's values XOR (R << 48).
// Run 0 keeps its own values, so analysing a single log gives the numbers the live run saw.
inline constexpr RunId kMaxRuns = 65535;
inline std::uint64_t MapRunValue(RunId run, std::uint64_t v) {
  return v == 0 ? 0 : v ^ (std::uint64_t{run} << 48);
}

struct RunInfo {
  std::string program;
  std::uint64_t pid = 0;
  std::string file;
};

// "function (file:line)" split into its parts; false when the text has no such shape.
struct SourceLocation {
  std::string function;
  std::string file;
  std::uint64_t line = 0;
};
bool ParseLocation(const std::string& text, SourceLocation* loc);

class LogSymbolizer : public Symbolizer {
 public:
  void AppendStack(StackId stack, int indent, std::string* out) const override;
  void AppendCallSite(std::uint64_t ip, std::string* out) const override;
  // "prog[pid] (file)" when more than one run was analysed, else empty (as a live run prints).
  std::string RunName(RunId run) const override;
  // The recorded name of an instance of run `current_run` ("forks[4]"), else its address.
  void AppendLockInstance(LockId lock, std::string* out) const override;

  // Always names the run, for structured outputs.
  std::string RunLabel(RunId run) const;
  const std::string* CallSite(std::uint64_t ip) const;
  const std::vector<std::string>* Stack(StackId stack) const;

  std::vector<RunInfo> runs;
  bool name_runs = false;
  std::unordered_map<std::uint64_t, std::string> sites;
  std::unordered_map<StackId, std::vector<std::string>> stacks;
  std::unordered_map<LockId, std::string> lock_names;  // keyed by the mapped lock id
  // Findings show a run's own instance numbers; this says which run's they are.
  RunId current_run = 0;
};

struct DecodedBlock;

// The engine's instance handles of one run's locks, by lock id: what the shim keeps in each
// mutex, kept here beside the replay (an open-addressing table, replay thread only). An entry
// may be stale (the lock destroyed, re-initialised, its slot recycled): the engine checks a
// handle against the instance it names and falls back, so a stale handle costs only speed.
// Entries are erased at the lock's destroy and init records, so the table holds the locks that
// are live (and acquired since their init), not every address a long log ever used.
class HandleTable {
 public:
  HandleTable() { Rehash(1024); }
  // The entry of `lock` (0 when no handle is kept), made if absent.
  InstanceHandle& operator[](LockId lock) {
    for (std::size_t i = Home(lock);; i = (i + 1) & mask_) {
      Entry& e = entries_[i];
      if (e.lock == lock) return e.handle;
      if (e.lock == kNoLock) {
        if (2 * (used_ + 1) > entries_.size()) {
          Rehash(2 * entries_.size());
          return (*this)[lock];
        }
        ++used_;
        e.lock = lock;
        return e.handle;
      }
    }
  }
  // Removes the entry of `lock`, if any.
  void Erase(LockId lock);
  // The handle kept for `lock` (0 if none), without making an entry.
  InstanceHandle Peek(LockId lock) const {
    for (std::size_t i = Home(lock);; i = (i + 1) & mask_) {
      const Entry& e = entries_[i];
      if (e.lock == lock) return e.handle;
      if (e.lock == kNoLock) return 0;
    }
  }
  // Starts loading the entry of `lock` into the caches.
  void Prefetch(LockId lock) const { __builtin_prefetch(&entries_[Home(lock)]); }
  std::size_t size() const { return used_; }

 private:
  struct Entry {
    LockId lock = kNoLock;
    InstanceHandle handle = 0;
  };
  std::size_t Home(LockId lock) const {
    return static_cast<std::size_t>((lock * 0x9e3779b97f4a7c15ull) >> shift_);
  }
  void Rehash(std::size_t n);

  std::vector<Entry> entries_;
  std::size_t mask_ = 0, used_ = 0;
  int shift_ = 64;
};

// Where an event stands in the merged order of a stamped log: its sequence stamp, then the
// file position of its block (the two-pass merge breaks ties the same way).
struct MergeKey {
  std::uint64_t seq = 0;
  std::uint32_t block = 0;
  bool operator<(const MergeKey& o) const {
    return seq != o.seq ? seq < o.seq : block < o.block;
  }
};

// Replays one run block by block as a decoder thread delivers them (the analysis pipeline):
// each block's class and context definitions take effect before its events. Definitions are
// assumed to come before their first use, which is how the recorder writes them; when a class
// is used before its definition, or a context that threads have entered is renamed, the result
// could differ from replaying with the whole file's tables, so speculation_failed() says the
// analysis must be redone by the two-pass path (Replayer).
//
// Two orders: Replay() takes blocks in file order, each whole (logs without stamps, and stamped
// logs whose blocks follow each other). A stamped log whose threads' blocks interleave is merged
// by stamp instead: the caller Open()s blocks in the order of their first stamp and calls
// ReplayUntil() with the first stamp of the next block it has not opened; the open blocks (one
// or two per thread of the program) are merged exactly as the two-pass EventStream merges all
// of them, with the same tie-break by file position.
class BlockReplayer {
 public:
  // `entered`: contexts any thread of this analysis has entered so far (shared across runs).
  BlockReplayer(Engine* engine, LoadedLog* log, RunId run, ContextMask* entered);
  ~BlockReplayer();
  void Replay(const DecodedBlock& block);
  // Merged order. Open: the block's definitions take effect and its events join the merge (a
  // block without events is handed back through `done` at once).
  void Open(std::unique_ptr<DecodedBlock> block, std::vector<std::unique_ptr<DecodedBlock>>* done);
  bool HasOpen() const { return !heap_.empty(); }
  // The earliest event not yet replayed among the open blocks (HasOpen() only).
  MergeKey Head() const;
  // Replays the open blocks' events that come before `limit`, in merged order; blocks used up
  // go to `done`.
  void ReplayUntil(MergeKey limit, std::vector<std::unique_ptr<DecodedBlock>>* done);
  bool speculation_failed() const { return failed_; }
  std::uint64_t events() const { return events_; }

 private:
  struct Cursor;
  ThreadState& Current();
  ThreadState& Lookup(ThreadKey key);
  ClassId Class(logfmt::LogClassId id);
  void ApplyDefinitions(const DecodedBlock& block);
  template <bool kMapped>
  void ReplayRecords(const DecodedBlock& block, std::size_t begin, std::size_t end);
  void ReplayRange(const DecodedBlock& block, std::size_t begin, std::size_t end);
  template <bool kMapped>
  [[gnu::noinline]] bool AcquireByHandle(ThreadState& t, const DecodedBlock& block,
                                         std::size_t i);
  void SiftDown(std::size_t i);

  Engine* engine_;
  LoadedLog* log_;
  RunId run_;
  std::uint64_t run_bits_;
  ContextMask* entered_;
  bool failed_ = false;
  std::uint64_t events_ = 0;
  std::unordered_map<ThreadKey, std::unique_ptr<ThreadState>> threads_;
  std::unordered_map<logfmt::LogClassId, ClassId> classes_;
  // Handles of the run's locks (by the engine's lock id), for acquisitions the thread's memo
  // misses: the engine then finds the instance without its instance table.
  HandleTable handles_;
  bool memo_first_ = true;        // the last memo-alone attempt hit (AcquireByHandle)
  std::uint32_t memo_probe_ = 0;  // acquisitions that went to the handle first
  ThreadKey current_key_ = 0;
  ThreadState* current_ = nullptr;
  // Bumped when a thread's state goes (thread exit): merge cursors then look theirs up again.
  std::uint64_t thread_epoch_ = 0;
  // The file position of the block whose definition of a class / name of a context is in
  // effect: in merged order blocks arrive out of file order, and the two-pass tables keep the
  // first class definition and the last context name in the file.
  std::unordered_map<logfmt::LogClassId, std::uint32_t> class_def_block_;
  std::int64_t context_named_by_[kMaxContexts];
  // Merged order: the open blocks, a min-heap on their next event's key.
  std::vector<std::unique_ptr<Cursor>> cursors_;
  std::vector<Cursor*> heap_;
};

class Replayer {
 public:
  Replayer(Engine* engine, LogSymbolizer* symbolizer)
      : engine_(engine), symbolizer_(symbolizer) {}
  // Replays one log as run `run`: its tables into the symbolizer, its events into the engine.
  // Returns the number of events replayed.
  std::uint64_t Replay(const LoadedLog& log, RunId run, Progress* progress);
  // The run's name and its symbol tables (sites, stacks, instance names) into the symbolizer.
  void AddTables(const LoadedLog& log, RunId run);

 private:
  Engine* engine_;
  LogSymbolizer* symbolizer_;
};

}  // namespace lockgraph::analyzer

#endif  // LOCKGRAPH_ANALYZER_REPLAY_H_
