// The runtime singleton: options, the engine, per-thread state, lock classes, reports, fork.
#include <cxxabi.h>
#include "runtime.h"

#include <fcntl.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include <fmt/format.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/base_sink.h>

#include "recorder.h"

namespace lockgraph::runtime_internal {

__thread ThreadLocal tls __attribute__((tls_model("initial-exec"))) = {};
constinit std::atomic<int> g_runtime_state{0};
constinit Runtime* g_runtime = nullptr;
constinit std::atomic<bool> g_fork_pending{false};
constinit bool g_use_membarrier = false;
constinit std::atomic<std::uint64_t> g_fast_gen{1};  // tls.fast_gen 0 never matches
constinit std::atomic<bool> g_allocator_ranges_known{false};

namespace {

// Runtime lifecycle: never started, being initialised (by one thread), running, off.
enum : int { kNew = 0, kInitializing = 1, kRunning = kRuntimeRunning, kOff = 3 };
std::atomic<int>& g_state = g_runtime_state;
alignas(Runtime) unsigned char g_storage[sizeof(Runtime)];

std::atomic<unsigned long> g_findings{0};

// Fork quiesce: registered threads, the pending flag every hook checks, and how hooks order
// their guard store against it (membarrier when available, else a full fence per hook).
class SpinLock {
 public:
  void lock() {
    while (flag_.exchange(true, std::memory_order_acquire)) {
      while (flag_.load(std::memory_order_relaxed)) sched_yield();
    }
  }
  void unlock() { flag_.store(false, std::memory_order_release); }
  void reset() { flag_.store(false, std::memory_order_relaxed); }

 private:
  std::atomic<bool> flag_{false};
};

SpinLock g_registry_lock;
ThreadLocal* g_registry_head = nullptr;
SpinLock g_fork_lock;
pthread_key_t g_exit_key;
std::atomic<bool> g_exit_key_made{false};
pid_t g_main_tid = 0;

void RawWrite(int fd, const char* data, std::size_t size) {
  NoCancel no_cancel;
  while (size > 0) {
    const ssize_t n = write(fd, data, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
}

void ThreadExitDestructor(void*) { OnThreadExit(); }

void Register() {
  if (!g_exit_key_made.load(std::memory_order_acquire)) {
    g_registry_lock.lock();
    if (!g_exit_key_made.load(std::memory_order_relaxed)) {
      if (pthread_key_create(&g_exit_key, &ThreadExitDestructor) == 0) {
        g_exit_key_made.store(true, std::memory_order_release);
      }
    }
    g_registry_lock.unlock();
  }
  g_registry_lock.lock();
  tls.prev = nullptr;
  tls.next = g_registry_head;
  if (g_registry_head) g_registry_head->prev = &tls;
  g_registry_head = &tls;
  tls.registered = true;
  g_registry_lock.unlock();
  if (g_exit_key_made.load(std::memory_order_acquire)) pthread_setspecific(g_exit_key, &tls);
}

void Unregister() {
  if (!tls.registered) return;
  g_registry_lock.lock();
  if (tls.prev) tls.prev->next = tls.next;
  else g_registry_head = tls.next;
  if (tls.next) tls.next->prev = tls.prev;
  tls.prev = tls.next = nullptr;
  tls.registered = false;
  g_registry_lock.unlock();
}

// spdlog sink that writes with write(2): no stdio, no locks of its own (callers hold the guard
// and are serialised by the logger's null mutex being used from one thread at a time at worst
// interleaving lines, which is acceptable for diagnostics).
class FdSink final : public spdlog::sinks::base_sink<spdlog::details::null_mutex> {
 public:
  explicit FdSink(int fd) : fd_(fd) {}

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t buf;
    formatter_->format(msg, buf);
    RawWrite(fd_, buf.data(), buf.size());
  }
  void flush_() override {}

 private:
  int fd_;
};

spdlog::level::level_enum LevelOf(int verbosity) {
  switch (verbosity) {
    case 0: return spdlog::level::err;
    case 1: return spdlog::level::warn;
    case 2: return spdlog::level::info;
    case 3: return spdlog::level::debug;
    default: return spdlog::level::trace;
  }
}

void ExitHandler() {
  HookScope scope;
  if (!scope.active() || g_state.load(std::memory_order_acquire) != kRunning) return;
  Runtime* rt = g_runtime;
  FlushDeferredReports(rt);
  rt->recorder.Finish();
  if (rt->options.exitcode != 0 && g_findings.load() > 0) {
    std::fflush(nullptr);
    _exit(rt->options.exitcode);
  }
}

}  // namespace

// --- Runtime --------------------------------------------------------------------------------

class Runtime::Sink final : public FindingSink {
 public:
  explicit Sink(Runtime* rt) : rt_(rt) {}
  void OnFinding(const Finding& finding) override { rt_->OnFinding(finding); }
  void OnTurnedOff(std::string_view why) override { TurnOff(why); }

 private:
  Runtime* rt_;
};

Runtime::Runtime(const Options& opts)
    : options(opts),
      sink_(std::make_unique<Sink>(this)),
      engine([&] {
        EngineOptions eo;
        eo.strict_same_class = opts.strict;
        if (opts.max_held_locks > 0) eo.max_held_locks = opts.max_held_locks;
        if (opts.max_classes > 0) eo.max_classes = opts.max_classes;
        if (opts.max_dependencies > 0) eo.max_dependencies = opts.max_dependencies;
        if (opts.memory_limit_mb > 0) {
          eo.memory_limit_bytes = static_cast<std::size_t>(opts.memory_limit_mb) << 20;
        }
        return eo;
      }()),
      report_symbolizer(&depot, &symbolizer) {
  engine.set_sink(sink_.get());
  logger = std::make_shared<spdlog::logger>("lockgraph", std::make_shared<FdSink>(2));
  logger->set_pattern("lockgraph: %l: %v");
  logger->set_level(LevelOf(opts.verbosity));
  // The report and status files are appended to by every process of a run, so they are opened
  // without O_EXCL; a symlink at the path is still never followed (a planted link must not
  // redirect reports into another file), and the mode is the user's umask applied to 0666.
  constexpr int kAppendFlags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW;
  if (!options.log_file.empty()) {
    report_fd = open(options.log_file.c_str(), kAppendFlags, 0666);
    if (report_fd < 0) {
      logger->error("cannot open log file '{}': {}; reports go to stderr", options.log_file,
                    std::strerror(errno));
      report_fd = 2;
    }
  }
  if (!options.status_file.empty()) {
    status_fd = open(options.status_file.c_str(), kAppendFlags, 0666);
    if (status_fd < 0) {
      logger->warn("cannot open status file '{}': {}", options.status_file, std::strerror(errno));
    }
  }
}

Runtime::~Runtime() = default;

void Runtime::CountFinding(std::string_view kind, std::string_view fingerprint) {
  g_findings.fetch_add(1, std::memory_order_relaxed);
  if (status_fd >= 0) {
    const std::string line = fmt::format("{} {} {}\n", getpid(), kind, fingerprint);
    RawWrite(status_fd, line.data(), line.size());
  }
}

void Runtime::OnFinding(const Finding& finding) {
  NoCancel no_cancel;  // symbolizing opens files; printing writes
  CountFinding(FindingKindId(finding.kind), finding.fingerprint);
  if (tls.signal_depth > 0) {
    // Symbolizing and printing from a handler that may have interrupted malloc or stdio is
    // not safe; print it when the thread is back in normal context, or at exit.
    std::lock_guard<std::mutex> lock(deferred_mu);
    deferred.push_back(finding);
    deferred_count.store(deferred.size(), std::memory_order_release);
    InvalidateFastPath();  // the next full hook outside a handler prints it
    return;
  }
  Emit(finding);
}

void Runtime::Emit(const Finding& finding) {
  std::string text = "\n" + FormatReport(finding, report_symbolizer);
  if (text.back() != '\n') text.push_back('\n');
  Print(text);
}

void Runtime::EmitText(const std::string& text, std::string_view kind,
                       std::string_view fingerprint) {
  CountFinding(kind, fingerprint);
  Print(text);
}

void Runtime::Print(const std::string& text) {
  {
    std::lock_guard<std::mutex> lock(output_mu);
    RawWrite(report_fd, text.data(), text.size());
  }
  if (auto cb = callback.load(std::memory_order_acquire)) cb(text.c_str(), callback_arg);
  if (options.halt_on_error) {
    recorder.Finish();
    const char msg[] = "lockgraph: halt_on_error: exiting after the first report\n";
    RawWrite(2, msg, sizeof msg - 1);
    _exit(options.exitcode != 0 ? options.exitcode : 66);
  }
}

void RecordInit(Runtime* rt) {
  if (!rt->options.record.empty()) rt->recorder.Start(rt->options.record, &rt->report_symbolizer);
}

void FlushDeferredReports(Runtime* rt) {
  if (rt == nullptr || rt->deferred_count.load(std::memory_order_acquire) == 0) return;
  if (tls.signal_depth > 0) return;
  std::vector<Finding> pending;
  {
    std::lock_guard<std::mutex> lock(rt->deferred_mu);
    pending.swap(rt->deferred);
    rt->deferred_count.store(0, std::memory_order_release);
  }
  for (const Finding& f : pending) rt->Emit(f);
}

unsigned long FindingsCount() { return g_findings.load(std::memory_order_relaxed); }

void SetReportCallback(void (*callback)(const char*, void*), void* arg) {
  HookScope scope;
  Runtime* rt = scope.active() ? GetRuntime() : nullptr;
  if (rt == nullptr) return;
  rt->callback_arg = arg;
  rt->callback.store(callback, std::memory_order_release);
}

bool SetRuntimeOption(std::string_view name, std::string_view value) {
  HookScope scope;
  Runtime* rt = scope.active() ? GetRuntime() : nullptr;
  if (rt == nullptr) return false;
  std::string error;
  Options copy = rt->options;
  if (!SetOption(&copy, name, value, &error)) {
    rt->logger->warn("lg_set_option: {}", error);
    return false;
  }
  // Only what can change at run time is taken; files are opened at start-up.
  rt->options.strict = copy.strict;
  rt->options.halt_on_error = copy.halt_on_error;
  rt->options.exitcode = copy.exitcode;
  rt->options.verbosity = copy.verbosity;
  rt->options.stacks = copy.stacks;
  rt->options.max_stack_depth = copy.max_stack_depth;
  rt->options.intercept.store(copy.intercept.load(std::memory_order_relaxed),
                              std::memory_order_relaxed);
  InvalidateFastPath();  // intercept=0 must reach every thread's next hook
  rt->engine.set_strict_same_class(copy.strict);
  rt->logger->set_level(LevelOf(copy.verbosity));
  return true;
}

// --- Lifecycle ------------------------------------------------------------------------------

Runtime* GetRuntime() {
  int state = g_state.load(std::memory_order_acquire);
  if (state == kRunning) return g_runtime;
  if (state != kNew) return nullptr;
  if (!g_state.compare_exchange_strong(state, kInitializing, std::memory_order_acq_rel)) {
    return state == kRunning ? g_runtime : nullptr;
  }
  Options options;
  std::string error;
  const char* env = getenv("LOCKGRAPH_OPTIONS");
  bool options_ok = env == nullptr || ParseOptions(env, &options, &error);
  try {
    g_runtime = new (g_storage) Runtime(options);
  } catch (const std::exception& e) {
    g_state.store(kOff, std::memory_order_release);
    std::string msg = std::string("lockgraph: turning off the validator: start-up failed: ") +
                      e.what() + "\n";
    RawWrite(2, msg.data(), msg.size());
    return nullptr;
  }
  Runtime* rt = g_runtime;
  if (!options_ok) rt->logger->error("LOCKGRAPH_OPTIONS: {}; using defaults for the rest", error);
  if (syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0) == 0) {
    g_use_membarrier = true;
  }
  g_main_tid = getpid();
  std::atexit(&ExitHandler);
  try {
    RecordInit(rt);
  } catch (const std::exception& e) {
    rt->logger->error("recording disabled: {}", e.what());
  }
  rt->logger->info("started in pid {} (strict={}, exitcode={}, stacks={}{}{})", getpid(),
                   options.strict, options.exitcode, options.stacks,
                   options.log_file.empty() ? "" : ", log_file=", options.log_file);
  g_state.store(kRunning, std::memory_order_release);
  return rt;
}

bool RuntimeOff() { return g_state.load(std::memory_order_acquire) == kOff; }

void TurnOff(std::string_view why) {
  int expected = kRunning;
  if (!g_state.compare_exchange_strong(expected, kOff)) return;
  InvalidateFastPath();
  std::string msg = "lockgraph: turning off the validator: " + std::string(why) + "\n";
  RawWrite(2, msg.data(), msg.size());
  if (g_runtime) g_runtime->recorder.Finish();
}

Engine& GetEngine(Runtime* rt) { return rt->engine; }
const Options& GetOptions(Runtime* rt) { return rt->options; }

void LogInfo(std::string_view text) {
  if (g_runtime) g_runtime->logger->info("{}", text);
}
void LogWarning(std::string_view text) {
  if (g_runtime) g_runtime->logger->warn("{}", text);
}
void LogDebug(std::string_view text) {
  if (g_runtime) g_runtime->logger->debug("{}", text);
}

// --- Hook scope -----------------------------------------------------------------------------

HookScope::HookScope() {
  if (tls.guard != 0 || tls.exiting) {
    active_ = false;
    return;
  }
  if (!tls.registered) {
    tls.guard = 1;  // pthread_key_create and friends pass through
    Register();
    tls.guard = 0;
  }
  for (;;) {
    tls.guard = 1;
    if (g_use_membarrier) std::atomic_signal_fence(std::memory_order_seq_cst);
    else std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!g_fork_pending.load(std::memory_order_acquire)) break;
    tls.guard = 0;
    while (g_fork_pending.load(std::memory_order_acquire)) sched_yield();
  }
  active_ = true;
  // The runtime's own work is never a cancellation point (see NoCancel).
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state_);
}

HookScope::~HookScope() {
  if (!active_) return;
  pthread_setcancelstate(cancel_state_, nullptr);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  __atomic_store_n(&tls.guard, 0, __ATOMIC_RELEASE);
}

int CurrentTid() {
  if (tls.tid == 0) tls.tid = static_cast<int>(syscall(SYS_gettid));
  return tls.tid;
}

ThreadState* CurrentThread(Runtime* rt) {
  // Read before anything the fast path's conditions depend on (see g_fast_gen).
  const std::uint64_t gen = g_fast_gen.load(std::memory_order_acquire);
  ThreadRecord* rec = tls.record;
  if (rec == nullptr) {
    if (tls.signal_depth > 0 && false) return nullptr;
    rec = new (std::nothrow) ThreadRecord;
    if (rec == nullptr) return nullptr;
    char name[17] = {0};
    prctl(PR_GET_NAME, name, 0, 0, 0);
    rec->state = rt->engine.NewThread(static_cast<ThreadKey>(CurrentTid()), name);
    sigset_t set;
    sigemptyset(&set);
    pthread_sigmask(SIG_BLOCK, nullptr, &set);
    for (int s = 1; s <= 64 && s < NSIG; ++s) {
      if (sigismember(&set, s) == 1) rec->blocked |= std::uint64_t{1} << (s - 1);
    }
    tls.record = rec;
    rt->recorder.ThreadStart(*rec->state);
    ApplySignalState(rt, rec);
  } else if (tls.handled_gen != HandledSignalsGeneration()) {
    ApplySignalState(rt, rec);
  }
  if (rt->deferred_count.load(std::memory_order_relaxed) != 0) FlushDeferredReports(rt);
  if (tls.fast_gen != gen) ValidateFastPath(rt, gen);
  return rec->state.get();
}

void ValidateFastPath(Runtime* rt, std::uint64_t gen) {
  if (g_state.load(std::memory_order_acquire) != kRunning || tls.record == nullptr ||
      !tls.registered || tls.exiting || g_fork_pending.load(std::memory_order_acquire) ||
      !g_allocator_ranges_known.load(std::memory_order_acquire) ||
      tls.handled_gen != HandledSignalsGeneration() ||
      rt->deferred_count.load(std::memory_order_acquire) != 0 ||
      !rt->options.intercept.load(std::memory_order_relaxed) || rt->recorder.open_pending()) {
    return;
  }
  tls.fast_state = tls.record->state.get();
  tls.fast_cache = &tls.fast_state->cache();
  // With --record, only the recorded fast path (TryEnterFastEither's kRecorded) may run; the
  // recorder invalidates the generation when recording stops.
  tls.fast_gen = rt->recorder.enabled() ? gen | kFastGenRecording : gen;
}

void OnThreadExit() {
  NoCancel no_cancel;
  HookScope scope;
  if (scope.active()) {
    Runtime* rt = GetRuntime();
    if (rt && tls.record) {
      try {
        rt->engine.ThreadExit(*tls.record->state, 0);
        rt->recorder.ThreadExit(*tls.record->state);
        FlushDeferredReports(rt);
      } catch (abi::__forced_unwind&) {
        throw;  // thread cancellation unwinds through hooks; never swallow it
      } catch (...) {
        TurnOff("exception at thread exit");
      }
    }
    tls.fast_gen = 0;
    tls.fast_state = nullptr;
    tls.fast_cache = nullptr;
    delete tls.record;
    tls.record = nullptr;
    Unregister();
    tls.exiting = true;
  }
}

StackId LazyStack::Capture() {
  if (!rt_->options.stacks) return kNoStack;
  std::uint64_t frames[kMaxStackFrames];
  const int n = CaptureStack(frames, rt_->options.max_stack_depth);
  const StackId id = rt_->depot.Insert(frames, n);
  rt_->recorder.StackDefined(id, frames, n);
  captured_ = id;
  return id;
}

// --- Fork -----------------------------------------------------------------------------------

void BeforeFork() {
  // Called with the guard clear; takes the fork lock, stops other threads at their next hook
  // entry and waits (bounded) until none is inside lockgraph, so the child inherits no
  // internal lock held by a thread that does not exist there.
  g_fork_lock.lock();
  g_fork_pending.store(true, std::memory_order_seq_cst);
  InvalidateFastPath();  // after the flag: a thread validating at the new generation sees it
  if (g_use_membarrier) syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0);
  tls.guard = 1;
  g_registry_lock.lock();
  constexpr int kMaxWaitMs = 2000;  // named limit: a stopped thread must not hang fork
  timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (ThreadLocal* t = g_registry_head; t != nullptr; t = t->next) {
    if (t == &tls) continue;
    while (__atomic_load_n(&t->guard, __ATOMIC_ACQUIRE) != 0) {
      timespec now;
      clock_gettime(CLOCK_MONOTONIC, &now);
      if ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 >
          kMaxWaitMs) {
        break;
      }
      sched_yield();
    }
  }
  if (g_runtime) g_runtime->recorder.BeforeFork();
}

void AfterForkParent() {
  if (g_runtime) g_runtime->recorder.AfterForkParent();
  g_registry_lock.unlock();
  g_fork_pending.store(false, std::memory_order_release);
  tls.guard = 0;
  g_fork_lock.unlock();
}

void AfterForkChild() {
  // Only this thread exists now: it alone stays registered; its held locks stay in its state.
  g_registry_lock.reset();
  g_registry_head = tls.registered ? &tls : nullptr;
  tls.prev = tls.next = nullptr;
  tls.tid = 0;
  g_main_tid = getpid();
  g_findings.store(0);
  if (g_runtime) {
    g_runtime->deferred_count.store(0);
    new (&g_runtime->deferred_mu) std::mutex;
    new (&g_runtime->output_mu) std::mutex;
    g_runtime->recorder.AfterForkChild();
  }
  InvalidateFastPath();  // the child's thread validates again (recorder, deferred reports reset)
  g_fork_pending.store(false, std::memory_order_release);
  g_fork_lock.reset();
  tls.guard = 0;
}

}  // namespace lockgraph::runtime_internal
