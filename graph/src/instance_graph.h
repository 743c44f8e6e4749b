// The order of the instances of one lock class (lockgraph's same-class extension).
//
// Nodes are instance serials (a reused address is a new serial). Like DepGraph it keeps a
// Pearce-Kelly topological order, so an edge consistent with the order (ascending array
// locking, hand-over-hand lists) costs a hash insert and no search; the first cycle breaks the
// order for good and later checks fall back to a depth-first search.
#ifndef LOCKGRAPH_GRAPH_SRC_INSTANCE_GRAPH_H_
#define LOCKGRAPH_GRAPH_SRC_INSTANCE_GRAPH_H_

#include <cstdint>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "lockgraph/types.h"

namespace lockgraph::graph_internal {

class InstanceGraph {
 public:
  // Records that instance `a` was held while `b` was acquired. Returns false when `b` already
  // reached `a` (a cycle); then `cycle` holds the locks on the existing order b -> ... -> a.
  bool Add(std::uint32_t a, LockId a_lock, std::uint32_t b, LockId b_lock,
           std::vector<LockId>* cycle);
  // Forgets a destroyed instance and its edges.
  void Remove(std::uint32_t serial);
  std::size_t node_count() const { return index_.size(); }
  std::size_t edge_count() const { return edges_.size(); }

 private:
  struct Node {
    std::uint32_t serial = 0;
    LockId lock = kNoLock;
    std::uint32_t rank = 0;
    std::uint32_t mark = 0;
    std::vector<std::uint32_t> out, in;  // node indices
  };

  std::uint32_t NodeOf(std::uint32_t serial, LockId lock);
  // Depth-first search from `from` for `to` over nodes ranked below `bound` (all nodes when the
  // order is broken); fills `parent` for the path. Returns true when `to` was reached.
  bool Reach(std::uint32_t from, std::uint32_t to, std::uint32_t bound,
             std::unordered_map<std::uint32_t, std::uint32_t>* parent,
             std::vector<std::uint32_t>* visited);
  std::uint32_t NextMark();

  std::unordered_map<std::uint32_t, std::uint32_t> index_;  // serial -> node index
  std::vector<Node> nodes_;
  std::vector<std::uint32_t> free_;
  std::unordered_set<std::uint64_t> edges_;  // (node a << 32) | node b
  std::uint32_t next_rank_ = 0;
  std::uint32_t mark_ = 0;
  bool ordered_ = true;
};

}  // namespace lockgraph::graph_internal

#endif  // LOCKGRAPH_GRAPH_SRC_INSTANCE_GRAPH_H_
