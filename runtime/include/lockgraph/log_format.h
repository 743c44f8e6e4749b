// The lock-log codec: lockgraph's binary and text event formats, pure encode/decode, no I/O.
//
// The runtime's recorder encodes engine events into blocks (BlockEncoder, one per thread buffer
// or one global buffer) and writes them after a file header; the analyzer decodes files it has
// mapped into memory (BinaryScanner + BlockDecoder, or TextDecoder) and replays the events into
// an Engine. docs/log-format.md is the normative description of both formats; this header is
// its C++ face.
//
// Contract
// - Nothing here does I/O, takes a lock, or logs. Encoders write into caller-owned memory;
//   BlockEncoder never allocates. Decoders never allocate from a length read from the input
//   (every count and length is checked against the bytes that are actually there and against a
//   named limit), so corrupt input costs bounded time and memory and never crashes.
// - Errors carry the absolute byte offset (binary) or line number (text) of the problem.
// - Thread safety: none inside one object; distinct objects are independent.
#ifndef LOCKGRAPH_LOG_FORMAT_H_
#define LOCKGRAPH_LOG_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "lockgraph/types.h"

namespace lockgraph::logfmt {

// --- Limits and framing constants (see docs/log-format.md) -----------------------------------

// The binary version this lockgraph writes, and the oldest it reads. Version 1 checks its header
// and blocks with zlib's CRC-32, versions 2 and 3 with CRC-32C (Castagnoli); version 3 adds the
// one-byte compact lock records (kCompactRecordBit), the records of 1 and 2 are unchanged.
inline constexpr std::uint16_t kBinaryVersion = 3;
inline constexpr std::uint16_t kOldestBinaryVersion = 1;
inline constexpr int kTextVersion = 1;
// "\x89LGLOG\r\n": the high byte and CR/LF catch 7-bit and newline-mangling transfers.
inline constexpr std::uint8_t kFileMagic[8] = {0x89, 'L', 'G', 'L', 'O', 'G', '\r', '\n'};
inline constexpr std::uint8_t kBlockMagic[4] = {'L', 'G', 'B', 'K'};
inline constexpr std::string_view kTextMagic = "lockgraph-text";

inline constexpr std::size_t kFileHeaderFixedSize = 16;   // magic, version, flags, length
inline constexpr std::size_t kMaxFileHeaderPayload = 64 * 1024;
inline constexpr std::size_t kBlockHeaderSize = 16;       // magic, length, number, crc
inline constexpr std::size_t kMaxBlockPayload = 4u << 20; // 4 MiB
inline constexpr std::size_t kMaxStringBytes = 64 * 1024; // one name, identity or frame
inline constexpr std::size_t kMaxFrames = 1024;           // frames of one stack definition
inline constexpr std::size_t kMaxTextLine = 256 * 1024;   // one text line
// The largest single record (a stack definition is the only unbounded-looking one; a writer
// must split nothing: records larger than a block cannot be written and are refused).
inline constexpr std::size_t kMinBlockCapacity = 4096;

// --- Records ---------------------------------------------------------------------------------

// Record tags; the values are the binary tags and never change meaning.
enum class RecordType : std::uint8_t {
  kThreadSwitch = 0x01,    // binary framing only: following records belong to `thread`
  kThreadStart = 0x02,     // thread, text = thread name
  kThreadName = 0x03,      // thread, text = new name
  kThreadExit = 0x04,      // thread, ip
  kClassDef = 0x05,        // class_id, subclass, text = stable identity, text2 = display name
  kContextName = 0x06,     // context, text = name ("SIGUSR1")
  kLockInit = 0x07,        // thread, lock, class_id, ip, stack
  kLockDestroy = 0x08,     // thread, lock, ip, stack
  kLockSetClass = 0x09,    // lock, class_id
  kAcquire = 0x0a,         // thread, lock, mode, trylock, subclass, nest_lock, ip, stack
  kRelease = 0x0b,         // thread, lock, ip
  kCancelAcquire = 0x0c,   // thread, lock
  kEnterContext = 0x0d,    // thread, context
  kExitContext = 0x0e,     // thread, context, ip
  kDisableContext = 0x0f,  // thread, context
  kEnableContext = 0x10,   // thread, context
  kSetDisabledMask = 0x11, // thread, mask
  kStackDef = 0x12,        // stack, frames ("function (file:line)" each, innermost first)
  kCallSiteDef = 0x13,     // ip, text = "function (file:line)"
  kRunEnd = 0x14,          // the process ended normally; no fields
  kLockName = 0x15,        // lock, text = the instance's name in reports ("forks[4]")
};
inline constexpr std::uint8_t kMaxRecordType = 0x15;

// Compact lock records (version 3): one byte, 1 s r r r r r r. The block keeps two tables of
// kCompactSlots entries, both empty at its start: every full acquire record without subclass,
// nest lock and stack sets acquire entry CompactSlot(ip) to its lock, ip, mode and trylock bit,
// and every full release record sets release entry CompactSlot(ip) to its lock and ip. A compact
// record (s = 0: acquire, 1: release) repeats the event entry r r r r r r holds, its stamp the
// block's previous stamp plus one; it changes neither the tables nor the lock and ip deltas.
inline constexpr std::uint8_t kCompactRecordBit = 0x80;
inline constexpr std::uint8_t kCompactReleaseBit = 0x40;
inline constexpr unsigned kCompactSlots = 64;
// The table entry of call site `ip` (Fibonacci hashing: neighbouring call sites spread out).
inline unsigned CompactSlot(std::uint64_t ip) {
  return static_cast<unsigned>((ip * 0x9e3779b97f4a7c15ull) >> 58);
}

std::string_view RecordTypeName(RecordType type);

// True for records that act on the current thread (the binary format carries the thread in
// kThreadSwitch records, the text format on every line).
bool IsThreadBound(RecordType type);
// True for definitions (class, context name, stack, call site, lock name): tables rather than
// events.
// They carry no sequence number and take effect wherever they appear in a file.
bool IsDefinition(RecordType type);

// Per-run class id as the recorder numbered them (the analyzer maps them to engine ClassIds).
using LogClassId = std::uint32_t;

// One record, decoded or to be encoded. Strings are views: into the decoded block or line (valid
// until the decoder's next call), or into the caller's memory when encoding.
struct Event {
  RecordType type = RecordType::kRunEnd;
  std::uint64_t seq = 0;         // ordering key across threads (0 when the block has none)
  ThreadKey thread = 0;
  LockId lock = kNoLock;
  LockId nest_lock = kNoLock;
  std::uint64_t ip = 0;
  StackId stack = kNoStack;
  LogClassId class_id = 0;
  AcquireMode mode = AcquireMode::kExclusive;
  bool trylock = false;
  std::uint8_t subclass = 0;
  ContextId context = 0;
  ContextMask mask;
  std::string_view text;         // thread name, identity, context name, call-site text
  std::string_view text2;        // class display name
  std::vector<std::string_view> frames;  // kStackDef only
};

// Field-by-field equality (strings by content); for tests and round-trip checks.
bool SameEvent(const Event& a, const Event& b);

// Stable 64-bit key of a class identity string (FNV-1a 64): identical in every process and
// every build, so classes merge across runs by identity, never by address.
std::uint64_t StableClassKey(std::string_view identity);

// --- Checksums -------------------------------------------------------------------------------

// CRC-32C (Castagnoli: reflected polynomial 0x82f63b78, initial and final value all ones), the
// checksum of binary format version 2. Chains like zlib's crc32: start from 0 and pass the
// previous result to continue over more bytes. Uses the SSE4.2 crc32 instruction when the CPU
// has it, else Crc32cPortable; both give the same value.
std::uint32_t Crc32c(std::uint32_t crc, const std::uint8_t* data, std::size_t n);
// The table-driven CRC-32C, for CPUs without SSE4.2 (and tests).
std::uint32_t Crc32cPortable(std::uint32_t crc, const std::uint8_t* data, std::size_t n);
// The checksum of binary format `version` (1: zlib's CRC-32, 2: CRC-32C), chained the same way.
std::uint32_t LogChecksum(std::uint16_t version, std::uint32_t crc, const std::uint8_t* data,
                          std::size_t n);

// --- Errors ----------------------------------------------------------------------------------

struct DecodeError {
  std::uint64_t offset = 0;  // absolute byte offset in the file (binary) or 0 (text)
  std::uint64_t line = 0;    // 1-based line number (text) or 0 (binary)
  std::string message;       // lower case, no file name, no trailing period
};

enum class Format { kUnknown, kBinary, kText };
// Looks at the first bytes of a file (give at least 64 if there are that many).
Format DetectFormat(std::span<const std::uint8_t> head);

// --- Binary: file header ---------------------------------------------------------------------

struct FileHeader {
  std::uint16_t version = kBinaryVersion;
  std::string program;              // argv[0] or /proc/self/exe
  std::uint64_t pid = 0;
  std::uint64_t start_unix_ns = 0;  // wall-clock start of recording
  std::string command_line;         // optional, space-separated
  std::string hostname;             // optional
};

// Appends the encoded file header to `out`.
void EncodeFileHeader(const FileHeader& header, std::string* out);

// --- Binary: blocks --------------------------------------------------------------------------

// Encodes records into one block in a caller-owned buffer. No allocation, no I/O: the runtime
// keeps one per thread buffer (or one global buffer) and writes Finish()'s bytes out.
//
//   BlockEncoder enc(buf, sizeof buf, /*with_seq=*/true);
//   if (!enc.Put(ev)) { write(enc.Finish(n++)); enc.Reset(); enc.Put(ev); }
//
// Put() returns false and writes nothing when the record does not fit; Finish() then seals the
// block (length, block number, checksum). A record bigger than an empty block is refused by Put()
// on an empty encoder too (check empty()): drop it or truncate its strings.
class BlockEncoder {
 public:
  // `capacity` includes the 16-byte block header; at least kMinBlockCapacity, at most
  // kBlockHeaderSize + kMaxBlockPayload. `with_seq`: every event carries Event::seq.
  BlockEncoder(std::uint8_t* buffer, std::size_t capacity, bool with_seq);

  // Starts a new, empty block in the same buffer.
  void Reset();
  bool empty() const { return records_ == 0; }
  std::size_t records() const { return records_; }
  // Bytes of the block so far, header included.
  std::size_t size() const { return pos_; }

  bool Put(const Event& event);
  // The same bytes Put() writes for a release / an acquire record of `thread`, without building
  // an Event (the recorder's steady state). False when fewer than ~75 bytes of room are left.
  bool PutRelease(ThreadKey thread, std::uint64_t seq, LockId lock, std::uint64_t ip);
  bool PutAcquire(ThreadKey thread, std::uint64_t seq, LockId lock, AcquireMode mode,
                  bool trylock, std::uint8_t subclass, LockId nest_lock, std::uint64_t ip,
                  StackId stack);

  // The recorder's inline steady state (the shim's fast path), in the header so that it inlines:
  // true when the block's current thread is already `thread` (no thread switch to write) and the
  // largest acquire or release record fits. Then PutPlainAcquire (no subclass, nest lock or
  // stack) and PutPlainRelease write exactly the bytes PutAcquire / PutRelease would: one
  // compact byte when the block's table entry of `ip` holds this very event and the stamp is the
  // previous one plus one (the steady state of a loop), else the full record.
  bool ReadyForLockRecord(ThreadKey thread) const {
    return thread_ == thread && pos_ <= ready_end_;
  }
  void PutPlainAcquire(std::uint64_t seq, LockId lock, AcquireMode mode, bool trylock,
                       std::uint64_t ip) {
    const auto flags =
        static_cast<std::uint8_t>((static_cast<std::uint8_t>(mode) & 3) | (trylock ? 4 : 0));
    const unsigned slot = CompactSlot(ip);
    CompactEntry& entry = acquire_slots_[slot];
    if (entry.ip == ip && entry.lock == lock && entry.flags == flags && NextStamp(seq)) {
      PutCompact(static_cast<std::uint8_t>(kCompactRecordBit | slot), seq);
      return;
    }
    std::uint8_t* p = BeginLockRecord(RecordType::kAcquire, seq);
    *p++ = flags;
    EndLockRecord(p, lock, ip);
    entry = {ip, lock, flags};
  }
  void PutPlainRelease(std::uint64_t seq, LockId lock, std::uint64_t ip) {
    const unsigned slot = CompactSlot(ip);
    CompactEntry& entry = release_slots_[slot];
    if (entry.ip == ip && entry.lock == lock && entry.flags == 0 && NextStamp(seq)) {
      PutCompact(static_cast<std::uint8_t>(kCompactRecordBit | kCompactReleaseBit | slot), seq);
      return;
    }
    EndLockRecord(BeginLockRecord(RecordType::kRelease, seq), lock, ip);
    entry = {ip, lock, 0};
  }

  // Seals and returns the whole block (header + payload, checksummed as kBinaryVersion says),
  // valid until Reset().
  std::span<const std::uint8_t> Finish(std::uint32_t block_number);

  // The largest acquire or release record with its thread switch (tag, varint thread, tag,
  // varint seq, flags, varint lock, subclass, varint nest, varint ip, varint stack).
  static constexpr std::size_t kMaxLockRecordBytes = 1 + 10 + 1 + 10 + 1 + 10 + 1 + 10 + 10 + 10;

 private:
  // A thread-switch record when the block's current thread is not `thread` (room checked).
  void PutThreadSwitch(ThreadKey thread) {
    if (have_thread_ && thread_ == thread) return;
    std::uint8_t* p = buf_ + pos_;
    *p++ = static_cast<std::uint8_t>(RecordType::kThreadSwitch);
    p = PutVarint(p, thread);
    pos_ = static_cast<std::size_t>(p - buf_);
    SetThread(thread);
  }
  // The block's current thread is now `thread`: inline lock records may follow while there is
  // room for the largest one (ReadyForLockRecord's one compare).
  void SetThread(ThreadKey thread) {
    thread_ = thread;
    have_thread_ = true;
    ready_end_ = cap_ >= kMaxLockRecordBytes ? cap_ - kMaxLockRecordBytes : 0;
  }
  // A compact record may stand for an event stamped `seq`: the stamp only counts (or the block
  // has none).
  bool NextStamp(std::uint64_t seq) const { return seq == prev_seq_ + 1 || !with_seq_; }
  void PutCompact(std::uint8_t tag, std::uint64_t seq) {
    const std::size_t pos = pos_;
    ++records_;
    prev_seq_ = seq;
    pos_ = pos + 1;
    buf_[pos] = tag;
  }
  // The type byte and the stamp delta of an inline lock record; returns where its body goes.
  std::uint8_t* BeginLockRecord(RecordType type, std::uint64_t seq) {
    std::uint8_t* p = buf_ + pos_;
    *p++ = static_cast<std::uint8_t>(type);
    if (with_seq_) {
      p = PutVarint(p, ZigZagDelta(seq, prev_seq_));
      prev_seq_ = seq;
    }
    return p;
  }
  // The lock and call-site deltas that end an inline lock record, and the record's accounting.
  void EndLockRecord(std::uint8_t* p, LockId lock, std::uint64_t ip) {
    p = PutVarint(p, ZigZagDelta(lock, prev_lock_));
    prev_lock_ = lock;
    p = PutVarint(p, ZigZagDelta(ip, prev_ip_));
    prev_ip_ = ip;
    pos_ = static_cast<std::size_t>(p - buf_);
    ++records_;
  }

  static std::uint64_t ZigZagDelta(std::uint64_t now, std::uint64_t prev) {
    const auto d = static_cast<std::int64_t>(now - prev);
    return (static_cast<std::uint64_t>(d) << 1) ^ static_cast<std::uint64_t>(d >> 63);
  }
  static std::uint8_t* PutVarint(std::uint8_t* p, std::uint64_t v) {
    while (v >= 0x80) {
      *p++ = static_cast<std::uint8_t>(v | 0x80);
      v >>= 7;
    }
    *p++ = static_cast<std::uint8_t>(v);
    return p;
  }
  bool PutRecord(const Event& event);
  std::uint8_t* buf_;
  std::size_t cap_;
  bool with_seq_;
  std::size_t pos_ = 0;
  std::size_t records_ = 0;
  // Per-block delta state (reset with each block so blocks decode independently).
  ThreadKey thread_ = 0;
  bool have_thread_ = false;
  // The last position with room for the largest lock record while the block has a thread, else
  // 0 (every position is past it: the header comes first).
  std::size_t ready_end_ = 0;
  std::uint64_t prev_seq_ = 0;
  LockId prev_lock_ = 0;
  std::uint64_t prev_ip_ = 0;
  // The compact records' tables (see kCompactRecordBit). An empty entry has flags 0xff, which no
  // record has.
  struct CompactEntry {
    std::uint64_t ip;
    LockId lock;
    std::uint8_t flags;  // acquire: mode | trylock << 2; release: 0
  };
  CompactEntry acquire_slots_[kCompactSlots];
  CompactEntry release_slots_[kCompactSlots];
};

// Seals a block laid out as a BlockEncoder lays it out (16 header bytes, then the payload, `size`
// bytes in all, size > kBlockHeaderSize): writes the magic, length, number and CRC into the
// header. For a copy of an encoder's complete records (a recorder flushing another thread's
// buffer at exit).
std::span<const std::uint8_t> SealBlock(std::uint8_t* block, std::size_t size,
                                        std::uint32_t block_number);

// A framed block found in a file.
struct BlockView {
  std::uint64_t offset = 0;          // absolute offset of the block header
  std::uint32_t number = 0;          // block sequence number written by the recorder
  std::span<const std::uint8_t> payload;
  std::uint16_t version = kBinaryVersion;  // the file's format version (which records exist)
};

// Walks a whole binary log held in memory (mapped or read): the header, then every block,
// resynchronising on the next valid block magic after a corrupt one and stopping cleanly at a
// truncated tail.
class BinaryScanner {
 public:
  explicit BinaryScanner(std::span<const std::uint8_t> file) : file_(file) {}

  enum class HeaderResult {
    kOk,
    kCorrupt,  // header damaged (error says where); blocks are still scanned, run unnamed
    kFatal,    // not a lockgraph log, or an unsupported version: nothing can be read
  };
  // Decodes the file header; call once, before NextBlock().
  HeaderResult ReadHeader(FileHeader* header, DecodeError* error);

  enum class Next {
    kBlock,  // *block is valid
    kError,  // *error describes skipped bytes (corrupt block, garbage); call Next() again
    kEnd,    // no more blocks (after a truncated tail, *error is set first as kError)
  };
  Next NextBlock(BlockView* block, DecodeError* error);

  std::uint64_t offset() const { return pos_; }
  // The file's format version (after ReadHeader; it says which checksum the blocks carry).
  std::uint16_t version() const { return version_; }
  std::uint64_t blocks() const { return blocks_; }
  std::uint64_t skipped_bytes() const { return skipped_; }

 private:
  // True when a complete, CRC-valid block starts at `at`.
  bool ValidBlockAt(std::size_t at, BlockView* block) const;
  std::span<const std::uint8_t> file_;
  std::size_t pos_ = 0;
  std::uint64_t blocks_ = 0;
  std::uint64_t skipped_ = 0;
  std::uint16_t version_ = kBinaryVersion;
  bool header_done_ = false;
  bool at_end_ = false;
};

// Decodes the records of one block payload, in order. ThreadSwitch records are consumed
// internally (every returned thread-bound event has `thread` set).
class BlockDecoder {
 public:
  explicit BlockDecoder(const BlockView& block);
  // Returns true and fills *event; false at the end of the block or on an error (then
  // error->message is non-empty and the rest of the block is skipped).
  bool Next(Event* event, DecodeError* error);
  bool has_seq() const { return with_seq_; }

 private:
  bool Fail(DecodeError* error, std::string message);
  // A compact record (version 3), `tag` read at `start`.
  bool NextCompact(std::uint8_t tag, std::size_t start, Event* event, DecodeError* error);
  std::span<const std::uint8_t> p_;
  std::uint64_t base_offset_;
  std::size_t pos_ = 0;
  bool compact_ok_ = false;  // the file's version has compact records
  bool with_seq_ = false;
  bool ok_ = true;
  ThreadKey thread_ = 0;
  bool have_thread_ = false;
  std::uint64_t prev_seq_ = 0;
  LockId prev_lock_ = 0;
  std::uint64_t prev_ip_ = 0;
  // The compact records' tables: entries 0-63 acquire, 64-127 release; a set bit in `slot_set_`
  // for each entry a record of this block has defined.
  struct CompactEntry {
    LockId lock;
    std::uint64_t ip;
    AcquireMode mode;
    bool trylock;
  };
  CompactEntry slots_[2 * kCompactSlots];
  std::uint64_t slot_set_[2] = {0, 0};
};

// --- Text ------------------------------------------------------------------------------------

// Parses the line-oriented text format, one line at a time. Names in the text (threads, locks,
// classes, stacks, call sites) are mapped to numbers; locks used without `init` get an implicit
// class of the same name, and names of signals or `at=` call sites emit their definitions, so
// one line can yield several events.
class TextDecoder {
 public:
  TextDecoder();
  // Decodes one line (without its newline). Appends the events to *out (string views valid until
  // the next call). Returns false with *error (line number set) on a bad line; nothing appended.
  bool DecodeLine(std::string_view line, std::uint64_t line_number, std::vector<Event>* out,
                  DecodeError* error);
  // The run header from the `lockgraph-text` and `run` lines seen so far.
  const FileHeader& header() const { return header_; }
  bool saw_magic() const { return saw_magic_; }

 private:
  FileHeader header_;
  bool saw_magic_ = false;
  std::uint64_t next_thread_ = 1, next_lock_ = 1, next_class_ = 1, next_stack_ = 1;
  std::uint64_t next_ip_ = 0x1000;
  // Name tables with string_view look-up (no allocation to find a known name).
  struct NameHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  template <typename V>
  using NameMap = std::unordered_map<std::string, V, NameHash, std::equal_to<>>;
  NameMap<ThreadKey> threads_;
  NameMap<LockId> locks_;
  NameMap<LogClassId> classes_;
  NameMap<StackId> stacks_;
  NameMap<std::uint64_t> sites_;
  std::vector<bool> named_contexts_;
  std::deque<std::string> line_strings_;  // unescaped strings of the current line
  std::unordered_set<std::string> names_;  // interned names (live as long as the decoder)
};

// Appends the text header (`lockgraph-text 1` and a `run` line) to *out.
void EncodeTextHeader(const FileHeader& header, std::string* out);
// Appends one line (with '\n') for `event` in canonical form: numbers for threads, locks,
// classes, stacks and ips, so decoding it gives back the same event.
void EncodeTextLine(const Event& event, std::string* out);

// --- Shared helpers --------------------------------------------------------------------------

// Linux signal number for "SIGUSR1" etc. (0 if unknown), and the name of a signal number.
int SignalNumber(std::string_view name);
std::string_view SignalName(int signo);
// Context id of signal `signo`, as the runtime maps them.
inline ContextId SignalContext(int signo) {
  return static_cast<ContextId>(kFirstNumberedContext + signo - 1);
}

}  // namespace lockgraph::logfmt

#endif  // LOCKGRAPH_LOG_FORMAT_H_
