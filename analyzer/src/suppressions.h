// Suppression and baseline files (docs/analyzer.md, "Suppressions" and "Baselines"): parsing,
// matching findings, and the glob matcher both use. No engine, no I/O beyond reading the file.
#ifndef LOCKGRAPH_ANALYZER_SUPPRESSIONS_H_
#define LOCKGRAPH_ANALYZER_SUPPRESSIONS_H_

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "lockgraph/finding.h"
#include "log_reader.h"

namespace lockgraph::analyzer {

// One suppression entry.
struct Suppression {
  std::string kind = "*";                 // glob over FindingKindId()
  std::vector<std::string> classes;       // each glob must match one of the finding's classes
  std::string fingerprint;                // exact (16 hex digits), optional
  std::string reason;                     // required
  std::string file;
  std::uint64_t line = 0;
  std::uint64_t uses = 0;
};

// Parses the text of a suppressions file named `path`; every bad line is an error naming
// path:line (the entry is dropped). False when there was any error.
bool ParseSuppressions(std::string_view text, const std::string& path,
                       std::vector<Suppression>* out, std::vector<InputError>* errors);
// Reads and parses a suppressions file; false (with errors) when unreadable or malformed.
bool ReadSuppressions(const std::string& path, std::vector<Suppression>* out,
                      std::vector<InputError>* errors);
// The canonical line of an entry (key="value" words), which parses back to the same entry.
std::string FormatSuppression(const Suppression& s);

// Parses the text of a baseline file: one 16-digit lower-case hex fingerprint per line, the
// rest of the line a comment; '#' lines and blank lines are ignored.
bool ParseBaseline(std::string_view text, const std::string& path,
                   std::set<std::string>* fingerprints, std::vector<InputError>* errors);
bool ReadBaseline(const std::string& path, std::set<std::string>* fingerprints,
                  std::vector<InputError>* errors);

// True when `s` matches the finding (kind glob, fingerprint, every class glob).
bool SuppressionMatches(const Suppression& s, const Finding& f);

// Shell-style glob: '*', '?', '[...]' ('!' or '^' negates, ranges a-z), '\' quotes the next
// character. Linear in practice and never exponential: at most |pattern| * |text| steps.
bool GlobMatch(std::string_view pattern, std::string_view text);

// `text` with control characters (and DEL) written as \xHH, for error messages that quote input.
std::string Printable(std::string_view text);

}  // namespace lockgraph::analyzer

#endif  // LOCKGRAPH_ANALYZER_SUPPRESSIONS_H_
