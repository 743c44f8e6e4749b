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
  // When set, forward steps into classes ordered after `label_limit` are left out (see Search).
  const std::vector<std::uint64_t>* label = nullptr;
  std::uint64_t label_limit = 0;
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
          (view_->label == nullptr || (*view_->label)[d.to] <= view_->label_limit)) {
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
    const auto c = static_cast<ClassId>(boost::add_vertex(graph_));
    label_.push_back(0);
    rep_.push_back(c);
    next_.push_back(kNoNode);
    prev_.push_back(tail_);
    forward_mark_.push_back(0);
    backward_mark_.push_back(0);
    moved_mark_.push_back(0);
    // A new class is a component of its own at the end of the order.
    const std::uint64_t last = tail_ == kNoNode ? 0 : label_[tail_];
    if (tail_ == kNoNode) {
      head_ = c;
    } else {
      next_[tail_] = c;
    }
    tail_ = c;
    if (~std::uint64_t{0} - last > kLabelGap) {
      label_[c] = last + kLabelGap;
    } else {
      Spread(c, c, 1);
    }
  }
}

bool DepGraph::MayReach(ClassId from, ClassId to) const {
  if (from >= label_.size() || to >= label_.size()) return from == to;
  return label_[from] <= label_[to];
}

void DepGraph::NextMarkGeneration() {
  if (++mark_generation_ == 0) {  // wrapped: clear the marks once every 4 billion searches
    std::fill(forward_mark_.begin(), forward_mark_.end(), 0);
    std::fill(backward_mark_.begin(), backward_mark_.end(), 0);
    std::fill(moved_mark_.begin(), moved_mark_.end(), 0);
    mark_generation_ = 1;
  }
}

bool DepGraph::ClosesCycle(ClassId from, ClassId to) {
  if (from >= label_.size() || to >= label_.size()) return false;  // no dependency yet
  if (label_[from] < label_[to]) return false;
  if (label_[from] == label_[to]) return true;  // one strongly connected component
  probe_cycle_ = TwoWaySearch(from, to);
  probe_from_ = from;
  probe_to_ = to;
  return probe_cycle_;
}

bool DepGraph::TwoWaySearch(ClassId from, ClassId to) {
  // The order is topological, so a class popped from the forward heap (smallest label first)
  // only pushes classes labelled at least as high, and the backward heap likewise downwards:
  // when the forward heap's smallest label is L, every class reachable from `to` labelled
  // below L has been popped, and when the backward heap's largest is U, every class reaching
  // `from` labelled above U. A path to -> ... -> from (a cycle with the new dependency) has
  // some class discovered by both searches before the frontiers can cross (where one search
  // leaves the path the other has taken it), so discovering a class the other side has
  // discovered, or the two frontiers reaching one label (one component), is the only way a
  // cycle shows, and every cycle does.
  NextMarkGeneration();
  const std::uint32_t gen = mark_generation_;
  auto forward_later = [](const Ordered& a, const Ordered& b) { return a.label > b.label; };
  auto backward_earlier = [](const Ordered& a, const Ordered& b) { return a.label < b.label; };
  forward_heap_.clear();
  backward_heap_.clear();
  forward_.clear();
  backward_.clear();
  forward_heap_.push_back(Ordered{label_[to], to});
  forward_mark_[to] = gen;
  backward_heap_.push_back(Ordered{label_[from], from});
  backward_mark_[from] = gen;
  bool backward_turn = true;
  while (!forward_heap_.empty() && !backward_heap_.empty()) {
    const std::uint64_t low = forward_heap_.front().label, high = backward_heap_.front().label;
    if (low > high) break;
    if (low == high) return true;  // one component reached from both sides
    if (backward_turn) {
      std::pop_heap(backward_heap_.begin(), backward_heap_.end(), backward_earlier);
      const ClassId v = backward_heap_.back().cls;
      backward_heap_.pop_back();
      backward_.push_back(v);
      for (auto [e, end] = boost::in_edges(v, graph_); e != end; ++e) {
        const auto w = static_cast<ClassId>(boost::source(*e, graph_));
        if (backward_mark_[w] == gen) continue;
        if (forward_mark_[w] == gen) return true;
        backward_mark_[w] = gen;
        backward_heap_.push_back(Ordered{label_[w], w});
        std::push_heap(backward_heap_.begin(), backward_heap_.end(), backward_earlier);
      }
    } else {
      std::pop_heap(forward_heap_.begin(), forward_heap_.end(), forward_later);
      const ClassId v = forward_heap_.back().cls;
      forward_heap_.pop_back();
      forward_.push_back(v);
      for (auto [e, end] = boost::out_edges(v, graph_); e != end; ++e) {
        const auto w = static_cast<ClassId>(boost::target(*e, graph_));
        if (forward_mark_[w] == gen) continue;
        if (backward_mark_[w] == gen) return true;
        forward_mark_[w] = gen;
        forward_heap_.push_back(Ordered{label_[w], w});
        std::push_heap(forward_heap_.begin(), forward_heap_.end(), forward_later);
      }
    }
    backward_turn = !backward_turn;
  }
  cut_low_ = backward_heap_.empty() ? 0 : backward_heap_.front().label;
  cut_high_ = forward_heap_.empty() ? ~std::uint64_t{0} : forward_heap_.front().label;
  return false;
}

void DepGraph::MoveToCut() {
  // With every class reachable from `to` below cut_high_ popped forward and every class
  // reaching `from` above cut_low_ popped backward, any cut c with cut_low_ <= c < cut_high_
  // works: the forward classes labelled at most c (all that `to` reaches there) and the
  // backward ones above c (all that reach `from` there) move to c, backward ones first, each
  // group in its order. Forward classes only move later and backward ones earlier, and what
  // stays reachable from a moved forward class lies above c, what reaches a moved backward
  // one below c. Take the cut that moves fewest classes. forward_ is ascending, backward_
  // descending (heap order).
  const std::uint32_t gen = mark_generation_;
  const std::size_t forward_count = forward_.size();
  std::size_t nf = 0, nb = backward_.size();  // forward_[0, nf) <= c < backward_[0, nb)
  std::uint64_t c = cut_low_;
  ClassId anchor = backward_heap_.empty() ? kNoNode : backward_heap_.front().cls;  // label c
  while (nf < forward_count && label_[forward_[nf]] <= c) ++nf;
  while (nb > 0 && label_[backward_[nb - 1]] <= c) --nb;
  std::size_t best_nf = nf, best_nb = nb;
  ClassId best_anchor = anchor;
  for (;;) {
    const std::uint64_t f = nf < forward_count ? label_[forward_[nf]] : ~std::uint64_t{0};
    const std::uint64_t b = nb > 0 ? label_[backward_[nb - 1]] : ~std::uint64_t{0};
    c = std::min(f, b);
    if (c >= cut_high_) break;
    anchor = f <= b ? forward_[nf] : backward_[nb - 1];
    while (nf < forward_count && label_[forward_[nf]] <= c) ++nf;
    while (nb > 0 && label_[backward_[nb - 1]] <= c) --nb;
    if (nf + nb < best_nf + best_nb) {
      best_nf = nf;
      best_nb = nb;
      best_anchor = anchor;
    }
  }
  block_.clear();
  auto take = [&](ClassId v) {
    const ClassId r = rep_[v];
    if (moved_mark_[r] == gen) return;
    moved_mark_[r] = gen;
    block_.push_back(r);
  };
  for (std::size_t i = best_nb; i-- > 0;) take(backward_[i]);
  for (std::size_t i = 0; i < best_nf; ++i) take(forward_[i]);
  // The last component left at or before the cut: the anchor holds label c; moved ones
  // before it are skipped.
  ClassId after = best_anchor == kNoNode ? kNoNode : rep_[best_anchor];
  while (after != kNoNode && moved_mark_[after] == gen) after = prev_[after];
  Relink(after);
}

void DepGraph::MergeCycle(ClassId from, ClassId to) {
  // F: the classes reachable from `to` labelled below `from`; B: those reaching `from`
  // labelled above `to`. The cycle's classes C (in both, or in the components of `from` and
  // `to`) become one component. Either B - C and C move down to just after `to`'s old place
  // (every class that `to` reaches at or below it is in C), or C and F - C move up to just
  // before `from`'s, whichever moves fewer; each group keeps its order.
  const std::uint64_t upper = label_[from], lower = label_[to];
  NextMarkGeneration();
  const std::uint32_t gen = mark_generation_;
  forward_.clear();
  stack_.assign(1, to);
  forward_mark_[to] = gen;
  while (!stack_.empty()) {
    const ClassId v = stack_.back();
    stack_.pop_back();
    forward_.push_back(v);
    for (auto [e, end] = boost::out_edges(v, graph_); e != end; ++e) {
      const auto w = static_cast<ClassId>(boost::target(*e, graph_));
      if (forward_mark_[w] != gen && label_[w] < upper) {
        forward_mark_[w] = gen;
        stack_.push_back(w);
      }
    }
  }
  backward_.clear();
  stack_.assign(1, from);
  backward_mark_[from] = gen;
  while (!stack_.empty()) {
    const ClassId v = stack_.back();
    stack_.pop_back();
    backward_.push_back(v);
    for (auto [e, end] = boost::in_edges(v, graph_); e != end; ++e) {
      const auto w = static_cast<ClassId>(boost::source(*e, graph_));
      if (backward_mark_[w] != gen && label_[w] > lower) {
        backward_mark_[w] = gen;
        stack_.push_back(w);
      }
    }
  }
  std::vector<ClassId> merged, backward_rest, forward_rest;
  for (const ClassId v : backward_) {
    if (forward_mark_[v] == gen || label_[v] == upper) {
      merged.push_back(v);
    } else {
      backward_rest.push_back(v);
    }
  }
  for (const ClassId v : forward_) {
    if (backward_mark_[v] == gen) continue;  // counted with B
    if (label_[v] == lower) {
      merged.push_back(v);
    } else {
      forward_rest.push_back(v);
    }
  }
  const bool move_backward = backward_rest.size() <= forward_rest.size();
  std::vector<ClassId>& rest = move_backward ? backward_rest : forward_rest;
  auto by_label = [this](ClassId a, ClassId b) { return label_[a] < label_[b]; };
  std::sort(rest.begin(), rest.end(), by_label);
  // Mark what moves, and find the last component left before the cut.
  for (const ClassId v : merged) moved_mark_[rep_[v]] = gen;
  for (const ClassId v : rest) moved_mark_[rep_[v]] = gen;
  ClassId after = rep_[move_backward ? to : from];
  while (after != kNoNode && moved_mark_[after] == gen) after = prev_[after];
  // The new component: representative rep(from); the old ones' list entries go.
  const ClassId rep = rep_[from];
  for (const ClassId v : merged) {
    const ClassId r = rep_[v];
    if (r != rep && r == v) Unlink(r);
    members_.erase(r);
  }
  for (const ClassId v : merged) rep_[v] = rep;
  members_[rep] = merged;
  block_.clear();
  auto take = [&](ClassId r) {
    if (moved_mark_[r] != gen) return;
    moved_mark_[r] = 0;  // once
    block_.push_back(r);
  };
  if (move_backward) {
    for (const ClassId v : backward_rest) take(rep_[v]);
    block_.push_back(rep);
  } else {
    block_.push_back(rep);
    for (const ClassId v : forward_rest) take(rep_[v]);
  }
  Relink(after);
}

void DepGraph::Unlink(ClassId rep) {
  const ClassId p = prev_[rep], n = next_[rep];
  if (p == kNoNode) {
    head_ = n;
  } else {
    next_[p] = n;
  }
  if (n == kNoNode) {
    tail_ = p;
  } else {
    prev_[n] = p;
  }
  prev_[rep] = next_[rep] = kNoNode;
}

void DepGraph::Relink(ClassId after) {
  for (const ClassId r : block_) Unlink(r);
  const ClassId before = after == kNoNode ? head_ : next_[after];
  ClassId p = after;
  for (const ClassId r : block_) {
    prev_[r] = p;
    if (p == kNoNode) {
      head_ = r;
    } else {
      next_[p] = r;
    }
    p = r;
  }
  next_[p] = before;
  if (before == kNoNode) {
    tail_ = p;
  } else {
    prev_[before] = p;
  }
  // Labels evenly between the neighbours' if the gap has room, else spread a wider range.
  const std::size_t count = block_.size();
  const std::uint64_t low = after == kNoNode ? 0 : label_[after];
  std::uint64_t step;
  if (before == kNoNode) {
    step = (~std::uint64_t{0} - low) / kLabelGap > count ? kLabelGap : 0;
  } else {
    step = (label_[before] - low) / (count + 1);
  }
  if (step == 0) {
    Spread(block_.front(), block_.back(), count);
    return;
  }
  std::uint64_t l = low;
  for (const ClassId r : block_) SetLabel(r, l += step);
}

void DepGraph::Spread(ClassId first, ClassId last, std::size_t count) {
  // Widen first..last over its neighbours, one each side at a time, until the labels between
  // the outer neighbours leave gaps of at least 64 x the range's size (so that many more
  // components fit in before this range is spread again), or the range is the whole order.
  // At the tail the gaps are kLabelGap while the label space lasts.
  constexpr std::uint64_t kMax = ~std::uint64_t{0};
  ClassId before = prev_[first], after = next_[last];
  std::uint64_t low = 0, step = 0;
  for (;;) {
    low = before == kNoNode ? 0 : label_[before];
    if (after == kNoNode && (kMax - low) / kLabelGap > count) {
      step = kLabelGap;
      break;
    }
    const std::uint64_t high = after == kNoNode ? kMax : label_[after];
    step = (high - low) / (count + 1);
    if (step >= 64 * static_cast<std::uint64_t>(count) ||
        (before == kNoNode && after == kNoNode)) {
      break;
    }
    if (before != kNoNode) {
      first = before;
      before = prev_[before];
      ++count;
    }
    if (after != kNoNode) {
      last = after;
      after = next_[after];
      ++count;
    }
  }
  std::uint64_t l = low;
  for (ClassId r = first;; r = next_[r]) {
    SetLabel(r, l += step);
    if (r == last) break;
  }
}

void DepGraph::SetLabel(ClassId rep, std::uint64_t label) {
  label_[rep] = label;
  if (members_.empty()) return;
  auto it = members_.find(rep);
  if (it == members_.end()) return;
  for (const ClassId v : it->second) label_[v] = label;
}

const Dependency* DepGraph::Find(ClassId from, ClassId to) const {
  const std::uint32_t i = index_.Find(EdgeKey(from, to));
  return i == EdgeIndex::kAbsent ? nullptr : &deps_[i];
}

std::uint32_t DepGraph::Add(const Dependency& dep) {
  // ClosesCycle()'s search for this dependency is still valid: nothing changed since (and the
  // new edge itself does not matter to it: a search that could use it has met the other).
  const bool searched = probe_from_ == dep.from && probe_to_ == dep.to;
  probe_from_ = probe_to_ = kNoClass;
  const auto [index, inserted] =
      index_.Insert(EdgeKey(dep.from, dep.to), static_cast<std::uint32_t>(deps_.size()));
  if (!inserted) {
    deps_[index].types |= dep.types;
    return index;
  }
  EnsureClass(std::max(dep.from, dep.to));
  deps_.push_back(dep);
  boost::add_edge(dep.from, dep.to, DepRef{index}, graph_);
  if (label_[dep.from] > label_[dep.to]) {  // against the order
    const bool cycle = searched ? probe_cycle_ : TwoWaySearch(dep.from, dep.to);
    if (cycle) {
      MergeCycle(dep.from, dep.to);
    } else {
      MoveToCut();
    }
  }
  return index;
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
  if (dir == Direction::kForward && limit != kNoClass && limit < label_.size()) {
    // Every class on a path to `limit` is labelled at most label(limit), so the walk never
    // needs to enter a class labelled above it (the bound the topological order gives).
    view.label = &label_;
    view.label_limit = label_[limit];
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
  // The labels: a topological order of the strongly connected components, one label each,
  // kept on a list of the components' representatives in label order.
  const std::size_t n = boost::num_vertices(graph_);
  if (label_.size() != n || rep_.size() != n) return "order arrays sized unlike the graph";
  std::vector<std::size_t> component(n);
  if (n) {
    boost::strong_components(graph_, boost::make_iterator_property_map(
                                          component.begin(), boost::get(boost::vertex_index, graph_)));
  }
  std::unordered_map<std::uint64_t, std::size_t> component_of_label;
  std::unordered_map<std::size_t, std::uint64_t> label_of_component;
  for (std::size_t v = 0; v < n; ++v) {
    auto [r, r_new] = component_of_label.try_emplace(label_[v], component[v]);
    auto [c, c_new] = label_of_component.try_emplace(component[v], label_[v]);
    if (r->second != component[v] || c->second != label_[v]) {
      return "labels differ from the strongly connected components";
    }
    const ClassId rep = rep_[v];
    if (rep >= n || rep_[rep] != rep || label_[rep] != label_[v]) {
      return "class and representative disagree";
    }
    if (rep != v) {
      auto it = members_.find(rep);
      if (it == members_.end() ||
          std::find(it->second.begin(), it->second.end(), v) == it->second.end()) {
        return "class missing from its component's members";
      }
    }
  }
  for (const auto& [rep, members] : members_) {
    if (members.size() < 2) return "component record with fewer than two classes";
    for (const ClassId v : members) {
      if (v >= n || rep_[v] != rep) return "component member with another representative";
    }
  }
  std::size_t listed = 0;
  for (ClassId r = head_, p = kNoNode; r != kNoNode; p = r, r = next_[r]) {
    if (r >= n || rep_[r] != r) return "order list holds a class that is no representative";
    if (prev_[r] != p) return "order list links disagree";
    if (p != kNoNode && label_[p] >= label_[r]) return "order list not in label order";
    if (label_[r] == 0) return "label 0 in use";
    if (++listed > n) return "order list loops";
  }
  if (listed != label_of_component.size()) return "order list misses components";
  for (const auto& d : deps_) {
    if (label_[d.from] > label_[d.to]) return "topological order violated by a dependency";
  }
  if (boost::num_edges(graph_) != deps_.size()) return "edge count differs from dependency count";
  if (index_.size() != deps_.size()) return "edge index size differs from dependency count";
  for (std::uint32_t i = 0; i < deps_.size(); ++i) {
    const Dependency& d = deps_[i];
    if (index_.Find(EdgeKey(d.from, d.to)) != i) return "dependency missing from the edge index";
    if (d.types == 0 || (d.types & ~0xfu)) return "dependency with invalid type bits";
    if (d.from == d.to) return "self dependency";
    auto [e, found] = boost::edge(d.from, d.to, graph_);
    if (!found || graph_[e].index != i) return "dependency missing from the Boost graph";
  }
  return {};
}

std::size_t DepGraph::ApproximateBytes() const {
  // Two adjacency entries per edge (bidirectional), the dependency record, the edge index's
  // slots (16 bytes, at least half of them empty); per class its vertex, label,
  // representative, list links and marks.
  return deps_.size() * (2 * 16 + sizeof(Dependency)) + index_.capacity() * 16 +
         class_count() * 92 +
         stamp_.capacity() * 4 + color_.capacity() + pred_.capacity() * sizeof(PathStep);
}

}  // namespace lockgraph::graph_internal
