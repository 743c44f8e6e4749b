// The pthread, signal and fork interposers. Every one has the same shape: pre-hook (inside a
// HookScope), the real call (outside it, so a blocked thread never holds the guard), post-hook
// with the result; the real result and errno reach the caller unchanged.
#include <alloca.h>
#include <cxxabi.h>
#include <dlfcn.h>
#include <link.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>
#include <ucontext.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdint>
#include <cstdlib>
#include <exception>

#include "runtime.h"

// glibc's internal aliases: used while the real functions are still being resolved (dlsym may
// allocate, and an allocator may lock a mutex before RTLD_NEXT lookups have finished). They are
// compatibility symbols, so each is bound to its version explicitly.
#define LG_COMPAT(ret, local, glibc_name, args)                                    \
  extern "C" ret local args;                                                      \
  __asm__(".symver " #local "," #glibc_name "@GLIBC_2.2.5");
LG_COMPAT(int, lg_compat_mutex_init, __pthread_mutex_init,
          (pthread_mutex_t*, const pthread_mutexattr_t*))
LG_COMPAT(int, lg_compat_mutex_lock, __pthread_mutex_lock, (pthread_mutex_t*))
LG_COMPAT(int, lg_compat_mutex_trylock, __pthread_mutex_trylock, (pthread_mutex_t*))
LG_COMPAT(int, lg_compat_mutex_unlock, __pthread_mutex_unlock, (pthread_mutex_t*))
LG_COMPAT(int, lg_compat_mutex_destroy, __pthread_mutex_destroy, (pthread_mutex_t*))
LG_COMPAT(int, lg_compat_rwlock_init, __pthread_rwlock_init,
          (pthread_rwlock_t*, const pthread_rwlockattr_t*))
LG_COMPAT(int, lg_compat_rwlock_rdlock, __pthread_rwlock_rdlock, (pthread_rwlock_t*))
LG_COMPAT(int, lg_compat_rwlock_wrlock, __pthread_rwlock_wrlock, (pthread_rwlock_t*))
LG_COMPAT(int, lg_compat_rwlock_tryrdlock, __pthread_rwlock_tryrdlock, (pthread_rwlock_t*))
LG_COMPAT(int, lg_compat_rwlock_trywrlock, __pthread_rwlock_trywrlock, (pthread_rwlock_t*))
LG_COMPAT(int, lg_compat_rwlock_unlock, __pthread_rwlock_unlock, (pthread_rwlock_t*))
LG_COMPAT(int, lg_compat_rwlock_destroy, __pthread_rwlock_destroy, (pthread_rwlock_t*))
#undef LG_COMPAT
extern "C" int __sigaction(int, const struct sigaction*, struct sigaction*);
extern "C" pid_t __fork(void);

namespace lockgraph::runtime_internal {
namespace {

// --- The table of real functions ------------------------------------------------------------

#define LG_REAL_FUNCTIONS(X)                                                                   \
  X(pthread_mutex_init, int, (pthread_mutex_t*, const pthread_mutexattr_t*), nullptr,          \
    lg_compat_mutex_init)                                                                      \
  X(pthread_mutex_destroy, int, (pthread_mutex_t*), nullptr, lg_compat_mutex_destroy)          \
  X(pthread_mutex_lock, int, (pthread_mutex_t*), nullptr, lg_compat_mutex_lock)                \
  X(pthread_mutex_trylock, int, (pthread_mutex_t*), nullptr, lg_compat_mutex_trylock)          \
  X(pthread_mutex_timedlock, int, (pthread_mutex_t*, const timespec*), nullptr, nullptr)       \
  X(pthread_mutex_clocklock, int, (pthread_mutex_t*, clockid_t, const timespec*), nullptr,     \
    nullptr)                                                                                   \
  X(pthread_mutex_unlock, int, (pthread_mutex_t*), nullptr, lg_compat_mutex_unlock)            \
  X(pthread_rwlock_init, int, (pthread_rwlock_t*, const pthread_rwlockattr_t*), nullptr,       \
    lg_compat_rwlock_init)                                                                     \
  X(pthread_rwlock_destroy, int, (pthread_rwlock_t*), nullptr, lg_compat_rwlock_destroy)       \
  X(pthread_rwlock_rdlock, int, (pthread_rwlock_t*), nullptr, lg_compat_rwlock_rdlock)         \
  X(pthread_rwlock_tryrdlock, int, (pthread_rwlock_t*), nullptr, lg_compat_rwlock_tryrdlock)   \
  X(pthread_rwlock_timedrdlock, int, (pthread_rwlock_t*, const timespec*), nullptr, nullptr)   \
  X(pthread_rwlock_clockrdlock, int, (pthread_rwlock_t*, clockid_t, const timespec*), nullptr, \
    nullptr)                                                                                   \
  X(pthread_rwlock_wrlock, int, (pthread_rwlock_t*), nullptr, lg_compat_rwlock_wrlock)         \
  X(pthread_rwlock_trywrlock, int, (pthread_rwlock_t*), nullptr, lg_compat_rwlock_trywrlock)   \
  X(pthread_rwlock_timedwrlock, int, (pthread_rwlock_t*, const timespec*), nullptr, nullptr)   \
  X(pthread_rwlock_clockwrlock, int, (pthread_rwlock_t*, clockid_t, const timespec*), nullptr, \
    nullptr)                                                                                   \
  X(pthread_rwlock_unlock, int, (pthread_rwlock_t*), nullptr, lg_compat_rwlock_unlock)         \
  X(pthread_spin_init, int, (pthread_spinlock_t*, int), nullptr, nullptr)                      \
  X(pthread_spin_destroy, int, (pthread_spinlock_t*), nullptr, nullptr)                        \
  X(pthread_spin_lock, int, (pthread_spinlock_t*), nullptr, nullptr)                           \
  X(pthread_spin_trylock, int, (pthread_spinlock_t*), nullptr, nullptr)                        \
  X(pthread_spin_unlock, int, (pthread_spinlock_t*), nullptr, nullptr)                         \
  X(pthread_cond_wait, int, (pthread_cond_t*, pthread_mutex_t*), "GLIBC_2.3.2", nullptr)       \
  X(pthread_cond_timedwait, int, (pthread_cond_t*, pthread_mutex_t*, const timespec*),         \
    "GLIBC_2.3.2", nullptr)                                                                    \
  X(pthread_cond_clockwait, int,                                                               \
    (pthread_cond_t*, pthread_mutex_t*, clockid_t, const timespec*), nullptr, nullptr)         \
  X(pthread_sigmask, int, (int, const sigset_t*, sigset_t*), nullptr, nullptr)                 \
  X(sigprocmask, int, (int, const sigset_t*, sigset_t*), nullptr, nullptr)                     \
  X(sigaction, int, (int, const struct sigaction*, struct sigaction*), nullptr, __sigaction)   \
  X(fork, pid_t, (void), nullptr, __fork)                                                     \
  X(_exit, void, (int), nullptr, nullptr)                                                     \
  X(execve, int, (const char*, char* const*, char* const*), nullptr, nullptr)                 \
  X(execv, int, (const char*, char* const*), nullptr, nullptr)                                \
  X(execvp, int, (const char*, char* const*), nullptr, nullptr)                               \
  X(execvpe, int, (const char*, char* const*, char* const*), nullptr, nullptr)                \
  X(fexecve, int, (int, char* const*, char* const*), nullptr, nullptr)

struct RealFunctions {
#define LG_DECLARE_REAL(name, ret, args, version, fallback) ret(*name) args;
  LG_REAL_FUNCTIONS(LG_DECLARE_REAL)
#undef LG_DECLARE_REAL
};

constinit RealFunctions g_real{};
constinit std::atomic<int> g_resolve_state{0};  // 0 not yet, 1 in progress, 2 done

void ResolveRealFunctions() {
  int expected = 0;
  if (!g_resolve_state.compare_exchange_strong(expected, 1)) return;
  RealFunctions r{};
#define LG_RESOLVE_REAL(name, ret, args, version, fallback)                            \
  {                                                                                    \
    void* p = nullptr;                                                                 \
    const char* v = version;                                                           \
    if (v != nullptr) p = dlvsym(RTLD_NEXT, #name, v);                                 \
    if (p == nullptr) p = dlsym(RTLD_NEXT, #name);                                     \
    if (p == nullptr) p = reinterpret_cast<void*>(static_cast<ret(*) args>(fallback)); \
    r.name = reinterpret_cast<ret(*) args>(p);                                         \
  }
  LG_REAL_FUNCTIONS(LG_RESOLVE_REAL)
#undef LG_RESOLVE_REAL
  g_real = r;
  g_resolve_state.store(2, std::memory_order_release);
}

// The real function, or glibc's alias while resolution is in progress on this path.
#define REAL(name) (g_real.name != nullptr ? g_real.name : RealSlow##name())
#define LG_SLOW_REAL(name, ret, args, version, fallback)                          \
  [[gnu::noinline]] ret(*RealSlow##name())args {                                  \
    if (g_resolve_state.load(std::memory_order_acquire) == 0) ResolveRealFunctions(); \
    if (g_real.name != nullptr) return g_real.name;                              \
    return static_cast<ret(*) args>(fallback);                                    \
  }
LG_REAL_FUNCTIONS(LG_SLOW_REAL)
#undef LG_SLOW_REAL

__attribute__((constructor(101))) void InitShim() {
  ResolveRealFunctions();
  HookScope scope;
  if (scope.active()) GetRuntime();
}

// --- Helpers --------------------------------------------------------------------------------

class ErrnoSaver {
 public:
  ErrnoSaver() : saved_(errno) {}
  ~ErrnoSaver() { errno = saved_; }

 private:
  int saved_;
};

#define LG_CALLER_IP() reinterpret_cast<std::uint64_t>(__builtin_return_address(0))

void InternalError(const char* where) {
  try {
    throw;
  } catch (const std::exception& e) {
    TurnOff(std::string("internal error in ") + where + ": " + e.what());
  } catch (abi::__forced_unwind&) {
    throw;  // thread cancellation unwinds through hooks; never swallow it
  } catch (...) {
    TurnOff(std::string("internal error in ") + where);
  }
}

// Instance stamps: a word of the lock object that glibc leaves unused for process-private,
// non-robust locks holds address ^ salt once lockgraph knows the instance. A lock whose stamp
// does not match was never seen, or its memory was re-initialised (a new std::mutex at a reused
// heap address): it starts as a new instance and inherits nothing.
constexpr std::uintptr_t kStampSalt = 0x6c6f636b67726170ull;  // "lockgrap"

std::uintptr_t StampOf(const void* lock) {
  return reinterpret_cast<std::uintptr_t>(lock) ^ kStampSalt;
}

// pthread_spinlock_t is a volatile int: lockgraph only uses its address.
void* SpinPtr(pthread_spinlock_t* s) { return (void*)s; }  // NOLINT: drops volatile

constexpr int kMutexKindMask = 3;        // PTHREAD_MUTEX_KIND_MASK_NP
constexpr int kMutexRobustBit = 16;      // PTHREAD_MUTEX_ROBUST_NORMAL_NP
constexpr int kMutexPsharedBit = 128;    // PTHREAD_MUTEX_PSHARED_BIT

int MutexKind(const pthread_mutex_t* m) {
  return __atomic_load_n(&m->__data.__kind, __ATOMIC_RELAXED);
}
bool MutexStampable(const pthread_mutex_t* m) {
  const int kind = MutexKind(m);
  return kind >= 0 && (kind & (kMutexRobustBit | kMutexPsharedBit)) == 0;
}
// pthread_mutex_destroy leaves __kind == -1 (glibc then fails lock and unlock with EINVAL).
bool MutexDestroyedByLibc(const pthread_mutex_t* m) { return MutexKind(m) == -1; }
void** MutexStampSlot(pthread_mutex_t* m) {
  return reinterpret_cast<void**>(&m->__data.__list.__next);
}
// The other list word, as unused as the stamp's: the engine's handle of the instance, so the
// fast path finds it without the engine's instance table (0: not known yet).
InstanceHandle* MutexHandleSlot(pthread_mutex_t* m) {
  return reinterpret_cast<InstanceHandle*>(&m->__data.__list.__prev);
}
// Stores the engine's handle of a stamped mutex's instance beside the stamp.
void WriteHandle(Runtime* rt, void* lock, LockKind kind) {
  if (kind != LockKind::kMutex) return;
  const InstanceHandle h = rt->engine.HandleOf(reinterpret_cast<LockId>(lock));
  __atomic_store_n(MutexHandleSlot(static_cast<pthread_mutex_t*>(lock)), h, __ATOMIC_RELAXED);
}
std::uintptr_t* RwlockStampSlot(pthread_rwlock_t* l) {
  return reinterpret_cast<std::uintptr_t*>(&l->__data.__pad2);
}
bool RwlockStampable(const pthread_rwlock_t* l) { return l->__data.__shared == 0; }

bool StampMatches(void* lock, LockKind kind) {
  switch (kind) {
    case LockKind::kMutex: {
      auto* m = static_cast<pthread_mutex_t*>(lock);
      if (!MutexStampable(m)) return false;
      return reinterpret_cast<std::uintptr_t>(
                 __atomic_load_n(MutexStampSlot(m), __ATOMIC_RELAXED)) == StampOf(lock);
    }
    case LockKind::kRwlock: {
      auto* l = static_cast<pthread_rwlock_t*>(lock);
      if (!RwlockStampable(l)) return false;
      return __atomic_load_n(RwlockStampSlot(l), __ATOMIC_RELAXED) == StampOf(lock);
    }
    default:
      return false;
  }
}

bool Stampable(void* lock, LockKind kind) {
  if (kind == LockKind::kMutex) return MutexStampable(static_cast<pthread_mutex_t*>(lock));
  if (kind == LockKind::kRwlock) return RwlockStampable(static_cast<pthread_rwlock_t*>(lock));
  return false;
}

void WriteStamp(void* lock, LockKind kind) {
  if (kind == LockKind::kMutex) {
    __atomic_store_n(MutexStampSlot(static_cast<pthread_mutex_t*>(lock)),
                     reinterpret_cast<void*>(StampOf(lock)), __ATOMIC_RELAXED);
  } else if (kind == LockKind::kRwlock) {
    __atomic_store_n(RwlockStampSlot(static_cast<pthread_rwlock_t*>(lock)), StampOf(lock),
                     __ATOMIC_RELAXED);
  }
}

// First sight is serialised per address stripe so two threads do not both start an instance.
constexpr int kFirstSightStripes = 64;
constinit std::atomic<bool> g_first_sight[kFirstSightStripes];

class StripeLock {
 public:
  explicit StripeLock(const void* lock)
      : flag_(g_first_sight[(reinterpret_cast<std::uintptr_t>(lock) >> 4) %
                            kFirstSightStripes]) {
    while (flag_.exchange(true, std::memory_order_acquire)) sched_yield();
  }
  ~StripeLock() { flag_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool>& flag_;
};

// Makes sure the engine knows `lock` as a live instance before an event on it.
void EnsureKnown(Runtime* rt, ThreadState* ts, void* lock, LockKind kind, std::uint64_t ip) {
  const bool stampable = Stampable(lock, kind);
  if (stampable ? StampMatches(lock, kind)
                : rt->engine.KnowsLock(reinterpret_cast<LockId>(lock))) {
    if (stampable && kind == LockKind::kMutex &&
        __atomic_load_n(MutexHandleSlot(static_cast<pthread_mutex_t*>(lock)), __ATOMIC_RELAXED) ==
            0) {
      WriteHandle(rt, lock, kind);  // stamped before the engine had the instance's handle
    }
    return;
  }
  StripeLock stripe(lock);
  if (stampable ? StampMatches(lock, kind)
                : rt->engine.KnowsLock(reinterpret_cast<LockId>(lock))) {
    return;
  }
  const ClassId cls = FirstSeenClass(rt, lock, kind, ip);
  if (cls == kNoClass) return;
  rt->engine.InitLock(*ts, reinterpret_cast<LockId>(lock), cls, ip);
  rt->recorder.LockInit(*ts, reinterpret_cast<LockId>(lock), cls, ip);
  if (stampable) {
    WriteHandle(rt, lock, kind);
    WriteStamp(lock, kind);
  }
}

// Whether the lock is known (for destroy: never report on locks lockgraph never saw).
bool IsKnown(Runtime* rt, void* lock, LockKind kind) {
  if (Stampable(lock, kind)) return StampMatches(lock, kind);
  return rt->engine.KnowsLock(reinterpret_cast<LockId>(lock));
}

// Locks taken by a malloc implementation are not validated: lockgraph allocates on its slow
// paths, and an allocator that locks its own (non-recursive) mutex around malloc would then
// deadlock on itself. The allocator libraries loaded at start-up are recognised by name, and
// whatever shared library (other than libc) defines the malloc the process uses is one too.
// The ranges are computed at the first lock call, which can come from jemalloc's own start-up
// before this library's static initialisers run: they must be constant-initialised (constinit),
// or a dynamic initialiser running later would wipe what was already collected.
constexpr int kMaxIgnoredRanges = 16;  // named limit: executable segments of allocator libraries
struct IgnoredRanges {
  std::uintptr_t lo[kMaxIgnoredRanges] = {};
  std::uintptr_t hi[kMaxIgnoredRanges] = {};
  int count = 0;
  std::uintptr_t hull_lo = 0;    // one range covering them all: the common "no" costs a compare
  std::uintptr_t hull_size = 0;
  std::uintptr_t malloc_address = 0;  // input: the malloc the dynamic linker bound
};
constinit IgnoredRanges g_ignored;
constinit std::atomic<int> g_ignored_state{0};  // 0 unknown, 1 computing, 2 ready

int CollectAllocatorRanges(dl_phdr_info* info, size_t, void* arg) {
  auto* r = static_cast<IgnoredRanges*>(arg);
  const char* name = info->dlpi_name != nullptr ? info->dlpi_name : "";
  const char* base = strrchr(name, '/');
  base = base != nullptr ? base + 1 : name;
  static const char* const kAllocators[] = {"libjemalloc", "libtcmalloc", "libmimalloc",
                                            "libtbbmalloc", "libhoard"};
  bool allocator = false;
  for (const char* a : kAllocators) allocator |= strncmp(base, a, strlen(a)) == 0;
  // The library that defines the process's malloc, whatever its name; never libc itself, and
  // never the executable (an allocator linked into the program cannot be told from its code).
  if (!allocator && *name != '\0' && strncmp(base, "libc.so", 7) != 0) {
    for (int i = 0; i < info->dlpi_phnum; ++i) {
      const auto& ph = info->dlpi_phdr[i];
      if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_X)) continue;
      const std::uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
      allocator |= r->malloc_address >= lo && r->malloc_address < lo + ph.p_memsz;
    }
  }
  if (!allocator) return 0;
  for (int i = 0; i < info->dlpi_phnum && r->count < kMaxIgnoredRanges; ++i) {
    const auto& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_X)) continue;
    r->lo[r->count] = info->dlpi_addr + ph.p_vaddr;
    r->hi[r->count] = r->lo[r->count] + ph.p_memsz;
    ++r->count;
  }
  return 0;
}

bool FromAllocator(std::uint64_t ip) {
  int state = g_ignored_state.load(std::memory_order_acquire);
  if (state != 2) {
    if (state == 0 && g_ignored_state.compare_exchange_strong(state, 1)) {
      IgnoredRanges r;
      // Through this library's GOT, bound at load time: no dlsym, no allocation here.
      r.malloc_address = reinterpret_cast<std::uintptr_t>(&malloc);
      dl_iterate_phdr(&CollectAllocatorRanges, &r);
      if (r.count > 0) {
        std::uintptr_t lo = r.lo[0], hi = r.hi[0];
        for (int i = 1; i < r.count; ++i) {
          lo = std::min(lo, r.lo[i]);
          hi = std::max(hi, r.hi[i]);
        }
        r.hull_lo = lo;
        r.hull_size = hi - lo;
      }
      g_ignored = r;
      g_ignored_state.store(2, std::memory_order_release);
      g_allocator_ranges_known.store(true, std::memory_order_release);
    } else {
      return false;
    }
  }
  if (ip - g_ignored.hull_lo >= g_ignored.hull_size) return false;
  for (int i = 0; i < g_ignored.count; ++i) {
    if (ip >= g_ignored.lo[i] && ip < g_ignored.hi[i]) return true;
  }
  return false;
}

struct Pre {
  bool tracked = false;  // the engine saw an Acquire that must be cancelled on failure
};

// Bumped whenever the handled-signal set changes (threads re-apply their signal state).
constinit std::atomic<unsigned> g_handled_gen{1};

// --- The fast path --------------------------------------------------------------------------
// The common case of lock and unlock, inlined into the interposers: a lock lockgraph knows (its
// stamp matches), a thread whose held chain with this lock was validated before (the engine's
// per-thread memo) and that validated the fast path's conditions at the current generation
// (ValidateFastPath: runtime running, nothing pending, ...; one compare of a
// thread-local word with g_fast_gen). It sets the recursion guard and asks the engine's
// TryAcquireCached / TryReleaseInnermost, which never report, allocate or call out, so it needs
// no errno save, no cancellation-state change and no exception handler. Anything else returns
// false and the full hook below runs.

// A call from inside the allocator libraries' hull: the full hook tells (FromAllocator). The
// ranges are known before any thread validates the fast path (g_allocator_ranges_known).
bool InAllocatorHull(std::uint64_t ip) { return ip - g_ignored.hull_lo < g_ignored.hull_size; }

// A plain, error-checking or adaptive mutex of this process that lockgraph stamped: the kinds
// the fast path handles (a recursive mutex's owner re-lock is no event: the full hook decides).
bool MutexFastKind(const pthread_mutex_t* m) {
  const int kind = MutexKind(m);
  return kind >= 0 && (kind & (kMutexRobustBit | kMutexPsharedBit)) == 0 &&
         (kind & kMutexKindMask) != PTHREAD_MUTEX_RECURSIVE_NP;
}
bool MutexStamped(pthread_mutex_t* m) {
  return reinterpret_cast<std::uintptr_t>(__atomic_load_n(MutexStampSlot(m), __ATOMIC_RELAXED)) ==
         StampOf(m);
}
bool RwlockStamped(pthread_rwlock_t* l) {
  return l->__data.__shared == 0 &&
         __atomic_load_n(RwlockStampSlot(l), __ATOMIC_RELAXED) == StampOf(l);
}

// The engine's cached path for the fast path's acquisition (entered): its common case through
// the handle inline; the rest (a lock without a handle; a chain not noted in the slot, or usage
// the summary does not settle: without trying the inline part again) out of line.
[[gnu::always_inline]] inline bool EngineCachedAcquire(LockId id, AcquireMode mode, bool trylock,
                                                       std::uint64_t ip, InstanceHandle handle) {
  if (handle == 0) {
    return g_runtime->engine.TryAcquireCached(*tls.fast_state, id, mode, trylock, ip);
  }
  return engine_internal::TryAcquireFromSlot(*tls.fast_cache, id, mode, trylock, ip, handle) ||
         g_runtime->engine.TryAcquireCachedAfterSlot(*tls.fast_state, id, mode, trylock, ip,
                                                     handle);
}

// Acquisition of a stamped lock: true when the engine recorded it on its cached path.
// Inlined into each interposer, so the request's mode and trylock bit are constants there.
// With --record (the thread validated for the recorded fast path): the engine's cached step and
// the record appended inline to the thread's block (Recorder::PutFastAcquire), or neither (false:
// the full hook runs and records through the recorder's own path). Called with the fast path
// entered (TryEnterFastEither said kRecorded); leaves it.
[[gnu::noinline]] bool RecordedAcquireFast(void* lock, AcquireMode mode, bool trylock,
                                           std::uint64_t ip, InstanceHandle handle) {
  const auto id = reinterpret_cast<LockId>(lock);
  Recorder& recorder = g_runtime->recorder;
  RecordBuffer* b = recorder.FastBufferForAcquire(ip);
  const bool done = b != nullptr && EngineCachedAcquire(id, mode, trylock, ip, handle);
  if (done) recorder.PutFastAcquire(b, id, mode, trylock, ip);
  LeaveFast();
  return done;
}
[[gnu::noinline]] bool RecordedReleaseFast(void* lock, std::uint64_t ip) {
  engine_internal::ThreadCache* tc = tls.fast_cache;
  const auto id = reinterpret_cast<LockId>(lock);
  Recorder& recorder = g_runtime->recorder;
  RecordBuffer* b = recorder.FastBufferForRelease(id, ip);
  const bool done = b != nullptr && engine_internal::TryReleaseInnermost(*tc, id);
  if (done) recorder.PutFastRelease(b, id, ip);
  LeaveFast();
  return done;
}

[[gnu::always_inline]] inline bool AcquireFast(void* lock, AcquireMode mode, bool trylock,
                                               std::uint64_t ip, InstanceHandle handle = 0) {
  if (InAllocatorHull(ip)) return false;
  const FastEntry entry = TryEnterFastEither();
  if (entry != FastEntry::kPlain) {
    return entry == FastEntry::kRecorded && RecordedAcquireFast(lock, mode, trylock, ip, handle);
  }
  const bool done =
      EngineCachedAcquire(reinterpret_cast<LockId>(lock), mode, trylock, ip, handle);
  LeaveFast();
  return done;
}

// Release of a lock the thread holds innermost in the engine.
[[gnu::always_inline]] inline bool ReleaseFast(void* lock, std::uint64_t ip) {
  if (InAllocatorHull(ip)) return false;
  const FastEntry entry = TryEnterFastEither();
  if (entry != FastEntry::kPlain) {
    return entry == FastEntry::kRecorded && RecordedReleaseFast(lock, ip);
  }
  const bool done =
      engine_internal::TryReleaseInnermost(*tls.fast_cache, reinterpret_cast<LockId>(lock));
  LeaveFast();
  return done;
}

// The runtime and this thread's state when a hook may run, else nulls.
struct Ctx {
  Runtime* rt = nullptr;
  ThreadState* ts = nullptr;
  explicit operator bool() const { return ts != nullptr; }
};

Ctx Enter() {
  Ctx c;
  c.rt = GetRuntime();
  if (c.rt == nullptr) return c;
  if (!c.rt->options.intercept.load(std::memory_order_relaxed)) {  // intercept=0
    c.rt = nullptr;
    return c;
  }
  c.ts = CurrentThread(c.rt);
  return c;
}

void EngineAcquire(Ctx& c, void* lock, AcquireMode mode, bool trylock, std::uint64_t ip) {
  LazyStack stack(c.rt);
  AcquireRequest req;
  req.lock = reinterpret_cast<LockId>(lock);
  req.mode = mode;
  req.trylock = trylock;
  req.ip = ip;
  req.stack_source = &stack;
  c.rt->engine.Acquire(*c.ts, req);
  if (c.rt->recorder.enabled()) c.rt->recorder.Acquire(*c.ts, req, stack.captured());
}

void EngineRelease(Ctx& c, void* lock, std::uint64_t ip) {
  c.rt->engine.Release(*c.ts, reinterpret_cast<LockId>(lock), ip);
  if (c.rt->recorder.enabled()) {
    c.rt->recorder.Release(*c.ts, reinterpret_cast<LockId>(lock), ip);
  }
}

void EngineCancel(Ctx& c, void* lock) {
  c.rt->engine.CancelAcquire(*c.ts, reinterpret_cast<LockId>(lock));
  if (c.rt->recorder.enabled()) c.rt->recorder.Cancel(*c.ts, reinterpret_cast<LockId>(lock));
}

// A lock or unlock call on a mutex glibc marks destroyed. When the engine saw that destroy, the
// call is a use of a destroyed lock: an acquisition makes the engine report it (and is cancelled
// after glibc's EINVAL; `cancel` does that at once for calls that do not acquire; an unlock is
// fed as a trylock, which adds no dependency). Never a fresh first sight: the memory does not
// hold a new lock. Returns whether the engine saw an acquire.
bool UseOfDestroyedMutex(Ctx& c, pthread_mutex_t* m, bool trylock, bool cancel,
                         std::uint64_t ip) {
  if (c.rt->engine.GetLockState(reinterpret_cast<LockId>(m)) != Engine::LockState::kDestroyed) {
    return false;  // destroyed before lockgraph knew it: nothing to say
  }
  EngineAcquire(c, m, AcquireMode::kExclusive, trylock, ip);
  if (cancel) EngineCancel(c, m);
  return true;
}

// --- Mutex hooks ----------------------------------------------------------------------------

bool MutexRelockByOwner(pthread_mutex_t* m) {
  return (MutexKind(m) & kMutexKindMask) == PTHREAD_MUTEX_RECURSIVE_NP &&
         __atomic_load_n(&m->__data.__owner, __ATOMIC_RELAXED) == CurrentTid();
}

[[gnu::noinline]] Pre BeforeMutexBlockingSlow(pthread_mutex_t* m, std::uint64_t ip) {
  if (FromAllocator(ip)) return Pre{};
  ErrnoSaver errno_saver;
  HookScope scope;
  Pre pre;
  if (!scope.active()) return pre;
  try {
    Ctx c = Enter();
    if (!c) return pre;
    if (MutexRelockByOwner(m)) return pre;  // recursion of a recursive mutex: not an event
    if (MutexDestroyedByLibc(m)) {
      // A destroyed mutex: the engine reports the use (when it saw the destroy) before glibc
      // fails the call with EINVAL, which cancels the acquisition again.
      if (!UseOfDestroyedMutex(c, m, /*trylock=*/false, /*cancel=*/false, ip)) return pre;
      pre.tracked = true;
      return pre;
    }
    EnsureKnown(c.rt, c.ts, m, LockKind::kMutex, ip);
    EngineAcquire(c, m, AcquireMode::kExclusive, false, ip);
    pre.tracked = true;
  } catch (abi::__forced_unwind&) {
    throw;  // thread cancellation unwinds through hooks; never swallow it
  } catch (...) {
    InternalError("mutex lock");
  }
  return pre;
}

[[gnu::always_inline]] inline Pre BeforeMutexBlocking(pthread_mutex_t* m, std::uint64_t ip) {
  if (MutexFastKind(m) && MutexStamped(m) &&
      AcquireFast(m, AcquireMode::kExclusive, false, ip,
                  __atomic_load_n(MutexHandleSlot(m), __ATOMIC_RELAXED))) {
    return Pre{true};
  }
  return BeforeMutexBlockingSlow(m, ip);
}

[[gnu::noinline]] void AfterMutexBlockingFailed(pthread_mutex_t* m);

[[gnu::always_inline]] inline void AfterMutexBlocking(pthread_mutex_t* m, const Pre& pre, int rc) {
  // EOWNERDEAD (robust) and ENOTRECOVERABLE: the first holds the lock, the second does not.
  if (!pre.tracked || rc == 0 || rc == EOWNERDEAD) return;
  AfterMutexBlockingFailed(m);
}

// A validated acquisition whose real call failed: the engine forgets it.
void AfterMutexBlockingFailed(pthread_mutex_t* m) {
  ErrnoSaver errno_saver;
  HookScope scope;
  if (!scope.active()) return;
  try {
    Ctx c = Enter();
    if (c) EngineCancel(c, m);
  } catch (abi::__forced_unwind&) {
    throw;  // thread cancellation unwinds through hooks; never swallow it
  } catch (...) {
    InternalError("mutex lock");
  }
}

[[gnu::noinline]] void AfterMutexTrySlow(pthread_mutex_t* m, int rc, std::uint64_t ip) {
  if (FromAllocator(ip)) return;
  const bool destroyed = rc == EINVAL && MutexDestroyedByLibc(m);
  if (rc != 0 && rc != EOWNERDEAD && !destroyed) return;
  ErrnoSaver errno_saver;
  HookScope scope;
  if (!scope.active()) return;
  try {
    Ctx c = Enter();
    if (!c) return;
    if (destroyed) {
      UseOfDestroyedMutex(c, m, /*trylock=*/true, /*cancel=*/true, ip);
      return;
    }
    if ((MutexKind(m) & kMutexKindMask) == PTHREAD_MUTEX_RECURSIVE_NP &&
        __atomic_load_n(&m->__data.__count, __ATOMIC_RELAXED) > 1) {
      return;  // a recursive re-lock by the owner
    }
    EnsureKnown(c.rt, c.ts, m, LockKind::kMutex, ip);
    EngineAcquire(c, m, AcquireMode::kExclusive, true, ip);
  } catch (abi::__forced_unwind&) {
    throw;  // thread cancellation unwinds through hooks; never swallow it
  } catch (...) {
    InternalError("mutex trylock");
  }
}

[[gnu::always_inline]] inline void AfterMutexTry(pthread_mutex_t* m, int rc, std::uint64_t ip) {
  if (rc == 0 && MutexFastKind(m) && MutexStamped(m) &&
      AcquireFast(m, AcquireMode::kExclusive, true, ip,
                  __atomic_load_n(MutexHandleSlot(m), __ATOMIC_RELAXED))) {
    return;
  }
  AfterMutexTrySlow(m, rc, ip);
}

// Releases `lock` in the engine when this thread holds it there, or when the real lock says the
// caller is not its owner (unlock by a non-owner, or of an unlocked lock: reported).
void ReleaseIfOwned(Ctx& c, void* lock, LockKind kind, bool caller_is_owner, std::uint64_t ip) {
  const auto id = reinterpret_cast<LockId>(lock);
  if (c.ts->Holds(id)) {
    EngineRelease(c, lock, ip);
    return;
  }
  // Held by this thread in reality but not in the engine: an acquisition lockgraph did not see
  // (taken inside lockgraph's own code, or before it started). Nothing to report.
  if (caller_is_owner) return;
  EnsureKnown(c.rt, c.ts, lock, kind, ip);
  EngineRelease(c, lock, ip);
}

[[gnu::noinline]] void BeforeMutexUnlockSlow(pthread_mutex_t* m, std::uint64_t ip) {
  if (FromAllocator(ip)) return;
  ErrnoSaver errno_saver;
  HookScope scope;
  if (!scope.active()) return;
  try {
    Ctx c = Enter();
    if (!c) return;
    if (MutexDestroyedByLibc(m)) {
      // glibc fails it with EINVAL and nothing is released: a use of the destroyed lock, not a
      // bad unlock balance.
      UseOfDestroyedMutex(c, m, /*trylock=*/true, /*cancel=*/true, ip);
      return;
    }
    const bool owner = __atomic_load_n(&m->__data.__owner, __ATOMIC_RELAXED) == CurrentTid();
    if (owner && (MutexKind(m) & kMutexKindMask) == PTHREAD_MUTEX_RECURSIVE_NP &&
        __atomic_load_n(&m->__data.__count, __ATOMIC_RELAXED) > 1) {
      return;  // inner level of a recursive mutex
    }
    ReleaseIfOwned(c, m, LockKind::kMutex, owner, ip);
  } catch (abi::__forced_unwind&) {
    throw;  // thread cancellation unwinds through hooks; never swallow it
  } catch (...) {
    InternalError("mutex unlock");
  }
}

[[gnu::always_inline]] inline void BeforeMutexUnlock(pthread_mutex_t* m, std::uint64_t ip) {
  if (MutexFastKind(m) && ReleaseFast(m, ip)) return;
  BeforeMutexUnlockSlow(m, ip);
}

// Init hooks: the class of the call site, a new instance, the stamp.
void AfterInit(void* lock, LockKind kind, int rc, std::uint64_t ip) {
  if (FromAllocator(ip)) return;
  if (rc != 0) return;
  ErrnoSaver errno_saver;
  HookScope scope;
  if (!scope.active()) return;
  try {
    Ctx c = Enter();
    if (!c) return;
    const ClassId cls = InitSiteClass(c.rt, lock, kind, ip);
    if (cls == kNoClass) return;
    c.rt->engine.InitLock(*c.ts, reinterpret_cast<LockId>(lock), cls, ip);
    c.rt->recorder.LockInit(*c.ts, reinterpret_cast<LockId>(lock), cls, ip);
    if (Stampable(lock, kind)) {
      WriteHandle(c.rt, lock, kind);
      WriteStamp(lock, kind);
    }
  } catch (abi::__forced_unwind&) {
    throw;  // thread cancellation unwinds through hooks; never swallow it
  } catch (...) {
    InternalError("lock init");
  }
}

void BeforeDestroy(void* lock, LockKind kind, std::uint64_t ip) {
  if (FromAllocator(ip)) return;
  ErrnoSaver errno_saver;
  HookScope scope;
  if (!scope.active()) return;
  try {
    Ctx c = Enter();
    if (!c) return;
    if (!IsKnown(c.rt, lock, kind)) return;  // never seen: nothing to end
    LazyStack stack(c.rt);
    c.rt->engine.DestroyLock(*c.ts, reinterpret_cast<LockId>(lock), ip, &stack);
    c.rt->recorder.LockDestroy(*c.ts, reinterpret_cast<LockId>(lock), ip, stack.captured());
  } catch (abi::__forced_unwind&) {
    throw;  // thread cancellation unwinds through hooks; never swallow it
  } catch (...) {
    InternalError("lock destroy");
  }
}

// --- Rwlock hooks ---------------------------------------------------------------------------

AcquireMode ReadMode(const pthread_rwlock_t* l) {
  // glibc's default (reader-preferring) rwlock lets a reader in while a writer waits: a
  // recursive read. The writer-preferring non-recursive kind blocks it: a plain read.
  return l->__data.__flags == PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP
             ? AcquireMode::kShared
             : AcquireMode::kSharedRecursive;
}

[[gnu::noinline]] Pre BeforeRwlockBlockingSlow(pthread_rwlock_t* l, bool write, std::uint64_t ip) {
  if (FromAllocator(ip)) return Pre{};
  ErrnoSaver errno_saver;
  HookScope scope;
  Pre pre;
  if (!scope.active()) return pre;
  try {
    Ctx c = Enter();
    if (!c) return pre;
    EnsureKnown(c.rt, c.ts, l, LockKind::kRwlock, ip);
    EngineAcquire(c, l, write ? AcquireMode::kExclusive : ReadMode(l), false, ip);
    pre.tracked = true;
  } catch (abi::__forced_unwind&) {
    throw;  // thread cancellation unwinds through hooks; never swallow it
  } catch (...) {
    InternalError("rwlock lock");
  }
  return pre;
}

[[gnu::always_inline]] inline Pre BeforeRwlockBlocking(pthread_rwlock_t* l, bool write, std::uint64_t ip) {
  if (RwlockStamped(l) &&
      AcquireFast(l, write ? AcquireMode::kExclusive : ReadMode(l), false, ip)) {
    return Pre{true};
  }
  return BeforeRwlockBlockingSlow(l, write, ip);
}

void AfterRwlockBlocking(pthread_rwlock_t* l, const Pre& pre, int rc) {
  if (!pre.tracked || rc == 0) return;
  ErrnoSaver errno_saver;
  HookScope scope;
  if (!scope.active()) return;
  try {
    Ctx c = Enter();
    if (c) EngineCancel(c, l);
  } catch (abi::__forced_unwind&) {
    throw;  // thread cancellation unwinds through hooks; never swallow it
  } catch (...) {
    InternalError("rwlock lock");
  }
}

[[gnu::noinline]] void AfterRwlockTrySlow(pthread_rwlock_t* l, bool write, int rc, std::uint64_t ip) {
  if (FromAllocator(ip)) return;
  if (rc != 0) return;
  ErrnoSaver errno_saver;
  HookScope scope;
  if (!scope.active()) return;
  try {
    Ctx c = Enter();
    if (!c) return;
    EnsureKnown(c.rt, c.ts, l, LockKind::kRwlock, ip);
    EngineAcquire(c, l, write ? AcquireMode::kExclusive : ReadMode(l), true, ip);
  } catch (abi::__forced_unwind&) {
    throw;  // thread cancellation unwinds through hooks; never swallow it
  } catch (...) {
    InternalError("rwlock trylock");
  }
}

[[gnu::always_inline]] inline void AfterRwlockTry(pthread_rwlock_t* l, bool write, int rc, std::uint64_t ip) {
  if (rc == 0 && RwlockStamped(l) &&
      AcquireFast(l, write ? AcquireMode::kExclusive : ReadMode(l), true, ip)) {
    return;
  }
  AfterRwlockTrySlow(l, write, rc, ip);
}

[[gnu::noinline]] void BeforeRwlockUnlockSlow(pthread_rwlock_t* l, std::uint64_t ip) {
  if (FromAllocator(ip)) return;
  ErrnoSaver errno_saver;
  HookScope scope;
  if (!scope.active()) return;
  try {
    Ctx c = Enter();
    if (!c) return;
    const bool writer = __atomic_load_n(&l->__data.__cur_writer, __ATOMIC_RELAXED) == CurrentTid();
    // Readers are not recorded by glibc: a read-held rwlock not in the engine is assumed to be
    // an unseen acquisition when it has readers.
    const bool has_readers = (__atomic_load_n(&l->__data.__readers, __ATOMIC_RELAXED) >> 3) != 0;
    ReleaseIfOwned(c, l, LockKind::kRwlock, writer || has_readers, ip);
  } catch (abi::__forced_unwind&) {
    throw;  // thread cancellation unwinds through hooks; never swallow it
  } catch (...) {
    InternalError("rwlock unlock");
  }
}

[[gnu::always_inline]] inline void BeforeRwlockUnlock(pthread_rwlock_t* l, std::uint64_t ip) {
  if (ReleaseFast(l, ip)) return;
  BeforeRwlockUnlockSlow(l, ip);
}

// --- Spinlock hooks -------------------------------------------------------------------------

Pre BeforeSpinBlocking(pthread_spinlock_t* s, std::uint64_t ip) {
  if (FromAllocator(ip)) return Pre{};
  ErrnoSaver errno_saver;
  HookScope scope;
  Pre pre;
  if (!scope.active()) return pre;
  try {
    Ctx c = Enter();
    if (!c) return pre;
    EnsureKnown(c.rt, c.ts, SpinPtr(s), LockKind::kSpinlock, ip);
    EngineAcquire(c, SpinPtr(s), AcquireMode::kExclusive, false, ip);
    pre.tracked = true;
  } catch (abi::__forced_unwind&) {
    throw;  // thread cancellation unwinds through hooks; never swallow it
  } catch (...) {
    InternalError("spin lock");
  }
  return pre;
}

// --- Condition variables --------------------------------------------------------------------

// A wait releases its mutex and re-acquires it before returning (also on timeout).
bool BeforeCondWait(pthread_mutex_t* m, std::uint64_t ip) {
  if (FromAllocator(ip)) return false;
  ErrnoSaver errno_saver;
  HookScope scope;
  if (!scope.active()) return false;
  try {
    Ctx c = Enter();
    if (!c || !c.ts->Holds(reinterpret_cast<LockId>(m))) return false;
    EngineRelease(c, m, ip);
    return true;
  } catch (abi::__forced_unwind&) {
    throw;  // thread cancellation unwinds through hooks; never swallow it
  } catch (...) {
    InternalError("condition wait");
  }
  return false;
}

void AfterCondWait(pthread_mutex_t* m, bool released, std::uint64_t ip) {
  if (!released) return;
  ErrnoSaver errno_saver;
  HookScope scope;
  if (!scope.active()) return;
  try {
    Ctx c = Enter();
    if (c) EngineAcquire(c, m, AcquireMode::kExclusive, false, ip);
  } catch (abi::__forced_unwind&) {
    throw;  // thread cancellation unwinds through hooks; never swallow it
  } catch (...) {
    InternalError("condition wait");
  }
}

// --- Signals --------------------------------------------------------------------------------

constexpr int kMaxSignal = 64;  // signals 1..64 map to contexts 2..65

struct HandlerSlot {
  std::atomic<void*> handler{nullptr};  // user handler (sa_handler or sa_sigaction)
  std::atomic<int> flags{0};            // user sa_flags
};
constinit HandlerSlot g_handlers[kMaxSignal + 1];
constinit std::atomic<std::uint64_t> g_handled{0};

std::uint64_t SigsetBits(const sigset_t& set) {
  std::uint64_t bits = 0;
  for (int s = 1; s <= kMaxSignal && s < NSIG; ++s) {
    if (sigismember(&set, s) == 1) bits |= std::uint64_t{1} << (s - 1);
  }
  return bits;
}

void NameSignalContext(Runtime* rt, int sig) {
  const char* abbrev = sigabbrev_np(sig);
  std::string name = abbrev ? std::string("SIG") + abbrev : "SIG" + std::to_string(sig);
  rt->engine.SetContextName(SignalContext(sig), name);
  rt->recorder.ContextNamed(SignalContext(sig), name);
}

void SignalTrampoline(int sig, siginfo_t* info, void* uctx) {
  const int saved_errno = errno;
  // A handler that interrupts a stack capture (a synchronous fault) makes real mask calls.
  const bool capture_mask_active = tls.capture_mask_active;
  tls.capture_mask_active = false;
  void* handler = g_handlers[sig].handler.load(std::memory_order_acquire);
  const int flags = g_handlers[sig].flags.load(std::memory_order_acquire);
  if (flags & SA_RESETHAND) {
    // The kernel has put SIG_DFL back for this delivery: from now on the signal runs no lock
    // code until a handler is installed again (async-signal-safe: atomics only).
    g_handlers[sig].handler.store(reinterpret_cast<void*>(SIG_DFL), std::memory_order_release);
    g_handled.fetch_and(~(std::uint64_t{1} << (sig - 1)), std::memory_order_acq_rel);
    g_handled_gen.fetch_add(1, std::memory_order_acq_rel);
    InvalidateFastPath();
  }
  bool tracked = false;
  std::uint64_t saved_blocked = 0;
  Ctx c;
  {
    HookScope scope;
    if (scope.active()) {
      try {
        c = Enter();
        if (c && tls.record != nullptr) {
          sigset_t cur;
          sigemptyset(&cur);
          REAL(pthread_sigmask)(SIG_BLOCK, nullptr, &cur);
          // The mask the kernel restores when the handler returns (the thread's record may
          // have been created just now, from inside the handler, with the handler's mask).
          saved_blocked = uctx != nullptr
                              ? SigsetBits(static_cast<ucontext_t*>(uctx)->uc_sigmask)
                              : tls.record->blocked;
          ++tls.signal_depth;
          if (tls.signal_depth <= 8) {
            tls.signal_handlers[tls.signal_depth - 1] = reinterpret_cast<std::uintptr_t>(handler);
          }
          c.rt->engine.EnterContext(*c.ts, SignalContext(sig));
          if (c.rt->recorder.enabled()) c.rt->recorder.EnterContext(*c.ts, SignalContext(sig));
          tls.record->blocked = SigsetBits(cur);
          ApplySignalState(c.rt, tls.record);
          tracked = true;
        }
      } catch (abi::__forced_unwind&) {
        throw;  // thread cancellation unwinds through hooks; never swallow it
      } catch (...) {
        InternalError("signal entry");
      }
    }
  }
  errno = saved_errno;
  if (handler != nullptr && handler != reinterpret_cast<void*>(SIG_DFL) &&
      handler != reinterpret_cast<void*>(SIG_IGN)) {
    if (flags & SA_SIGINFO) {
      reinterpret_cast<void (*)(int, siginfo_t*, void*)>(handler)(sig, info, uctx);
    } else {
      reinterpret_cast<void (*)(int)>(handler)(sig);
    }
  }
  const int handler_errno = errno;
  if (tracked) {
    HookScope scope;
    if (scope.active()) {
      try {
        c = Enter();
        if (c && tls.record != nullptr) {
          c.rt->engine.ExitContext(*c.ts, SignalContext(sig), 0);
          if (c.rt->recorder.enabled()) c.rt->recorder.ExitContext(*c.ts, SignalContext(sig));
          tls.record->blocked = saved_blocked;
          ApplySignalState(c.rt, tls.record);
        }
      } catch (abi::__forced_unwind&) {
        throw;  // thread cancellation unwinds through hooks; never swallow it
      } catch (...) {
        InternalError("signal exit");
      }
      --tls.signal_depth;
    } else {
      --tls.signal_depth;
    }
  }
  (void)handler_errno;
  tls.capture_mask_active = capture_mask_active;
  errno = saved_errno;
}

bool IsUserHandler(void* h) {
  return h != reinterpret_cast<void*>(SIG_DFL) && h != reinterpret_cast<void*>(SIG_IGN) &&
         h != nullptr;
}

int SigactionHook(int sig, const struct sigaction* act, struct sigaction* old) {
  if (sig < 1 || sig > kMaxSignal || sig == SIGKILL || sig == SIGSTOP) {
    return REAL(sigaction)(sig, act, old);
  }
  const void* prev_handler = g_handlers[sig].handler.load(std::memory_order_acquire);
  const int prev_flags = g_handlers[sig].flags.load(std::memory_order_acquire);
  struct sigaction mine;
  const struct sigaction* pass = act;
  void* new_handler = nullptr;
  if (act != nullptr) {
    new_handler = (act->sa_flags & SA_SIGINFO) ? reinterpret_cast<void*>(act->sa_sigaction)
                                               : reinterpret_cast<void*>(act->sa_handler);
    if (IsUserHandler(new_handler)) {
      mine = *act;
      mine.sa_sigaction = &SignalTrampoline;
      mine.sa_flags |= SA_SIGINFO;
      pass = &mine;
      // Publish the user's handler before the kernel can deliver to the trampoline.
      g_handlers[sig].flags.store(act->sa_flags, std::memory_order_release);
      g_handlers[sig].handler.store(new_handler, std::memory_order_release);
    }
  }
  const int rc = REAL(sigaction)(sig, pass, old);
  const int saved_errno = errno;
  if (rc != 0) {
    g_handlers[sig].handler.store(const_cast<void*>(prev_handler), std::memory_order_release);
    g_handlers[sig].flags.store(prev_flags, std::memory_order_release);
    errno = saved_errno;
    return rc;
  }
  if (old != nullptr && (old->sa_flags & SA_SIGINFO) &&
      old->sa_sigaction == &SignalTrampoline) {
    // Show the program its own handler, never lockgraph's trampoline.
    old->sa_flags = prev_flags;
    if (prev_flags & SA_SIGINFO) {
      old->sa_sigaction = reinterpret_cast<void (*)(int, siginfo_t*, void*)>(
          const_cast<void*>(prev_handler));
    } else {
      old->sa_handler = reinterpret_cast<void (*)(int)>(const_cast<void*>(prev_handler));
    }
  }
  if (act != nullptr) {
    const std::uint64_t bit = std::uint64_t{1} << (sig - 1);
    if (IsUserHandler(new_handler)) {
      g_handled.fetch_or(bit, std::memory_order_acq_rel);
    } else {
      g_handlers[sig].handler.store(new_handler, std::memory_order_release);
      g_handled.fetch_and(~bit, std::memory_order_acq_rel);
    }
    g_handled_gen.fetch_add(1, std::memory_order_acq_rel);
    InvalidateFastPath();
    HookScope scope;
    if (scope.active()) {
      try {
        if (Runtime* rt = GetRuntime(); rt && IsUserHandler(new_handler)) {
          NameSignalContext(rt, sig);
        }
      } catch (abi::__forced_unwind&) {
        throw;  // thread cancellation unwinds through hooks; never swallow it
      } catch (...) {
        InternalError("sigaction");
      }
    }
  }
  errno = saved_errno;
  return rc;
}

std::uint64_t ApplyHow(int how, std::uint64_t old_bits, std::uint64_t set_bits) {
  switch (how) {
    case SIG_BLOCK: return old_bits | set_bits;
    case SIG_UNBLOCK: return old_bits & ~set_bits;
    default: return set_bits;  // SIG_SETMASK
  }
}

// A mask call inside a stack capture (BeginCaptureMask): every signal stays blocked for real
// until EndCaptureMask; the call reads and changes tls.capture_mask only. Returns 0 or EINVAL.
int CaptureMaskCall(int how, const sigset_t* set, sigset_t* old) {
  const sigset_t current = tls.capture_mask;
  if (set != nullptr) {
    const sigset_t change = *set;  // `set` may alias `old`
    switch (how) {
      case SIG_BLOCK:
        sigorset(&tls.capture_mask, &current, &change);
        break;
      case SIG_UNBLOCK:
        for (int sig = 1; sig < NSIG; ++sig) {
          if (sigismember(&change, sig) == 1) sigdelset(&tls.capture_mask, sig);
        }
        break;
      case SIG_SETMASK:
        tls.capture_mask = change;
        break;
      default:
        return EINVAL;
    }
  }
  if (old != nullptr) *old = current;
  return 0;
}

void AfterMaskChange(int how, const sigset_t* set, const sigset_t* old) {
  if (set == nullptr || tls.record == nullptr) return;
  ErrnoSaver errno_saver;
  HookScope scope;
  if (!scope.active()) return;
  try {
    Runtime* rt = GetRuntime();
    if (rt == nullptr || tls.record == nullptr) return;
    std::uint64_t bits = ApplyHow(how, SigsetBits(*old), SigsetBits(*set));
    bits &= ~((std::uint64_t{1} << (SIGKILL - 1)) | (std::uint64_t{1} << (SIGSTOP - 1)));
    tls.record->blocked = bits;
    ApplySignalState(rt, tls.record);
  } catch (abi::__forced_unwind&) {
    throw;  // thread cancellation unwinds through hooks; never swallow it
  } catch (...) {
    InternalError("signal mask");
  }
}

}  // namespace

bool BeginCaptureMask(sigset_t* saved) {
  sigset_t all;
  sigfillset(&all);
  if (REAL(pthread_sigmask)(SIG_SETMASK, &all, saved) != 0) return false;
  tls.capture_mask = all;
  tls.capture_mask_active = true;
  return true;
}

void EndCaptureMask(const sigset_t* saved) {
  tls.capture_mask_active = false;
  REAL(pthread_sigmask)(SIG_SETMASK, saved, nullptr);
}

std::uint64_t HandledSignals() { return g_handled.load(std::memory_order_acquire); }
unsigned HandledSignalsGeneration() { return g_handled_gen.load(std::memory_order_acquire); }

ContextId SignalContext(int sig) {
  return static_cast<ContextId>(kFirstNumberedContext + sig - 1);
}

void ApplySignalState(Runtime* rt, ThreadRecord* record) {
  tls.handled_gen = HandledSignalsGeneration();
  ThreadState& ts = *record->state;
  // Signals without a handler cannot run lock code: they count as disabled.
  const std::uint64_t disabled = record->blocked | ~HandledSignals();
  ContextMask mask;
  const ContextMask current = ts.disabled_contexts();
  if (current.Test(kHardirqContext)) mask.Set(kHardirqContext);
  if (current.Test(kSoftirqContext)) mask.Set(kSoftirqContext);
  for (int s = 1; s <= kMaxSignal; ++s) {
    if ((disabled >> (s - 1)) & 1u) mask.Set(SignalContext(s));
  }
  if (mask == current) return;
  rt->engine.SetDisabledContexts(ts, mask);
  if (rt->recorder.enabled()) rt->recorder.SetDisabledMask(ts, mask);
}

}  // namespace lockgraph::runtime_internal

// --- The interposed symbols -----------------------------------------------------------------

using namespace lockgraph;                    // NOLINT: the C ABI surface below
using namespace lockgraph::runtime_internal;  // NOLINT

LG_EXPORT int pthread_mutex_init(pthread_mutex_t* m, const pthread_mutexattr_t* attr) {
  const auto ip = LG_CALLER_IP();
  const int rc = REAL(pthread_mutex_init)(m, attr);
  AfterInit(m, LockKind::kMutex, rc, ip);
  return rc;
}

LG_EXPORT int pthread_mutex_destroy(pthread_mutex_t* m) {
  BeforeDestroy(m, LockKind::kMutex, LG_CALLER_IP());
  return REAL(pthread_mutex_destroy)(m);
}

LG_EXPORT int pthread_mutex_lock(pthread_mutex_t* m) {
  const Pre pre = BeforeMutexBlocking(m, LG_CALLER_IP());
  const int rc = REAL(pthread_mutex_lock)(m);
  AfterMutexBlocking(m, pre, rc);
  return rc;
}

LG_EXPORT int pthread_mutex_timedlock(pthread_mutex_t* m, const timespec* abstime) {
  const Pre pre = BeforeMutexBlocking(m, LG_CALLER_IP());
  const int rc = REAL(pthread_mutex_timedlock)(m, abstime);
  AfterMutexBlocking(m, pre, rc);
  return rc;
}

LG_EXPORT int pthread_mutex_clocklock(pthread_mutex_t* m, clockid_t clock,
                                      const timespec* abstime) {
  const Pre pre = BeforeMutexBlocking(m, LG_CALLER_IP());
  const int rc = REAL(pthread_mutex_clocklock)(m, clock, abstime);
  AfterMutexBlocking(m, pre, rc);
  return rc;
}

LG_EXPORT int pthread_mutex_trylock(pthread_mutex_t* m) {
  const auto ip = LG_CALLER_IP();
  const int rc = REAL(pthread_mutex_trylock)(m);
  AfterMutexTry(m, rc, ip);
  return rc;
}

LG_EXPORT int pthread_mutex_unlock(pthread_mutex_t* m) {
  BeforeMutexUnlock(m, LG_CALLER_IP());
  return REAL(pthread_mutex_unlock)(m);
}

LG_EXPORT int pthread_rwlock_init(pthread_rwlock_t* l, const pthread_rwlockattr_t* attr) {
  const auto ip = LG_CALLER_IP();
  const int rc = REAL(pthread_rwlock_init)(l, attr);
  AfterInit(l, LockKind::kRwlock, rc, ip);
  return rc;
}

LG_EXPORT int pthread_rwlock_destroy(pthread_rwlock_t* l) {
  BeforeDestroy(l, LockKind::kRwlock, LG_CALLER_IP());
  return REAL(pthread_rwlock_destroy)(l);
}

#define LG_RWLOCK_BLOCKING(name, write, params, args)    \
  LG_EXPORT int name params {                            \
    const Pre pre = BeforeRwlockBlocking(l, write, LG_CALLER_IP()); \
    const int rc = REAL(name) args;                      \
    AfterRwlockBlocking(l, pre, rc);                     \
    return rc;                                           \
  }
LG_RWLOCK_BLOCKING(pthread_rwlock_rdlock, false, (pthread_rwlock_t* l), (l))
LG_RWLOCK_BLOCKING(pthread_rwlock_wrlock, true, (pthread_rwlock_t* l), (l))
LG_RWLOCK_BLOCKING(pthread_rwlock_timedrdlock, false,
                   (pthread_rwlock_t* l, const timespec* t), (l, t))
LG_RWLOCK_BLOCKING(pthread_rwlock_timedwrlock, true,
                   (pthread_rwlock_t* l, const timespec* t), (l, t))
LG_RWLOCK_BLOCKING(pthread_rwlock_clockrdlock, false,
                   (pthread_rwlock_t* l, clockid_t c, const timespec* t), (l, c, t))
LG_RWLOCK_BLOCKING(pthread_rwlock_clockwrlock, true,
                   (pthread_rwlock_t* l, clockid_t c, const timespec* t), (l, c, t))
#undef LG_RWLOCK_BLOCKING

LG_EXPORT int pthread_rwlock_tryrdlock(pthread_rwlock_t* l) {
  const auto ip = LG_CALLER_IP();
  const int rc = REAL(pthread_rwlock_tryrdlock)(l);
  AfterRwlockTry(l, false, rc, ip);
  return rc;
}

LG_EXPORT int pthread_rwlock_trywrlock(pthread_rwlock_t* l) {
  const auto ip = LG_CALLER_IP();
  const int rc = REAL(pthread_rwlock_trywrlock)(l);
  AfterRwlockTry(l, true, rc, ip);
  return rc;
}

LG_EXPORT int pthread_rwlock_unlock(pthread_rwlock_t* l) {
  BeforeRwlockUnlock(l, LG_CALLER_IP());
  return REAL(pthread_rwlock_unlock)(l);
}

LG_EXPORT int pthread_spin_init(pthread_spinlock_t* s, int pshared) {
  const auto ip = LG_CALLER_IP();
  const int rc = REAL(pthread_spin_init)(s, pshared);
  AfterInit(SpinPtr(s), LockKind::kSpinlock, rc, ip);
  return rc;
}

LG_EXPORT int pthread_spin_destroy(pthread_spinlock_t* s) {
  BeforeDestroy(SpinPtr(s), LockKind::kSpinlock, LG_CALLER_IP());
  return REAL(pthread_spin_destroy)(s);
}

LG_EXPORT int pthread_spin_lock(pthread_spinlock_t* s) {
  const Pre pre = BeforeSpinBlocking(s, LG_CALLER_IP());
  const int rc = REAL(pthread_spin_lock)(s);
  if (pre.tracked && rc != 0) {
    ErrnoSaver errno_saver;
    HookScope scope;
    if (scope.active()) {
      Ctx c = Enter();
      if (c) EngineCancel(c, SpinPtr(s));
    }
  }
  return rc;
}

LG_EXPORT int pthread_spin_trylock(pthread_spinlock_t* s) {
  const auto ip = LG_CALLER_IP();
  const int rc = REAL(pthread_spin_trylock)(s);
  if (rc == 0 && !FromAllocator(ip)) {
    ErrnoSaver errno_saver;
    HookScope scope;
    if (scope.active()) {
      try {
        Ctx c = Enter();
        if (c) {
          auto* lock = SpinPtr(s);
          EnsureKnown(c.rt, c.ts, lock, LockKind::kSpinlock, ip);
          EngineAcquire(c, lock, AcquireMode::kExclusive, true, ip);
        }
      } catch (abi::__forced_unwind&) {
        throw;  // thread cancellation unwinds through hooks; never swallow it
      } catch (...) {
        InternalError("spin trylock");
      }
    }
  }
  return rc;
}

LG_EXPORT int pthread_spin_unlock(pthread_spinlock_t* s) {
  {
    const auto ip = LG_CALLER_IP();
    ErrnoSaver errno_saver;
    HookScope scope;
    if (scope.active()) {
      try {
        Ctx c = Enter();
        // A spinlock records no owner: a release the engine did not see acquired is reported.
        if (c && !FromAllocator(ip)) ReleaseIfOwned(c, SpinPtr(s), LockKind::kSpinlock, false, ip);
      } catch (abi::__forced_unwind&) {
        throw;  // thread cancellation unwinds through hooks; never swallow it
      } catch (...) {
        InternalError("spin unlock");
      }
    }
  }
  return REAL(pthread_spin_unlock)(s);
}

LG_EXPORT int pthread_cond_wait(pthread_cond_t* c, pthread_mutex_t* m) {
  const auto ip = LG_CALLER_IP();
  const bool released = BeforeCondWait(m, ip);
  const int rc = REAL(pthread_cond_wait)(c, m);
  AfterCondWait(m, released, ip);
  return rc;
}

LG_EXPORT int pthread_cond_timedwait(pthread_cond_t* c, pthread_mutex_t* m,
                                     const timespec* abstime) {
  const auto ip = LG_CALLER_IP();
  const bool released = BeforeCondWait(m, ip);
  const int rc = REAL(pthread_cond_timedwait)(c, m, abstime);
  AfterCondWait(m, released, ip);
  return rc;
}

LG_EXPORT int pthread_cond_clockwait(pthread_cond_t* c, pthread_mutex_t* m, clockid_t clock,
                                     const timespec* abstime) {
  const auto ip = LG_CALLER_IP();
  const bool released = BeforeCondWait(m, ip);
  const int rc = REAL(pthread_cond_clockwait)(c, m, clock, abstime);
  AfterCondWait(m, released, ip);
  return rc;
}

LG_EXPORT int sigaction(int sig, const struct sigaction* act, struct sigaction* old) {
  return SigactionHook(sig, act, old);
}

LG_EXPORT sighandler_t signal(int sig, sighandler_t handler) {
  // glibc's BSD semantics: restart system calls, block the signal while it is handled.
  struct sigaction act, old;
  memset(&act, 0, sizeof act);
  act.sa_handler = handler;
  sigemptyset(&act.sa_mask);
  if (sig >= 1 && sig < NSIG) sigaddset(&act.sa_mask, sig);
  act.sa_flags = SA_RESTART;
  if (SigactionHook(sig, &act, &old) < 0) return SIG_ERR;
  return old.sa_handler;
}

LG_EXPORT int pthread_sigmask(int how, const sigset_t* set, sigset_t* old) {
  if (tls.capture_mask_active) return CaptureMaskCall(how, set, old);
  sigset_t local;
  sigset_t* o = old != nullptr ? old : &local;
  const int rc = REAL(pthread_sigmask)(how, set, o);
  if (rc == 0) AfterMaskChange(how, set, o);
  return rc;
}

LG_EXPORT int sigprocmask(int how, const sigset_t* set, sigset_t* old) {
  if (tls.capture_mask_active) {
    const int rc = CaptureMaskCall(how, set, old);
    if (rc == 0) return 0;
    errno = rc;
    return -1;
  }
  sigset_t local;
  sigset_t* o = old != nullptr ? old : &local;
  const int rc = REAL(sigprocmask)(how, set, o);
  if (rc == 0) {
    const int saved = errno;
    AfterMaskChange(how, set, o);
    errno = saved;
  }
  return rc;
}

LG_EXPORT pid_t fork(void) {
  if (tls.guard != 0 || RuntimeOff()) return REAL(fork)();
  {
    // Make sure the runtime exists before quiescing (its start-up takes locks).
    HookScope scope;
    if (scope.active()) GetRuntime();
  }
  auto* real_fork = REAL(fork);
  BeforeFork();
  const pid_t pid = real_fork();
  const int saved = errno;
  if (pid == 0) {
    AfterForkChild();
  } else {
    AfterForkParent();
  }
  errno = saved;
  return pid;
}

// exec replaces the image without running exit handlers: the calling thread's unwritten block of
// the lock log is written first (a forked child's events between fork and exec would be lost
// otherwise). glibc's exec family calls its internal execve directly, so each entry point is
// interposed; the variadic execl* build their argv and go through the vector forms. Nothing
// here changes the call's result or errno.
namespace {
void FlushLogBeforeExec() {
  if (tls.guard != 0) return;
  const int saved = errno;
  HookScope scope;
  if (scope.active()) {
    try {
      if (Runtime* rt = GetRuntime(); rt != nullptr && rt->recorder.enabled() &&
                                      rt->recorder.pid() == getpid()) {
        rt->recorder.FlushBeforeExec();
      }
    } catch (abi::__forced_unwind&) {
      throw;  // thread cancellation unwinds through hooks; never swallow it
    } catch (...) {
    }
  }
  errno = saved;
}

// The argv of an execl-style call: ARG0, the variadic arguments up to the null pointer.
// `envp_out` (execle) receives the pointer after the terminating null.
#define LG_COLLECT_EXECL_ARGS(arg0, argv_name, envp_out)            \
  std::size_t lg_argc = 1;                                          \
  {                                                                 \
    va_list lg_ap;                                                  \
    va_start(lg_ap, arg0);                                          \
    while (va_arg(lg_ap, char*) != nullptr) ++lg_argc;              \
    va_end(lg_ap);                                                  \
  }                                                                 \
  char** argv_name = static_cast<char**>(alloca((lg_argc + 1) * sizeof(char*))); \
  {                                                                 \
    va_list lg_ap;                                                  \
    va_start(lg_ap, arg0);                                          \
    argv_name[0] = const_cast<char*>(arg0);                         \
    for (std::size_t i = 1; i <= lg_argc; ++i) argv_name[i] = va_arg(lg_ap, char*); \
    envp_out;                                                       \
    va_end(lg_ap);                                                  \
  }
}  // namespace

LG_EXPORT int execve(const char* path, char* const argv[], char* const envp[]) {
  FlushLogBeforeExec();
  return REAL(execve)(path, argv, envp);
}

LG_EXPORT int execv(const char* path, char* const argv[]) {
  FlushLogBeforeExec();
  return REAL(execv)(path, argv);
}

LG_EXPORT int execvp(const char* file, char* const argv[]) {
  FlushLogBeforeExec();
  return REAL(execvp)(file, argv);
}

LG_EXPORT int execvpe(const char* file, char* const argv[], char* const envp[]) {
  FlushLogBeforeExec();
  return REAL(execvpe)(file, argv, envp);
}

LG_EXPORT int fexecve(int fd, char* const argv[], char* const envp[]) {
  FlushLogBeforeExec();
  return REAL(fexecve)(fd, argv, envp);
}

LG_EXPORT int execl(const char* path, const char* arg, ...) {
  LG_COLLECT_EXECL_ARGS(arg, argv, (void)0)
  FlushLogBeforeExec();
  return REAL(execv)(path, argv);
}

LG_EXPORT int execlp(const char* file, const char* arg, ...) {
  LG_COLLECT_EXECL_ARGS(arg, argv, (void)0)
  FlushLogBeforeExec();
  return REAL(execvp)(file, argv);
}

LG_EXPORT int execle(const char* path, const char* arg, ...) {
  char* const* envp = nullptr;
  LG_COLLECT_EXECL_ARGS(arg, argv, envp = va_arg(lg_ap, char* const*))
  FlushLogBeforeExec();
  return REAL(execve)(path, argv, envp);
}
#undef LG_COLLECT_EXECL_ARGS

// _exit skips atexit: flush the lock log here, unless this is a vfork child (it shares the
// parent's memory, and the recorder's state is the parent's).
LG_EXPORT __attribute__((noreturn)) void _exit(int status) {  // GNU spelling: clang rejects [[...]] here
  if (tls.guard == 0) {
    HookScope scope;
    if (scope.active()) {
      try {
        if (Runtime* rt = GetRuntime(); rt != nullptr && rt->recorder.enabled() &&
                                        rt->recorder.pid() == getpid()) {
          FlushDeferredReports(rt);
          rt->recorder.Finish();
        }
      } catch (abi::__forced_unwind&) {
        throw;  // thread cancellation unwinds through hooks; never swallow it
      } catch (...) {
      }
    }
  }
  auto* real_exit = REAL(_exit);
  if (real_exit != nullptr) real_exit(status);
  syscall(SYS_exit_group, status);
  __builtin_unreachable();
}
