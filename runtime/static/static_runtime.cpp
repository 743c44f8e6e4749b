// liblockgraph.a, the static runtime: the C API and the engine without the pthread and signal
// interposers (interceptors.cpp is not compiled in). A statically linked program has no dynamic
// symbol lookup to interpose through, and its instrumented calls (lockgraph-instrument) are its
// only source of events. This file stands in for what the rest of the runtime takes from the
// interposers: fork quiescing (through pthread_atfork instead of a fork hook); the handled-signal
// set comes from no_signal_hooks.cpp.
// It also tells the runtime's own frames apart in captured stacks: linked into the program, the
// runtime has no text range of its own, so its functions are found by their symbols.
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <link.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <vector>

#include "internal.h"
#include "runtime.h"

namespace lockgraph::runtime_internal {

namespace {

// fork(): the same quiescing the shared library's fork hook does, from pthread_atfork handlers.
// Nothing is done while lockgraph code runs on the forking thread or once the runtime is off.
thread_local bool t_forking = false;  // this thread's prepare handler quiesced the runtime

void PrepareFork() {
  t_forking = false;
  if (tls.guard != 0 || RuntimeOff()) return;
  try {
    {
      HookScope scope;  // the runtime's start-up takes locks: make it exist before quiescing
      if (!scope.active()) return;
      GetRuntime();
    }
  } catch (...) {
    return;
  }
  BeforeFork();
  t_forking = true;
}

void ParentAfterFork() {
  if (!t_forking) return;
  t_forking = false;
  AfterForkParent();
}

void ChildAfterFork() {
  if (!t_forking) return;
  t_forking = false;
  AfterForkChild();
}

__attribute__((constructor(101))) void RegisterForkHandlers() {
  pthread_atfork(&PrepareFork, &ParentAfterFork, &ChildAfterFork);
}

// ---------------------------------------------------------------------------------------------
// The runtime's own functions in the program's symbol table: the lg_ C API (not the
// lg_instr_* helpers lockgraph-instrument inlines into the program) and everything in namespace
// lockgraph, including std templates instantiated over its types.
bool IsRuntimeSymbol(const char* name) {
  if (std::strncmp(name, "lg_", 3) == 0) return std::strncmp(name, "lg_instr_", 9) != 0;
  if (std::strncmp(name, "_ZN9lockgraph", 13) == 0 || std::strncmp(name, "_ZNK9lockgraph", 14) == 0 ||
      std::strncmp(name, "_ZZN9lockgraph", 14) == 0) {
    return true;
  }
  return (std::strncmp(name, "_ZNSt", 5) == 0 || std::strncmp(name, "_ZNKSt", 6) == 0) &&
         std::strstr(name, "N9lockgraph") != nullptr;
}

struct TextRange {
  std::uint64_t lo;
  std::uint64_t hi;
};

int MainProgramBias(dl_phdr_info* info, size_t, void* arg) {
  *static_cast<std::uint64_t*>(arg) = info->dlpi_addr;
  return 1;  // the first object is the program itself
}

// Sorted, merged ranges of the runtime's functions; empty if the symbol table cannot be read
// (a stripped program: its stacks then keep the runtime's frames on top).
std::vector<TextRange> ReadRuntimeRanges() {
  std::vector<TextRange> ranges;
  std::uint64_t bias = 0;
  dl_iterate_phdr(&MainProgramBias, &bias);
  if (elf_version(EV_CURRENT) == EV_NONE) return ranges;
  const int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ranges;
  if (Elf* elf = elf_begin(fd, ELF_C_READ, nullptr)) {
    Elf_Scn* scn = nullptr;
    while ((scn = elf_nextscn(elf, scn)) != nullptr) {
      GElf_Shdr shdr;
      if (gelf_getshdr(scn, &shdr) == nullptr || shdr.sh_type != SHT_SYMTAB ||
          shdr.sh_entsize == 0) {
        continue;
      }
      Elf_Data* data = elf_getdata(scn, nullptr);
      if (data == nullptr) continue;
      const size_t count = shdr.sh_size / shdr.sh_entsize;
      for (size_t i = 0; i < count; ++i) {
        GElf_Sym sym;
        if (gelf_getsym(data, static_cast<int>(i), &sym) == nullptr) continue;
        if (GELF_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_size == 0) continue;
        const char* name = elf_strptr(elf, shdr.sh_link, sym.st_name);
        if (name == nullptr || !IsRuntimeSymbol(name)) continue;
        ranges.push_back({bias + sym.st_value, bias + sym.st_value + sym.st_size});
      }
    }
    elf_end(elf);
  }
  close(fd);
  std::sort(ranges.begin(), ranges.end(),
            [](const TextRange& a, const TextRange& b) { return a.lo < b.lo; });
  std::vector<TextRange> merged;
  for (const TextRange& r : ranges) {
    if (!merged.empty() && r.lo <= merged.back().hi) {
      merged.back().hi = std::max(merged.back().hi, r.hi);
    } else {
      merged.push_back(r);
    }
  }
  return merged;
}

}  // namespace

bool IsStaticRuntimeCode(std::uint64_t ip) {
  static const std::vector<TextRange> ranges = ReadRuntimeRanges();
  auto it = std::upper_bound(ranges.begin(), ranges.end(), ip,
                             [](std::uint64_t v, const TextRange& r) { return v < r.lo; });
  if (it == ranges.begin()) return false;
  --it;
  return ip < it->hi;
}

}  // namespace lockgraph::runtime_internal
