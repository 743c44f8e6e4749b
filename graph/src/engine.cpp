// The engine: classes, instances, per-thread held-lock stacks and lockdep's rules.
//
// Locking inside the engine:
//  - registry_mu_ guards class registration (rare); class records live in fixed chunks so
//    readers index them without a lock.
//  - each instance shard has its own mutex (lock id -> instance record).
//  - graph_mu_ guards the dependency graph, usage bits writes, usage traces, the chain-cache
//    writer side, instance-order graphs and finding dedup. It is taken only on slow paths:
//    a new chain, a new usage bit, a finding, an instance-order check not cached per thread.
// Findings are collected while locks are held and delivered after they are released.
#include "lockgraph/engine.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <new>
#include <unordered_map>
#include <unordered_set>

#include "chain_cache.h"
#include "dep_graph.h"
#include "instance_graph.h"

namespace lockgraph {

using graph_internal::ChainCache;
using graph_internal::DepGraph;
using graph_internal::InstanceGraph;
using graph_internal::Dependency;
using graph_internal::Direction;
using graph_internal::MakeState;
using graph_internal::PathStep;
using graph_internal::State;
using graph_internal::StateClass;
using graph_internal::StateFlag;

namespace {

constexpr std::size_t kClassChunkBits = 12;  // 4096 classes per chunk
constexpr std::size_t kClassChunkSize = std::size_t{1} << kClassChunkBits;
constexpr std::size_t kInstanceShards = 64;
constexpr std::size_t kDestroyedKeptPerShard = 1024;  // remembered destroyed locks per shard
constexpr std::size_t kPairCacheSize = 1024;          // per-thread validated same-class pairs
constexpr std::size_t kInstanceCacheSize = 64;        // per-thread lock -> instance cache

using engine_internal::ChainKey;
using engine_internal::MixKey;
using engine_internal::UsageCoversBit;

std::uint8_t DepTypeOf(AcquireMode holder, AcquireMode acquirer) {
  const bool shared_holder = holder != AcquireMode::kExclusive;
  const bool recursive_acquirer = acquirer == AcquireMode::kSharedRecursive;
  if (shared_holder) return recursive_acquirer ? kDepSR : kDepSN;
  return recursive_acquirer ? kDepER : kDepEN;
}

std::string DepTypeName(std::uint8_t types) {
  // The strongest type kept: EN > ER > SN > SR.
  if (types & kDepEN) return "EN";
  if (types & kDepER) return "ER";
  if (types & kDepSN) return "SN";
  return "SR";
}

std::string Hex(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string FingerprintOf(FindingKind kind, const std::vector<std::string>& parts) {
  // FNV-1a over the kind id and the parts; stable across runs and machines.
  std::uint64_t h = 0xcbf29ce484222325ull;
  auto feed = [&h](std::string_view s) {
    for (unsigned char c : s) {
      h ^= c;
      h *= 0x100000001b3ull;
    }
    h ^= 0xff;
    h *= 0x100000001b3ull;
  };
  feed(FindingKindId(kind));
  for (const auto& p : parts) feed(p);
  return Hex(h);
}

bool IsRead(AcquireMode m) { return m != AcquireMode::kExclusive; }

const char* UsageKindPrefix(UsageKind k) {
  switch (k) {
    case UsageKind::kUsedIn:
    case UsageKind::kUsedInRead:
      return "IN-";
    default:
      return "";
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Per-thread state.

using engine_internal::ChainStep;
using engine_internal::CopyHeld;
using engine_internal::HeldLock;
using engine_internal::RequestBits;
using engine_internal::StepKey;

// The cached paths' part (held stack, current frame, memo) is the ThreadCache base
// (lockgraph/cached_path.h); SyncHot keeps its frame fields, FlushSteps empties its memo.
struct ThreadState::Impl : engine_internal::ThreadCache {
  struct Frame {
    int context = -1;            // -1: process context
    std::size_t held_base = 0;   // first held lock taken in this frame
    std::uint64_t seed = 0;      // chain key of the empty chain in this frame
    ContextMask saved_disabled;  // interrupt state to restore when the frame ends
    std::uint32_t saved_softirq_disable = 0;
  };

  ThreadKey key = 0;
  std::string name;
  RunId run = 0;
  std::vector<Frame> frames;
  std::array<std::uint16_t, kMaxContexts> in_count{};
  ContextMask in_mask;
  ContextMask disabled;                 // flag-disabled contexts (hardirq, numbered)
  std::uint32_t softirq_disable = 0;    // local_bh_disable nesting
  ContextMask enabled;                  // effective: where an interrupt could arrive now
  std::array<std::uint64_t, kPairCacheSize> pair_cache{};  // validated instance pairs

  // Recently used instances, valid while their shard's epoch is unchanged: a known lock's
  // class costs no shard lock.
  struct CachedInstance {
    LockId lock = kNoLock;
    ClassId cls = kNoClass;
    std::uint32_t serial = 0;
    std::uint64_t epoch = 0;
    engine_internal::InstanceSlot* slot = nullptr;  // its handle's slot, if one was made
  };
  std::array<CachedInstance, kInstanceCacheSize> instance_cache{};

  // Recomputes the cached paths' view of the current frame after held or frames changed.
  void SyncHot() {
    const Frame& f = frames.back();
    frame_base = f.held_base;
    frame_seed = f.seed;
    frame_index = static_cast<std::uint32_t>(frames.size() - 1);
    top_key = held.size() > frame_base ? held.back().chain_key : frame_seed;
  }
  void RecomputeEnabled() {
    ContextMask e = ~disabled;
    if (softirq_disable > 0 || in_mask.Test(kSoftirqContext)) e.Clear(kSoftirqContext);
    if (in_mask.Test(kHardirqContext)) e.Clear(kHardirqContext);
    // Softirq-unsafe implies hardirq-unsafe: with hardirqs off no softirq can run either.
    if (!e.Test(kHardirqContext)) e.Clear(kSoftirqContext);
    if (!(e == enabled)) FlushSteps();
    enabled = e;
    in_context = !in_mask.Empty();  // the inline cached path's usage check (in_mask changed)
  }
  const Frame& frame() const { return frames.back(); }
  std::uint64_t TopKey() const {
    const Frame& f = frame();
    return held.size() > f.held_base ? held.back().chain_key : f.seed;
  }
};

ThreadState::ThreadState(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)), cache_(impl_.get()) {}
ThreadState::~ThreadState() = default;
ThreadKey ThreadState::key() const { return impl_->key; }
const std::string& ThreadState::name() const { return impl_->name; }
void ThreadState::set_name(std::string name) { impl_->name = std::move(name); }
RunId ThreadState::run() const { return impl_->run; }
std::size_t ThreadState::held_count() const { return impl_->held.size(); }
bool ThreadState::Holds(LockId lock) const {
  for (const auto& h : impl_->held) {
    if (h.lock == lock) return true;
  }
  return false;
}
ContextMask ThreadState::disabled_contexts() const {
  ContextMask m = impl_->disabled;
  if (impl_->softirq_disable) m.Set(kSoftirqContext);
  return m;
}
int ThreadState::current_context() const { return impl_->frame().context; }

// ---------------------------------------------------------------------------------------------
// Engine internals.

struct UsageTrace {
  StackId stack = kNoStack;
  std::uint64_t ip = 0;
  RunId run = 0;
};

struct ClassRec {
  std::uint64_t key = 0;
  std::uint8_t subclass = 0;
  std::string name;
  std::atomic<std::uint64_t> usage[kUsageKinds][2] = {};
  // Where each usage bit was first set: one record per acquisition that set new bits (the
  // bits and the acquisition's trace), so a first acquisition with 30 contexts enabled adds one
  // record, not 30 hash nodes; a class has a handful. Graph lock.
  struct TraceRecord {
    Usage bits;
    UsageTrace trace;
  };
  std::vector<TraceRecord> traces;

  const UsageTrace* TraceOf(UsageKind k, ContextId c) const {
    for (const TraceRecord& r : traces) {
      if (r.bits.Has(k, c)) return &r.trace;
    }
    return nullptr;
  }

  bool HasUsage(UsageKind k, ContextId c) const {
    return (usage[static_cast<int>(k)][c >> 6].load(std::memory_order_relaxed) >> (c & 63)) & 1u;
  }
  ContextMask UsageMask(UsageKind k) const {
    ContextMask m;
    m.words[0] = usage[static_cast<int>(k)][0].load(std::memory_order_relaxed);
    m.words[1] = usage[static_cast<int>(k)][1].load(std::memory_order_relaxed);
    return m;
  }
};

// What an InstanceHandle points to (lockgraph/cached_path.h, where the inline cached path
// reads it): the handle is the slot's address.
using engine_internal::InstanceSlot;
inline InstanceHandle HandleOfSlot(InstanceSlot* slot) {
  return reinterpret_cast<InstanceHandle>(slot);
}
inline InstanceSlot* SlotOfHandle(InstanceHandle handle) {
  return reinterpret_cast<InstanceSlot*>(handle);
}

struct InstanceRec {
  ClassId cls = kNoClass;
  std::uint32_t serial = 0;
  bool destroyed = false;
  StackId destroy_stack = kNoStack;
  std::uint64_t destroy_ip = 0;
  InstanceSlot* slot = nullptr;  // made on the first HandleOf
};

struct InstanceShard {
  std::mutex mu;
  // Bumped (under mu) whenever an existing record changes, so per-thread caches notice.
  std::atomic<std::uint64_t> epoch{1};
  std::unordered_map<LockId, InstanceRec> map;
  std::deque<std::pair<LockId, std::uint32_t>> destroyed;  // oldest first
};

struct Engine::Impl {
  explicit Impl(EngineOptions o, FindingSink* s) : options(o), sink(s) {
    chunks.reset(new std::atomic<ClassRec*>[options.max_classes / kClassChunkSize + 1]);
    // Zeroed pages from calloc are only touched when a class of their range is registered.
    usage_summary.reset(static_cast<std::uint8_t*>(std::calloc(options.max_classes + 1, 1)));
    if (!usage_summary) throw std::bad_alloc();
    for (std::size_t i = 0; i <= options.max_classes / kClassChunkSize; ++i) chunks[i] = nullptr;
    context_names[kHardirqContext] = "HARDIRQ";
    context_names[kSoftirqContext] = "SOFTIRQ";
  }
  ~Impl() {
    for (std::size_t i = 0; i <= options.max_classes / kClassChunkSize; ++i) delete[] chunks[i];
  }

  EngineOptions options;
  std::atomic<bool> strict{false};
  FindingSink* sink;
  std::atomic<bool> enabled{true};
  std::atomic<bool> off_reported{false};
  mutable std::mutex reason_mu;
  std::string reason;

  // Classes.
  mutable std::mutex registry_mu;
  struct ClassKeyHash {
    std::size_t operator()(const std::pair<std::uint64_t, std::uint8_t>& k) const {
      return static_cast<std::size_t>(MixKey(k.first, k.second + 1));
    }
  };
  std::unordered_map<std::pair<std::uint64_t, std::uint8_t>, ClassId, ClassKeyHash> class_index;
  std::unique_ptr<std::atomic<ClassRec*>[]> chunks;
  // One byte per class, dense by id (10,000 classes: 10 KiB, where their ClassRecs take 1.7 MB):
  // the usage summary the cached path reads instead of the class record. Written under
  // graph_mu after the usage bits it summarises, read lock-free.
  struct FreeBytes {
    void operator()(std::uint8_t* p) const { std::free(p); }
  };
  std::unique_ptr<std::uint8_t[], FreeBytes> usage_summary;
  unsigned UsageSummary(ClassId id) const {
    return std::atomic_ref<std::uint8_t>(usage_summary[id]).load(std::memory_order_acquire);
  }
  // Every context some thread's enabled set has held: a summary bit compares a class's usage
  // with this union, so it holds for every thread. Grows (never shrinks) under graph_mu, which
  // then recomputes every summary before publishing the new union.
  std::atomic<std::uint64_t> enabled_union[2] = {};
  // Graph lock held: recomputes the summary of `id` from its usage masks.
  void UpdateUsageSummary(ClassId id) {
    const ClassRec& c = Class(id);
    const ContextMask all{{enabled_union[0].load(std::memory_order_relaxed),
                           enabled_union[1].load(std::memory_order_relaxed)}};
    unsigned summary = 0;
    for (UsageKind k : {UsageKind::kEnabled, UsageKind::kEnabledRead}) {
      if ((all & ~c.UsageMask(k)).Empty()) summary |= UsageCoversBit(k);
    }
    std::atomic_ref<std::uint8_t>(usage_summary[id])
        .store(static_cast<std::uint8_t>(summary), std::memory_order_release);
  }
  // Keeps a thread's enabled set inside enabled_union (called whenever it changes).
  void CoverEnabled(const ContextMask& enabled) {
    if ((enabled.words[0] & ~enabled_union[0].load(std::memory_order_acquire)) == 0 &&
        (enabled.words[1] & ~enabled_union[1].load(std::memory_order_acquire)) == 0) {
      return;
    }
    std::lock_guard<std::mutex> g(graph_mu);
    const std::uint64_t w0 = enabled_union[0].load(std::memory_order_relaxed) | enabled.words[0];
    const std::uint64_t w1 = enabled_union[1].load(std::memory_order_relaxed) | enabled.words[1];
    // Summaries first (against the grown union, so a bit they keep holds for it), then the
    // union: a thread that sees its enabled set covered sees these summaries too.
    const ContextMask all{{w0, w1}};
    const std::uint32_t n = class_count.load(std::memory_order_acquire);
    for (ClassId id = 0; id < n; ++id) {
      const ClassRec& c = Class(id);
      unsigned summary = UsageSummary(id);
      for (UsageKind k : {UsageKind::kEnabled, UsageKind::kEnabledRead}) {
        if (!(all & ~c.UsageMask(k)).Empty()) summary &= ~UsageCoversBit(k);
      }
      std::atomic_ref<std::uint8_t>(usage_summary[id])
          .store(static_cast<std::uint8_t>(summary), std::memory_order_release);
    }
    enabled_union[0].store(w0, std::memory_order_release);
    enabled_union[1].store(w1, std::memory_order_release);
  }
  std::atomic<std::uint32_t> class_count{0};
  std::array<std::string, kMaxContexts> context_names;

  // Instances.
  std::array<InstanceShard, kInstanceShards> shards;
  std::atomic<std::uint32_t> next_serial{1};
  std::atomic<std::size_t> instance_count{0};

  // Graph and everything validated under graph_mu.
  mutable std::mutex graph_mu;
  DepGraph graph;
  ChainCache chains;
  std::unordered_map<ClassId, InstanceGraph> instance_graphs;
  std::unordered_set<std::string> fingerprints;
  std::vector<Finding> findings;
  ContextMask used_in_any;         // contexts some class is used in
  std::atomic<std::uint64_t> entered[2] = {};  // contexts ever entered (shown in usage strings)
  std::atomic<bool> has_instance_graphs{false};
  std::atomic<std::size_t> cache_hits{0};
  // One chain-cache hit by thread `t`, counted in batches: no shared cache line per hit.
  void CountCacheHit(engine_internal::ThreadCache& t) {
    if (++t.unflushed_hits == 4096) {
      cache_hits.fetch_add(t.unflushed_hits, std::memory_order_relaxed);
      t.unflushed_hits = 0;
    }
  }

  // Instance slots (InstanceHandle), allocated in chunks and recycled, never freed.
  static constexpr std::size_t kSlotChunk = 1024;
  std::mutex slot_mu;  // taken inside a shard lock, never the other way round
  std::vector<std::unique_ptr<InstanceSlot[]>> slot_chunks;
  std::size_t slot_chunk_used = kSlotChunk;
  std::vector<InstanceSlot*> free_slots;
  InstanceSlot* NewSlot() {
    std::lock_guard<std::mutex> g(slot_mu);
    if (!free_slots.empty()) {
      InstanceSlot* s = free_slots.back();
      free_slots.pop_back();
      return s;
    }
    if (slot_chunk_used == kSlotChunk) {
      slot_chunks.emplace_back(new InstanceSlot[kSlotChunk]);
      slot_chunk_used = 0;
    }
    return &slot_chunks.back()[slot_chunk_used++];
  }
  void FreeSlot(InstanceSlot* s) {
    s->lock.store(kNoLock, std::memory_order_release);
    std::lock_guard<std::mutex> g(slot_mu);
    free_slots.push_back(s);
  }

  ClassRec& Class(ClassId id) const {
    return chunks[id >> kClassChunkBits].load(std::memory_order_acquire)[id & (kClassChunkSize - 1)];
  }
  // Fibonacci hashing of the address: one multiply (the cached path of a lock without a handle
  // reads its shard's epoch).
  InstanceShard& ShardOf(LockId lock) {
    static_assert(kInstanceShards == 64, "six bits of shard index");
    return shards[(lock * 0x9e3779b97f4a7c15ull) >> 58];
  }
  std::string ContextName(int c) const {
    if (c < 0) return "process";
    if (!context_names[c].empty()) return context_names[c];
    return "CTX" + std::to_string(c);
  }

  void TurnOff(std::string why);
  ClassId Register(std::uint64_t key, std::string_view name, std::uint8_t subclass);
  std::size_t ApproximateBytes() const;
  void CheckMemory();  // graph lock held

  // Findings (graph lock held while building; delivered later).
  bool Claim(const std::string& fingerprint);
  ReportedLock Describe(const HeldLock& h) const;
  std::string UsageString(ClassId cls) const;
  void FillThread(Finding* f, const ThreadState::Impl& t) const;
  void Emit(std::vector<Finding>* pending, Finding f);
  void Deliver(std::vector<Finding>& pending);
};

void Engine::Impl::TurnOff(std::string why) {
  bool expected = true;
  if (!enabled.compare_exchange_strong(expected, false)) return;
  {
    std::lock_guard<std::mutex> g(reason_mu);
    reason = why;
  }
  if (sink && !off_reported.exchange(true)) sink->OnTurnedOff(why);
}

ClassId Engine::Impl::Register(std::uint64_t key, std::string_view name, std::uint8_t subclass) {
  if (subclass >= kMaxSubclasses) subclass = kMaxSubclasses - 1;
  std::lock_guard<std::mutex> g(registry_mu);
  const std::pair<std::uint64_t, std::uint8_t> index_key{key, subclass};
  auto it = class_index.find(index_key);
  if (it != class_index.end()) return it->second;
  const std::uint32_t id = class_count.load(std::memory_order_relaxed);
  if (id >= options.max_classes) {
    TurnOff("more than " + std::to_string(options.max_classes) +
            " lock classes (raise max_classes)");
    return kNoClass;
  }
  const std::size_t chunk = id >> kClassChunkBits;
  if (!chunks[chunk].load(std::memory_order_relaxed)) {
    chunks[chunk].store(new ClassRec[kClassChunkSize], std::memory_order_release);
  }
  ClassRec& rec = Class(id);
  rec.key = key;
  rec.subclass = subclass;
  rec.name = std::string(name.empty() ? "(unnamed)" : name);
  if (subclass) rec.name += "/" + std::to_string(subclass);
  class_index.emplace(index_key, id);
  class_count.store(id + 1, std::memory_order_release);
  return id;
}

std::size_t Engine::Impl::ApproximateBytes() const {
  return graph.ApproximateBytes() + chains.ApproximateBytes() +
         class_count.load() * (sizeof(ClassRec) + 64) +
         instance_count.load() * (sizeof(InstanceRec) + 48);
}

void Engine::Impl::CheckMemory() {
  if (graph.dependency_count() > options.max_dependencies) {
    TurnOff("more than " + std::to_string(options.max_dependencies) +
            " lock dependencies (raise max_dependencies)");
    return;
  }
  const std::size_t bytes = ApproximateBytes();
  if (bytes > options.memory_limit_bytes) {
    TurnOff("memory limit of " + std::to_string(options.memory_limit_bytes >> 20) +
            " MiB reached (" + std::to_string(class_count.load()) + " classes, " +
            std::to_string(graph.dependency_count()) + " dependencies)");
  }
}

bool Engine::Impl::Claim(const std::string& fingerprint) {
  return fingerprints.insert(fingerprint).second;
}

std::string Engine::Impl::UsageString(ClassId cls) const {
  if (cls == kNoClass || cls >= class_count.load(std::memory_order_acquire)) return "{}";
  const ClassRec& c = Class(cls);
  auto usage_char = [&c](ContextId ctx, bool read) {
    const UsageKind in = read ? UsageKind::kUsedInRead : UsageKind::kUsedIn;
    const UsageKind on = read ? UsageKind::kEnabledRead : UsageKind::kEnabled;
    const bool used_in = c.HasUsage(in, ctx), enabled = c.HasUsage(on, ctx);
    if (used_in && enabled) return '?';
    if (enabled) return '+';
    if (used_in) return '-';
    return '.';
  };
  std::string s = "{";
  for (ContextId ctx : {kHardirqContext, kSoftirqContext}) {
    s += usage_char(ctx, false);
    s += usage_char(ctx, true);
  }
  for (int ctx = kFirstNumberedContext; ctx < kMaxContexts; ++ctx) {
    const auto id = static_cast<ContextId>(ctx);
    if (!((entered[id >> 6].load(std::memory_order_relaxed) >> (id & 63)) & 1u)) continue;
    s += "|" + ContextName(ctx) + ":";
    s += usage_char(id, false);
    s += usage_char(id, true);
  }
  return s + "}";
}

ReportedLock Engine::Impl::Describe(const HeldLock& h) const {
  ReportedLock r;
  r.name = h.cls != kNoClass ? Class(h.cls).name : "(unknown)";
  r.class_id = h.cls;
  r.instance = h.lock;
  r.mode = h.mode;
  r.trylock = h.trylock;
  r.ip = h.ip;
  r.usage = UsageString(h.cls);
  return r;
}

void Engine::Impl::FillThread(Finding* f, const ThreadState::Impl& t) const {
  f->thread = t.key;
  f->thread_name = t.name;
  f->run = t.run;
  for (const auto& h : t.held) f->held.push_back(Describe(h));
  const bool hardirqs_on = !t.disabled.Test(kHardirqContext) && !t.in_mask.Test(kHardirqContext);
  const bool softirqs_on = t.softirq_disable == 0 && !t.in_mask.Test(kSoftirqContext);
  f->thread_state = "[HC" + std::to_string(t.in_mask.Test(kHardirqContext)) + "[" +
                    std::to_string(t.in_count[kHardirqContext]) + "]:SC" +
                    std::to_string(t.in_mask.Test(kSoftirqContext)) + "[" +
                    std::to_string(t.in_count[kSoftirqContext]) + "]:HE" +
                    std::to_string(hardirqs_on) + ":SE" + std::to_string(softirqs_on) + "]";
}

void Engine::Impl::Emit(std::vector<Finding>* pending, Finding f) {
  if (!Claim(f.fingerprint)) return;
  findings.push_back(f);
  pending->push_back(std::move(f));
}

void Engine::Impl::Deliver(std::vector<Finding>& pending) {
  if (!sink) return;
  for (const auto& f : pending) sink->OnFinding(f);
}

// ---------------------------------------------------------------------------------------------
// The validator: everything below runs with graph_mu held.

namespace {

struct AcquireContext {
  Engine::Impl* engine;
  ThreadState::Impl* thread;
  const AcquireRequest* request;
  StackId stack = kNoStack;
  bool stack_taken = false;

  StackId Stack() {
    if (!stack_taken) {
      stack_taken = true;
      stack = request->stack;
      if (stack == kNoStack && request->stack_source) stack = request->stack_source->Capture();
    }
    return stack;
  }
};

// The first context at or after `from` in `m`, or kMaxContexts: MarkUsage visits only the
// fresh bits of a mask, not all 128 contexts.
int NextContext(const ContextMask& m, int from) {
  for (int w = from >> 6; w < 2; ++w) {
    std::uint64_t bits = m.words[w];
    if (w == from >> 6) bits &= ~std::uint64_t{0} << (from & 63);
    if (bits != 0) return w * 64 + __builtin_ctzll(bits);
  }
  return kMaxContexts;
}

std::string UsageBitName(const std::string& ctx, UsageKind k) {
  const bool read = k == UsageKind::kUsedInRead || k == UsageKind::kEnabledRead;
  const bool used_in = k == UsageKind::kUsedIn || k == UsageKind::kUsedInRead;
  return std::string(UsageKindPrefix(k)) + ctx + (used_in ? "" : "-ON") + (read ? "-R" : "-W");
}

}  // namespace

class Validator {
 public:
  Validator(Engine::Impl* e, std::vector<Finding>* pending) : e_(e), pending_(pending) {}

  // Sets the usage bits `needed` that `cls` lacks. Rules validated, per new bit:
  //  - single lock: USED_IN vs ENABLED of the same context on this class ("inconsistent lock
  //    state"); read variants conflict only with the write variant of the other direction;
  //  - multi-lock: a new USED_IN looks forwards for an ENABLED class, a new ENABLED looks
  //    backwards for a USED_IN class, along strong paths ("possible irq lock inversion").
  void MarkUsage(AcquireContext& ac, const HeldLock& h, const Usage& needed);

  // Validates a chain not seen before, ending with `next`. Rules:
  //  - recursive locking (same class held; exceptions: recursive read after read, nest_lock,
  //    and, outside strict mode, a different instance: left to the instance-order check);
  //  - for each held lock prev down to the first non-trylock (lockdep's check_prevs_add):
  //    circular dependency (a strong walk next -> ... -> prev), and the IRQ safe -> unsafe
  //    rule (a USED_IN class before prev, an ENABLED class after next); then records prev -> next.
  // Returns the chain's cache flags.
  std::uint8_t ValidateChain(AcquireContext& ac, const HeldLock& next);

  // Same-class instance order for `next` (default mode only).
  void CheckInstanceOrder(AcquireContext& ac, const HeldLock& next);

  // Reports an AA on the same instance found on a cached chain.
  void CheckSameInstance(AcquireContext& ac, const HeldLock& next);

 private:
  void AddDependency(AcquireContext& ac, const HeldLock& prev, const HeldLock& next);
  bool CheckCircular(AcquireContext& ac, const HeldLock& prev, const HeldLock& next);
  void CheckIrqUsage(AcquireContext& ac, const HeldLock& prev, const HeldLock& next);
  void ReportRecursive(AcquireContext& ac, const HeldLock& prev, const HeldLock& next);
  std::vector<ReportedDependency> PathDeps(const std::vector<PathStep>& path, bool backward) const;
  // The dependency prev -> next being added, as a report shows it.
  ReportedDependency NewDependency(AcquireContext& ac, const HeldLock& prev, const HeldLock& next) const;
  ReportedDependency FromDep(const Dependency& d) const;
  ReportedUsage UsageOf(ClassId cls, UsageKind k, ContextId ctx) const;
  Finding Base(FindingKind kind, const AcquireContext& ac, const HeldLock& target) const;

  Engine::Impl* e_;
  std::vector<Finding>* pending_;
};

ReportedDependency Validator::FromDep(const Dependency& d) const {
  ReportedDependency r;
  r.from = e_->Class(d.from).name;
  r.to = e_->Class(d.to).name;
  r.type = DepTypeName(d.types);
  r.stack = d.stack;
  r.ip = d.ip;
  r.run = d.run;
  r.thread = d.thread;
  return r;
}

ReportedUsage Validator::UsageOf(ClassId cls, UsageKind k, ContextId ctx) const {
  ReportedUsage u;
  const ClassRec& c = e_->Class(cls);
  u.lock = c.name;
  u.bit = UsageBitName(e_->ContextName(ctx), k);
  if (const UsageTrace* t = c.TraceOf(k, ctx)) {
    u.stack = t->stack;
    u.ip = t->ip;
    u.run = t->run;
  }
  return u;
}

std::vector<ReportedDependency> Validator::PathDeps(const std::vector<PathStep>& path,
                                                    bool backward) const {
  std::vector<ReportedDependency> out;
  for (const auto& step : path) out.push_back(FromDep(e_->graph.dependencies()[step.dep]));
  if (backward) std::reverse(out.begin(), out.end());
  return out;
}

ReportedDependency Validator::NewDependency(AcquireContext& ac, const HeldLock& prev,
                                             const HeldLock& next) const {
  ReportedDependency d;
  d.from = e_->Class(prev.cls).name;
  d.to = e_->Class(next.cls).name;
  d.type = DepTypeName(DepTypeOf(prev.mode, next.mode));
  d.stack = ac.Stack();
  d.ip = next.ip;
  d.run = ac.thread->run;
  d.thread = ac.thread->key;
  return d;
}

Finding Validator::Base(FindingKind kind, const AcquireContext& ac, const HeldLock& target) const {
  Finding f;
  f.kind = kind;
  e_->FillThread(&f, *ac.thread);
  f.target = e_->Describe(target);
  f.has_target = true;
  f.target_stack = ac.stack;
  const int ctx = ac.thread->frame().context;
  if (ctx >= 0) f.context = e_->ContextName(ctx);
  return f;
}

void Validator::MarkUsage(AcquireContext& ac, const HeldLock& h, const Usage& needed) {
  ClassRec& cls = e_->Class(h.cls);
  std::size_t record = cls.traces.size();  // this acquisition's trace record, once it has a bit
  auto record_bits = [&](UsageKind kind, const ContextMask& bits) {
    const int k = static_cast<int>(kind);
    cls.usage[k][0].fetch_or(bits.words[0], std::memory_order_release);
    cls.usage[k][1].fetch_or(bits.words[1], std::memory_order_release);
    if (record == cls.traces.size()) {
      cls.traces.push_back(
          ClassRec::TraceRecord{Usage{}, UsageTrace{ac.Stack(), h.ip, ac.thread->run}});
    }
    cls.traces[record].bits[kind] |= bits;
  };
  for (int k = 0; k < kUsageKinds; ++k) {
    const auto kind = static_cast<UsageKind>(k);
    ContextMask fresh = needed[kind] & ~cls.UsageMask(kind);
    if (kind == UsageKind::kEnabled || kind == UsageKind::kEnabledRead) {
      // An enabled bit for a context no class is used in (used_in_any, which covers this
      // class's used-in bits too) can neither conflict with the class's own usage nor lead to
      // an inversion: such bits, all of a first acquisition's in a program without interrupt
      // contexts, are recorded together. The checks below read only other kinds' bits at
      // their own context, so recording these first changes nothing they see.
      const ContextMask quiet = fresh & ~e_->used_in_any;
      if (!quiet.Empty()) {
        record_bits(kind, quiet);
        fresh = fresh & ~quiet;
      }
    }
    for (int c = NextContext(fresh, 0); c < kMaxContexts; c = NextContext(fresh, c + 1)) {
      const auto ctx = static_cast<ContextId>(c);
      const bool used_in = kind == UsageKind::kUsedIn || kind == UsageKind::kUsedInRead;
      const bool read = kind == UsageKind::kUsedInRead || kind == UsageKind::kEnabledRead;
      // Single-lock rule.
      const UsageKind conflicts[2] = {used_in ? UsageKind::kEnabled : UsageKind::kUsedIn,
                                      used_in ? UsageKind::kEnabledRead : UsageKind::kUsedInRead};
      bool inconsistent = false;
      for (int i = 0; i < (read ? 1 : 2); ++i) {
        const UsageKind other = conflicts[i];
        if (!cls.HasUsage(other, ctx)) continue;
        inconsistent = true;
        Finding f = Base(FindingKind::kInconsistentLockState, ac, h);
        f.headline = "inconsistent lock state";
        f.context = e_->ContextName(c);
        f.classes = {cls.name};
        f.previous_bit = UsageBitName(f.context, other);
        f.new_bit = UsageBitName(f.context, kind);
        f.safe_usage = UsageOf(h.cls, other, ctx);
        f.safe_lock = cls.name;
        f.fingerprint = FingerprintOf(f.kind, {f.context, cls.name});
        f.target_stack = ac.Stack();
        e_->Emit(pending_, std::move(f));
        break;
      }
      // Multi-lock rule: a dependency path to a class with the opposite usage. An enabled bit
      // looks for a class used in the context (the class itself included): there is none while
      // no class has been (used_in_any, as in every program without interrupt contexts), and
      // the walk over everything before the class is skipped.
      if (!inconsistent && (used_in || e_->used_in_any.Test(ctx))) {
        const Direction dir = used_in ? Direction::kForward : Direction::kBackward;
        const bool root_flag = used_in ? h.mode == AcquireMode::kSharedRecursive : IsRead(h.mode);
        const UsageKind want = used_in ? UsageKind::kEnabled : UsageKind::kUsedIn;
        const UsageKind want_read = used_in ? UsageKind::kEnabledRead : UsageKind::kUsedInRead;
        auto match = [&](State s) {
          const ClassRec& o = e_->Class(StateClass(s));
          if (o.HasUsage(want, ctx)) return true;
          return !StateFlag(s) && o.HasUsage(want_read, ctx);
        };
        auto path = e_->graph.Search(dir, MakeState(h.cls, root_flag), match);
        if (path) {
          // An empty path is the class itself: a non-recursive reader used in the context and
          // read-taken with it enabled (a queued writer makes the interrupted reader wait).
          const ClassId other = path->empty() ? h.cls : StateClass(path->back().state);
          const ClassRec& o = e_->Class(other);
          Finding f = Base(FindingKind::kIrqInversion, ac, h);
          f.headline = "possible irq lock inversion dependency detected";
          f.context = e_->ContextName(c);
          const UsageKind other_bit = o.HasUsage(want, ctx) ? want : want_read;
          if (used_in) {
            f.safe_lock = cls.name;
            f.unsafe_lock = o.name;
            f.safe_usage = UsageOf(h.cls, kind, ctx);
            f.unsafe_usage = UsageOf(other, other_bit, ctx);
            f.forward_path = PathDeps(*path, false);
          } else {
            f.safe_lock = o.name;
            f.unsafe_lock = cls.name;
            f.safe_usage = UsageOf(other, other_bit, ctx);
            f.unsafe_usage = UsageOf(h.cls, kind, ctx);
            f.backward_path = PathDeps(*path, true);
          }
          f.new_bit = UsageBitName(f.context, kind);
          f.previous_bit = UsageBitName(f.context, other_bit);
          f.classes = {f.safe_lock, f.unsafe_lock};
          f.fingerprint = FingerprintOf(f.kind, {f.context, f.safe_lock, f.unsafe_lock});
          f.target_stack = ac.Stack();
          // The new bit's trace is not recorded yet; show the current stack for it.
          (used_in ? f.safe_usage : f.unsafe_usage).stack = ac.Stack();
          (used_in ? f.safe_usage : f.unsafe_usage).ip = h.ip;
          e_->Emit(pending_, std::move(f));
        }
      }
      // Record the bit and where it was first set.
      record_bits(kind, ContextMask::Of(ctx));
      if (used_in) e_->used_in_any.Set(ctx);
    }
  }
  e_->UpdateUsageSummary(h.cls);
}

void Validator::ReportRecursive(AcquireContext& ac, const HeldLock& prev, const HeldLock& next) {
  Finding f = Base(FindingKind::kRecursiveLocking, ac, next);
  f.headline = "possible recursive locking detected";
  const std::string& name = e_->Class(next.cls).name;
  f.classes = {name};
  f.chain.push_back(ReportedDependency{name, name, "", kNoStack, prev.ip, ac.thread->run,
                                       ac.thread->key});
  f.fingerprint = FingerprintOf(f.kind, {name});
  f.target_stack = ac.Stack();
  if (prev.lock == next.lock) f.instances = {prev.lock};
  else f.instances = {prev.lock, next.lock};
  e_->Emit(pending_, std::move(f));
}

std::uint8_t Validator::ValidateChain(AcquireContext& ac, const HeldLock& next) {
  ThreadState::Impl& t = *ac.thread;
  const std::size_t base = t.frame().held_base;
  std::uint8_t flags = 0;
  bool nested_ok = false;
  // check_deadlock: the same class already held in this context.
  for (std::size_t i = t.held.size(); i-- > base;) {
    const HeldLock& prev = t.held[i];
    if (prev.cls != next.cls) continue;
    if (next.mode == AcquireMode::kSharedRecursive && IsRead(prev.mode)) continue;
    if (next.nested) {
      nested_ok = true;
      continue;
    }
    flags |= ChainCache::kSameClass;
    if (prev.lock == next.lock || e_->strict.load(std::memory_order_relaxed)) {
      ReportRecursive(ac, prev, next);
    }
  }
  if (nested_ok) return flags;  // lockdep: nest_lock serialises the class; no new dependency
  // check_prevs_add: edges from the top held lock, and past it while it is a trylock.
  for (std::size_t i = t.held.size(); i-- > base;) {
    const HeldLock& prev = t.held[i];
    if (prev.cls != next.cls) AddDependency(ac, prev, next);
    if (!prev.trylock) break;
  }
  return flags;
}

void Validator::AddDependency(AcquireContext& ac, const HeldLock& prev, const HeldLock& next) {
  const std::uint8_t type = DepTypeOf(prev.mode, next.mode);
  if (const Dependency* existing = e_->graph.Find(prev.cls, next.cls);
      existing && (existing->types & type) == type) {
    return;  // already recorded (a new chain over known dependencies)
  }
  CheckCircular(ac, prev, next);
  CheckIrqUsage(ac, prev, next);
  Dependency d;
  d.from = prev.cls;
  d.to = next.cls;
  d.types = type;
  d.stack = ac.Stack();
  d.ip = next.ip;
  d.run = ac.thread->run;
  d.thread = ac.thread->key;
  e_->graph.Add(d);
}

bool Validator::CheckCircular(AcquireContext& ac, const HeldLock& prev, const HeldLock& next) {
  // A strong walk next -> ... -> prev closes a cycle with prev -> next, unless prev is held
  // shared and the walk reaches it only through -(*R)-> (then the new -(S*)-> edge breaks it).
  // No path back at all (by the order's labels, or by the two-way search that re-ordering
  // needs anyway and Add() then reuses): no cycle, strong or not, and no search.
  if (!e_->graph.ClosesCycle(prev.cls, next.cls)) return true;
  const bool prev_exclusive = prev.mode == AcquireMode::kExclusive;
  auto match = [&](State s) {
    return StateClass(s) == prev.cls && (prev_exclusive || !StateFlag(s));
  };
  auto path = e_->graph.Search(
      Direction::kForward, MakeState(next.cls, next.mode == AcquireMode::kSharedRecursive), match,
      prev.cls);
  if (!path) return true;

  Finding f = Base(FindingKind::kCircularDependency, ac, next);
  f.headline = "possible circular locking dependency detected";
  f.target_stack = ac.Stack();
  // Printed order: #N (prev, with the dependency into it) ... #1, then #0 the new dependency.
  std::vector<ReportedDependency> walk = PathDeps(*path, false);
  for (auto it = walk.rbegin(); it != walk.rend(); ++it) f.chain.push_back(*it);
  f.chain.push_back(NewDependency(ac, prev, next));
  // The cycle's classes, starting at the acquired one, and a rotation-free fingerprint.
  std::vector<std::string> cycle{e_->Class(next.cls).name};
  for (const auto& step : *path) cycle.push_back(e_->Class(StateClass(step.state)).name);
  f.classes = cycle;
  auto smallest = std::min_element(cycle.begin(), cycle.end());
  std::rotate(cycle.begin(), smallest, cycle.end());
  f.fingerprint = FingerprintOf(f.kind, cycle);
  e_->Emit(pending_, std::move(f));
  return false;
}

void Validator::CheckIrqUsage(AcquireContext& ac, const HeldLock& prev, const HeldLock& next) {
  if (e_->used_in_any.Empty()) return;  // nothing is irq-safe anywhere: nothing to connect
  // Step 1: the contexts some class before prev (on a strong path) is used in.
  const State back_root = MakeState(prev.cls, IsRead(prev.mode));
  ContextMask safe;
  e_->graph.VisitAll(Direction::kBackward, back_root, [&](State s) {
    const ClassRec& c = e_->Class(StateClass(s));
    safe |= c.UsageMask(UsageKind::kUsedIn);
    if (!StateFlag(s)) safe |= c.UsageMask(UsageKind::kUsedInRead);
  });
  if (safe.Empty()) return;
  // Step 2: a class after next with an enabled usage in one of those contexts.
  const State fwd_root = MakeState(next.cls, next.mode == AcquireMode::kSharedRecursive);
  auto unsafe_of = [&](State s) {
    const ClassRec& c = e_->Class(StateClass(s));
    ContextMask m = c.UsageMask(UsageKind::kEnabled);
    if (!StateFlag(s)) m |= c.UsageMask(UsageKind::kEnabledRead);
    return m & safe;
  };
  auto forward = e_->graph.Search(Direction::kForward, fwd_root,
                                  [&](State s) { return !unsafe_of(s).Empty(); });
  if (!forward) return;
  const State unsafe_state = forward->empty() ? fwd_root : forward->back().state;
  const ContextMask both = unsafe_of(unsafe_state);
  ContextId ctx = 0;
  while (!both.Test(ctx)) ++ctx;
  // Step 3: the safe class for that context.
  auto backward = e_->graph.Search(Direction::kBackward, back_root, [&](State s) {
    const ClassRec& c = e_->Class(StateClass(s));
    return c.HasUsage(UsageKind::kUsedIn, ctx) ||
           (!StateFlag(s) && c.HasUsage(UsageKind::kUsedInRead, ctx));
  });
  if (!backward) return;  // cannot happen: step 1 saw it
  const ClassId safe_cls = backward->empty() ? prev.cls : StateClass(backward->back().state);
  const ClassId unsafe_cls = StateClass(unsafe_state);
  const ClassRec& sc = e_->Class(safe_cls);
  const ClassRec& uc = e_->Class(unsafe_cls);

  Finding f = Base(FindingKind::kIrqSafeToUnsafe, ac, next);
  f.context = e_->ContextName(ctx);
  f.headline = f.context + "-safe -> " + f.context + "-unsafe lock order detected";
  f.safe_lock = sc.name;
  f.unsafe_lock = uc.name;
  f.safe_usage = UsageOf(safe_cls, sc.HasUsage(UsageKind::kUsedIn, ctx) ? UsageKind::kUsedIn
                                                                         : UsageKind::kUsedInRead,
                         ctx);
  f.unsafe_usage = UsageOf(unsafe_cls,
                           uc.HasUsage(UsageKind::kEnabled, ctx) ? UsageKind::kEnabled
                                                                 : UsageKind::kEnabledRead,
                           ctx);
  f.backward_path = PathDeps(*backward, true);
  f.forward_path = PathDeps(*forward, false);
  // The new dependency prev -> next, for the report's middle lines.
  const ReportedDependency dep = NewDependency(ac, prev, next);
  f.chain = {dep};
  f.classes = {sc.name, uc.name};
  if (sc.name != dep.from && sc.name != dep.to) f.classes.push_back(dep.from);
  if (uc.name != dep.to && uc.name != dep.from) f.classes.push_back(dep.to);
  f.fingerprint = FingerprintOf(f.kind, {f.context, sc.name, uc.name});
  f.target_stack = ac.Stack();
  e_->Emit(pending_, std::move(f));
}

void Validator::CheckSameInstance(AcquireContext& ac, const HeldLock& next) {
  ThreadState::Impl& t = *ac.thread;
  for (std::size_t i = t.held.size(); i-- > t.frame().held_base;) {
    const HeldLock& prev = t.held[i];
    if (prev.lock != next.lock || prev.cls != next.cls) continue;
    if (next.mode == AcquireMode::kSharedRecursive && IsRead(prev.mode)) continue;
    if (next.nested) continue;
    ReportRecursive(ac, prev, next);
    return;
  }
}

void Validator::CheckInstanceOrder(AcquireContext& ac, const HeldLock& next) {
  ThreadState::Impl& t = *ac.thread;
  InstanceGraph* ig = nullptr;
  for (std::size_t i = t.held.size(); i-- > t.frame().held_base;) {
    const HeldLock& prev = t.held[i];
    if (prev.cls != next.cls || prev.lock == next.lock) continue;
    if (next.mode == AcquireMode::kSharedRecursive && IsRead(prev.mode)) continue;
    if (next.nested) return;
    if (!ig) {
      ig = &e_->instance_graphs[next.cls];
      e_->has_instance_graphs.store(true, std::memory_order_relaxed);
    }
    const std::uint64_t pair = (std::uint64_t{prev.serial} << 32) | next.serial;
    t.pair_cache[MixKey(0, pair) % kPairCacheSize] = pair;
    std::vector<LockId> order;
    if (!ig->Add(prev.serial, prev.lock, next.serial, next.lock, &order)) {
      Finding f = Base(FindingKind::kSameClassInstanceOrder, ac, next);
      f.headline = "possible instance-order deadlock in one lock class detected";
      const std::string& name = e_->Class(next.cls).name;
      f.classes = {name};
      f.instances = order;  // the existing order next -> ... -> prev
      f.fingerprint = FingerprintOf(f.kind, {name});
      f.target_stack = ac.Stack();
      e_->Emit(pending_, std::move(f));
    }
  }
}

namespace {

// On a cached chain that holds two locks of one class: is there anything the graph lock is
// needed for? An AA on one instance must be reported; an instance pair this thread has not
// validated must be recorded. Pairs seen before (the per-thread pair cache) need nothing.
bool SameClassNeedsCheck(const ThreadState::Impl& t, const HeldLock& next, bool strict) {
  for (std::size_t i = t.held.size(); i-- > t.frame().held_base;) {
    const HeldLock& prev = t.held[i];
    if (prev.cls != next.cls) continue;
    if (next.mode == AcquireMode::kSharedRecursive && IsRead(prev.mode)) continue;
    if (next.nested) return false;
    if (prev.lock == next.lock) return true;
    if (strict) continue;
    const std::uint64_t pair = (std::uint64_t{prev.serial} << 32) | next.serial;
    if (t.pair_cache[MixKey(0, pair) % kPairCacheSize] != pair) return true;
  }
  return false;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Engine public API.

Engine::Engine(EngineOptions options, FindingSink* sink)
    : impl_(std::make_unique<Impl>(options, sink)) {
  impl_->strict = options.strict_same_class;
}
Engine::~Engine() = default;

void Engine::set_sink(FindingSink* sink) { impl_->sink = sink; }
const EngineOptions& Engine::options() const { return impl_->options; }
void Engine::set_strict_same_class(bool strict) {
  impl_->strict = strict;
  impl_->options.strict_same_class = strict;
}

ClassId Engine::RegisterClass(std::uint64_t key, std::string_view name, std::uint8_t subclass) {
  if (!impl_->enabled.load(std::memory_order_relaxed)) return kNoClass;
  return impl_->Register(key, name, subclass);
}

ClassInfo Engine::GetClass(ClassId id) const {
  ClassInfo info;
  if (id == kNoClass || id >= impl_->class_count.load(std::memory_order_acquire)) return info;
  const ClassRec& c = impl_->Class(id);
  info.id = id;
  info.key = c.key;
  info.subclass = c.subclass;
  info.name = c.name;
  for (int k = 0; k < kUsageKinds; ++k) info.usage.bits[k] = c.UsageMask(static_cast<UsageKind>(k));
  return info;
}

void Engine::SetContextName(ContextId context, std::string_view name) {
  if (context >= kMaxContexts) return;
  std::lock_guard<std::mutex> g(impl_->graph_mu);
  impl_->context_names[context] = std::string(name);
}

std::string Engine::ContextName(ContextId context) const {
  std::lock_guard<std::mutex> g(impl_->graph_mu);
  return impl_->ContextName(context);
}

std::unique_ptr<ThreadState> Engine::NewThread(ThreadKey key, std::string name, RunId run) {
  auto impl = std::make_unique<ThreadState::Impl>();
  impl->key = key;
  impl->name = name.empty() ? "thread" : std::move(name);
  impl->run = run;
  impl->held.reserve(32);
  // Hardirqs and softirqs start enabled; numbered contexts (signals) start disabled until the
  // caller says they can arrive (a handler is installed and the signal is unblocked).
  for (int c = kFirstNumberedContext; c < kMaxContexts; ++c) {
    impl->disabled.Set(static_cast<ContextId>(c));
  }
  ThreadState::Impl::Frame process;
  process.seed = MixKey(0x6c6f636b67726170ull, 0);
  impl->frames.push_back(process);
  impl->max_held = options().max_held_locks;
  impl->usage_summary = impl_->usage_summary.get();
  impl->SyncHot();
  impl->RecomputeEnabled();
  impl_->CoverEnabled(impl->enabled);
  return std::unique_ptr<ThreadState>(new ThreadState(std::move(impl)));
}

namespace {

// Builds a lifecycle finding (no graph work) for `t`.
Finding LifecycleFinding(Engine::Impl* e, FindingKind kind, std::string headline,
                         const ThreadState::Impl& t) {
  Finding f;
  f.kind = kind;
  f.headline = std::move(headline);
  e->FillThread(&f, t);
  const int ctx = t.frame().context;
  if (ctx >= 0) f.context = e->ContextName(ctx);
  return f;
}

}  // namespace

void Engine::ThreadExit(ThreadState& thread, std::uint64_t ip) {
  Impl& e = *impl_;
  ThreadState::Impl& t = *thread.impl_;
  if (!e.enabled.load(std::memory_order_relaxed) || t.held.empty()) {
    t.held.clear();
    t.SyncHot();
    return;
  }
  std::vector<Finding> pending;
  {
    std::lock_guard<std::mutex> g(e.graph_mu);
    Finding f = LifecycleFinding(&e, FindingKind::kLocksHeldAtThreadExit,
                                 t.name + "/" + std::to_string(t.key) + " still has locks held!", t);
    std::vector<std::string> names;
    for (const auto& h : t.held) names.push_back(f.held[&h - t.held.data()].name);
    f.classes = names;
    std::sort(names.begin(), names.end());
    f.fingerprint = FingerprintOf(f.kind, names);
    f.target.ip = ip;
    e.Emit(&pending, std::move(f));
  }
  t.held.clear();
  t.frames.resize(1);
  t.FlushSteps();
  t.SyncHot();
  e.Deliver(pending);
}

void Engine::InitLock(ThreadState& thread, LockId lock, ClassId cls, std::uint64_t ip,
                      StackId stack) {
  Impl& e = *impl_;
  if (!e.enabled.load(std::memory_order_relaxed) || cls == kNoClass) return;
  ThreadState::Impl& t = *thread.impl_;
  std::vector<Finding> pending;
  for (const auto& h : t.held) {
    if (h.lock != lock) continue;
    std::lock_guard<std::mutex> g(e.graph_mu);
    Finding f = LifecycleFinding(&e, FindingKind::kHeldLockReinit, "held lock re-initialized!", t);
    f.target = e.Describe(h);
    f.target.ip = ip;
    f.has_target = true;
    f.target_stack = stack;
    f.classes = {f.target.name};
    f.fingerprint = FingerprintOf(f.kind, f.classes);
    e.Emit(&pending, std::move(f));
    break;
  }
  InstanceShard& shard = e.ShardOf(lock);
  {
    std::lock_guard<std::mutex> g(shard.mu);
    auto [it, inserted] = shard.map.try_emplace(lock);
    if (inserted) e.instance_count.fetch_add(1, std::memory_order_relaxed);
    else shard.epoch.fetch_add(1, std::memory_order_release);
    InstanceSlot* slot = it->second.slot;
    it->second = InstanceRec{cls, e.next_serial.fetch_add(1, std::memory_order_relaxed), false,
                             kNoStack, 0, slot};
    if (slot) slot->Bind(lock, cls, it->second.serial);
  }
  e.Deliver(pending);
}

void Engine::SetLockClass(LockId lock, ClassId cls) {
  Impl& e = *impl_;
  if (!e.enabled.load(std::memory_order_relaxed) || cls == kNoClass) return;
  InstanceShard& shard = e.ShardOf(lock);
  std::lock_guard<std::mutex> g(shard.mu);
  auto [it, inserted] = shard.map.try_emplace(lock);
  if (inserted) {
    e.instance_count.fetch_add(1, std::memory_order_relaxed);
    it->second.serial = e.next_serial.fetch_add(1, std::memory_order_relaxed);
  } else {
    shard.epoch.fetch_add(1, std::memory_order_release);
  }
  it->second.cls = cls;
  it->second.destroyed = false;
  if (it->second.slot) it->second.slot->Bind(lock, cls, it->second.serial);
}

void Engine::DestroyLock(ThreadState& thread, LockId lock, std::uint64_t ip,
                         StackSource* stack_source, StackId stack) {
  Impl& e = *impl_;
  if (!e.enabled.load(std::memory_order_relaxed)) return;
  ThreadState::Impl& t = *thread.impl_;
  std::vector<Finding> pending;
  auto get_stack = [&]() {
    if (stack == kNoStack && stack_source) stack = stack_source->Capture();
    return stack;
  };
  for (const auto& h : t.held) {
    if (h.lock != lock) continue;
    std::lock_guard<std::mutex> g(e.graph_mu);
    Finding f = LifecycleFinding(&e, FindingKind::kHeldLockFreed, "held lock freed!", t);
    f.target = e.Describe(h);
    f.has_target = true;
    f.destroy_ip = ip;
    f.destroy_stack = get_stack();
    f.target_stack = f.destroy_stack;
    f.classes = {f.target.name};
    f.fingerprint = FingerprintOf(f.kind, f.classes);
    e.Emit(&pending, std::move(f));
    break;
  }
  InstanceShard& shard = e.ShardOf(lock);
  std::uint32_t serial = 0;
  ClassId cls = kNoClass;
  {
    std::lock_guard<std::mutex> g(shard.mu);
    auto it = shard.map.find(lock);
    if (it != shard.map.end() && !it->second.destroyed) {
      shard.epoch.fetch_add(1, std::memory_order_release);
      it->second.destroyed = true;
      if (it->second.slot) it->second.slot->lock.store(kNoLock, std::memory_order_release);
      it->second.destroy_ip = ip;
      it->second.destroy_stack = get_stack();
      serial = it->second.serial;
      cls = it->second.cls;
      // Remember a bounded number of destroyed locks for use-after-destroy reports.
      shard.destroyed.emplace_back(lock, serial);
      while (shard.destroyed.size() > kDestroyedKeptPerShard) {
        auto [old_lock, old_serial] = shard.destroyed.front();
        shard.destroyed.pop_front();
        auto old = shard.map.find(old_lock);
        if (old != shard.map.end() && old->second.destroyed && old->second.serial == old_serial) {
          if (old->second.slot) e.FreeSlot(old->second.slot);
          shard.map.erase(old);
          e.instance_count.fetch_sub(1, std::memory_order_relaxed);
        }
      }
    }
  }
  if (serial && cls != kNoClass && e.has_instance_graphs.load(std::memory_order_relaxed)) {
    std::lock_guard<std::mutex> g(e.graph_mu);
    auto ig = e.instance_graphs.find(cls);
    if (ig != e.instance_graphs.end()) ig->second.Remove(serial);
  }
  e.Deliver(pending);
}

InstanceHandle Engine::HandleOf(LockId lock) {
  Impl& e = *impl_;
  if (!e.enabled.load(std::memory_order_relaxed)) return 0;
  InstanceShard& shard = e.ShardOf(lock);
  std::lock_guard<std::mutex> g(shard.mu);
  auto it = shard.map.find(lock);
  if (it == shard.map.end() || it->second.destroyed || it->second.cls == kNoClass) return 0;
  if (it->second.slot == nullptr) {
    it->second.slot = e.NewSlot();
    it->second.slot->Bind(lock, it->second.cls, it->second.serial);
  }
  return HandleOfSlot(it->second.slot);
}

bool Engine::KnowsLock(LockId lock) const {
  InstanceShard& shard = impl_->ShardOf(lock);
  std::lock_guard<std::mutex> g(shard.mu);
  auto it = shard.map.find(lock);
  return it != shard.map.end() && !it->second.destroyed;
}

Engine::LockState Engine::GetLockState(LockId lock) const {
  InstanceShard& shard = impl_->ShardOf(lock);
  std::lock_guard<std::mutex> g(shard.mu);
  auto it = shard.map.find(lock);
  if (it == shard.map.end()) return LockState::kUnknown;
  return it->second.destroyed ? LockState::kDestroyed : LockState::kLive;
}

ClassId Engine::LockClass(LockId lock) const {
  InstanceShard& shard = impl_->ShardOf(lock);
  std::lock_guard<std::mutex> g(shard.mu);
  auto it = shard.map.find(lock);
  return it == shard.map.end() || it->second.destroyed ? kNoClass : it->second.cls;
}

namespace {

// The part of an acquisition that takes the graph lock: new usage bits, a new chain, or
// same-class instances to check. Kept out of line so the fast path stays small.
[[gnu::noinline]] void AcquireSlow(Engine::Impl& e, AcquireContext& ac, const HeldLock& h,
                                   const Usage& needed, bool new_usage, bool cached,
                                   std::uint8_t chain_flags, bool same_class_work,
                                   std::vector<Finding>* pending) {
  std::lock_guard<std::mutex> g(e.graph_mu);
  if (!e.enabled.load(std::memory_order_relaxed)) return;
  Validator v(&e, pending);
  if (new_usage) v.MarkUsage(ac, h, needed);
  if (!cached) {
    // Trylocks are not validated (they cannot block) but stay part of the chain.
    chain_flags = ac.request->trylock ? 0 : v.ValidateChain(ac, h);
    e.chains.Insert(h.chain_key, chain_flags);
    e.CheckMemory();
  } else if (same_class_work) {
    v.CheckSameInstance(ac, h);
  }
  if ((chain_flags & ChainCache::kSameClass) && !e.strict.load(std::memory_order_relaxed)) {
    v.CheckInstanceOrder(ac, h);
  }
}

[[gnu::noinline]] void ReportUseOfDestroyed(Engine::Impl& e, AcquireContext& ac, const HeldLock& h,
                                            const InstanceRec& inst,
                                            std::vector<Finding>* pending) {
  std::lock_guard<std::mutex> g(e.graph_mu);
  Finding f = LifecycleFinding(&e, FindingKind::kUseOfDestroyedLock,
                               "use of destroyed lock detected!", *ac.thread);
  f.target = e.Describe(h);
  f.has_target = true;
  f.target_stack = ac.Stack();
  f.destroy_ip = inst.destroy_ip;
  f.destroy_stack = inst.destroy_stack;
  f.classes = {f.target.name};
  f.fingerprint = FingerprintOf(f.kind, f.classes);
  e.Emit(pending, std::move(f));
}

}  // namespace

void Engine::Acquire(ThreadState& thread, const AcquireRequest& request) {
  Impl& e = *impl_;
  if (!e.enabled.load(std::memory_order_relaxed)) return;
  ThreadState::Impl& t = *thread.impl_;

  // Fastest path: this exact step (same chain so far, same lock, same request) was taken
  // before and nothing it depended on has changed.
  const std::uint64_t top = t.TopKey();
  const bool nested = request.nest_lock != kNoLock && thread.Holds(request.nest_lock);
  const auto request_bits = static_cast<std::uint16_t>(
      static_cast<unsigned>(request.mode) | (unsigned(request.trylock) << 2) |
      (unsigned(request.subclass) << 3) | (unsigned(nested) << 7));
  InstanceShard& shard = e.ShardOf(request.lock);
  // Two candidate slots per step, so two hot steps that collide do not evict each other.
  const ChainStep* step = t.FindStep(top, request.lock, StepKey(top, request_bits, false));
  if (step == nullptr) step = t.FindStep(top, request.lock, StepKey(top, request_bits, true));
  const std::uint64_t shard_epoch = shard.epoch.load(std::memory_order_acquire);
  if (step != nullptr && step->shard_epoch == shard_epoch &&
      t.held.size() - t.frame().held_base < e.options.max_held_locks) {
    HeldLock h = step->held;
    h.ip = request.ip;
    if (!(step->flags & engine_internal::kStepSameClass) ||
        !SameClassNeedsCheck(t, h, e.strict.load(std::memory_order_relaxed))) {
      e.CountCacheHit(t);
      t.held.push_back(h);
      t.top_key = h.chain_key;
      return;
    }
  }

  AcquireContext ac{&e, &t, &request};
  std::vector<Finding> pending;

  // The instance and its class: from the thread's cache while the shard is unchanged.
  InstanceRec inst;
  bool destroyed = false;
  std::uint64_t inst_epoch = 0;
  auto& cached_inst = t.instance_cache[(request.lock >> 4) % kInstanceCacheSize];
  if (cached_inst.lock == request.lock &&
      cached_inst.epoch == shard_epoch) {
    inst.cls = cached_inst.cls;
    inst.serial = cached_inst.serial;
    inst.slot = cached_inst.slot;
    inst_epoch = shard_epoch;
  } else {
    std::lock_guard<std::mutex> g(shard.mu);
    auto [it, inserted] = shard.map.try_emplace(request.lock);
    if (inserted) {
      e.instance_count.fetch_add(1, std::memory_order_relaxed);
      it->second.serial = e.next_serial.fetch_add(1, std::memory_order_relaxed);
    }
    inst = it->second;
    destroyed = inst.destroyed;
    inst_epoch = shard.epoch.load(std::memory_order_relaxed);
    if (!destroyed && inst.cls != kNoClass) {
      cached_inst = {request.lock, inst.cls, inst.serial, inst_epoch, inst.slot};
    }
  }
  if (inst.cls == kNoClass) {
    char name[40];
    std::snprintf(name, sizeof name, "lock#%llx", static_cast<unsigned long long>(request.lock));
    inst.cls = e.Register(request.lock ^ 0xa5a5a5a5a5a5a5a5ull, name, 0);
    if (inst.cls == kNoClass) return;
    SetLockClass(request.lock, inst.cls);
  }
  ClassId cls = inst.cls;
  if (request.subclass) {
    const ClassRec& base = e.Class(cls);
    cls = e.Register(base.key, base.name, request.subclass);
    if (cls == kNoClass) return;
  }

  HeldLock h;
  h.lock = request.lock;
  h.cls = cls;
  h.serial = inst.serial;
  h.mode = request.mode;
  h.trylock = request.trylock;
  h.ip = request.ip;
  h.frame = static_cast<std::uint32_t>(t.frames.size() - 1);
  h.nested = nested;

  if (destroyed) ReportUseOfDestroyed(e, ac, h, inst, &pending);

  const std::size_t depth = t.held.size() - t.frame().held_base;
  if (depth >= e.options.max_held_locks) {
    e.TurnOff(t.name + "/" + std::to_string(t.key) + " holds more than " +
              std::to_string(e.options.max_held_locks) + " locks (raise max_held_locks)");
    return;
  }

  // Usage bits this acquisition implies; the slow path only when the class lacks some.
  Usage needed;
  const bool read = IsRead(request.mode);
  if (!request.trylock) needed[read ? UsageKind::kUsedInRead : UsageKind::kUsedIn] = t.in_mask;
  needed[read ? UsageKind::kEnabledRead : UsageKind::kEnabled] = t.enabled;
  const ClassRec& crec = e.Class(cls);
  bool new_usage = false;
  for (int k = 0; k < kUsageKinds && !new_usage; ++k) {
    const auto kind = static_cast<UsageKind>(k);
    new_usage = !(needed[kind] & ~crec.UsageMask(kind)).Empty();
  }

  h.chain_key = ChainKey(top, cls, request.mode, request.trylock, nested);
  std::uint8_t chain_flags = 0;
  bool cached = e.chains.Find(h.chain_key, &chain_flags);
  if (cached) e.CountCacheHit(t);

  bool same_class_work = cached && (chain_flags & ChainCache::kSameClass) &&
                         SameClassNeedsCheck(t, h, e.strict.load(std::memory_order_relaxed));
  if (new_usage || !cached || same_class_work) {
    AcquireSlow(e, ac, h, needed, new_usage, cached, chain_flags, same_class_work, &pending);
    if (!cached) cached = e.chains.Find(h.chain_key, &chain_flags);  // what validation settled
  }
  // A validated, flag-free chain of two or more locks ending with an instance that has a
  // handle: noted in its slot now, so the handle path's first pass over it needs no chain-cache
  // probe (a pool's pairs are first taken here, and over thousands of locks that probe misses).
  if (cached && inst.slot != nullptr && request.subclass == 0 && !nested &&
      !(chain_flags & ChainCache::kSameClass) &&
      t.held.size() > t.frame().held_base && !destroyed && !inst.slot->HasChain(h.chain_key)) {
    inst.slot->NoteChain(h.chain_key);
  }
  t.held.push_back(h);
  t.top_key = h.chain_key;
  // Memoise the step: its usage bits are set and its chain is validated now.
  if (!destroyed && inst.cls != kNoClass && inst_epoch != 0 &&
      e.enabled.load(std::memory_order_relaxed)) {
    const bool same_class = (chain_flags & ChainCache::kSameClass) != 0;
    const std::uint64_t key = StepKey(top, request_bits, same_class);
    ChainStep* slot = t.StepSlot(top, request.lock, key);
    slot->key = key;
    slot->held = h;
    slot->held.ip = 0;
    slot->shard_epoch = inst_epoch;
    slot->flags = same_class ? engine_internal::kStepSameClass : 0;
  }
  if (!pending.empty()) e.Deliver(pending);
}

namespace {

// A chain not noted in the slot: validated and flag-free in the chain cache? Then noted.
bool ChainValidatedInCache(Engine::Impl& e, ThreadState::Impl& t, InstanceSlot* slot,
                           std::uint64_t chain_key) {
  std::uint8_t chain_flags = 0;
  if (!e.chains.Find(chain_key, &chain_flags) || (chain_flags & ChainCache::kSameClass)) {
    return false;
  }
  slot->NoteChain(chain_key);
  e.CountCacheHit(t);
  return true;
}
// The class's usage masks cover what this acquisition implies (the summary byte did not say).
bool UsageCoveredByClass(const Engine::Impl& e, const ThreadState::Impl& t, ClassId cls,
                         bool read, bool trylock) {
  const ClassRec& crec = e.Class(cls);
  const UsageKind used_in = read ? UsageKind::kUsedInRead : UsageKind::kUsedIn;
  const UsageKind enabled = read ? UsageKind::kEnabledRead : UsageKind::kEnabled;
  if (!trylock && !(t.in_mask & ~crec.UsageMask(used_in)).Empty()) return false;
  return (t.enabled & ~crec.UsageMask(enabled)).Empty();
}

// TryAcquireCached with a handle after the inline common case (engine_internal::
// TryAcquireFromSlot) declined: the instance from `handle`, the chain from the slot's notes or
// else the chain cache (noted in the slot when found there), the usage bits from the class
// summary or else the class's masks. Out of line: the common case stays small in the hooks.
[[gnu::noinline]] bool AcquireCachedMiss(Engine::Impl& e, ThreadState::Impl& t, LockId lock,
                                         AcquireMode mode, bool trylock, std::uint64_t ip,
                                         InstanceHandle handle) {
  const std::size_t held = t.held.size();
  if (held == t.held.capacity() || held - t.frame_base >= t.max_held) return false;
  InstanceSlot* slot = SlotOfHandle(handle);
  const std::uint64_t binding = slot->binding.load(std::memory_order_acquire);
  if (slot->lock.load(std::memory_order_acquire) != lock) return false;
  const auto cls = static_cast<ClassId>(binding);
  if (cls == kNoClass) return false;
  const std::uint64_t chain_key = ChainKey(t.top_key, cls, mode, trylock, /*nested=*/false);
  // A chain of one lock in its context is valid by itself (ValidateChain finds no held lock
  // to check against and adds no dependency): only its usage bits matter, so the first lock
  // of a chain costs no chain-cache probe.
  if (held > t.frame_base && !slot->HasChain(chain_key) &&
      !ChainValidatedInCache(e, t, slot, chain_key)) {
    return false;
  }
  // Usage bits this acquisition implies must all be set already (else the slow path sets
  // them): from the class's usage summary byte when it settles it, else from the class.
  const bool read = IsRead(mode);
  if ((!(e.UsageSummary(cls) &
         UsageCoversBit(read ? UsageKind::kEnabledRead : UsageKind::kEnabled)) ||
       !(trylock || t.in_mask.Empty())) &&
      !UsageCoveredByClass(e, t, cls, read, trylock)) {
    return false;
  }
  engine_internal::HeldWords::Of(lock, chain_key, binding, t.frame_index, mode, trylock,
                                 /*nested=*/false)
      .StoreTo(&t.held.PushUnchecked(), ip);
  t.top_key = chain_key;
  return true;
}

}  // namespace

bool Engine::TryAcquireCached(ThreadState& thread, LockId lock, AcquireMode mode, bool trylock,
                              std::uint64_t ip, InstanceHandle handle) {
  Impl& e = *impl_;
  ThreadState::Impl& t = *thread.impl_;
  // With a handle: the instance, its noted chains and its class's usage summary
  // (engine_internal::TryAcquireFromSlot), then the chain cache and the class's usage masks
  // (AcquireCachedMiss). Anything else (a chain never validated, new usage, a same-class
  // chain, the engine off) is Acquire's business.
  if (handle != 0) {
    if (!e.enabled.load(std::memory_order_relaxed)) return false;
    return engine_internal::TryAcquireFromSlot(t, lock, mode, trylock, ip, handle) ||
           AcquireCachedMiss(e, t, lock, mode, trylock, ip, handle);
  }
  // Without a handle: the memo alone, checked against the lock's shard epoch.
  const std::size_t held = t.held.size();
  if (held == t.held.capacity() || held - t.frame_base >= t.max_held ||
      !e.enabled.load(std::memory_order_relaxed)) {
    return false;
  }
  const std::uint64_t top = t.top_key;
  const ChainStep* step = t.FindStep(top, lock, StepKey(top, RequestBits(mode, trylock), false));
  if (step == nullptr ||
      e.ShardOf(lock).epoch.load(std::memory_order_acquire) != step->shard_epoch) {
    return false;
  }
  CopyHeld(&t.held.PushUnchecked(), step->held, ip);
  t.top_key = step->held.chain_key;
  return true;
}

bool Engine::TryAcquireCachedAfterSlot(ThreadState& thread, LockId lock, AcquireMode mode,
                                       bool trylock, std::uint64_t ip, InstanceHandle handle) {
  Impl& e = *impl_;
  if (!e.enabled.load(std::memory_order_relaxed)) return false;
  return AcquireCachedMiss(e, *thread.impl_, lock, mode, trylock, ip, handle);
}

bool Engine::TryReleaseInnermost(ThreadState& thread, LockId lock) {
  // With the engine off this only pops the thread's own stack, which nothing reads then.
  return engine_internal::TryReleaseInnermost(*thread.impl_, lock);
}

void Engine::Release(ThreadState& thread, LockId lock, std::uint64_t ip) {
  Impl& e = *impl_;
  if (!e.enabled.load(std::memory_order_relaxed)) return;
  ThreadState::Impl& t = *thread.impl_;
  for (std::size_t i = t.held.size(); i-- > 0;) {
    if (t.held[i].lock != lock) continue;
    t.held.erase(t.held.begin() + static_cast<std::ptrdiff_t>(i));
    for (std::size_t fi = 1; fi < t.frames.size(); ++fi) {
      if (t.frames[fi].held_base > i) --t.frames[fi].held_base;
    }
    // Locks above it in the same frame form a new chain: recompute their keys (lockdep
    // re-acquires them; their dependencies exist already through the released lock).
    for (std::size_t j = i; j < t.held.size(); ++j) {
      HeldLock& h = t.held[j];
      const auto& f = t.frames[std::min<std::size_t>(h.frame, t.frames.size() - 1)];
      const std::uint64_t prev = (j > f.held_base && t.held[j - 1].frame == h.frame)
                                     ? t.held[j - 1].chain_key
                                     : f.seed;
      h.chain_key = ChainKey(prev, h.cls, h.mode, h.trylock, h.nested);
    }
    t.SyncHot();
    return;
  }
  // Not held: bad unlock balance.
  std::vector<Finding> pending;
  {
    ClassId cls = LockClass(lock);
    std::lock_guard<std::mutex> g(e.graph_mu);
    Finding f = LifecycleFinding(&e, FindingKind::kBadUnlockBalance, "bad unlock balance detected!", t);
    HeldLock h;
    h.lock = lock;
    h.cls = cls;
    h.ip = ip;
    f.target = e.Describe(h);
    f.has_target = true;
    f.classes = {f.target.name};
    f.fingerprint = FingerprintOf(f.kind, f.classes);
    e.Emit(&pending, std::move(f));
  }
  e.Deliver(pending);
}

void Engine::CancelAcquire(ThreadState& thread, LockId lock) {
  ThreadState::Impl& t = *thread.impl_;
  for (std::size_t i = t.held.size(); i-- > 0;) {
    if (t.held[i].lock != lock) continue;
    if (i + 1 == t.held.size()) {
      t.held.pop_back();
    } else {
      // Rare: fall back to an ordinary release, which re-keys the locks above it.
      const bool was_enabled = impl_->enabled.load();
      if (was_enabled) Release(thread, lock, 0);
      else t.held.erase(t.held.begin() + static_cast<std::ptrdiff_t>(i));
    }
    t.SyncHot();
    return;
  }
}

bool Engine::IsHeld(const ThreadState& thread, LockId lock) const { return thread.Holds(lock); }

void Engine::EnterContext(ThreadState& thread, ContextId context) {
  if (context >= kMaxContexts) return;
  ThreadState::Impl& t = *thread.impl_;
  ThreadState::Impl::Frame f;
  f.context = context;
  f.held_base = t.held.size();
  f.seed = MixKey(0x6972712d636f6e74ull, context);  // chains are per context kind, not per entry
  f.saved_disabled = t.disabled;
  f.saved_softirq_disable = t.softirq_disable;
  t.frames.push_back(f);
  t.FlushSteps();  // memoised steps belong to the frame they were taken in
  t.SyncHot();
  ++t.in_count[context];
  t.in_mask.Set(context);
  if (context == kHardirqContext) t.disabled.Set(kHardirqContext);
  if (context == kSoftirqContext) ++t.softirq_disable;
  t.RecomputeEnabled();
  impl_->CoverEnabled(t.enabled);
  impl_->entered[context >> 6].fetch_or(std::uint64_t{1} << (context & 63),
                                        std::memory_order_relaxed);
}

void Engine::ExitContext(ThreadState& thread, ContextId context, std::uint64_t ip) {
  Impl& e = *impl_;
  ThreadState::Impl& t = *thread.impl_;
  if (t.frames.size() <= 1) return;  // unbalanced exit: nothing to leave
  const auto frame = t.frames.back();
  std::vector<Finding> pending;
  if (t.held.size() > frame.held_base && e.enabled.load(std::memory_order_relaxed)) {
    std::lock_guard<std::mutex> g(e.graph_mu);
    Finding f = LifecycleFinding(&e, FindingKind::kLocksHeldAtIrqExit,
                                 "lock held when returning from interrupt context!", t);
    std::vector<std::string> names;
    for (std::size_t i = frame.held_base; i < t.held.size(); ++i) {
      names.push_back(e.Class(t.held[i].cls).name);
    }
    f.classes = names;
    f.context = e.ContextName(frame.context);
    std::sort(names.begin(), names.end());
    names.insert(names.begin(), f.context);
    f.fingerprint = FingerprintOf(f.kind, names);
    f.target.ip = ip;
    e.Emit(&pending, std::move(f));
  }
  t.held.resize(std::min(t.held.size(), frame.held_base));
  t.frames.pop_back();
  t.FlushSteps();
  t.SyncHot();
  const int ctx = frame.context >= 0 ? frame.context : context;
  if (t.in_count[ctx] > 0 && --t.in_count[ctx] == 0) t.in_mask.Clear(static_cast<ContextId>(ctx));
  t.disabled = frame.saved_disabled;
  t.softirq_disable = frame.saved_softirq_disable;
  t.RecomputeEnabled();
  impl_->CoverEnabled(t.enabled);
  e.Deliver(pending);
}

void Engine::DisableContext(ThreadState& thread, ContextId context) {
  if (context >= kMaxContexts) return;
  ThreadState::Impl& t = *thread.impl_;
  if (context == kSoftirqContext) ++t.softirq_disable;
  else t.disabled.Set(context);
  t.RecomputeEnabled();
  impl_->CoverEnabled(t.enabled);
}

void Engine::EnableContext(ThreadState& thread, ContextId context) {
  if (context >= kMaxContexts) return;
  ThreadState::Impl& t = *thread.impl_;
  if (context == kSoftirqContext) {
    if (t.softirq_disable > 0) --t.softirq_disable;
  } else {
    t.disabled.Clear(context);
  }
  t.RecomputeEnabled();
  impl_->CoverEnabled(t.enabled);
}

void Engine::SetDisabledContexts(ThreadState& thread, ContextMask mask) {
  ThreadState::Impl& t = *thread.impl_;
  const bool soft = mask.Test(kSoftirqContext);
  mask.Clear(kSoftirqContext);
  t.disabled = mask;
  if (soft && t.softirq_disable == 0) t.softirq_disable = 1;
  if (!soft && t.softirq_disable > 0) t.softirq_disable = 0;
  t.RecomputeEnabled();
  impl_->CoverEnabled(t.enabled);
}

bool Engine::enabled() const { return impl_->enabled.load(); }

std::string Engine::disabled_reason() const {
  std::lock_guard<std::mutex> g(impl_->reason_mu);
  return impl_->reason;
}

EngineStats Engine::stats() const {
  EngineStats s;
  std::lock_guard<std::mutex> g(impl_->graph_mu);
  s.classes = impl_->class_count.load();
  s.dependencies = impl_->graph.dependency_count();
  s.chains = impl_->chains.size();
  s.chain_cache_hits = impl_->cache_hits.load();
  s.instances = impl_->instance_count.load();
  s.findings = impl_->findings.size();
  s.bytes = impl_->ApproximateBytes();
  return s;
}

std::vector<ClassInfo> Engine::Classes() const {
  std::vector<ClassInfo> out;
  const std::uint32_t n = impl_->class_count.load(std::memory_order_acquire);
  for (ClassId id = 0; id < n; ++id) out.push_back(GetClass(id));
  return out;
}

std::vector<DependencyInfo> Engine::Dependencies() const {
  std::lock_guard<std::mutex> g(impl_->graph_mu);
  std::vector<DependencyInfo> out;
  for (const auto& d : impl_->graph.dependencies()) {
    out.push_back(DependencyInfo{d.from, d.to, d.types, d.stack, d.ip, d.run, d.thread});
  }
  return out;
}

std::vector<std::vector<ClassId>> Engine::StronglyConnectedClasses() const {
  std::lock_guard<std::mutex> g(impl_->graph_mu);
  return impl_->graph.Cycles();
}

std::vector<Finding> Engine::Findings() const {
  std::lock_guard<std::mutex> g(impl_->graph_mu);
  return impl_->findings;
}

std::string Engine::CheckInvariants() const {
  std::lock_guard<std::mutex> g(impl_->graph_mu);
  std::string graph = impl_->graph.CheckInvariants();
  if (!graph.empty()) return graph;
  const std::uint32_t n = impl_->class_count.load();
  if (impl_->graph.class_count() > n) return "graph has vertices for unregistered classes";
  for (const auto& d : impl_->graph.dependencies()) {
    if (d.from >= n || d.to >= n) return "dependency names an unregistered class";
  }
  for (ClassId id = 0; id < n; ++id) {
    const ClassRec& c = impl_->Class(id);
    for (int k = 0; k < kUsageKinds; ++k) {
      const ContextMask m = c.UsageMask(static_cast<UsageKind>(k));
      for (int ctx = 0; ctx < kMaxContexts; ++ctx) {
        if (m.Test(static_cast<ContextId>(ctx)) &&
            !c.TraceOf(static_cast<UsageKind>(k), static_cast<ContextId>(ctx))) {
          return "usage bit without a trace on class " + c.name;
        }
      }
    }
  }
  if (impl_->fingerprints.size() != impl_->findings.size()) return "finding dedup out of sync";
  return {};
}

}  // namespace lockgraph
