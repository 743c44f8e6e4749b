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

  // False only when no path from -> ... -> to can exist: the graph is still ordered by the
  // maintained topological order (Pearce-Kelly, as abseil's GraphCycles does) and `from` comes
  // after `to`. An edge that closes a cycle breaks the order for good; then this is always true
  // and every check falls back to the search.
  bool MayReach(ClassId from, ClassId to) const;
  bool ordered() const { return unordered_edges_ == 0; }

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
  // Keeps rank_ a topological order after adding from -> to, or counts the edge as unordered.
  void Reorder(ClassId from, ClassId to);

  ClassGraph graph_;
  std::vector<Dependency> deps_;
  std::vector<std::uint32_t> rank_;        // topological rank per class
  std::uint32_t next_rank_ = 0;
  std::size_t unordered_edges_ = 0;
  std::vector<std::uint32_t> visit_mark_;  // Reorder's visited marks, generation-stamped
  std::uint32_t visit_generation_ = 0;
  std::unordered_map<std::uint64_t, std::uint32_t> index_;
  // Per-search scratch, reused (searches run under the engine's graph lock).
  mutable std::vector<std::uint32_t> stamp_;
  mutable std::vector<std::uint8_t> color_;
  mutable std::vector<PathStep> pred_;
  mutable std::uint32_t generation_ = 0;
};

}  // namespace lockgraph::graph_internal

#endif  // LOCKGRAPH_GRAPH_SRC_DEP_GRAPH_H_
