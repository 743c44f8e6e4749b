// lockgraph C++ API: annotated lock types and RAII guards over the C API (lockgraph/lockgraph.h).
//
// - lockgraph::Mutex, SharedMutex, RecursiveMutex, TimedMutex wrap the std:: types. The shim sees
//   their pthread calls already; the wrappers only give each declaration its own lock class and a
//   name for reports ("cache_mu" rather than "mutex@Function"), and carry Clang thread-safety
//   annotations. They satisfy Lockable (and SharedLockable), so std::lock_guard, std::scoped_lock,
//   std::unique_lock and std::shared_lock work with them.
// - lockgraph::Annotated<L> makes any Lockable the shim cannot see (a spin flag, a futex word, a
//   lock in shared memory) visible: it reports each acquisition and release through lg_acquire /
//   lg_release. Do not wrap a pthread or std:: lock in it: those are seen twice.
// - LockGuard / SharedLockGuard are scoped guards with the annotations; IrqDisabledScope,
//   HardirqScope and SoftirqScope are the interrupt-context markers as scopes.
//
// The class of a wrapper is its declaration site (file:line, taken with lockgraph::SourceSite),
// as lockdep's init-site classes, plus its name when it has one: GCC and Clang give every member
// wrapper initialised in its declaration (`Mutex mu_{"mu"};`) the line of the enclosing class,
// so two named members are two classes, while unnamed wrappers at one site (an array) share one.
// Give two wrappers with one name at one site different classes with a lg_class_key. With LOCKGRAPH_DISABLE defined, the wrappers are the plain std:: types' logic.
#ifndef LOCKGRAPH_LOCKGRAPH_HPP_
#define LOCKGRAPH_LOCKGRAPH_HPP_

#include <chrono>
#include <cstdio>
#include <mutex>
#include <shared_mutex>
#include <utility>

#include "lockgraph/lockgraph.h"

// Clang thread-safety analysis attributes (no-ops elsewhere).
#if defined(__clang__) && !defined(SWIG)
#define LG_THREAD_ANNOTATION_(x) __attribute__((x))
#else
#define LG_THREAD_ANNOTATION_(x)
#endif
#define LG_CAPABILITY(x) LG_THREAD_ANNOTATION_(capability(x))
#define LG_SCOPED_CAPABILITY LG_THREAD_ANNOTATION_(scoped_lockable)
#define LG_GUARDED_BY(x) LG_THREAD_ANNOTATION_(guarded_by(x))
#define LG_PT_GUARDED_BY(x) LG_THREAD_ANNOTATION_(pt_guarded_by(x))
#define LG_REQUIRES(...) LG_THREAD_ANNOTATION_(requires_capability(__VA_ARGS__))
#define LG_REQUIRES_SHARED(...) LG_THREAD_ANNOTATION_(requires_shared_capability(__VA_ARGS__))
#define LG_ACQUIRE(...) LG_THREAD_ANNOTATION_(acquire_capability(__VA_ARGS__))
#define LG_ACQUIRE_SHARED(...) LG_THREAD_ANNOTATION_(acquire_shared_capability(__VA_ARGS__))
#define LG_RELEASE(...) LG_THREAD_ANNOTATION_(release_capability(__VA_ARGS__))
#define LG_RELEASE_SHARED(...) LG_THREAD_ANNOTATION_(release_shared_capability(__VA_ARGS__))
#define LG_RELEASE_GENERIC(...) LG_THREAD_ANNOTATION_(release_generic_capability(__VA_ARGS__))
#define LG_TRY_ACQUIRE(...) LG_THREAD_ANNOTATION_(try_acquire_capability(__VA_ARGS__))
#define LG_TRY_ACQUIRE_SHARED(...) LG_THREAD_ANNOTATION_(try_acquire_shared_capability(__VA_ARGS__))
#define LG_EXCLUDES(...) LG_THREAD_ANNOTATION_(locks_excluded(__VA_ARGS__))
#define LG_ASSERT_CAPABILITY(x) LG_THREAD_ANNOTATION_(assert_capability(x))
#define LG_NO_THREAD_SAFETY_ANALYSIS LG_THREAD_ANNOTATION_(no_thread_safety_analysis)

namespace lockgraph {

// Where a wrapper is declared: the default argument `SourceSite::Here()` evaluates to the
// caller's file and line. Not std::source_location: libstdc++ 12's needs a compiler builtin that
// Clang 14 lacks, while __builtin_FILE/__builtin_LINE work in GCC and Clang alike.
struct SourceSite {
  const char* file;
  unsigned line;
  static constexpr SourceSite Here(const char* file = __builtin_FILE(),
                                   unsigned line = __builtin_LINE()) {
    return SourceSite{file, line};
  }
};

namespace internal {
// Names `lock` for the validator: class of the declaration site unless `key` is given.
inline void InitAt(const void* lock, const char* name, const lg_class_key* key,
                   const SourceSite& where) {
#ifndef LOCKGRAPH_DISABLE
  char site[512];
  if (name != nullptr && key == nullptr) {
    std::snprintf(site, sizeof site, "%s:%u:%s", where.file, where.line, name);
  } else {
    std::snprintf(site, sizeof site, "%s:%u", where.file, where.line);
  }
  lg_lock_init_site(lock, name, key, site);
#else
  (void)lock, (void)name, (void)key, (void)where;
#endif
}
inline void Destroy(const void* lock) {
#ifndef LOCKGRAPH_DISABLE
  lg_lock_destroy(lock);
#else
  (void)lock;
#endif
}
}  // namespace internal

// std::mutex with a lockgraph name and class. Lockable.
class LG_CAPABILITY("mutex") Mutex {
 public:
  explicit Mutex(const char* name = nullptr, const lg_class_key* key = nullptr,
                 SourceSite where = SourceSite::Here()) {
    internal::InitAt(mu_.native_handle(), name, key, where);
  }
  ~Mutex() { internal::Destroy(mu_.native_handle()); }
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void lock() LG_ACQUIRE() { mu_.lock(); }
  void unlock() LG_RELEASE() { mu_.unlock(); }
  bool try_lock() LG_TRY_ACQUIRE(true) { return mu_.try_lock(); }
  // Reports (once per call site) when the calling thread does not hold it.
  void AssertHeld() const LG_ASSERT_CAPABILITY(this) { lg_assert_held(handle()); }
  std::mutex& native() { return mu_; }

 private:
  const void* handle() const { return const_cast<std::mutex&>(mu_).native_handle(); }
  std::mutex mu_;
};

// std::recursive_mutex with a name. Re-locking by the owner is not recursive locking.
class LG_CAPABILITY("mutex") RecursiveMutex {
 public:
  explicit RecursiveMutex(const char* name = nullptr, const lg_class_key* key = nullptr,
                          SourceSite where = SourceSite::Here()) {
    internal::InitAt(mu_.native_handle(), name, key, where);
  }
  ~RecursiveMutex() { internal::Destroy(mu_.native_handle()); }
  RecursiveMutex(const RecursiveMutex&) = delete;
  RecursiveMutex& operator=(const RecursiveMutex&) = delete;

  void lock() LG_ACQUIRE() { mu_.lock(); }
  void unlock() LG_RELEASE() { mu_.unlock(); }
  bool try_lock() LG_TRY_ACQUIRE(true) { return mu_.try_lock(); }
  std::recursive_mutex& native() { return mu_; }

 private:
  std::recursive_mutex mu_;
};

// std::timed_mutex with a name. A timed lock is a blocking acquisition for the validator.
class LG_CAPABILITY("mutex") TimedMutex {
 public:
  explicit TimedMutex(const char* name = nullptr, const lg_class_key* key = nullptr,
                      SourceSite where = SourceSite::Here()) {
    internal::InitAt(mu_.native_handle(), name, key, where);
  }
  ~TimedMutex() { internal::Destroy(mu_.native_handle()); }
  TimedMutex(const TimedMutex&) = delete;
  TimedMutex& operator=(const TimedMutex&) = delete;

  void lock() LG_ACQUIRE() { mu_.lock(); }
  void unlock() LG_RELEASE() { mu_.unlock(); }
  bool try_lock() LG_TRY_ACQUIRE(true) { return mu_.try_lock(); }
  template <typename Rep, typename Period>
  bool try_lock_for(const std::chrono::duration<Rep, Period>& d) LG_TRY_ACQUIRE(true) {
    return mu_.try_lock_for(d);
  }
  template <typename Clock, typename Duration>
  bool try_lock_until(const std::chrono::time_point<Clock, Duration>& t) LG_TRY_ACQUIRE(true) {
    return mu_.try_lock_until(t);
  }
  std::timed_mutex& native() { return mu_; }

 private:
  std::timed_mutex mu_;
};

// std::shared_mutex with a name. glibc's default rwlock prefers readers: its read side is a
// recursive read for the validator (a read-read inversion is not a deadlock).
class LG_CAPABILITY("shared_mutex") SharedMutex {
 public:
  explicit SharedMutex(const char* name = nullptr, const lg_class_key* key = nullptr,
                       SourceSite where = SourceSite::Here()) {
    internal::InitAt(mu_.native_handle(), name, key, where);
  }
  ~SharedMutex() { internal::Destroy(mu_.native_handle()); }
  SharedMutex(const SharedMutex&) = delete;
  SharedMutex& operator=(const SharedMutex&) = delete;

  void lock() LG_ACQUIRE() { mu_.lock(); }
  void unlock() LG_RELEASE() { mu_.unlock(); }
  bool try_lock() LG_TRY_ACQUIRE(true) { return mu_.try_lock(); }
  void lock_shared() LG_ACQUIRE_SHARED() { mu_.lock_shared(); }
  void unlock_shared() LG_RELEASE_SHARED() { mu_.unlock_shared(); }
  bool try_lock_shared() LG_TRY_ACQUIRE_SHARED(true) { return mu_.try_lock_shared(); }
  std::shared_mutex& native() { return mu_; }

 private:
  std::shared_mutex mu_;
};

// Any Lockable the shim cannot see, reported through the C API. Acquisitions are validated
// before the underlying lock() blocks, so a real deadlock is reported before it hangs.
template <typename L>
class LG_CAPABILITY("mutex") Annotated {
 public:
  explicit Annotated(const char* name = nullptr, const lg_class_key* key = nullptr,
                     SourceSite where = SourceSite::Here()) {
    internal::InitAt(this, name, key, where);
  }
  ~Annotated() { internal::Destroy(this); }
  Annotated(const Annotated&) = delete;
  Annotated& operator=(const Annotated&) = delete;

  void lock() LG_ACQUIRE() {
    lg_acquire(this, LG_EXCLUSIVE, 0, nullptr);
    lock_.lock();
  }
  bool try_lock() LG_TRY_ACQUIRE(true) {
    if (!lock_.try_lock()) return false;
    lg_acquire(this, LG_EXCLUSIVE | LG_TRY, 0, nullptr);
    return true;
  }
  void unlock() LG_RELEASE() {
    lg_release(this);
    lock_.unlock();
  }
  // lockdep's mutex_lock_nested: a second lock of the same class, one level deeper.
  void lock_nested(unsigned subclass) LG_ACQUIRE() {
    lg_acquire(this, LG_EXCLUSIVE, subclass, nullptr);
    lock_.lock();
  }
  L& native() { return lock_; }

 private:
  L lock_;
};

// Scoped exclusive lock (std::lock_guard with the annotations).
template <typename M>
class LG_SCOPED_CAPABILITY LockGuard {
 public:
  explicit LockGuard(M& m) LG_ACQUIRE(m) : m_(m) { m_.lock(); }
  ~LockGuard() LG_RELEASE() { m_.unlock(); }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

 private:
  M& m_;
};

// Scoped shared lock.
template <typename M>
class LG_SCOPED_CAPABILITY SharedLockGuard {
 public:
  explicit SharedLockGuard(M& m) LG_ACQUIRE_SHARED(m) : m_(m) { m_.lock_shared(); }
  ~SharedLockGuard() LG_RELEASE() { m_.unlock_shared(); }
  SharedLockGuard(const SharedLockGuard&) = delete;
  SharedLockGuard& operator=(const SharedLockGuard&) = delete;

 private:
  M& m_;
};

// local_irq_save / local_irq_restore as a scope.
class IrqDisabledScope {
 public:
  IrqDisabledScope() : flags_(lg_irq_save()) {}
  ~IrqDisabledScope() { lg_irq_restore(flags_); }
  IrqDisabledScope(const IrqDisabledScope&) = delete;
  IrqDisabledScope& operator=(const IrqDisabledScope&) = delete;

 private:
  unsigned long flags_;
};

// Code in this scope runs in hardirq (softirq) context.
class HardirqScope {
 public:
  HardirqScope() { lg_hardirq_enter(); }
  ~HardirqScope() { lg_hardirq_exit(); }
  HardirqScope(const HardirqScope&) = delete;
  HardirqScope& operator=(const HardirqScope&) = delete;
};

class SoftirqScope {
 public:
  SoftirqScope() { lg_softirq_enter(); }
  ~SoftirqScope() { lg_softirq_exit(); }
  SoftirqScope(const SoftirqScope&) = delete;
  SoftirqScope& operator=(const SoftirqScope&) = delete;
};

}  // namespace lockgraph

#endif  // LOCKGRAPH_LOCKGRAPH_HPP_
