// Output formats of an analysis: lockdep text, JSON, SARIF 2.1.0, JUnit XML, baseline, DOT.
#ifndef LOCKGRAPH_ANALYZER_OUTPUT_H_
#define LOCKGRAPH_ANALYZER_OUTPUT_H_

#include <string>
#include <vector>

#include "analysis.h"

namespace lockgraph::analyzer {

struct OutputOptions {
  bool show_all = false;       // text: also print baselined and suppressed findings
  std::string source_root;     // SARIF: paths under it become relative (default: cwd)
  std::string version = "0.1.0";
};

std::string RenderText(const Analysis& a, const OutputOptions& o);
std::string RenderJson(const Analysis& a, const OutputOptions& o,
                       const std::vector<Suppression>& suppressions);
std::string RenderSarif(const Analysis& a, const OutputOptions& o);
std::string RenderJunit(const Analysis& a, const OutputOptions& o);
// Every finding's fingerprint, sorted, one per line with its kind and classes as a comment.
std::string RenderBaseline(const Analysis& a);
// The class graph; each finding's cycle or IRQ path drawn in colour. `only_findings` keeps just
// the classes that take part in a finding.
std::string RenderDot(const Analysis& a, bool only_findings);

}  // namespace lockgraph::analyzer

#endif  // LOCKGRAPH_ANALYZER_OUTPUT_H_
