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

// A dependency's (from, to) key to its index: open addressing with linear probing in one flat
// array (a look-up is one probe sequence where std::unordered_map chased a bucket and a node,
// and an insert allocates nothing but the occasional doubling). At most half full.
class EdgeIndex {
 public:
  static constexpr std::uint32_t kAbsent = 0xffffffffu;
  std::uint32_t Find(std::uint64_t key) const {
    if (slots_.empty()) return kAbsent;
    for (std::size_t i = Home(key);; i = (i + 1) & (slots_.size() - 1)) {
      if (slots_[i].key == key) return slots_[i].value;
      if (slots_[i].key == kEmpty) return kAbsent;
    }
  }
  // Inserts key -> value unless the key is present; returns the key's value and whether it was
  // inserted.
  std::pair<std::uint32_t, bool> Insert(std::uint64_t key, std::uint32_t value) {
    if (2 * (size_ + 1) > slots_.size()) Grow();
    for (std::size_t i = Home(key);; i = (i + 1) & (slots_.size() - 1)) {
      if (slots_[i].key == key) return {slots_[i].value, false};
      if (slots_[i].key == kEmpty) {
        slots_[i] = Slot{key, value};
        ++size_;
        return {value, true};
      }
    }
  }
  std::size_t size() const { return size_; }
  std::size_t capacity() const { return slots_.size(); }

 private:
  static constexpr std::uint64_t kEmpty = ~std::uint64_t{0};  // (kNoClass, kNoClass)
  struct Slot {
    std::uint64_t key = kEmpty;
    std::uint32_t value = 0;
  };
  std::size_t Home(std::uint64_t key) const {
    return static_cast<std::size_t>((key * 0x9e3779b97f4a7c15ull) >> shift_);
  }
  void Grow() {
    std::vector<Slot> old(slots_.empty() ? 64 : 2 * slots_.size());
    old.swap(slots_);
    shift_ = 64 - static_cast<unsigned>(__builtin_ctzll(slots_.size()));
    size_ = 0;
    for (const Slot& s : old) {
      if (s.key != kEmpty) Insert(s.key, s.value);
    }
  }

  std::vector<Slot> slots_;
  std::size_t size_ = 0;
  unsigned shift_ = 64;
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
  // `limit`: a forward search that can only match states of class `limit` (or of classes ordered
  // no later); the walk then skips every class ordered after it.
  std::optional<std::vector<PathStep>> Search(Direction dir, State root,
                                              const std::function<bool(State)>& match,
                                              ClassId limit = kNoClass) const;
  void VisitAll(Direction dir, State root, const std::function<void(State)>& visit) const;

  // The classes are kept in a topological order of their strongly connected components:
  // label(a) <= label(b) for every dependency a -> b, with equality exactly when a and b lie on
  // a common cycle (a component's classes share one label). So a path a -> ... -> b can only
  // visit classes labelled from label(a) to label(b), and none exists when label(a) > label(b).
  // Labels are 64-bit order-maintenance labels on a list of components with gaps between
  // them, so a dependency against the order moves only the components that must move (the
  // two-way ordered search of Haeupler, Kavitha, Mathew, Sen and Tarjan), not Pearce-Kelly's
  // whole affected region. Recording a cycle keeps the order (its classes become one
  // component).

  // False only when no path from -> ... -> to can exist (from is ordered after to).
  bool MayReach(ClassId from, ClassId to) const;
  // Whether a path to -> ... -> from exists, i.e. adding the dependency from -> to closes a
  // cycle (dependency types ignored). Decided by the labels where they can, else by the
  // two-way search that re-ordering for from -> to needs anyway (forward from `to` and
  // backward from `from`, each in label order, until they meet or cross); the search is kept
  // for the Add() of that dependency if the graph does not change in between. O(1), or the
  // classes the two searches pop and their dependencies (on the 10,000-lock pool a handful).
  bool ClosesCycle(ClassId from, ClassId to);
  // The label of `cls`'s component (test and diagnostics).
  std::uint64_t LabelOf(ClassId cls) const { return label_[cls]; }

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

  // The order. A heap entry of the two-way search: a class and its label.
  struct Ordered {
    std::uint64_t label;
    ClassId cls;
  };
  static constexpr ClassId kNoNode = 0xffffffffu;
  // Appended components are this far apart; a range is re-labelled when a gap is used up.
  static constexpr std::uint64_t kLabelGap = std::uint64_t{1} << 32;
  void NextMarkGeneration();
  // The two-way search for from -> to against the order (label(from) > label(to)): pops the
  // classes reachable from `to` in ascending label order into forward_ and those reaching
  // `from` in descending order into backward_, alternately, until the next forward label
  // exceeds the next backward one (then every class reachable from `to` below the forward
  // frontier and every class reaching `from` above the backward frontier is known) or the two
  // meet (a cycle). Leaves the frontiers' labels in cut_low_/cut_high_. Returns whether the
  // dependency closes a cycle.
  bool TwoWaySearch(ClassId from, ClassId to);
  // After a search without cycle: moves the popped forward classes at or below a cut and the
  // popped backward ones above it to the cut, backward ones first (the cut is chosen between
  // the frontiers so that fewest components move).
  void MoveToCut();
  // A dependency from -> to that closes a cycle: the classes on it become one component, placed
  // with the classes that must stay on either side of it (full walks over the label window).
  void MergeCycle(ClassId from, ClassId to);
  // Takes the components in block_ (representatives, in their new order) out of the list and
  // puts them back after `after` (kNoNode: at the head), with fresh labels.
  void Relink(ClassId after);
  // Gives the `count` consecutive components first..last labels between their neighbours',
  // widening the range over neighbours until its labels are sparse enough.
  void Spread(ClassId first, ClassId last, std::size_t count);
  void SetLabel(ClassId rep, std::uint64_t label);
  void Unlink(ClassId rep);

  ClassGraph graph_;
  std::vector<Dependency> deps_;
  std::vector<std::uint64_t> label_;  // per class; one label per strongly connected component
  std::vector<ClassId> rep_;          // per class: its component's representative
  std::vector<ClassId> next_, prev_;  // per representative: the order list
  ClassId head_ = kNoNode, tail_ = kNoNode;
  // The classes of each component of two or more, by representative.
  std::unordered_map<ClassId, std::vector<ClassId>> members_;
  // Search scratch, reused: generation-stamped marks (discovered forward / backward, moved),
  // the two heaps, the popped classes, the DFS stack of MergeCycle, the block being moved.
  std::vector<std::uint32_t> forward_mark_, backward_mark_, moved_mark_;
  std::uint32_t mark_generation_ = 0;
  std::vector<Ordered> forward_heap_, backward_heap_;
  std::vector<ClassId> forward_, backward_, stack_, block_;
  std::uint64_t cut_low_ = 0, cut_high_ = 0;
  // The last ClosesCycle() search, valid for Add(probe_from_ -> probe_to_) until the graph
  // changes.
  ClassId probe_from_ = kNoClass, probe_to_ = kNoClass;
  bool probe_cycle_ = false;
  EdgeIndex index_;
  // Per-search scratch, reused (searches run under the engine's graph lock).
  mutable std::vector<std::uint32_t> stamp_;
  mutable std::vector<std::uint8_t> color_;
  mutable std::vector<PathStep> pred_;
  mutable std::uint32_t generation_ = 0;
};

}  // namespace lockgraph::graph_internal

#endif  // LOCKGRAPH_GRAPH_SRC_DEP_GRAPH_H_
