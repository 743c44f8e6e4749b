// Stack capture with libunwind, the stack depot, and libdwfl symbolization of the live process.
#include "symbolize.h"

#include "internal.h"

#include <cxxabi.h>
#include <dlfcn.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <gelf.h>
#include <libunwind.h>
#include <link.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include <fmt/format.h>

namespace lockgraph::runtime_internal {
namespace {

std::uint64_t HashFrames(const std::uint64_t* frames, int count) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (int i = 0; i < count; ++i) {
    h ^= frames[i];
    h *= 0x100000001b3ull;
    h ^= h >> 29;
  }
  return h;
}

#ifndef LOCKGRAPH_STATIC_RUNTIME
// Text range of liblockgraph.so itself, found once (the static runtime tells its code apart by
// symbol instead, IsOwnCode below).
struct OwnRange {
  std::uint64_t lo = 0, hi = 0;
};

int FindOwnRange(dl_phdr_info* info, size_t, void* arg) {
  auto* range = static_cast<OwnRange*>(arg);
  Dl_info self{};
  if (dladdr(reinterpret_cast<void*>(&FindOwnRange), &self) == 0) return 1;
  if (reinterpret_cast<std::uint64_t>(self.dli_fbase) != info->dlpi_addr) return 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const auto& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_X)) continue;
    range->lo = info->dlpi_addr + ph.p_vaddr;
    range->hi = range->lo + ph.p_memsz;
  }
  return 1;
}

const OwnRange& Own() {
  static const OwnRange range = [] {
    OwnRange r;
    dl_iterate_phdr(&FindOwnRange, &r);
    return r;
  }();
  return range;
}
#endif  // !LOCKGRAPH_STATIC_RUNTIME

std::string Demangle(const char* name) {
  if (name == nullptr) return {};
  if (name[0] == '_' && name[1] == 'Z') {
    int status = 0;
    char* out = abi::__cxa_demangle(name, nullptr, nullptr, &status);
    if (status == 0 && out != nullptr) {
      std::string s(out);
      std::free(out);
      return s;
    }
  }
  return name;
}

std::string Basename(const char* path) {
  if (path == nullptr) return {};
  const char* slash = std::strrchr(path, '/');
  return slash ? slash + 1 : path;
}

// Separate debug files are looked up locally only: by build ID under /usr/lib/debug, then by
// .gnu_debuglink next to the file, in its .debug/ and under /usr/lib/debug. Never through
// dwfl_standard_find_debuginfo: when both fail it asks debuginfod, whose client initialises
// libcurl and OpenSSL inside the host (their locks then first appear mid-use, without their init
// calls) and, with DEBUGINFOD_URLS set, would fetch over the network while a report is printed.
int TryDebugFile(const std::string& path, char** debuginfo_file_name) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) *debuginfo_file_name = strdup(path.c_str());
  return fd;
}

int FindLocalDebuginfo(Dwfl_Module* mod, void** userdata, const char* modname, GElf_Addr base,
                       const char* file_name, const char* debuglink_file,
                       GElf_Word debuglink_crc, char** debuginfo_file_name) {
  int fd = dwfl_build_id_find_debuginfo(mod, userdata, modname, base, file_name, debuglink_file,
                                        debuglink_crc, debuginfo_file_name);
  if (fd >= 0 || file_name == nullptr || debuglink_file == nullptr ||
      std::strchr(debuglink_file, '/') != nullptr) {
    return fd;
  }
  std::string dir = file_name;
  const auto slash = dir.rfind('/');
  dir = slash == std::string::npos ? "." : dir.substr(0, slash);
  const std::string link = debuglink_file;
  if (dir + "/" + link != file_name) {
    if ((fd = TryDebugFile(dir + "/" + link, debuginfo_file_name)) >= 0) return fd;
  }
  if ((fd = TryDebugFile(dir + "/.debug/" + link, debuginfo_file_name)) >= 0) return fd;
  return TryDebugFile("/usr/lib/debug" + dir + "/" + link, debuginfo_file_name);
}

char* g_debuginfo_path = nullptr;
const Dwfl_Callbacks kCallbacks = {
    dwfl_linux_proc_find_elf,
    FindLocalDebuginfo,
    nullptr,
    &g_debuginfo_path,
};

}  // namespace

#ifdef LOCKGRAPH_STATIC_RUNTIME
// liblockgraph.a is linked into the program's own text: static/static_runtime.cpp tells its
// functions apart by their symbols.
bool IsStaticRuntimeCode(std::uint64_t ip);
#endif

bool IsOwnCode(std::uint64_t ip) {
#ifdef LOCKGRAPH_STATIC_RUNTIME
  return IsStaticRuntimeCode(ip);
#else
  const OwnRange& r = Own();
  return ip >= r.lo && ip < r.hi;
#endif
}

StackId StackDepot::Insert(const std::uint64_t* frames, int count) {
  if (count <= 0) return kNoStack;
  const std::uint64_t h = HashFrames(frames, count);
  std::lock_guard<std::mutex> lock(mu_);
  auto range = by_hash_.equal_range(h);
  for (auto it = range.first; it != range.second; ++it) {
    const auto& s = stacks_[it->second - 1];
    if (static_cast<int>(s.size()) == count &&
        std::memcmp(s.data(), frames, count * sizeof(std::uint64_t)) == 0) {
      return it->second;
    }
  }
  stacks_.emplace_back(frames, frames + count);
  const StackId id = stacks_.size();
  by_hash_.emplace(h, id);
  return id;
}

std::vector<std::uint64_t> StackDepot::Get(StackId id) const {
  std::lock_guard<std::mutex> lock(mu_);
  if (id == kNoStack || id > stacks_.size()) return {};
  return stacks_[id - 1];
}

std::size_t StackDepot::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stacks_.size();
}

int CaptureStack(std::uint64_t* out, int max_frames) {
  // unw_step rather than unw_backtrace: the latter's fast frame-chain trace loses callers of
  // functions that were entered by a tail jump.
  void* raw[kMaxStackFrames + 16];
  const int want = std::min(max_frames, kMaxStackFrames) + 16;
  int n = 0;
  unw_context_t context;
  unw_cursor_t cursor;
  sigset_t saved_mask;
  const bool masked = BeginCaptureMask(&saved_mask);  // one mask change, not two per frame
  if (unw_getcontext(&context) == 0 && unw_init_local(&cursor, &context) == 0) {
    while (n < want && unw_step(&cursor) > 0) {
      unw_word_t ip = 0;
      if (unw_get_reg(&cursor, UNW_REG_IP, &ip) != 0 || ip == 0) break;
      raw[n++] = reinterpret_cast<void*>(ip);
    }
  }
  if (masked) EndCaptureMask(&saved_mask);
  int count = 0;
  int trampolines = 0;
  for (int i = 0; i < n && count < max_frames; ++i) {
    const auto ip = reinterpret_cast<std::uint64_t>(raw[i]);
    if (IsOwnCode(ip)) {
      // Past the first user frame, lockgraph code is the signal trampoline: it stands for the
      // user's handler (which may have tail-called out of its own frame), and the frame above
      // it is the kernel's signal return (__restore_rt), not a caller.
      if (count > 0) {
        const int level = tls.signal_depth - 1 - trampolines++;
        if (level >= 0 && level < 8 && tls.signal_handlers[level] != 0) {
          out[count++] = tls.signal_handlers[level] + 1;  // +1: symbolized as a return address
        }
        ++i;
      }
      continue;
    }
    out[count++] = ip;
  }
  return count;
}

ProcessSymbolizer::ProcessSymbolizer() = default;

ProcessSymbolizer::~ProcessSymbolizer() {
  if (dwfl_ != nullptr) dwfl_end(dwfl_);
}

// Reports the process's modules to libdwfl from the dynamic linker's list (their bounds then
// include .bss, which /proc/self/maps shows as anonymous memory); again, at most a few times,
// when an address falls outside every known module, as after dlopen.
namespace {
int ReportModule(dl_phdr_info* info, size_t, void* arg) {
  auto* dwfl = static_cast<Dwfl*>(arg);
  std::string path = info->dlpi_name != nullptr ? info->dlpi_name : "";
  if (path.empty()) {
    char exe[4096];
    const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) return 0;
    exe[n] = '\0';
    path = exe;
  }
  if (path.find("linux-vdso") != std::string::npos || access(path.c_str(), R_OK) != 0) return 0;
  dwfl_report_elf(dwfl, Basename(path.c_str()).c_str(), path.c_str(), -1, info->dlpi_addr, false);
  return 0;
}
}  // namespace

bool ProcessSymbolizer::EnsureReportedLocked(std::uint64_t address) {
  constexpr int kMaxReports = 16;  // named limit on re-reading the module list
  if (dwfl_ == nullptr) {
    dwfl_ = dwfl_begin(&kCallbacks);
    if (dwfl_ == nullptr) return false;
  } else if (dwfl_addrmodule(dwfl_, address) != nullptr) {
    return true;
  }
  if (reports_ >= kMaxReports) return false;
  ++reports_;
  dwfl_report_begin(dwfl_);
  dl_iterate_phdr(&ReportModule, dwfl_);
  dwfl_report_end(dwfl_, nullptr, nullptr);
  return dwfl_addrmodule(dwfl_, address) != nullptr;
}

namespace {
// Walks the DWARF scopes at `addr`: each inlined subroutine is a frame of its own, positioned at
// the line table's line (innermost) or at the call site recorded by the inlined copy inside it.
void AddInlineFrames(Dwfl_Module* mod, Dwarf_Addr addr, CodeLocation* loc) {
  Dwarf_Addr bias = 0;
  Dwarf_Die* cudie = dwfl_module_addrdie(mod, addr, &bias);
  if (cudie == nullptr) return;
  Dwarf_Die* scopes = nullptr;
  const int n = dwarf_getscopes(cudie, addr - bias, &scopes);
  if (n <= 0) return;
  Dwarf_Files* files = nullptr;
  size_t nfiles = 0;
  dwarf_getsrcfiles(cudie, &files, &nfiles);
  std::string file = loc->file;
  int line = loc->line;
  bool any_inline = false;
  bool reached_subprogram = false;
  for (int i = 0; i < n; ++i) {
    const int tag = dwarf_tag(&scopes[i]);
    if (tag != DW_TAG_inlined_subroutine && tag != DW_TAG_subprogram) continue;
    CodeLocation::Inline frame;
    const char* name = dwarf_diename(&scopes[i]);
    frame.function = name != nullptr ? name : "";
    frame.file = file;
    frame.line = line;
    if (tag == DW_TAG_subprogram) {
      if (!loc->function.empty()) frame.function = loc->function;  // qualified, demangled
      loc->inlined.push_back(std::move(frame));
      reached_subprogram = true;
      break;
    }
    any_inline = true;
    loc->inlined.push_back(std::move(frame));
    Dwarf_Attribute attr;
    Dwarf_Word value = 0;
    if (dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_line, &attr), &value) == 0) {
      line = static_cast<int>(value);
    }
    if (files != nullptr &&
        dwarf_formudata(dwarf_attr(&scopes[i], DW_AT_call_file, &attr), &value) == 0) {
      if (const char* f = dwarf_filesrc(files, value, nullptr, nullptr)) file = Basename(f);
    }
  }
  std::free(scopes);
  if (!any_inline) {
    loc->inlined.clear();
  } else if (!reached_subprogram) {
    // The scope list can stop at the inlined copy's parents without the concrete subprogram:
    // the physical frame is the symbol table's function, at the outermost call site.
    loc->inlined.push_back({loc->function, file, line});
  }
}
}  // namespace

CodeLocation ProcessSymbolizer::Locate(std::uint64_t ip, bool is_return) {
  CodeLocation loc;
  const std::uint64_t lookup = is_return && ip > 0 ? ip - 1 : ip;
  std::lock_guard<std::mutex> lock(mu_);
  if (!EnsureReportedLocked(lookup)) return loc;
  Dwfl_Module* mod = dwfl_addrmodule(dwfl_, lookup);
  if (mod == nullptr) return loc;
  Dwarf_Addr start = 0;
  const char* mainfile = nullptr;
  const char* modname =
      dwfl_module_info(mod, nullptr, &start, nullptr, nullptr, nullptr, &mainfile, nullptr);
  loc.module = Basename(mainfile ? mainfile : modname);
  loc.module_offset = ip - start;
  GElf_Off offset = 0;
  GElf_Sym sym;
  const char* name = dwfl_module_addrinfo(mod, lookup, &offset, &sym, nullptr, nullptr, nullptr);
  if (name != nullptr) {
    loc.function = Demangle(name);
    loc.function_start = lookup - offset;
    loc.function_offset = ip - loc.function_start;
  }
  if (Dwfl_Line* line = dwfl_module_getsrc(mod, lookup)) {
    int lineno = 0;
    const char* file = dwfl_lineinfo(line, nullptr, &lineno, nullptr, nullptr, nullptr);
    if (file != nullptr) {
      loc.file = Basename(file);
      loc.line = lineno;
    }
  }
  AddInlineFrames(mod, lookup, &loc);
  return loc;
}

bool ProcessSymbolizer::DataSymbol(std::uint64_t address, std::string* name,
                                   std::uint64_t* start, std::uint64_t* size) {
  std::lock_guard<std::mutex> lock(mu_);
  if (last_data_.reports == reports_ && address - last_data_.start < last_data_.size) {
    *name = last_data_.name;
    *start = last_data_.start;
    *size = last_data_.size;
    return true;
  }
  if (!EnsureReportedLocked(address)) return false;
  Dwfl_Module* mod = dwfl_addrmodule(dwfl_, address);
  if (mod == nullptr) return false;
  GElf_Off offset = 0;
  GElf_Sym sym;
  const char* sname =
      dwfl_module_addrinfo(mod, address, &offset, &sym, nullptr, nullptr, nullptr);
  if (sname == nullptr || GELF_ST_TYPE(sym.st_info) != STT_OBJECT) return false;
  if (offset >= sym.st_size) return false;
  *name = Demangle(sname);
  // A function-local static is "counter.0" in the symbol table: the source name is "counter".
  const auto dot = name->rfind('.');
  if (dot != std::string::npos && dot + 1 < name->size() &&
      name->find_first_not_of("0123456789", dot + 1) == std::string::npos) {
    name->resize(dot);
  }
  *start = address - offset;
  *size = sym.st_size;
  last_data_ = LastDataSymbol{*start, *size, *name, reports_};
  return true;
}

namespace {
struct InModuleArg {
  std::uint64_t address;
  bool found;
};
int FindInModule(dl_phdr_info* info, size_t, void* arg) {
  auto* a = static_cast<InModuleArg*>(arg);
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const auto& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    const std::uint64_t lo = info->dlpi_addr + ph.p_vaddr;
    if (a->address >= lo && a->address < lo + ph.p_memsz) {
      a->found = true;
      return 1;
    }
  }
  return 0;
}
}  // namespace

bool ProcessSymbolizer::InModule(std::uint64_t address) {
  InModuleArg arg{address, false};
  dl_iterate_phdr(&FindInModule, &arg);
  return arg.found;
}

std::string FormatLocation(const CodeLocation& loc, std::uint64_t ip) {
  std::string out;
  if (!loc.function.empty()) {
    out = fmt::format("{}+{:#x}", loc.function, loc.function_offset);
    if (!loc.file.empty()) out += fmt::format(" ({}:{})", loc.file, loc.line);
    return out;
  }
  if (!loc.file.empty()) return fmt::format("{:#x} ({}:{})", ip, loc.file, loc.line);
  if (!loc.module.empty()) return fmt::format("{}+{:#x}", loc.module, loc.module_offset);
  return fmt::format("{:#x}", ip);
}

void ReportSymbolizer::AppendStack(StackId stack, int indent, std::string* out) const {
  const std::vector<std::uint64_t> frames = depot_->Get(stack);
  if (frames.empty()) {
    out->append(indent, ' ');
    out->append("(no stack)\n");
    return;
  }
  for (const std::string& line : FrameLines(frames)) {
    out->append(indent, ' ');
    out->append(line);
    out->push_back('\n');
  }
}

CodeLocation ReportSymbolizer::LocateReturn(std::uint64_t ip, LocationCache* cache) const {
  if (cache == nullptr) return symbolizer_->Locate(ip, true);
  auto it = cache->find(ip);
  if (it == cache->end()) it = cache->emplace(ip, symbolizer_->Locate(ip, true)).first;
  return it->second;
}

std::vector<std::string> ReportSymbolizer::FrameLines(const std::vector<std::uint64_t>& frames,
                                                      LocationCache* cache) const {
  std::vector<std::string> lines;
  std::string previous;
  for (std::uint64_t ip : frames) {
    CodeLocation loc = LocateReturn(ip, cache);
    // A signal handler's entry stands in for its frame; skip it when the frame is there.
    if (!loc.function.empty() && loc.function == previous && loc.function_offset == 1) continue;
    previous = loc.function;
    // Inlined functions first, each on its own line, then the physical frame.
    for (std::size_t i = 0; i + 1 < loc.inlined.size(); ++i) {
      const auto& in = loc.inlined[i];
      lines.push_back(fmt::format("{} (inlined, {}:{})", in.function, in.file, in.line));
    }
    if (!loc.inlined.empty()) {
      loc.file = loc.inlined.back().file;
      loc.line = loc.inlined.back().line;
    }
    lines.push_back(FormatLocation(loc, ip));
    // Frames below main (libc start-up) say nothing useful.
    if (loc.function == "main") break;
  }
  return lines;
}

// An inlined frame of the C++ library's or lockgraph's lock wrappers, or of the helpers
// lockgraph-instrument writes into an instrumented file. DWARF names inlined functions
// unqualified ("lock"), so the header they come from tells them apart.
bool IsInlinedWrapper(const CodeLocation::Inline& frame) {
  const std::string& f = frame.function;
  if (f.rfind("std::", 0) == 0 || f.rfind("__gthread", 0) == 0 || f.rfind("__gthrw", 0) == 0 ||
      f.rfind("lockgraph::", 0) == 0) {
    return true;
  }
  static const char* const kWrapperHeaders[] = {
      "gthr-posix.h", "gthr-default.h", "std_mutex.h", "mutex", "shared_mutex",
      "unique_lock.h", "condition_variable", "lockgraph.hpp", "<lockgraph-instrument>"};
  for (const char* h : kWrapperHeaders) {
    if (frame.file == h) return true;
  }
  return false;
}

void ReportSymbolizer::AppendCallSite(std::uint64_t ip, std::string* out) const {
  AppendCallSite(ip, out, nullptr);
}

void ReportSymbolizer::AppendCallSite(std::uint64_t ip, std::string* out,
                                      LocationCache* cache) const {
  if (ip == 0) {
    out->append("(unknown)");
    return;
  }
  CodeLocation loc = LocateReturn(ip, cache);
  if (!loc.inlined.empty()) {
    // The innermost inlined function that is not a lock wrapper (std::mutex::lock inlined at
    // -O2, an instrumented trylock's helper) is where the user's call is; each entry's position
    // is inside that function, so a caller's entry gives the line that called the wrapper.
    const CodeLocation::Inline* site = &loc.inlined.front();
    for (const auto& in : loc.inlined) {
      if (!in.function.empty() && !IsInlinedWrapper(in)) {
        site = &in;
        break;
      }
    }
    out->append(fmt::format("{} ({}:{})", site->function, site->file, site->line));
    return;
  }
  if (!loc.function.empty()) {
    out->append(loc.function);
    if (!loc.file.empty()) out->append(fmt::format(" ({}:{})", loc.file, loc.line));
    return;
  }
  out->append(FormatLocation(loc, ip));
}

}  // namespace lockgraph::runtime_internal
