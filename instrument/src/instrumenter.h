// The rewriting front end action of lockgraph-instrument: finds lock calls, guards, handlers and
// lock declarations in each main file and writes an instrumented copy that calls the C API.
#ifndef LOCKGRAPH_INSTRUMENT_INSTRUMENTER_H_
#define LOCKGRAPH_INSTRUMENT_INSTRUMENTER_H_

#include <memory>
#include <string>
#include <vector>

#include "clang/Tooling/Tooling.h"
#include "config.h"

namespace lockgraph::instrument {

struct Options {
  std::string output_dir;  // where instrumented files go (not used with dry_run)
  std::string root;        // source paths are made relative to this under output_dir
  bool dry_run = false;    // list what would be instrumented, write nothing
  bool std_locks = true;   // std::mutex family, std lock guards, std::lock
  bool capabilities = true;  // Clang thread-safety capability attributes
  bool keep_interposers = false;  // else the output turns the runtime's pthread interposers off
  // Project headers (outside the system include directories, under one of header_dirs, or under
  // root when it is empty) are rewritten too, into copies the main file's copy includes.
  bool headers = true;
  std::vector<std::string> header_dirs;  // absolute
  std::string depfile;  // a Makefile-style list of the files the (single) output depends on
};

// What happened to each input file, for the exit code and the summary.
struct Results {
  std::vector<std::string> written;  // output paths (sources and header copies)
  std::vector<std::string> failed;   // input paths that did not parse or could not be written
  unsigned points = 0;               // instrumentation points over all files
};

std::unique_ptr<clang::tooling::FrontendActionFactory> MakeInstrumentActionFactory(
    const Config& config, const Options& options, Results& results);

}  // namespace lockgraph::instrument

#endif  // LOCKGRAPH_INSTRUMENT_INSTRUMENTER_H_
