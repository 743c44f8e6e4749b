// The chain cache: lockdep's chain-key idea. A 64-bit key summarises the classes (and modes) of
// a thread's held locks in one context; a key already validated needs no graph work.
//
// One writer (under the engine's graph lock), any number of lock-free readers. Open addressing
// with linear probing; on growth the old table is retired but kept alive until the cache dies,
// so a reader holding an old table pointer stays safe (memory: less than twice the live table).
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

  ChainCache() { Publish(std::make_unique<Table>(kInitialSlots)); }

  // Lock-free. Returns true and the chain's flags when `key` was validated before.
  bool Find(std::uint64_t key, std::uint8_t* flags) const {
    key = Normalize(key);
    const Table* t = table_.load(std::memory_order_acquire);
    for (std::size_t i = key & t->mask;; i = (i + 1) & t->mask) {
      const std::uint64_t k = t->keys[i].load(std::memory_order_acquire);
      if (k == key) {
        *flags = t->flags[i].load(std::memory_order_relaxed);
        return true;
      }
      if (k == 0) return false;
    }
  }

  // Writer only (graph lock held). Inserting an existing key ORs the flags in.
  void Insert(std::uint64_t key, std::uint8_t flags) {
    key = Normalize(key);
    Table* t = table_.load(std::memory_order_relaxed);
    if ((t->count + 1) * 2 > t->mask + 1) t = Grow(t);
    InsertInto(t, key, flags);
  }

  std::size_t size() const { return table_.load(std::memory_order_relaxed)->count; }
  std::size_t ApproximateBytes() const {
    std::size_t bytes = 0;
    for (const auto& t : tables_) bytes += (t->mask + 1) * 9;
    return bytes;
  }

 private:
  static constexpr std::size_t kInitialSlots = 1024;

  struct Table {
    explicit Table(std::size_t slots)
        : mask(slots - 1),
          keys(new std::atomic<std::uint64_t>[slots]),
          flags(new std::atomic<std::uint8_t>[slots]) {
      for (std::size_t i = 0; i < slots; ++i) {
        keys[i].store(0, std::memory_order_relaxed);
        flags[i].store(0, std::memory_order_relaxed);
      }
    }
    std::size_t mask;
    std::size_t count = 0;
    std::unique_ptr<std::atomic<std::uint64_t>[]> keys;
    std::unique_ptr<std::atomic<std::uint8_t>[]> flags;
  };

  static std::uint64_t Normalize(std::uint64_t key) { return key ? key : 1; }

  static void InsertInto(Table* t, std::uint64_t key, std::uint8_t flags) {
    for (std::size_t i = key & t->mask;; i = (i + 1) & t->mask) {
      const std::uint64_t k = t->keys[i].load(std::memory_order_relaxed);
      if (k == key) {
        t->flags[i].fetch_or(flags, std::memory_order_relaxed);
        return;
      }
      if (k == 0) {
        t->flags[i].store(flags, std::memory_order_relaxed);
        t->keys[i].store(key, std::memory_order_release);  // publishes the flags with it
        ++t->count;
        return;
      }
    }
  }

  Table* Grow(Table* old) {
    auto bigger = std::make_unique<Table>((old->mask + 1) * 2);
    for (std::size_t i = 0; i <= old->mask; ++i) {
      const std::uint64_t k = old->keys[i].load(std::memory_order_relaxed);
      if (k) InsertInto(bigger.get(), k, old->flags[i].load(std::memory_order_relaxed));
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
