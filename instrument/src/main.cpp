// lockgraph-instrument: rewrites C and C++ sources so their locks and interrupt contexts reach the
// lockgraph validator through its C API.
#include <string>

#include "clang/Tooling/ArgumentsAdjusters.h"
#include "clang/Tooling/CommonOptionsParser.h"
#include "clang/Tooling/Tooling.h"
#include "config.h"
#include "instrumenter.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

namespace {

namespace cl = llvm::cl;

cl::OptionCategory category("lockgraph-instrument options");

cl::opt<std::string> output_dir(
    "o", cl::desc("Directory for the instrumented sources (never the source directory)"),
    cl::value_desc("dir"), cl::cat(category));
cl::opt<std::string> root(
    "root",
    cl::desc("Sources under <dir> keep their relative path below -o (default: the current "
             "directory); others keep their absolute path below -o"),
    cl::value_desc("dir"), cl::cat(category));
cl::list<std::string> config_files(
    "config",
    cl::desc("Config file naming lock, unlock, irq and handler functions (see docs/instrument.md); "
             "may be given more than once, later files override earlier ones"),
    cl::value_desc("file"), cl::cat(category));
cl::opt<bool> dry_run("dry-run", cl::desc("List what would be instrumented; write nothing"),
                      cl::cat(category));
cl::opt<bool> pthread("pthread", cl::desc("Instrument pthread lock calls (default on)"),
                      cl::init(true), cl::cat(category));
cl::opt<bool> std_locks("std-locks",
                        cl::desc("Instrument std::mutex types, std lock guards and std::lock "
                                 "(default on)"),
                        cl::init(true), cl::cat(category));
cl::opt<bool> capabilities("capabilities",
                           cl::desc("Instrument functions with Clang thread-safety capability "
                                    "attributes (default on)"),
                           cl::init(true), cl::cat(category));

cl::opt<bool> keep_interposers(
    "keep-interposers",
    cl::desc("Leave liblockgraph's pthread interposers on in the instrumented program (by default "
             "it turns them off, as the instrumented calls already report each lock)"),
    cl::cat(category));

cl::opt<bool> headers(
    "headers",
    cl::desc("Also rewrite the project headers a source includes (default on): copies of them go "
             "next to the source's copy, and its copy includes them"),
    cl::init(true), cl::cat(category));
cl::list<std::string> header_dirs(
    "headers-under",
    cl::desc("Project headers are those under <dir> (repeatable; default: the --root directory); "
             "system headers are never rewritten"),
    cl::value_desc("dir"), cl::cat(category));
cl::opt<std::string> depfile(
    "depfile",
    cl::desc("Write a Makefile-style list of the files the output depends on (one source only)"),
    cl::value_desc("file"), cl::cat(category));

cl::extrahelp common_help(clang::tooling::CommonOptionsParser::HelpMessage);
cl::extrahelp examples(R"(
Examples:
  Instrument the files of a CMake build (compile_commands.json in build/) into out/:
    lockgraph-instrument -p build -o out --config kernel.conf src/list_lru.c src/inode.c

  List what would be instrumented in one file, with its flags after --:
    lockgraph-instrument --dry-run --config kernel.conf lru.c -- -Iinclude

  Then compile out/... instead of the originals and link with -llockgraph.
)");

}  // namespace

int main(int argc, const char** argv) {
  auto parser = clang::tooling::CommonOptionsParser::create(argc, argv, category, cl::OneOrMore);
  if (!parser) {
    llvm::errs() << "lockgraph-instrument: error: " << llvm::toString(parser.takeError()) << "\n";
    return 2;
  }
  if (!dry_run && output_dir.empty()) {
    llvm::errs() << "lockgraph-instrument: error: no output directory: pass -o <dir>, or "
                    "--dry-run to only list what would be instrumented\n";
    return 2;
  }

  lockgraph::instrument::Config config;
  for (const std::string& file : config_files) {
    std::string error;
    if (!config.Load(file, error)) {
      llvm::errs() << "lockgraph-instrument: error: " << error << "\n";
      return 2;
    }
  }
  if (pthread) config.AddPthreadFunctions();

  lockgraph::instrument::Options options;
  options.dry_run = dry_run;
  options.std_locks = std_locks;
  options.capabilities = capabilities;
  options.keep_interposers = keep_interposers;
  auto absolute = [](const std::string& p) {
    llvm::SmallString<256> path(p.empty() ? "." : p);
    llvm::sys::fs::make_absolute(path);
    llvm::sys::path::remove_dots(path, true);
    return std::string(path);
  };
  options.root = absolute(root);
  options.headers = headers;
  for (const std::string& dir : header_dirs) options.header_dirs.push_back(absolute(dir));
  if (!depfile.empty()) {
    if (parser->getSourcePathList().size() != 1) {
      llvm::errs() << "lockgraph-instrument: error: --depfile takes exactly one source file\n";
      return 2;
    }
    options.depfile = absolute(depfile);
  }
  if (!output_dir.empty()) options.output_dir = absolute(output_dir);

  clang::tooling::ClangTool tool(parser->getCompilations(), parser->getSourcePathList());
  // The tool is not installed beside clang: point it at clang's built-in headers.
  tool.appendArgumentsAdjuster(clang::tooling::getInsertArgumentAdjuster(
      "-resource-dir=" LOCKGRAPH_CLANG_RESOURCE_DIR, clang::tooling::ArgumentInsertPosition::BEGIN));
  // GCC-only warning flags in a compile database must not stop the parse.
  tool.appendArgumentsAdjuster(clang::tooling::getInsertArgumentAdjuster(
      "-Wno-unknown-warning-option", clang::tooling::ArgumentInsertPosition::END));

  lockgraph::instrument::Results results;
  auto factory = lockgraph::instrument::MakeInstrumentActionFactory(config, options, results);
  int status = tool.run(factory.get());

  for (const std::string& failed : results.failed) {
    llvm::errs() << "lockgraph-instrument: error: '" << failed
                 << "' was not instrumented (see the diagnostics above); nothing written for it\n";
  }
  if (status != 0 && results.failed.empty()) {
    llvm::errs() << "lockgraph-instrument: error: some inputs could not be processed "
                    "(see the diagnostics above)\n";
  }
  if (status != 0 || !results.failed.empty()) return 1;
  if (dry_run) {
    llvm::outs() << results.points << " instrumentation point" << (results.points == 1 ? "" : "s")
                 << "\n";
  }
  return 0;
}
