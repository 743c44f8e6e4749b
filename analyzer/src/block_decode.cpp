// Block decoding for replay: a straight-line decoder for well-formed blocks (the common case),
// and logfmt::BlockDecoder for any block it does not accept, so damaged blocks give exactly the
// errors and the partial contents the codec defines.
#include "block_decode.h"

#include <algorithm>

namespace lockgraph::analyzer {

using logfmt::RecordType;

void DecodedBlock::Grow(std::size_t at_least) {
  std::size_t cap = std::max<std::size_t>({at_least, capacity_ * 2, 1024});
  std::unique_ptr<CompactRecord[]> bigger(new CompactRecord[cap]);
  std::copy(records_.get(), records_.get() + count_, bigger.get());
  records_ = std::move(bigger);
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
  events = records_seen = 0;
  has_seq = end = false;
  first_seq = last_seq = 0;
  seq_sorted = true;
  bytes = 0;
}

namespace {

// Appends one decoded record (any type) to *out.
void Append(const logfmt::Event& e, DecodedBlock* out) {
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
  out->Add() = r;
}

// Decoding state of the straight-line path. Every read is bounds-checked; any irregularity
// returns false and the caller re-decodes the block with the generic decoder.
struct Cursor {
  const std::uint8_t* p;
  const std::uint8_t* end;

  bool Byte(std::uint8_t* v) {
    if (p >= end) return false;
    *v = *p++;
    return true;
  }
  bool Varint(std::uint64_t* v) {
    if (p < end && *p < 0x80) {
      *v = *p++;
      return true;
    }
    std::uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p >= end) return false;
      const std::uint8_t b = *p++;
      if (shift == 63 && b > 1) return false;
      r |= std::uint64_t{b & 0x7fu} << shift;
      if (!(b & 0x80)) {
        *v = r;
        return true;
      }
    }
    return false;
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
  std::uint64_t prev_lock = 0, prev_ip = 0, prev_seq = 0, stamped = 0;
  out->Reserve(payload.size() / 3 + 16);
  while (c.p < c.end) {
    const std::uint8_t tag = *c.p++;
    if (tag == 0x01) {  // thread switch
      std::uint64_t tid;
      if (!c.Varint(&tid)) return false;
      have_thread = true;
      CompactRecord& r = out->Add();
      r = {};
      r.type = RecordType::kThreadSwitch;
      r.x = tid;
      continue;
    }
    if (seq && !IsDefinitionTag(tag) && tag >= 0x02 && tag <= logfmt::kMaxRecordType) {
      const std::uint64_t before = prev_seq;
      if (!c.Delta(&prev_seq)) return false;
      if (stamped == 0) out->first_seq = prev_seq;
      else if (prev_seq < before) out->seq_sorted = false;
      out->last_seq = prev_seq;
      ++stamped;
    }
    if (tag == 0x0a) {  // acquire
      if (!have_thread) return false;
      std::uint8_t f;
      if (!c.Byte(&f) || (f & ~0x3fu) || (f & 0x03u) > 2) return false;
      CompactRecord& r = out->Add();
      r = {};
      r.type = RecordType::kAcquire;
      r.a = f & 0x03u;
      r.b = (f >> 2) & 1u;
      if (!c.Delta(&prev_lock)) return false;
      r.x = prev_lock;
      if (f & 0x08u) {
        if (!c.Byte(&r.c) || r.c >= kMaxSubclasses) return false;
      }
      if (f & 0x10u) {
        std::uint64_t nest = prev_lock;
        if (!c.Delta(&nest)) return false;
        if (nest != kNoLock) {
          out->nests.push_back(nest);
          r.index = static_cast<std::uint32_t>(out->nests.size());
        }
      }
      if (!c.Delta(&prev_ip)) return false;
      r.y = prev_ip;
      if ((f & 0x20u) && !c.Varint(&r.z)) return false;
      ++out->records_seen;
      ++out->events;
      continue;
    }
    if (tag == 0x0b) {  // release
      if (!have_thread) return false;
      if (!c.Delta(&prev_lock) || !c.Delta(&prev_ip)) return false;
      CompactRecord& r = out->Add();
      r = {};
      r.type = RecordType::kRelease;
      r.x = prev_lock;
      r.y = prev_ip;
      ++out->records_seen;
      ++out->events;
      continue;
    }
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
    Append(e, out);
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
    if (dec.has_seq() && !logfmt::IsDefinition(e.type)) {
      if (stamped == 0) out->first_seq = e.seq;
      else if (e.seq < out->last_seq) out->seq_sorted = false;
      out->last_seq = e.seq;
      ++stamped;
    }
    // The codec hides thread switches; make them explicit where the thread changes.
    if (logfmt::IsThreadBound(e.type) && (!have_thread || e.thread != thread)) {
      CompactRecord& r = out->Add();
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
    Append(e, out);
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

}  // namespace lockgraph::analyzer
