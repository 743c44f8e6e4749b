// libFuzzer target: the suppressions-file parser and the glob matcher. Any bytes must parse
// without a crash; every accepted entry has a reason and something to select by, comes back
// unchanged from its canonical line, and matches findings in bounded time; every error names a
// line of the input and quotes it printably.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "suppressions.h"

using namespace lockgraph;
using namespace lockgraph::analyzer;

namespace {

std::uint64_t Lines(std::string_view text) {
  std::uint64_t n = 0;
  for (char c : text) n += c == '\n';
  return n + (!text.empty() && text.back() != '\n');
}

void CheckErrors(const std::vector<InputError>& errors, std::uint64_t lines) {
  for (const auto& e : errors) {
    if (e.line < 1 || e.line > lines) std::abort();
    for (unsigned char c : e.message)
      if (c < 0x20 || c == 0x7f) std::abort();  // input is quoted printably
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<Suppression> entries;
  std::vector<InputError> errors;
  const bool ok = ParseSuppressions(text, "fuzz.supp", &entries, &errors);
  if (ok != errors.empty()) std::abort();
  CheckErrors(errors, Lines(text));

  // A finding whose classes are pieces of the input, so the globs meet matching text too.
  Finding f;
  f.kind = FindingKind::kCircularDependency;
  f.fingerprint = "0123456789abcdef";
  f.classes = {std::string(text.substr(0, 64)), std::string(text.substr(size / 2)), "A", ""};
  for (const Suppression& s : entries) {
    if (s.reason.empty()) std::abort();
    if (s.kind == "*" && s.classes.empty() && s.fingerprint.empty()) {
      // Only an explicit kind=* selects everything; it must still be a kind= word.
      if (FormatSuppression(s).find("kind=") == std::string::npos) std::abort();
    }
    // The canonical line parses back to the same entry.
    std::string line = FormatSuppression(s);
    std::vector<Suppression> back;
    std::vector<InputError> back_errors;
    if (!ParseSuppressions(line, "canonical", &back, &back_errors) || back.size() != 1) std::abort();
    const Suppression& b = back[0];
    if (b.kind != s.kind || b.classes != s.classes || b.fingerprint != s.fingerprint ||
        b.reason != s.reason)
      std::abort();
    (void)SuppressionMatches(s, f);
    // A glob matches itself when it has no special characters.
    for (const auto& c : s.classes)
      if (c.find_first_of("*?[\\") == std::string::npos && !GlobMatch(c, c)) std::abort();
  }
  // The matcher on the raw input split in two: pattern and text, both arbitrary.
  std::string_view pattern = text.substr(0, size / 2), subject = text.substr(size / 2);
  bool m = GlobMatch(pattern, subject);
  if (pattern.find_first_of("*?[\\") == std::string_view::npos && m != (pattern == subject))
    std::abort();
  return 0;
}
