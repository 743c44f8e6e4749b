// The class graph's topological order of components (graph/src/dep_graph.h) against brute force:
// whether a new dependency closes a cycle, the labels against Boost's strongly connected
// components, and the label-bounded search against the unbounded one, over random graphs large
// enough for the two-way search's cuts and the label spreading to matter, and with cycles
// merging and growing throughout.
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "dep_graph.h"

namespace lockgraph::graph_internal {
namespace {

// Adds the dependency from -> to with the given type bits.
void AddDep(DepGraph& g, ClassId from, ClassId to, std::uint8_t types = kDepEN) {
  Dependency d;
  d.from = from;
  d.to = to;
  d.types = types;
  g.Add(d);
}

// Plain reachability by breadth-first search over the dependencies.
bool Reaches(const DepGraph& g, ClassId from, ClassId to) {
  if (from >= g.class_count() || to >= g.class_count()) return false;
  std::vector<std::vector<ClassId>> out(g.class_count());
  for (const auto& d : g.dependencies()) out[d.from].push_back(d.to);
  std::vector<bool> seen(g.class_count(), false);
  std::vector<ClassId> queue{from};
  seen[from] = true;
  for (std::size_t q = 0; q < queue.size(); ++q) {
    if (queue[q] == to) return true;
    for (const ClassId w : out[queue[q]]) {
      if (!seen[w]) {
        seen[w] = true;
        queue.push_back(w);
      }
    }
  }
  return false;
}

TEST(DepGraphOrder, CycleVerdictsRanksAndBoundedSearchesMatchBruteForce) {
  const unsigned seed = static_cast<unsigned>(::testing::UnitTest::GetInstance()->random_seed());
  std::mt19937 rng(seed + 11);
  constexpr int kGraphs = 40, kClasses = 60, kEdges = 240;
  const std::uint8_t kTypes[] = {kDepEN, kDepER, kDepSN, kDepSR};
  int closing = 0;
  for (int g = 0; g < kGraphs; ++g) {
    DepGraph graph;
    // Classes first seen in random order; dependencies mostly along a hidden order (as real
    // programs), sometimes against it, so components form, grow and merge.
    std::vector<ClassId> hidden(kClasses);
    for (int i = 0; i < kClasses; ++i) hidden[i] = static_cast<ClassId>(i);
    std::shuffle(hidden.begin(), hidden.end(), rng);
    const unsigned against = 1 + rng() % 24;  // 1 in `against` dependencies goes backwards
    for (int e = 0; e < kEdges; ++e) {
      int a = static_cast<int>(rng() % kClasses), b = static_cast<int>(rng() % kClasses);
      if (a == b) continue;
      if ((a > b) != (rng() % against == 0)) std::swap(a, b);
      const ClassId from = hidden[a], to = hidden[b];
      const bool expected = Reaches(graph, to, from);
      ASSERT_EQ(graph.ClosesCycle(from, to), expected)
          << "seed " << seed << " graph " << g << " dependency " << e;
      if (expected) ++closing;
      // A strong path back, searched with and without the rank bound: same verdict, and BFS
      // finds a shortest walk either way.
      const State root = MakeState(to, rng() % 2 == 0);
      auto match = [&](State s) { return StateClass(s) == from; };
      const auto bounded = graph.Search(Direction::kForward, root, match, from);
      const auto unbounded = graph.Search(Direction::kForward, root, match);
      ASSERT_EQ(bounded.has_value(), unbounded.has_value())
          << "seed " << seed << " graph " << g << " dependency " << e;
      if (bounded) ASSERT_EQ(bounded->size(), unbounded->size());
      AddDep(graph, from, to, kTypes[rng() % 4]);
      ASSERT_EQ(graph.CheckInvariants(), "")
          << "seed " << seed << " graph " << g << " dependency " << e;
    }
  }
  // Both verdicts, many times.
  EXPECT_GT(closing, kGraphs * 5);
  EXPECT_LT(closing, kGraphs * kEdges / 2);
}

// A walk kept by ClosesCycle() is reused only for its own dependency: another dependency added
// in between must not be re-ranked from it.
TEST(DepGraphOrder, AWalkIsNotReusedAfterTheGraphChanged) {
  DepGraph graph;
  auto add = [&](ClassId from, ClassId to) { AddDep(graph, from, to); };
  add(3, 2);  // against the initial order: 2 must move after 3
  add(2, 1);
  ASSERT_EQ(graph.CheckInvariants(), "");
  EXPECT_FALSE(graph.ClosesCycle(1, 0));  // walks from 0; kept for 1 -> 0
  add(0, 3);                              // changes what that walk saw
  add(1, 0);                              // closes 0 -> 3 -> 2 -> 1 -> 0
  EXPECT_EQ(graph.CheckInvariants(), "");
  EXPECT_TRUE(graph.MayReach(2, 0));  // one component now
  EXPECT_TRUE(graph.MayReach(0, 2));
}

// Many classes, dependencies mostly along a hidden order that first sight does not follow (the
// shim's 10,000-lock pool in small), a few against it; Add() sometimes without ClosesCycle(),
// sometimes after ClosesCycle() of another pair: every verdict against plain reachability, the
// order's invariants (labels, components, the order list) throughout.
TEST(DepGraphOrder, ManyDependenciesAgainstFirstSightStayExact) {
  const unsigned seed = static_cast<unsigned>(::testing::UnitTest::GetInstance()->random_seed());
  std::mt19937 rng(seed + 23);
  constexpr int kGraphs = 6, kClasses = 400, kEdges = 3000, kSpan = 12;
  int closing = 0, moved_against = 0;
  for (int g = 0; g < kGraphs; ++g) {
    DepGraph graph;
    std::vector<ClassId> class_of(kClasses, kNoClass);
    ClassId next_class = 0;
    auto seen = [&](int i) {
      if (class_of[i] == kNoClass) class_of[i] = next_class++;
      return class_of[i];
    };
    const unsigned against = g == 0 ? 0 : 50 + rng() % 400;  // graph 0: no cycle at all
    for (int e = 0; e < kEdges; ++e) {
      int a = static_cast<int>(rng() % (kClasses - kSpan));
      int b = a + 1 + static_cast<int>(rng() % kSpan);
      if (against && rng() % against == 0) std::swap(a, b);
      const ClassId from = seen(a), to = seen(b);
      if (from >= graph.class_count() || to >= graph.class_count() ||
          graph.LabelOf(from) > graph.LabelOf(to)) {
        ++moved_against;
      }
      const bool expected = Reaches(graph, to, from);
      switch (rng() % 3) {
        case 0:
          break;  // Add() searches by itself
        case 1:
          ASSERT_EQ(graph.ClosesCycle(from, to), expected)
              << "seed " << seed << " graph " << g << " dependency " << e;
          break;
        default: {  // a search for another pair first, then the real one
          const ClassId x = seen(static_cast<int>(rng() % kClasses));
          const ClassId y = seen(static_cast<int>(rng() % kClasses));
          if (x != y) {
            ASSERT_EQ(graph.ClosesCycle(x, y), Reaches(graph, y, x))
                << "seed " << seed << " graph " << g << " dependency " << e;
          }
          ASSERT_EQ(graph.ClosesCycle(from, to), expected)
              << "seed " << seed << " graph " << g << " dependency " << e;
        }
      }
      if (expected) ++closing;
      AddDep(graph, from, to);
      if (e % 97 == 0 || expected) {
        ASSERT_EQ(graph.CheckInvariants(), "")
            << "seed " << seed << " graph " << g << " dependency " << e;
      }
    }
    ASSERT_EQ(graph.CheckInvariants(), "") << "seed " << seed << " graph " << g;
    if (g == 0) {
      EXPECT_TRUE(graph.Cycles().empty());
    }
  }
  EXPECT_GT(closing, 20);
  EXPECT_GT(moved_against, kGraphs * kEdges / 20);
}

// Dependencies that all go against the order at one place wear the gap between two labels down
// to nothing: the order must spread a range of labels and stay exact.
TEST(DepGraphOrder, LabelsAreSpreadWhenAGapIsUsedUp) {
  DepGraph graph;
  auto add = [&](ClassId from, ClassId to) { AddDep(graph, from, to); };
  // Each new class c goes between 0 and the class after it: always into the gap after 0.
  constexpr ClassId kInner = 300;
  add(0, 1);
  for (ClassId c = 2; c < kInner; ++c) {
    add(0, c);
    add(c, 1);
    if (c > 2) add(c, c - 1);  // c also before the previous one
    ASSERT_EQ(graph.CheckInvariants(), "") << "class " << c;
  }
  // Each new class c before the head: always into the gap below the first label.
  for (ClassId c = kInner; c < 2 * kInner; ++c) {
    add(c, c - 1);
    ASSERT_EQ(graph.CheckInvariants(), "") << "class " << c;
  }
  for (ClassId c = 2; c < kInner; ++c) {
    EXPECT_TRUE(graph.MayReach(0, c));
    EXPECT_TRUE(graph.MayReach(c, 1));
    EXPECT_FALSE(graph.ClosesCycle(c, 1));
    EXPECT_TRUE(graph.ClosesCycle(1, c));
  }
  for (ClassId c = kInner; c < 2 * kInner; ++c) {
    EXPECT_TRUE(graph.MayReach(c, 0));  // ordered before everything
    EXPECT_FALSE(graph.ClosesCycle(c, c - 1));
    EXPECT_TRUE(graph.ClosesCycle(c - 1, c));
  }
  EXPECT_TRUE(graph.Cycles().empty());
}

}  // namespace
}  // namespace lockgraph::graph_internal
