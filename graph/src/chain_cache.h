// The chain cache: lockdep's chain-key idea. A 64-bit key summarises the classes (and modes) of
// a thread's held locks in one context; a key already validated needs no graph work.
//
// One writer (under the engine's graph lock), any number of lock-free readers. The table is an
// array of 64-byte buckets, each one cache line of eight words (a key with its flag bit), so a
// look-up touches one line (the pool of 10,000 mutexes keeps ~90,000 chains: a look-up that
// needed a key line and a separate flags line cost two cache misses, and the table was twice as
// large). A key lives in the bucket its hash names or, when that bucket is full, in the next ones
// (linear probing by bucket); keys are never removed. A key keeps 63 of its 64 bits. On growth the old table is retired but kept alive until the cache dies, so a reader
// holding an old table pointer stays safe (memory: less than twice the live table).
#ifndef LOCKGRAPH_GRAPH_SRC_CHAIN_CACHE_H_
#define LOCKGRAPH_GRAPH_SRC_CHAIN_CACHE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace lockgraph::graph_internal {

class ChainCache {
 public:
  // Flags kept with a chain.
  static constexpr std::uint8_t kSameClass = 1;  // holds two locks of one class: check instances

  ChainCache() { Publish(std::make_unique<Table>(kInitialBuckets)); }

  // Lock-free. Returns true and the chain's flags when `key` was validated before.
  bool Find(std::uint64_t key, std::uint8_t* flags) const {
    key = Normalize(key);
    const Table* t = table_.load(std::memory_order_acquire);
    for (std::size_t b = BucketOf(key, t);; b = (b + 1) & t->mask) {
      const Bucket& bucket = t->buckets[b];
      for (int i = 0; i < kBucketKeys; ++i) {
        const std::uint64_t k = bucket.words[i].load(std::memory_order_acquire);
        if ((k & ~kFlagMask) == key) {
          *flags = static_cast<std::uint8_t>(k & kFlagMask);
          return true;
        }
        if (k == 0) return false;  // keys fill a bucket in order and are never removed
      }
    }
  }

  // Writer only (graph lock held). Inserting an existing key ORs the flags in.
  void Insert(std::uint64_t key, std::uint8_t flags) {
    key = Normalize(key);
    Table* t = table_.load(std::memory_order_relaxed);
    // At most 3/4 of the slots used: few buckets overflow into the next line.
    if ((t->count + 1) * 4 > (t->mask + 1) * kBucketKeys * 3) t = Grow(t);
    InsertInto(t, key, flags);
  }

  std::size_t size() const { return table_.load(std::memory_order_relaxed)->count; }
  std::size_t ApproximateBytes() const {
    std::size_t bytes = 0;
    for (const auto& t : tables_) bytes += (t->mask + 1) * sizeof(Bucket);
    return bytes;
  }

 private:
  static constexpr int kBucketKeys = 8;
  static constexpr std::size_t kInitialBuckets = 128;  // 768 chains, 8 KiB
  // The flags live in a word's low bit (kSameClass, the only flag); the key is the rest.
  static constexpr std::uint64_t kFlagMask = kSameClass;

  struct alignas(64) Bucket {
    std::atomic<std::uint64_t> words[kBucketKeys];  // key | flags; 0: free
  };
  static_assert(sizeof(Bucket) == 64, "a bucket is one cache line");

  struct Table {
    explicit Table(std::size_t buckets_count)
        : mask(buckets_count - 1), buckets(new Bucket[buckets_count]) {
      for (std::size_t b = 0; b < buckets_count; ++b) {
        for (auto& w : buckets[b].words) w.store(0, std::memory_order_relaxed);
      }
    }
    std::size_t mask;  // buckets - 1
    std::size_t count = 0;
    std::unique_ptr<Bucket[]> buckets;
  };

  // The key without the flag bit, never 0 (a free word).
  static std::uint64_t Normalize(std::uint64_t key) {
    key &= ~kFlagMask;
    return key ? key : kFlagMask + 1;
  }
  static std::size_t BucketOf(std::uint64_t key, const Table* t) { return (key >> 1) & t->mask; }

  static void InsertInto(Table* t, std::uint64_t key, std::uint8_t flags) {
    for (std::size_t b = BucketOf(key, t);; b = (b + 1) & t->mask) {
      Bucket& bucket = t->buckets[b];
      for (int i = 0; i < kBucketKeys; ++i) {
        const std::uint64_t k = bucket.words[i].load(std::memory_order_relaxed);
        if ((k & ~kFlagMask) == key) {
          bucket.words[i].store(k | (flags & kFlagMask), std::memory_order_release);
          return;
        }
        if (k == 0) {
          bucket.words[i].store(key | (flags & kFlagMask), std::memory_order_release);
          ++t->count;
          return;
        }
      }
    }
  }

  Table* Grow(Table* old) {
    auto bigger = std::make_unique<Table>((old->mask + 1) * 2);
    for (std::size_t b = 0; b <= old->mask; ++b) {
      for (const auto& w : old->buckets[b].words) {
        const std::uint64_t k = w.load(std::memory_order_relaxed);
        if (k) InsertInto(bigger.get(), k & ~kFlagMask, static_cast<std::uint8_t>(k & kFlagMask));
      }
    }
    return Publish(std::move(bigger));
  }

  Table* Publish(std::unique_ptr<Table> t) {
    Table* raw = t.get();
    tables_.push_back(std::move(t));
    table_.store(raw, std::memory_order_release);
    return raw;
  }

  std::atomic<Table*> table_{nullptr};
  std::vector<std::unique_ptr<Table>> tables_;  // the live one last; older ones retired
};

}  // namespace lockgraph::graph_internal

#endif  // LOCKGRAPH_GRAPH_SRC_CHAIN_CACHE_H_
