// The C annotation API (lockgraph/lockgraph.h): the lg_ functions over the same engine the
// interposers feed. Each one keeps errno, never throws, and is a no-op once lockgraph is off.
#include <cxxabi.h>
#include "lockgraph/lockgraph.h"

#include <fmt/format.h>

#include <cerrno>
#include <string>

#include "runtime.h"

namespace lockgraph::runtime_internal {
namespace {

constexpr std::uint64_t kSiteHashTag = std::uint64_t{3} << 62;
constexpr std::uint64_t kKeyMask = (std::uint64_t{1} << 48) - 1;

class ApiScope {
 public:
  ApiScope() : errno_(errno) {
    if (scope_.active()) {
      rt_ = GetRuntime();
      if (rt_ != nullptr) ts_ = CurrentThread(rt_);
    }
  }
  ~ApiScope() { errno = errno_; }
  bool ok() const { return ts_ != nullptr; }
  Runtime* rt() const { return rt_; }
  ThreadState& ts() const { return *ts_; }

 private:
  int errno_;
  HookScope scope_;
  Runtime* rt_ = nullptr;
  ThreadState* ts_ = nullptr;
};

void ApiError(const char* where) {
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

// Registers (once) the class of an annotation: an explicit key object, or the init site.
ClassId AnnotationClass(Runtime* rt, const void* lock, const char* name, const lg_class_key* key,
                        const char* site, unsigned subclass) {
  subclass &= kMaxSubclasses - 1;
  std::uint64_t engine_key;
  std::string identity;
  std::string display = name != nullptr ? name : "";
  if (key != nullptr) {
    engine_key = reinterpret_cast<std::uint64_t>(key);
  } else {
    engine_key = kSiteHashTag | (logfmt::StableClassKey(site ? site : "?") & kKeyMask);
  }
  if (display.empty() && lock != nullptr) {
    display = DataSymbol(rt, lock, 1);
    const auto cut = display.find_first_of("[+");
    if (cut != std::string::npos) display.resize(cut);
  }
  if (display.empty()) display = site != nullptr ? site : fmt::format("key@{}", (const void*)key);
  if (key != nullptr) identity = name != nullptr ? "key:" + display : "name:" + display;
  else identity = site != nullptr ? std::string("site:") + site : "name:" + display;
  std::lock_guard<std::mutex> guard(rt->classes_mu);
  const std::uint64_t cache_key = engine_key ^ (std::uint64_t{subclass} << 48);
  auto it = rt->class_by_key.find(cache_key);
  if (it != rt->class_by_key.end()) return it->second;
  const ClassId id = rt->engine.RegisterClass(engine_key, display, static_cast<std::uint8_t>(subclass));
  if (id == kNoClass) return id;
  rt->class_by_key.emplace(cache_key, id);
  rt->recorder.ClassDefined(id, static_cast<std::uint8_t>(subclass), identity, display);
  return id;
}

void Remember(Runtime* rt, const void* lock, ClassId cls) {
  std::lock_guard<std::mutex> guard(rt->classes_mu);
  rt->annotated[reinterpret_cast<std::uint64_t>(lock)] = cls;
  rt->destroyed_annotated.erase(reinterpret_cast<std::uint64_t>(lock));
}

void Forget(Runtime* rt, const void* lock) {
  std::lock_guard<std::mutex> guard(rt->classes_mu);
  rt->annotated.erase(reinterpret_cast<std::uint64_t>(lock));
  rt->destroyed_annotated.insert(reinterpret_cast<std::uint64_t>(lock));
}

bool WasDestroyed(Runtime* rt, const void* lock) {
  std::lock_guard<std::mutex> guard(rt->classes_mu);
  return rt->destroyed_annotated.count(reinterpret_cast<std::uint64_t>(lock)) != 0;
}

// An assertion that failed: one report per call site.
void AssertionFailed(Runtime* rt, ThreadState& ts, std::uint64_t ip, const std::string& what) {
  {
    std::lock_guard<std::mutex> guard(rt->classes_mu);
    if (!rt->failed_assertions.insert(ip).second) return;
  }
  std::string site;
  rt->report_symbolizer.AppendCallSite(ip, &site);
  std::string text = fmt::format(
      "\n========================================\n"
      "WARNING: lock assertion failed: {}\n"
      "----------------------------------------\n"
      "{}/{} at {}\n",
      what, ts.name(), ts.key(), site);
  rt->EmitText(text, "assertion", fmt::format("{:016x}", logfmt::StableClassKey(what + site)));
}

std::string LockName(Runtime* rt, const void* lock) {
  const ClassId cls = rt->engine.LockClass(reinterpret_cast<LockId>(lock));
  if (cls != kNoClass) return rt->engine.GetClass(cls).name;
  return fmt::format("{}", lock);
}

}  // namespace
}  // namespace lockgraph::runtime_internal

using namespace lockgraph;                    // NOLINT: the C ABI surface below
using namespace lockgraph::runtime_internal;  // NOLINT

#define LG_IP() reinterpret_cast<std::uint64_t>(__builtin_return_address(0))

LG_EXPORT void lg_lock_init_site(const void* lock, const char* name, const lg_class_key* key,
                                 const char* site) {
  const auto ip = LG_IP();
  ApiScope api;
  if (!api.ok() || lock == nullptr) return;
  try {
    const ClassId cls = AnnotationClass(api.rt(), lock, name, key, site, 0);
    if (cls == kNoClass) return;
    api.rt()->engine.InitLock(api.ts(), reinterpret_cast<LockId>(lock), cls, ip);
    api.rt()->recorder.LockInit(api.ts(), reinterpret_cast<LockId>(lock), cls, ip);
    Remember(api.rt(), lock, cls);
  } catch (abi::__forced_unwind&) {
    throw;  // thread cancellation unwinds through hooks; never swallow it
  } catch (...) {
    ApiError("lg_lock_init");
  }
}

LG_EXPORT void lg_lock_class_hint(const void* lock, const char* name, const lg_class_key* key,
                                  const char* site) {
  const auto ip = LG_IP();
  ApiScope api;
  if (!api.ok() || lock == nullptr) return;
  try {
    const auto id = reinterpret_cast<LockId>(lock);
    if (api.rt()->engine.GetLockState(id) != Engine::LockState::kUnknown) return;
    const ClassId cls = AnnotationClass(api.rt(), lock, name, key, site, 0);
    if (cls == kNoClass) return;
    api.rt()->engine.InitLock(api.ts(), id, cls, ip);
    api.rt()->recorder.LockInit(api.ts(), id, cls, ip);
    Remember(api.rt(), lock, cls);
  } catch (abi::__forced_unwind&) {
    throw;  // thread cancellation unwinds through hooks; never swallow it
  } catch (...) {
    ApiError("lg_lock_class_hint");
  }
}

LG_EXPORT void lg_set_class(const void* lock, const char* name, const lg_class_key* key,
                            unsigned subclass) {
  const auto ip = LG_IP();
  ApiScope api;
  if (!api.ok() || lock == nullptr) return;
  try {
    std::string site = fmt::format("{:#x}", ip);
    const ClassId cls = AnnotationClass(api.rt(), lock, name, key, site.c_str(), subclass);
    if (cls == kNoClass) return;
    const auto id = reinterpret_cast<LockId>(lock);
    if (api.rt()->engine.KnowsLock(id)) {
      api.rt()->engine.SetLockClass(id, cls);
      api.rt()->recorder.SetClass(id, cls);
    } else {
      api.rt()->engine.InitLock(api.ts(), id, cls, ip);
      api.rt()->recorder.LockInit(api.ts(), id, cls, ip);
    }
    Remember(api.rt(), lock, cls);
  } catch (abi::__forced_unwind&) {
    throw;  // thread cancellation unwinds through hooks; never swallow it
  } catch (...) {
    ApiError("lg_set_class");
  }
}

LG_EXPORT void lg_lock_destroy(const void* lock) {
  const auto ip = LG_IP();
  ApiScope api;
  if (!api.ok() || lock == nullptr) return;
  try {
    LazyStack stack(api.rt());
    api.rt()->engine.DestroyLock(api.ts(), reinterpret_cast<LockId>(lock), ip, &stack);
    api.rt()->recorder.LockDestroy(api.ts(), reinterpret_cast<LockId>(lock), ip, stack.captured());
    Forget(api.rt(), lock);
  } catch (abi::__forced_unwind&) {
    throw;  // thread cancellation unwinds through hooks; never swallow it
  } catch (...) {
    ApiError("lg_lock_destroy");
  }
}

namespace {
AcquireMode ApiMode(unsigned flags) {
  switch (flags & 0x3u) {
    case LG_READ: return AcquireMode::kShared;
    case LG_READ_RECURSIVE: return AcquireMode::kSharedRecursive;
    default: return AcquireMode::kExclusive;
  }
}

// The cached path of lg_acquire and lg_release, as the interposers have it: a thread whose fast
// path is valid at the current generation (TryEnterFast: nothing recorded or pending, ...) and a
// step the engine memoised, for an annotation without subclass or nest lock. The engine's cached
// entries never report, allocate or call out, so no errno save, cancellation-state change or
// exception frame is needed. False: the full call below runs.
bool ApiAcquireFast(LockId id, AcquireMode mode, bool trylock, std::uint64_t ip) {
  if (!TryEnterFast()) return false;
  const bool done =
      g_runtime->engine.TryAcquireCached(*tls.fast_state, id, mode, trylock, ip, /*handle=*/0);
  LeaveFast();
  return done;
}
bool ApiReleaseFast(LockId id) {
  if (!TryEnterFast()) return false;
  const bool done = engine_internal::TryReleaseInnermost(*tls.fast_cache, id);
  LeaveFast();
  return done;
}
}  // namespace

LG_EXPORT void lg_acquire(const void* lock, unsigned flags, unsigned subclass,
                          const void* nest_lock) {
  const auto ip = LG_IP();
  const auto id = reinterpret_cast<LockId>(lock);
  if (lock != nullptr && (subclass & (kMaxSubclasses - 1)) == 0 && nest_lock == nullptr &&
      ApiAcquireFast(id, ApiMode(flags), (flags & LG_TRY) != 0, ip)) {
    return;
  }
  ApiScope api;
  if (!api.ok() || lock == nullptr) return;
  try {
    Runtime* rt = api.rt();
    if (!rt->engine.KnowsLock(id) && !WasDestroyed(rt, lock)) {
      const ClassId cls = FirstSeenClass(rt, lock, LockKind::kAnnotated, ip);
      if (cls != kNoClass) {
        rt->engine.InitLock(api.ts(), id, cls, ip);
        rt->recorder.LockInit(api.ts(), id, cls, ip);
      }
    }
    LazyStack stack(rt);
    AcquireRequest req;
    req.lock = id;
    req.mode = ApiMode(flags);
    req.trylock = (flags & LG_TRY) != 0;
    req.subclass = static_cast<std::uint8_t>(subclass & (kMaxSubclasses - 1));
    req.nest_lock = reinterpret_cast<LockId>(nest_lock);
    req.ip = ip;
    req.stack_source = &stack;
    rt->engine.Acquire(api.ts(), req);
    if (rt->recorder.enabled()) rt->recorder.Acquire(api.ts(), req, stack.captured());
  } catch (abi::__forced_unwind&) {
    throw;  // thread cancellation unwinds through hooks; never swallow it
  } catch (...) {
    ApiError("lg_acquire");
  }
}

LG_EXPORT void lg_release(const void* lock) {
  const auto ip = LG_IP();
  if (lock != nullptr && ApiReleaseFast(reinterpret_cast<LockId>(lock))) return;
  ApiScope api;
  if (!api.ok() || lock == nullptr) return;
  try {
    api.rt()->engine.Release(api.ts(), reinterpret_cast<LockId>(lock), ip);
    api.rt()->recorder.Release(api.ts(), reinterpret_cast<LockId>(lock), ip);
  } catch (abi::__forced_unwind&) {
    throw;  // thread cancellation unwinds through hooks; never swallow it
  } catch (...) {
    ApiError("lg_release");
  }
}

LG_EXPORT int lg_assert_held(const void* lock) {
  const auto ip = LG_IP();
  ApiScope api;
  if (!api.ok()) return 1;
  try {
    if (api.rt()->engine.IsHeld(api.ts(), reinterpret_cast<LockId>(lock))) return 1;
    AssertionFailed(api.rt(), api.ts(), ip, LockName(api.rt(), lock) + " is not held");
    return 0;
  } catch (abi::__forced_unwind&) {
    throw;  // thread cancellation unwinds through hooks; never swallow it
  } catch (...) {
    ApiError("lg_assert_held");
  }
  return 1;
}

LG_EXPORT int lg_assert_not_held(const void* lock) {
  const auto ip = LG_IP();
  ApiScope api;
  if (!api.ok()) return 1;
  try {
    if (!api.rt()->engine.IsHeld(api.ts(), reinterpret_cast<LockId>(lock))) return 1;
    AssertionFailed(api.rt(), api.ts(), ip, LockName(api.rt(), lock) + " is held");
    return 0;
  } catch (abi::__forced_unwind&) {
    throw;  // thread cancellation unwinds through hooks; never swallow it
  } catch (...) {
    ApiError("lg_assert_not_held");
  }
  return 1;
}

LG_EXPORT int lg_assert_no_locks_held(void) {
  const auto ip = LG_IP();
  ApiScope api;
  if (!api.ok()) return 1;
  try {
    const std::size_t n = api.ts().held_count();
    if (n == 0) return 1;
    AssertionFailed(api.rt(), api.ts(), ip, fmt::format("{} lock(s) held, none expected", n));
    return 0;
  } catch (abi::__forced_unwind&) {
    throw;  // thread cancellation unwinds through hooks; never swallow it
  } catch (...) {
    ApiError("lg_assert_no_locks_held");
  }
  return 1;
}

namespace {
template <typename F>
void WithThread(const char* where, F&& f) {
  ApiScope api;
  if (!api.ok()) return;
  try {
    f(*api.rt(), api.ts());
  } catch (abi::__forced_unwind&) {
    throw;  // thread cancellation unwinds through hooks; never swallow it
  } catch (...) {
    ApiError(where);
  }
}
}  // namespace

LG_EXPORT void lg_hardirq_enter(void) {
  WithThread("lg_hardirq_enter", [](Runtime& rt, ThreadState& ts) {
    rt.engine.EnterContext(ts, kHardirqContext);
    rt.recorder.EnterContext(ts, kHardirqContext);
  });
}

LG_EXPORT void lg_hardirq_exit(void) {
  const auto ip = LG_IP();
  WithThread("lg_hardirq_exit", [ip](Runtime& rt, ThreadState& ts) {
    rt.engine.ExitContext(ts, kHardirqContext, ip);
    rt.recorder.ExitContext(ts, kHardirqContext);
  });
}

LG_EXPORT void lg_softirq_enter(void) {
  WithThread("lg_softirq_enter", [](Runtime& rt, ThreadState& ts) {
    rt.engine.EnterContext(ts, kSoftirqContext);
    rt.recorder.EnterContext(ts, kSoftirqContext);
  });
}

LG_EXPORT void lg_softirq_exit(void) {
  const auto ip = LG_IP();
  WithThread("lg_softirq_exit", [ip](Runtime& rt, ThreadState& ts) {
    rt.engine.ExitContext(ts, kSoftirqContext, ip);
    rt.recorder.ExitContext(ts, kSoftirqContext);
  });
}

LG_EXPORT void lg_irq_disable(void) {
  WithThread("lg_irq_disable", [](Runtime& rt, ThreadState& ts) {
    rt.engine.DisableContext(ts, kHardirqContext);
    rt.recorder.DisableContext(ts, kHardirqContext);
  });
}

LG_EXPORT void lg_irq_enable(void) {
  WithThread("lg_irq_enable", [](Runtime& rt, ThreadState& ts) {
    rt.engine.EnableContext(ts, kHardirqContext);
    rt.recorder.EnableContext(ts, kHardirqContext);
  });
}

LG_EXPORT void lg_softirq_disable(void) {
  WithThread("lg_softirq_disable", [](Runtime& rt, ThreadState& ts) {
    rt.engine.DisableContext(ts, kSoftirqContext);
    rt.recorder.DisableContext(ts, kSoftirqContext);
  });
}

LG_EXPORT void lg_softirq_enable(void) {
  WithThread("lg_softirq_enable", [](Runtime& rt, ThreadState& ts) {
    rt.engine.EnableContext(ts, kSoftirqContext);
    rt.recorder.EnableContext(ts, kSoftirqContext);
  });
}

// Flags: bit 0 = hardirqs were disabled. Only the returned value's bit 0 is meaningful.
LG_EXPORT unsigned long lg_irq_save(void) {
  unsigned long flags = 0;
  WithThread("lg_irq_save", [&flags](Runtime& rt, ThreadState& ts) {
    flags = ts.disabled_contexts().Test(kHardirqContext) ? 1ul : 0ul;
    rt.engine.DisableContext(ts, kHardirqContext);
    rt.recorder.DisableContext(ts, kHardirqContext);
  });
  return flags;
}

LG_EXPORT void lg_irq_restore(unsigned long flags) {
  WithThread("lg_irq_restore", [flags](Runtime& rt, ThreadState& ts) {
    if (flags & 1ul) {
      rt.engine.DisableContext(ts, kHardirqContext);
      rt.recorder.DisableContext(ts, kHardirqContext);
    } else {
      rt.engine.EnableContext(ts, kHardirqContext);
      rt.recorder.EnableContext(ts, kHardirqContext);
    }
  });
}

LG_EXPORT int lg_set_option(const char* name, const char* value) {
  const int saved = errno;
  int rc = -1;
  try {
    if (name != nullptr && value != nullptr && SetRuntimeOption(name, value)) rc = 0;
  } catch (abi::__forced_unwind&) {
    throw;  // thread cancellation unwinds through hooks; never swallow it
  } catch (...) {
    rc = -1;
  }
  errno = saved;
  return rc;
}

LG_EXPORT void lg_set_report_callback(lg_report_callback callback, void* arg) {
  const int saved = errno;
  try {
    SetReportCallback(callback, arg);
  } catch (abi::__forced_unwind&) {
    throw;  // thread cancellation unwinds through hooks; never swallow it
  } catch (...) {
  }
  errno = saved;
}

LG_EXPORT unsigned long lg_findings_count(void) { return FindingsCount(); }
