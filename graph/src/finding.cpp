// Lockdep-format text reports for findings, and the finding kinds' stable ids.
#include "lockgraph/finding.h"

#include <array>
#include <cstdio>
#include <utility>

namespace lockgraph {

namespace {

struct KindName {
  FindingKind kind;
  std::string_view id;
};

constexpr std::array<KindName, 12> kKindNames = {{
    {FindingKind::kCircularDependency, "circular-dependency"},
    {FindingKind::kRecursiveLocking, "recursive-locking"},
    {FindingKind::kInconsistentLockState, "inconsistent-lock-state"},
    {FindingKind::kIrqSafeToUnsafe, "irq-safe-to-unsafe"},
    {FindingKind::kIrqInversion, "irq-inversion"},
    {FindingKind::kBadUnlockBalance, "bad-unlock-balance"},
    {FindingKind::kHeldLockFreed, "held-lock-freed"},
    {FindingKind::kHeldLockReinit, "held-lock-reinit"},
    {FindingKind::kUseOfDestroyedLock, "use-of-destroyed-lock"},
    {FindingKind::kLocksHeldAtThreadExit, "locks-held-at-thread-exit"},
    {FindingKind::kLocksHeldAtIrqExit, "locks-held-at-irq-exit"},
    {FindingKind::kSameClassInstanceOrder, "same-class-instance-order"},
}};

std::string HexAddress(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// Builds one report; every helper appends to out_.
class ReportWriter {
 public:
  ReportWriter(const Finding& f, const Symbolizer& sym) : f_(f), sym_(sym) {}

  std::string Write();

 private:
  void Line(std::string_view s = {}) {
    out_ += s;
    out_ += '\n';
  }
  void Header(const std::string& headline) {
    const std::string warning = "WARNING: " + headline;
    Line();
    Line(std::string(warning.size(), '='));
    Line(warning);
    Line(std::string(warning.size(), '-'));
  }
  std::string Task() const {
    return (f_.thread_name.empty() ? std::string("thread") : f_.thread_name) + "/" +
           std::to_string(f_.thread);
  }
  std::string Run(RunId run) const {
    std::string name = sym_.RunName(run);
    return name.empty() ? std::string() : " [in " + name + "]";
  }
  std::string LockName(const ReportedLock& l, bool with_usage = true) const {
    return "(" + l.name + ")" + (with_usage ? l.usage : std::string());
  }
  void LockLine(const ReportedLock& l, std::string_view prefix = " ") {
    std::string s(prefix);
    s += HexAddress(l.instance) + " " + LockName(l);
    if (l.mode == AcquireMode::kShared) s += " (read)";
    if (l.mode == AcquireMode::kSharedRecursive) s += " (recursive read)";
    if (l.trylock) s += " (trylock)";
    s += ", at: ";
    sym_.AppendCallSite(l.ip, &s);
    Line(s);
  }
  void Stack(StackId stack, std::uint64_t ip, int indent) {
    if (stack != kNoStack) {
      sym_.AppendStack(stack, indent, &out_);
      return;
    }
    std::string s(static_cast<std::size_t>(indent), ' ');
    if (ip) {
      sym_.AppendCallSite(ip, &s);
    } else {
      s += "(no stack recorded)";
    }
    Line(s);
  }
  void HeldLocks() {
    if (f_.held.empty()) {
      Line("no locks held by " + Task() + ".");
      return;
    }
    Line(std::to_string(f_.held.size()) + (f_.held.size() == 1 ? " lock" : " locks") +
         " held by " + Task() + ":");
    for (std::size_t i = 0; i < f_.held.size(); ++i) {
      LockLine(f_.held[i], " #" + std::to_string(i) + ": ");
    }
  }
  void Backtrace() {
    Line();
    Line("stack backtrace:");
    Stack(f_.target_stack, f_.target.ip, 1);
  }
  const ReportedLock* HeldByName(const std::string& name) const {
    for (auto it = f_.held.rbegin(); it != f_.held.rend(); ++it) {
      if (it->name == name) return &*it;
    }
    return nullptr;
  }
  std::string Verb(const ReportedLock* l) const {
    return l && l->mode != AcquireMode::kExclusive ? "rlock(" : "lock(";
  }
  void DependencyList(const std::vector<ReportedDependency>& path, const std::string& first) {
    Line(" -> (" + first + ")");
    for (const auto& d : path) {
      Line(" -> (" + d.to + ") [" + d.type + "]" + Run(d.run) + " ... acquired at:");
      Stack(d.stack, d.ip, 3);
    }
  }
  void InterruptScenario(const std::string& safe, const std::string& middle,
                         const std::string& unsafe);

  void Circular();
  void IrqSafeToUnsafe();
  void Inconsistent();
  void Inversion();
  void Recursive();
  void Lifecycle();
  void InstanceOrder();

  const Finding& f_;
  const Symbolizer& sym_;
  std::string out_;
};

void ReportWriter::InterruptScenario(const std::string& safe, const std::string& middle,
                                     const std::string& unsafe) {
  if (middle != unsafe) {
    Line("Chain exists of:");
    Line("  " + safe + " --> " + middle + " --> " + unsafe);
    Line();
  }
  const bool signal = f_.context != "HARDIRQ" && f_.context != "SOFTIRQ";
  const std::string disable = f_.context == "HARDIRQ"   ? "local_irq_disable();"
                              : f_.context == "SOFTIRQ" ? "local_bh_disable();"
                                                        : "block(" + f_.context + ");";
  const std::string interrupt = signal ? "<" + f_.context + " handler>" : "<Interrupt>";
  Line(" Possible interrupt unsafe locking scenario:");
  Line();
  Line("       CPU0                    CPU1");
  Line("       ----                    ----");
  Line("  lock(" + unsafe + ");");
  Line("                               " + disable);
  Line("                               lock(" + safe + ");");
  Line("                               lock(" + middle + ");");
  Line("  " + interrupt);
  Line("    lock(" + safe + ");");
  Line();
  Line(" *** DEADLOCK ***");
  Line();
}

void ReportWriter::Circular() {
  Line(Task() + " is trying to acquire lock:");
  LockLine(f_.target);
  Line();
  const std::string prev = f_.chain.empty() ? std::string() : f_.chain.front().to;
  const ReportedLock* held = HeldByName(prev);
  Line("but task is already holding lock:");
  if (held) LockLine(*held);
  else Line(" (" + prev + ")");
  Line();
  Line("which lock already depends on the new lock.");
  Line();
  Line();
  Line("the existing dependency chain (in reverse order) is:");
  for (std::size_t i = 0; i < f_.chain.size(); ++i) {
    const auto& d = f_.chain[i];
    const std::size_t number = f_.chain.size() - 1 - i;
    Line();
    Line("-> #" + std::to_string(number) + " (" + d.to + ") [" + d.from + " -> " + d.to + ", " +
         d.type + "]" + Run(d.run) + ":");
    Stack(d.stack, d.ip, 7);
  }
  Line();
  Line("other info that might help us debug this:");
  Line();
  const std::string& target = f_.target.name;
  const std::string parent = f_.chain.size() >= 2 ? f_.chain[1].to : target;
  if (parent != target) {
    Line("Chain exists of:");
    std::string chain = "  " + target;
    for (std::size_t i = f_.chain.size() - 1; i-- > 0;) chain += " --> " + f_.chain[i].to;
    Line(chain);
    Line();
  }
  Line(" Possible unsafe locking scenario:");
  Line();
  Line("       CPU0                    CPU1");
  Line("       ----                    ----");
  Line("  " + Verb(held) + prev + ");");
  Line("                               lock(" + parent + ");");
  Line("                               lock(" + prev + ");");
  Line("  " + Verb(&f_.target) + target + ");");
  Line();
  Line(" *** DEADLOCK ***");
  Line();
  HeldLocks();
  Backtrace();
}

void ReportWriter::IrqSafeToUnsafe() {
  const std::string& ctx = f_.context;
  Line(Task() + " " + f_.thread_state + " is trying to acquire:");
  LockLine(f_.target);
  Line();
  const std::string prev = f_.chain.empty() ? std::string() : f_.chain.front().from;
  const ReportedLock* held = HeldByName(prev);
  Line("and this task is already holding:");
  if (held) LockLine(*held);
  else Line(" (" + prev + ")");
  Line("which would create a new lock dependency:");
  Line(" (" + prev + ") -> (" + f_.target.name + ")");
  Line();
  Line("but this new dependency connects a " + ctx + "-irq-safe lock:");
  Line(" (" + f_.safe_lock + ")");
  Line();
  Line("... which became " + ctx + "-irq-safe at:" + Run(f_.safe_usage.run));
  Stack(f_.safe_usage.stack, f_.safe_usage.ip, 2);
  Line();
  Line("to a " + ctx + "-irq-unsafe lock:");
  Line(" (" + f_.unsafe_lock + ")");
  Line();
  Line("... which became " + ctx + "-irq-unsafe at:" + Run(f_.unsafe_usage.run));
  Stack(f_.unsafe_usage.stack, f_.unsafe_usage.ip, 2);
  Line();
  Line("other info that might help us debug this:");
  Line();
  const std::string middle = prev == f_.safe_lock ? f_.target.name : prev;
  InterruptScenario(f_.safe_lock, middle, f_.unsafe_lock);
  HeldLocks();
  Line();
  Line("the dependencies between " + ctx + "-irq-safe lock and the holding lock:");
  DependencyList(f_.backward_path, f_.safe_lock);
  Line();
  Line("the dependencies between the lock to be acquired and " + ctx + "-irq-unsafe lock:");
  DependencyList(f_.forward_path, f_.target.name);
  Backtrace();
}

void ReportWriter::Inconsistent() {
  Line("inconsistent {" + f_.previous_bit + "} -> {" + f_.new_bit + "} usage.");
  Line(Task() + " " + f_.thread_state + " takes:");
  LockLine(f_.target);
  Line("{" + f_.previous_bit + "} state was registered at:" + Run(f_.safe_usage.run));
  Stack(f_.safe_usage.stack, f_.safe_usage.ip, 2);
  Line();
  Line("other info that might help us debug this:");
  const bool signal = f_.context != "HARDIRQ" && f_.context != "SOFTIRQ";
  Line(" Possible unsafe locking scenario:");
  Line();
  Line("       CPU0");
  Line("       ----");
  Line("  lock(" + f_.target.name + ");");
  Line(signal ? "  <" + f_.context + " handler>" : std::string("  <Interrupt>"));
  Line("    lock(" + f_.target.name + ");");
  Line();
  Line(" *** DEADLOCK ***");
  Line();
  HeldLocks();
  Backtrace();
}

void ReportWriter::Inversion() {
  const std::string& ctx = f_.context;
  Line(Task() + " " + f_.thread_state + " just changed the state of lock:");
  LockLine(f_.target);
  const bool forward = f_.safe_lock == f_.target.name && f_.unsafe_lock != f_.target.name;
  if (f_.safe_lock == f_.unsafe_lock) {
    Line("but this lock was taken as a reader with " + ctx + " enabled in the past:");
  } else if (forward) {
    Line("but this lock took another, " + ctx + "-unsafe lock in the past:");
  } else {
    Line("but this lock was taken by another, " + ctx + "-safe lock in the past:");
  }
  const std::string other = forward ? f_.unsafe_lock : f_.safe_lock;
  Line(" (" + other + ")");
  Line();
  Line("and interrupts could create inverse lock ordering between them.");
  Line();
  Line("other info that might help us debug this:");
  const std::vector<ReportedDependency>& path = forward ? f_.forward_path : f_.backward_path;
  const std::string middle =
      path.size() >= 2 ? (forward ? path.front().to : path.back().from) : f_.unsafe_lock;
  InterruptScenario(f_.safe_lock, middle, f_.unsafe_lock);
  HeldLocks();
  Line();
  Line("the shortest dependencies between 2nd lock and 1st lock:");
  DependencyList(path, forward ? f_.safe_lock : f_.safe_lock);
  Line();
  Line("{" + f_.previous_bit + "} of (" + other + ") was registered at:" +
       Run(forward ? f_.unsafe_usage.run : f_.safe_usage.run));
  const ReportedUsage& u = forward ? f_.unsafe_usage : f_.safe_usage;
  Stack(u.stack, u.ip, 2);
  Backtrace();
}

void ReportWriter::Recursive() {
  Line(Task() + " is trying to acquire lock:");
  LockLine(f_.target);
  Line();
  Line("but task is already holding lock:");
  const ReportedLock* held = nullptr;
  for (auto it = f_.held.rbegin(); it != f_.held.rend(); ++it) {
    if (it->name == f_.target.name) {
      held = &*it;
      break;
    }
  }
  if (held) LockLine(*held);
  Line();
  Line("other info that might help us debug this:");
  Line(" Possible unsafe locking scenario:");
  Line();
  Line("       CPU0");
  Line("       ----");
  Line("  " + Verb(held) + f_.target.name + ");");
  Line("  " + Verb(&f_.target) + f_.target.name + ");");
  Line();
  Line(" *** DEADLOCK ***");
  Line();
  if (f_.instances.size() == 2) {
    Line(" May be due to missing lock nesting notation (two instances of one class:");
    Line(" annotate with a subclass or nest_lock, or run without --strict)");
  } else {
    Line(" The same lock instance is taken twice.");
  }
  Line();
  HeldLocks();
  Backtrace();
}

void ReportWriter::InstanceOrder() {
  Line(Task() + " is trying to acquire lock:");
  LockLine(f_.target);
  Line();
  Line("while holding another lock of the same class:");
  const std::string& name = f_.target.name;
  for (auto it = f_.held.rbegin(); it != f_.held.rend(); ++it) {
    if (it->name == name && it->instance != f_.target.instance) {
      LockLine(*it);
      break;
    }
  }
  Line();
  Line("but instances of (" + name + ") were already taken in the opposite order:");
  std::string order = " ";
  for (std::size_t i = 0; i < f_.instances.size(); ++i) {
    if (i) order += " --> ";
    sym_.AppendLockInstance(f_.instances[i], &order);
  }
  Line(order);
  Line();
  Line("other info that might help us debug this:");
  Line(" Possible unsafe locking scenario:");
  Line();
  Line("       CPU0                    CPU1");
  Line("       ----                    ----");
  auto instance = [&](LockId id) {
    std::string s = name + " ";
    sym_.AppendLockInstance(id, &s);
    return s;
  };
  const std::string a = f_.instances.empty() ? name : instance(f_.instances.back());
  const std::string b = f_.instances.empty() ? name : instance(f_.instances.front());
  Line("  lock(" + a + ");");
  Line("                               lock(" + b + ");");
  Line("                               lock(" + a + ");");
  Line("  lock(" + b + ");");
  Line();
  Line(" *** DEADLOCK ***");
  Line();
  Line(" Take the instances of one class in one global order (for example by address), or");
  Line(" annotate the nesting with a subclass or a nest_lock.");
  Line();
  HeldLocks();
  Backtrace();
}

void ReportWriter::Lifecycle() {
  switch (f_.kind) {
    case FindingKind::kBadUnlockBalance:
      Line(Task() + " is trying to release lock (" + f_.target.name + ") at:");
      Stack(kNoStack, f_.target.ip, 1);
      Line("but there are no more locks to release!");
      Line();
      Line("other info that might help us debug this:");
      HeldLocks();
      break;
    case FindingKind::kHeldLockFreed:
      Line(Task() + " is destroying a lock while still holding it:");
      LockLine(f_.target);
      Line("destroyed at:");
      Stack(f_.destroy_stack, f_.destroy_ip, 1);
      Line();
      HeldLocks();
      break;
    case FindingKind::kHeldLockReinit:
      Line(Task() + " is re-initializing a lock while still holding it:");
      LockLine(f_.target);
      Line();
      HeldLocks();
      break;
    case FindingKind::kUseOfDestroyedLock:
      Line(Task() + " is trying to acquire a destroyed lock:");
      LockLine(f_.target);
      Line("which was destroyed at:");
      Stack(f_.destroy_stack, f_.destroy_ip, 1);
      Line();
      HeldLocks();
      break;
    case FindingKind::kLocksHeldAtThreadExit:
      Line(Task() + " is exiting with locks held:");
      HeldLocks();
      break;
    case FindingKind::kLocksHeldAtIrqExit:
      Line(Task() + " is leaving " + f_.context + " context with locks taken there still held:");
      for (const auto& c : f_.classes) Line(" (" + c + ")");
      Line();
      HeldLocks();
      break;
    default:
      break;
  }
  Backtrace();
}

std::string ReportWriter::Write() {
  Header(f_.headline);
  switch (f_.kind) {
    case FindingKind::kCircularDependency:
      Circular();
      break;
    case FindingKind::kIrqSafeToUnsafe:
      IrqSafeToUnsafe();
      break;
    case FindingKind::kInconsistentLockState:
      Inconsistent();
      break;
    case FindingKind::kIrqInversion:
      Inversion();
      break;
    case FindingKind::kRecursiveLocking:
      Recursive();
      break;
    case FindingKind::kSameClassInstanceOrder:
      InstanceOrder();
      break;
    default:
      Lifecycle();
      break;
  }
  return std::move(out_);
}

}  // namespace

std::string_view FindingKindId(FindingKind kind) {
  for (const auto& k : kKindNames) {
    if (k.kind == kind) return k.id;
  }
  return "unknown";
}

bool ParseFindingKindId(std::string_view id, FindingKind* kind) {
  for (const auto& k : kKindNames) {
    if (k.id == id) {
      *kind = k.kind;
      return true;
    }
  }
  return false;
}

void Symbolizer::AppendStack(StackId stack, int indent, std::string* out) const {
  out->append(static_cast<std::size_t>(indent), ' ');
  *out += "stack " + HexAddress(stack) + "\n";
}

void Symbolizer::AppendCallSite(std::uint64_t ip, std::string* out) const {
  if (!ip) {
    *out += "(unknown)";
    return;
  }
  *out += "0x" + HexAddress(ip);
}

void Symbolizer::AppendLockInstance(LockId lock, std::string* out) const {
  *out += HexAddress(lock);
}

std::string Symbolizer::RunName(RunId) const { return {}; }

std::string FormatReport(const Finding& finding, const Symbolizer& symbolizer) {
  return ReportWriter(finding, symbolizer).Write();
}

std::string_view AcquireModeName(AcquireMode mode) {
  switch (mode) {
    case AcquireMode::kExclusive:
      return "write";
    case AcquireMode::kShared:
      return "read";
    case AcquireMode::kSharedRecursive:
      return "read-recursive";
  }
  return "write";
}

}  // namespace lockgraph
