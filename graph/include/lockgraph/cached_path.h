// The engine's cached acquisition and release as inline code, for hooks that run on every lock
// operation (the runtime's interposers). These are the engine's own per-thread structures: only
// Engine (engine.cpp) creates and maintains them; the inline functions below do what
// Engine::TryAcquireCached (with an instance handle) and Engine::TryReleaseInnermost do in
// their common case and nothing else (no report, no allocation, no lock, no call out), so a hook
// can take them without a call.
// Not a stable interface: the layouts change with the engine.
#ifndef LOCKGRAPH_CACHED_PATH_H_
#define LOCKGRAPH_CACHED_PATH_H_

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>

// ThreadSanitizer (GCC says so with __SANITIZE_THREAD__, Clang through __has_feature): the
// slot's notes are then read one atomic at a time, which it can check, not as 16-byte words.
#if defined(__SANITIZE_THREAD__)
#define LOCKGRAPH_CACHED_PATH_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define LOCKGRAPH_CACHED_PATH_TSAN 1
#endif
#endif
#if defined(__SSE2__) && !defined(LOCKGRAPH_CACHED_PATH_TSAN)
#define LOCKGRAPH_CACHED_PATH_SSE2 1
#include <emmintrin.h>
#endif

#include "lockgraph/types.h"

namespace lockgraph {

// An engine-owned handle of a live lock instance (see Engine::HandleOf); 0 is none.
using InstanceHandle = std::uintptr_t;

namespace engine_internal {

// One held lock: 40 bytes, written whole by the cached acquisition (a copy of the memoised
// step's image with the call site).
struct HeldLock {
  LockId lock = kNoLock;
  std::uint64_t chain_key = 0;   // key of the chain ending with this lock
  std::uint64_t ip = 0;
  ClassId cls = kNoClass;        // cls and serial side by side: an instance binding's layout
  std::uint32_t serial = 0;      // instance serial: distinguishes a reused address
  std::uint32_t frame = 0;       // index of the context frame it was taken in
  AcquireMode mode = AcquireMode::kExclusive;
  bool trylock = false;
  bool nested = false;           // taken under a held nest_lock
};
static_assert(sizeof(HeldLock) == 40, "HeldLock is copied as five words");
static_assert(offsetof(HeldLock, ip) == 16, "HeldWords::StoreTo's word 2 is the call site");
static_assert(offsetof(HeldLock, serial) == offsetof(HeldLock, cls) + 4,
              "cls | serial << 32 is an instance binding");

// A held-lock record built in registers: its five words, stored whole wherever it goes (the
// held stack and the memo). Storing the fields one by one and copying the record from there
// would read back 16-byte words from narrower stores still in flight (a store-forwarding stall
// on every cached acquisition that misses the memo).
struct HeldWords {
  std::uint64_t lock, chain_key, binding, tail;  // tail: word 4 (frame, mode, trylock, nested)
  // binding: cls | serial << 32, as an instance slot holds it.
  static HeldWords Of(LockId lock, std::uint64_t chain_key, std::uint64_t binding,
                      std::uint32_t frame, AcquireMode mode, bool trylock, bool nested) {
    return {lock, chain_key, binding,
            std::uint64_t{frame} | (std::uint64_t{static_cast<std::uint8_t>(mode)} << 32) |
                (std::uint64_t{trylock} << 40) | (std::uint64_t{nested} << 48)};
  }
  // The words of a record already in memory (a memoised step's image), loaded whole: a plain
  // assignment of the 39 meaningful bytes compiles to a byte-wise rep movsb, and a copy through
  // a local array to a stack round trip that defeats store forwarding.
  static HeldWords From(const HeldLock& src) {
    const auto* s = reinterpret_cast<const unsigned char*>(&src);
    HeldWords w;
    std::memcpy(&w.lock, s, 8);
    std::memcpy(&w.chain_key, s + 8, 8);
    std::memcpy(&w.binding, s + 24, 8);
    std::memcpy(&w.tail, s + 32, 8);
    return w;
  }
  // Five word stores, the call site `ip` as word 2.
  void StoreTo(HeldLock* dst, std::uint64_t ip) const {
    auto* d = reinterpret_cast<unsigned char*>(dst);
    std::memcpy(d, &lock, 8);
    std::memcpy(d + 8, &chain_key, 8);
    std::memcpy(d + 16, &ip, 8);
    std::memcpy(d + 24, &binding, 8);
    std::memcpy(d + 32, &tail, 8);
  }
};
static_assert(offsetof(HeldLock, frame) == 32 && offsetof(HeldLock, mode) == 36 &&
                  offsetof(HeldLock, trylock) == 37 && offsetof(HeldLock, nested) == 38,
              "HeldWords' word 4 is frame | mode << 32 | trylock << 40 | nested << 48");

// Copies a memoised held-lock image with the call site replaced: four word loads, five stores.
inline void CopyHeld(HeldLock* dst, const HeldLock& src, std::uint64_t ip) {
  HeldWords::From(src).StoreTo(dst, ip);
}

// The held-lock stack: a plain array, so the cached paths push and pop with a size and a
// capacity and no vector bookkeeping. Grows only on the engine's full paths.
class HeldStack {
 public:
  HeldStack() = default;
  HeldStack(const HeldStack&) = delete;
  HeldStack& operator=(const HeldStack&) = delete;
  ~HeldStack() { ::operator delete[](data_, std::align_val_t{64}); }

  std::size_t size() const { return size_; }
  std::size_t capacity() const { return cap_; }
  bool empty() const { return size_ == 0; }
  HeldLock* data() { return data_; }
  const HeldLock* data() const { return data_; }
  HeldLock* begin() { return data_; }
  HeldLock* end() { return data_ + size_; }
  const HeldLock* begin() const { return data_; }
  const HeldLock* end() const { return data_ + size_; }
  HeldLock& operator[](std::size_t i) { return data_[i]; }
  const HeldLock& operator[](std::size_t i) const { return data_[i]; }
  HeldLock& back() { return data_[size_ - 1]; }
  const HeldLock& back() const { return data_[size_ - 1]; }

  void reserve(std::size_t n) {
    if (n <= cap_) return;
    // Cache-line aligned, so the first records of a thread's stack do not straddle two lines.
    auto* d = static_cast<HeldLock*>(::operator new[](n * sizeof(HeldLock), std::align_val_t{64}));
    std::copy(data_, data_ + size_, d);
    ::operator delete[](data_, std::align_val_t{64});
    data_ = d;
    cap_ = n;
  }
  void push_back(const HeldLock& h) {
    if (size_ == cap_) reserve(cap_ ? cap_ * 2 : 32);
    data_[size_++] = h;
  }
  // Room is the caller's check (size() < capacity()).
  HeldLock& PushUnchecked() { return data_[size_++]; }
  void pop_back() { --size_; }
  void erase(HeldLock* pos) {
    std::copy(pos + 1, end(), pos);
    --size_;
  }
  void clear() { size_ = 0; }
  void resize(std::size_t n) {  // shrinks only
    if (n < size_) size_ = n;
  }

 private:
  HeldLock* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t cap_ = 0;
};

// The key of a chain extended by one step (the engine's chain keys: a 64-bit mix).
inline std::uint64_t MixKey(std::uint64_t h, std::uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  h *= 0xff51afd7ed558ccdull;
  h ^= h >> 33;
  return h;
}
// The key of a chain extended by one held lock: its class, mode, trylock and nest_lock bits.
inline std::uint64_t ChainKey(std::uint64_t prev_key, ClassId cls, AcquireMode mode,
                              bool trylock, bool nested) {
  return MixKey(prev_key, std::uint64_t{cls} | (std::uint64_t(mode) << 32) |
                              (std::uint64_t(trylock) << 34) | (std::uint64_t(nested) << 35));
}

// A class's usage summary byte (the engine keeps one per class, dense by id): bit k is set
// when the class's usage mask of kind k (kEnabled or kEnabledRead) holds every context some
// thread has had enabled, which settles that part of any thread's usage check.
constexpr unsigned UsageCoversBit(UsageKind k) { return 1u << static_cast<unsigned>(k); }

// What an InstanceHandle points to: a live instance's lock and binding, and the chains noted as
// validated that ended with it, readable without the engine's instance table or any lock. Slots
// are never freed while the engine lives (a recycled slot names another lock, or the same lock
// with a new serial), so a stale handle is safe to read. One cache line: over a pool of 10,000
// locks the slots (640 KB) and the mutexes stay in a 2 MiB second-level cache, where two-line
// slots (1.28 MB) did not (docs/performance.md, "Many locks").
struct alignas(64) InstanceSlot {
  static constexpr int kChains = 12;
  std::atomic<LockId> lock{kNoLock};          // kNoLock while destroyed or free
  std::atomic<std::uint64_t> binding{0};      // class | serial << 32
  // Fingerprints (the high 32 bits) of validated chains without flags that ended with this
  // instance, each noted once, by Engine::Acquire when it has validated the chain or by the
  // cached path after a chain-cache hit (never replaced: after
  // the first few, a slot is read-only and stays clean in other cores' caches). A lock's usual
  // predecessors so cost no chain-cache probe, whose table is too large to stay cached over
  // thousands of locks; twelve hold all eight predecessors of a lock in the pool. Only
  // validated chains are ever noted, so a chain whose fingerprint is here is validated, whatever
  // the lock's class is now, except when an unvalidated chain ending with this lock shares a
  // fingerprint with one noted here: odds of at most 12 in 2^32 per new chain (the chain keys
  // are 64-bit hashes; the chain cache already accepts a 64-bit key collision). 0: free (a
  // fingerprint is never 0).
  std::atomic<std::uint32_t> chains[kChains] = {};

  void Bind(LockId l, ClassId cls, std::uint32_t serial) {
    binding.store(std::uint64_t{cls} | (std::uint64_t{serial} << 32), std::memory_order_release);
    lock.store(l, std::memory_order_release);
  }
  static std::uint32_t Fingerprint(std::uint64_t key) {
    const auto f = static_cast<std::uint32_t>(key >> 32);
    return f ? f : 1;
  }
  // All twelve notes compared at once (three 16-byte compares, one branch): a scan that stops
  // at the match mispredicts its exit on nearly every call when a lock has several usual
  // predecessors. Free entries are 0, which no fingerprint equals. Each 4-byte note is read
  // whole by the 16-byte loads (aligned), so a concurrent NoteChain is seen or not, never torn.
  [[gnu::always_inline]] bool HasChain(std::uint64_t key) const {
    const std::uint32_t f = Fingerprint(key);
#if defined(LOCKGRAPH_CACHED_PATH_SSE2)
    const __m128i want = _mm_set1_epi32(static_cast<int>(f));
    const auto* p = reinterpret_cast<const __m128i*>(chains);
    const __m128i hit = _mm_or_si128(
        _mm_or_si128(_mm_cmpeq_epi32(_mm_load_si128(p), want),
                     _mm_cmpeq_epi32(_mm_load_si128(p + 1), want)),
        _mm_cmpeq_epi32(_mm_load_si128(p + 2), want));
    return _mm_movemask_epi8(hit) != 0;
#else
    bool hit = false;
    for (const auto& c : chains) hit |= c.load(std::memory_order_relaxed) == f;
    return hit;
#endif
  }
  // Lock-free, from any thread: a lost race only loses the note.
  void NoteChain(std::uint64_t key) {
    for (auto& c : chains) {
      if (c.load(std::memory_order_relaxed) != 0) continue;
      c.store(Fingerprint(key), std::memory_order_relaxed);
      return;
    }
  }
};
static_assert(sizeof(InstanceSlot) == 64, "an instance slot is one cache line");
static_assert(offsetof(InstanceSlot, chains) == 16, "the notes are three aligned 16-byte words");

constexpr int kChainStepCacheBits = 6;
constexpr std::size_t kChainStepCacheSize = std::size_t{1} << kChainStepCacheBits;
constexpr std::uint8_t kStepSameClass = 1;  // the chain holds two locks of one class

// A request's bits in a memoised step: mode | trylock << 2 | subclass << 3 | nested << 7.
constexpr std::uint16_t RequestBits(AcquireMode mode, bool trylock) {
  return static_cast<std::uint16_t>(static_cast<unsigned>(mode) | (unsigned(trylock) << 2));
}
// The key a step is found by: the chain so far mixed with the request bits and the same-class
// flag (one compare for all three; the request part is a constant when the mode is). Two
// different (chain, request) pairs share a key only if two chain keys differ by one of these
// 512 masks: the 64-bit chain hash's collision odds, which the chain cache accepts already.
constexpr std::uint64_t StepKey(std::uint64_t top, std::uint16_t request_bits, bool same_class) {
  return top ^ ((std::uint64_t{request_bits} | (std::uint64_t{same_class} << 8)) *
                0x9e3779b97f4a7c15ull);
}

// A memoised acquisition: (chain so far, lock, request) -> the held-lock record it pushes.
struct alignas(64) ChainStep {
  std::uint64_t key = 0;         // StepKey
  HeldLock held;                 // lock (kNoLock: empty), chain key, class, serial, frame, mode
  std::uint64_t shard_epoch = 0; // the lock's instance shard epoch when memoised
  std::uint8_t flags = 0;        // kStepSameClass
};

// The per-thread state the cached paths read and write: the held stack, the current frame's
// base, seed and index, the key of the chain held in it, and the memo. The memo is valid while
// the lock's instance is unchanged (its slot's binding, or its shard's epoch): usage bits only
// grow and validated chains stay validated, and the engine empties it whenever the thread's
// interrupt state or frame changes.
struct ThreadCache {
  HeldStack held;
  std::size_t frame_base = 0;
  std::uint64_t top_key = 0;
  std::uint64_t frame_seed = 0;
  std::uint32_t frame_index = 0;
  std::uint32_t unflushed_hits = 0;   // Acquire's chain-cache hits not yet counted
  std::size_t max_held = 0;           // EngineOptions::max_held_locks
  const std::uint8_t* usage_summary = nullptr;  // the engine's summary bytes, by class id
  bool in_context = false;            // running in some interrupt context (in_mask not empty)
  std::array<ChainStep, kChainStepCacheSize> steps{};

  // Two candidate slots per (chain, lock): the first unless it holds another step.
  static std::uint64_t StepHash(std::uint64_t top, LockId lock) {
    return (top ^ lock) * 0x9e3779b97f4a7c15ull;
  }
  static std::size_t FirstSlot(std::uint64_t h) { return h >> (64 - kChainStepCacheBits); }
  static std::size_t SecondSlot(std::uint64_t h) {
    return (h >> (64 - 2 * kChainStepCacheBits)) & (kChainStepCacheSize - 1);
  }
  // The step memoised for `key` on `lock`, or nullptr.
  const ChainStep* FindStep(std::uint64_t top, LockId lock, std::uint64_t key) const {
    const std::uint64_t h = StepHash(top, lock);
    const ChainStep* s = &steps[FirstSlot(h)];
    if (s->held.lock == lock && s->key == key) return s;
    s = &steps[SecondSlot(h)];
    return s->held.lock == lock && s->key == key ? s : nullptr;
  }
  // Where to memoise a step of (top, lock).
  ChainStep* StepSlot(std::uint64_t top, LockId lock, std::uint64_t key) {
    const std::uint64_t h = StepHash(top, lock);
    ChainStep* s = &steps[FirstSlot(h)];
    if (s->held.lock != kNoLock && (s->held.lock != lock || s->key != key)) {
      s = &steps[SecondSlot(h)];
    }
    return s;
  }
  void FlushSteps() {
    for (auto& s : steps) s.held.lock = kNoLock;
  }
};

// Engine::TryAcquireCached's common case for a lock whose handle is known, inline: the
// handle's slot still names `lock`, the chain this acquisition makes is a chain of one lock in
// its context or one noted in the slot as validated, and the class's usage summary says every
// usage bit it implies is set (outside interrupt contexts, where a trylock or not decides
// nothing more). Then pushes the held lock and returns true. Otherwise changes nothing and
// returns false (Engine::TryAcquireCachedAfterSlot then tries the chain cache and the class's
// usage masks). No memo: over many locks a thread's steps do not fit it, and where they do this
// path costs about what a memo hit did (the hit also read the slot to check the binding).
// Unlike Engine::TryAcquireCached it does not look at whether the engine is still on: a caller
// stops calling when the engine turns off (the runtime does: the sink's OnTurnedOff turns the
// shim off), and a call in between only pushes onto the thread's own stack, which nothing reads
// then.
[[gnu::always_inline]] inline bool TryAcquireFromSlot(ThreadCache& t, LockId lock,
                                                      AcquireMode mode, bool trylock,
                                                      std::uint64_t ip, InstanceHandle handle) {
  const std::size_t held = t.held.size();
  if (held == t.held.capacity() || held - t.frame_base >= t.max_held) return false;
  const auto* slot = reinterpret_cast<const InstanceSlot*>(handle);
  const std::uint64_t binding = slot->binding.load(std::memory_order_acquire);
  if (slot->lock.load(std::memory_order_acquire) != lock) return false;
  const auto cls = static_cast<ClassId>(binding);
  if (cls == kNoClass) return false;
  const std::uint64_t chain_key = ChainKey(t.top_key, cls, mode, trylock, /*nested=*/false);
  // A chain of one lock in its context is valid by itself (validation finds no held lock to
  // check against and adds no dependency): only its usage bits matter.
  if (held > t.frame_base && !slot->HasChain(chain_key)) return false;
  const unsigned covers = UsageCoversBit(mode == AcquireMode::kExclusive
                                             ? UsageKind::kEnabled
                                             : UsageKind::kEnabledRead);
  const unsigned summary = __atomic_load_n(t.usage_summary + cls, __ATOMIC_ACQUIRE);
  if (!(summary & covers) || (!trylock && t.in_context)) return false;
  HeldWords::Of(lock, chain_key, binding, t.frame_index, mode, trylock, /*nested=*/false)
      .StoreTo(&t.held.PushUnchecked(), ip);
  t.top_key = chain_key;
  return true;
}

// Engine::TryReleaseInnermost: when `lock` is the innermost lock held in the current frame,
// pops it and returns true; otherwise changes nothing and returns false.
[[gnu::always_inline]] inline bool TryReleaseInnermost(ThreadCache& t, LockId lock) {
  const std::size_t n = t.held.size();
  if (n <= t.frame_base || t.held[n - 1].lock != lock) return false;
  t.held.pop_back();
  t.top_key = n - 1 > t.frame_base ? t.held[n - 2].chain_key : t.frame_seed;
  return true;
}

}  // namespace engine_internal
}  // namespace lockgraph

#endif  // LOCKGRAPH_CACHED_PATH_H_
