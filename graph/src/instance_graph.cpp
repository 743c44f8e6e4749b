// InstanceGraph: per-class instance order with a maintained topological order.
#include "instance_graph.h"

#include "topological_order.h"

#include <algorithm>

namespace lockgraph::graph_internal {

std::uint32_t InstanceGraph::NextMark() {
  if (++mark_ == 0) {
    for (auto& n : nodes_) n.mark = 0;
    mark_ = 1;
  }
  return mark_;
}

std::uint32_t InstanceGraph::NodeOf(std::uint32_t serial, LockId lock) {
  auto [it, inserted] = index_.try_emplace(serial, 0);
  if (!inserted) return it->second;
  std::uint32_t n;
  if (!free_.empty()) {
    n = free_.back();
    free_.pop_back();
  } else {
    n = static_cast<std::uint32_t>(nodes_.size());
    nodes_.emplace_back();
  }
  nodes_[n] = Node{serial, lock, next_rank_++, 0, {}, {}};
  it->second = n;
  return n;
}

bool InstanceGraph::Reach(std::uint32_t from, std::uint32_t to, std::uint32_t bound,
                          std::unordered_map<std::uint32_t, std::uint32_t>* parent,
                          std::vector<std::uint32_t>* visited) {
  const std::uint32_t mark = NextMark();
  std::vector<std::uint32_t> stack{from};
  nodes_[from].mark = mark;
  while (!stack.empty()) {
    const std::uint32_t v = stack.back();
    stack.pop_back();
    if (visited) visited->push_back(v);
    for (std::uint32_t w : nodes_[v].out) {
      if (nodes_[w].mark == mark) continue;
      if (ordered_ && nodes_[w].rank >= bound && w != to) continue;
      nodes_[w].mark = mark;
      if (parent) (*parent)[w] = v;
      if (w == to) return true;
      stack.push_back(w);
    }
  }
  return false;
}

bool InstanceGraph::Add(std::uint32_t a_serial, LockId a_lock, std::uint32_t b_serial,
                        LockId b_lock, std::vector<LockId>* cycle) {
  const std::uint32_t a = NodeOf(a_serial, a_lock);
  const std::uint32_t b = NodeOf(b_serial, b_lock);
  if (!edges_.insert((std::uint64_t{a} << 32) | b).second) return true;
  bool acyclic = true;
  if (!ordered_ || nodes_[a].rank > nodes_[b].rank) {
    // Pearce-Kelly: look for a -> ... from b among the nodes ranked below a.
    std::unordered_map<std::uint32_t, std::uint32_t> parent;
    std::vector<std::uint32_t> forward;
    if (Reach(b, a, nodes_[a].rank, &parent, &forward)) {
      acyclic = false;
      ordered_ = false;
      std::vector<LockId> order;
      for (std::uint32_t v = a;; v = parent[v]) {
        order.push_back(nodes_[v].lock);
        if (v == b) break;
      }
      std::reverse(order.begin(), order.end());
      *cycle = std::move(order);
    } else if (ordered_) {
      // Move the part reachable from b after the part reaching a.
      const std::uint32_t lower = nodes_[b].rank;
      const std::uint32_t mark = NextMark();
      std::vector<std::uint32_t> backward, stack{a};
      nodes_[a].mark = mark;
      while (!stack.empty()) {
        const std::uint32_t v = stack.back();
        stack.pop_back();
        backward.push_back(v);
        for (std::uint32_t w : nodes_[v].in) {
          if (nodes_[w].mark != mark && nodes_[w].rank > lower) {
            nodes_[w].mark = mark;
            stack.push_back(w);
          }
        }
      }
      ReassignRanks(backward, forward,
                    [this](std::uint32_t v) -> std::uint32_t& { return nodes_[v].rank; });
    }
  }
  nodes_[a].out.push_back(b);
  nodes_[b].in.push_back(a);
  return acyclic;
}

void InstanceGraph::Remove(std::uint32_t serial) {
  auto it = index_.find(serial);
  if (it == index_.end()) return;
  const std::uint32_t n = it->second;
  index_.erase(it);
  auto drop = [](std::vector<std::uint32_t>& list, std::uint32_t x) {
    list.erase(std::remove(list.begin(), list.end(), x), list.end());
  };
  for (std::uint32_t w : nodes_[n].out) {
    drop(nodes_[w].in, n);
    edges_.erase((std::uint64_t{n} << 32) | w);
  }
  for (std::uint32_t w : nodes_[n].in) {
    drop(nodes_[w].out, n);
    edges_.erase((std::uint64_t{w} << 32) | n);
  }
  nodes_[n] = Node{};
  free_.push_back(n);
}

}  // namespace lockgraph::graph_internal
