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
  CompactRecord& Add() {
    if (count_ == capacity_) Grow(count_ + 1);
    return records_[count_++];
  }
  void Reserve(std::size_t n) {
    if (n > capacity_) Grow(n);
  }

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

  void Clear();

 private:
  void Grow(std::size_t at_least);
  std::unique_ptr<CompactRecord[]> records_;
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

}  // namespace lockgraph::analyzer

#endif  // LOCKGRAPH_ANALYZER_BLOCK_DECODE_H_
