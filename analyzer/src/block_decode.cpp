// Block decoding for replay: a straight-line decoder for well-formed blocks (the common case),
// and logfmt::BlockDecoder for any block it does not accept, so damaged blocks give exactly the
// errors and the partial contents the codec defines.
#include "block_decode.h"


#include <algorithm>
#include <bit>
#include <cstring>

namespace lockgraph::analyzer {

using logfmt::RecordType;

void DecodedBlock::Grow(std::size_t at_least) {
  std::size_t cap = std::max<std::size_t>({at_least, capacity_ * 2, 1024});
  std::unique_ptr<CompactRecord[]> bigger(new CompactRecord[cap]);
  std::unique_ptr<std::uint64_t[]> bigger_seqs(new std::uint64_t[cap]);
  std::copy(records_.get(), records_.get() + count_, bigger.get());
  std::copy(seqs_.get(), seqs_.get() + count_, bigger_seqs.get());
  records_ = std::move(bigger);
  seqs_ = std::move(bigger_seqs);
  slots_.reset(new std::uint32_t[cap + kLockSlotPad]);  // assigned after decoding
  capacity_ = cap;
}

void DecodedBlock::Clear() {
  count_ = 0;
  nests.clear();
  names.clear();
  classes.clear();
  contexts.clear();
  stacks.clear();
  sites.clear();
  lock_names.clear();
  lock_slot_limit = 0;
  events = records_seen = 0;
  has_seq = end = false;
  first_seq = last_seq = 0;
  seq_sorted = true;
  bytes = 0;
  file_index = 0;
}

namespace {

// Appends one decoded record (any type) to *out; `seq` is its stamp (0 without).
void Append(const logfmt::Event& e, std::uint64_t seq, DecodedBlock* out) {
  ++out->records_seen;
  CompactRecord r{};
  r.type = e.type;
  switch (e.type) {
    case RecordType::kClassDef:
      out->classes.emplace_back(
          e.class_id, ClassDefinition{std::string(e.text), std::string(e.text2), e.subclass});
      return;
    case RecordType::kContextName:
      out->contexts.emplace_back(e.context, std::string(e.text));
      return;
    case RecordType::kStackDef:
      out->stacks.emplace_back(e.stack, std::vector<std::string>(e.frames.begin(), e.frames.end()));
      return;
    case RecordType::kCallSiteDef:
      out->sites.emplace_back(e.ip, std::string(e.text));
      return;
    case RecordType::kLockName:
      out->lock_names.emplace_back(e.lock, std::string(e.text));
      return;
    case RecordType::kThreadSwitch:
      return;  // never returned by the decoder
    case RecordType::kThreadStart:
      r.x = e.thread;
      r.index = static_cast<std::uint32_t>(out->names.size());
      out->names.emplace_back(e.text);
      break;
    case RecordType::kThreadName:
      r.index = static_cast<std::uint32_t>(out->names.size());
      out->names.emplace_back(e.text);
      break;
    case RecordType::kThreadExit:
      r.y = e.ip;
      break;
    case RecordType::kLockInit:
      r.x = e.lock;
      r.index = e.class_id;
      r.y = e.ip;
      r.z = e.stack;
      break;
    case RecordType::kLockDestroy:
      r.x = e.lock;
      r.y = e.ip;
      r.z = e.stack;
      break;
    case RecordType::kLockSetClass:
      r.x = e.lock;
      r.index = e.class_id;
      break;
    case RecordType::kAcquire:
      r.a = static_cast<std::uint8_t>(e.mode);
      r.b = e.trylock;
      r.c = e.subclass;
      r.x = e.lock;
      r.y = e.ip;
      r.z = e.stack;
      if (e.nest_lock != kNoLock) {
        out->nests.push_back(e.nest_lock);
        r.index = static_cast<std::uint32_t>(out->nests.size());
      }
      break;
    case RecordType::kRelease:
      r.x = e.lock;
      r.y = e.ip;
      break;
    case RecordType::kCancelAcquire:
      r.x = e.lock;
      break;
    case RecordType::kEnterContext:
    case RecordType::kDisableContext:
    case RecordType::kEnableContext:
      r.a = e.context;
      break;
    case RecordType::kExitContext:
      r.a = e.context;
      r.y = e.ip;
      break;
    case RecordType::kSetDisabledMask:
      r.x = e.mask.words[0];
      r.y = e.mask.words[1];
      break;
    case RecordType::kRunEnd:
      out->end = true;
      break;
  }
  // Thread switches are framing, not events; ThreadStart also switches (as in the codec), so
  // the replayer follows `x` of both.
  ++out->events;
  out->Add(seq) = r;
}

// Decoding state of the straight-line path. Every read is bounds-checked; any irregularity
// returns false and the caller re-decodes the block with the generic decoder.
// A varint of two bytes or more, from `p`: the position after it, or null when it runs past
// `end` or over 64 bits. Out of line and taking the position by value, so the cursor of the
// inlined fast path stays in a register.
[[gnu::noinline]] const std::uint8_t* VarintSlow(const std::uint8_t* p, const std::uint8_t* end,
                                                 std::uint64_t* v) {
  std::uint64_t r = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (p >= end) return nullptr;
    const std::uint8_t b = *p++;
    if (shift == 63 && b > 1) return nullptr;
    r |= std::uint64_t{b & 0x7fu} << shift;
    if (!(b & 0x80)) {
      *v = r;
      return p;
    }
  }
  return nullptr;
}

struct Cursor {
  const std::uint8_t* p;
  const std::uint8_t* end;

  bool Byte(std::uint8_t* v) {
    if (p >= end) return false;
    *v = *p++;
    return true;
  }
  bool Varint(std::uint64_t* v) {
    if (p < end && *p < 0x80) [[likely]] {
      *v = *p++;
      return true;
    }
    if (end - p >= 2 && p[1] < 0x80) {  // two bytes: nearby locks and call sites
      *v = (p[0] & 0x7fu) | std::uint64_t{p[1]} << 7;
      p += 2;
      return true;
    }
    const std::uint8_t* next = VarintSlow(p, end, v);
    if (next == nullptr) return false;
    p = next;
    return true;
  }
  bool Delta(std::uint64_t* prev) {
    std::uint64_t zz;
    if (!Varint(&zz)) return false;
    *prev += static_cast<std::uint64_t>(static_cast<std::int64_t>(zz >> 1) ^
                                        -static_cast<std::int64_t>(zz & 1));
    return true;
  }
};

bool IsDefinitionTag(std::uint8_t tag) {
  return tag == 0x05 || tag == 0x06 || tag == 0x12 || tag == 0x13 || tag == 0x15;
}

// The straight-line decoder: the hot records (thread switch, acquire, release) inline, the rest
// through logfmt's own record layout via a one-record BlockDecoder would need its state, so they
// are decoded here too, field by field as docs/log-format.md lays them out. Returns false when
// the block is not well formed (nothing is reported; the generic decoder redoes it).
bool DecodeFast(const logfmt::BlockView& block, DecodedBlock* out) {
  const auto payload = block.payload;
  if (payload.empty()) return false;
  Cursor c{payload.data(), payload.data() + payload.size()};
  const std::uint8_t flags = *c.p++;
  if (flags & ~1u) return false;
  const bool seq = flags & 1u;
  out->has_seq = seq;
  bool have_thread = false;
  std::uint64_t prev_lock = 0, prev_ip = 0, prev_seq = 0, first_seq = 0;
  bool have_first = false, unsorted = false;
  // The compact records' tables (version 3; logfmt::kCompactRecordBit): entries 0-63 acquire,
  // 64-127 release, each valid once a full record of this block has defined it.
  const bool compact = block.version >= 3;
  struct Slot {
    std::uint64_t lock, ip;
    std::uint8_t mode_try;  // acquire flags bits 0-2
  };
  Slot slots[2 * logfmt::kCompactSlots];
  std::uint64_t slot_set[2] = {0, 0};
  // The hot records are written through local pointers and counters: stores through `out`
  // (byte fields alias everything) would make the compiler reload them after every record.
  // (A block of compact records holds up to one event per byte: `add` grows the array then,
  // and the pool's blocks keep what they grew to.)
  out->Reserve(payload.size() / 3 + 16);
  CompactRecord* recs = out->record_data();
  std::uint64_t* seqs = out->seq_data();
  std::size_t n = out->size(), cap = out->capacity();
  std::uint64_t events = 0;
  auto add = [&](std::uint64_t stamp) -> CompactRecord& {
    if (n == cap) {
      out->Resize(n);
      out->Reserve(n + 1);
      recs = out->record_data();
      seqs = out->seq_data();
      cap = out->capacity();
    }
    seqs[n] = stamp;
    return recs[n++];
  };
  // An event's stamp (stamped blocks): read, and checked for order.
  auto stamp = [&]() {
    if (!seq) return true;
    const std::uint64_t before = prev_seq;
    if (!c.Delta(&prev_seq)) return false;
    unsorted |= prev_seq < before;
    if (!have_first) {
      have_first = true;
      first_seq = prev_seq;
      unsorted = false;
    }
    return true;
  };
  while (c.p < c.end) {
    const std::uint8_t tag = *c.p++;
    if (tag & logfmt::kCompactRecordBit) {  // compact acquire or release: an entry's event
      const unsigned table = (tag & logfmt::kCompactReleaseBit) ? 1 : 0;
      const unsigned entry = tag & (logfmt::kCompactSlots - 1);
      if (!compact || !(slot_set[table] >> entry & 1)) return false;
      const Slot& s = slots[table * logfmt::kCompactSlots + entry];
      if (seq) {
        unsorted |= prev_seq == ~std::uint64_t{0};
        ++prev_seq;
      }
      CompactRecord& r = add(prev_seq);
      r.type = table ? RecordType::kRelease : RecordType::kAcquire;
      r.a = s.mode_try & 0x03u;
      r.b = s.mode_try >> 2;
      r.c = 0;
      r.index = 0;
      r.x = s.lock;
      r.y = s.ip;
      r.z = 0;
      ++events;
      continue;
    }
    if (tag == 0x0b) {  // release
      if (!have_thread || !stamp()) return false;
      if (!c.Delta(&prev_lock) || !c.Delta(&prev_ip)) return false;
      const unsigned entry = logfmt::CompactSlot(prev_ip);
      slots[logfmt::kCompactSlots + entry] = {prev_lock, prev_ip, 0};
      slot_set[1] |= std::uint64_t{1} << entry;
      CompactRecord& r = add(prev_seq);
      r.type = RecordType::kRelease;
      r.a = r.b = r.c = 0;
      r.index = 0;
      r.x = prev_lock;
      r.y = prev_ip;
      r.z = 0;
      ++events;
      continue;
    }
    if (tag == 0x0a) {  // acquire
      if (!have_thread || !stamp()) return false;
      std::uint8_t f;
      if (!c.Byte(&f) || (f & ~0x3fu) || (f & 0x03u) > 2) return false;
      std::uint8_t subclass = 0;
      std::uint32_t index = 0;
      std::uint64_t stack = 0;
      if (!c.Delta(&prev_lock)) return false;
      if (f & 0x08u) {
        if (!c.Byte(&subclass) || subclass >= kMaxSubclasses) return false;
      }
      if (f & 0x10u) {
        std::uint64_t nest = prev_lock;
        if (!c.Delta(&nest)) return false;
        if (nest != kNoLock) {
          out->nests.push_back(nest);
          index = static_cast<std::uint32_t>(out->nests.size());
        }
      }
      if (!c.Delta(&prev_ip)) return false;
      if ((f & 0x20u) && !c.Varint(&stack)) return false;
      if (!(f & 0x38u)) {  // no subclass, nest lock or stack: defines the compact entry
        const unsigned entry = logfmt::CompactSlot(prev_ip);
        slots[entry] = {prev_lock, prev_ip, static_cast<std::uint8_t>(f & 0x07u)};
        slot_set[0] |= std::uint64_t{1} << entry;
      }
      CompactRecord& r = add(prev_seq);
      r.type = RecordType::kAcquire;
      r.a = f & 0x03u;
      r.b = (f >> 2) & 1u;
      r.c = subclass;
      r.index = index;
      r.x = prev_lock;
      r.y = prev_ip;
      r.z = stack;
      ++events;
      continue;
    }
    if (tag == 0x01) {  // thread switch
      std::uint64_t tid;
      if (!c.Varint(&tid)) return false;
      have_thread = true;
      CompactRecord& r = add(prev_seq);
      r = {};
      r.type = RecordType::kThreadSwitch;
      r.x = tid;
      continue;
    }
    if (!IsDefinitionTag(tag) && tag >= 0x02 && tag <= logfmt::kMaxRecordType && !stamp())
      return false;
    // Everything else, into an Event and through Append (strings are copied there).
    if (tag == 0 || tag > logfmt::kMaxRecordType) return false;
    const auto type = static_cast<RecordType>(tag);
    if (logfmt::IsThreadBound(type) && !have_thread) return false;
    logfmt::Event e;
    e.type = type;
    auto str = [&c](std::string_view* s) {
      std::uint64_t n;
      if (!c.Varint(&n) || n > logfmt::kMaxStringBytes ||
          n > static_cast<std::uint64_t>(c.end - c.p))
        return false;
      *s = std::string_view(reinterpret_cast<const char*>(c.p), n);
      c.p += n;
      return true;
    };
    auto class_id = [&c](logfmt::LogClassId* id) {
      std::uint64_t v;
      if (!c.Varint(&v) || v > 0xffffffffu) return false;
      *id = static_cast<logfmt::LogClassId>(v);
      return true;
    };
    auto context = [&c](ContextId* ctx) {
      std::uint8_t v;
      if (!c.Byte(&v) || v >= kMaxContexts) return false;
      *ctx = v;
      return true;
    };
    bool ok = true;
    switch (type) {
      case RecordType::kThreadStart:
        ok = c.Varint(&e.thread) && str(&e.text);
        have_thread = ok;
        break;
      case RecordType::kThreadName:
        ok = str(&e.text);
        break;
      case RecordType::kThreadExit:
        ok = c.Delta(&prev_ip);
        e.ip = prev_ip;
        break;
      case RecordType::kClassDef:
        ok = class_id(&e.class_id) && c.Byte(&e.subclass) && e.subclass < kMaxSubclasses &&
             str(&e.text) && str(&e.text2);
        break;
      case RecordType::kContextName:
        ok = context(&e.context) && str(&e.text);
        break;
      case RecordType::kLockInit:
        ok = c.Delta(&prev_lock) && class_id(&e.class_id) && c.Delta(&prev_ip) &&
             c.Varint(&e.stack);
        e.lock = prev_lock;
        e.ip = prev_ip;
        break;
      case RecordType::kLockDestroy:
        ok = c.Delta(&prev_lock) && c.Delta(&prev_ip) && c.Varint(&e.stack);
        e.lock = prev_lock;
        e.ip = prev_ip;
        break;
      case RecordType::kLockSetClass:
        ok = c.Delta(&prev_lock) && class_id(&e.class_id);
        e.lock = prev_lock;
        break;
      case RecordType::kCancelAcquire:
        ok = c.Delta(&prev_lock);
        e.lock = prev_lock;
        break;
      case RecordType::kEnterContext:
      case RecordType::kDisableContext:
      case RecordType::kEnableContext:
        ok = context(&e.context);
        break;
      case RecordType::kExitContext:
        ok = context(&e.context) && c.Delta(&prev_ip);
        e.ip = prev_ip;
        break;
      case RecordType::kSetDisabledMask:
        ok = c.Varint(&e.mask.words[0]) && c.Varint(&e.mask.words[1]);
        break;
      case RecordType::kStackDef: {
        std::uint64_t n;
        ok = c.Varint(&e.stack) && c.Varint(&n) && n <= logfmt::kMaxFrames &&
             n <= static_cast<std::uint64_t>(c.end - c.p);
        for (std::uint64_t i = 0; ok && i < n; ++i) {
          std::string_view f;
          ok = str(&f);
          e.frames.push_back(f);
        }
        break;
      }
      case RecordType::kCallSiteDef:
        ok = c.Varint(&e.ip) && str(&e.text);
        break;
      case RecordType::kLockName:
        ok = c.Varint(&e.lock) && str(&e.text);
        break;
      case RecordType::kRunEnd:
        break;
      default:  // switch, acquire and release were handled above
        ok = false;
    }
    if (!ok) return false;
    out->Resize(n);
    Append(e, prev_seq, out);
    recs = out->record_data();
    seqs = out->seq_data();
    n = out->size();
    cap = out->capacity();
  }
  out->Resize(n);
  out->events += events;
  out->records_seen += events;
  if (have_first) {
    out->first_seq = first_seq;
    out->last_seq = prev_seq;
    out->seq_sorted = !unsorted;
  }
  return true;
}

}  // namespace

void DecodeBlockGeneric(const logfmt::BlockView& block, DecodedBlock* out,
                        logfmt::DecodeError* error) {
  out->Clear();
  out->bytes = block.payload.size() + logfmt::kBlockHeaderSize;
  logfmt::BlockDecoder dec(block);
  logfmt::Event e;
  ThreadKey thread = 0;
  bool have_thread = false;
  std::uint64_t stamped = 0;
  while (dec.Next(&e, error)) {
    const std::uint64_t before = out->last_seq;  // a switch gets the stamp before the event
    if (dec.has_seq() && !logfmt::IsDefinition(e.type)) {
      if (stamped == 0) out->first_seq = e.seq;
      else if (e.seq < out->last_seq) out->seq_sorted = false;
      out->last_seq = e.seq;
      ++stamped;
    }
    // The codec hides thread switches; make them explicit where the thread changes.
    if (logfmt::IsThreadBound(e.type) && (!have_thread || e.thread != thread)) {
      CompactRecord& r = out->Add(before);
      r = {};
      r.type = RecordType::kThreadSwitch;
      r.x = e.thread;
      thread = e.thread;
      have_thread = true;
    }
    if (e.type == RecordType::kThreadStart) {
      thread = e.thread;
      have_thread = true;
    }
    Append(e, dec.has_seq() && !logfmt::IsDefinition(e.type) ? e.seq : 0, out);
  }
  out->has_seq = dec.has_seq();
}

void DecodeBlock(const logfmt::BlockView& block, DecodedBlock* out, logfmt::DecodeError* error) {
  out->Clear();
  *error = {};
  out->bytes = block.payload.size() + logfmt::kBlockHeaderSize;
  if (DecodeFast(block, out)) return;
  DecodeBlockGeneric(block, out, error);
}

// --- Lock slots ---------------------------------------------------------------------------

LockSlots::LockSlots() {
  Rehash(1024);
  next_ = 1;  // slot 0: kNoLock
}

void LockSlots::Rehash(std::size_t n) {
  std::vector<Entry> old;
  old.swap(entries_);
  entries_.assign(n, Entry{kNoLock, 0});
  mask_ = n - 1;
  shift_ = 64 - std::countr_zero(n);
  for (const Entry& e : old) {
    if (e.lock == kNoLock) continue;
    std::size_t i = Home(e.lock);
    while (entries_[i].lock != kNoLock) i = (i + 1) & mask_;
    entries_[i] = e;
  }
}

std::uint32_t LockSlots::OfSlow(LockId lock) {
  if (lock == kNoLock) return 0;
  for (std::size_t i = Home(lock);; i = (i + 1) & mask_) {
    Entry& e = entries_[i];
    if (e.lock == lock) return e.slot;
    if (e.lock != kNoLock) continue;
    if (2 * (used_ + 1) > entries_.size()) {
      Rehash(2 * entries_.size());
      return OfSlow(lock);
    }
    ++used_;
    e.lock = lock;
    if (!free_.empty()) {
      e.slot = free_.back();
      free_.pop_back();
    } else {
      e.slot = next_++;
    }
    return e.slot;
  }
}

std::uint32_t LockSlots::Retire(LockId lock) {
  if (lock == kNoLock) return 0;
  const std::uint32_t slot = Of(lock);
  std::size_t i = Home(lock);
  while (entries_[i].lock != lock) i = (i + 1) & mask_;
  Erase(i);
  free_.push_back(slot);
  return slot;
}

void LockSlots::Erase(std::size_t i) {
  // Linear probing without tombstones: each later entry of the run moves into the hole unless
  // its home lies cyclically in (hole, its place], where it would no longer be found.
  for (std::size_t j = i;;) {
    j = (j + 1) & mask_;
    if (entries_[j].lock == kNoLock) break;
    const std::size_t k = Home(entries_[j].lock);
    const bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
    if (stays) continue;
    entries_[i] = entries_[j];
    i = j;
  }
  entries_[i] = Entry{kNoLock, 0};
  --used_;
}

void AssignLockSlots(DecodedBlock* block, LockSlots* slots) {
  const CompactRecord* records = block->records().data();
  const std::size_t n = block->size();
  std::uint32_t* out = block->lock_slot_data();
  // The lock of the last acquisition and its slot: a log over few locks repeats them.
  LockId last = kNoLock;
  std::uint32_t last_slot = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const CompactRecord& r = records[i];
    std::uint32_t slot = 0;
    if (r.type == RecordType::kAcquire) {
      if (r.x != last) {
        last = r.x;
        last_slot = slots->Of(last);
      }
      slot = last_slot;
    } else if (r.type == RecordType::kLockInit) [[unlikely]] {
      slot = slots->Of(r.x);
    } else if (r.type == RecordType::kLockDestroy) [[unlikely]] {
      slot = slots->Retire(r.x);
      last = kNoLock;
    }
    out[i] = slot;
  }
  if (out != nullptr) std::fill(out + n, out + n + DecodedBlock::kLockSlotPad, 0u);
  block->lock_slot_limit = slots->limit();
}

namespace {

std::uint32_t LoadLE32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 |
         std::uint32_t{p[3]} << 24;
}

// Reads records up to the first event's stamp. Definitions and switches are stepped over with
// the same bounds checks as the decoder's; false on anything it cannot read.
bool FirstStamp(std::span<const std::uint8_t> payload, IndexedBlock* out) {
  Cursor c{payload.data() + 1, payload.data() + payload.size()};
  auto skip_string = [&c] {
    std::uint64_t n;
    if (!c.Varint(&n) || n > logfmt::kMaxStringBytes || n > static_cast<std::uint64_t>(c.end - c.p))
      return false;
    c.p += n;
    return true;
  };
  std::uint64_t v;
  std::uint8_t byte;
  while (c.p < c.end) {
    const std::uint8_t tag = *c.p++;
    bool ok = true;
    switch (tag) {
      case 0x01:  // thread switch
        ok = c.Varint(&v);
        break;
      case 0x05:  // class
        ok = c.Varint(&v) && c.Byte(&byte) && skip_string() && skip_string();
        break;
      case 0x06:  // context name
        ok = c.Byte(&byte) && skip_string();
        break;
      case 0x12: {  // stack
        std::uint64_t n = 0;
        ok = c.Varint(&v) && c.Varint(&n) && n <= logfmt::kMaxFrames;
        for (std::uint64_t i = 0; ok && i < n; ++i) ok = skip_string();
        break;
      }
      case 0x13:  // call site
      case 0x15:  // lock name
        ok = c.Varint(&v) && skip_string();
        break;
      default: {
        // A compact record (version 3) repeats an earlier record of its block: never the first.
        if (tag == 0 || tag > logfmt::kMaxRecordType) return false;
        std::uint64_t seq = 0;  // the first stamp is a difference from 0
        if (!c.Delta(&seq)) return false;
        out->has_events = true;
        out->first_seq = seq;
        return true;
      }
    }
    if (!ok) return false;
  }
  out->has_events = false;
  return true;
}

}  // namespace

bool IndexStampedBlocks(std::span<const std::uint8_t> file, std::size_t at,
                        std::vector<IndexedBlock>* blocks) {
  blocks->clear();
  const std::size_t n = file.size();
  while (at < n) {
    if (n - at < logfmt::kBlockHeaderSize) return false;
    const std::uint8_t* p = file.data() + at;
    if (std::memcmp(p, logfmt::kBlockMagic, 4) != 0) return false;
    const std::uint32_t len = LoadLE32(p + 4);
    if (len == 0 || len > logfmt::kMaxBlockPayload || n - at - logfmt::kBlockHeaderSize < len)
      return false;
    const auto payload = file.subspan(at + logfmt::kBlockHeaderSize, len);
    if (payload[0] != 1) return false;  // flags: stamped, nothing else
    IndexedBlock b;
    b.offset = at;
    b.length = len;
    if (!FirstStamp(payload, &b)) return false;
    blocks->push_back(b);
    at += logfmt::kBlockHeaderSize + len;
  }
  return !blocks->empty();
}

bool CheckIndexedBlock(std::span<const std::uint8_t> file, const IndexedBlock& block,
                       std::uint16_t version, logfmt::BlockView* view) {
  const std::uint8_t* p = file.data() + block.offset;
  std::uint32_t crc = logfmt::LogChecksum(version, 0, p + 4, 8);
  crc = logfmt::LogChecksum(version, crc, p + logfmt::kBlockHeaderSize, block.length);
  if (crc != LoadLE32(p + 12)) return false;
  view->offset = block.offset;
  view->number = LoadLE32(p + 8);
  view->payload = file.subspan(block.offset + logfmt::kBlockHeaderSize, block.length);
  view->version = version;
  return true;
}

}  // namespace lockgraph::analyzer
