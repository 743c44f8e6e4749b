// The lockgraph engine: lock classes, the class dependency graph and lockdep's rules.
//
// Contract
// - Events in, findings out. Every entry point (the runtime shim, log replay in the analyzer,
//   instrumented code through the C API) calls the same methods in the same order it saw the
//   events, so a replayed log gives the findings the live run gave.
// - Each distinct finding (by fingerprint) is delivered once to the FindingSink, after the
//   engine has released its internal locks; validation goes on after a finding (unlike lockdep).
// - Thread safety: any number of threads may call the engine at once, each with its own
//   ThreadState. A ThreadState is used by one thread at a time and must not be re-entered (the
//   runtime's recursion guard makes sure a signal handler does not enter it mid-call).
// - Cost: an acquisition whose held-lock chain was validated before costs a push, a chain-key
//   hash and a lock-free hash look-up; no global lock, no graph work, no stack capture. A new
//   chain takes the graph lock and runs the Boost.Graph searches: O(V + E) of the reachable part.
// - Memory: no small fixed caps. Growth is bounded by EngineOptions; when a bound is hit the
//   engine turns itself off, tells the sink why (OnTurnedOff), and every later call is a no-op.
// - The engine does no I/O, starts no threads and does not log.
#ifndef LOCKGRAPH_ENGINE_H_
#define LOCKGRAPH_ENGINE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lockgraph/cached_path.h"
#include "lockgraph/finding.h"
#include "lockgraph/types.h"

namespace lockgraph {

class Engine;

// Captures a stack on demand. The engine calls Capture() at most once per event, and only when
// it records something new (a dependency, a usage bit, a finding), so steady state pays nothing.
class StackSource {
 public:
  virtual StackId Capture() = 0;

 protected:
  ~StackSource() = default;
};

// Receives findings and the turn-off notice. Called without engine locks held, from the thread
// whose event produced the finding. Must not call back into the engine for that thread.
class FindingSink {
 public:
  virtual ~FindingSink() = default;
  virtual void OnFinding(const Finding& finding) = 0;
  virtual void OnTurnedOff(std::string_view why) = 0;
};

struct EngineOptions {
  // Same-class nesting of different instances: false (default) reports only instance orders
  // that can deadlock; true reports any unannotated same-class nesting, as lockdep does.
  bool strict_same_class = false;
  // Capacity bounds; hitting one turns the validator off with a reason (never a silent cap).
  std::size_t max_held_locks = 4096;        // per thread and context
  std::size_t max_classes = 1u << 20;        // 1,048,576
  std::size_t max_dependencies = 1u << 24;   // 16,777,216
  std::size_t memory_limit_bytes = std::size_t{4} << 30;  // 4 GiB for graph, chains and instances
};

// One acquisition request. Only `lock` is required.
struct AcquireRequest {
  LockId lock = kNoLock;
  AcquireMode mode = AcquireMode::kExclusive;
  bool trylock = false;
  std::uint8_t subclass = 0;           // nested acquisition (mutex_lock_nested)
  LockId nest_lock = kNoLock;          // lockdep's nest_lock: a held lock that serialises this class
  std::uint64_t ip = 0;                // call site, cheap to pass (return address)
  StackId stack = kNoStack;            // the full stack if already known (log replay)
  StackSource* stack_source = nullptr; // else captured lazily, only if something new is recorded
};

// Per-thread state: held locks, interrupt context and interrupt-enable state.
// Create one per thread (Engine::NewThread) and keep it for the thread's life.
class ThreadState {
 public:
  ThreadState(const ThreadState&) = delete;
  ThreadState& operator=(const ThreadState&) = delete;
  ~ThreadState();

  ThreadKey key() const;
  const std::string& name() const;
  void set_name(std::string name);
  RunId run() const;
  // Number of locks currently held, all contexts together.
  std::size_t held_count() const;
  // True when the thread holds `lock` (any mode).
  bool Holds(LockId lock) const;
  // The contexts whose interrupts are currently disabled (for irq save/restore).
  ContextMask disabled_contexts() const;
  // The innermost interrupt context the thread is running in, or -1 in process context.
  int current_context() const;

  struct Impl;
  Impl* impl() { return impl_.get(); }
  // The part of the state the inline cached paths use (lockgraph/cached_path.h).
  engine_internal::ThreadCache& cache() { return *cache_; }

 private:
  friend class Engine;
  explicit ThreadState(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  engine_internal::ThreadCache* cache_;
};

// A class as the engine knows it.
struct ClassInfo {
  ClassId id = kNoClass;
  std::uint64_t key = 0;
  std::uint8_t subclass = 0;
  std::string name;          // with "/N" for a non-zero subclass
  Usage usage;
};

// A dependency edge of the class graph.
struct DependencyInfo {
  ClassId from = kNoClass;
  ClassId to = kNoClass;
  std::uint8_t types = 0;    // bit set of DepType
  StackId stack = kNoStack;
  std::uint64_t ip = 0;
  RunId run = 0;
  ThreadKey thread = 0;
};

// Lockdep's dependency types, "holder acquirer": E(xclusive)/S(hared) holder, R(ecursive-read)
// or N(on-recursive) acquirer.
enum DepType : std::uint8_t { kDepSR = 1, kDepER = 2, kDepSN = 4, kDepEN = 8 };

struct EngineStats {
  std::size_t classes = 0;
  std::size_t dependencies = 0;
  std::size_t chains = 0;
  std::size_t chain_cache_hits = 0;
  std::size_t instances = 0;
  std::size_t findings = 0;
  std::size_t bytes = 0;     // approximate memory of graph, chains and instances
};

class Engine {
 public:
  explicit Engine(EngineOptions options = {}, FindingSink* sink = nullptr);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  void set_sink(FindingSink* sink);
  const EngineOptions& options() const;
  void set_strict_same_class(bool strict);

  // --- Classes and contexts ---------------------------------------------------------------
  // Registers (or finds) the class of `key` with the given subclass. Idempotent: the same
  // (key, subclass) returns the same id; the first name given wins. Returns kNoClass when the
  // engine is off.
  ClassId RegisterClass(std::uint64_t key, std::string_view name, std::uint8_t subclass = 0);
  ClassInfo GetClass(ClassId id) const;
  // Names a numbered interrupt context ("SIGUSR1"); HARDIRQ and SOFTIRQ are named already.
  void SetContextName(ContextId context, std::string_view name);
  std::string ContextName(ContextId context) const;

  // --- Threads ----------------------------------------------------------------------------
  std::unique_ptr<ThreadState> NewThread(ThreadKey key, std::string name = {}, RunId run = 0);
  // Reports locks still held (one finding) and forgets them.
  void ThreadExit(ThreadState& thread, std::uint64_t ip = 0);
  // A fork child: the thread keeps its held locks; other threads' states are simply dropped.

  // --- Lock instances ---------------------------------------------------------------------
  // Binds `lock` to `cls` as a new instance (a reused address starts afresh). Re-initialising
  // a lock this thread holds is a finding.
  void InitLock(ThreadState& thread, LockId lock, ClassId cls, std::uint64_t ip = 0,
                StackId stack = kNoStack);
  // Re-binds a live instance to another class (lockdep_set_class); no finding.
  void SetLockClass(LockId lock, ClassId cls);
  // Ends the instance. Destroying a held lock is a finding; so is any later use until the next
  // InitLock of the same id.
  void DestroyLock(ThreadState& thread, LockId lock, std::uint64_t ip = 0,
                   StackSource* stack_source = nullptr, StackId stack = kNoStack);
  // True when `lock` has been initialised (and not destroyed) or acquired before.
  bool KnowsLock(LockId lock) const;
  // A handle of the live instance `lock` (0 if none) that a caller may keep beside the lock and
  // pass to TryAcquireCached, which then finds the instance without the instance table (the
  // shim keeps it in the lock object). A handle stays safe to pass after the instance is
  // destroyed or re-bound: the engine notices and the call falls back.
  InstanceHandle HandleOf(LockId lock);
  enum class LockState { kUnknown, kLive, kDestroyed };
  // kDestroyed until the next InitLock of the id: an Acquire then reports use of a destroyed
  // lock, so a shim must not re-initialise such a lock on first sight unless the memory really
  // holds a new lock.
  LockState GetLockState(LockId lock) const;
  // The class of a live instance, or kNoClass.
  ClassId LockClass(LockId lock) const;

  // --- Acquire and release ----------------------------------------------------------------
  // An acquisition that succeeded (or, for blocking calls, is about to block: the dependency is
  // the same). An unknown lock gets an anonymous class keyed by its id.
  void Acquire(ThreadState& thread, const AcquireRequest& request);
  // The cached path of Acquire alone, for hooks that must stay small: when this exact step
  // (same held chain in this context, same lock, same mode and trylock bit, no subclass, no
  // nest_lock) was validated before and nothing it depended on has changed, or `handle` names
  // the lock's live instance and the resulting chain is validated with every usage bit it needs
  // already set, records the acquisition and returns true. Otherwise does nothing and returns
  // false, and the caller makes the full Acquire. Never reports, never captures a stack, takes
  // no lock, makes no call out.
  bool TryAcquireCached(ThreadState& thread, LockId lock, AcquireMode mode, bool trylock,
                        std::uint64_t ip, InstanceHandle handle = 0);
  // TryAcquireCached for a caller that has just tried its inline common case itself
  // (engine_internal::TryAcquireFromSlot, cached_path.h, returned false) with the lock's handle
  // (not 0): the same answer without trying that part again.
  bool TryAcquireCachedAfterSlot(ThreadState& thread, LockId lock, AcquireMode mode,
                                 bool trylock, std::uint64_t ip, InstanceHandle handle);
  // Releases the innermost hold of `lock`. Releasing a lock not held is a finding.
  void Release(ThreadState& thread, LockId lock, std::uint64_t ip = 0);
  // Release's common case alone: when `lock` is the innermost lock held in the current context,
  // releases it and returns true; otherwise does nothing and returns false (make the full
  // Release). Same guarantees as TryAcquireCached.
  bool TryReleaseInnermost(ThreadState& thread, LockId lock);
  // Undoes the innermost Acquire of `lock` without any check: the real call failed after the
  // acquisition was validated (a timed lock that timed out, EDEADLK from an errorcheck mutex).
  void CancelAcquire(ThreadState& thread, LockId lock);
  // True when `thread` holds `lock` (lg_assert_held).
  bool IsHeld(const ThreadState& thread, LockId lock) const;

  // --- Interrupt contexts -----------------------------------------------------------------
  // Enters/leaves interrupt context `context` (hardirq, softirq or a signal handler). Entering
  // hardirq disables hardirqs; entering softirq disables softirqs, as the kernel does. Leaving
  // with locks taken in that context still held is a finding.
  void EnterContext(ThreadState& thread, ContextId context);
  void ExitContext(ThreadState& thread, ContextId context, std::uint64_t ip = 0);
  // Interrupt enable state. Hardirq and numbered contexts are flags (like local_irq_disable and
  // a blocked signal); softirq disable nests like local_bh_disable.
  void DisableContext(ThreadState& thread, ContextId context);
  void EnableContext(ThreadState& thread, ContextId context);
  // Replaces the set of disabled flag-contexts (sigprocmask, local_irq_restore). The softirq
  // disable count is untouched unless `softirq` is set in `mask` and was not before.
  void SetDisabledContexts(ThreadState& thread, ContextMask mask);

  // --- Introspection ----------------------------------------------------------------------
  bool enabled() const;
  std::string disabled_reason() const;
  EngineStats stats() const;
  std::vector<ClassInfo> Classes() const;
  std::vector<DependencyInfo> Dependencies() const;
  // Every cycle class set of the graph (strongly connected components of more than one class),
  // for whole-graph offline analysis; each component is sorted by class id.
  std::vector<std::vector<ClassId>> StronglyConnectedClasses() const;
  // Every finding delivered so far, in order.
  std::vector<Finding> Findings() const;
  // Test only: checks internal invariants (graph vs. edge index, chain cache, usage); returns
  // an empty string when they hold, else a description of the first violation.
  std::string CheckInvariants() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace lockgraph

#endif  // LOCKGRAPH_ENGINE_H_
