// The lock-log codec: binary and text round trips, corruption, truncation, resynchronisation.
#include "lockgraph/log_format.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

namespace lockgraph::logfmt {
namespace {

std::vector<Event> SampleEvents() {
  std::vector<Event> v;
  auto add = [&](RecordType t) -> Event& {
    v.emplace_back();
    v.back().type = t;
    return v.back();
  };
  static const std::string kFrames[] = {"main (main.c:10)", "worker (w.c:3)"};
  add(RecordType::kThreadStart).thread = 101, v.back().text = "main";
  add(RecordType::kClassDef).class_id = 1, v.back().text = "sym:a_lock", v.back().text2 = "a_lock";
  add(RecordType::kClassDef).class_id = 2, v.back().subclass = 3, v.back().text = "site:b.c:4",
                          v.back().text2 = "&b->lock";
  add(RecordType::kContextName).context = SignalContext(10), v.back().text = "SIGUSR1";
  add(RecordType::kStackDef).stack = 7;
  v.back().frames = {kFrames[0], kFrames[1]};
  add(RecordType::kCallSiteDef).ip = 0x55550000a000, v.back().text = "worker (w.c:3)";
  Event& init = add(RecordType::kLockInit);
  init.thread = 101, init.lock = 0x7ffd1000, init.class_id = 1, init.ip = 0x55550000a000,
  init.stack = 7;
  Event& acq = add(RecordType::kAcquire);
  acq.thread = 101, acq.lock = 0x7ffd1000, acq.mode = AcquireMode::kShared, acq.trylock = true,
  acq.subclass = 2, acq.nest_lock = 0x7ffd0f00, acq.ip = 0x55550000a010, acq.stack = 7;
  add(RecordType::kThreadStart).thread = 102, v.back().text = "worker";
  add(RecordType::kAcquire).thread = 102, v.back().lock = 0x602000001234;
  add(RecordType::kEnterContext).thread = 102, v.back().context = SignalContext(10);
  add(RecordType::kExitContext).thread = 102, v.back().context = SignalContext(10),
                             v.back().ip = 0x401000;
  add(RecordType::kDisableContext).thread = 101, v.back().context = kHardirqContext;
  add(RecordType::kEnableContext).thread = 101, v.back().context = kSoftirqContext;
  Event& mask = add(RecordType::kSetDisabledMask);
  mask.thread = 101, mask.mask.Set(0), mask.mask.Set(100);
  add(RecordType::kCancelAcquire).thread = 102, v.back().lock = 0x602000001234;
  add(RecordType::kRelease).thread = 101, v.back().lock = 0x7ffd1000, v.back().ip = 0x401010;
  add(RecordType::kLockSetClass).lock = 0x7ffd1000, v.back().class_id = 2;
  add(RecordType::kLockDestroy).thread = 101, v.back().lock = 0x7ffd1000, v.back().ip = 5;
  add(RecordType::kThreadName).thread = 102, v.back().text = "renamed";
  add(RecordType::kThreadExit).thread = 102, v.back().ip = 0x401020;
  add(RecordType::kLockName).lock = 0x7ffd1000, v.back().text = "forks[4]";
  add(RecordType::kRunEnd);
  return v;
}

std::string EncodeFile(const std::vector<Event>& events, bool with_seq, std::size_t capacity,
                       std::size_t* blocks_out = nullptr) {
  FileHeader h;
  h.program = "./app";
  h.pid = 4242;
  h.start_unix_ns = 1700000000123456789ull;
  h.hostname = "box";
  std::string file;
  EncodeFileHeader(h, &file);
  std::vector<std::uint8_t> buf(capacity);
  BlockEncoder enc(buf.data(), buf.size(), with_seq);
  std::uint32_t n = 0;
  for (const Event& e : events) {
    if (!enc.Put(e)) {
      auto b = enc.Finish(n++);
      file.append(reinterpret_cast<const char*>(b.data()), b.size());
      enc.Reset();
      EXPECT_TRUE(enc.Put(e));
    }
  }
  if (!enc.empty()) {
    auto b = enc.Finish(n++);
    file.append(reinterpret_cast<const char*>(b.data()), b.size());
  }
  if (blocks_out) *blocks_out = n;
  return file;
}

struct Decoded {
  FileHeader header;
  BinaryScanner::HeaderResult header_result{};
  std::vector<Event> events;
  std::vector<std::string> frames_storage;
  std::vector<DecodeError> errors;
  std::size_t blocks = 0;
};

Decoded DecodeFile(const std::string& file) {
  Decoded d;
  std::span<const std::uint8_t> bytes(reinterpret_cast<const std::uint8_t*>(file.data()),
                                      file.size());
  BinaryScanner scan(bytes);
  DecodeError err;
  d.header_result = scan.ReadHeader(&d.header, &err);
  if (d.header_result != BinaryScanner::HeaderResult::kOk) d.errors.push_back(err);
  BlockView block;
  for (;;) {
    auto r = scan.NextBlock(&block, &err);
    if (r == BinaryScanner::Next::kEnd) break;
    if (r == BinaryScanner::Next::kError) {
      d.errors.push_back(err);
      continue;
    }
    ++d.blocks;
    BlockDecoder dec(block);
    Event e;
    while (dec.Next(&e, &err)) d.events.push_back(e);
    if (!err.message.empty()) d.errors.push_back(err);
  }
  return d;
}

TEST(LogFormat, BinaryRoundTripKeepsEveryField) {
  for (bool with_seq : {false, true}) {
    auto events = SampleEvents();
    if (with_seq)
      for (std::size_t i = 0; i < events.size(); ++i)
        if (!IsDefinition(events[i].type)) events[i].seq = 1000 + 3 * i;
    std::string file = EncodeFile(events, with_seq, 64 * 1024);
    Decoded d = DecodeFile(file);
    ASSERT_TRUE(d.errors.empty()) << d.errors[0].message;
    EXPECT_EQ(d.header.program, "./app");
    EXPECT_EQ(d.header.pid, 4242u);
    EXPECT_EQ(d.header.start_unix_ns, 1700000000123456789ull);
    EXPECT_EQ(d.header.hostname, "box");
    ASSERT_EQ(d.events.size(), events.size());
    for (std::size_t i = 0; i < events.size(); ++i) {
      Event want = events[i];
      if (with_seq && IsDefinition(want.type)) want.seq = d.events[i].seq;  // definitions carry none
      EXPECT_TRUE(SameEvent(d.events[i], want))
          << "event " << i << " " << RecordTypeName(events[i].type);
    }
  }
}

// The recorder's fast acquire/release encoders write exactly the bytes Put() writes, in a
// stamped block, across thread switches and every optional acquire field.
TEST(LogFormat, FastLockRecordsAreTheBytesOfPut) {
  std::vector<std::uint8_t> a(8192), b(8192);
  BlockEncoder slow(a.data(), a.size(), /*with_seq=*/true), fast(b.data(), b.size(), true);
  std::uint64_t seq = 5;
  for (int i = 0; i < 200; ++i) {
    Event e;
    e.thread = 100 + (i / 7) % 3;
    e.seq = seq += 1 + i % 3;
    e.lock = 0x7f0000001000ull + static_cast<std::uint64_t>((i * 40) % 320);
    e.ip = 0x55550000ull + static_cast<std::uint64_t>((i * 13) % 97);
    if (i % 2 == 0) {
      e.type = RecordType::kAcquire;
      e.mode = static_cast<AcquireMode>(i % 3);
      e.trylock = i % 5 == 0;
      e.subclass = static_cast<std::uint8_t>(i % 4 == 0 ? 0 : i % 8);
      e.nest_lock = i % 6 == 0 ? e.lock - 64 : kNoLock;
      e.stack = i % 10 == 0 ? static_cast<StackId>(i) : kNoStack;
      ASSERT_TRUE(fast.PutAcquire(e.thread, e.seq, e.lock, e.mode, e.trylock, e.subclass,
                                  e.nest_lock, e.ip, e.stack));
    } else {
      e.type = RecordType::kRelease;
      ASSERT_TRUE(fast.PutRelease(e.thread, e.seq, e.lock, e.ip));
    }
    ASSERT_TRUE(slow.Put(e));
    ASSERT_EQ(slow.size(), fast.size()) << "record " << i;
  }
  auto x = slow.Finish(3), y = fast.Finish(3);
  ASSERT_EQ(x.size(), y.size());
  EXPECT_EQ(std::memcmp(x.data(), y.data(), x.size()), 0);
}

// The recorder's inline encoders (the shim's fast path) write exactly the bytes Put() writes,
// whenever ReadyForLockRecord says they may run: plain acquisitions and releases of the block's
// current thread, with small, large and negative lock, ip and sequence differences. A thread
// change makes ReadyForLockRecord false until a record with the thread switch is written.
TEST(LogFormat, InlineLockRecordsAreTheBytesOfPut) {
  std::vector<std::uint8_t> a(8192), b(8192);
  BlockEncoder slow(a.data(), a.size(), /*with_seq=*/true), fast(b.data(), b.size(), true);
  EXPECT_FALSE(fast.ReadyForLockRecord(100));  // no thread yet in this block
  std::uint64_t seq = 5;
  int inline_records = 0;
  for (int i = 0; i < 300; ++i) {
    Event e;
    e.thread = 100 + (i / 25) % 2;
    e.seq = seq += i % 50 == 0 ? 100000 : 1 + i % 3;
    e.lock = i % 17 == 0 ? 0x7f0000001000ull - 0x10000000ull * (i % 3)
                         : 0x7f0000001000ull + static_cast<std::uint64_t>((i * 40) % 320);
    e.ip = i % 11 == 0 ? 0x7fff00001234ull : 0x55550000ull + static_cast<std::uint64_t>((i * 13) % 97);
    e.mode = static_cast<AcquireMode>(i % 3);
    e.trylock = i % 5 == 0;
    const bool ready = fast.ReadyForLockRecord(e.thread);
    if (i % 25 == 0) EXPECT_FALSE(ready) << "record " << i << " changes the thread";
    if (i % 2 == 0) {
      e.type = RecordType::kAcquire;
      if (ready) {
        fast.PutPlainAcquire(e.seq, e.lock, e.mode, e.trylock, e.ip);
        ++inline_records;
      } else {
        ASSERT_TRUE(fast.PutAcquire(e.thread, e.seq, e.lock, e.mode, e.trylock, 0, kNoLock,
                                    e.ip, kNoStack));
      }
    } else {
      e.type = RecordType::kRelease;
      if (ready) {
        fast.PutPlainRelease(e.seq, e.lock, e.ip);
        ++inline_records;
      } else {
        ASSERT_TRUE(fast.PutRelease(e.thread, e.seq, e.lock, e.ip));
      }
    }
    ASSERT_TRUE(slow.Put(e));
    ASSERT_EQ(slow.size(), fast.size()) << "record " << i;
    ASSERT_EQ(slow.records(), fast.records()) << "record " << i;
  }
  EXPECT_GT(inline_records, 250);
  auto x = slow.Finish(3), y = fast.Finish(3);
  ASSERT_EQ(x.size(), y.size());
  EXPECT_EQ(std::memcmp(x.data(), y.data(), x.size()), 0);
  // No room for the largest lock record: not ready.
  std::vector<std::uint8_t> c(kMinBlockCapacity);
  BlockEncoder small(c.data(), c.size(), true);
  ASSERT_TRUE(small.PutRelease(7, 1, 0x1000, 0x2000));
  std::uint64_t s = 1;
  while (small.ReadyForLockRecord(7)) small.PutPlainRelease(s += 1000, 0x1000, 0x2000);
  EXPECT_LT(c.size() - small.size(), BlockEncoder::kMaxLockRecordBytes);
  EXPECT_GT(small.records(), 100u);
}

// A thread's steady state (the same lock taken at the same call site, stamps that count) costs
// one byte per event (version 3's compact records), and decodes as the events it stands for:
// a flat pair and a chain of four, with a stamp jump, a thread switch, another thread's entry
// for the same call site, a mode change and an acquisition with a stack in between.
TEST(LogFormat, CompactRecordsCostOneByteAndDecodeAsTheirEvents) {
  std::vector<Event> events;
  std::uint64_t seq = 100;
  auto lock_event = [&](RecordType type, ThreadKey t, LockId lock, std::uint64_t ip,
                        AcquireMode mode = AcquireMode::kExclusive) {
    Event e;
    e.type = type;
    e.thread = t;
    e.seq = ++seq;
    e.lock = lock;
    e.ip = ip;
    if (type == RecordType::kAcquire) e.mode = mode;
    events.push_back(e);
  };
  const LockId a = 0x7f0000001000, b = a + 64, c = a + 128, d = a + 4096;
  for (int i = 0; i < 1000; ++i) {  // flat
    lock_event(RecordType::kAcquire, 7, a, 0x401000);
    lock_event(RecordType::kRelease, 7, a, 0x401008);
  }
  for (int i = 0; i < 1000; ++i) {  // a chain of four, released in reverse
    const LockId chain[] = {a, b, c, d};
    for (int k = 0; k < 4; ++k) lock_event(RecordType::kAcquire, 7, chain[k], 0x402000 + 5 * k);
    for (int k = 3; k >= 0; --k) lock_event(RecordType::kRelease, 7, chain[k], 0x402040 + 5 * k);
  }
  const std::size_t steady = events.size();
  seq += 5000;  // a band jump: the next records are full ones again
  lock_event(RecordType::kAcquire, 7, a, 0x401000);
  lock_event(RecordType::kRelease, 7, a, 0x401008);
  lock_event(RecordType::kAcquire, 8, a, 0x401000);  // another thread (the entry is the block's)
  lock_event(RecordType::kRelease, 8, a, 0x401008);
  lock_event(RecordType::kAcquire, 7, a, 0x401000, AcquireMode::kShared);  // another mode
  lock_event(RecordType::kAcquire, 7, b, 0x401000, AcquireMode::kShared);  // another lock
  lock_event(RecordType::kRelease, 7, b, 0x401008);
  lock_event(RecordType::kRelease, 7, a, 0x401008);
  lock_event(RecordType::kAcquire, 7, a, 0x401000);
  events.back().stack = 9;  // with a stack: no compact record, and the entry is left alone
  lock_event(RecordType::kRelease, 7, a, 0x401008);
  lock_event(RecordType::kAcquire, 7, a, 0x401000, AcquireMode::kShared);
  lock_event(RecordType::kRelease, 7, a, 0x401008);

  std::vector<std::uint8_t> buf(64 * 1024);
  BlockEncoder enc(buf.data(), buf.size(), /*with_seq=*/true);
  std::size_t one_byte = 0;
  for (std::size_t i = 0; i < events.size(); ++i) {
    const std::size_t before = enc.size();
    ASSERT_TRUE(enc.Put(events[i])) << i;
    if (i < steady) one_byte += enc.size() - before == 1;
  }
  // Every event of the loops after their first round (2 and 8 events) is one byte.
  EXPECT_EQ(one_byte, steady - 10);
  auto block = enc.Finish(0);
  BlockView view;
  view.payload = block.subspan(kBlockHeaderSize);
  BlockDecoder dec(view);
  DecodeError err;
  Event got;
  std::size_t n = 0;
  while (dec.Next(&got, &err)) {
    ASSERT_LT(n, events.size());
    EXPECT_TRUE(SameEvent(got, events[n])) << "event " << n;
    ++n;
  }
  EXPECT_TRUE(err.message.empty()) << err.message;
  EXPECT_EQ(n, events.size());
}

// A compact record is refused where it cannot be: in a file of version 1 or 2 (an unknown
// record type there), and before any record of its block defined its table entry. Either error
// names the record's offset, and the records before it are kept.
TEST(LogFormat, CompactRecordsOutsideTheirPlaceAreErrors) {
  std::vector<Event> events;
  for (int i = 0; i < 6; ++i) {
    Event e;
    e.type = i % 2 == 0 ? RecordType::kAcquire : RecordType::kRelease;
    e.thread = 3;
    e.lock = 0x5000;
    e.ip = i % 2 == 0 ? 0x6000 : 0x6010;
    events.push_back(e);
  }
  std::string file = EncodeFile(events, false, kMinBlockCapacity);
  const std::size_t first_block = file.find("LGBK");
  // The flags byte, the thread switch (2 bytes), the acquire (tag, flags, 3-byte lock and ip
  // differences), the release (tag, lock and ip differences of a byte each), four compact bytes.
  const std::size_t compact_at = first_block + kBlockHeaderSize + 1 + 2 + 8 + 3;
  ASSERT_EQ(file.size(), compact_at + 4);
  Decoded v3 = DecodeFile(file);
  EXPECT_TRUE(v3.errors.empty());
  EXPECT_EQ(v3.events.size(), events.size());
  // The same bytes in a version-2 file (whose CRC-32C is the same).
  std::string v2 = file;
  auto* p = reinterpret_cast<std::uint8_t*>(v2.data());
  p[8] = 2;
  const std::uint32_t header_len = p[12] | p[13] << 8 | p[14] << 16 | p[15] << 24;
  const std::uint32_t crc = Crc32c(0, p, kFileHeaderFixedSize + header_len);
  for (int i = 0; i < 4; ++i) p[kFileHeaderFixedSize + header_len + i] = crc >> (8 * i) & 0xff;
  Decoded old = DecodeFile(v2);
  ASSERT_EQ(old.errors.size(), 1u);
  EXPECT_EQ(old.errors[0].offset, compact_at);
  EXPECT_EQ(old.errors[0].message, "unknown record type " +
                                       std::to_string(kCompactRecordBit | CompactSlot(0x6000)) +
                                       " (rest of block skipped)");
  EXPECT_EQ(old.events.size(), 2u);
  // A compact release before any release record of its block.
  std::vector<std::uint8_t> payload = {0x00, 0x01, 0x03,  // no stamps; thread 3
                                       0x0a, 0x00, 0x80, 0x40, 0x80, 0xc0, 0x01,  // acquire
                                       static_cast<std::uint8_t>(kCompactRecordBit |
                                                                 kCompactReleaseBit | 5)};
  BlockView view;
  view.offset = 1000;
  view.payload = payload;
  BlockDecoder dec(view);
  DecodeError err;
  Event e;
  ASSERT_TRUE(dec.Next(&e, &err));
  EXPECT_EQ(e.lock, 0x1000u);
  EXPECT_EQ(e.ip, 0x3000u);
  EXPECT_FALSE(dec.Next(&e, &err));
  EXPECT_EQ(err.offset, 1000 + kBlockHeaderSize + 10);
  EXPECT_EQ(err.message,
            "compact release record of table entry 5, which no record of its block defined "
            "(rest of block skipped)");
}

TEST(LogFormat, SmallBlocksSplitAndStillDecodeIndependently) {
  std::vector<Event> events;
  for (int i = 0; i < 2000; ++i) {
    Event e;
    e.type = (i % 2) ? RecordType::kRelease : RecordType::kAcquire;
    e.thread = 1 + (i / 7) % 3;
    e.lock = 0x7f0000000000 + 64 * (i % 5);
    e.ip = 0x400000 + i % 11;
    events.push_back(e);
  }
  std::size_t blocks = 0;
  std::string file = EncodeFile(events, false, kMinBlockCapacity, &blocks);
  EXPECT_GT(blocks, 2u);
  Decoded d = DecodeFile(file);
  ASSERT_TRUE(d.errors.empty());
  ASSERT_EQ(d.events.size(), events.size());
  for (std::size_t i = 0; i < events.size(); ++i) EXPECT_TRUE(SameEvent(d.events[i], events[i]));
  // A common pattern costs a few bytes per event.
  EXPECT_LT(file.size(), events.size() * 6);
}

TEST(LogFormat, CorruptBlockIsSkippedAndBlocksAroundItDecode) {
  std::vector<Event> events;
  for (int i = 0; i < 3000; ++i) {
    Event e;
    e.type = RecordType::kAcquire;
    e.thread = 1;
    e.lock = static_cast<LockId>(i + 1);
    events.push_back(e);
  }
  std::size_t blocks = 0;
  std::string file = EncodeFile(events, false, kMinBlockCapacity, &blocks);
  ASSERT_GE(blocks, 3u);
  Decoded clean = DecodeFile(file);
  // Find the second block and flip a payload byte.
  std::size_t second = file.find("LGBK", file.find("LGBK") + 1);
  ASSERT_NE(second, std::string::npos);
  file[second + kBlockHeaderSize + 20] ^= 0x5a;
  Decoded d = DecodeFile(file);
  ASSERT_EQ(d.errors.size(), 1u);
  EXPECT_EQ(d.errors[0].offset, second);
  EXPECT_NE(d.errors[0].message.find("CRC mismatch"), std::string::npos) << d.errors[0].message;
  EXPECT_NE(d.errors[0].message.find("next valid block"), std::string::npos);
  EXPECT_EQ(d.blocks, blocks - 1);
  EXPECT_LT(d.events.size(), clean.events.size());
  EXPECT_EQ(d.events.front().lock, 1u);
  EXPECT_EQ(d.events.back().lock, 3000u);
}

TEST(LogFormat, TruncatedTailStopsCleanly) {
  std::vector<Event> events(5000);
  for (std::size_t i = 0; i < events.size(); ++i) {
    events[i].type = RecordType::kAcquire;
    events[i].thread = 9;
    events[i].lock = i + 1;
  }
  std::string file = EncodeFile(events, false, kMinBlockCapacity);
  std::size_t last = file.rfind("LGBK");
  std::string cut = file.substr(0, last + 30);
  Decoded d = DecodeFile(cut);
  ASSERT_EQ(d.errors.size(), 1u);
  EXPECT_EQ(d.errors[0].offset, last);
  EXPECT_NE(d.errors[0].message.find("truncated block"), std::string::npos) << d.errors[0].message;
  EXPECT_FALSE(d.events.empty());
  // Every length of cut decodes without a crash and with at most a few errors.
  for (std::size_t n = 0; n < file.size(); n += 37) DecodeFile(file.substr(0, n));
}

TEST(LogFormat, WrongVersionAndNotALogAreFatal) {
  std::string file = EncodeFile(SampleEvents(), false, 64 * 1024);
  for (int version : {0, 4, 0x100}) {
    std::string other = file;
    other[8] = static_cast<char>(version & 0xff);
    other[9] = static_cast<char>(version >> 8);
    Decoded d = DecodeFile(other);
    EXPECT_EQ(d.header_result, BinaryScanner::HeaderResult::kFatal);
    ASSERT_FALSE(d.errors.empty());
    EXPECT_EQ(d.errors[0].message, "unsupported log format version " + std::to_string(version) +
                                       " (this lockgraph reads versions 1 to 3)");
    EXPECT_EQ(d.errors[0].offset, 8u);
    EXPECT_TRUE(d.events.empty());
  }
  Decoded junk = DecodeFile("hello world, this is not a log\n");
  EXPECT_EQ(junk.header_result, BinaryScanner::HeaderResult::kFatal);
  EXPECT_NE(junk.errors[0].message.find("not a lockgraph log"), std::string::npos);
  auto head = [](const std::string& s) {
    return std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
  };
  EXPECT_EQ(DetectFormat(head(file)), Format::kBinary);
  EXPECT_EQ(DetectFormat(head("# scenario\nlockgraph-text 1\n")), Format::kText);
  EXPECT_EQ(DetectFormat(head("ELF")), Format::kUnknown);
}

// The CRC-32C of the format (the SSE4.2 instruction where the CPU has it) is the table-driven
// one, on the standard check value and on random inputs of every length and alignment, chained
// or in one go.
TEST(LogFormat, Crc32cIsTheCastagnoliCrcOnEveryInput) {
  const std::string check = "123456789";
  const auto* c = reinterpret_cast<const std::uint8_t*>(check.data());
  EXPECT_EQ(Crc32cPortable(0, c, check.size()), 0xe3069283u);
  EXPECT_EQ(Crc32c(0, c, check.size()), 0xe3069283u);
  EXPECT_EQ(Crc32c(0, c, 0), 0u);
  EXPECT_EQ(LogChecksum(2, 0, c, check.size()), 0xe3069283u);
  EXPECT_EQ(LogChecksum(1, 0, c, check.size()), 0xcbf43926u);  // zlib's CRC-32 (version 1)
  std::mt19937_64 rng(testing::UnitTest::GetInstance()->random_seed());
  std::vector<std::uint8_t> buf(5000);
  for (auto& b : buf) b = static_cast<std::uint8_t>(rng());
  for (int i = 0; i < 2000; ++i) {
    const std::size_t at = rng() % 64, n = rng() % (buf.size() - at);
    const std::uint32_t seed = i % 3 == 0 ? 0u : static_cast<std::uint32_t>(rng());
    const std::uint32_t want = Crc32cPortable(seed, buf.data() + at, n);
    ASSERT_EQ(Crc32c(seed, buf.data() + at, n), want) << "at " << at << " n " << n;
    const std::size_t split = n == 0 ? 0 : rng() % n;
    ASSERT_EQ(Crc32c(Crc32c(seed, buf.data() + at, split), buf.data() + at + split, n - split),
              want);
  }
}

// A flipped bit anywhere in a block is caught by the checksum (CRC-32C detects every error of
// up to 32 consecutive bits): the block is skipped and the others decode.
TEST(LogFormat, EveryFlippedBitOfABlockIsDetected) {
  std::vector<Event> events;
  for (int i = 0; i < 1200; ++i) {
    Event e;
    e.type = i % 2 ? RecordType::kRelease : RecordType::kAcquire;
    e.thread = 3;
    e.seq = static_cast<std::uint64_t>(i + 1);
    e.lock = 0x7f0000001000ull + 64 * static_cast<std::uint64_t>(i % 4);
    e.ip = 0x401000 + static_cast<std::uint64_t>(i % 9);
    events.push_back(e);
  }
  std::size_t blocks = 0;
  const std::string file = EncodeFile(events, true, kMinBlockCapacity, &blocks);
  ASSERT_GE(blocks, 2u);
  const std::size_t first = file.find("LGBK");
  const std::size_t second = file.find("LGBK", first + 1);
  ASSERT_NE(second, std::string::npos);
  const Decoded clean = DecodeFile(file);
  ASSERT_TRUE(clean.errors.empty());
  // From the length field on: a flipped length bit is caught by the framing or the checksum.
  // Every bit of the header and the first records, then one bit of every later byte.
  for (std::size_t at = first + 4; at < second; ++at) {
    for (int bit = 0; bit < 8; ++bit) {
      if (at >= first + 256 && bit != static_cast<int>(at % 8)) continue;
      std::string bad = file;
      bad[at] = static_cast<char>(bad[at] ^ (1 << bit));
      const Decoded d = DecodeFile(bad);
      ASSERT_FALSE(d.errors.empty()) << "byte " << at - first << " bit " << bit;
      ASSERT_EQ(d.errors[0].offset, first) << "byte " << at - first << " bit " << bit;
      ASSERT_LT(d.events.size(), clean.events.size());
      ASSERT_EQ(d.blocks, blocks - 1) << "byte " << at - first << " bit " << bit;
      ASSERT_TRUE(SameEvent(d.events.back(), clean.events.back()));
    }
  }
}

// A version-1 log (zlib's CRC-32 on the header and blocks) still reads: a file from the test
// corpus, written by the recorder before version 2, and one re-checksummed by hand; a version-1
// header with a CRC-32C checksum (versions 2 and 3) is caught as corrupt.
TEST(LogFormat, VersionOneLogsStillRead) {
  std::ifstream in(std::string(LOCKGRAPH_CORPUS_DIR) + "/binary/abba_transfer.lglog",
                   std::ios::binary);
  const std::string old((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_GT(old.size(), kFileHeaderFixedSize);
  ASSERT_EQ(old[8], 1);
  const Decoded corpus = DecodeFile(old);
  EXPECT_EQ(corpus.header_result, BinaryScanner::HeaderResult::kOk);
  EXPECT_TRUE(corpus.errors.empty());
  EXPECT_GT(corpus.blocks, 0u);
  int acquires = 0;
  for (const Event& e : corpus.events) acquires += e.type == RecordType::kAcquire;
  EXPECT_EQ(acquires, 2);

  const auto events = SampleEvents();
  std::string file = EncodeFile(events, false, 512 + kMinBlockCapacity);
  auto* p = reinterpret_cast<std::uint8_t*>(file.data());
  auto put32 = [](std::uint8_t* at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) at[i] = static_cast<std::uint8_t>(v >> (8 * i));
  };
  auto get32 = [](const std::uint8_t* at) {
    return std::uint32_t{at[0]} | std::uint32_t{at[1]} << 8 | std::uint32_t{at[2]} << 16 |
           std::uint32_t{at[3]} << 24;
  };
  ASSERT_EQ(p[8], 3);  // SampleEvents repeats no lock event: no compact record
  p[8] = 1;
  const std::uint32_t header_len = get32(p + 12);
  p[8] = 3;
  EXPECT_EQ(get32(p + kFileHeaderFixedSize + header_len),
            Crc32cPortable(0, p, kFileHeaderFixedSize + header_len));
  p[8] = 1;
  put32(p + kFileHeaderFixedSize + header_len,
        LogChecksum(1, 0, p, kFileHeaderFixedSize + header_len));
  const std::string v1_header_v2_blocks = file;
  for (std::size_t at = file.find("LGBK"); at != std::string::npos; at = file.find("LGBK", at + 1)) {
    const std::uint32_t len = get32(p + at + 4);
    put32(p + at + 12, LogChecksum(1, LogChecksum(1, 0, p + at + 4, 8),
                                   p + at + kBlockHeaderSize, len));
  }
  const Decoded v1 = DecodeFile(file);
  EXPECT_EQ(v1.header_result, BinaryScanner::HeaderResult::kOk);
  EXPECT_EQ(v1.header.version, 1);
  EXPECT_EQ(v1.header.program, "./app");
  EXPECT_TRUE(v1.errors.empty());
  ASSERT_EQ(v1.events.size(), events.size());
  for (std::size_t i = 0; i < events.size(); ++i) EXPECT_TRUE(SameEvent(v1.events[i], events[i]));
  // Blocks checksummed as version 2 or 3 in a file that says version 1 do not check out.
  const Decoded mixed = DecodeFile(v1_header_v2_blocks);
  EXPECT_EQ(mixed.header_result, BinaryScanner::HeaderResult::kOk);
  ASSERT_FALSE(mixed.errors.empty());
  EXPECT_NE(mixed.errors[0].message.find("CRC mismatch"), std::string::npos)
      << mixed.errors[0].message;
  EXPECT_TRUE(mixed.events.empty());
}

TEST(LogFormat, CorruptHeaderStillReadsBlocks) {
  std::string file = EncodeFile(SampleEvents(), false, 64 * 1024);
  file[18] ^= 1;  // inside the program name
  Decoded d = DecodeFile(file);
  EXPECT_EQ(d.header_result, BinaryScanner::HeaderResult::kCorrupt);
  EXPECT_EQ(d.events.size(), SampleEvents().size());
}

TEST(LogFormat, EncoderRefusesWhatDoesNotFit) {
  std::vector<std::uint8_t> buf(kMinBlockCapacity);
  BlockEncoder enc(buf.data(), buf.size(), true);
  Event e;
  e.type = RecordType::kAcquire;
  e.thread = 1;
  std::size_t n = 0;
  while (enc.Put(e)) ++n, ++e.lock, ++e.seq;
  EXPECT_GT(n, 500u);
  EXPECT_LE(enc.size(), buf.size());
  std::string big(8000, 'x');
  Event s;
  s.type = RecordType::kCallSiteDef;
  s.text = big;
  enc.Reset();
  EXPECT_FALSE(enc.Put(s));
  EXPECT_TRUE(enc.empty());
}

std::vector<Event> DecodeText(const std::string& text, std::vector<DecodeError>* errors,
                              std::vector<std::string>* storage) {
  TextDecoder dec;
  std::vector<Event> all;
  std::size_t line_no = 0, start = 0;
  while (start <= text.size()) {
    std::size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    std::vector<Event> out;
    DecodeError err;
    if (!dec.DecodeLine(std::string_view(text).substr(start, nl - start), ++line_no, &out, &err))
      errors->push_back(err);
    for (Event& e : out) {
      // Keep strings alive past the next line.
      storage->emplace_back(e.text);
      e.text = storage->back();
      storage->emplace_back(e.text2);
      e.text2 = storage->back();
      for (auto& f : e.frames) {
        storage->emplace_back(f);
        f = storage->back();
      }
      all.push_back(e);
    }
    start = nl + 1;
  }
  return all;
}

TEST(LogFormat, TextScenarioGivesImplicitClassesAndThreads) {
  std::vector<DecodeError> errors;
  std::vector<std::string> storage;
  storage.reserve(10000);
  auto ev = DecodeText(
      "# ABBA, first half\n"
      "lockgraph-text 1\n"
      "run program=\"./abba\" pid=77\n"
      "acquire t1 A at=\"f (a.c:1)\"\n"
      "acquire t1 B mode=read try\n"
      "release t1 B\n"
      "release t1 A   # done\n"
      "enter t2 SIGUSR1\n",
      &errors, &storage);
  ASSERT_TRUE(errors.empty()) << errors[0].message;
  std::vector<RecordType> types;
  for (auto& e : ev) types.push_back(e.type);
  std::vector<RecordType> want = {
      RecordType::kThreadStart, RecordType::kClassDef,   RecordType::kLockInit,
      RecordType::kCallSiteDef, RecordType::kAcquire,    RecordType::kClassDef,
      RecordType::kLockInit,    RecordType::kAcquire,    RecordType::kRelease,
      RecordType::kRelease,     RecordType::kThreadStart, RecordType::kContextName,
      RecordType::kEnterContext};
  ASSERT_EQ(types, want);
  EXPECT_EQ(ev[0].text, "t1");
  EXPECT_EQ(ev[1].text, "A");
  EXPECT_EQ(ev[3].text, "f (a.c:1)");
  EXPECT_EQ(ev[4].ip, ev[3].ip);
  EXPECT_EQ(ev[7].mode, AcquireMode::kShared);
  EXPECT_TRUE(ev[7].trylock);
  EXPECT_EQ(ev[9].lock, ev[4].lock);
  EXPECT_EQ(ev[11].text, "SIGUSR1");
  EXPECT_EQ(ev[12].context, SignalContext(10));
}

TEST(LogFormat, TextErrorsNameTheLineAndSkipOnlyIt) {
  std::vector<DecodeError> errors;
  std::vector<std::string> storage;
  storage.reserve(1000);
  auto ev = DecodeText(
      "lockgraph-text 1\n"
      "acquire t1 A mode=sideways\n"
      "acquire t1 A\n"
      "frobnicate t1\n"
      "acquire t1 \"unterminated\n",
      &errors, &storage);
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_EQ(errors[0].line, 2u);
  EXPECT_NE(errors[0].message.find("unknown mode 'sideways'"), std::string::npos);
  EXPECT_EQ(errors[1].line, 4u);
  EXPECT_NE(errors[1].message.find("unknown verb 'frobnicate'"), std::string::npos);
  EXPECT_EQ(errors[2].line, 5u);
  // The bad line 2 left nothing behind: line 3 starts t1 and initialises A itself.
  ASSERT_EQ(ev.size(), 4u);
  EXPECT_EQ(ev[0].type, RecordType::kThreadStart);
  EXPECT_EQ(ev[2].type, RecordType::kLockInit);
  EXPECT_EQ(ev[3].type, RecordType::kAcquire);

  errors.clear();
  DecodeText("acquire t1 A\n", &errors, &storage);
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_NE(errors[0].message.find("not a lockgraph text log"), std::string::npos);
}

TEST(LogFormat, CanonicalTextRoundTrips) {
  std::string text;
  FileHeader h;
  h.program = "./prog \"quoted\"";
  h.pid = 5;
  EncodeTextHeader(h, &text);
  auto events = SampleEvents();
  events[7].seq = 99;
  for (const Event& e : events) EncodeTextLine(e, &text);
  std::vector<DecodeError> errors;
  std::vector<std::string> storage;
  storage.reserve(10000);
  auto back = DecodeText(text, &errors, &storage);
  ASSERT_TRUE(errors.empty()) << errors[0].line << ": " << errors[0].message << "\n" << text;
  ASSERT_EQ(back.size(), events.size()) << text;
  for (std::size_t i = 0; i < events.size(); ++i)
    EXPECT_TRUE(SameEvent(back[i], events[i])) << "event " << i << ":\n" << text;
}

TEST(LogFormat, StableClassKeyDoesNotDependOnTheProcess) {
  EXPECT_EQ(StableClassKey(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(StableClassKey("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_NE(StableClassKey("sym:a"), StableClassKey("sym:b"));
}

}  // namespace
}  // namespace lockgraph::logfmt
