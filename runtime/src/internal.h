// Internals of liblockgraph shared by the interposers, the C API and the reporter.
#ifndef LOCKGRAPH_RUNTIME_INTERNAL_H_
#define LOCKGRAPH_RUNTIME_INTERNAL_H_

#include <signal.h>

#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "lockgraph/engine.h"

#define LG_EXPORT extern "C" __attribute__((visibility("default")))

namespace lockgraph::runtime_internal {

// ---------------------------------------------------------------------------------------------
// Options (LOCKGRAPH_OPTIONS, lg_set_option)
struct Options {
  bool strict = false;         // lockdep's same-class nesting rule
  bool halt_on_error = false;  // _exit after the first report
  int exitcode = 0;            // exit status when something was found; 0 keeps the program's
  std::string log_file;        // reports go here (appended) instead of stderr
  int verbosity = 1;           // 0 errors, 1 warnings, 2 info, 3 debug, 4 trace
  std::string record;          // lock log path (one file per process)
  std::string status_file;     // `lockgraph run`: one line appended per finding
  bool stacks = true;          // capture stacks for new dependencies and usages
  int max_stack_depth = 32;    // frames kept per captured stack
  // The engine's capacity bounds (start-up only): past one the validator turns itself off and
  // names the option to raise. 0 keeps the engine's default (EngineOptions).
  int max_held_locks = 0;      // per thread
  int max_classes = 0;
  int max_dependencies = 0;
  int memory_limit_mb = 0;
  // false: the pthread and signal interposers pass straight to libc (instrumented programs
  // report their locks through the lg_ API themselves); the lg_ API keeps working.
  std::atomic<bool> intercept{true};

  Options() = default;
  Options(const Options& o) { *this = o; }
  Options& operator=(const Options& o) {
    strict = o.strict;
    halt_on_error = o.halt_on_error;
    exitcode = o.exitcode;
    log_file = o.log_file;
    verbosity = o.verbosity;
    record = o.record;
    status_file = o.status_file;
    stacks = o.stacks;
    max_stack_depth = o.max_stack_depth;
    max_held_locks = o.max_held_locks;
    max_classes = o.max_classes;
    max_dependencies = o.max_dependencies;
    memory_limit_mb = o.memory_limit_mb;
    intercept.store(o.intercept.load(std::memory_order_relaxed), std::memory_order_relaxed);
    return *this;
  }
};

// Parses "name=value" pairs separated by ':', ',' or whitespace. Returns false (with a message
// naming the bad pair) on an unknown name or bad value; valid pairs before it are applied.
bool ParseOptions(std::string_view text, Options* options, std::string* error);
bool SetOption(Options* options, std::string_view name, std::string_view value,
               std::string* error);

// ---------------------------------------------------------------------------------------------
// Per-thread runtime data. Plain data in initial-exec TLS so that reading it costs a load and
// never calls a TLS init function (which could allocate) from a hook.
struct ThreadRecord;

struct ThreadLocal {
  int guard;               // > 0 while lockgraph code runs on this thread
  // The hooks' fast path may run on this thread while g_fast_gen equals fast_gen (0: never):
  // set by ValidateFastPath when every condition it needs held at that generation.
  std::uint64_t fast_gen;
  ThreadState* fast_state; // the engine state the fast path uses (tls.record's)
  engine_internal::ThreadCache* fast_cache;  // its inline cached-path part
  int tid;                 // cached gettid(), 0 until first use
  int signal_depth;        // nesting of lockgraph's signal trampolines
  unsigned handled_gen;    // generation of the handled-signal set last applied to the state
  bool registered;         // linked into the fork-quiesce registry
  bool exiting;            // thread-exit handling ran
  ThreadLocal* prev;       // registry links
  ThreadLocal* next;
  ThreadRecord* record;    // lazily created; owns the engine ThreadState
  std::uintptr_t signal_handlers[8];  // user handler of each tracked trampoline nesting level
  // While CaptureStack runs with every signal blocked (BeginCaptureMask): the mask that
  // libunwind's own sigprocmask calls (two per frame, around its cache lock) see and set,
  // answered by the interposers without a system call.
  bool capture_mask_active;
  sigset_t capture_mask;
};

extern __thread ThreadLocal tls __attribute__((tls_model("initial-exec")));

struct ThreadRecord {
  std::unique_ptr<ThreadState> state;
  std::uint64_t blocked = 0;  // blocked signals 1..64, bit s-1
};

// ---------------------------------------------------------------------------------------------
// The runtime singleton: created on first use in static storage and never destroyed.
class Runtime;
// Returns the running runtime, initialising it on first call; nullptr while it initialises on
// another thread or after it has turned off. Call only with the guard held.
Runtime* GetRuntime();
// True once the runtime has turned itself off (or was disabled).
bool RuntimeOff();

// Scope of lockgraph code on this thread: while alive, hooks on this thread pass through.
// `active()` is false when lockgraph code was already running (recursion, signal handler that
// interrupted the runtime), or while another thread forks.
// Makes the runtime's own work never a cancellation point: a thread cancelled inside a hook
// (in the write() of a report, the open() of a symbol file, the thread-exit path) would otherwise
// unwind through runtime frames, some of them noexcept, and glibc would abort the host. The real
// blocking calls the hooks wrap stay outside this guard, so they remain cancellation points.
class NoCancel {
 public:
  NoCancel() { pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old_); }
  ~NoCancel() { pthread_setcancelstate(old_, nullptr); }
  NoCancel(const NoCancel&) = delete;
  NoCancel& operator=(const NoCancel&) = delete;

 private:
  int old_ = PTHREAD_CANCEL_ENABLE;
};

// What the hooks' fast path reads directly (runtime.cpp owns them): the lifecycle state
// (kRuntimeRunning once started), the runtime, and the fork-quiesce flag and fence choice.
constexpr int kRuntimeRunning = 2;
extern std::atomic<int> g_runtime_state;
extern Runtime* g_runtime;
extern std::atomic<bool> g_fork_pending;
extern bool g_use_membarrier;

// The fast path's one global word. Every condition the fast path relies on besides the lock's
// own words and the recursion guard (the runtime running, interception on, no recorder, no
// deferred report, the handled-signal set this thread applied, no fork in progress, the
// allocator's code ranges known) is checked once by ValidateFastPath on a full hook, which then
// records the generation it saw in tls.fast_gen. Whoever makes one of those conditions false
// bumps the generation (InvalidateFastPath) after the change, so each thread's next hook takes
// the full path and validates again. A condition becoming true needs no bump: the thread is on
// the full path already and validates on its next hook.
extern std::atomic<std::uint64_t> g_fast_gen;
inline void InvalidateFastPath() { g_fast_gen.fetch_add(1, std::memory_order_seq_cst); }
// Checks the conditions above for the calling thread (inside an active HookScope, with its
// record) and, when all hold, lets the fast path run at generation `gen`, read before them.
void ValidateFastPath(Runtime* rt, std::uint64_t gen);
// Set once the interposers know the allocator's code ranges (their fast path checks the hull).
extern std::atomic<bool> g_allocator_ranges_known;

// The running runtime, or nullptr (not started, starting, or off); never starts it.
inline Runtime* RunningRuntime() {
  return g_runtime_state.load(std::memory_order_acquire) == kRuntimeRunning ? g_runtime : nullptr;
}

// A hook's fast path (TryEnterFastEither or TryEnterFast, then LeaveFast): sets the recursion
// guard as HookScope does (same fork-quiesce protocol: the guard store, then the generation that
// BeforeFork bumps after raising g_fork_pending) but does none of its cold work (registration,
// waiting for a fork, cancellation state), so the code between the entry and LeaveFast must make
// no call that can block, allocate, report or be a cancellation point. An entry that admits
// leaves the guard set (tls.fast_cache and tls.fast_state are then the thread's engine state);
// one that refuses leaves it untouched, and a full HookScope is needed. The thread's validation
// (tls.fast_gen) is read before the guard is set: a signal handler running in between can only
// validate again at the current generation or leave a stale one that fails the compare. Always inlined: it is a dozen instructions of every hook.
// A thread validated while --record is on keeps the generation with this bit set: the plain
// fast path never matches it, the recorded one (TryEnterFastEither's kRecorded) does.
inline constexpr std::uint64_t kFastGenRecording = std::uint64_t{1} << 63;
[[gnu::always_inline]] inline void LeaveFast() {
  std::atomic_signal_fence(std::memory_order_seq_cst);
  __atomic_store_n(&tls.guard, 0, __ATOMIC_RELEASE);
}
// The interposers' entry: one guard and generation check for both fast paths. kPlain: the plain
// fast path, kRecorded: the recorded one (the guard set either way); kNone with the guard
// untouched. A recording thread pays one extra compare on the branch the plain path leaves by.
enum class FastEntry { kNone, kPlain, kRecorded };
[[gnu::always_inline]] inline FastEntry TryEnterFastEither() {
  const std::uint64_t mine = tls.fast_gen;
  if (tls.guard != 0) return FastEntry::kNone;
  tls.guard = 1;
  if (g_use_membarrier) std::atomic_signal_fence(std::memory_order_seq_cst);
  else std::atomic_thread_fence(std::memory_order_seq_cst);
  const std::uint64_t gen = g_fast_gen.load(std::memory_order_acquire);
  if (__builtin_expect(gen == mine, 1)) return FastEntry::kPlain;
  if ((gen | kFastGenRecording) == mine) return FastEntry::kRecorded;
  LeaveFast();
  return FastEntry::kNone;
}
// The plain fast path only (the C API, which records through the full path): true with the
// guard set, else false with the guard untouched.
[[gnu::always_inline]] inline bool TryEnterFast() {
  const FastEntry entry = TryEnterFastEither();
  if (__builtin_expect(entry == FastEntry::kPlain, 1)) return true;
  if (entry == FastEntry::kRecorded) LeaveFast();
  return false;
}

class HookScope {
 public:
  HookScope();
  ~HookScope();
  HookScope(const HookScope&) = delete;
  HookScope& operator=(const HookScope&) = delete;
  bool active() const { return active_; }

 private:
  bool active_;
  int cancel_state_ = PTHREAD_CANCEL_ENABLE;  // restored when an active scope ends (NoCancel)
};

// The engine ThreadState of the calling thread (created on first use); nullptr if unavailable.
// Call only inside an active HookScope.
ThreadState* CurrentThread(Runtime* rt);
int CurrentTid();

Engine& GetEngine(Runtime* rt);
const Options& GetOptions(Runtime* rt);

// Kinds of lock object the interposers see; they pick the class naming of a first-seen lock.
enum class LockKind : std::uint8_t { kMutex, kRwlock, kSpinlock, kAnnotated };

// Class of a lock initialised at call site `site` (pthread_*_init): init-site class.
ClassId InitSiteClass(Runtime* rt, const void* lock, LockKind kind, std::uint64_t site);
// Class of a lock first seen at acquisition without an init call: a named static object gets
// a class keyed by its address; heap/stack objects get a class keyed by the function that first
// acquires them (`ip` is the acquisition's return address).
ClassId FirstSeenClass(Runtime* rt, const void* lock, LockKind kind, std::uint64_t ip);

// Turns the validator off for good, printing `lockgraph: turning off the validator: <why>`.
void TurnOff(std::string_view why);

// Diagnostics through spdlog (never through a hook: callers hold the guard).
void LogInfo(std::string_view text);
void LogWarning(std::string_view text);
void LogDebug(std::string_view text);

// Stack capture for the engine's lazy StackSource.
class LazyStack final : public StackSource {
 public:
  explicit LazyStack(Runtime* rt) : rt_(rt) {}
  StackId Capture() override;
  StackId captured() const { return captured_; }

 private:
  Runtime* rt_;
  StackId captured_ = kNoStack;
};

// Prints findings deferred while a signal handler ran.
void FlushDeferredReports(Runtime* rt);

// Number of distinct findings reported by this process.
unsigned long FindingsCount();

// Signals: the handled-signal set (signals with a user handler) and per-thread mask tracking.
std::uint64_t HandledSignals();
unsigned HandledSignalsGeneration();
// Around a stack capture: blocks every signal with one real call and lets the mask interposers
// answer the calls made until EndCaptureMask from tls.capture_mask (libunwind blocks signals
// around its cache lock at every frame: two system calls per frame otherwise). A handler that
// runs meanwhile (only a synchronous fault can deliver one) sees real mask calls. Returns
// whether it blocked (false in a runtime without interposers, where it does nothing).
bool BeginCaptureMask(sigset_t* saved);
void EndCaptureMask(const sigset_t* saved);
// Makes the engine's disabled contexts for this thread: blocked signals plus unhandled ones.
void ApplySignalState(Runtime* rt, ThreadRecord* record);
ContextId SignalContext(int sig);

// Report callback (lg_set_report_callback).
void SetReportCallback(void (*callback)(const char*, void*), void* arg);
bool SetRuntimeOption(std::string_view name, std::string_view value);

// Fork: quiesce the runtime before fork, reset per-process state in the child.
void BeforeFork();
void AfterForkParent();
void AfterForkChild();

// Thread exit (pthread key destructor or pthread_exit).
void OnThreadExit();

// The symbol of a data address ("inode_lock", "locks[3]", "state+0x28"), empty if none.
std::string DataSymbol(Runtime* rt, const void* address, std::size_t object_size);

// Recorder hooks (no-ops unless --record).
void RecordInit(Runtime* rt);

}  // namespace lockgraph::runtime_internal

#endif  // LOCKGRAPH_RUNTIME_INTERNAL_H_
