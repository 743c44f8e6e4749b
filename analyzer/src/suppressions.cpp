// Suppression and baseline files: line parsers with file:line errors, and the glob matcher.
#include "suppressions.h"

#include <fstream>
#include <sstream>

namespace lockgraph::analyzer {

namespace {

// Named limit: a suppressions or baseline file is read whole; larger files are refused.
constexpr std::size_t kMaxFileBytes = 16u << 20;

bool ReadWhole(const std::string& path, const char* what, std::string* text,
               std::vector<InputError>* errors) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    errors->push_back({path, 0, 0, false, std::string("cannot open ") + what + " file"});
    return false;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  *text = ss.str();
  if (text->size() > kMaxFileBytes) {
    errors->push_back({path, 0, 0, false, std::string(what) + " file larger than 16 MiB"});
    return false;
  }
  return true;
}

// Calls fn(line, number) for every line of `text` (without '\n'; a final line without one too).
template <typename Fn>
void ForEachLine(std::string_view text, Fn fn) {
  std::uint64_t n = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    fn(text.substr(pos, nl - pos), ++n);
    pos = nl + 1;
  }
}

bool IsBlank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

// Splits a line into key=value words (values may be double-quoted, with \" and \\); '#' at the
// start of a word starts a comment.
bool SplitKeyValues(std::string_view line, std::vector<std::pair<std::string, std::string>>* out,
                    std::string* error) {
  std::size_t i = 0;
  while (i < line.size()) {
    if (IsBlank(line[i])) {
      ++i;
      continue;
    }
    if (line[i] == '#') break;
    std::size_t end = i;
    while (end < line.size() && !IsBlank(line[end]) && line[end] != '=') ++end;
    if (end >= line.size() || line[end] != '=') {
      *error = "expected key=value at column " + std::to_string(i + 1);
      return false;
    }
    std::string key(line.substr(i, end - i));
    i = end + 1;
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
        *error = "unterminated quoted value for '" + Printable(key) + "'";
        return false;
      }
      if (i < line.size() && !IsBlank(line[i])) {
        *error = "expected a blank after the quoted value of '" + Printable(key) + "' at column " +
                 std::to_string(i + 1);
        return false;
      }
    } else {
      while (i < line.size() && !IsBlank(line[i])) value.push_back(line[i++]);
    }
    out->emplace_back(std::move(key), std::move(value));
  }
  return true;
}

bool IsFingerprint(std::string_view s) {
  return s.size() == 16 && s.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

// One element of a glob at pattern[p] against character c: how many pattern bytes it spans
// (0 when c does not match it). pattern[p] is not '*'.
std::size_t MatchOne(std::string_view pattern, std::size_t p, unsigned char c) {
  const char pc = pattern[p];
  if (pc == '?') return 1;
  if (pc == '\\' && p + 1 < pattern.size()) return static_cast<unsigned char>(pattern[p + 1]) == c ? 2 : 0;
  if (pc == '[') {
    std::size_t q = p + 1;
    bool negate = false;
    if (q < pattern.size() && (pattern[q] == '!' || pattern[q] == '^')) {
      negate = true;
      ++q;
    }
    bool matched = false;
    bool first = true;
    while (q < pattern.size() && (first || pattern[q] != ']')) {
      first = false;
      unsigned char lo = static_cast<unsigned char>(pattern[q]);
      if (lo == '\\' && q + 1 < pattern.size()) lo = static_cast<unsigned char>(pattern[++q]);
      ++q;
      unsigned char hi = lo;
      if (q + 1 < pattern.size() && pattern[q] == '-' && pattern[q + 1] != ']') {
        hi = static_cast<unsigned char>(pattern[q + 1]);
        if (hi == '\\' && q + 2 < pattern.size()) {
          hi = static_cast<unsigned char>(pattern[q + 2]);
          ++q;
        }
        q += 2;
      }
      if (lo <= c && c <= hi) matched = true;
    }
    if (q >= pattern.size()) return static_cast<unsigned char>('[') == c ? 1 : 0;  // no ']': literal
    return matched != negate ? q + 1 - p : 0;
  }
  return static_cast<unsigned char>(pc) == c ? 1 : 0;
}

}  // namespace

std::string Printable(std::string_view text) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  return out;
}

bool GlobMatch(std::string_view pattern, std::string_view text) {
  std::size_t p = 0, t = 0;
  std::size_t star_p = std::string_view::npos, star_t = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star_p = p++;
      star_t = t;
      continue;
    }
    if (p < pattern.size()) {
      if (std::size_t len = MatchOne(pattern, p, static_cast<unsigned char>(text[t]))) {
        p += len;
        ++t;
        continue;
      }
    }
    if (star_p == std::string_view::npos) return false;
    // Let the last '*' swallow one more character and try again from there.
    p = star_p + 1;
    t = ++star_t;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool SuppressionMatches(const Suppression& s, const Finding& f) {
  if (!GlobMatch(s.kind, FindingKindId(f.kind))) return false;
  if (!s.fingerprint.empty() && s.fingerprint != f.fingerprint) return false;
  for (const auto& pattern : s.classes) {
    bool any = false;
    for (const auto& c : f.classes) any = any || GlobMatch(pattern, c);
    if (!any) return false;
  }
  return true;
}

bool ParseSuppressions(std::string_view text, const std::string& path,
                       std::vector<Suppression>* out, std::vector<InputError>* errors) {
  bool ok = true;
  ForEachLine(text, [&](std::string_view line, std::uint64_t n) {
    std::vector<std::pair<std::string, std::string>> kv;
    std::string error;
    if (line.find('\0') != std::string_view::npos) {
      error = "NUL byte in the line";
    } else if (!SplitKeyValues(line, &kv, &error)) {
      // error set
    } else if (kv.empty()) {
      return;
    }
    Suppression s;
    s.file = path;
    s.line = n;
    bool selective = false, have_kind = false, have_reason = false;
    for (auto& [key, value] : kv) {
      if (!error.empty()) break;
      if (key == "kind") {
        FindingKind k;
        bool glob = value.find_first_of("*?[\\") != std::string::npos;
        if (have_kind) error = "kind= given twice";
        else if (!glob && !ParseFindingKindId(value, &k))
          error = "unknown finding kind '" + Printable(value) + "'";
        s.kind = value;
        selective = have_kind = true;
      } else if (key == "class") {
        s.classes.push_back(value);
        selective = true;
      } else if (key == "fingerprint") {
        if (!s.fingerprint.empty()) error = "fingerprint= given twice";
        else if (!IsFingerprint(value))
          error = "fingerprint must be 16 lower-case hex digits, got '" + Printable(value) + "'";
        s.fingerprint = value;
        selective = true;
      } else if (key == "reason") {
        if (have_reason) error = "reason= given twice";
        s.reason = value;
        have_reason = true;
      } else {
        error = "unknown suppression key '" + Printable(key) + "' (kind, class, fingerprint, reason)";
      }
    }
    if (error.empty() && s.reason.empty()) error = "suppression without reason=\"...\"";
    if (error.empty() && !selective)
      error = "suppression matches every finding; give kind=, class= or fingerprint=";
    if (!error.empty()) {
      errors->push_back({path, 0, n, false, error});
      ok = false;
      return;
    }
    out->push_back(std::move(s));
  });
  return ok;
}

bool ReadSuppressions(const std::string& path, std::vector<Suppression>* out,
                      std::vector<InputError>* errors) {
  std::string text;
  if (!ReadWhole(path, "suppressions", &text, errors)) return false;
  return ParseSuppressions(text, path, out, errors);
}

std::string FormatSuppression(const Suppression& s) {
  auto quote = [](const std::string& v) {
    std::string q = "\"";
    for (char c : v) {
      if (c == '"' || c == '\\') q.push_back('\\');
      q.push_back(c);
    }
    return q + "\"";
  };
  std::string line;
  auto word = [&](const char* key, const std::string& value) {
    if (!line.empty()) line.push_back(' ');
    line += key;
    line.push_back('=');
    line += quote(value);
  };
  if (s.kind != "*" || (s.classes.empty() && s.fingerprint.empty())) word("kind", s.kind);
  for (const auto& c : s.classes) word("class", c);
  if (!s.fingerprint.empty()) word("fingerprint", s.fingerprint);
  word("reason", s.reason);
  return line;
}

bool ParseBaseline(std::string_view text, const std::string& path,
                   std::set<std::string>* fingerprints, std::vector<InputError>* errors) {
  bool ok = true;
  ForEachLine(text, [&](std::string_view line, std::uint64_t n) {
    std::size_t start = line.find_first_not_of(" \t\r");
    if (start == std::string_view::npos || line[start] == '#') return;
    std::size_t end = line.find_first_of(" \t\r", start);
    std::string_view fp = line.substr(start, end == std::string_view::npos ? std::string_view::npos
                                                                           : end - start);
    if (!IsFingerprint(fp)) {
      constexpr std::size_t kQuoted = 40;  // named limit: characters of a bad word quoted back
      std::string shown = Printable(fp.substr(0, kQuoted));
      if (fp.size() > kQuoted) shown += "...";
      errors->push_back({path, 0, n, false, "expected a 16-digit fingerprint, got '" + shown + "'"});
      ok = false;
      return;
    }
    fingerprints->insert(std::string(fp));
  });
  return ok;
}

bool ReadBaseline(const std::string& path, std::set<std::string>* fingerprints,
                  std::vector<InputError>* errors) {
  std::string text;
  if (!ReadWhole(path, "baseline", &text, errors)) return false;
  return ParseBaseline(text, path, fingerprints, errors);
}

}  // namespace lockgraph::analyzer
