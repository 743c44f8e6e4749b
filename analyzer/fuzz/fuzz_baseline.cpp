// libFuzzer target: the baseline-file parser. Any bytes must parse without a crash; everything
// accepted is a 16-digit lower-case hex fingerprint that appears in the input at the start of
// a line's first word; every error names a line of the input and quotes it printably and
// briefly; a baseline written from the accepted set parses back to the same set.
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "suppressions.h"

using namespace lockgraph::analyzer;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::set<std::string> fps;
  std::vector<InputError> errors;
  const bool ok = ParseBaseline(text, "fuzz.baseline", &fps, &errors);
  if (ok != errors.empty()) std::abort();
  std::uint64_t lines = 0;
  for (char c : text) lines += c == '\n';
  lines += !text.empty() && text.back() != '\n';
  for (const auto& e : errors) {
    if (e.line < 1 || e.line > lines) std::abort();
    if (e.message.size() > 256) std::abort();  // a bad word is quoted back, but not all of it
    for (unsigned char c : e.message)
      if (c < 0x20 || c == 0x7f) std::abort();
  }
  std::string again;
  for (const auto& fp : fps) {
    if (fp.size() != 16 || fp.find_first_not_of("0123456789abcdef") != std::string::npos)
      std::abort();
    if (text.find(fp) == std::string_view::npos) std::abort();
    again += fp + "  # comment\n";
  }
  std::set<std::string> back;
  std::vector<InputError> back_errors;
  if (!ParseBaseline(again, "again", &back, &back_errors) || back != fps) std::abort();
  return 0;
}
