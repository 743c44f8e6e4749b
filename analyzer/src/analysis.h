// One analysis: inputs loaded (in parallel), replayed into one engine, findings classified
// against suppressions and a baseline. Shared by `analyze`, `graph` and `baseline`.
#ifndef LOCKGRAPH_ANALYZER_ANALYSIS_H_
#define LOCKGRAPH_ANALYZER_ANALYSIS_H_

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "lockgraph/engine.h"
#include "lockgraph/finding.h"
#include "log_reader.h"
#include "replay.h"
#include "suppressions.h"

namespace lockgraph::analyzer {

enum class FindingStatus { kNew, kBaselined, kSuppressed };

struct AnalyzedFinding {
  Finding finding;
  std::string report;       // lockdep-format text
  FindingStatus status = FindingStatus::kNew;
  const Suppression* suppression = nullptr;
};

struct AnalyzeOptions {
  std::vector<std::string> inputs;
  bool strict = false;
  unsigned jobs = 0;        // 0: one per core
  bool progress = false;
  std::vector<Suppression>* suppressions = nullptr;
  const std::set<std::string>* baseline = nullptr;
  // Always use the two-pass path (every log's tables read before any replay); for tests and
  // comparisons. The default pipeline falls back to it by itself when it has to.
  bool two_pass = false;
};

struct Analysis {
  std::vector<std::unique_ptr<LoadedLog>> logs;   // every input, in order
  std::vector<RunId> runs;                         // run id of each replayed log (-1: skipped)
  LogSymbolizer symbolizer;
  std::unique_ptr<Engine> engine;
  std::vector<AnalyzedFinding> findings;           // in the order the engine found them
  std::vector<InputError> errors;                  // every input problem, in input order
  std::string turned_off;                          // why the engine turned itself off, if it did
  std::uint64_t events = 0;
  std::uint64_t bytes = 0;
  double load_seconds = 0, replay_seconds = 0;
  // The pipeline decodes while it replays: replay_seconds is then the whole analysis and
  // decode_seconds the decoder threads' busy time (overlapped with it).
  double decode_seconds = 0;       // CPU time of the decoder threads
  double replay_cpu_seconds = 0;   // CPU time of the replaying thread
  bool pipelined = false;
  std::size_t merged_logs = 0;     // pipelined stamped logs replayed by the windowed merge
  // Why the analysis was redone in two passes ("FILE: definitions after their use", "FILE: a
  // damaged stamped log"); empty when the pipeline's result stood.
  std::string two_pass_reason;
  bool input_error = false;                        // some input was missing, unreadable or damaged

  std::size_t CountNew() const;
  // 0: no new findings (and clean input); 1: new findings; 2: input error and no new findings.
  int ExitCode() const;
};

// Loads, replays and classifies. Returns false when nothing at all could be read.
bool Analyze(const AnalyzeOptions& options, Analysis* analysis);

}  // namespace lockgraph::analyzer

#endif  // LOCKGRAPH_ANALYZER_ANALYSIS_H_
