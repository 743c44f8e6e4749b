// Pearce-Kelly's last step for the per-class instance graphs (the class graph keeps its order
// differently: order-maintenance labels and a two-way search, in dep_graph.cpp).
#ifndef LOCKGRAPH_GRAPH_SRC_TOPOLOGICAL_ORDER_H_
#define LOCKGRAPH_GRAPH_SRC_TOPOLOGICAL_ORDER_H_

#include <algorithm>
#include <cstdint>
#include <vector>

namespace lockgraph::graph_internal {

// After adding an edge a -> b against the order: `backward` are the nodes reaching a (ranked
// above b), `forward` the nodes reachable from b (ranked below a). Their ranks are pooled and
// handed out again, backward ones first, each group keeping its relative order.
template <typename Node, typename RankOf>
void ReassignRanks(std::vector<Node>& backward, std::vector<Node>& forward, RankOf rank_of) {
  auto by_rank = [&](const Node& x, const Node& y) { return rank_of(x) < rank_of(y); };
  std::sort(forward.begin(), forward.end(), by_rank);
  std::sort(backward.begin(), backward.end(), by_rank);
  std::vector<std::uint32_t> ranks;
  ranks.reserve(backward.size() + forward.size());
  for (const Node& v : backward) ranks.push_back(rank_of(v));
  for (const Node& v : forward) ranks.push_back(rank_of(v));
  std::sort(ranks.begin(), ranks.end());
  std::size_t i = 0;
  for (const Node& v : backward) rank_of(v) = ranks[i++];
  for (const Node& v : forward) rank_of(v) = ranks[i++];
}

}  // namespace lockgraph::graph_internal

#endif  // LOCKGRAPH_GRAPH_SRC_TOPOLOGICAL_ORDER_H_
