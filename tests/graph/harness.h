// Test harness: drives an Engine with named locks and threads and collects its findings.
#ifndef LOCKGRAPH_TESTS_GRAPH_HARNESS_H_
#define LOCKGRAPH_TESTS_GRAPH_HARNESS_H_

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "lockgraph/engine.h"
#include "lockgraph/finding.h"

namespace lockgraph::testing {

class Harness : public FindingSink {
 public:
  explicit Harness(EngineOptions options = {}) : engine_(options, this) {}

  void OnFinding(const Finding& f) override {
    findings_.push_back(f);
    reports_.push_back(FormatReport(f, symbolizer_));
  }
  void OnTurnedOff(std::string_view why) override { turned_off_ = std::string(why); }

  Engine& engine() { return engine_; }
  const std::vector<Finding>& findings() const { return findings_; }
  const std::vector<std::string>& reports() const { return reports_; }
  const std::string& turned_off() const { return turned_off_; }

  // A lock named `name`; every lock with the same `cls` name shares one class.
  LockId Lock(const std::string& name, const std::string& cls = {}) {
    auto it = locks_.find(name);
    if (it != locks_.end()) return it->second;
    const LockId id = 0x1000 + 0x40 * locks_.size();
    locks_[name] = id;
    const std::string class_name = cls.empty() ? name : cls;
    const ClassId c = engine_.RegisterClass(std::hash<std::string>{}(class_name), class_name);
    engine_.InitLock(T(0), id, c, 0);
    return id;
  }

  ThreadState& T(int n) {
    auto& t = threads_[n];
    if (!t) t = engine_.NewThread(100 + n, "t" + std::to_string(n));
    return *t;
  }

  // Acquisition shorthands: L (write), R (recursive read), N (non-recursive read), Try.
  Harness& L(int t, const std::string& l, std::uint8_t subclass = 0) {
    return Acq(t, l, AcquireMode::kExclusive, false, subclass);
  }
  Harness& R(int t, const std::string& l) { return Acq(t, l, AcquireMode::kSharedRecursive); }
  Harness& N(int t, const std::string& l) { return Acq(t, l, AcquireMode::kShared); }
  Harness& Try(int t, const std::string& l, AcquireMode m = AcquireMode::kExclusive) {
    return Acq(t, l, m, true);
  }
  Harness& U(int t, const std::string& l) {
    engine_.Release(T(t), Lock(l), 0x2000);
    return *this;
  }
  Harness& Acq(int t, const std::string& l, AcquireMode mode, bool trylock = false,
               std::uint8_t subclass = 0, const std::string& nest = {}) {
    AcquireRequest r;
    r.lock = Lock(l);
    r.mode = mode;
    r.trylock = trylock;
    r.subclass = subclass;
    r.ip = 0x1000 + r.lock;
    if (!nest.empty()) r.nest_lock = Lock(nest);
    engine_.Acquire(T(t), r);
    return *this;
  }
  Harness& Enter(int t, ContextId c) {
    engine_.EnterContext(T(t), c);
    return *this;
  }
  Harness& Exit(int t, ContextId c) {
    engine_.ExitContext(T(t), c);
    return *this;
  }
  Harness& IrqOff(int t, ContextId c = kHardirqContext) {
    engine_.DisableContext(T(t), c);
    return *this;
  }
  Harness& IrqOn(int t, ContextId c = kHardirqContext) {
    engine_.EnableContext(T(t), c);
    return *this;
  }

  // The headlines of all findings, in order.
  std::vector<std::string> Headlines() const {
    std::vector<std::string> h;
    for (const auto& f : findings_) h.push_back(f.headline);
    return h;
  }
  bool Has(FindingKind kind) const {
    for (const auto& f : findings_) {
      if (f.kind == kind) return true;
    }
    return false;
  }
  std::size_t Count(FindingKind kind) const {
    std::size_t n = 0;
    for (const auto& f : findings_) n += f.kind == kind;
    return n;
  }
  const Finding* First(FindingKind kind) const {
    for (const auto& f : findings_) {
      if (f.kind == kind) return &f;
    }
    return nullptr;
  }
  std::string AllReports() const {
    std::string all;
    for (const auto& r : reports_) all += r;
    return all;
  }

 private:
  Engine engine_;
  Symbolizer symbolizer_;
  std::map<std::string, LockId> locks_;
  std::map<int, std::unique_ptr<ThreadState>> threads_;
  std::vector<Finding> findings_;
  std::vector<std::string> reports_;
  std::string turned_off_;
};

}  // namespace lockgraph::testing

#endif  // LOCKGRAPH_TESTS_GRAPH_HARNESS_H_
