// Stack capture (libunwind), the stack depot, and symbolization of code and data addresses
// (elfutils libdwfl) for reports and class names.
#ifndef LOCKGRAPH_RUNTIME_SYMBOLIZE_H_
#define LOCKGRAPH_RUNTIME_SYMBOLIZE_H_

#include <cstdint>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "lockgraph/finding.h"
#include "lockgraph/types.h"

struct Dwfl;

namespace lockgraph::runtime_internal {

// Named limit: frames kept per stack.
inline constexpr int kMaxStackFrames = 64;

// Where a code address is.
struct CodeLocation {
  std::string function;     // demangled, empty if unknown
  std::uint64_t function_start = 0;
  std::uint64_t function_offset = 0;
  std::string file;         // source file (basename), empty if unknown
  int line = 0;
  std::string module;       // basename of the ELF file
  std::uint64_t module_offset = 0;
  // Functions inlined at this address, innermost first, when there is debug info: each with
  // the source position inside it. The last one is `function` itself (the physical frame).
  struct Inline {
    std::string function;
    std::string file;
    int line = 0;
  };
  std::vector<Inline> inlined;
};

// Captured stacks, deduplicated. Slow path only (new dependency, usage or finding).
class StackDepot {
 public:
  StackId Insert(const std::uint64_t* frames, int count);
  std::vector<std::uint64_t> Get(StackId id) const;
  std::size_t size() const;

 private:
  mutable std::mutex mu_;
  std::vector<std::vector<std::uint64_t>> stacks_;
  std::unordered_multimap<std::uint64_t, StackId> by_hash_;
};

// Captures the caller's stack with libunwind, dropping lockgraph's own frames. Returns the
// number of frames written to `out`.
int CaptureStack(std::uint64_t* out, int max_frames);

// True when `ip` is inside liblockgraph itself.
bool IsOwnCode(std::uint64_t ip);

// libdwfl over the live process. Not thread-safe by itself: every call takes mu_.
class ProcessSymbolizer {
 public:
  ProcessSymbolizer();
  ~ProcessSymbolizer();
  // `ip` is a return address when `is_return` (the call instruction precedes it).
  CodeLocation Locate(std::uint64_t ip, bool is_return);
  // The data symbol containing `address`: name, start and size. False if none.
  bool DataSymbol(std::uint64_t address, std::string* name, std::uint64_t* start,
                  std::uint64_t* size);
  // True when `address` lies in a loaded ELF module (static storage, not heap or stack).
  bool InModule(std::uint64_t address);

 private:
  bool EnsureReportedLocked(std::uint64_t address);
  std::mutex mu_;
  ::Dwfl* dwfl_ = nullptr;
  int reports_ = 0;
  // The last data symbol found, while the module list is the one it was found in: the locks of
  // one static array (10,000 in the benchmark's pool) are one libdw look-up, not one each
  // (~22,000 instructions).
  struct LastDataSymbol {
    std::uint64_t start = 0, size = 0;
    std::string name;
    int reports = -1;
  };
  LastDataSymbol last_data_;
};

// The report Symbolizer: stacks from the depot, frames through ProcessSymbolizer.
class ReportSymbolizer final : public Symbolizer {
 public:
  ReportSymbolizer(StackDepot* depot, ProcessSymbolizer* symbolizer)
      : depot_(depot), symbolizer_(symbolizer) {}
  void AppendStack(StackId stack, int indent, std::string* out) const override;
  void AppendCallSite(std::uint64_t ip, std::string* out) const override;
  // Return addresses already located, for a caller that symbolizes many stacks sharing frames
  // (the recorder). The caller owns it and serialises its use; an entry goes stale only if a
  // module is unloaded and another one loaded at the same address.
  using LocationCache = std::unordered_map<std::uint64_t, CodeLocation>;
  void AppendCallSite(std::uint64_t ip, std::string* out, LocationCache* cache) const;
  // The lines AppendStack prints for `frames` (without indentation): the recorder writes these
  // into the lock log, so an offline report prints exactly what the live one does.
  std::vector<std::string> FrameLines(const std::vector<std::uint64_t>& frames,
                                      LocationCache* cache = nullptr) const;

 private:
  // Locate(ip, true) through `cache` when there is one.
  CodeLocation LocateReturn(std::uint64_t ip, LocationCache* cache) const;
  StackDepot* depot_;
  ProcessSymbolizer* symbolizer_;
};

// "function (file:line)", else "module+0xoffset", else "0xaddress".
std::string FormatLocation(const CodeLocation& loc, std::uint64_t ip);
// True for an inlined frame of a lock wrapper: libstdc++'s and lockgraph.hpp's lock functions
// and the helpers lockgraph-instrument writes (file `<lockgraph-instrument>`).
bool IsInlinedWrapper(const CodeLocation::Inline& frame);

}  // namespace lockgraph::runtime_internal

#endif  // LOCKGRAPH_RUNTIME_SYMBOLIZE_H_
