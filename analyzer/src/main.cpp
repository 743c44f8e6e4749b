// The `lockgraph` command: analyze, graph, baseline, convert (and run, from run_command.cpp).
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <csignal>
#include <set>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/spdlog.h>

#include "analysis.h"
#include "lockgraph/log_format.h"
#include "output.h"
#include "progress.h"

#ifdef LOCKGRAPH_HAVE_RUN_COMMAND
#include "run_command.h"
#endif

namespace lockgraph::analyzer {
namespace {

constexpr int kExitClean = 0;
constexpr int kExitFindings = 1;
constexpr int kExitUsage = 2;
constexpr const char* kVersion = "0.1.0";

// "error: " and "warning: " before a message; nothing before plain information.
class LevelPrefix : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string_view p = msg.level >= spdlog::level::err    ? "error: "
                         : msg.level == spdlog::level::warn ? "warning: "
                                                            : "";
    dest.append(p.data(), p.data() + p.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<LevelPrefix>();
  }
};

void SetUpLogging(bool quiet) {
  auto logger = spdlog::stderr_color_st("lockgraph");
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<LevelPrefix>('*').set_pattern("lockgraph: %^%*%$%v");
  logger->set_formatter(std::move(formatter));
  logger->set_level(quiet ? spdlog::level::err : spdlog::level::info);
  spdlog::set_default_logger(logger);
}

// Writes `data` to `path` ("-" or empty: stdout). False with an error logged on failure.
bool WriteOutput(const std::string& path, const std::string& data) {
  if (path.empty() || path == "-") {
    std::fwrite(data.data(), 1, data.size(), stdout);
    std::fflush(stdout);
    return !std::ferror(stdout);
  }
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) {
    spdlog::error("{}: cannot write: {}", path, std::strerror(errno));
    return false;
  }
  out.write(data.data(), static_cast<std::streamsize>(data.size()));
  out.close();
  if (!out) {
    spdlog::error("{}: write failed: {}", path, std::strerror(errno));
    return false;
  }
  return true;
}

void ReportInputProblems(const Analysis& a, bool verbose) {
  for (const auto& e : a.errors) spdlog::error("{}", FormatInputError(e));
  for (const auto& log : a.logs) {
    if (log->fatal) continue;
    if (log->damaged_blocks)
      spdlog::warn("{}: analyzed the {} valid block(s) around {} damaged region(s) ({} bytes "
                   "skipped); findings may be incomplete",
                   log->path, log->blocks.size(), log->damaged_blocks, log->skipped_bytes);
    if (log->bad_lines)
      spdlog::warn("{}: analyzed the valid lines; {} bad line(s) skipped", log->path,
                   log->bad_lines);
    if (verbose && !log->complete)
      spdlog::info("{}: no end-of-run record (the process may have been cut short)", log->path);
  }
  if (!a.turned_off.empty()) spdlog::error("the engine turned itself off: {}", a.turned_off);
}

void PrintStats(const Analysis& a) {
  EngineStats st = a.engine ? a.engine->stats() : EngineStats{};
  double total = a.load_seconds + a.replay_seconds;
  std::string timing =
      a.pipelined ? fmt::format("{:.3f}s (CPU: replay {:.3f}s, decoding {:.3f}s in parallel with it)",
                                total, a.replay_cpu_seconds, a.decode_seconds)
                  : fmt::format("read {:.3f}s, replay {:.3f}s (two passes: {})", a.load_seconds,
                                a.replay_seconds, a.two_pass_reason);
  spdlog::info(
      "{} events, {} logs, {:.1f} MiB ({:.2f} bytes/event); {} ({:.2f}M events/s overall); "
      "{} classes, {} dependencies, {} chains, {} chain-cache hits; engine memory ~{:.1f} MiB",
      a.events, a.logs.size(), a.bytes / 1048576.0,
      a.events ? static_cast<double>(a.bytes) / a.events : 0.0, timing,
      total > 0 ? a.events / total / 1e6 : 0.0, st.classes, st.dependencies, st.chains,
      st.chain_cache_hits, st.bytes / 1048576.0);
}

struct CommonOptions {
  std::vector<std::string> inputs;
  std::string output;
  bool strict = false;
  unsigned jobs = 0;
  bool progress = true;
  bool quiet = false;
  bool verbose = false;
  bool stats = false;
};

void AddCommon(CLI::App* cmd, CommonOptions* c) {
  cmd->add_option("logs", c->inputs, "Lock logs: files, directories (searched recursively), globs")
      ->required();
  cmd->add_option("-o,--output", c->output, "Write the result to FILE (default: stdout)");
  cmd->add_flag("--strict", c->strict,
                "Report any unannotated same-class nesting, as lockdep does");
  cmd->add_option("-j,--jobs", c->jobs, "Logs decoded in parallel (default: one per core)");
  cmd->add_flag("!--no-progress", c->progress, "No progress bar (it is shown only on a terminal)");
  cmd->add_flag("-q,--quiet", c->quiet, "Only errors on stderr");
  cmd->add_flag("-v,--verbose", c->verbose, "More detail on stderr");
  cmd->add_flag("--stats", c->stats, "Print events/s, bytes/event and engine statistics");
}

AnalyzeOptions MakeAnalyzeOptions(const CommonOptions& c) {
  AnalyzeOptions o;
  o.inputs = c.inputs;
  o.strict = c.strict;
  o.jobs = c.jobs;
  o.progress = c.progress && !c.quiet && Progress::StderrIsTerminal();
  return o;
}

std::string Plural(std::size_t n, const char* word) {
  return std::to_string(n) + " " + word + (n == 1 ? "" : "s");
}

void Summary(const Analysis& a) {
  std::size_t nw = 0, base = 0, supp = 0;
  for (const auto& f : a.findings) {
    if (f.status == FindingStatus::kNew) ++nw;
    if (f.status == FindingStatus::kBaselined) ++base;
    if (f.status == FindingStatus::kSuppressed) ++supp;
  }
  std::size_t runs = 0;
  for (auto r : a.runs) runs += r != static_cast<RunId>(-1);
  std::string s = Plural(nw, "new finding");
  if (base) s += ", " + std::to_string(base) + " in baseline";
  if (supp) s += ", " + std::to_string(supp) + " suppressed";
  spdlog::info("{} ({} analyzed, {} events)", s, Plural(runs, "run"), a.events);
}

int Analyze(const CommonOptions& c, const std::string& format,
            const std::vector<std::string>& suppression_files, const std::string& baseline_file,
            const std::string& source_root, bool show_all) {
  std::vector<InputError> errors;
  std::vector<Suppression> suppressions;
  bool ok = true;
  for (const auto& f : suppression_files) ok = ReadSuppressions(f, &suppressions, &errors) && ok;
  std::set<std::string> baseline;
  if (!baseline_file.empty()) ok = ReadBaseline(baseline_file, &baseline, &errors) && ok;
  if (!ok) {
    for (const auto& e : errors) spdlog::error("{}", FormatInputError(e));
    return kExitUsage;
  }
  AnalyzeOptions o = MakeAnalyzeOptions(c);
  o.suppressions = &suppressions;
  o.baseline = baseline_file.empty() ? nullptr : &baseline;
  Analysis a;
  bool any = lockgraph::analyzer::Analyze(o, &a);
  ReportInputProblems(a, c.verbose);
  if (!any) {
    spdlog::error("no readable lock log among the inputs");
    return kExitUsage;
  }
  OutputOptions oo;
  oo.show_all = show_all;
  oo.source_root = source_root;
  oo.version = kVersion;
  std::string out;
  if (format == "text") out = RenderText(a, oo);
  else if (format == "json") out = RenderJson(a, oo, suppressions);
  else if (format == "sarif") out = RenderSarif(a, oo);
  else out = RenderJunit(a, oo);
  if (!WriteOutput(c.output, out)) return kExitUsage;
  for (const auto& s : suppressions)
    if (s.uses == 0) spdlog::warn("{}:{}: unused suppression ({})", s.file, s.line, s.reason);
  if (c.stats) PrintStats(a);
  Summary(a);
  return a.ExitCode();
}

// Pipes DOT text through Graphviz's `dot -Tsvg` into `path` (or stdout).
bool RenderSvg(const std::string& dot, const std::string& path) {
  int fds[2];
  if (pipe(fds) != 0) {
    spdlog::error("cannot run dot: {}", std::strerror(errno));
    return false;
  }
  int out_fd = -1;
  if (!path.empty() && path != "-") {
    out_fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (out_fd < 0) {
      spdlog::error("{}: cannot write: {}", path, std::strerror(errno));
      ::close(fds[0]);
      ::close(fds[1]);
      return false;
    }
  }
  std::fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[0], STDIN_FILENO);
    if (out_fd >= 0) dup2(out_fd, STDOUT_FILENO);
    ::close(fds[0]);
    ::close(fds[1]);
    execlp("dot", "dot", "-Tsvg", static_cast<char*>(nullptr));
    _exit(127);
  }
  ::close(fds[0]);
  if (out_fd >= 0) ::close(out_fd);
  if (pid < 0) {
    ::close(fds[1]);
    spdlog::error("cannot run dot: {}", std::strerror(errno));
    return false;
  }
  std::size_t off = 0;
  signal(SIGPIPE, SIG_IGN);
  while (off < dot.size()) {
    ssize_t n = ::write(fds[1], dot.data() + off, dot.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    off += static_cast<std::size_t>(n);
  }
  ::close(fds[1]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
    spdlog::error("Graphviz 'dot' was not found; install graphviz or use --format dot");
    return false;
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    spdlog::error("dot -Tsvg failed (status {})", status);
    return false;
  }
  return true;
}

int Graph(const CommonOptions& c, const std::string& format, bool only_findings) {
  Analysis a;
  bool any = lockgraph::analyzer::Analyze(MakeAnalyzeOptions(c), &a);
  ReportInputProblems(a, c.verbose);
  if (!any) {
    spdlog::error("no readable lock log among the inputs");
    return kExitUsage;
  }
  std::string dot = RenderDot(a, only_findings);
  bool ok = format == "svg" ? RenderSvg(dot, c.output) : WriteOutput(c.output, dot);
  if (!ok) return kExitUsage;
  if (c.stats) PrintStats(a);
  return a.ExitCode();
}

int Baseline(const CommonOptions& c) {
  Analysis a;
  bool any = lockgraph::analyzer::Analyze(MakeAnalyzeOptions(c), &a);
  ReportInputProblems(a, c.verbose);
  if (!any) {
    spdlog::error("no readable lock log among the inputs");
    return kExitUsage;
  }
  if (!WriteOutput(c.output, RenderBaseline(a))) return kExitUsage;
  spdlog::info("baseline of {} written to {}", Plural(a.findings.size(), "finding"),
               c.output.empty() || c.output == "-" ? "stdout" : c.output);
  // Damaged input makes an incomplete baseline: say so through the exit code.
  return a.input_error || !a.turned_off.empty() ? kExitUsage : kExitClean;
}

// Definitions of a loaded log as events, in a fixed order (classes, contexts, sites, stacks).
template <typename Fn>
void ForEachDefinition(const LoadedLog& log, Fn fn) {
  std::map<logfmt::LogClassId, const ClassDefinition*> classes;
  for (const auto& [id, d] : log.classes) classes.emplace(id, &d);
  for (const auto& [id, d] : classes) {
    logfmt::Event e;
    e.type = logfmt::RecordType::kClassDef;
    e.class_id = id;
    e.subclass = d->subclass;
    e.text = d->identity;
    e.text2 = d->name;
    fn(e);
  }
  for (const auto& [ctx, name] : log.context_names) {
    logfmt::Event e;
    e.type = logfmt::RecordType::kContextName;
    e.context = ctx;
    e.text = name;
    fn(e);
  }
  std::map<std::uint64_t, const std::string*> sites;
  for (const auto& [ip, t] : log.sites) sites.emplace(ip, &t);
  for (const auto& [ip, t] : sites) {
    logfmt::Event e;
    e.type = logfmt::RecordType::kCallSiteDef;
    e.ip = ip;
    e.text = *t;
    fn(e);
  }
  std::map<LockId, const std::string*> names;
  for (const auto& [lock, n] : log.lock_names) names.emplace(lock, &n);
  for (const auto& [lock, n] : names) {
    logfmt::Event e;
    e.type = logfmt::RecordType::kLockName;
    e.lock = lock;
    e.text = *n;
    fn(e);
  }
  std::map<StackId, const std::vector<std::string>*> stacks;
  for (const auto& [id, f] : log.stacks) stacks.emplace(id, &f);
  for (const auto& [id, f] : stacks) {
    logfmt::Event e;
    e.type = logfmt::RecordType::kStackDef;
    e.stack = id;
    for (const auto& s : *f) e.frames.push_back(s);
    fn(e);
  }
}

int Convert(const std::string& input, const std::string& output, std::string to, bool quiet) {
  LoadedLog log;
  log.path = input;
  LoadLog(&log, nullptr);
  for (const auto& e : log.errors) spdlog::error("{}", FormatInputError(e));
  if (log.fatal || !log.usable) return kExitUsage;
  if (to.empty()) {
    bool text_ext = output.ends_with(".txt") || output.ends_with(".lgtxt") || output.ends_with(".lgt");
    if (output.empty() || output == "-" || text_ext) to = "text";
    else if (output.ends_with(".lglog") || output.ends_with(".lgbin")) to = "binary";
    else to = log.format == logfmt::Format::kText ? "binary" : "text";
  }
  if (to == "binary" && (output.empty() || output == "-") && isatty(STDOUT_FILENO)) {
    spdlog::error("refusing to write a binary log to a terminal; give -o FILE");
    return kExitUsage;
  }
  std::string out;
  std::uint64_t n = 0;
  EventStream stream(log);
  logfmt::Event ev;
  if (to == "text") {
    logfmt::EncodeTextHeader(log.header, &out);
    ForEachDefinition(log, [&](const logfmt::Event& e) { logfmt::EncodeTextLine(e, &out); });
    while (stream.Next(&ev)) {
      logfmt::EncodeTextLine(ev, &out);
      ++n;
    }
  } else {
    logfmt::FileHeader h = log.header;
    if (h.program.empty()) h.program = input;
    logfmt::EncodeFileHeader(h, &out);
    std::vector<std::uint8_t> buf(64 * 1024);
    logfmt::BlockEncoder enc(buf.data(), buf.size(), /*with_seq=*/false);
    std::uint32_t block = 0;
    bool too_big = false;
    auto put = [&](const logfmt::Event& e) {
      if (enc.Put(e)) return;
      if (!enc.empty()) {
        auto b = enc.Finish(block++);
        out.append(reinterpret_cast<const char*>(b.data()), b.size());
        enc.Reset();
      }
      if (!enc.Put(e)) too_big = true;  // a record larger than a block: dropped, reported
    };
    ForEachDefinition(log, put);
    while (stream.Next(&ev)) {
      put(ev);
      ++n;
    }
    if (!enc.empty()) {
      auto b = enc.Finish(block++);
      out.append(reinterpret_cast<const char*>(b.data()), b.size());
    }
    if (too_big) spdlog::warn("{}: a record larger than 64 KiB was dropped", input);
  }
  if (!WriteOutput(output, out)) return kExitUsage;
  if (!quiet)
    spdlog::info("converted {} events ({} format) from {}", n, to, input);
  return log.errors.empty() ? kExitClean : kExitUsage;
}

int Main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "run") == 0) {
#ifdef LOCKGRAPH_HAVE_RUN_COMMAND
    return lockgraph::cli::RunCommand(argc - 1, argv + 1);
#else
    std::fprintf(stderr, "lockgraph: error: `run` is not built into this lockgraph\n");
    return kExitUsage;
#endif
  }

  CLI::App app{"lockgraph: a lock-order and IRQ-context validator (lockdep) for userspace"};
  app.set_version_flag("--version", std::string("lockgraph ") + kVersion);
  app.require_subcommand(1);
  app.footer(
      "Exit codes: 0 no (new) findings, 1 findings, 2 usage or input error.\n"
      "Examples:\n"
      "  lockgraph run --record logs/unit.lglog -- ./unit_tests\n"
      "  lockgraph analyze logs/\n"
      "  lockgraph analyze --format sarif -o lockgraph.sarif --baseline .lockgraph-baseline logs/\n"
      "  lockgraph graph --format svg -o locks.svg logs/\n"
      "See docs/analyzer.md.");

  CommonOptions common;
  std::string format = "text";
  std::vector<std::string> suppressions;
  std::string baseline;
  std::string source_root;
  bool show_all = false;
  auto* analyze = app.add_subcommand("analyze", "Replay lock logs into one engine and report");
  AddCommon(analyze, &common);
  analyze->add_option("-f,--format", format, "text (lockdep reports), json, sarif or junit")
      ->check(CLI::IsMember({"text", "json", "sarif", "junit"}));
  analyze->add_option("--suppressions", suppressions, "Suppressions file (repeatable)")
      ->allow_extra_args(false);
  analyze->add_option("--baseline", baseline, "Only findings not in this baseline fail");
  analyze->add_option("--source-root", source_root,
                      "SARIF: make source paths relative to DIR (default: current directory)");
  analyze->add_flag("--show-all", show_all, "text: also print baselined and suppressed findings");

  CommonOptions gcommon;
  std::string gformat = "dot";
  bool only_findings = false;
  auto* graph = app.add_subcommand("graph", "Draw the lock class graph with findings highlighted");
  AddCommon(graph, &gcommon);
  graph->add_option("-f,--format", gformat, "dot or svg (svg needs Graphviz)")
      ->check(CLI::IsMember({"dot", "svg"}));
  graph->add_flag("--only-findings", only_findings, "Only the classes that take part in findings");

  CommonOptions bcommon;
  auto* base = app.add_subcommand("baseline", "Write the fingerprints of all findings to a file");
  AddCommon(base, &bcommon);

  std::string cin_path, cout_path, cto;
  bool cquiet = false;
  auto* conv = app.add_subcommand("convert", "Convert a lock log between binary and text");
  conv->add_option("input", cin_path, "Input log (binary or text)")->required();
  conv->add_option("-o,--output", cout_path,
                   "Output file (default: stdout); .txt means text, .lglog binary");
  conv->add_option("--to", cto, "Output format: text or binary")
      ->check(CLI::IsMember({"text", "binary"}));
  conv->add_flag("-q,--quiet", cquiet, "Only errors on stderr");

  app.add_subcommand("run", "Run a program under the validator (see `lockgraph run --help`)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "lockgraph: error: %s\n", e.what());
    std::fprintf(stderr, "Run `lockgraph --help` for usage.\n");
    return kExitUsage;
  }

  if (*analyze) {
    SetUpLogging(common.quiet);
    return Analyze(common, format, suppressions, baseline, source_root, show_all);
  }
  if (*graph) {
    SetUpLogging(gcommon.quiet);
    return Graph(gcommon, gformat, only_findings);
  }
  if (*base) {
    SetUpLogging(bcommon.quiet);
    if (bcommon.output.empty()) {
      spdlog::error("baseline needs -o FILE");
      return kExitUsage;
    }
    return Baseline(bcommon);
  }
  if (*conv) {
    SetUpLogging(cquiet);
    return Convert(cin_path, cout_path, cto, cquiet);
  }
  return kExitUsage;
}

}  // namespace
}  // namespace lockgraph::analyzer

int main(int argc, char** argv) {
  try {
    return lockgraph::analyzer::Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "lockgraph: error: %s\n", e.what());
    return 2;
  }
}
