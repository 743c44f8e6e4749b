// Output formats: the same findings as lockdep text, JSON, SARIF, JUnit, baseline and DOT.
#include "output.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

namespace lockgraph::analyzer {

using nlohmann::ordered_json;

namespace {

constexpr int kFindingKinds = 12;

std::string Hex(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

const char* StatusName(FindingStatus s) {
  switch (s) {
    case FindingStatus::kNew: return "new";
    case FindingStatus::kBaselined: return "baselined";
    case FindingStatus::kSuppressed: return "suppressed";
  }
  return "new";
}

// JSON must be valid UTF-8; names from a damaged or foreign log might not be.
std::string Utf8(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    unsigned char c = s[i];
    int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = len > 0 && i + len <= s.size();
    for (int k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(s[i + k]) >> 6) == 2;
    if (ok) {
      out.append(s, i, len);
      i += len;
    } else {
      out.append("\xEF\xBF\xBD");  // U+FFFD
      ++i;
    }
  }
  return out;
}

class JsonBuilder {
 public:
  explicit JsonBuilder(const Analysis& a) : a_(a), sym_(a.symbolizer) {}

  ordered_json Site(std::uint64_t ip) const {
    if (!ip) return nullptr;
    ordered_json j;
    j["ip"] = Hex(ip);
    if (const auto* text = sym_.CallSite(ip)) {
      j["text"] = Utf8(*text);
      SourceLocation loc;
      if (ParseLocation(*text, &loc)) {
        j["function"] = Utf8(loc.function);
        j["file"] = Utf8(loc.file);
        j["line"] = loc.line;
      }
    }
    return j;
  }
  ordered_json Stack(StackId id) const {
    if (id == kNoStack) return nullptr;
    ordered_json frames = ordered_json::array();
    if (const auto* f = sym_.Stack(id)) {
      for (const auto& s : *f) frames.push_back(Utf8(s));
    } else {
      std::string text;
      sym_.AppendStack(id, 0, &text);
      frames.push_back(Utf8(text));
    }
    return frames;
  }
  ordered_json Lock(const ReportedLock& l) const {
    ordered_json j;
    j["name"] = Utf8(l.name);
    j["instance"] = Hex(l.instance);
    j["mode"] = std::string(AcquireModeName(l.mode));
    j["trylock"] = l.trylock;
    j["usage"] = l.usage;
    j["site"] = Site(l.ip);
    return j;
  }
  ordered_json Run(RunId run) const {
    ordered_json j;
    j["id"] = run;
    j["name"] = Utf8(sym_.RunLabel(run));
    return j;
  }
  ordered_json Dep(const ReportedDependency& d) const {
    ordered_json j;
    j["from"] = Utf8(d.from);
    j["to"] = Utf8(d.to);
    j["type"] = d.type;
    j["run"] = Run(d.run);
    j["thread"] = d.thread;
    j["site"] = Site(d.ip);
    j["stack"] = Stack(d.stack);
    return j;
  }
  ordered_json Deps(const std::vector<ReportedDependency>& v) const {
    ordered_json arr = ordered_json::array();
    for (const auto& d : v) arr.push_back(Dep(d));
    return arr;
  }
  ordered_json Usage(const ReportedUsage& u) const {
    ordered_json j;
    j["lock"] = Utf8(u.lock);
    j["bit"] = u.bit;
    j["run"] = Run(u.run);
    j["site"] = Site(u.ip);
    j["stack"] = Stack(u.stack);
    return j;
  }
  ordered_json Finding(const AnalyzedFinding& af) const {
    const lockgraph::Finding& f = af.finding;
    ordered_json j;
    j["kind"] = std::string(FindingKindId(f.kind));
    j["headline"] = f.headline;
    j["fingerprint"] = f.fingerprint;
    j["status"] = StatusName(af.status);
    if (af.suppression) {
      j["suppression"] = {{"file", af.suppression->file},
                          {"line", af.suppression->line},
                          {"reason", Utf8(af.suppression->reason)}};
    }
    ordered_json classes = ordered_json::array();
    for (const auto& c : f.classes) classes.push_back(Utf8(c));
    j["classes"] = classes;
    j["thread"] = {{"key", f.thread}, {"name", Utf8(f.thread_name)}};
    j["run"] = Run(f.run);
    if (!f.context.empty()) j["context"] = f.context;
    if (f.has_target) {
      j["target"] = Lock(f.target);
      j["target_stack"] = Stack(f.target_stack);
    }
    ordered_json held = ordered_json::array();
    for (const auto& l : f.held) held.push_back(Lock(l));
    j["held"] = held;
    if (!f.chain.empty()) j["chain"] = Deps(f.chain);
    if (!f.safe_lock.empty() || !f.unsafe_lock.empty()) {
      j["safe_lock"] = Utf8(f.safe_lock);
      j["unsafe_lock"] = Utf8(f.unsafe_lock);
      j["safe_usage"] = Usage(f.safe_usage);
      j["unsafe_usage"] = Usage(f.unsafe_usage);
      j["backward_path"] = Deps(f.backward_path);
      j["forward_path"] = Deps(f.forward_path);
    }
    if (!f.previous_bit.empty() || !f.new_bit.empty()) {
      j["previous_bit"] = f.previous_bit;
      j["new_bit"] = f.new_bit;
    }
    if (f.destroy_ip || f.destroy_stack) {
      j["destroy_site"] = Site(f.destroy_ip);
      j["destroy_stack"] = Stack(f.destroy_stack);
    }
    if (!f.instances.empty()) {
      ordered_json inst = ordered_json::array();
      for (auto i : f.instances) inst.push_back(Hex(i));
      j["instances"] = inst;
    }
    j["report"] = Utf8(af.report);
    return j;
  }

 private:
  const Analysis& a_;
  const LogSymbolizer& sym_;
};

// A path as a URI reference: bytes other than RFC 3986's unreserved and path characters (spaces,
// '#', '?', '%', '[', non-ASCII ...) are %-encoded; the "file://" prefix of an absolute path stays.
std::string UriEscape(const std::string& path) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  std::size_t start = 0;
  if (path.rfind("file://", 0) == 0) {
    out = "file://";
    start = 7;
  }
  // In a relative reference a ':' before the first '/' would read as a scheme: encode it there.
  bool first_segment = start == 0;
  for (std::size_t i = start; i < path.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(path[i]);
    if (c == '/') first_segment = false;
    const bool plain = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                       (c == ':' && !first_segment) ||
                       std::strchr("-._~!$&'()*+,;=@/", c) != nullptr;
    if (plain && c != 0) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string XmlEscape(const std::string& s) {
  std::string out;
  for (unsigned char c : Utf8(s)) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        if (c < 0x20 && c != '\n' && c != '\t' && c != '\r') out += "?";  // not allowed in XML 1.0
        else out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

std::string ClassSummary(const Finding& f) {
  std::string s;
  for (std::size_t i = 0; i < f.classes.size(); ++i) {
    if (i) s += f.kind == FindingKind::kCircularDependency ? " -> " : ", ";
    s += f.classes[i];
  }
  if (f.kind == FindingKind::kCircularDependency && !f.classes.empty()) s += " -> " + f.classes[0];
  return s;
}

std::string RuleDescription(FindingKind k) {
  switch (k) {
    case FindingKind::kCircularDependency:
      return "Two or more lock classes are taken in orders that form a cycle; threads taking "
             "them concurrently can deadlock.";
    case FindingKind::kRecursiveLocking:
      return "A thread acquires a lock of a class it already holds without a nesting annotation.";
    case FindingKind::kInconsistentLockState:
      return "A lock class is used both in an interrupt (signal) context and with that "
             "interrupt enabled; the interrupt can arrive while the lock is held.";
    case FindingKind::kIrqSafeToUnsafe:
      return "An interrupt-safe lock is held while taking an interrupt-unsafe lock.";
    case FindingKind::kIrqInversion:
      return "A lock order inverts between interrupt-safe and interrupt-unsafe locks.";
    case FindingKind::kBadUnlockBalance:
      return "A lock is released that the thread does not hold.";
    case FindingKind::kHeldLockFreed:
      return "A lock is destroyed while it is held.";
    case FindingKind::kHeldLockReinit:
      return "A held lock is initialised again.";
    case FindingKind::kUseOfDestroyedLock:
      return "A lock is used after it was destroyed.";
    case FindingKind::kLocksHeldAtThreadExit:
      return "A thread exits while holding locks.";
    case FindingKind::kLocksHeldAtIrqExit:
      return "An interrupt (signal) handler returns with a lock it took still held.";
    case FindingKind::kSameClassInstanceOrder:
      return "Instances of one lock class are nested in orders that can deadlock.";
  }
  return "";
}

// Where a finding points in source: the acquisition being made, else the newest dependency.
bool PrimaryLocation(const Analysis& a, const Finding& f, SourceLocation* loc) {
  const auto& sym = a.symbolizer;
  auto from_ip = [&](std::uint64_t ip) {
    const auto* t = ip ? sym.CallSite(ip) : nullptr;
    return t && ParseLocation(*t, loc);
  };
  auto from_stack = [&](StackId s) {
    const auto* frames = s ? sym.Stack(s) : nullptr;
    if (!frames) return false;
    for (const auto& fr : *frames)
      if (ParseLocation(fr, loc)) return true;
    return false;
  };
  if (f.has_target && (from_ip(f.target.ip) || from_stack(f.target_stack))) return true;
  if (!f.chain.empty() && (from_ip(f.chain.back().ip) || from_stack(f.chain.back().stack)))
    return true;
  if (from_ip(f.unsafe_usage.ip) || from_stack(f.unsafe_usage.stack)) return true;
  if (from_ip(f.safe_usage.ip) || from_stack(f.safe_usage.stack)) return true;
  if (from_ip(f.destroy_ip) || from_stack(f.destroy_stack)) return true;
  for (const auto& h : f.held)
    if (from_ip(h.ip)) return true;
  return false;
}

// Symbolizers often give a bare file name ("bank.c:40"); code scanning needs the path in the
// repository. A bare name that exists exactly once under the source root is resolved to it.
class SourceIndex {
 public:
  explicit SourceIndex(std::string root) : root_(std::move(root)) {}

  std::string Uri(const std::string& file) {
    if (!root_.empty() && file.size() > root_.size() + 1 &&
        file.compare(0, root_.size(), root_) == 0 && file[root_.size()] == '/')
      return file.substr(root_.size() + 1);
    if (!file.empty() && file[0] == '/') return "file://" + file;
    if (file.find('/') != std::string::npos || root_.empty()) return file;
    std::error_code ec;
    if (std::filesystem::exists(std::filesystem::path(root_) / file, ec)) return file;
    Build();
    auto it = by_name_.find(file);
    if (it != by_name_.end() && it->second.size() == 1) return it->second.front();
    return file;
  }

 private:
  void Build() {
    if (built_) return;
    built_ = true;
    namespace fs = std::filesystem;
    constexpr std::size_t kMaxFiles = 200000;  // named limit: files indexed under the root
    std::error_code ec;
    std::size_t n = 0;
    for (auto it = fs::recursive_directory_iterator(root_, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator() && n < kMaxFiles; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (it->is_directory(ec)) {
        // Build trees and VCS metadata hold copies or nothing of interest.
        if (name.rfind("build", 0) == 0 || (!name.empty() && name[0] == '.')) it.disable_recursion_pending();
        continue;
      }
      ++n;
      by_name_[name].push_back(fs::relative(it->path(), root_, ec).string());
    }
  }
  std::string root_;
  bool built_ = false;
  std::map<std::string, std::vector<std::string>> by_name_;
};

}  // namespace

std::string RenderText(const Analysis& a, const OutputOptions& o) {
  std::string out;
  for (const auto& f : a.findings) {
    if (f.status != FindingStatus::kNew && !o.show_all) continue;
    if (!out.empty()) out += "\n";
    if (f.status == FindingStatus::kSuppressed)
      out += "[suppressed by " + f.suppression->file + ":" + std::to_string(f.suppression->line) +
             ": " + f.suppression->reason + "]\n";
    else if (f.status == FindingStatus::kBaselined)
      out += "[in baseline]\n";
    out += f.report;
    if (!f.report.empty() && f.report.back() != '\n') out += "\n";
  }
  return out;
}

std::string RenderJson(const Analysis& a, const OutputOptions& o,
                       const std::vector<Suppression>& suppressions) {
  JsonBuilder b(a);
  ordered_json root;
  root["tool"] = {{"name", "lockgraph"}, {"version", o.version}};
  root["format_version"] = 1;
  ordered_json runs = ordered_json::array();
  for (std::size_t i = 0; i < a.logs.size(); ++i) {
    const LoadedLog& log = *a.logs[i];
    ordered_json r;
    r["file"] = Utf8(log.path);
    if (a.runs[i] != static_cast<RunId>(-1)) r["id"] = a.runs[i];
    else r["id"] = nullptr;
    r["program"] = Utf8(log.header.program);
    r["pid"] = log.header.pid;
    r["format"] = log.format == logfmt::Format::kBinary ? "binary"
                  : log.format == logfmt::Format::kText ? "text"
                                                        : "unknown";
    r["events"] = log.events;
    r["complete"] = log.complete;
    r["damaged_blocks"] = log.damaged_blocks;
    r["bad_lines"] = log.bad_lines;
    ordered_json errs = ordered_json::array();
    for (const auto& e : log.errors) errs.push_back(Utf8(FormatInputError(e)));
    r["errors"] = errs;
    runs.push_back(r);
  }
  root["runs"] = runs;
  ordered_json findings = ordered_json::array();
  for (const auto& f : a.findings) findings.push_back(b.Finding(f));
  root["findings"] = findings;
  ordered_json unused = ordered_json::array();
  for (const auto& s : suppressions)
    if (s.uses == 0) unused.push_back({{"file", s.file}, {"line", s.line}, {"reason", Utf8(s.reason)}});
  root["unused_suppressions"] = unused;
  ordered_json errors = ordered_json::array();
  for (const auto& e : a.errors) errors.push_back(Utf8(FormatInputError(e)));
  root["input_errors"] = errors;
  EngineStats st = a.engine ? a.engine->stats() : EngineStats{};
  root["stats"] = {{"events", a.events},
                   {"bytes", a.bytes},
                   {"classes", st.classes},
                   {"dependencies", st.dependencies},
                   {"chains", st.chains},
                   {"chain_cache_hits", st.chain_cache_hits},
                   {"new_findings", a.CountNew()},
                   {"findings", a.findings.size()}};
  if (!a.turned_off.empty()) root["turned_off"] = a.turned_off;
  root["exit_code"] = a.ExitCode();
  return root.dump(2) + "\n";
}

std::string RenderSarif(const Analysis& a, const OutputOptions& o) {
  std::string root_dir = o.source_root;
  if (root_dir.empty()) {
    std::error_code ec;
    root_dir = std::filesystem::current_path(ec).string();
  }
  while (root_dir.size() > 1 && root_dir.back() == '/') root_dir.pop_back();
  SourceIndex sources(root_dir);
  auto SarifUri = [&sources](const std::string& file, const std::string&) {
    return UriEscape(sources.Uri(file));
  };

  ordered_json rules = ordered_json::array();
  for (int k = 0; k < kFindingKinds; ++k) {
    auto kind = static_cast<FindingKind>(k);
    std::string id(FindingKindId(kind));
    ordered_json r;
    r["id"] = id;
    r["name"] = id;
    r["shortDescription"] = {{"text", "lockgraph: " + id}};
    r["fullDescription"] = {{"text", RuleDescription(kind)}};
    r["help"] = {{"text", RuleDescription(kind) + " See docs/design.md, troubleshooting."}};
    r["defaultConfiguration"] = {{"level", "error"}};
    r["properties"] = {{"tags", {"concurrency", "deadlock"}}, {"problem.severity", "error"}};
    rules.push_back(r);
  }
  ordered_json results = ordered_json::array();
  for (const auto& af : a.findings) {
    const Finding& f = af.finding;
    ordered_json r;
    r["ruleId"] = std::string(FindingKindId(f.kind));
    r["ruleIndex"] = static_cast<int>(f.kind);
    r["level"] = "error";
    std::string text = f.headline + ": " + ClassSummary(f);
    if (a.symbolizer.name_runs) text += " (seen in " + a.symbolizer.RunLabel(f.run) + ")";
    r["message"] = {{"text", Utf8(text)}};
    SourceLocation loc;
    ordered_json phys;
    if (PrimaryLocation(a, f, &loc)) {
      phys["artifactLocation"] = {{"uri", Utf8(SarifUri(loc.file, root_dir))}};
      phys["region"] = {{"startLine", std::max<std::uint64_t>(1, loc.line)}};
    } else {
      // No source line known: point at the log the finding came from.
      std::string file = f.run < a.symbolizer.runs.size() ? a.symbolizer.runs[f.run].file : "";
      phys["artifactLocation"] = {{"uri", Utf8(SarifUri(file, root_dir))}};
    }
    r["locations"] = ordered_json::array({{{"physicalLocation", phys}}});
    // Each dependency of a cycle or IRQ path, at the line that established it.
    ordered_json related = ordered_json::array();
    int id = 1;
    auto add = [&](const std::vector<ReportedDependency>& deps) {
      for (const auto& d : deps) {
        SourceLocation dl;
        const auto* t = d.ip ? a.symbolizer.CallSite(d.ip) : nullptr;
        bool ok = t && ParseLocation(*t, &dl);
        if (!ok && d.stack) {
          if (const auto* frames = a.symbolizer.Stack(d.stack))
            for (const auto& fr : *frames)
              if ((ok = ParseLocation(fr, &dl))) break;
        }
        if (!ok) continue;
        std::string msg = d.from + " -> " + d.to;
        if (a.symbolizer.name_runs) msg += " in " + a.symbolizer.RunLabel(d.run);
        related.push_back(
            {{"id", id++},
             {"physicalLocation",
              {{"artifactLocation", {{"uri", Utf8(SarifUri(dl.file, root_dir))}}},
               {"region", {{"startLine", std::max<std::uint64_t>(1, dl.line)}}}}},
             {"message", {{"text", Utf8(msg)}}}});
      }
    };
    add(f.chain);
    add(f.backward_path);
    add(f.forward_path);
    if (!related.empty()) r["relatedLocations"] = related;
    r["partialFingerprints"] = {{"lockgraphFingerprint/v1", f.fingerprint}};
    if (af.status == FindingStatus::kSuppressed) {
      r["suppressions"] = ordered_json::array(
          {{{"kind", "external"}, {"justification", Utf8(af.suppression->reason)}}});
    } else if (af.status == FindingStatus::kBaselined) {
      r["baselineState"] = "unchanged";
    } else {
      r["baselineState"] = "new";
    }
    results.push_back(r);
  }
  ordered_json driver;
  driver["name"] = "lockgraph";
  driver["version"] = o.version;
  driver["semanticVersion"] = o.version;
  driver["rules"] = rules;
  ordered_json run;
  run["tool"] = {{"driver", driver}};
  run["results"] = results;
  run["columnKind"] = "utf16CodeUnits";
  ordered_json root;
  root["$schema"] = "https://json.schemastore.org/sarif-2.1.0.json";
  root["version"] = "2.1.0";
  root["runs"] = ordered_json::array({run});
  return root.dump(2) + "\n";
}

std::string RenderJunit(const Analysis& a, const OutputOptions&) {
  std::size_t failures = 0, skipped = 0, errors = a.errors.size();
  for (const auto& f : a.findings) {
    if (f.status == FindingStatus::kNew) ++failures;
    else ++skipped;
  }
  std::size_t tests = a.findings.size() + errors + (a.findings.empty() && !errors ? 1 : 0);
  std::string out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  auto counts = "tests=\"" + std::to_string(tests) + "\" failures=\"" + std::to_string(failures) +
                "\" errors=\"" + std::to_string(errors) + "\" skipped=\"" +
                std::to_string(skipped) + "\"";
  out += "<testsuites name=\"lockgraph\" " + counts + ">\n";
  out += "  <testsuite name=\"lockgraph analyze\" " + counts + ">\n";
  for (const auto& af : a.findings) {
    const Finding& f = af.finding;
    std::string kind(FindingKindId(f.kind));
    out += "    <testcase classname=\"lockgraph." + XmlEscape(kind) + "\" name=\"" +
           XmlEscape(ClassSummary(f) + " [" + f.fingerprint + "]") + "\">\n";
    if (af.status == FindingStatus::kNew) {
      out += "      <failure type=\"" + XmlEscape(kind) + "\" message=\"" + XmlEscape(f.headline) +
             "\">" + XmlEscape(af.report) + "</failure>\n";
    } else {
      std::string why = af.status == FindingStatus::kSuppressed
                            ? "suppressed: " + af.suppression->reason
                            : std::string("in baseline");
      out += "      <skipped message=\"" + XmlEscape(why) + "\"/>\n";
    }
    out += "    </testcase>\n";
  }
  for (const auto& e : a.errors) {
    out += "    <testcase classname=\"lockgraph.input\" name=\"" + XmlEscape(e.file) + "\">\n";
    out += "      <error type=\"input\" message=\"" + XmlEscape(FormatInputError(e)) + "\"/>\n";
    out += "    </testcase>\n";
  }
  if (a.findings.empty() && a.errors.empty())
    out += "    <testcase classname=\"lockgraph\" name=\"lock validation\"/>\n";
  out += "  </testsuite>\n</testsuites>\n";
  return out;
}

std::string RenderBaseline(const Analysis& a) {
  std::map<std::string, std::string> entries;
  for (const auto& af : a.findings) {
    const Finding& f = af.finding;
    entries.emplace(f.fingerprint, std::string(FindingKindId(f.kind)) + " " + ClassSummary(f));
  }
  std::string out =
      "# lockgraph baseline: findings listed here do not fail `lockgraph analyze --baseline`.\n"
      "# One fingerprint per line; the rest of the line is a comment. Regenerate with\n"
      "# `lockgraph baseline LOG... -o FILE`.\n";
  for (const auto& [fp, what] : entries) {
    std::string line = fp + "  " + what;
    for (char& c : line)
      if (c == '\n' || c == '\r') c = ' ';
    out += line + "\n";
  }
  return out;
}

namespace {

std::string DotQuote(const std::string& s) {
  std::string out = "\"";
  for (char c : Utf8(s)) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out + "\"";
}

}  // namespace

std::string RenderDot(const Analysis& a, bool only_findings) {
  static const char* kColors[] = {"red",        "blue",   "darkgreen", "darkorange",
                                  "purple",     "brown",  "deeppink",  "darkcyan"};
  std::vector<ClassInfo> classes = a.engine ? a.engine->Classes() : std::vector<ClassInfo>{};
  std::vector<DependencyInfo> deps = a.engine ? a.engine->Dependencies() : std::vector<DependencyInfo>{};
  std::map<std::string, std::vector<ClassId>> by_name;
  std::map<ClassId, const ClassInfo*> by_id;
  for (const auto& c : classes) {
    by_name[c.name].push_back(c.id);
    by_id[c.id] = &c;
  }
  // Highlighted edges and nodes: (from, to) -> finding numbers.
  std::map<std::pair<ClassId, ClassId>, std::vector<int>> hot_edges;
  std::map<ClassId, std::vector<int>> hot_nodes;
  int n = 0;
  for (const auto& af : a.findings) {
    ++n;
    const Finding& f = af.finding;
    for (const auto& c : f.classes)
      for (ClassId id : by_name[c]) hot_nodes[id].push_back(n);
    auto mark = [&](const std::vector<ReportedDependency>& path) {
      for (const auto& d : path)
        for (ClassId x : by_name[d.from])
          for (ClassId y : by_name[d.to]) {
            hot_edges[{x, y}].push_back(n);
            hot_nodes[x].push_back(n);
            hot_nodes[y].push_back(n);
          }
    };
    mark(f.chain);
    mark(f.backward_path);
    mark(f.forward_path);
  }
  std::string out = "digraph lockgraph {\n";
  out += "  graph [rankdir=LR, fontname=\"Helvetica\", label=\"lock class graph";
  if (!a.findings.empty()) out += ": " + std::to_string(a.findings.size()) + " finding(s) in colour";
  out += "\", labelloc=t];\n";
  out += "  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n";
  out += "  edge [fontname=\"Helvetica\", fontsize=10, color=gray50];\n";
  auto type_label = [](std::uint8_t t) {
    std::string s;
    if (t & kDepEN) s += "EN ";
    if (t & kDepSN) s += "SN ";
    if (t & kDepER) s += "ER ";
    if (t & kDepSR) s += "SR ";
    if (!s.empty()) s.pop_back();
    return s;
  };
  for (const auto& c : classes) {
    auto hot = hot_nodes.find(c.id);
    if (only_findings && hot == hot_nodes.end()) continue;
    out += "  c" + std::to_string(c.id) + " [label=" + DotQuote(c.name);
    if (hot != hot_nodes.end()) {
      const char* color = kColors[(hot->second.front() - 1) % 8];
      out += ", color=" + std::string(color) + ", penwidth=2, fontcolor=" + color;
    }
    out += "];\n";
  }
  for (const auto& d : deps) {
    auto hot = hot_edges.find({d.from, d.to});
    if (only_findings && (!hot_nodes.count(d.from) || !hot_nodes.count(d.to))) continue;
    out += "  c" + std::to_string(d.from) + " -> c" + std::to_string(d.to) + " [label=";
    std::string label = type_label(d.types);
    if (hot != hot_edges.end()) {
      std::set<int> uniq(hot->second.begin(), hot->second.end());
      label += " (#";
      bool first = true;
      for (int i : uniq) {
        label += (first ? "" : ",#") + std::to_string(i);
        first = false;
      }
      label += ")";
      const char* color = kColors[(*uniq.begin() - 1) % 8];
      out += DotQuote(label) + ", color=" + color + ", fontcolor=" + color + ", penwidth=2.5";
    } else {
      out += DotQuote(label);
    }
    out += "];\n";
  }
  // A legend: finding number -> headline.
  if (!a.findings.empty()) {
    out += "  legend [shape=note, label=";
    std::string text;
    int i = 0;
    for (const auto& af : a.findings) {
      text += "#" + std::to_string(++i) + " " + af.finding.headline + ": " + ClassSummary(af.finding) + "\\l";
    }
    std::string q = "\"";
    for (char c : Utf8(text)) {
      if (c == '"') q.push_back('\\');
      q.push_back(c);
    }
    out += q + "\"];\n";
  }
  out += "}\n";
  return out;
}

}  // namespace lockgraph::analyzer
