// The analysis driver: load in parallel, replay in input order, classify findings.
#include "analysis.h"

#include <fnmatch.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "progress.h"

namespace lockgraph::analyzer {

namespace {

class CollectingSink : public FindingSink {
 public:
  void OnFinding(const Finding& finding) override { findings.push_back(finding); }
  void OnTurnedOff(std::string_view why) override { turned_off = std::string(why); }
  std::vector<Finding> findings;
  std::string turned_off;
};

bool Glob(const std::string& pattern, const std::string& s) {
  return fnmatch(pattern.c_str(), s.c_str(), 0) == 0;
}

bool Matches(const Suppression& s, const Finding& f) {
  if (!Glob(s.kind, std::string(FindingKindId(f.kind)))) return false;
  if (!s.fingerprint.empty() && s.fingerprint != f.fingerprint) return false;
  for (const auto& pattern : s.classes) {
    bool any = false;
    for (const auto& c : f.classes) any = any || Glob(pattern, c);
    if (!any) return false;
  }
  return true;
}

// Splits a line into key=value words (values may be double-quoted); '#' starts a comment.
bool SplitKeyValues(const std::string& line, std::vector<std::pair<std::string, std::string>>* out,
                    std::string* error) {
  std::size_t i = 0;
  while (i < line.size()) {
    if (line[i] == ' ' || line[i] == '\t' || line[i] == '\r') {
      ++i;
      continue;
    }
    if (line[i] == '#') break;
    std::size_t eq = line.find('=', i);
    std::size_t blank = line.find_first_of(" \t", i);
    if (eq == std::string::npos || (blank != std::string::npos && blank < eq)) {
      *error = "expected key=value at column " + std::to_string(i + 1);
      return false;
    }
    std::string key = line.substr(i, eq - i);
    i = eq + 1;
    std::string value;
    if (i < line.size() && line[i] == '"') {
      ++i;
      bool closed = false;
      while (i < line.size()) {
        char c = line[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\' && i < line.size()) c = line[i++];
        value.push_back(c);
      }
      if (!closed) {
        *error = "unterminated quoted value for '" + key + "'";
        return false;
      }
    } else {
      while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') value.push_back(line[i++]);
    }
    out->emplace_back(std::move(key), std::move(value));
  }
  return true;
}

}  // namespace

bool ReadSuppressions(const std::string& path, std::vector<Suppression>* out,
                      std::vector<InputError>* errors) {
  std::ifstream in(path);
  if (!in) {
    errors->push_back({path, 0, 0, false, "cannot open suppressions file"});
    return false;
  }
  bool ok = true;
  std::string line;
  std::uint64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    std::vector<std::pair<std::string, std::string>> kv;
    std::string error;
    if (!SplitKeyValues(line, &kv, &error)) {
      errors->push_back({path, 0, n, false, error});
      ok = false;
      continue;
    }
    if (kv.empty()) continue;
    Suppression s;
    s.file = path;
    s.line = n;
    bool selective = false;
    for (auto& [key, value] : kv) {
      if (key == "kind") {
        FindingKind k;
        bool glob = value.find_first_of("*?[") != std::string::npos;
        if (!glob && !ParseFindingKindId(value, &k)) {
          error = "unknown finding kind '" + value + "'";
          break;
        }
        s.kind = value;
        selective = true;
      } else if (key == "class") {
        s.classes.push_back(value);
        selective = true;
      } else if (key == "fingerprint") {
        s.fingerprint = value;
        selective = true;
      } else if (key == "reason") {
        s.reason = value;
      } else {
        error = "unknown suppression key '" + key + "' (kind, class, fingerprint, reason)";
        break;
      }
    }
    if (error.empty() && s.reason.empty()) error = "suppression without reason=\"...\"";
    if (error.empty() && !selective)
      error = "suppression matches every finding; give kind=, class= or fingerprint=";
    if (!error.empty()) {
      errors->push_back({path, 0, n, false, error});
      ok = false;
      continue;
    }
    out->push_back(std::move(s));
  }
  return ok;
}

bool ReadBaseline(const std::string& path, std::set<std::string>* fingerprints,
                  std::vector<InputError>* errors) {
  std::ifstream in(path);
  if (!in) {
    errors->push_back({path, 0, 0, false, "cannot open baseline file"});
    return false;
  }
  std::string line;
  std::uint64_t n = 0;
  bool ok = true;
  while (std::getline(in, line)) {
    ++n;
    std::size_t start = line.find_first_not_of(" \t\r");
    if (start == std::string::npos || line[start] == '#') continue;
    std::size_t end = line.find_first_of(" \t\r", start);
    std::string fp = line.substr(start, end == std::string::npos ? std::string::npos : end - start);
    bool hex = fp.size() == 16 && fp.find_first_not_of("0123456789abcdef") == std::string::npos;
    if (!hex) {
      errors->push_back({path, 0, n, false, "expected a 16-digit fingerprint, got '" + fp + "'"});
      ok = false;
      continue;
    }
    fingerprints->insert(fp);
  }
  return ok;
}

std::size_t Analysis::CountNew() const {
  std::size_t n = 0;
  for (const auto& f : findings) n += f.status == FindingStatus::kNew;
  return n;
}

int Analysis::ExitCode() const {
  if (CountNew() > 0) return 1;
  if (input_error || !turned_off.empty()) return 2;
  return 0;
}

bool Analyze(const AnalyzeOptions& options, Analysis* a) {
  using Clock = std::chrono::steady_clock;
  auto paths = ExpandInputs(options.inputs, &a->errors);
  if (!a->errors.empty()) a->input_error = true;
  for (auto& p : paths) {
    a->logs.push_back(std::make_unique<LoadedLog>());
    a->logs.back()->path = p;
  }
  std::uint64_t total = 0;
  for (auto& p : paths) {
    std::error_code ec;
    auto size = std::filesystem::file_size(p, ec);
    if (!ec) total += size;
  }
  a->bytes = total;
  Progress progress(options.progress);
  unsigned jobs = options.jobs ? options.jobs : std::max(1u, std::thread::hardware_concurrency());

  auto t0 = Clock::now();
  progress.Begin("reading", total);
  LoadLogs(a->logs, jobs, &progress);
  auto t1 = Clock::now();
  a->load_seconds = std::chrono::duration<double>(t1 - t0).count();

  EngineOptions eo;
  eo.strict_same_class = options.strict;
  CollectingSink sink;
  a->engine = std::make_unique<Engine>(eo, &sink);
  Replayer replayer(a->engine.get(), &a->symbolizer);

  std::size_t usable = 0;
  for (auto& log : a->logs) usable += log->usable && !log->fatal;
  a->symbolizer.name_runs = usable > 1;
  progress.Begin("replaying", total);
  RunId next_run = 0;
  bool any = false;
  for (auto& log : a->logs) {
    for (auto& e : log->errors) a->errors.push_back(e);
    if (!log->errors.empty()) a->input_error = true;
    if (log->fatal || !log->usable || next_run > kMaxRuns) {
      if (!log->fatal && next_run > kMaxRuns)
        a->errors.push_back({log->path, 0, 0, false, "more than 65535 runs in one analysis; skipped"});
      a->runs.push_back(static_cast<RunId>(-1));
      continue;
    }
    any = true;
    a->runs.push_back(next_run);
    a->events += replayer.Replay(*log, next_run, &progress);
    ++next_run;
  }
  progress.Clear();
  a->replay_seconds = std::chrono::duration<double>(Clock::now() - t1).count();
  a->turned_off = sink.turned_off;

  for (auto& f : sink.findings) {
    AnalyzedFinding af;
    af.finding = std::move(f);
    // Instances print as the run's own addresses (the engine saw them shifted into one space).
    RunId run = af.finding.run;
    auto unmap = [run](LockId& l) { l = MapRunValue(run, l); };
    unmap(af.finding.target.instance);
    for (auto& h : af.finding.held) unmap(h.instance);
    for (auto& i : af.finding.instances) unmap(i);
    a->symbolizer.current_run = run;
    af.report = FormatReport(af.finding, a->symbolizer);
    if (options.suppressions) {
      for (auto& s : *options.suppressions) {
        if (Matches(s, af.finding)) {
          ++s.uses;
          if (!af.suppression) af.suppression = &s;
        }
      }
    }
    if (af.suppression) af.status = FindingStatus::kSuppressed;
    else if (options.baseline && options.baseline->count(af.finding.fingerprint))
      af.status = FindingStatus::kBaselined;
    a->findings.push_back(std::move(af));
  }
  return any;
}

}  // namespace lockgraph::analyzer
