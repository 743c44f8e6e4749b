#!/usr/bin/env python3
"""Checks `lockgraph analyze --format sarif|junit` against the rules their consumers enforce.

SARIF: the parts of SARIF 2.1.0 that GitHub code scanning requires of an upload (version,
$schema, runs[].tool.driver with named rules, results with ruleId/message/locations whose
artifactLocation.uri is a relative URI reference and region.startLine >= 1, partialFingerprints,
level values, suppressions, baselineState). JUnit: well-formed XML (expat), the
testsuites/testsuite/testcase/failure|error|skipped structure, and counts that agree.

usage: validate_reports.py LOCKGRAPH SCENARIOS_DIR WORK_DIR
Exits non-zero with one line per violation.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

LEVELS = {"none", "note", "warning", "error"}
BASELINE_STATES = {"new", "unchanged", "updated", "absent"}
SUPPRESSION_KINDS = {"inSource", "external"}
# RFC 3986 characters allowed unencoded in a relative reference's path (plus '%' of escapes).
URI_CHARS = re.compile(r"^[A-Za-z0-9\-._~!$&'()*+,;=:@/%]+$")
PCT = re.compile(r"%(?![0-9A-Fa-f]{2})")

problems = []


def check(cond, what):
    if not cond:
        problems.append(what)
    return cond


def is_text(obj, key, where):
    return check(isinstance(obj, dict) and isinstance(obj.get(key), str) and obj[key] != "",
                 f"{where}: '{key}' must be a non-empty string")


def check_location(loc, where, want_relative):
    phys = loc.get("physicalLocation") if isinstance(loc, dict) else None
    if not check(isinstance(phys, dict), f"{where}: physicalLocation missing"):
        return
    art = phys.get("artifactLocation")
    if not check(isinstance(art, dict) and isinstance(art.get("uri"), str) and art["uri"],
                 f"{where}: artifactLocation.uri missing"):
        return
    uri = art["uri"]
    check(URI_CHARS.match(uri) is not None and PCT.search(uri) is None,
          f"{where}: uri {uri!r} is not a valid URI reference (characters must be %-encoded)")
    if want_relative:
        check(not uri.startswith("/") and ":" not in uri.split("/")[0] and "\\" not in uri,
              f"{where}: uri {uri!r} must be relative to the source root")
    region = phys.get("region")
    if region is not None:
        line = region.get("startLine")
        check(isinstance(line, int) and not isinstance(line, bool) and line >= 1,
              f"{where}: region.startLine must be an integer >= 1, got {line!r}")


def validate_sarif(text, name, want_relative=True):
    try:
        doc = json.loads(text)
    except ValueError as e:
        check(False, f"{name}: not JSON: {e}")
        return None
    check(doc.get("version") == "2.1.0", f"{name}: version must be 2.1.0")
    schema = doc.get("$schema")
    check(isinstance(schema, str) and schema.startswith("https://") and "sarif" in schema
          and "2.1.0" in schema, f"{name}: $schema must name the SARIF 2.1.0 schema")
    runs = doc.get("runs")
    if not check(isinstance(runs, list) and runs, f"{name}: runs must be a non-empty array"):
        return doc
    for r, run in enumerate(runs):
        where = f"{name}: runs[{r}]"
        driver = run.get("tool", {}).get("driver")
        if not check(isinstance(driver, dict), f"{where}: tool.driver missing"):
            continue
        is_text(driver, "name", f"{where}.tool.driver")
        rules = driver.get("rules", [])
        check(isinstance(rules, list), f"{where}: rules must be an array")
        ids = []
        for i, rule in enumerate(rules):
            rw = f"{where}.tool.driver.rules[{i}]"
            if is_text(rule, "id", rw):
                ids.append(rule["id"])
            for key in ("shortDescription", "fullDescription", "help"):
                if key in rule:
                    is_text(rule[key], "text", f"{rw}.{key}")
            level = rule.get("defaultConfiguration", {}).get("level", "warning")
            check(level in LEVELS, f"{rw}: defaultConfiguration.level {level!r}")
        check(len(ids) == len(set(ids)), f"{where}: rule ids must be unique")
        check(run.get("columnKind", "utf16CodeUnits") in {"utf16CodeUnits", "unicodeCodePoints"},
              f"{where}: columnKind")
        results = run.get("results")
        if not check(isinstance(results, list), f"{where}: results must be an array"):
            continue
        for k, res in enumerate(results):
            rw = f"{where}.results[{k}]"
            if is_text(res, "ruleId", rw):
                check(res["ruleId"] in ids, f"{rw}: ruleId {res['ruleId']!r} is not a rule")
                if "ruleIndex" in res:
                    idx = res["ruleIndex"]
                    check(isinstance(idx, int) and 0 <= idx < len(rules)
                          and rules[idx].get("id") == res["ruleId"],
                          f"{rw}: ruleIndex does not point at rule {res['ruleId']!r}")
            is_text(res.get("message"), "text", f"{rw}.message")
            check(res.get("level", "warning") in LEVELS, f"{rw}: level {res.get('level')!r}")
            locs = res.get("locations")
            if check(isinstance(locs, list) and locs, f"{rw}: locations must be a non-empty array"):
                for j, loc in enumerate(locs):
                    check_location(loc, f"{rw}.locations[{j}]", want_relative)
            related_ids = []
            for j, loc in enumerate(res.get("relatedLocations", [])):
                check_location(loc, f"{rw}.relatedLocations[{j}]", want_relative)
                lid = loc.get("id")
                check(isinstance(lid, int) and lid >= 0, f"{rw}.relatedLocations[{j}]: id")
                related_ids.append(lid)
                is_text(loc.get("message"), "text", f"{rw}.relatedLocations[{j}].message")
            check(len(related_ids) == len(set(related_ids)), f"{rw}: relatedLocations ids unique")
            fps = res.get("partialFingerprints")
            check(isinstance(fps, dict) and fps and
                  all(isinstance(v, str) and v for v in fps.values()),
                  f"{rw}: partialFingerprints must be a non-empty object of strings")
            for j, sup in enumerate(res.get("suppressions", [])):
                check(sup.get("kind") in SUPPRESSION_KINDS, f"{rw}.suppressions[{j}].kind")
                check(isinstance(sup.get("justification", ""), str),
                      f"{rw}.suppressions[{j}].justification")
            if "baselineState" in res:
                check(res["baselineState"] in BASELINE_STATES, f"{rw}: baselineState")
    return doc


def validate_junit(text, name):
    try:
        root = ET.fromstring(text.encode("utf-8"))
    except ET.ParseError as e:
        check(False, f"{name}: not well-formed XML: {e}")
        return None
    check(text.startswith('<?xml version="1.0" encoding="UTF-8"?>'), f"{name}: XML declaration")
    check(root.tag == "testsuites", f"{name}: root element must be testsuites, is {root.tag}")

    def count(el, attr, where):
        v = el.get(attr)
        check(v is not None and v.isdigit(), f"{where}: {attr}={v!r} must be a count")
        return int(v) if v and v.isdigit() else -1

    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    suites = list(root)
    check(suites and all(s.tag == "testsuite" for s in suites),
          f"{name}: testsuites must hold testsuite elements")
    for i, suite in enumerate(suites):
        where = f"{name}: testsuite[{i}]"
        check(bool(suite.get("name")), f"{where}: name")
        cases = list(suite)
        check(all(c.tag == "testcase" for c in cases), f"{where}: only testcase elements")
        seen = {"tests": len(cases), "failures": 0, "errors": 0, "skipped": 0}
        for j, case in enumerate(cases):
            cw = f"{where}.testcase[{j}]"
            check(bool(case.get("name")) and bool(case.get("classname")), f"{cw}: name, classname")
            outcome = [c for c in case if c.tag in ("failure", "error", "skipped")]
            check(len(outcome) <= 1 and len(list(case)) == len(outcome),
                  f"{cw}: at most one failure, error or skipped, nothing else")
            for o in outcome:
                seen["failures" if o.tag == "failure" else
                     "errors" if o.tag == "error" else "skipped"] += 1
                if o.tag in ("failure", "error"):
                    check(o.get("message") is not None, f"{cw}: {o.tag} without message")
        for key, n in seen.items():
            check(count(suite, key, where) == n, f"{where}: {key} says {suite.get(key)}, has {n}")
            totals[key] += n
    for key, n in totals.items():
        check(count(root, key, f"{name}: testsuites") == n,
              f"{name}: testsuites {key} says {root.get(key)}, suites have {n}")
    return root


def run(lockgraph, args, cwd):
    p = subprocess.run([lockgraph] + args, cwd=cwd, capture_output=True)
    return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8", "replace")


def main():
    lockgraph, scenarios, work = (os.path.abspath(a) for a in sys.argv[1:4])
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.join(work, "src dir"))
    # A source tree whose paths need %-encoding, and a log whose lock names need XML escaping.
    with open(os.path.join(work, "src dir", "bank#1.c"), "w") as f:
        f.write("/* stands in for the source */\n")
    with open(os.path.join(work, "odd.txt"), "w") as f:
        f.write('lockgraph-text 1\nrun program="./odd" pid=5\n'
                'acquire t1 "a<b>&\\"c\'\\x01" at="f (src dir/bank#1.c:7)"\n'
                'acquire t1 B at="f (src dir/bank#1.c:8)"\n'
                'release t1 B\nrelease t1 "a<b>&\\"c\'\\x01"\n'
                'acquire t2 B at="g (src dir/bank#1.c:20)"\n'
                'acquire t2 "a<b>&\\"c\'\\x01" at="g (src dir/bank#1.c:21)"\n')
    with open(os.path.join(work, "supp.txt"), "w") as f:
        f.write('kind=recursive-locking reason="known: <ticket> & co"\n')
    s = lambda n: os.path.join(scenarios, n)
    cases = [
        ("abba", [s("abba_transfer.txt"), s("abba_audit.txt")], 1),
        ("irq+recursive", [s("signal_stats.txt"), s("recursive.txt")], 1),
        ("clean", [s("clean.txt")], 0),
        ("odd names", ["odd.txt"], 1),
        ("suppressed", ["--suppressions", "supp.txt", s("recursive.txt"), s("signal_stats.txt")], 1),
        ("missing input", ["nothere.lglog", s("clean.txt")], 2),
    ]
    # A baseline of the abba finding, so a baselined result appears too.
    code, _, err = run(lockgraph, ["baseline", "-o", "base.txt", s("abba_transfer.txt"),
                                   s("abba_audit.txt")], work)
    check(code == 0, f"baseline: exit {code}: {err}")
    cases.append(("baselined", ["--baseline", "base.txt", s("abba_transfer.txt"),
                                s("abba_audit.txt"), s("recursive.txt")], 1))
    for name, inputs, want in cases:
        code, out, err = run(lockgraph, ["analyze", "--format", "sarif", "--no-progress"] + inputs,
                             work)
        check(code == want, f"{name}: sarif exit code {code}, want {want}: {err}")
        doc = validate_sarif(out, f"{name} (sarif)")
        if doc and name == "odd names":
            uris = [loc["physicalLocation"]["artifactLocation"]["uri"]
                    for res in doc["runs"][0]["results"] for loc in res["locations"]]
            check("src%20dir/bank%231.c" in uris, f"odd names: uris {uris}")
        code, out, err = run(lockgraph, ["analyze", "--format", "junit", "--no-progress"] + inputs,
                             work)
        check(code == want, f"{name}: junit exit code {code}, want {want}: {err}")
        root = validate_junit(out, f"{name} (junit)")
        if root is not None:
            suite = root[0]
            if name == "clean":
                check(suite.get("tests") == "1" and suite.get("failures") == "0",
                      "clean: one passing test case")
            if name == "odd names":
                names = [c.get("name") for c in suite]
                check(any("a<b>&\"c'" in n for n in names), f"odd names: testcase names {names}")
    for p in problems:
        print(p)
    print(f"validate_reports: {len(cases)} analyses, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
