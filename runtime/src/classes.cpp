// Lock classes of the shim: init-site classes, static objects named after their symbol, and
// heap/stack locks without an init call classed by the function that first takes them.
#include <pthread.h>

#include <fmt/format.h>

#include "lockgraph/log_format.h"
#include "runtime.h"

namespace lockgraph::runtime_internal {
namespace {

// Tags keep the three key spaces apart (addresses are below 2^48).
constexpr std::uint64_t kInitSiteTag = std::uint64_t{1} << 62;
constexpr std::uint64_t kFunctionTag = std::uint64_t{2} << 62;

std::string_view KindName(LockKind kind) {
  switch (kind) {
    case LockKind::kMutex: return "mutex";
    case LockKind::kRwlock: return "rwlock";
    case LockKind::kSpinlock: return "spinlock";
    case LockKind::kAnnotated: return "lock";
  }
  return "lock";
}

std::size_t KindSize(LockKind kind) {
  switch (kind) {
    case LockKind::kMutex: return sizeof(pthread_mutex_t);
    case LockKind::kRwlock: return sizeof(pthread_rwlock_t);
    case LockKind::kSpinlock: return sizeof(pthread_spinlock_t);
    case LockKind::kAnnotated: return 1;
  }
  return 1;
}

bool IsWrapperFunction(const CodeLocation& loc) {
  const std::string& f = loc.function;
  if (f.rfind("std::", 0) == 0 || f.rfind("__gthread", 0) == 0 || f.rfind("__gthrw", 0) == 0 ||
      f.rfind("lockgraph::", 0) == 0) {
    return true;
  }
  return loc.module.rfind("libstdc++", 0) == 0 || loc.module.rfind("libc.so", 0) == 0;
}

// Requires rt->classes_mu.
const Runtime::CodeInfo& CodeInfoLocked(Runtime* rt, std::uint64_t ip) {
  auto it = rt->code_info.find(ip);
  if (it != rt->code_info.end()) return it->second;
  Runtime::CodeInfo info;
  const CodeLocation loc = rt->symbolizer.Locate(ip, true);
  info.wrapper = IsWrapperFunction(loc);
  info.function = loc.function_start;
  info.function_name = loc.function.substr(0, loc.function.find('('));
  if (!loc.file.empty()) info.site = fmt::format("{}:{}", loc.file, loc.line);
  else if (!loc.module.empty()) info.site = fmt::format("{}+{:#x}", loc.module, loc.module_offset);
  else info.site = fmt::format("{:#x}", ip);
  if (info.function_name.empty()) info.function_name = info.site;
  // The innermost function of the inline chain that is not a lock wrapper inlined into it.
  info.site_function = info.function_name;
  std::string file = loc.file;
  int line = loc.line;
  for (const CodeLocation::Inline& frame : loc.inlined) {
    if (frame.function.empty() || IsInlinedWrapper(frame)) continue;
    info.site_function = frame.function.substr(0, frame.function.find('('));
    file = frame.file;
    line = frame.line;
    break;
  }
  if (!file.empty() && line > 0) {
    info.site_key = logfmt::StableClassKey(
        fmt::format("{}|{}|{}:{}", loc.module, info.site_function, file, line));
    info.function_key = logfmt::StableClassKey(
        fmt::format("{}|{}|{}", loc.module, info.site_function, file));
  }
  return rt->code_info.emplace(ip, std::move(info)).first->second;
}

// The first return address outside lockgraph and the C++ library's lock wrappers (at -O0,
// std::mutex::lock is a real function, and would otherwise be every lock's call site).
std::uint64_t UserIpLocked(Runtime* rt, std::uint64_t ip) {
  if (!CodeInfoLocked(rt, ip).wrapper) return ip;
  std::uint64_t frames[kMaxStackFrames];
  const int n = CaptureStack(frames, 24);
  for (int i = 0; i < n; ++i) {
    if (!CodeInfoLocked(rt, frames[i]).wrapper) return frames[i];
  }
  return ip;
}

ClassId RegisterLocked(Runtime* rt, std::uint64_t key, const std::string& name,
                       const std::string& identity) {
  auto it = rt->class_by_key.find(key);
  if (it != rt->class_by_key.end()) return it->second;
  const ClassId id = rt->engine.RegisterClass(key, name, 0);
  if (id == kNoClass) return id;
  rt->class_by_key.emplace(key, id);
  rt->recorder.ClassDefined(id, 0, identity, name);
  return id;
}

}  // namespace

std::string DataSymbol(Runtime* rt, const void* address, std::size_t object_size) {
  std::string name;
  std::uint64_t start = 0, size = 0;
  const auto addr = reinterpret_cast<std::uint64_t>(address);
  if (!rt->symbolizer.DataSymbol(addr, &name, &start, &size)) return {};
  const std::uint64_t offset = addr - start;
  // An array of locks: "locks[3]"; a lock at the start of a struct: the struct's name.
  if (object_size > 1 && size > object_size && size % object_size == 0 &&
      offset % object_size == 0) {
    return fmt::format("{}[{}]", name, offset / object_size);
  }
  if (offset == 0) return name;
  return fmt::format("{}+{:#x}", name, offset);
}

// One init call in the source is one class, however the compiler copied it: an init site is
// keyed by its source position (module, innermost function, file:line; bit 48 set) when there
// is line information, else by the return address (below 2^48). Unrolled init loops, helpers
// inlined into several callers and two calls on one line are then one class, as they are for
// `lockgraph analyze` (identity "site:file:line").
ClassId InitSiteClass(Runtime* rt, const void* lock, LockKind kind, std::uint64_t site) {
  std::lock_guard<std::mutex> guard(rt->classes_mu);
  const std::uint64_t ip = UserIpLocked(rt, site);
  const Runtime::CodeInfo& info = CodeInfoLocked(rt, ip);
  constexpr std::uint64_t kSourceSiteBit = std::uint64_t{1} << 48;
  const std::uint64_t key =
      kInitSiteTag | (info.site_key != 0 ? kSourceSiteBit | (info.site_key & (kSourceSiteBit - 1))
                                         : ip);
  auto it = rt->class_by_key.find(key);
  if (it != rt->class_by_key.end()) return it->second;
  // A lock that is itself a named global is best known by that name; others by the site.
  std::string name;
  if (rt->symbolizer.InModule(reinterpret_cast<std::uint64_t>(lock))) {
    name = DataSymbol(rt, lock, KindSize(kind));
    // The class covers every lock initialised here: name it after the object, not an element.
    const auto cut = name.find_first_of("[+");
    if (cut != std::string::npos) name.resize(cut);
  }
  if (name.empty()) {
    const auto colon = info.site.rfind(':');
    name = fmt::format("{}@{}{}", KindName(kind), info.site_function,
                       colon == std::string::npos ? "" : info.site.substr(colon));
  }
  return RegisterLocked(rt, key, name, "site:" + info.site);
}

ClassId FirstSeenClass(Runtime* rt, const void* lock, LockKind kind, std::uint64_t ip) {
  std::lock_guard<std::mutex> guard(rt->classes_mu);
  const auto addr = reinterpret_cast<std::uint64_t>(lock);
  auto annotated = rt->annotated.find(addr);
  if (annotated != rt->annotated.end()) {
    const ClassId id = annotated->second;
    rt->annotated.erase(annotated);
    return id;
  }
  if (rt->symbolizer.InModule(addr)) {
    // Static storage: one class per object, named after its symbol.
    auto it = rt->class_by_key.find(addr);
    if (it != rt->class_by_key.end()) return it->second;
    std::string name = DataSymbol(rt, lock, KindSize(kind));
    std::string identity;
    if (name.empty()) {
      const CodeLocation loc = rt->symbolizer.Locate(addr, false);
      name = fmt::format("{}@{}+{:#x}", KindName(kind), loc.module, loc.module_offset);
      identity = "name:" + name;
    } else {
      identity = "sym:" + name;
    }
    return RegisterLocked(rt, addr, name, identity);
  }
  // Heap or stack without an init call (std::mutex members): class of the first acquirer.
  const std::uint64_t user_ip = UserIpLocked(rt, ip);
  const Runtime::CodeInfo& info = CodeInfoLocked(rt, user_ip);
  // Keyed by that function's name and file (bit 48 set) when there is line information, so a
  // helper inlined into several callers is one function as it is at -O0; else by its address.
  constexpr std::uint64_t kSourceBit = std::uint64_t{1} << 48;
  const std::uint64_t key =
      kFunctionTag | (info.function_key != 0 ? kSourceBit | (info.function_key & (kSourceBit - 1))
                      : info.function != 0  ? info.function
                                            : user_ip);
  auto it = rt->class_by_key.find(key);
  if (it != rt->class_by_key.end()) return it->second;
  std::string name = fmt::format("{}@{}", KindName(kind), info.site_function);
  return RegisterLocked(rt, key, name, "name:" + name);
}

}  // namespace lockgraph::runtime_internal
