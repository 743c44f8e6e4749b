// The Runtime object: everything liblockgraph keeps for the life of the process.
#ifndef LOCKGRAPH_RUNTIME_RUNTIME_H_
#define LOCKGRAPH_RUNTIME_RUNTIME_H_

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <spdlog/logger.h>

#include "internal.h"
#include "lockgraph/engine.h"
#include "lockgraph/finding.h"
#include "recorder.h"
#include "symbolize.h"

namespace lockgraph::runtime_internal {

class Runtime {
 public:
  explicit Runtime(const Options& options);
  ~Runtime();

  void OnFinding(const Finding& finding);
  void Emit(const Finding& finding);
  // Counts a finding (status file) and prints its text: reports and failed assertions.
  void CountFinding(std::string_view kind, std::string_view fingerprint);
  void EmitText(const std::string& text, std::string_view kind, std::string_view fingerprint);
  void Print(const std::string& text);

  Options options;
  std::shared_ptr<spdlog::logger> logger;

 private:
  class Sink;
  std::unique_ptr<Sink> sink_;

 public:
  Engine engine;
  StackDepot depot;
  ProcessSymbolizer symbolizer;
  ReportSymbolizer report_symbolizer;
  Recorder recorder;

  int report_fd = 2;
  int status_fd = -1;
  std::mutex output_mu;

  std::mutex deferred_mu;
  std::vector<Finding> deferred;
  std::atomic<std::size_t> deferred_count{0};

  std::atomic<void (*)(const char*, void*)> callback{nullptr};
  void* callback_arg = nullptr;

  // Class caches (first-sight and init paths only, never the acquisition fast path).
  std::mutex classes_mu;
  std::unordered_map<std::uint64_t, ClassId> class_by_key;       // tagged key -> class
  struct CodeInfo {
    bool wrapper = false;          // inside the C++ library's lock wrappers
    std::uint64_t function = 0;    // function start (0: unknown)
    std::string function_name;     // without parameters
    std::string site;              // "file:line" or "module+0x.."
    // The source call site ip stands for: function (the innermost inlined one) and file:line,
    // keyed within its module; 0 without line information. Unrolled loops, inlined helpers and
    // the copies an optimiser makes of one call all share it.
    std::uint64_t site_key = 0;
    std::uint64_t function_key = 0;  // the same without the line: the function's identity
    std::string site_function;     // innermost non-wrapper function at ip, without parameters
  };
  std::unordered_map<std::uint64_t, CodeInfo> code_info;         // ip -> info
  // Locks annotated with lg_lock_init before the shim saw them: consumed at first sight.
  std::unordered_map<std::uint64_t, ClassId> annotated;
  std::unordered_set<std::uint64_t> failed_assertions;
  // Annotated locks ended by lg_lock_destroy: a later lg_acquire is a use of a destroyed lock,
  // not a first sight.
  std::unordered_set<std::uint64_t> destroyed_annotated;  // call sites already reported
};

}  // namespace lockgraph::runtime_internal

#endif  // LOCKGRAPH_RUNTIME_RUNTIME_H_
