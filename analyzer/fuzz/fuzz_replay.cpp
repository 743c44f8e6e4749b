// libFuzzer target: a whole analysis of an arbitrary text log: parse, replay into the engine,
// format every finding. Whatever the events say (releases of locks never taken, exits inside
// signal handlers, classes redefined), the analyzer must not crash.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "lockgraph/engine.h"
#include "lockgraph/finding.h"
#include "log_reader.h"
#include "replay.h"

namespace {

class Sink : public lockgraph::FindingSink {
 public:
  void OnFinding(const lockgraph::Finding& f) override { findings.push_back(f); }
  void OnTurnedOff(std::string_view) override {}
  std::vector<lockgraph::Finding> findings;
};

std::string TempPath() {
  static std::string path = "/tmp/lockgraph-fuzz-replay-" + std::to_string(getpid()) + ".txt";
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The text reader needs the magic line; give it one so the fuzzer explores the events.
  std::string text = "lockgraph-text 1\n";
  text.append(reinterpret_cast<const char*>(data), size);
  FILE* f = std::fopen(TempPath().c_str(), "wb");
  if (!f) return 0;
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);

  lockgraph::analyzer::LoadedLog log;
  log.path = TempPath();
  lockgraph::analyzer::LoadLog(&log, nullptr);
  if (log.fatal || !log.usable) return 0;
  Sink sink;
  lockgraph::EngineOptions options;
  options.max_held_locks = 256;   // keep pathological inputs cheap
  options.max_classes = 4096;
  options.max_dependencies = 1 << 16;
  lockgraph::Engine engine(options, &sink);
  lockgraph::analyzer::LogSymbolizer symbolizer;
  lockgraph::analyzer::Replayer replayer(&engine, &symbolizer);
  replayer.Replay(log, 0, nullptr);
  for (const auto& finding : sink.findings) (void)lockgraph::FormatReport(finding, symbolizer);
  if (!engine.CheckInvariants().empty()) __builtin_trap();
  return 0;
}
