// The class dependency graph on Boost.Graph, and lockdep's strong-path searches over it.
//
// A dependency A -> B carries lockdep's type bits (EN/ER/SN/SR: how A was held, how B was
// acquired). A path is strong when it never has an -(*R)-> edge directly followed by an -(S*)->
// edge. Searches run Boost's breadth_first_visit on StrongPathView, an implicit graph whose
// vertices are (class, flag) states:
//  - forward:  flag = "arrived only through -(*R)->", so the next edge must be -(E*)->;
//  - backward: flag = "leaves only through -(S*)->", so the previous edge must be -(*N)->.
// State BFS is exact for strong walks (lockdep marks classes, not states, and can miss some).
#ifndef LOCKGRAPH_GRAPH_SRC_DEP_GRAPH_H_
#define LOCKGRAPH_GRAPH_SRC_DEP_GRAPH_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <unordered_map>
#include <vector>

#include <boost/graph/adjacency_list.hpp>

#include "lockgraph/engine.h"

namespace lockgraph::graph_internal {

struct DepRef {
  std::uint32_t index = 0;
};

using ClassGraph = boost::adjacency_list<boost::vecS, boost::vecS, boost::bidirectionalS,
                                         boost::no_property, DepRef, boost::no_property,
                                         boost::vecS>;

struct Dependency {
  ClassId from = kNoClass;
  ClassId to = kNoClass;
  std::uint8_t types = 0;
  StackId stack = kNoStack;
  std::uint64_t ip = 0;
  RunId run = 0;
  ThreadKey thread = 0;
};

// A state of the strong-path search: 2 * class + flag.
using State = std::uint32_t;
inline State MakeState(ClassId c, bool flag) { return (c << 1) | (flag ? 1u : 0u); }
inline ClassId StateClass(State s) { return s >> 1; }
inline bool StateFlag(State s) { return s & 1u; }

enum class Direction { kForward, kBackward };

// One step of a search result: the dependency used and the state it reached.
struct PathStep {
  std::uint32_t dep = 0;
  State state = 0;
};

class DepGraph {
 public:
  DepGraph() = default;

  std::size_t class_count() const { return boost::num_vertices(graph_); }
  std::size_t dependency_count() const { return deps_.size(); }
  const std::vector<Dependency>& dependencies() const { return deps_; }
  const ClassGraph& graph() const { return graph_; }

  // Makes sure vertices 0..cls exist.
  void EnsureClass(ClassId cls);
  // The dependency from -> to, or nullptr.
  const Dependency* Find(ClassId from, ClassId to) const;
  // Adds the dependency or ORs `types` into the existing one; returns its index.
  std::uint32_t Add(const Dependency& dep);

  // Breadth-first search over strong walks from `root`. `match(state)` is tested on every
  // state in BFS order, the root included; the first match ends the search and its path
  // (root excluded, in walk order) is returned. `visit(state)`, if given, sees every state.
  // `limit`: a forward search that can only match states of class `limit` (or of classes ranked
  // no higher); while the graph is ordered the walk then skips every class ranked above it.
  std::optional<std::vector<PathStep>> Search(Direction dir, State root,
                                              const std::function<bool(State)>& match,
                                              ClassId limit = kNoClass) const;
  void VisitAll(Direction dir, State root, const std::function<void(State)>& visit) const;

  // The classes are kept in a topological order of their strongly connected components
  // (Pearce-Kelly, as abseil's GraphCycles does, extended to merge the classes of a cycle into
  // one rank): rank(a) <= rank(b) for every dependency a -> b, with equality exactly when a and
  // b lie on a common cycle. So a path a -> ... -> b can only visit classes ranked from rank(a)
  // to rank(b), and none exists when rank(a) > rank(b). Recording a cycle keeps the order.

  // False only when no path from -> ... -> to can exist (from is ranked after to).
  bool MayReach(ClassId from, ClassId to) const;
  // Whether a path to -> ... -> from exists, i.e. adding the dependency from -> to closes a
  // cycle (dependency types ignored). Decided by the ranks where they can, else by the forward
  // walk from `to` that re-ranking for from -> to needs anyway; the walk is kept for the Add()
  // of that dependency if the graph does not change in between. O(1), or the classes reachable
  // from `to` ranked below `from`, and their dependencies.
  bool ClosesCycle(ClassId from, ClassId to);

  // Strongly connected components with more than one class.
  std::vector<std::vector<ClassId>> Cycles() const;

  // Test only: graph, edge index and dependency list agree.
  std::string CheckInvariants() const;

  std::size_t ApproximateBytes() const;

 private:
  static std::uint64_t EdgeKey(ClassId from, ClassId to) {
    return (std::uint64_t{from} << 32) | to;
  }

  // Sizes the per-search scratch for every state and starts a new colour generation.
  void StartSearch() const;
  // Pearce-Kelly's walks for a dependency from -> to against the order, into forward_ (the
  // classes reachable from `to` ranked below `from`) and backward_ (those reaching `from`
  // ranked above `to`), marked with mark_generation_. WalkForward returns whether it met
  // `from`'s component, i.e. the dependency closes a cycle.
  bool WalkForward(ClassId from, ClassId to);
  void WalkBackward(ClassId from, std::uint32_t lower);
  // Keeps rank_ a topological order of the components after adding from -> to; `walked`:
  // forward_ already holds WalkForward(from, to).
  void Reorder(ClassId from, ClassId to, bool walked);
  void NextMarkGeneration();

  ClassGraph graph_;
  std::vector<Dependency> deps_;
  std::vector<std::uint32_t> rank_;  // per class; one rank per strongly connected component
  std::uint32_t next_rank_ = 0;
  // Pearce-Kelly scratch, reused: generation-stamped marks of the two walks, their results,
  // the DFS stack, sort keys (rank << 32 | class) and the pooled ranks.
  std::vector<std::uint32_t> forward_mark_, backward_mark_;
  std::uint32_t mark_generation_ = 0;
  std::vector<ClassId> stack_, forward_, backward_, merged_;
  std::vector<std::uint64_t> forward_keys_, backward_keys_;
  std::vector<std::uint32_t> pool_;
  // The last ClosesCycle() walk, valid for Add(probe_from_ -> probe_to_) until the graph changes.
  ClassId probe_from_ = kNoClass, probe_to_ = kNoClass;
  bool probe_cycle_ = false;
  std::unordered_map<std::uint64_t, std::uint32_t> index_;
  // Per-search scratch, reused (searches run under the engine's graph lock).
  mutable std::vector<std::uint32_t> stamp_;
  mutable std::vector<std::uint8_t> color_;
  mutable std::vector<PathStep> pred_;
  mutable std::uint32_t generation_ = 0;
};

}  // namespace lockgraph::graph_internal

#endif  // LOCKGRAPH_GRAPH_SRC_DEP_GRAPH_H_
