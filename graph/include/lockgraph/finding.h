// Findings: what the engine found, as structured values, and their lockdep-format text reports.
//
// A Finding holds names, ids and stack ids, never pointers into the engine, so it can be kept,
// merged, serialised (JSON/SARIF) or printed after the engine is gone. FormatReport() renders it
// in lockdep's layout; stacks and call sites are rendered through a caller-supplied Symbolizer,
// so the engine itself never symbolizes and never does I/O.
#ifndef LOCKGRAPH_FINDING_H_
#define LOCKGRAPH_FINDING_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lockgraph/types.h"

namespace lockgraph {

enum class FindingKind : std::uint8_t {
  kCircularDependency,     // "possible circular locking dependency detected"
  kRecursiveLocking,       // "possible recursive locking detected"
  kInconsistentLockState,  // "inconsistent lock state"
  kIrqSafeToUnsafe,        // "<CTX>-safe -> <CTX>-unsafe lock order detected"
  kIrqInversion,           // "possible irq lock inversion dependency detected"
  kBadUnlockBalance,       // "bad unlock balance detected!"
  kHeldLockFreed,          // "held lock freed!" (destroy of a held lock)
  kHeldLockReinit,         // "held lock re-initialized!"
  kUseOfDestroyedLock,     // "use of destroyed lock detected!"
  kLocksHeldAtThreadExit,  // "<thread> still has locks held!"
  kLocksHeldAtIrqExit,     // "lock held when returning from interrupt context!"
  kSameClassInstanceOrder, // "possible instance-order deadlock in one lock class detected"
};

// Stable lower-case identifier of a kind ("circular-dependency"), used in JSON, suppressions, baselines.
std::string_view FindingKindId(FindingKind kind);
// Parses FindingKindId() output; returns false for an unknown id.
bool ParseFindingKindId(std::string_view id, FindingKind* kind);

// A lock as a report shows it: "(i_pages){-.-.}" plus instance, mode and where it was taken.
struct ReportedLock {
  std::string name;          // class name, with "/N" for a non-zero subclass
  ClassId class_id = kNoClass;
  LockId instance = kNoLock;
  AcquireMode mode = AcquireMode::kExclusive;
  bool trylock = false;
  std::uint64_t ip = 0;      // call site of the acquisition (0: unknown)
  std::string usage;         // lockdep's usage string, e.g. "{-.-.}"
};

// One dependency A -> B as it was first established.
struct ReportedDependency {
  std::string from;          // class name of the held lock (A)
  std::string to;            // class name of the acquired lock (B)
  std::string type;          // lockdep's dependency type: "EN", "ER", "SN", "SR" (strongest kept)
  StackId stack = kNoStack;  // stack of B's acquisition when A -> B was first recorded
  std::uint64_t ip = 0;      // call site of B's acquisition
  RunId run = 0;             // which run recorded it (merged analysis)
  ThreadKey thread = 0;
};

// One usage bit of a class and where it was first set.
struct ReportedUsage {
  std::string lock;          // class name
  std::string bit;           // "IN-HARDIRQ-W", "HARDIRQ-ON-W", "IN-SIGUSR1-R", ...
  StackId stack = kNoStack;
  std::uint64_t ip = 0;
  RunId run = 0;
};

struct Finding {
  FindingKind kind = FindingKind::kCircularDependency;
  std::string headline;      // without "WARNING: ", e.g. "possible circular locking dependency detected"
  std::string fingerprint;   // 16 hex digits from kind + class names (+ context); never addresses
  std::vector<std::string> classes;  // the classes this finding is about, in report order

  // Who ran into it.
  ThreadKey thread = 0;
  std::string thread_name;
  RunId run = 0;
  std::string context;       // "HARDIRQ", "SOFTIRQ", "SIGUSR1", ... where relevant
  std::string thread_state;  // lockdep's "[HC0[0]:SC0[0]:HE1:SE1]" at the time of the event

  // What was being done: the lock being acquired/released/destroyed and its call site.
  ReportedLock target;
  StackId target_stack = kNoStack;
  bool has_target = false;
  std::vector<ReportedLock> held;           // locks the thread held (innermost last)

  // Circular dependency: the cycle in lockdep's printed order. chain.front() is "#N" (the held
  // lock, with the dependency that leads into it), chain.back() is "#0": the new dependency
  // held lock -> target that closes the cycle. Each entry's `to` is the class printed.
  std::vector<ReportedDependency> chain;

  // IRQ findings: the safe/unsafe classes, the usage bits involved and the paths to them.
  std::string safe_lock, unsafe_lock;
  ReportedUsage safe_usage, unsafe_usage;
  std::vector<ReportedDependency> backward_path;  // safe lock -> ... -> held lock
  std::vector<ReportedDependency> forward_path;   // acquired lock -> ... -> unsafe lock
  std::string previous_bit, new_bit;              // inconsistent lock state: {prev} -> {new}

  // Lifecycle findings: where the lock was destroyed, and instances for same-class order.
  StackId destroy_stack = kNoStack;
  std::uint64_t destroy_ip = 0;
  std::vector<LockId> instances;

  // The whole lockdep-format text is produced by FormatReport().
};

// Turns stacks and call sites into text. Implemented by the runtime (libdw) and the analyzer
// (the symbol tables of a log); the default one prints hex addresses.
class Symbolizer {
 public:
  virtual ~Symbolizer() = default;
  // Appends one line per frame, each prefixed with `indent` spaces.
  virtual void AppendStack(StackId stack, int indent, std::string* out) const;
  // Appends the call site as "function (file:line)" or a hex address.
  virtual void AppendCallSite(std::uint64_t ip, std::string* out) const;
  // Names a lock instance where a report lists instances ("forks[4]"); default: its address.
  virtual void AppendLockInstance(LockId lock, std::string* out) const;
  // Describes a run for merged reports ("prog[pid] (log file)"); empty for a single run.
  virtual std::string RunName(RunId run) const;
};

// The lockdep-format text of a finding, starting with the "=====" rule and the WARNING line.
std::string FormatReport(const Finding& finding, const Symbolizer& symbolizer);

}  // namespace lockgraph

#endif  // LOCKGRAPH_FINDING_H_
