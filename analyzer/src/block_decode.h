// One binary block decoded into a compact, replay-ready form: fixed-size records for the events
// (no strings, no per-event allocation) and the block's definitions in side tables. Used by the
// analysis pipeline, where decoder threads fill DecodedBlocks while the replay thread drains them.
#ifndef LOCKGRAPH_ANALYZER_BLOCK_DECODE_H_
#define LOCKGRAPH_ANALYZER_BLOCK_DECODE_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "lockgraph/log_format.h"
#include "log_reader.h"

namespace lockgraph::analyzer {

// One event. Field use by type (logfmt::RecordType):
//   kThreadSwitch        x = tid (not an event: sets the thread of what follows)
//   kThreadStart         x = tid, index = name in DecodedBlock::names (also switches to it)
//   kThreadName          index = name
//   kThreadExit          y = ip
//   kLockInit            x = lock, index = class id, y = ip, z = stack
//   kLockDestroy         x = lock, y = ip, z = stack
//   kLockSetClass        x = lock, index = class id
//   kAcquire             a = mode, b = trylock, c = subclass, x = lock, y = ip, z = stack,
//                        index = 1 + position in DecodedBlock::nests when a nest lock is given
//   kRelease             x = lock, y = ip
//   kCancelAcquire       x = lock
//   kEnterContext, kDisableContext, kEnableContext: a = context;  kExitContext: a, y = ip
//   kSetDisabledMask     x = bits 0-63, y = bits 64-127
//   kRunEnd              nothing
struct CompactRecord {
  logfmt::RecordType type;
  std::uint8_t a;
  std::uint8_t b;
  std::uint8_t c;
  std::uint32_t index;
  std::uint64_t x;
  std::uint64_t y;
  std::uint64_t z;
};
static_assert(sizeof(CompactRecord) == 32);

struct DecodedBlock {
  // The events, in block order (a plain array: appending is the decoder's inner loop).
  std::span<const CompactRecord> records() const { return {records_.get(), count_}; }
  // The sequence stamp of each record (zeros in a block without stamps): an event's own, and a
  // thread switch's the stamp before it in the block (0 at its start), so the array is sorted
  // whenever the events' stamps are (seq_sorted). The merged replay searches it.
  std::span<const std::uint64_t> seqs() const { return {seqs_.get(), count_}; }
  CompactRecord& Add(std::uint64_t seq) {
    if (count_ == capacity_) Grow(count_ + 1);
    seqs_[count_] = seq;
    return records_[count_++];
  }
  void Reserve(std::size_t n) {
    if (n > capacity_) Grow(n);
  }
  // The decoder's inner loop appends through these (Reserve first; Resize(n) with n at most
  // the capacity says how many records are filled).
  CompactRecord* record_data() { return records_.get(); }
  std::uint64_t* seq_data() { return seqs_.get(); }
  std::size_t size() const { return count_; }
  std::size_t capacity() const { return capacity_; }
  void Resize(std::size_t n) { count_ = n; }

  // The lock slot (LockSlots) of each acquire, init and destroy record, by record position,
  // 0 for every other record and for kLockSlotPad entries past the last (AssignLockSlots), so
  // a look-ahead of up to that many records needs no bounds check; and the number of slots the
  // log's numbering had handed out by the end of this block.
  static constexpr std::size_t kLockSlotPad = 16;
  const std::uint32_t* lock_slots() const { return slots_.get(); }
  std::uint32_t* lock_slot_data() { return slots_.get(); }  // capacity() + kLockSlotPad
  std::uint32_t lock_slot_limit = 0;

  std::vector<LockId> nests;
  std::vector<std::string> names;
  // Definitions, in block order.
  std::vector<std::pair<logfmt::LogClassId, ClassDefinition>> classes;
  std::vector<std::pair<ContextId, std::string>> contexts;
  std::vector<std::pair<StackId, std::vector<std::string>>> stacks;
  std::vector<std::pair<std::uint64_t, std::string>> sites;
  std::vector<std::pair<LockId, std::string>> lock_names;
  std::uint64_t events = 0;   // replayable events (definitions and thread switches not counted)
  std::uint64_t records_seen = 0;  // every record but thread switches
  bool has_seq = false;
  // Sequence stamps of the block's events (has_seq): the first and the last, and whether they
  // never decrease inside the block. Then a file whose blocks follow each other in stamp order
  // replays in file order.
  std::uint64_t first_seq = 0, last_seq = 0;
  bool seq_sorted = true;
  bool end = false;           // an `end` record was seen
  std::uint64_t bytes = 0;    // the block's size in the file, header included
  std::uint32_t file_index = 0;  // its place among the log's valid blocks, in file order (set by
                                 // the reader; the merged replay breaks stamp ties with it)

  void Clear();

 private:
  void Grow(std::size_t at_least);
  std::unique_ptr<CompactRecord[]> records_;
  std::unique_ptr<std::uint64_t[]> seqs_;
  std::unique_ptr<std::uint32_t[]> slots_;
  std::size_t count_ = 0, capacity_ = 0;
};

// Decodes `block` into *out (cleared first). A bad record ends the block: what came before it is
// kept and *error is set exactly as logfmt::BlockDecoder would set it (message and offset);
// error->message is empty when the whole block decoded.
void DecodeBlock(const logfmt::BlockView& block, DecodedBlock* out, logfmt::DecodeError* error);

// The generic path, record by record through logfmt::BlockDecoder (DecodeBlock falls back to it
// for a block with a bad record). Exposed so tests can compare the two.
void DecodeBlockGeneric(const logfmt::BlockView& block, DecodedBlock* out,
                        logfmt::DecodeError* error);

// Dense numbers ("slots") for the lock ids of one log, handed out by its decoder thread in the
// order its blocks are decoded: the replay thread keeps per-lock state (the engine's instance
// handle) in a plain array indexed by slot instead of a hash table of its own, so the hash
// look-up runs on the decoder's core. A slot is given back at the lock's destroy record and
// handed out again later: the slots in use are the log's live locks (and the ones acquired or
// released without an init), not every address a long log used. In merged order the replay
// runs records of several blocks interleaved, so a slot given back at a destroy can reach the
// replay as another lock's before that destroy is replayed: per-slot state must be a hint that
// is checked (an instance handle is: the engine checks it against the lock it names).
class LockSlots {
 public:
  LockSlots();
  // The slot of `lock`, handed out if it has none.
  std::uint32_t Of(LockId lock) {
    const Entry& e = entries_[Home(lock)];
    return e.lock == lock && lock != kNoLock ? e.slot : OfSlow(lock);
  }
  // The slot of `lock` (as Of), given back for reuse after this record.
  std::uint32_t Retire(LockId lock);
  // Slots handed out so far (all below this).
  std::uint32_t limit() const { return next_; }

 private:
  struct Entry {
    LockId lock;
    std::uint32_t slot;
  };
  std::size_t Home(LockId lock) const {
    return static_cast<std::size_t>((lock * 0x9e3779b97f4a7c15ull) >> shift_);
  }
  std::uint32_t OfSlow(LockId lock);
  void Rehash(std::size_t n);
  void Erase(std::size_t i);

  std::vector<Entry> entries_;  // open addressing, linear probing; lock kNoLock: empty
  std::vector<std::uint32_t> free_;
  std::size_t mask_ = 0, used_ = 0;
  int shift_ = 64;
  std::uint32_t next_ = 0;
};

// Fills block->lock_slots and block->lock_slot_limit from `slots`, the numbering of the block's
// log (blocks in the order the replay opens them). Slot 0 is lock kNoLock's, never another's,
// and every record without a lock's.
void AssignLockSlots(DecodedBlock* block, LockSlots* slots);

// A block of a log found by walking the block headers alone (IndexStampedBlocks).
struct IndexedBlock {
  std::uint64_t offset = 0;     // of the block header
  std::uint32_t length = 0;     // payload bytes
  bool has_events = false;      // false: only definitions (and thread switches)
  std::uint64_t first_seq = 0;  // the stamp of its first event (has_events)
};

// Walks the blocks of a binary log from `at` (just after the file header) by their headers,
// reading in each only up to the stamp of its first event; the CRCs are not checked here (the
// merged reader checks each block as it decodes it). Returns false, with nothing to say, unless
// the file is one well-framed block after another to its very end, every block's flags say
// "stamped" and every first event is readable: damaged or unstamped logs go the file-order way,
// which reports what is wrong.
bool IndexStampedBlocks(std::span<const std::uint8_t> file, std::size_t at,
                        std::vector<IndexedBlock>* blocks);

// True when the block at `block.offset` of `file` (its header and payload there) has a matching
// checksum (of format `version`, the file header's), as logfmt::BinaryScanner checks it; then
// *view is the block.
bool CheckIndexedBlock(std::span<const std::uint8_t> file, const IndexedBlock& block,
                       std::uint16_t version, logfmt::BlockView* view);

}  // namespace lockgraph::analyzer

#endif  // LOCKGRAPH_ANALYZER_BLOCK_DECODE_H_
