// Randomized differential test: the engine's circular verdicts against a brute-force model.
//
// The model keeps its own dependency set (same derivation rules: edges from the top held lock,
// and past it while it is a trylock) and decides "is there a strong cycle?" by a transitive
// closure over typed edges (a typed edge may follow another unless -(*R)-> is followed by
// -(S*)->), a different formulation from the engine's state BFS. The first step at which the
// model sees a strong cycle must be the first step at which the engine reports one.
// A second model goes on past cycles, where the engine's class order merges them.
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "harness.h"

namespace lockgraph::testing {
namespace {

struct TypedEdge {
  int from, to;
  std::uint8_t type;  // one DepType bit
};

class Model {
 public:
  explicit Model(int locks) : held_(4) { (void)locks; }

  // Returns true when the model now contains a strong cycle.
  bool Acquire(int thread, int lock, AcquireMode mode, bool trylock) {
    auto& held = held_[thread];
    if (!trylock) {
      for (auto it = held.rbegin(); it != held.rend(); ++it) {
        if (it->lock != lock) {
          const bool shared = it->mode != AcquireMode::kExclusive;
          const bool recursive = mode == AcquireMode::kSharedRecursive;
          const std::uint8_t type = shared ? (recursive ? kDepSR : kDepSN)
                                           : (recursive ? kDepER : kDepEN);
          edges_.insert({it->lock, lock, type});
        }
        if (!it->trylock) break;
      }
    }
    held.push_back({lock, mode, trylock});
    return HasStrongCycle();
  }
  void Release(int thread, int lock) {
    auto& held = held_[thread];
    for (auto it = held.rbegin(); it != held.rend(); ++it) {
      if (it->lock == lock) {
        held.erase(std::next(it).base());
        return;
      }
    }
  }
  bool Holds(int thread, int lock) const {
    for (const auto& h : held_[thread]) {
      if (h.lock == lock) return true;
    }
    return false;
  }
  bool Holding(int thread) const { return !held_[thread].empty(); }
  int Top(int thread) const { return held_[thread].back().lock; }

 private:
  struct Held {
    int lock;
    AcquireMode mode;
    bool trylock;
  };
  struct EdgeLess {
    bool operator()(const TypedEdge& a, const TypedEdge& b) const {
      return std::tie(a.from, a.to, a.type) < std::tie(b.from, b.to, b.type);
    }
  };

  bool HasStrongCycle() const {
    std::vector<TypedEdge> e(edges_.begin(), edges_.end());
    const std::size_t n = e.size();
    // next[i][j]: typed edge j may directly follow typed edge i on a strong path.
    std::vector<std::vector<bool>> reach(n, std::vector<bool>(n, false));
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t j = 0; j < n; ++j) {
        const bool i_recursive_acquirer = e[i].type & (kDepER | kDepSR);
        const bool j_shared_holder = e[j].type & (kDepSR | kDepSN);
        reach[i][j] = e[i].to == e[j].from && !(i_recursive_acquirer && j_shared_holder);
      }
    }
    for (std::size_t k = 0; k < n; ++k) {
      for (std::size_t i = 0; i < n; ++i) {
        if (!reach[i][k]) continue;
        for (std::size_t j = 0; j < n; ++j) {
          if (reach[k][j]) reach[i][j] = true;
        }
      }
    }
    for (std::size_t i = 0; i < n; ++i) {
      if (reach[i][i]) return true;
    }
    return false;
  }

  std::vector<std::vector<Held>> held_;
  std::set<TypedEdge, EdgeLess> edges_;
};

TEST(Differential, CircularVerdictsMatchABruteForceModel) {
  const unsigned seed = static_cast<unsigned>(::testing::UnitTest::GetInstance()->random_seed());
  std::mt19937 rng(seed);
  constexpr int kLocks = 5, kThreads = 3, kRuns = 1500, kSteps = 60;
  int cycles_found = 0;
  for (int run = 0; run < kRuns; ++run) {
    Harness h;
    Model model(kLocks);
    std::string trace;
    for (int step = 0; step < kSteps; ++step) {
      const int t = static_cast<int>(rng() % kThreads);
      // Release with some probability when holding; never acquire a lock already held by t
      // (AA is a different rule; the model only speaks about cycles).
      if (model.Holding(t) && rng() % 3 == 0) {
        const int l = model.Top(t);
        model.Release(t, l);
        h.U(t, "L" + std::to_string(l));
        trace += "T" + std::to_string(t) + ":U" + std::to_string(l) + " ";
        continue;
      }
      const int l = static_cast<int>(rng() % kLocks);
      if (model.Holds(t, l)) continue;
      const AcquireMode mode = static_cast<AcquireMode>(rng() % 3);
      const bool trylock = rng() % 5 == 0;
      trace += "T" + std::to_string(t) + ":" + (trylock ? "try" : "") +
               std::string(AcquireModeName(mode)) + std::to_string(l) + " ";
      const bool model_cycle = model.Acquire(t, l, mode, trylock);
      h.Acq(t, "L" + std::to_string(l), mode, trylock);
      const bool engine_cycle = h.Has(FindingKind::kCircularDependency);
      ASSERT_EQ(engine_cycle, model_cycle)
          << "seed " << seed << " run " << run << " step " << step << "\n"
          << trace << "\n" << h.AllReports();
      if (model_cycle) {
        ++cycles_found;
        break;  // the verdicts agree at the first cycle; start a fresh scenario
      }
    }
    ASSERT_EQ(h.engine().CheckInvariants(), "") << "seed " << seed << " run " << run;
  }
  // The generator must exercise both verdicts, or the test proves nothing.
  EXPECT_GT(cycles_found, kRuns / 10);
  EXPECT_LT(cycles_found, kRuns);
}

// After a cycle: the engine keeps its class order (the classes of a cycle share one rank), so
// every later verdict must still match. The model decides, for each new typed dependency, whether
// a strong walk leads from it back to itself (a breadth-first search over typed dependencies).
// A report is deduplicated by its cycle, and a repeated cycle always contains a dependency that
// existed before in another type, so a model verdict for a class pair that had no dependency yet
// must bring a new report; no report may come without a model verdict.
class CycleModel {
 public:
  // Adds the typed dependencies of acquiring `lock` on top of `held`; returns whether one of
  // them closes a strong cycle, and in `fresh_pair` whether such a one joins two classes that
  // had no dependency in that direction before.
  bool Acquire(const std::vector<std::pair<int, AcquireMode>>& held,
               const std::vector<bool>& held_trylock, int lock, AcquireMode mode, bool trylock,
               bool* fresh_pair) {
    *fresh_pair = false;
    bool closes = false;
    if (trylock) return false;
    for (std::size_t i = held.size(); i-- > 0;) {
      const auto [from, held_mode] = held[i];
      if (from != lock) {
        const bool shared = held_mode != AcquireMode::kExclusive;
        const bool recursive = mode == AcquireMode::kSharedRecursive;
        const std::uint8_t type = shared ? (recursive ? kDepSR : kDepSN)
                                         : (recursive ? kDepER : kDepEN);
        const bool pair_known = pairs_.count({from, lock}) != 0;
        if (edges_.insert({from, lock, type}).second) {
          pairs_.insert({from, lock});
          if (ClosesStrongCycle(TypedEdge{from, lock, type})) {
            closes = true;
            if (!pair_known) *fresh_pair = true;
          }
        }
      }
      if (!held_trylock[i]) break;
    }
    return closes;
  }

 private:
  static bool MayFollow(const TypedEdge& a, const TypedEdge& b) {
    return a.to == b.from && !((a.type & (kDepER | kDepSR)) && (b.type & (kDepSR | kDepSN)));
  }
  bool ClosesStrongCycle(const TypedEdge& start) const {
    std::vector<TypedEdge> all(edges_.begin(), edges_.end());
    std::vector<bool> seen(all.size(), false);
    std::vector<TypedEdge> queue{start};
    for (std::size_t q = 0; q < queue.size(); ++q) {
      for (std::size_t j = 0; j < all.size(); ++j) {
        if (seen[j] || !MayFollow(queue[q], all[j])) continue;
        if (all[j].from == start.from && all[j].to == start.to && all[j].type == start.type) {
          return true;
        }
        seen[j] = true;
        queue.push_back(all[j]);
      }
    }
    return false;
  }
  struct EdgeLess {
    bool operator()(const TypedEdge& a, const TypedEdge& b) const {
      return std::tie(a.from, a.to, a.type) < std::tie(b.from, b.to, b.type);
    }
  };
  std::set<TypedEdge, EdgeLess> edges_;
  std::set<std::pair<int, int>> pairs_;
};

TEST(Differential, CircularVerdictsStayExactAfterCycles) {
  const unsigned seed = static_cast<unsigned>(::testing::UnitTest::GetInstance()->random_seed());
  std::mt19937 rng(seed + 5);
  constexpr int kLocks = 12, kThreads = 3, kRuns = 120, kSteps = 200;
  int verdicts = 0, runs_with_two = 0;
  for (int run = 0; run < kRuns; ++run) {
    Harness h;
    CycleModel model;
    std::vector<std::vector<std::pair<int, AcquireMode>>> held(kThreads);
    std::vector<std::vector<bool>> held_trylock(kThreads);
    std::string trace;
    int run_cycles = 0;
    for (int step = 0; step < kSteps; ++step) {
      const int t = static_cast<int>(rng() % kThreads);
      if (!held[t].empty() && rng() % 3 == 0) {
        const int l = held[t].back().first;
        held[t].pop_back();
        held_trylock[t].pop_back();
        h.U(t, "L" + std::to_string(l));
        trace += "T" + std::to_string(t) + ":U" + std::to_string(l) + " ";
        continue;
      }
      const int l = static_cast<int>(rng() % kLocks);
      bool holds = false;
      for (const auto& e : held[t]) holds |= e.first == l;
      if (holds) continue;
      // Mostly exclusive, so that strong cycles are common; reads keep the type rules busy.
      const unsigned pick = rng() % 8;
      const AcquireMode mode = pick < 4 ? AcquireMode::kExclusive : static_cast<AcquireMode>(pick % 3);
      const bool trylock = rng() % 6 == 0;
      trace += "T" + std::to_string(t) + ":" + (trylock ? "try" : "") +
               std::string(AcquireModeName(mode)) + std::to_string(l) + " ";
      bool fresh_pair = false;
      const bool model_cycle = model.Acquire(held[t], held_trylock[t], l, mode, trylock, &fresh_pair);
      const std::size_t before = h.Count(FindingKind::kCircularDependency);
      h.Acq(t, "L" + std::to_string(l), mode, trylock);
      held[t].push_back({l, mode});
      held_trylock[t].push_back(trylock);
      const bool reported = h.Count(FindingKind::kCircularDependency) > before;
      if (reported) {
        ASSERT_TRUE(model_cycle) << "seed " << seed << " run " << run << " step " << step
                                 << ": reported, but no strong cycle\n" << trace << "\n"
                                 << h.AllReports();
      }
      if (fresh_pair) {
        ASSERT_TRUE(reported) << "seed " << seed << " run " << run << " step " << step
                              << ": strong cycle not reported\n" << trace << "\n"
                              << h.AllReports();
      }
      verdicts += model_cycle;
      run_cycles += reported;
    }
    runs_with_two += run_cycles >= 2;
    ASSERT_EQ(h.engine().CheckInvariants(), "") << "seed " << seed << " run " << run;
  }
  // Cycles must come early and keep coming, or the test does not exercise the order after one.
  EXPECT_GT(verdicts, kRuns);
  EXPECT_GT(runs_with_two, kRuns / 2);
}

}  // namespace
}  // namespace lockgraph::testing

namespace lockgraph::testing {
namespace {

// Same-class instances: the engine's instance-order verdicts against a brute-force closure.
TEST(Differential, InstanceOrderVerdictsMatchABruteForceModel) {
  const unsigned seed = static_cast<unsigned>(::testing::UnitTest::GetInstance()->random_seed());
  std::mt19937 rng(seed + 17);
  constexpr int kLocks = 6, kRuns = 1500, kSteps = 40;
  int cycles_found = 0;
  for (int run = 0; run < kRuns; ++run) {
    Harness h;
    for (int i = 0; i < kLocks; ++i) h.Lock("n" + std::to_string(i), "node.lock");
    bool reach[kLocks][kLocks] = {};
    std::string trace;
    for (int step = 0; step < kSteps; ++step) {
      int a = static_cast<int>(rng() % kLocks), b = static_cast<int>(rng() % kLocks);
      if (a == b) continue;
      if (a > b && rng() % 16 != 0) std::swap(a, b);  // mostly ascending, sometimes not
      const int t = static_cast<int>(rng() % 3);
      trace += std::to_string(a) + ">" + std::to_string(b) + " ";
      // Model: the edge a -> b closes a cycle iff b already reaches a.
      const bool model_cycle = reach[b][a];
      reach[a][b] = true;
      for (int k = 0; k < kLocks; ++k)
        for (int i = 0; i < kLocks; ++i)
          for (int j = 0; j < kLocks; ++j)
            if (reach[i][k] && reach[k][j]) reach[i][j] = true;
      h.L(t, "n" + std::to_string(a)).L(t, "n" + std::to_string(b));
      h.U(t, "n" + std::to_string(b)).U(t, "n" + std::to_string(a));
      ASSERT_EQ(h.Has(FindingKind::kSameClassInstanceOrder), model_cycle)
          << "seed " << seed << " run " << run << ": " << trace << "\n" << h.AllReports();
      if (model_cycle) {
        ++cycles_found;
        break;
      }
    }
  }
  EXPECT_GT(cycles_found, kRuns / 10);
  EXPECT_LT(cycles_found, kRuns);
}

TEST(SameClassPool, MillionsOfAscendingPairsThenOneInversion) {
  Harness h;
  constexpr int kLocks = 2000;
  for (int i = 0; i < kLocks; ++i) h.Lock("m" + std::to_string(i), "pool.mutex");
  std::mt19937 rng(7);
  for (int n = 0; n < 200000; ++n) {
    int a = static_cast<int>(rng() % kLocks), b = static_cast<int>(rng() % kLocks);
    if (a == b) continue;
    if (a > b) std::swap(a, b);
    const int t = n % 2;
    h.L(t, "m" + std::to_string(a)).L(t, "m" + std::to_string(b));
    h.U(t, "m" + std::to_string(b)).U(t, "m" + std::to_string(a));
  }
  EXPECT_THAT(h.Headlines(), ::testing::IsEmpty());
  h.L(0, "m1999").L(0, "m0");  // descending: reported, naming the class
  ASSERT_EQ(h.Count(FindingKind::kSameClassInstanceOrder), 1u);
  EXPECT_EQ(h.findings()[0].classes, std::vector<std::string>{"pool.mutex"});
}

}  // namespace
}  // namespace lockgraph::testing
