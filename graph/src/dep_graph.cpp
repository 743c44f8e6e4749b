// DepGraph: the Boost.Graph class graph and the strong-path view its BFS searches run on.
#include "dep_graph.h"

#include <boost/graph/breadth_first_search.hpp>
#include <boost/graph/graph_traits.hpp>
#include <boost/graph/strong_components.hpp>
#include <boost/iterator/iterator_facade.hpp>
#include <boost/pending/queue.hpp>
#include <boost/property_map/property_map.hpp>

#include <algorithm>
#include <string>

namespace lockgraph::graph_internal {

namespace {

constexpr std::uint8_t kDepStarR = kDepER | kDepSR;  // acquirer is a recursive reader
constexpr std::uint8_t kDepStarN = kDepEN | kDepSN;  // acquirer is non-recursive
constexpr std::uint8_t kDepEStar = kDepEN | kDepER;  // holder held it exclusively
constexpr std::uint8_t kDepSStar = kDepSN | kDepSR;  // holder held it shared

// The implicit graph of search states; models Boost's IncidenceGraph.
struct StrongPathView {
  const ClassGraph* graph;
  const std::vector<Dependency>* deps;
  Direction dir;
  // When set, forward steps into classes ranked above `rank_limit` are left out (see Search).
  const std::vector<std::uint32_t>* rank = nullptr;
  std::uint32_t rank_limit = 0;
};

struct StateEdge {
  State source = 0;
  State target = 0;
  std::uint32_t dep = 0;
  bool operator==(const StateEdge&) const = default;
};

// Applies one dependency to a state: the types the walk may use and the state reached.
// Returns false when the strong-path rule forbids the step.
bool Step(Direction dir, bool flag, std::uint8_t types, bool* next_flag) {
  if (dir == Direction::kForward) {
    if (flag) types &= kDepEStar;  // after -(*R)->, only -(E*)-> keeps the path strong
    if (!types) return false;
    *next_flag = !(types & kDepStarN);
  } else {
    if (flag) types &= kDepStarN;  // before -(S*)->, only -(*N)-> keeps the path strong
    if (!types) return false;
    *next_flag = !(types & kDepEStar);
  }
  return true;
}

class StateEdgeIterator
    : public boost::iterator_facade<StateEdgeIterator, StateEdge, boost::forward_traversal_tag,
                                    StateEdge> {
 public:
  using OutIter = boost::graph_traits<ClassGraph>::out_edge_iterator;
  using InIter = boost::graph_traits<ClassGraph>::in_edge_iterator;

  StateEdgeIterator() = default;
  StateEdgeIterator(const StrongPathView* view, State source, bool at_end)
      : view_(view), source_(source) {
    const ClassId cls = StateClass(source);
    if (view->dir == Direction::kForward) {
      auto [b, e] = boost::out_edges(cls, *view->graph);
      out_ = at_end ? e : b;
      out_end_ = e;
    } else {
      auto [b, e] = boost::in_edges(cls, *view->graph);
      in_ = at_end ? e : b;
      in_end_ = e;
    }
    SkipForbidden();
  }

 private:
  friend class boost::iterator_core_access;

  bool AtEnd() const {
    return view_->dir == Direction::kForward ? out_ == out_end_ : in_ == in_end_;
  }
  std::uint32_t CurrentDep() const {
    return view_->dir == Direction::kForward ? (*view_->graph)[*out_].index
                                             : (*view_->graph)[*in_].index;
  }
  void Advance() {
    if (view_->dir == Direction::kForward) {
      ++out_;
    } else {
      ++in_;
    }
  }
  void SkipForbidden() {
    while (!AtEnd()) {
      bool next_flag = false;
      const Dependency& d = (*view_->deps)[CurrentDep()];
      if (Step(view_->dir, StateFlag(source_), d.types, &next_flag) &&
          (view_->rank == nullptr || (*view_->rank)[d.to] <= view_->rank_limit)) {
        return;
      }
      Advance();
    }
  }
  void increment() {
    Advance();
    SkipForbidden();
  }
  bool equal(const StateEdgeIterator& other) const {
    return view_->dir == Direction::kForward ? out_ == other.out_ : in_ == other.in_;
  }
  StateEdge dereference() const {
    const std::uint32_t dep_index = CurrentDep();
    const Dependency& dep = (*view_->deps)[dep_index];
    bool next_flag = false;
    Step(view_->dir, StateFlag(source_), dep.types, &next_flag);
    const ClassId other = view_->dir == Direction::kForward ? dep.to : dep.from;
    return StateEdge{source_, MakeState(other, next_flag), dep_index};
  }

  const StrongPathView* view_ = nullptr;
  State source_ = 0;
  OutIter out_, out_end_;
  InIter in_, in_end_;
};

}  // namespace
}  // namespace lockgraph::graph_internal

namespace boost {
template <>
struct graph_traits<lockgraph::graph_internal::StrongPathView> {
  using vertex_descriptor = lockgraph::graph_internal::State;
  using edge_descriptor = lockgraph::graph_internal::StateEdge;
  using out_edge_iterator = lockgraph::graph_internal::StateEdgeIterator;
  using directed_category = directed_tag;
  using edge_parallel_category = allow_parallel_edge_tag;
  using traversal_category = incidence_graph_tag;
  using degree_size_type = std::size_t;
  using vertices_size_type = std::size_t;
  using edges_size_type = std::size_t;
  static vertex_descriptor null_vertex() { return 0xffffffffu; }
};
}  // namespace boost

namespace lockgraph::graph_internal {
namespace {

std::pair<StateEdgeIterator, StateEdgeIterator> out_edges(State s, const StrongPathView& g) {
  return {StateEdgeIterator(&g, s, false), StateEdgeIterator(&g, s, true)};
}
State source(const StateEdge& e, const StrongPathView&) { return e.source; }
State target(const StateEdge& e, const StrongPathView&) { return e.target; }
std::size_t out_degree(State s, const StrongPathView& g) {
  auto [b, e] = out_edges(s, g);
  return static_cast<std::size_t>(std::distance(b, e));
}

// Colour map whose entries are reset in O(1) per search by a generation stamp.
struct StampedColorMap {
  std::vector<std::uint32_t>* stamp;
  std::vector<std::uint8_t>* color;
  std::uint32_t generation;
};

}  // namespace
}  // namespace lockgraph::graph_internal

namespace boost {
template <>
struct property_traits<lockgraph::graph_internal::StampedColorMap> {
  using key_type = lockgraph::graph_internal::State;
  using value_type = default_color_type;
  using reference = default_color_type;
  using category = read_write_property_map_tag;
};
}  // namespace boost

namespace lockgraph::graph_internal {
namespace {

boost::default_color_type get(const StampedColorMap& m, State s) {
  if ((*m.stamp)[s] != m.generation) return boost::white_color;
  return static_cast<boost::default_color_type>((*m.color)[s]);
}
void put(const StampedColorMap& m, State s, boost::default_color_type c) {
  (*m.stamp)[s] = m.generation;
  (*m.color)[s] = static_cast<std::uint8_t>(c);
}

struct SearchStop {
  State found;
};

// Records each state's BFS predecessor; stops the search on the first matching state.
class MatchVisitor : public boost::default_bfs_visitor {
 public:
  MatchVisitor(const std::function<bool(State)>* match, const std::function<void(State)>* visit,
               std::vector<PathStep>* pred)
      : match_(match), visit_(visit), pred_(pred) {}

  void tree_edge(const StateEdge& e, const StrongPathView&) const {
    (*pred_)[e.target] = PathStep{e.dep, e.source};
  }
  void examine_vertex(State s, const StrongPathView&) const {
    if (visit_) (*visit_)(s);
    if (match_ && (*match_)(s)) throw SearchStop{s};
  }

 private:
  const std::function<bool(State)>* match_;
  const std::function<void(State)>* visit_;
  std::vector<PathStep>* pred_;
};

}  // namespace

void DepGraph::EnsureClass(ClassId cls) {
  while (boost::num_vertices(graph_) <= cls) {
    boost::add_vertex(graph_);
    rank_.push_back(next_rank_++);
    forward_mark_.push_back(0);
    backward_mark_.push_back(0);
  }
}

bool DepGraph::MayReach(ClassId from, ClassId to) const {
  if (from >= rank_.size() || to >= rank_.size()) return from == to;
  return rank_[from] <= rank_[to];
}

void DepGraph::NextMarkGeneration() {
  if (++mark_generation_ == 0) {  // wrapped: clear the marks once every 4 billion walks
    std::fill(forward_mark_.begin(), forward_mark_.end(), 0);
    std::fill(backward_mark_.begin(), backward_mark_.end(), 0);
    mark_generation_ = 1;
  }
}

bool DepGraph::ClosesCycle(ClassId from, ClassId to) {
  if (from >= rank_.size() || to >= rank_.size()) return false;  // no dependency yet
  if (rank_[from] < rank_[to]) return false;
  if (rank_[from] == rank_[to]) return true;  // one strongly connected component
  return WalkForward(from, to);
}

bool DepGraph::WalkForward(ClassId from, ClassId to) {
  // Every class on a path to -> ... -> from ranks from rank(to) to rank(from), so the walk never
  // enters a class ranked at or above rank(from); meeting one ranked equal is meeting from's
  // component, i.e. a path back. The walk goes on past that: Reorder needs all of it.
  const std::uint32_t upper = rank_[from];
  NextMarkGeneration();
  const std::uint32_t gen = mark_generation_;
  bool cycle = false;
  forward_.clear();
  stack_.clear();
  stack_.push_back(to);
  forward_mark_[to] = gen;
  while (!stack_.empty()) {
    const ClassId v = stack_.back();
    stack_.pop_back();
    forward_.push_back(v);
    for (auto [e, end] = boost::out_edges(v, graph_); e != end; ++e) {
      const auto w = static_cast<ClassId>(boost::target(*e, graph_));
      const std::uint32_t r = rank_[w];
      if (r >= upper) {
        cycle |= r == upper;
        continue;
      }
      if (forward_mark_[w] != gen) {
        forward_mark_[w] = gen;
        stack_.push_back(w);
      }
    }
  }
  probe_from_ = from;
  probe_to_ = to;
  probe_cycle_ = cycle;
  return cycle;
}

void DepGraph::WalkBackward(ClassId from, std::uint32_t lower) {
  const std::uint32_t gen = mark_generation_;
  backward_.clear();
  stack_.clear();
  stack_.push_back(from);
  backward_mark_[from] = gen;
  while (!stack_.empty()) {
    const ClassId v = stack_.back();
    stack_.pop_back();
    backward_.push_back(v);
    for (auto [e, end] = boost::in_edges(v, graph_); e != end; ++e) {
      const auto w = static_cast<ClassId>(boost::source(*e, graph_));
      if (backward_mark_[w] != gen && rank_[w] > lower) {
        backward_mark_[w] = gen;
        stack_.push_back(w);
      }
    }
  }
}

void DepGraph::Reorder(ClassId from, ClassId to, bool walked) {
  const std::uint32_t lower = rank_[to], upper = rank_[from];
  if (upper <= lower) return;  // in order, or within one component
  // Pearce-Kelly: F, the classes reachable from `to` ranked below `from`, must move after B,
  // the classes reaching `from` ranked above `to`; their ranks are pooled and handed out again.
  // A component lies wholly in F or wholly in B (its classes share a rank and reach each other).
  // If the dependency closes a cycle, the classes on it, C = (F and B) plus the components of
  // `from` and `to`, become one component: B - C takes the lowest pooled ranks, F - C the
  // highest, C one rank between (the pool has a rank to spare: C held at least two). Each
  // group keeps its relative order; B's classes only move down and F's only up, which is what
  // keeps every dependency into or out of the region in order.
  const bool cycle = walked ? probe_cycle_ : WalkForward(from, to);
  WalkBackward(from, lower);
  const std::uint32_t gen = mark_generation_;
  backward_keys_.clear();
  forward_keys_.clear();
  merged_.clear();
  pool_.clear();
  for (const ClassId v : backward_) {
    if (cycle && (forward_mark_[v] == gen || rank_[v] == upper)) {
      merged_.push_back(v);
    } else {
      backward_keys_.push_back((std::uint64_t{rank_[v]} << 32) | v);
    }
  }
  for (const ClassId v : forward_) {
    if (cycle && backward_mark_[v] == gen) continue;  // counted with B
    if (cycle && rank_[v] == lower) {
      merged_.push_back(v);
    } else {
      forward_keys_.push_back((std::uint64_t{rank_[v]} << 32) | v);
    }
  }
  std::sort(backward_keys_.begin(), backward_keys_.end());
  std::sort(forward_keys_.begin(), forward_keys_.end());
  // The pool: every distinct rank of the region, ascending.
  auto add_ranks = [this](const std::vector<std::uint64_t>& keys) {
    for (const std::uint64_t k : keys) {
      const auto r = static_cast<std::uint32_t>(k >> 32);
      if (pool_.empty() || pool_.back() != r) pool_.push_back(r);
    }
  };
  add_ranks(backward_keys_);
  const std::size_t backward_ranks = pool_.size();
  add_ranks(forward_keys_);
  const std::size_t forward_ranks = pool_.size() - backward_ranks;
  for (const ClassId v : merged_) pool_.push_back(rank_[v]);
  // pool_ holds B's ranks then F's, each ascending; C's (cycle only) at the end.
  if (merged_.empty()) {
    std::inplace_merge(pool_.begin(), pool_.begin() + static_cast<std::ptrdiff_t>(backward_ranks),
                       pool_.end());
  } else {
    std::sort(pool_.begin(), pool_.end());
    pool_.erase(std::unique(pool_.begin(), pool_.end()), pool_.end());
  }
  // Hand the ranks out, one per component (consecutive keys of equal rank).
  auto assign = [this](const std::vector<std::uint64_t>& keys, std::size_t next) {
    std::uint32_t last = 0;
    bool first = true;
    for (const std::uint64_t k : keys) {
      const auto r = static_cast<std::uint32_t>(k >> 32);
      if (!first && r != last) ++next;
      first = false;
      last = r;
      rank_[static_cast<ClassId>(k)] = pool_[next];
    }
  };
  assign(backward_keys_, 0);
  assign(forward_keys_, pool_.size() - forward_ranks);
  for (const ClassId v : merged_) rank_[v] = pool_[backward_ranks];
}

const Dependency* DepGraph::Find(ClassId from, ClassId to) const {
  auto it = index_.find(EdgeKey(from, to));
  return it == index_.end() ? nullptr : &deps_[it->second];
}

std::uint32_t DepGraph::Add(const Dependency& dep) {
  // ClosesCycle()'s walk for this dependency is still valid: nothing changed since (the walks
  // never enter `from`, so the new edge itself does not matter to them).
  const bool walked = probe_from_ == dep.from && probe_to_ == dep.to;
  probe_from_ = probe_to_ = kNoClass;
  auto [it, inserted] = index_.try_emplace(EdgeKey(dep.from, dep.to),
                                           static_cast<std::uint32_t>(deps_.size()));
  if (!inserted) {
    deps_[it->second].types |= dep.types;
    return it->second;
  }
  EnsureClass(std::max(dep.from, dep.to));
  deps_.push_back(dep);
  boost::add_edge(dep.from, dep.to, DepRef{it->second}, graph_);
  Reorder(dep.from, dep.to, walked);
  return it->second;
}

void DepGraph::StartSearch() const {
  const std::size_t states = 2 * class_count();
  if (stamp_.size() < states) {
    stamp_.resize(states, 0);
    color_.resize(states, 0);
    pred_.resize(states);
  }
  if (++generation_ == 0) {  // wrapped: clear the stamps once every 4 billion searches
    std::fill(stamp_.begin(), stamp_.end(), 0);
    generation_ = 1;
  }
}

std::optional<std::vector<PathStep>> DepGraph::Search(
    Direction dir, State root, const std::function<bool(State)>& match, ClassId limit) const {
  if (StateClass(root) >= class_count()) {
    // A class without dependencies: only the root itself can match.
    if (match(root)) return std::vector<PathStep>{};
    return std::nullopt;
  }
  StartSearch();
  StrongPathView view{&graph_, &deps_, dir};
  if (dir == Direction::kForward && limit != kNoClass && limit < rank_.size()) {
    // Every class on a path to `limit` ranks at most rank(limit), so the walk never needs to
    // enter a class ranked above it (the bound the topological order gives the search).
    view.rank = &rank_;
    view.rank_limit = rank_[limit];
  }
  StampedColorMap colors{&stamp_, &color_, generation_};
  boost::queue<State> queue;
  MatchVisitor visitor(&match, nullptr, &pred_);
  try {
    boost::breadth_first_visit(view, root, queue, visitor, colors);
  } catch (const SearchStop& stop) {
    std::vector<PathStep> path;
    for (State s = stop.found; s != root;) {
      const PathStep step = pred_[s];
      path.push_back(PathStep{step.dep, s});
      s = step.state;
    }
    std::reverse(path.begin(), path.end());
    return path;
  }
  return std::nullopt;
}

void DepGraph::VisitAll(Direction dir, State root, const std::function<void(State)>& visit) const {
  if (StateClass(root) >= class_count()) {
    visit(root);
    return;
  }
  StartSearch();
  StrongPathView view{&graph_, &deps_, dir};
  StampedColorMap colors{&stamp_, &color_, generation_};
  boost::queue<State> queue;
  MatchVisitor visitor(nullptr, &visit, &pred_);
  boost::breadth_first_visit(view, root, queue, visitor, colors);
}

std::vector<std::vector<ClassId>> DepGraph::Cycles() const {
  const std::size_t n = boost::num_vertices(graph_);
  std::vector<std::size_t> component(n);
  const std::size_t count = n ? boost::strong_components(
                                    graph_, boost::make_iterator_property_map(
                                                component.begin(),
                                                boost::get(boost::vertex_index, graph_)))
                              : 0;
  std::vector<std::vector<ClassId>> groups(count);
  for (std::size_t v = 0; v < n; ++v) groups[component[v]].push_back(static_cast<ClassId>(v));
  std::vector<std::vector<ClassId>> cycles;
  for (auto& g : groups) {
    if (g.size() > 1) cycles.push_back(std::move(g));
  }
  std::sort(cycles.begin(), cycles.end());
  return cycles;
}

std::string DepGraph::CheckInvariants() const {
  // The ranks: a topological order of the strongly connected components, one rank each.
  const std::size_t n = boost::num_vertices(graph_);
  std::vector<std::size_t> component(n);
  if (n) {
    boost::strong_components(graph_, boost::make_iterator_property_map(
                                          component.begin(), boost::get(boost::vertex_index, graph_)));
  }
  std::unordered_map<std::uint32_t, std::size_t> component_of_rank;
  std::unordered_map<std::size_t, std::uint32_t> rank_of_component;
  for (std::size_t v = 0; v < n; ++v) {
    if (rank_[v] >= next_rank_) return "rank out of range";
    auto [r, r_new] = component_of_rank.try_emplace(rank_[v], component[v]);
    auto [c, c_new] = rank_of_component.try_emplace(component[v], rank_[v]);
    if (r->second != component[v] || c->second != rank_[v]) {
      return "ranks differ from the strongly connected components";
    }
  }
  for (const auto& d : deps_) {
    if (rank_[d.from] > rank_[d.to]) return "topological order violated by a dependency";
  }
  if (boost::num_edges(graph_) != deps_.size()) return "edge count differs from dependency count";
  if (index_.size() != deps_.size()) return "edge index size differs from dependency count";
  for (std::uint32_t i = 0; i < deps_.size(); ++i) {
    const Dependency& d = deps_[i];
    auto it = index_.find(EdgeKey(d.from, d.to));
    if (it == index_.end() || it->second != i) return "dependency missing from the edge index";
    if (d.types == 0 || (d.types & ~0xfu)) return "dependency with invalid type bits";
    if (d.from == d.to) return "self dependency";
    auto [e, found] = boost::edge(d.from, d.to, graph_);
    if (!found || graph_[e].index != i) return "dependency missing from the Boost graph";
  }
  return {};
}

std::size_t DepGraph::ApproximateBytes() const {
  // Two adjacency entries per edge (bidirectional), the dependency record, the hash entry.
  return deps_.size() * (2 * 16 + sizeof(Dependency) + 32) + class_count() * 64 +
         stamp_.capacity() * 4 + color_.capacity() + pred_.capacity() * sizeof(PathStep);
}

}  // namespace lockgraph::graph_internal
