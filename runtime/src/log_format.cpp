// The lock-log codec: binary blocks and text lines to and from engine event records.
#include "lockgraph/log_format.h"

#include <zlib.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include <algorithm>
#include <atomic>
#include <cctype>
#include <functional>
#include <tuple>
#include <charconv>
#include <cstring>

namespace lockgraph::logfmt {
namespace {

constexpr std::uint8_t kBlockFlagSeq = 1;

// Acquire flag byte: mode in bits 0-1, then presence bits for optional fields.
constexpr std::uint8_t kAcqModeMask = 0x03;
constexpr std::uint8_t kAcqTry = 0x04;
constexpr std::uint8_t kAcqSubclass = 0x08;
constexpr std::uint8_t kAcqNest = 0x10;
constexpr std::uint8_t kAcqStack = 0x20;
constexpr std::uint8_t kAcqKnownBits = 0x3f;

std::uint64_t ZigZag(std::int64_t v) {
  return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63);
}
std::int64_t UnZigZag(std::uint64_t v) {
  return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1);
}
std::uint64_t Delta(std::uint64_t now, std::uint64_t prev) {
  return ZigZag(static_cast<std::int64_t>(now - prev));
}
std::uint64_t Undelta(std::uint64_t prev, std::uint64_t zz) {
  return prev + static_cast<std::uint64_t>(UnZigZag(zz));
}

void PutLE32(std::uint8_t* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
void PutLE16(std::uint8_t* p, std::uint16_t v) {
  p[0] = static_cast<std::uint8_t>(v);
  p[1] = static_cast<std::uint8_t>(v >> 8);
}
std::uint32_t GetLE32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 |
         std::uint32_t{p[3]} << 24;
}
std::uint16_t GetLE16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>(p[0] | p[1] << 8);
}

// zlib's CRC-32, the checksum of format version 1 (read only).
std::uint32_t ZlibCrc(std::uint32_t crc, const std::uint8_t* p, std::size_t n) {
  // zlib's crc32 takes uInt lengths; blocks are far below 4 GiB.
  return static_cast<std::uint32_t>(::crc32(crc, p, static_cast<uInt>(n)));
}

// CRC-32C tables for eight bytes at a time: kCrc32cTable[k][b] is the register after feeding
// byte b followed by k zero bytes, so eight table look-ups advance the register by eight bytes.
struct Crc32cTables {
  std::uint32_t t[8][256];
};
constexpr Crc32cTables MakeCrc32cTables() {
  Crc32cTables tables{};
  for (std::uint32_t b = 0; b < 256; ++b) {
    std::uint32_t r = b;
    for (int bit = 0; bit < 8; ++bit) r = (r >> 1) ^ (0x82f63b78u & (0u - (r & 1)));
    tables.t[0][b] = r;
  }
  for (int k = 1; k < 8; ++k)
    for (std::uint32_t b = 0; b < 256; ++b) {
      const std::uint32_t prev = tables.t[k - 1][b];
      tables.t[k][b] = (prev >> 8) ^ tables.t[0][prev & 0xff];
    }
  return tables;
}
constexpr Crc32cTables kCrc32c = MakeCrc32cTables();

#if defined(__x86_64__)
// The SSE4.2 crc32 instruction computes exactly this CRC: eight bytes per instruction, one
// dependent chain (about 2.7 bytes per cycle at its 3-cycle latency).
__attribute__((target("sse4.2"))) std::uint32_t Crc32cSse42(std::uint32_t crc,
                                                              const std::uint8_t* p,
                                                              std::size_t n) {
  std::uint64_t r = ~crc;
  for (; n >= 8; n -= 8, p += 8) {
    std::uint64_t v;
    std::memcpy(&v, p, 8);
    r = __builtin_ia32_crc32di(r, v);
  }
  auto r32 = static_cast<std::uint32_t>(r);
  for (; n > 0; --n) r32 = __builtin_ia32_crc32qi(r32, *p++);
  return ~r32;
}

// 0: not looked at yet, 1: no SSE4.2, 2: SSE4.2. A race only repeats the look-up.
std::atomic<int> g_crc32c_hw{0};
bool HaveSse42() {
  int known = g_crc32c_hw.load(std::memory_order_relaxed);
  if (known == 0) {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    const bool sse42 = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_SSE4_2) != 0;
    known = sse42 ? 2 : 1;
    g_crc32c_hw.store(known, std::memory_order_relaxed);
  }
  return known == 2;
}
#endif

// The checksum this lockgraph writes (kBinaryVersion's).
std::uint32_t Crc(std::uint32_t crc, const std::uint8_t* p, std::size_t n) {
  return Crc32c(crc, p, n);
}

// Bounded writer over caller memory: every Put checks capacity, nothing allocates.
struct Writer {
  std::uint8_t* p;
  std::size_t cap;
  std::size_t pos;
  bool ok = true;

  void Byte(std::uint8_t b) {
    if (pos >= cap) { ok = false; return; }
    p[pos++] = b;
  }
  void Varint(std::uint64_t v) {
    while (v >= 0x80) {
      Byte(static_cast<std::uint8_t>(v | 0x80));
      v >>= 7;
    }
    Byte(static_cast<std::uint8_t>(v));
  }
  void String(std::string_view s) {
    if (s.size() > kMaxStringBytes) s = s.substr(0, kMaxStringBytes);
    Varint(s.size());
    if (cap - std::min(pos, cap) < s.size()) { ok = false; return; }
    std::memcpy(p + pos, s.data(), s.size());
    pos += s.size();
  }
};

// Bounded reader over one block payload; the first failure sticks and names its offset.
struct Reader {
  std::span<const std::uint8_t> p;
  std::size_t pos = 0;
  const char* err = nullptr;
  std::size_t err_pos = 0;

  void Fail(const char* why) {
    if (!err) {
      err = why;
      err_pos = pos;
    }
  }
  std::uint8_t Byte() {
    if (err) return 0;
    if (pos >= p.size()) { Fail("record runs past the end of its block"); return 0; }
    return p[pos++];
  }
  std::uint64_t Varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      std::uint8_t b = Byte();
      if (err) return 0;
      if (shift == 63 && b > 1) { Fail("varint overflows 64 bits"); return 0; }
      v |= std::uint64_t{b & 0x7fu} << shift;
      if (!(b & 0x80)) return v;
    }
    Fail("varint longer than 10 bytes");
    return 0;
  }
  std::string_view String() {
    std::uint64_t n = Varint();
    if (err) return {};
    if (n > kMaxStringBytes) { Fail("string longer than the 64 KiB limit"); return {}; }
    if (n > p.size() - pos) { Fail("string runs past the end of its block"); return {}; }
    std::string_view s(reinterpret_cast<const char*>(p.data() + pos), n);
    pos += n;
    return s;
  }
  ContextId Context() {
    std::uint8_t c = Byte();
    if (c >= kMaxContexts) Fail("context id out of range");
    return c;
  }
};

}  // namespace

std::uint32_t Crc32cPortable(std::uint32_t crc, const std::uint8_t* p, std::size_t n) {
  const auto& t = kCrc32c.t;
  std::uint32_t r = ~crc;
  for (; n >= 8; n -= 8, p += 8) {
    const std::uint32_t lo = r ^ (std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 |
                                  std::uint32_t{p[2]} << 16 | std::uint32_t{p[3]} << 24);
    r = t[7][lo & 0xff] ^ t[6][(lo >> 8) & 0xff] ^ t[5][(lo >> 16) & 0xff] ^ t[4][lo >> 24] ^
        t[3][p[4]] ^ t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
  }
  for (; n > 0; --n) r = (r >> 8) ^ t[0][(r ^ *p++) & 0xff];
  return ~r;
}

std::uint32_t Crc32c(std::uint32_t crc, const std::uint8_t* p, std::size_t n) {
#if defined(__x86_64__)
  if (HaveSse42()) return Crc32cSse42(crc, p, n);
#endif
  return Crc32cPortable(crc, p, n);
}

std::uint32_t LogChecksum(std::uint16_t version, std::uint32_t crc, const std::uint8_t* p,
                          std::size_t n) {
  return version == 1 ? ZlibCrc(crc, p, n) : Crc32c(crc, p, n);
}

std::string_view RecordTypeName(RecordType type) {
  switch (type) {
    case RecordType::kThreadSwitch: return "thread-switch";
    case RecordType::kThreadStart: return "thread";
    case RecordType::kThreadName: return "rename";
    case RecordType::kThreadExit: return "exit";
    case RecordType::kClassDef: return "class";
    case RecordType::kContextName: return "context";
    case RecordType::kLockInit: return "init";
    case RecordType::kLockDestroy: return "destroy";
    case RecordType::kLockSetClass: return "setclass";
    case RecordType::kAcquire: return "acquire";
    case RecordType::kRelease: return "release";
    case RecordType::kCancelAcquire: return "cancel";
    case RecordType::kEnterContext: return "enter";
    case RecordType::kExitContext: return "leave";
    case RecordType::kDisableContext: return "disable";
    case RecordType::kEnableContext: return "enable";
    case RecordType::kSetDisabledMask: return "mask";
    case RecordType::kStackDef: return "stack";
    case RecordType::kCallSiteDef: return "site";
    case RecordType::kRunEnd: return "end";
    case RecordType::kLockName: return "lockname";
  }
  return "unknown";
}

bool IsThreadBound(RecordType type) {
  switch (type) {
    case RecordType::kThreadName:
    case RecordType::kThreadExit:
    case RecordType::kLockInit:
    case RecordType::kLockDestroy:
    case RecordType::kAcquire:
    case RecordType::kRelease:
    case RecordType::kCancelAcquire:
    case RecordType::kEnterContext:
    case RecordType::kExitContext:
    case RecordType::kDisableContext:
    case RecordType::kEnableContext:
    case RecordType::kSetDisabledMask:
      return true;
    default:
      return false;
  }
}

bool IsDefinition(RecordType type) {
  return type == RecordType::kClassDef || type == RecordType::kContextName ||
         type == RecordType::kStackDef || type == RecordType::kCallSiteDef ||
         type == RecordType::kLockName;
}

bool SameEvent(const Event& a, const Event& b) {
  return a.type == b.type && a.seq == b.seq && a.thread == b.thread && a.lock == b.lock &&
         a.nest_lock == b.nest_lock && a.ip == b.ip && a.stack == b.stack &&
         a.class_id == b.class_id && a.mode == b.mode && a.trylock == b.trylock &&
         a.subclass == b.subclass && a.context == b.context && a.mask == b.mask &&
         a.text == b.text && a.text2 == b.text2 && a.frames == b.frames;
}

std::uint64_t StableClassKey(std::string_view identity) {
  std::uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : identity) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

Format DetectFormat(std::span<const std::uint8_t> head) {
  if (head.size() >= 4 && std::memcmp(head.data(), kFileMagic, 4) == 0) return Format::kBinary;
  // Text: optional '#' comment and blank lines, then "lockgraph-text".
  std::string_view s(reinterpret_cast<const char*>(head.data()), head.size());
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n')) ++i;
    if (i < s.size() && s[i] == '#') {
      std::size_t nl = s.find('\n', i);
      if (nl == std::string_view::npos) return Format::kUnknown;
      i = nl + 1;
      continue;
    }
    break;
  }
  if (s.substr(i, kTextMagic.size()) == kTextMagic) return Format::kText;
  return Format::kUnknown;
}

// --- File header ---------------------------------------------------------------------------

void EncodeFileHeader(const FileHeader& header, std::string* out) {
  std::uint8_t payload[3 * kMaxStringBytes / 4];  // ample for program + cmdline + host, clipped
  auto clip = [](std::string_view s, std::size_t n) { return s.substr(0, std::min(s.size(), n)); };
  Writer w{payload, sizeof payload, 0};
  w.String(clip(header.program, 4096));
  w.Varint(header.pid);
  w.Varint(header.start_unix_ns);
  w.String(clip(header.command_line, 32 * 1024));
  w.String(clip(header.hostname, 256));
  std::uint8_t fixed[kFileHeaderFixedSize];
  std::memcpy(fixed, kFileMagic, 8);
  PutLE16(fixed + 8, kBinaryVersion);
  PutLE16(fixed + 10, 0);
  PutLE32(fixed + 12, static_cast<std::uint32_t>(w.pos));
  std::uint32_t crc = Crc(0, fixed, sizeof fixed);
  crc = Crc(crc, payload, w.pos);
  std::uint8_t tail[4];
  PutLE32(tail, crc);
  out->append(reinterpret_cast<const char*>(fixed), sizeof fixed);
  out->append(reinterpret_cast<const char*>(payload), w.pos);
  out->append(reinterpret_cast<const char*>(tail), 4);
}

BinaryScanner::HeaderResult BinaryScanner::ReadHeader(FileHeader* header, DecodeError* error) {
  header_done_ = true;
  *error = {};
  const std::size_t n = file_.size();
  const std::uint8_t* p = file_.data();
  std::size_t cmp = std::min<std::size_t>(n, 8);
  if (n == 0 || std::memcmp(p, kFileMagic, cmp) != 0) {
    error->message = n == 0 ? "empty file, not a lockgraph log"
                            : "not a lockgraph log (bad magic at the start of the file)";
    at_end_ = true;
    return HeaderResult::kFatal;
  }
  if (n < kFileHeaderFixedSize) {
    error->offset = n;
    error->message = "truncated file header (" + std::to_string(n) + " of at least " +
                     std::to_string(kFileHeaderFixedSize + 4) + " bytes)";
    at_end_ = true;
    return HeaderResult::kFatal;
  }
  std::uint16_t version = GetLE16(p + 8);
  if (version < kOldestBinaryVersion || version > kBinaryVersion) {
    error->offset = 8;
    error->message = "unsupported log format version " + std::to_string(version) +
                     " (this lockgraph reads versions " + std::to_string(kOldestBinaryVersion) +
                     " to " + std::to_string(kBinaryVersion) + ")";
    at_end_ = true;
    return HeaderResult::kFatal;
  }
  version_ = version;
  std::uint32_t len = GetLE32(p + 12);
  if (len > kMaxFileHeaderPayload) {
    error->offset = 12;
    error->message = "corrupt file header (header length " + std::to_string(len) + ")";
    pos_ = kFileHeaderFixedSize;  // resynchronise on the first block
    return HeaderResult::kCorrupt;
  }
  if (n < kFileHeaderFixedSize + len + 4) {
    error->offset = n;
    error->message = "truncated file header";
    at_end_ = true;
    return HeaderResult::kFatal;
  }
  std::uint32_t want = GetLE32(p + kFileHeaderFixedSize + len);
  std::uint32_t got = LogChecksum(version, LogChecksum(version, 0, p, kFileHeaderFixedSize),
                                  p + kFileHeaderFixedSize, len);
  pos_ = kFileHeaderFixedSize + len + 4;
  if (want != got) {
    error->offset = 0;
    error->message = "corrupt file header (CRC mismatch); run name unknown";
    return HeaderResult::kCorrupt;
  }
  Reader r{file_.subspan(kFileHeaderFixedSize, len)};
  FileHeader h;
  h.version = version;
  h.program = std::string(r.String());
  h.pid = r.Varint();
  h.start_unix_ns = r.Varint();
  // Later fields are optional: an older writer may stop after the start time.
  if (!r.err && r.pos < r.p.size()) h.command_line = std::string(r.String());
  if (!r.err && r.pos < r.p.size()) h.hostname = std::string(r.String());
  if (r.err) {
    error->offset = kFileHeaderFixedSize + r.err_pos;
    error->message = std::string("corrupt file header: ") + r.err;
    return HeaderResult::kCorrupt;
  }
  *header = std::move(h);
  return HeaderResult::kOk;
}

// --- Blocks --------------------------------------------------------------------------------

BlockEncoder::BlockEncoder(std::uint8_t* buffer, std::size_t capacity, bool with_seq)
    : buf_(buffer),
      cap_(std::min(capacity, kBlockHeaderSize + kMaxBlockPayload)),
      with_seq_(with_seq) {
  Reset();
}

void BlockEncoder::Reset() {
  pos_ = kBlockHeaderSize;
  buf_[pos_++] = with_seq_ ? kBlockFlagSeq : 0;
  records_ = 0;
  have_thread_ = false;
  thread_ = 0;
  ready_end_ = 0;
  prev_seq_ = 0;
  prev_lock_ = 0;
  prev_ip_ = 0;
  for (CompactEntry& e : acquire_slots_) e = {0, 0, 0xff};
  for (CompactEntry& e : release_slots_) e = {0, 0, 0xff};
}

bool BlockEncoder::Put(const Event& event) {
  // Acquire and release records through the encoders the recorder uses (the same bytes, and the
  // compact records' tables kept the one way).
  if (event.type == RecordType::kAcquire) {
    return PutAcquire(event.thread, event.seq, event.lock, event.mode, event.trylock,
                      event.subclass, event.nest_lock, event.ip, event.stack);
  }
  if (event.type == RecordType::kRelease) {
    return PutRelease(event.thread, event.seq, event.lock, event.ip);
  }
  // Encode tentatively; on overflow restore position and delta state.
  const std::size_t pos = pos_;
  const ThreadKey thread = thread_;
  const bool have_thread = have_thread_;
  const std::size_t ready_end = ready_end_;
  const std::uint64_t seq = prev_seq_, lock = prev_lock_, ip = prev_ip_;
  if (PutRecord(event)) {
    ++records_;
    return true;
  }
  pos_ = pos;
  thread_ = thread;
  have_thread_ = have_thread;
  ready_end_ = ready_end;
  prev_seq_ = seq;
  prev_lock_ = lock;
  prev_ip_ = ip;
  return false;
}

bool BlockEncoder::PutRecord(const Event& e) {
  if (e.type == RecordType::kThreadSwitch) return true;  // framing is the encoder's business
  Writer w{buf_, cap_, pos_};
  if (IsThreadBound(e.type) && (!have_thread_ || thread_ != e.thread)) {
    w.Byte(static_cast<std::uint8_t>(RecordType::kThreadSwitch));
    w.Varint(e.thread);
    SetThread(e.thread);
  }
  w.Byte(static_cast<std::uint8_t>(e.type));
  if (with_seq_ && !IsDefinition(e.type)) {
    w.Varint(Delta(e.seq, prev_seq_));
    prev_seq_ = e.seq;
  }
  auto lock = [&](LockId id) {
    w.Varint(Delta(id, prev_lock_));
    prev_lock_ = id;
  };
  auto ip = [&](std::uint64_t v) {
    w.Varint(Delta(v, prev_ip_));
    prev_ip_ = v;
  };
  switch (e.type) {
    case RecordType::kThreadSwitch:
      break;
    case RecordType::kThreadStart:
      w.Varint(e.thread);
      w.String(e.text);
      SetThread(e.thread);
      break;
    case RecordType::kThreadName:
      w.String(e.text);
      break;
    case RecordType::kThreadExit:
      ip(e.ip);
      break;
    case RecordType::kClassDef:
      w.Varint(e.class_id);
      w.Byte(e.subclass);
      w.String(e.text);
      w.String(e.text2);
      break;
    case RecordType::kContextName:
      w.Byte(e.context);
      w.String(e.text);
      break;
    case RecordType::kLockInit:
      lock(e.lock);
      w.Varint(e.class_id);
      ip(e.ip);
      w.Varint(e.stack);
      break;
    case RecordType::kLockDestroy:
      lock(e.lock);
      ip(e.ip);
      w.Varint(e.stack);
      break;
    case RecordType::kLockSetClass:
      lock(e.lock);
      w.Varint(e.class_id);
      break;
    case RecordType::kAcquire:
    case RecordType::kRelease:
      return false;  // Put() writes them through PutAcquire / PutRelease
    case RecordType::kCancelAcquire:
      lock(e.lock);
      break;
    case RecordType::kEnterContext:
    case RecordType::kDisableContext:
    case RecordType::kEnableContext:
      w.Byte(e.context);
      break;
    case RecordType::kExitContext:
      w.Byte(e.context);
      ip(e.ip);
      break;
    case RecordType::kSetDisabledMask:
      w.Varint(e.mask.words[0]);
      w.Varint(e.mask.words[1]);
      break;
    case RecordType::kStackDef: {
      w.Varint(e.stack);
      std::size_t n = std::min(e.frames.size(), kMaxFrames);
      w.Varint(n);
      for (std::size_t i = 0; i < n && w.ok; ++i) w.String(e.frames[i]);
      break;
    }
    case RecordType::kCallSiteDef:
      w.Varint(e.ip);
      w.String(e.text);
      break;
    case RecordType::kLockName:
      w.Varint(e.lock);  // absolute: definitions leave the delta state alone
      w.String(e.text);
      break;
    case RecordType::kRunEnd:
      break;
  }
  if (!w.ok) return false;
  pos_ = w.pos;
  return true;
}

bool BlockEncoder::PutRelease(ThreadKey thread, std::uint64_t seq, LockId lock, std::uint64_t ip) {
  if (cap_ - pos_ < kMaxLockRecordBytes) return false;
  PutThreadSwitch(thread);
  PutPlainRelease(seq, lock, ip);
  return true;
}

bool BlockEncoder::PutAcquire(ThreadKey thread, std::uint64_t seq, LockId lock, AcquireMode mode,
                              bool trylock, std::uint8_t subclass, LockId nest_lock,
                              std::uint64_t ip, StackId stack) {
  if (cap_ - pos_ < kMaxLockRecordBytes) return false;
  PutThreadSwitch(thread);
  if (subclass == 0 && nest_lock == kNoLock && stack == kNoStack) {
    PutPlainAcquire(seq, lock, mode, trylock, ip);
    return true;
  }
  std::uint8_t* p = BeginLockRecord(RecordType::kAcquire, seq);
  std::uint8_t flags = static_cast<std::uint8_t>(mode) & kAcqModeMask;
  if (trylock) flags |= kAcqTry;
  if (subclass) flags |= kAcqSubclass;
  if (nest_lock != kNoLock) flags |= kAcqNest;
  if (stack != kNoStack) flags |= kAcqStack;
  *p++ = flags;
  p = PutVarint(p, Delta(lock, prev_lock_));
  prev_lock_ = lock;
  if (subclass) *p++ = subclass;
  if (nest_lock != kNoLock) p = PutVarint(p, Delta(nest_lock, lock));
  p = PutVarint(p, Delta(ip, prev_ip_));
  prev_ip_ = ip;
  if (stack != kNoStack) p = PutVarint(p, stack);
  pos_ = static_cast<std::size_t>(p - buf_);
  ++records_;
  return true;
}

std::span<const std::uint8_t> BlockEncoder::Finish(std::uint32_t block_number) {
  return SealBlock(buf_, pos_, block_number);
}

std::span<const std::uint8_t> SealBlock(std::uint8_t* block, std::size_t size,
                                        std::uint32_t block_number) {
  const std::uint32_t len = static_cast<std::uint32_t>(size - kBlockHeaderSize);
  std::memcpy(block, kBlockMagic, 4);
  PutLE32(block + 4, len);
  PutLE32(block + 8, block_number);
  std::uint32_t crc = Crc(0, block + 4, 8);
  crc = Crc(crc, block + kBlockHeaderSize, len);
  PutLE32(block + 12, crc);
  return {block, size};
}

bool BinaryScanner::ValidBlockAt(std::size_t at, BlockView* block) const {
  const std::size_t n = file_.size();
  if (at > n || n - at < kBlockHeaderSize) return false;
  const std::uint8_t* p = file_.data() + at;
  if (std::memcmp(p, kBlockMagic, 4) != 0) return false;
  std::uint32_t len = GetLE32(p + 4);
  if (len == 0 || len > kMaxBlockPayload || n - at - kBlockHeaderSize < len) return false;
  std::uint32_t crc =
      LogChecksum(version_, LogChecksum(version_, 0, p + 4, 8), p + kBlockHeaderSize, len);
  if (crc != GetLE32(p + 12)) return false;
  block->offset = at;
  block->number = GetLE32(p + 8);
  block->payload = file_.subspan(at + kBlockHeaderSize, len);
  block->version = version_;
  return true;
}

BinaryScanner::Next BinaryScanner::NextBlock(BlockView* block, DecodeError* error) {
  *error = {};
  if (!header_done_) {
    FileHeader ignored;
    if (ReadHeader(&ignored, error) == HeaderResult::kFatal) return Next::kEnd;
  }
  if (at_end_ || pos_ >= file_.size()) {
    at_end_ = true;
    return Next::kEnd;
  }
  if (ValidBlockAt(pos_, block)) {
    pos_ += kBlockHeaderSize + block->payload.size();
    ++blocks_;
    return Next::kBlock;
  }
  // Not a valid block here: classify, then look for the next block that frames and checks out.
  const std::size_t here = pos_, n = file_.size();
  const std::uint8_t* p = file_.data();
  std::string what;
  bool magic = n - here >= 4 && std::memcmp(p + here, kBlockMagic, 4) == 0;
  bool maybe_truncated = false;
  if (n - here < kBlockHeaderSize) {
    what = magic || std::memcmp(p + here, kBlockMagic, std::min<std::size_t>(4, n - here)) == 0
               ? "truncated block header"
               : "trailing garbage";
    maybe_truncated = true;
  } else if (!magic) {
    what = "bad block magic";
  } else {
    std::uint32_t len = GetLE32(p + here + 4);
    if (len == 0 || len > kMaxBlockPayload) {
      what = "corrupt block (length " + std::to_string(len) + ")";
    } else if (n - here - kBlockHeaderSize < len) {
      what = "truncated block (" + std::to_string(n - here - kBlockHeaderSize) + " of " +
             std::to_string(len) + " payload bytes)";
      maybe_truncated = true;
    } else {
      what = "corrupt block (CRC mismatch)";
    }
  }
  std::size_t at = here + 1;
  for (;;) {
    const std::uint8_t* hit = static_cast<const std::uint8_t*>(
        at + 4 <= n ? memmem(p + at, n - at, kBlockMagic, 4) : nullptr);
    if (!hit) break;
    at = static_cast<std::size_t>(hit - p);
    BlockView next;
    if (ValidBlockAt(at, &next)) {
      error->offset = here;
      error->message = (maybe_truncated ? "corrupt block (bad length)" : what) + "; skipped " +
                       std::to_string(at - here) + " bytes to the next valid block at offset " +
                       std::to_string(at);
      skipped_ += at - here;
      pos_ = at;
      return Next::kError;
    }
    ++at;
  }
  error->offset = here;
  error->message = maybe_truncated
                       ? what + " at the end of the file; the run was probably cut short"
                       : what + "; no valid block after it (" + std::to_string(n - here) +
                             " bytes skipped)";
  skipped_ += n - here;
  pos_ = n;
  at_end_ = true;
  return Next::kError;
}

BlockDecoder::BlockDecoder(const BlockView& block)
    : p_(block.payload),
      base_offset_(block.offset + kBlockHeaderSize),
      compact_ok_(block.version >= 3) {
  if (p_.empty()) {
    ok_ = false;
    return;
  }
  std::uint8_t flags = p_[0];
  pos_ = 1;
  with_seq_ = flags & kBlockFlagSeq;
  if (flags & ~kBlockFlagSeq) ok_ = false;  // reported on the first Next()
}

bool BlockDecoder::Fail(DecodeError* error, std::string message) {
  error->message = std::move(message);
  ok_ = false;
  return false;
}

bool BlockDecoder::Next(Event* event, DecodeError* error) {
  *error = {};
  if (!ok_) {
    if (pos_ == 1 && !p_.empty() && (p_[0] & ~kBlockFlagSeq)) {
      error->offset = base_offset_;
      pos_ = p_.size();
      return Fail(error, "unknown block flags " + std::to_string(p_[0]));
    }
    return false;
  }
  for (;;) {
    if (pos_ >= p_.size()) return false;
    Reader r{p_, pos_};
    const std::size_t start = pos_;
    std::uint8_t tag = r.Byte();
    if ((tag & kCompactRecordBit) && compact_ok_) {
      pos_ = r.pos;
      return NextCompact(tag, start, event, error);
    }
    if (tag == 0 || tag > kMaxRecordType) {
      error->offset = base_offset_ + start;
      return Fail(error, "unknown record type " + std::to_string(tag) + " (rest of block skipped)");
    }
    RecordType type = static_cast<RecordType>(tag);
    if (type == RecordType::kThreadSwitch) {
      thread_ = r.Varint();
      if (r.err) {
        error->offset = base_offset_ + r.err_pos;
        return Fail(error, r.err);
      }
      have_thread_ = true;
      pos_ = r.pos;
      continue;
    }
    Event& e = *event;
    e.type = type;
    e.thread = 0;
    e.lock = e.nest_lock = kNoLock;
    e.ip = 0;
    e.stack = kNoStack;
    e.class_id = 0;
    e.mode = AcquireMode::kExclusive;
    e.trylock = false;
    e.subclass = 0;
    e.context = 0;
    e.mask = {};
    e.text = e.text2 = {};
    e.frames.clear();
    if (with_seq_ && !IsDefinition(type)) prev_seq_ = Undelta(prev_seq_, r.Varint());
    e.seq = with_seq_ ? prev_seq_ : 0;
    if (IsThreadBound(type)) {
      if (!have_thread_) {
        error->offset = base_offset_ + start;
        return Fail(error, std::string(RecordTypeName(type)) +
                               " record before any thread in its block (rest of block skipped)");
      }
      e.thread = thread_;
    }
    auto lock = [&]() {
      prev_lock_ = Undelta(prev_lock_, r.Varint());
      return prev_lock_;
    };
    auto ip = [&]() {
      prev_ip_ = Undelta(prev_ip_, r.Varint());
      return prev_ip_;
    };
    auto class_id = [&]() {
      std::uint64_t v = r.Varint();
      if (v > 0xffffffffu) r.Fail("class id out of range");
      return static_cast<LogClassId>(v);
    };
    auto subclass = [&]() {
      std::uint8_t s = r.Byte();
      if (s >= kMaxSubclasses) r.Fail("subclass out of range");
      return s;
    };
    switch (type) {
      case RecordType::kThreadSwitch:
        break;
      case RecordType::kThreadStart:
        e.thread = r.Varint();
        e.text = r.String();
        thread_ = e.thread;
        have_thread_ = !r.err;
        break;
      case RecordType::kThreadName:
        e.text = r.String();
        break;
      case RecordType::kThreadExit:
        e.ip = ip();
        break;
      case RecordType::kClassDef:
        e.class_id = class_id();
        e.subclass = subclass();
        e.text = r.String();
        e.text2 = r.String();
        break;
      case RecordType::kContextName:
        e.context = r.Context();
        e.text = r.String();
        break;
      case RecordType::kLockInit:
        e.lock = lock();
        e.class_id = class_id();
        e.ip = ip();
        e.stack = r.Varint();
        break;
      case RecordType::kLockDestroy:
        e.lock = lock();
        e.ip = ip();
        e.stack = r.Varint();
        break;
      case RecordType::kLockSetClass:
        e.lock = lock();
        e.class_id = class_id();
        break;
      case RecordType::kAcquire: {
        std::uint8_t flags = r.Byte();
        if (flags & ~kAcqKnownBits) r.Fail("unknown acquire flags");
        if ((flags & kAcqModeMask) > 2) r.Fail("unknown acquire mode");
        e.mode = static_cast<AcquireMode>(flags & kAcqModeMask);
        e.trylock = flags & kAcqTry;
        e.lock = lock();
        if (flags & kAcqSubclass) e.subclass = subclass();
        if (flags & kAcqNest) e.nest_lock = Undelta(e.lock, r.Varint());
        e.ip = ip();
        if (flags & kAcqStack) e.stack = r.Varint();
        if (!r.err && !(flags & (kAcqSubclass | kAcqNest | kAcqStack))) {
          const unsigned slot = CompactSlot(e.ip);
          slots_[slot] = {e.lock, e.ip, e.mode, e.trylock};
          slot_set_[0] |= std::uint64_t{1} << slot;
        }
        break;
      }
      case RecordType::kRelease:
        e.lock = lock();
        e.ip = ip();
        if (!r.err) {
          const unsigned slot = CompactSlot(e.ip);
          slots_[kCompactSlots + slot] = {e.lock, e.ip, AcquireMode::kExclusive, false};
          slot_set_[1] |= std::uint64_t{1} << slot;
        }
        break;
      case RecordType::kCancelAcquire:
        e.lock = lock();
        break;
      case RecordType::kEnterContext:
      case RecordType::kDisableContext:
      case RecordType::kEnableContext:
        e.context = r.Context();
        break;
      case RecordType::kExitContext:
        e.context = r.Context();
        e.ip = ip();
        break;
      case RecordType::kSetDisabledMask:
        e.mask.words[0] = r.Varint();
        e.mask.words[1] = r.Varint();
        break;
      case RecordType::kStackDef: {
        e.stack = r.Varint();
        std::uint64_t n = r.Varint();
        if (n > kMaxFrames) r.Fail("stack definition with more than 1024 frames");
        // Each frame costs at least one byte, so the count is checked against what is left.
        if (!r.err && n > p_.size() - r.pos) r.Fail("stack definition runs past its block");
        for (std::uint64_t i = 0; i < n && !r.err; ++i) e.frames.push_back(r.String());
        break;
      }
      case RecordType::kCallSiteDef:
        e.ip = r.Varint();
        e.text = r.String();
        break;
      case RecordType::kLockName:
        e.lock = r.Varint();
        e.text = r.String();
        break;
      case RecordType::kRunEnd:
        break;
    }
    if (r.err) {
      error->offset = base_offset_ + r.err_pos;
      return Fail(error, std::string(RecordTypeName(type)) + " record: " + r.err +
                             " (rest of block skipped)");
    }
    pos_ = r.pos;
    return true;
  }
}

bool BlockDecoder::NextCompact(std::uint8_t tag, std::size_t start, Event* event,
                               DecodeError* error) {
  const bool release = tag & kCompactReleaseBit;
  const unsigned slot = tag & (kCompactSlots - 1);
  if (!(slot_set_[release ? 1 : 0] >> slot & 1)) {
    error->offset = base_offset_ + start;
    return Fail(error, std::string("compact ") + (release ? "release" : "acquire") +
                           " record of table entry " + std::to_string(slot) +
                           ", which no record of its block defined (rest of block skipped)");
  }
  const CompactEntry& c = slots_[(release ? kCompactSlots : 0) + slot];
  Event& e = *event;
  e.type = release ? RecordType::kRelease : RecordType::kAcquire;
  if (with_seq_) ++prev_seq_;
  e.seq = with_seq_ ? prev_seq_ : 0;
  e.thread = thread_;  // the entry was defined by a record of a thread of this block
  e.lock = c.lock;
  e.nest_lock = kNoLock;
  e.ip = c.ip;
  e.stack = kNoStack;
  e.class_id = 0;
  e.mode = c.mode;
  e.trylock = c.trylock;
  e.subclass = 0;
  e.context = 0;
  e.mask = {};
  e.text = e.text2 = {};
  e.frames.clear();
  return true;
}

// --- Signals -------------------------------------------------------------------------------

namespace {
struct SignalEntry {
  int number;
  std::string_view name;
};
// Linux (x86-64, arm64) numbering; the runtime records context names anyway.
constexpr SignalEntry kSignals[] = {
    {1, "SIGHUP"},   {2, "SIGINT"},     {3, "SIGQUIT"},  {4, "SIGILL"},    {5, "SIGTRAP"},
    {6, "SIGABRT"},  {7, "SIGBUS"},     {8, "SIGFPE"},   {9, "SIGKILL"},   {10, "SIGUSR1"},
    {11, "SIGSEGV"}, {12, "SIGUSR2"},   {13, "SIGPIPE"}, {14, "SIGALRM"},  {15, "SIGTERM"},
    {16, "SIGSTKFLT"}, {17, "SIGCHLD"}, {18, "SIGCONT"}, {19, "SIGSTOP"},  {20, "SIGTSTP"},
    {21, "SIGTTIN"}, {22, "SIGTTOU"},   {23, "SIGURG"},  {24, "SIGXCPU"},  {25, "SIGXFSZ"},
    {26, "SIGVTALRM"}, {27, "SIGPROF"}, {28, "SIGWINCH"}, {29, "SIGIO"},   {30, "SIGPWR"},
    {31, "SIGSYS"},
};
}  // namespace

int SignalNumber(std::string_view name) {
  for (const auto& s : kSignals)
    if (s.name == name) return s.number;
  // SIGRTMIN+n / SIG<n>
  if (name.starts_with("SIGRTMIN+")) {
    int n = 0;
    auto r = std::from_chars(name.data() + 9, name.data() + name.size(), n);
    if (r.ec == std::errc() && r.ptr == name.data() + name.size() && n >= 0 && n <= 30)
      return 34 + n;
  }
  if (name.starts_with("SIG") && name.size() > 3) {
    int n = 0;
    auto r = std::from_chars(name.data() + 3, name.data() + name.size(), n);
    if (r.ec == std::errc() && r.ptr == name.data() + name.size() && n >= 1 &&
        n <= kMaxContexts - kFirstNumberedContext)
      return n;
  }
  return 0;
}

std::string_view SignalName(int signo) {
  for (const auto& s : kSignals)
    if (s.number == signo) return s.name;
  return {};
}

// --- Text ----------------------------------------------------------------------------------

namespace {

void AppendQuoted(std::string_view s, std::string* out) {
  out->push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out->append("\\\""); break;
      case '\\': out->append("\\\\"); break;
      case '\n': out->append("\\n"); break;
      case '\t': out->append("\\t"); break;
      case '\r': out->append("\\r"); break;
      default:
        if (c < 0x20 || c == 0x7f) {
          static const char kHex[] = "0123456789abcdef";
          out->append("\\x");
          out->push_back(kHex[c >> 4]);
          out->push_back(kHex[c & 15]);
        } else {
          out->push_back(static_cast<char>(c));
        }
    }
  }
  out->push_back('"');
}

void AppendHex(std::uint64_t v, std::string* out) {
  char buf[24];
  buf[0] = '0';
  buf[1] = 'x';
  auto r = std::to_chars(buf + 2, buf + sizeof buf, v, 16);
  out->append(buf, r.ptr);
}

void AppendDec(std::uint64_t v, std::string* out) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, r.ptr);
}

// A token of a text line: a bare or quoted word, or key=value (value bare or quoted).
struct Token {
  std::string_view key;    // empty for a positional word
  std::string_view value;
  bool quoted = false;
};

bool ParseNumber(std::string_view s, std::uint64_t* v) {
  if (s.empty()) return false;
  int base = 10;
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    s.remove_prefix(2);
  }
  auto r = std::from_chars(s.data(), s.data() + s.size(), *v, base);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

bool LooksNumeric(std::string_view s) { return !s.empty() && s[0] >= '0' && s[0] <= '9'; }

}  // namespace

TextDecoder::TextDecoder() : named_contexts_(kMaxContexts, false) {}

void EncodeTextHeader(const FileHeader& header, std::string* out) {
  out->append(kTextMagic);
  out->append(" 1\n");
  out->append("run program=");
  AppendQuoted(header.program, out);
  out->append(" pid=");
  AppendDec(header.pid, out);
  out->append(" start=");
  AppendDec(header.start_unix_ns, out);
  if (!header.command_line.empty()) {
    out->append(" cmdline=");
    AppendQuoted(header.command_line, out);
  }
  if (!header.hostname.empty()) {
    out->append(" host=");
    AppendQuoted(header.hostname, out);
  }
  out->push_back('\n');
}

void EncodeTextLine(const Event& e, std::string* out) {
  auto ctx = [&](ContextId c) {
    out->push_back(' ');
    if (c == kHardirqContext) out->append("hardirq");
    else if (c == kSoftirqContext) out->append("softirq");
    else AppendDec(c, out);
  };
  auto thread = [&]() {
    out->push_back(' ');
    AppendDec(e.thread, out);
  };
  auto lock = [&](LockId l) {
    out->push_back(' ');
    AppendHex(l, out);
  };
  auto ip = [&]() {
    if (e.ip) {
      out->append(" ip=");
      AppendHex(e.ip, out);
    }
  };
  auto stack = [&]() {
    if (e.stack != kNoStack) {
      out->append(" stack=");
      AppendDec(e.stack, out);
    }
  };
  if (e.type == RecordType::kThreadSwitch) return;
  out->append(RecordTypeName(e.type));
  switch (e.type) {
    case RecordType::kThreadSwitch:
      break;
    case RecordType::kThreadStart:
      thread();
      out->append(" name=");
      AppendQuoted(e.text, out);
      break;
    case RecordType::kThreadName:
      thread();
      out->push_back(' ');
      AppendQuoted(e.text, out);
      break;
    case RecordType::kThreadExit:
      thread();
      ip();
      break;
    case RecordType::kClassDef:
      out->push_back(' ');
      AppendDec(e.class_id, out);
      out->append(" identity=");
      AppendQuoted(e.text, out);
      out->append(" name=");
      AppendQuoted(e.text2, out);
      if (e.subclass) {
        out->append(" subclass=");
        AppendDec(e.subclass, out);
      }
      break;
    case RecordType::kContextName:
      ctx(e.context);
      out->push_back(' ');
      AppendQuoted(e.text, out);
      break;
    case RecordType::kLockInit:
      thread();
      lock(e.lock);
      out->append(" class=");
      AppendDec(e.class_id, out);
      ip();
      stack();
      break;
    case RecordType::kLockDestroy:
      thread();
      lock(e.lock);
      ip();
      stack();
      break;
    case RecordType::kLockSetClass:
      lock(e.lock);
      out->push_back(' ');
      AppendDec(e.class_id, out);
      break;
    case RecordType::kAcquire:
      thread();
      lock(e.lock);
      if (e.mode == AcquireMode::kShared) out->append(" mode=read");
      if (e.mode == AcquireMode::kSharedRecursive) out->append(" mode=recursive-read");
      if (e.trylock) out->append(" try");
      if (e.subclass) {
        out->append(" subclass=");
        AppendDec(e.subclass, out);
      }
      if (e.nest_lock != kNoLock) {
        out->append(" nest=");
        AppendHex(e.nest_lock, out);
      }
      ip();
      stack();
      break;
    case RecordType::kRelease:
      thread();
      lock(e.lock);
      ip();
      break;
    case RecordType::kCancelAcquire:
      thread();
      lock(e.lock);
      break;
    case RecordType::kEnterContext:
    case RecordType::kDisableContext:
    case RecordType::kEnableContext:
      thread();
      ctx(e.context);
      break;
    case RecordType::kExitContext:
      thread();
      ctx(e.context);
      ip();
      break;
    case RecordType::kSetDisabledMask: {
      thread();
      out->push_back(' ');
      bool any = false;
      for (int c = 0; c < kMaxContexts; ++c) {
        if (!e.mask.Test(static_cast<ContextId>(c))) continue;
        if (any) out->push_back(',');
        any = true;
        if (c == kHardirqContext) out->append("hardirq");
        else if (c == kSoftirqContext) out->append("softirq");
        else AppendDec(c, out);
      }
      if (!any) out->append("none");
      break;
    }
    case RecordType::kStackDef:
      out->push_back(' ');
      AppendDec(e.stack, out);
      for (auto f : e.frames) {
        out->push_back(' ');
        AppendQuoted(f, out);
      }
      break;
    case RecordType::kCallSiteDef:
      out->push_back(' ');
      AppendHex(e.ip, out);
      out->push_back(' ');
      AppendQuoted(e.text, out);
      break;
    case RecordType::kLockName:
      lock(e.lock);
      out->push_back(' ');
      AppendQuoted(e.text, out);
      break;
    case RecordType::kRunEnd:
      break;
  }
  if (e.seq && !IsDefinition(e.type)) {
    out->append(" seq=");
    AppendDec(e.seq, out);
  }
  out->push_back('\n');
}

bool TextDecoder::DecodeLine(std::string_view line, std::uint64_t line_number,
                             std::vector<Event>* out, DecodeError* error) {
  *error = {};
  line_strings_.clear();
  const std::size_t out_start = out->size();
  auto fail = [&](std::string message) {
    out->resize(out_start);
    error->line = line_number;
    error->message = std::move(message);
    return false;
  };
  if (line.size() > kMaxTextLine) return fail("line longer than 256 KiB");
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);

  // Tokenise: words separated by blanks, '#' starts a comment outside quotes. The token
  // vectors are reused from line to line (no allocation per line in the steady state).
  thread_local std::vector<Token> tokens;
  tokens.clear();
  std::size_t i = 0;
  while (i < line.size()) {
    char c = line[i];
    if (c == ' ' || c == '\t') {
      ++i;
      continue;
    }
    if (c == '#') break;
    Token t;
    std::size_t start = i;
    // Bare part up to '=', blank or quote.
    while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '"' &&
           line[i] != '=' && line[i] != '#')
      ++i;
    if (i < line.size() && line[i] == '=') {
      t.key = line.substr(start, i - start);
      if (t.key.empty()) return fail("'=' without a key at column " + std::to_string(i + 1));
      ++i;
      start = i;
    }
    if (i < line.size() && line[i] == '"') {
      if (i != start) return fail("quote inside a word at column " + std::to_string(i + 1));
      ++i;
      std::string s;
      bool closed = false;
      while (i < line.size()) {
        char d = line[i++];
        if (d == '"') {
          closed = true;
          break;
        }
        if (d != '\\') {
          s.push_back(d);
          continue;
        }
        if (i >= line.size()) break;
        char x = line[i++];
        switch (x) {
          case 'n': s.push_back('\n'); break;
          case 't': s.push_back('\t'); break;
          case 'r': s.push_back('\r'); break;
          case '"': s.push_back('"'); break;
          case '\\': s.push_back('\\'); break;
          case 'x': {
            std::uint64_t v = 0;
            if (i + 2 > line.size() ||
                std::from_chars(line.data() + i, line.data() + i + 2, v, 16).ptr !=
                    line.data() + i + 2)
              return fail("bad \\x escape at column " + std::to_string(i));
            s.push_back(static_cast<char>(v));
            i += 2;
            break;
          }
          default:
            return fail(std::string("unknown escape \\") + x + " at column " + std::to_string(i));
        }
      }
      if (!closed) return fail("unterminated quoted string");
      if (s.size() > kMaxStringBytes) return fail("string longer than 64 KiB");
      line_strings_.push_back(std::move(s));
      t.value = line_strings_.back();
      t.quoted = true;
      if (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '#')
        return fail("text right after a closing quote at column " + std::to_string(i + 1));
    } else {
      while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '#') {
        if (line[i] == '"') return fail("quote inside a word at column " + std::to_string(i + 1));
        ++i;
      }
      t.value = line.substr(start, i - start);
    }
    tokens.push_back(t);
  }
  if (tokens.empty()) return true;
  if (!tokens[0].key.empty() || tokens[0].quoted) return fail("line does not start with a verb");
  const std::string_view verb = tokens[0].value;

  thread_local std::vector<std::string_view> pos;   // positional words after the verb
  thread_local std::vector<Token> kv;               // key=value options
  pos.clear();
  kv.clear();
  for (std::size_t k = 1; k < tokens.size(); ++k) {
    if (tokens[k].key.empty()) pos.push_back(tokens[k].value);
    else kv.push_back(tokens[k]);
  }
  thread_local std::vector<bool> used;
  used.assign(kv.size(), false);
  auto opt = [&](std::string_view key) -> const Token* {
    for (std::size_t k = 0; k < kv.size(); ++k)
      if (kv[k].key == key) {
        used[k] = true;
        return &kv[k];
      }
    return nullptr;
  };
  std::string err;
  auto number = [&](std::string_view what, std::string_view s, std::uint64_t* v) {
    if (ParseNumber(s, v)) return true;
    if (err.empty()) err = "bad " + std::string(what) + " '" + std::string(s) + "'";
    return false;
  };
  auto intern = [&](std::string_view s) -> std::string_view {
    return *names_.emplace(s).first;
  };
  // Names a bad line introduced are forgotten again, so the next good line sees the same state.
  std::vector<std::function<void()>> undo;
  const auto counters = std::make_tuple(next_thread_, next_lock_, next_class_, next_stack_, next_ip_);
  auto fail_line = [&](std::string message) {
    for (auto it = undo.rbegin(); it != undo.rend(); ++it) (*it)();
    std::tie(next_thread_, next_lock_, next_class_, next_stack_, next_ip_) = counters;
    return fail(std::move(message));
  };

  if (verb == kTextMagic) {
    if (pos.size() != 1) return fail("expected 'lockgraph-text 1'");
    std::uint64_t v = 0;
    if (!ParseNumber(pos[0], &v)) return fail("bad text log version '" + std::string(pos[0]) + "'");
    if (v != static_cast<std::uint64_t>(kTextVersion))
      return fail("unsupported text log version " + std::string(pos[0]) +
                  " (this lockgraph reads version 1)");
    saw_magic_ = true;
    return true;
  }
  if (!saw_magic_) return fail("not a lockgraph text log (first line must be 'lockgraph-text 1')");

  if (verb == "run") {
    FileHeader h = header_;
    if (auto* t = opt("program")) h.program = std::string(t->value);
    if (auto* t = opt("pid")) number("pid", t->value, &h.pid);
    if (auto* t = opt("start")) number("start time", t->value, &h.start_unix_ns);
    if (auto* t = opt("cmdline")) h.command_line = std::string(t->value);
    if (auto* t = opt("host")) h.hostname = std::string(t->value);
    for (std::size_t k = 0; k < kv.size(); ++k)
      if (!used[k]) return fail("unknown run field '" + std::string(kv[k].key) + "'");
    if (!err.empty()) return fail(err);
    if (!pos.empty()) return fail("run takes only key=value fields");
    header_ = std::move(h);
    return true;
  }

  // Resolvers for names; each may append implicit definitions to *out.
  Event ev;
  auto empty = [&](std::string_view tok, const char* what) {
    if (!tok.empty()) return false;
    if (err.empty()) err = std::string("empty ") + what + " name";
    return true;
  };
  auto thread_of = [&](std::string_view tok, ThreadKey* key) {
    std::uint64_t v = 0;
    if (empty(tok, "thread")) return false;
    if (LooksNumeric(tok)) return number("thread", tok, key);
    auto it = threads_.find(tok);
    if (it != threads_.end()) {
      *key = it->second;
      return true;
    }
    v = next_thread_++;
    threads_.emplace(std::string(tok), v);
    undo.push_back([this, k = std::string(tok)] { threads_.erase(k); });
    *key = v;
    if (verb != "thread") {  // first use of a named thread starts it, named after its token
      Event s;
      s.type = RecordType::kThreadStart;
      s.thread = v;
      s.text = intern(tok);
      out->push_back(s);
    }
    return true;
  };
  auto class_of = [&](std::string_view tok, LogClassId* id, bool define) {
    std::uint64_t v = 0;
    if (empty(tok, "class")) return false;
    if (LooksNumeric(tok)) {
      if (!number("class", tok, &v)) return false;
      if (v > 0xffffffffu) {
        err = "class id out of range";
        return false;
      }
      *id = static_cast<LogClassId>(v);
      return true;
    }
    auto it = classes_.find(tok);
    if (it != classes_.end()) {
      *id = it->second;
      return true;
    }
    *id = static_cast<LogClassId>(next_class_++);
    classes_.emplace(std::string(tok), *id);
    undo.push_back([this, k = std::string(tok)] { classes_.erase(k); });
    if (define) {  // a class named in passing: its identity and name are the token
      Event c;
      c.type = RecordType::kClassDef;
      c.class_id = *id;
      c.text = c.text2 = intern(tok);
      out->push_back(c);
    }
    return true;
  };
  // A named lock seen for the first time (outside `init`) is initialised into the class of the
  // same name by the thread that first uses it.
  auto lock_of = [&](std::string_view tok, ThreadKey thread, bool implicit_init, LockId* id) {
    if (empty(tok, "lock")) return false;
    if (LooksNumeric(tok)) return number("lock", tok, id);
    auto it = locks_.find(tok);
    if (it != locks_.end()) {
      *id = it->second;
      return true;
    }
    *id = next_lock_++;
    locks_.emplace(std::string(tok), *id);
    undo.push_back([this, k = std::string(tok)] { locks_.erase(k); });
    if (implicit_init) {
      LogClassId cls = 0;
      if (!class_of(tok, &cls, true)) return false;
      Event in;
      in.type = RecordType::kLockInit;
      in.thread = thread;
      in.lock = *id;
      in.class_id = cls;
      out->push_back(in);
    }
    return true;
  };
  auto context_of = [&](std::string_view tok, ContextId* c) {
    auto is = [&](std::string_view word) {
      if (tok.size() != word.size()) return false;
      for (std::size_t k = 0; k < word.size(); ++k)
        if (std::tolower(static_cast<unsigned char>(tok[k])) != word[k]) return false;
      return true;
    };
    if (is("hardirq")) {
      *c = kHardirqContext;
      return true;
    }
    if (is("softirq")) {
      *c = kSoftirqContext;
      return true;
    }
    std::uint64_t v = 0;
    if (LooksNumeric(tok)) {
      if (!number("context", tok, &v)) return false;
      if (v >= static_cast<std::uint64_t>(kMaxContexts)) {
        err = "context " + std::string(tok) + " out of range (0-127)";
        return false;
      }
      *c = static_cast<ContextId>(v);
      return true;
    }
    int signo = SignalNumber(tok);
    if (signo <= 0 || signo > kMaxContexts - kFirstNumberedContext) {
      if (err.empty()) err = "unknown context '" + std::string(tok) + "'";
      return false;
    }
    *c = SignalContext(signo);
    if (!named_contexts_[*c]) {
      named_contexts_[*c] = true;
      undo.push_back([this, k = *c] { named_contexts_[k] = false; });
      Event n;
      n.type = RecordType::kContextName;
      n.context = *c;
      n.text = intern(tok);
      out->push_back(n);
    }
    return true;
  };
  auto site_of = [&](std::string_view text) {
    auto it = sites_.find(text);
    if (it != sites_.end()) return it->second;
    std::uint64_t ip = next_ip_;
    next_ip_ += 0x10;
    sites_.emplace(std::string(text), ip);
    undo.push_back([this, k = std::string(text)] { sites_.erase(k); });
    Event s;
    s.type = RecordType::kCallSiteDef;
    s.ip = ip;
    s.text = intern(text);
    out->push_back(s);
    return ip;
  };
  auto stack_of = [&](std::string_view tok, StackId* s) {
    if (empty(tok, "stack")) return false;
    if (LooksNumeric(tok)) return number("stack", tok, s);
    auto it = stacks_.find(tok);
    if (it != stacks_.end()) {
      *s = it->second;
      return true;
    }
    *s = next_stack_++;
    stacks_.emplace(std::string(tok), *s);
    undo.push_back([this, k = std::string(tok)] { stacks_.erase(k); });
    return true;
  };
  // Common options: ip=/at=, stack=, seq=.
  auto common = [&](Event* e, bool want_ip, bool want_stack) {
    if (want_ip) {
      if (auto* t = opt("ip")) number("ip", t->value, &e->ip);
      if (auto* t = opt("at")) {
        if (e->ip) err = "give ip= or at=, not both";
        else e->ip = site_of(t->value);
      }
    }
    if (want_stack)
      if (auto* t = opt("stack")) stack_of(t->value, &e->stack);
    if (auto* t = opt("seq")) number("seq", t->value, &e->seq);
  };
  auto need = [&](std::size_t n, std::string_view usage) {
    if (pos.size() == n) return true;
    if (err.empty()) err = "expected '" + std::string(usage) + "'";
    return false;
  };

  ev.type = RecordType::kRunEnd;
  std::string_view v = verb;
  if (v == "thread") {
    if (need(1, "thread THREAD [name=NAME]") && thread_of(pos[0], &ev.thread)) {
      ev.type = RecordType::kThreadStart;
      if (auto* t = opt("name")) ev.text = t->value;
      else if (!LooksNumeric(pos[0])) ev.text = intern(pos[0]);
      common(&ev, false, false);
    }
  } else if (v == "rename") {
    if (need(2, "rename THREAD NAME") && thread_of(pos[0], &ev.thread)) {
      ev.type = RecordType::kThreadName;
      ev.text = pos[1];
      common(&ev, false, false);
    }
  } else if (v == "exit") {
    if (need(1, "exit THREAD") && thread_of(pos[0], &ev.thread)) {
      ev.type = RecordType::kThreadExit;
      common(&ev, true, false);
    }
  } else if (v == "class") {
    if (need(1, "class CLASS [identity=ID] [name=NAME] [subclass=N]") &&
        class_of(pos[0], &ev.class_id, false)) {
      ev.type = RecordType::kClassDef;
      ev.text = LooksNumeric(pos[0]) ? std::string_view{} : intern(pos[0]);
      ev.text2 = ev.text;
      if (auto* t = opt("identity")) ev.text = t->value;
      if (auto* t = opt("name")) ev.text2 = t->value;
      if (ev.text.empty()) err = "class " + std::string(pos[0]) + " needs identity=";
      if (ev.text2.empty()) ev.text2 = ev.text;
      if (auto* t = opt("subclass")) {
        std::uint64_t s = 0;
        if (number("subclass", t->value, &s) && s >= kMaxSubclasses) err = "subclass out of range (0-7)";
        ev.subclass = static_cast<std::uint8_t>(s);
      }
    }
  } else if (v == "context") {
    if (need(2, "context CONTEXT NAME") && context_of(pos[0], &ev.context)) {
      ev.type = RecordType::kContextName;
      ev.text = pos[1];
      named_contexts_[ev.context] = true;
    }
  } else if (v == "stack") {
    if (pos.empty()) {
      err = "expected 'stack STACK FRAME...'";
    } else if (pos.size() - 1 > kMaxFrames) {
      err = "stack with more than 1024 frames";
    } else if (stack_of(pos[0], &ev.stack)) {
      ev.type = RecordType::kStackDef;
      ev.frames.assign(pos.begin() + 1, pos.end());
    }
  } else if (v == "site") {
    if (need(2, "site IP TEXT")) {
      ev.type = RecordType::kCallSiteDef;
      if (LooksNumeric(pos[0])) {
        number("ip", pos[0], &ev.ip);
      } else {
        err = "site needs a numeric ip (use at=\"...\" on events for named call sites)";
      }
      ev.text = pos[1];
    }
  } else if (v == "lockname") {
    if (need(2, "lockname LOCK NAME")) {
      if (LooksNumeric(pos[0]) || locks_.find(pos[0]) != locks_.end()) {
        if (lock_of(pos[0], 0, false, &ev.lock)) {
          ev.type = RecordType::kLockName;
          ev.text = pos[1];
        }
      } else {
        err = "lockname of lock '" + std::string(pos[0]) + "' before any use of it";
      }
    }
  } else if (v == "init") {
    if (need(2, "init THREAD LOCK [class=CLASS]") && thread_of(pos[0], &ev.thread) &&
        lock_of(pos[1], ev.thread, false, &ev.lock)) {
      ev.type = RecordType::kLockInit;
      if (auto* t = opt("class")) class_of(t->value, &ev.class_id, true);
      else if (!LooksNumeric(pos[1])) class_of(pos[1], &ev.class_id, true);
      else err = "init of a numbered lock needs class=";
      common(&ev, true, true);
    }
  } else if (v == "destroy") {
    if (need(2, "destroy THREAD LOCK") && thread_of(pos[0], &ev.thread) &&
        lock_of(pos[1], ev.thread, true, &ev.lock)) {
      ev.type = RecordType::kLockDestroy;
      common(&ev, true, true);
    }
  } else if (v == "setclass") {
    if (need(2, "setclass LOCK CLASS")) {
      // No thread: the lock must be known or numbered.
      if (LooksNumeric(pos[0]) || locks_.find(pos[0]) != locks_.end()) {
        lock_of(pos[0], 0, false, &ev.lock);
        if (class_of(pos[1], &ev.class_id, true)) ev.type = RecordType::kLockSetClass;
        common(&ev, false, false);
      } else {
        err = "setclass of lock '" + std::string(pos[0]) + "' before any use of it";
      }
    }
  } else if (v == "acquire" || v == "lock" || v == "trylock" || v == "read" || v == "rread") {
    bool bare_try = false;
    if (pos.size() > 2) {
      auto it = std::find(pos.begin() + 2, pos.end(), std::string_view("try"));
      if (it != pos.end()) {
        pos.erase(it);
        bare_try = true;
      }
    }
    if (need(2, std::string(v) + " THREAD LOCK [mode=write|read|recursive-read] [try] "
                                 "[subclass=N] [nest=LOCK] [at=SITE|ip=IP] [stack=S]") &&
        thread_of(pos[0], &ev.thread) && lock_of(pos[1], ev.thread, true, &ev.lock)) {
      ev.type = RecordType::kAcquire;
      if (v == "trylock" || bare_try) ev.trylock = true;
      if (v == "read") ev.mode = AcquireMode::kShared;
      if (v == "rread") ev.mode = AcquireMode::kSharedRecursive;
      if (auto* t = opt("mode")) {
        std::string_view m = t->value;
        if (m == "write" || m == "exclusive") ev.mode = AcquireMode::kExclusive;
        else if (m == "read" || m == "shared") ev.mode = AcquireMode::kShared;
        else if (m == "recursive-read" || m == "read-recursive" || m == "shared-recursive")
          ev.mode = AcquireMode::kSharedRecursive;
        else err = "unknown mode '" + std::string(m) + "' (write, read, recursive-read)";
      }
      if (auto* t = opt("try")) {
        if (t->value == "1" || t->value == "yes" || t->value == "true") ev.trylock = true;
        else if (t->value == "0" || t->value == "no" || t->value == "false") ev.trylock = false;
        else err = "bad try value '" + std::string(t->value) + "'";
      }
      if (auto* t = opt("subclass")) {
        std::uint64_t s = 0;
        if (number("subclass", t->value, &s) && s >= kMaxSubclasses) err = "subclass out of range (0-7)";
        ev.subclass = static_cast<std::uint8_t>(s);
      }
      if (auto* t = opt("nest")) lock_of(t->value, ev.thread, true, &ev.nest_lock);
      common(&ev, true, true);
    }
  } else if (v == "release" || v == "unlock") {
    if (need(2, "release THREAD LOCK [at=SITE|ip=IP]") && thread_of(pos[0], &ev.thread) &&
        lock_of(pos[1], ev.thread, true, &ev.lock)) {
      ev.type = RecordType::kRelease;
      common(&ev, true, false);
    }
  } else if (v == "cancel") {
    if (need(2, "cancel THREAD LOCK") && thread_of(pos[0], &ev.thread) &&
        lock_of(pos[1], ev.thread, true, &ev.lock)) {
      ev.type = RecordType::kCancelAcquire;
      common(&ev, false, false);
    }
  } else if (v == "enter" || v == "leave" || v == "disable" || v == "enable") {
    if (need(2, std::string(v) + " THREAD CONTEXT") && thread_of(pos[0], &ev.thread) &&
        context_of(pos[1], &ev.context)) {
      ev.type = v == "enter"     ? RecordType::kEnterContext
                : v == "leave"   ? RecordType::kExitContext
                : v == "disable" ? RecordType::kDisableContext
                                 : RecordType::kEnableContext;
      common(&ev, v == "leave", false);
    }
  } else if (v == "mask") {
    if (need(2, "mask THREAD CONTEXT[,CONTEXT...]|none") && thread_of(pos[0], &ev.thread)) {
      ev.type = RecordType::kSetDisabledMask;
      if (pos[1] != "none") {
        std::string_view list = pos[1];
        while (!list.empty() && err.empty()) {
          std::size_t comma = list.find(',');
          ContextId c = 0;
          if (context_of(list.substr(0, comma), &c)) ev.mask.Set(c);
          list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
        }
      }
      common(&ev, false, false);
    }
  } else if (v == "end") {
    ev.type = RecordType::kRunEnd;
    common(&ev, false, false);
  } else {
    return fail_line("unknown verb '" + std::string(verb) + "'");
  }
  if (err.empty())
    for (std::size_t k = 0; k < kv.size(); ++k)
      if (!used[k]) {
        err = "unknown option '" + std::string(kv[k].key) + "' for " + std::string(verb);
        break;
      }
  if (!err.empty()) return fail_line(err);
  out->push_back(std::move(ev));
  return true;
}

}  // namespace lockgraph::logfmt
