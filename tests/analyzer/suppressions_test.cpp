// Suppression and baseline parsing, and the glob matcher (compared with glibc's fnmatch on
// every small pattern, and bounded on patterns that make backtracking matchers explode).
#include "suppressions.h"

#include <fnmatch.h>
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

namespace lockgraph::analyzer {
namespace {

TEST(Glob, AgreesWithFnmatchOnRandomSmallPatterns) {
  const std::string alphabet = "ab*?[]!-\\";
  std::mt19937 rng(17);
  int compared = 0;
  for (int i = 0; i < 200000; ++i) {
    std::string pattern, text;
    for (int n = rng() % 7; n > 0; --n) pattern.push_back(alphabet[rng() % alphabet.size()]);
    for (int n = rng() % 6; n > 0; --n) text.push_back("ab-]!"[rng() % 5]);
    // A trailing lone backslash is an error for fnmatch, a literal here: not compared.
    std::size_t bs = 0;
    for (auto it = pattern.rbegin(); it != pattern.rend() && *it == '\\'; ++it) ++bs;
    if (bs % 2 == 1) continue;
    const bool want = fnmatch(pattern.c_str(), text.c_str(), 0) == 0;
    EXPECT_EQ(GlobMatch(pattern, text), want) << "pattern '" << pattern << "' text '" << text << "'";
    ++compared;
    if (HasFailure()) break;
  }
  EXPECT_GT(compared, 100000);
}

TEST(Glob, ManyStarsOnALongNameFinishQuickly) {
  // Backtracking matchers take exponential time here; this one is |pattern| * |text| at most.
  std::string pattern;
  for (int i = 0; i < 30; ++i) pattern += "*a";
  pattern += "*b";
  const std::string text(20000, 'a');
  // (An exponential matcher would not finish: the test's ctest timeout is the guard.)
  EXPECT_FALSE(GlobMatch(pattern, text));
  EXPECT_TRUE(GlobMatch(pattern.substr(0, pattern.size() - 1), text));
}

TEST(Suppressions, DocumentedSyntaxParses) {
  std::vector<Suppression> s;
  std::vector<InputError> errors;
  ASSERT_TRUE(ParseSuppressions(
      "# comment\n"
      "kind=circular-dependency class=&dev->mutex class=cpu_hotplug_lock reason=\"fixed upstream\"\n"
      "\n"
      "kind=irq-* class=stats_* reason=\"SIGUSR1 is blocked\"   # trailing comment\n"
      "fingerprint=3f2a9c1d00b4e7a1 reason=known\r\n",
      "x.supp", &s, &errors))
      << errors[0].message;
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].classes, (std::vector<std::string>{"&dev->mutex", "cpu_hotplug_lock"}));
  EXPECT_EQ(s[1].kind, "irq-*");
  EXPECT_EQ(s[1].line, 4u);
  EXPECT_EQ(s[2].fingerprint, "3f2a9c1d00b4e7a1");
  EXPECT_EQ(s[2].reason, "known");
  for (const auto& e : s) {
    std::vector<Suppression> back;
    ASSERT_TRUE(ParseSuppressions(FormatSuppression(e), "c", &back, &errors));
    EXPECT_EQ(back[0].kind, e.kind);
    EXPECT_EQ(back[0].classes, e.classes);
    EXPECT_EQ(back[0].reason, e.reason);
  }
}

std::string OnlyError(const std::string& text) {
  std::vector<Suppression> s;
  std::vector<InputError> errors;
  EXPECT_FALSE(ParseSuppressions(text, "bad.supp", &s, &errors));
  EXPECT_TRUE(s.empty());
  return errors.size() == 1 ? FormatInputError(errors[0]) : "(" + std::to_string(errors.size()) + " errors)";
}

TEST(Suppressions, MalformedEntriesAreErrorsNamingTheLine) {
  EXPECT_EQ(OnlyError("\nkind=recursive-locking reason=\"a\"class=B\n"),
            "bad.supp:2: expected a blank after the quoted value of 'reason' at column 34");
  EXPECT_EQ(OnlyError("fingerprint=XYZ reason=z"),
            "bad.supp:1: fingerprint must be 16 lower-case hex digits, got 'XYZ'");
  EXPECT_EQ(OnlyError("kind=recursive-locking kind=circular-dependency reason=r"),
            "bad.supp:1: kind= given twice");
  EXPECT_EQ(OnlyError("class=A reason=one reason=two"), "bad.supp:1: reason= given twice");
  EXPECT_EQ(OnlyError("class=\"a\x1b[31m\" colour\x1b=red reason=x"),
            "bad.supp:1: unknown suppression key 'colour\\x1b' (kind, class, fingerprint, reason)");
  EXPECT_EQ(OnlyError("kind=\"side\x1bways\" reason=x"),
            "bad.supp:1: unknown finding kind 'side\\x1bways'");
  EXPECT_EQ(OnlyError(std::string("class=A\0B reason=x", 18)), "bad.supp:1: NUL byte in the line");
}

TEST(Suppressions, GlobsSelectClassesAndKinds) {
  std::vector<Suppression> s;
  std::vector<InputError> errors;
  ASSERT_TRUE(ParseSuppressions("class=\\*lit class=[a-c]_lock reason=r\nkind=irq-* reason=r\n",
                                "g", &s, &errors));
  Finding f;
  f.kind = FindingKind::kCircularDependency;
  f.classes = {"*lit", "b_lock"};
  EXPECT_TRUE(SuppressionMatches(s[0], f));
  EXPECT_FALSE(SuppressionMatches(s[1], f));
  f.classes = {"xlit", "b_lock"};  // the escaped star is a star, not a wildcard
  EXPECT_FALSE(SuppressionMatches(s[0], f));
}

TEST(Baseline, FingerprintsAndErrors) {
  std::set<std::string> fps;
  std::vector<InputError> errors;
  EXPECT_FALSE(ParseBaseline("# c\n  0123456789abcdef  comment\n\x1b[2Jclear\n" +
                                 std::string(100, 'z') + "\n",
                             "b", &fps, &errors));
  EXPECT_EQ(fps, (std::set<std::string>{"0123456789abcdef"}));
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_EQ(FormatInputError(errors[0]), "b:3: expected a 16-digit fingerprint, got '\\x1b[2Jclear'");
  EXPECT_EQ(FormatInputError(errors[1]),
            "b:4: expected a 16-digit fingerprint, got '" + std::string(40, 'z') + "...'");
}

}  // namespace
}  // namespace lockgraph::analyzer
