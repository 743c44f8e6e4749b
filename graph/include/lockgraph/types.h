// Vocabulary types shared by every lockgraph module: ids, acquisition modes, interrupt contexts.
#ifndef LOCKGRAPH_TYPES_H_
#define LOCKGRAPH_TYPES_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace lockgraph {

// Dense index of a lock class (a (key, subclass) pair) inside one Engine.
using ClassId = std::uint32_t;
inline constexpr ClassId kNoClass = 0xffffffffu;

// Caller-chosen identity of a lock instance (an address in-process, any unique number in a log).
using LockId = std::uint64_t;
inline constexpr LockId kNoLock = 0;

// Opaque id of a captured call stack; the caller's symbolizer turns it into frames.
using StackId = std::uint64_t;
inline constexpr StackId kNoStack = 0;

// Which run (process, log file) an event came from; 0 for a single live process.
using RunId = std::uint32_t;

// Caller-chosen identity of a thread (a tid in-process).
using ThreadKey = std::uint64_t;

// How a lock is acquired. Lockdep's read = 0, 1, 2.
enum class AcquireMode : std::uint8_t {
  kExclusive = 0,        // mutex, write lock
  kShared = 1,           // non-recursive read (writer-preferring rwlock, rwsem down_read)
  kSharedRecursive = 2,  // recursive read (reader-preferring rwlock, rwlock_t read_lock)
};

inline constexpr std::uint8_t kMaxSubclasses = 8;  // lockdep's MAX_LOCKDEP_SUBCLASSES

// Interrupt contexts. Usage is tracked per context: lockdep's HARDIRQ and SOFTIRQ plus numbered
// generic contexts (the runtime maps signal S to context kFirstNumberedContext + S - 1).
using ContextId = std::uint8_t;
inline constexpr ContextId kHardirqContext = 0;
inline constexpr ContextId kSoftirqContext = 1;
inline constexpr ContextId kFirstNumberedContext = 2;
inline constexpr int kMaxContexts = 128;

// A set of contexts, e.g. the contexts whose interrupts a thread has disabled.
struct ContextMask {
  std::uint64_t words[2] = {0, 0};

  static ContextMask Of(ContextId c) {
    ContextMask m;
    m.Set(c);
    return m;
  }
  bool Test(ContextId c) const { return (words[c >> 6] >> (c & 63)) & 1u; }
  void Set(ContextId c) { words[c >> 6] |= std::uint64_t{1} << (c & 63); }
  void Clear(ContextId c) { words[c >> 6] &= ~(std::uint64_t{1} << (c & 63)); }
  bool Empty() const { return (words[0] | words[1]) == 0; }
  ContextMask operator|(const ContextMask& o) const {
    return ContextMask{{words[0] | o.words[0], words[1] | o.words[1]}};
  }
  ContextMask operator&(const ContextMask& o) const {
    return ContextMask{{words[0] & o.words[0], words[1] & o.words[1]}};
  }
  ContextMask operator~() const { return ContextMask{{~words[0], ~words[1]}}; }
  ContextMask& operator|=(const ContextMask& o) {
    words[0] |= o.words[0];
    words[1] |= o.words[1];
    return *this;
  }
  bool operator==(const ContextMask& o) const = default;
};

// Usage bits of a lock class, lockdep's LOCK_USED_IN_*, LOCK_ENABLED_* and their _READ variants,
// one mask per kind so that every context has all four.
enum class UsageKind : std::uint8_t {
  kUsedIn = 0,       // taken (write) while running in the context: "IN-HARDIRQ-W", context-safe
  kUsedInRead = 1,   // taken (read) in the context: "IN-HARDIRQ-R"
  kEnabled = 2,      // taken (write) with the context's interrupts enabled: "HARDIRQ-ON-W", unsafe
  kEnabledRead = 3,  // taken (read) with the context's interrupts enabled: "HARDIRQ-ON-R"
};
inline constexpr int kUsageKinds = 4;

struct Usage {
  ContextMask bits[kUsageKinds];

  bool Has(UsageKind k, ContextId c) const { return bits[static_cast<int>(k)].Test(c); }
  ContextMask& operator[](UsageKind k) { return bits[static_cast<int>(k)]; }
  const ContextMask& operator[](UsageKind k) const { return bits[static_cast<int>(k)]; }
};

std::string_view AcquireModeName(AcquireMode mode);

}  // namespace lockgraph

#endif  // LOCKGRAPH_TYPES_H_
