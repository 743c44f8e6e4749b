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
//
// Every block must have its lock slots (DecodedBlock::lock_slots) from one LockSlots numbering
// of the log, assigned in the order the blocks are given here.
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
  void GrowHandles(const DecodedBlock& block);
  [[gnu::noinline]] bool AcquireFirst(ThreadState& t, std::uint32_t slot, LockId lock,
                                      AcquireMode mode, bool trylock, std::uint64_t ip);
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
  // The engine's instance handle of each of the run's locks, by lock slot (the decoder's dense
  // numbering, DecodedBlock::lock_slots; 0: none taken yet), as the shim keeps one in each
  // mutex: the cached path finds the instance, its noted chains and its class through it,
  // without the engine's instance table. A
  // handle may be stale (the slot re-used by another lock in merged order, the instance
  // destroyed and its engine slot recycled): the engine checks it against the lock it names
  // and the call falls back, so a stale handle costs only speed; it is dropped at the lock's
  // init and destroy records and whenever the engine finds it names another lock.
  std::vector<InstanceHandle> handles_;
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
