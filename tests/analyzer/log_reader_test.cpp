// The analyzer's log reader: replay order of stamped per-thread blocks, input expansion, and
// what a damaged file leaves for the second pass.
#include "log_reader.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace lockgraph::analyzer {
namespace {

namespace fs = std::filesystem;
using logfmt::Event;
using logfmt::RecordType;

class LogReader : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("lockgraph-reader-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes one block per group of events (as per-thread buffers would), in the given order.
  // `lose`: the number of a block encoded but never written (a writer that lost it), or -1.
  std::string WriteBlocks(const std::string& name, const std::vector<std::vector<Event>>& blocks,
                          bool with_seq, int lose = -1) {
    std::string file;
    logfmt::FileHeader h;
    h.program = "./t";
    h.pid = 1;
    logfmt::EncodeFileHeader(h, &file);
    std::vector<std::uint8_t> buf(8192);
    std::uint32_t n = 0;
    for (const auto& events : blocks) {
      logfmt::BlockEncoder enc(buf.data(), buf.size(), with_seq);
      for (const auto& e : events) EXPECT_TRUE(enc.Put(e));
      const std::uint32_t number = n++;
      auto b = enc.Finish(number);
      if (static_cast<int>(number) == lose) continue;
      file.append(reinterpret_cast<const char*>(b.data()), b.size());
    }
    fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << file;
    return p.string();
  }
  fs::path dir_;
};

Event Acquire(ThreadKey t, LockId l, std::uint64_t seq) {
  Event e;
  e.type = RecordType::kAcquire;
  e.thread = t;
  e.lock = l;
  e.seq = seq;
  return e;
}

TEST_F(LogReader, StampedBlocksReplayInSequenceOrderNotFileOrder) {
  // Thread 1's buffer was flushed after thread 2's, but its events came first and last.
  std::string path = WriteBlocks(
      "seq.lglog",
      {{Acquire(2, 0x20, 3), Acquire(2, 0x21, 4)},
       {Acquire(1, 0x10, 1), Acquire(1, 0x11, 2), Acquire(1, 0x12, 5), Acquire(1, 0x13, 6)}},
      true);
  LoadedLog log;
  log.path = path;
  LoadLog(&log, nullptr);
  ASSERT_TRUE(log.errors.empty()) << log.errors[0].message;
  EXPECT_TRUE(log.has_seq);
  EXPECT_EQ(log.events, 6u);
  EventStream stream(log);
  Event e;
  std::vector<std::uint64_t> seqs;
  std::vector<LockId> locks;
  while (stream.Next(&e)) {
    seqs.push_back(e.seq);
    locks.push_back(e.lock);
  }
  EXPECT_EQ(seqs, (std::vector<std::uint64_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(locks, (std::vector<LockId>{0x10, 0x11, 0x20, 0x21, 0x12, 0x13}));
}

TEST_F(LogReader, UnstampedBlocksReplayInFileOrder) {
  std::string path = WriteBlocks("plain.lglog",
                                 {{Acquire(2, 0x20, 0)}, {Acquire(1, 0x10, 0), Acquire(1, 0x11, 0)}},
                                 false);
  LoadedLog log;
  log.path = path;
  LoadLog(&log, nullptr);
  EXPECT_FALSE(log.has_seq);
  EventStream stream(log);
  Event e;
  std::vector<LockId> locks;
  while (stream.Next(&e)) locks.push_back(e.lock);
  EXPECT_EQ(locks, (std::vector<LockId>{0x20, 0x10, 0x11}));
}

TEST_F(LogReader, DamagedBlockIsLeftOutOfTheSecondPass) {
  std::vector<std::vector<Event>> blocks;
  for (int b = 0; b < 3; ++b) blocks.push_back({Acquire(1, 0x100 + b, 0)});
  std::string path = WriteBlocks("damaged.lglog", blocks, false);
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::size_t second = bytes.find("LGBK", bytes.find("LGBK") + 1);
  bytes[second + logfmt::kBlockHeaderSize] ^= 0x40;
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  LoadedLog log;
  log.path = path;
  LoadLog(&log, nullptr);
  ASSERT_EQ(log.errors.size(), 1u);
  EXPECT_EQ(log.errors[0].offset, second);
  EXPECT_EQ(log.damaged_blocks, 1u);
  EventStream stream(log);
  Event e;
  std::vector<LockId> locks;
  while (stream.Next(&e)) locks.push_back(e.lock);
  EXPECT_EQ(locks, (std::vector<LockId>{0x100, 0x102}));
}

// Block numbers come from one counter in the writer: a block that never reached the file is
// reported in one line, and the blocks around it still replay.
TEST_F(LogReader, GapInTheBlockNumbersIsReportedAndTheOtherBlocksReplay) {
  std::vector<std::vector<Event>> blocks;
  for (int b = 0; b < 3; ++b) blocks.push_back({Acquire(1, 0x100 + b, 0)});
  std::string path = WriteBlocks("gap.lglog", blocks, false, /*lose=*/1);
  LoadedLog log;
  log.path = path;
  LoadLog(&log, nullptr);
  ASSERT_EQ(log.errors.size(), 1u);
  EXPECT_EQ(log.errors[0].message,
            "1 block(s) missing (numbers 0..2 present with gaps); the writer lost data");
  EventStream stream(log);
  Event e;
  std::vector<LockId> locks;
  while (stream.Next(&e)) locks.push_back(e.lock);
  EXPECT_EQ(locks, (std::vector<LockId>{0x100, 0x102}));
}

// Stamped and unstamped blocks in one file cannot be merged by sequence: said once, file order.
TEST_F(LogReader, MixedStampedAndPlainBlocksReplayInFileOrder) {
  std::string path = WriteBlocks("mixed.lglog", {{Acquire(1, 0x10, 2)}}, true);
  std::string plain = WriteBlocks("plain.lglog", {{Acquire(1, 0x10, 0)}, {Acquire(1, 0x11, 0)}},
                                  false);
  // The first block of `plain` (number 0) replaced by the stamped one: numbers stay 0, 1.
  std::string a, b;
  {
    std::ifstream in(path, std::ios::binary);
    a.assign(std::istreambuf_iterator<char>(in), {});
    std::ifstream in2(plain, std::ios::binary);
    b.assign(std::istreambuf_iterator<char>(in2), {});
  }
  const std::string mixed = a + b.substr(b.find("LGBK", b.find("LGBK") + 1));
  std::ofstream(path, std::ios::binary | std::ios::trunc) << mixed;
  LoadedLog log;
  log.path = path;
  LoadLog(&log, nullptr);
  ASSERT_EQ(log.errors.size(), 1u);
  EXPECT_EQ(log.errors[0].message,
            "mixes blocks with and without sequence numbers; replaying in file order");
  EXPECT_FALSE(log.has_seq);
  EventStream stream(log);
  Event e;
  std::vector<LockId> locks;
  while (stream.Next(&e)) locks.push_back(e.lock);
  EXPECT_EQ(locks, (std::vector<LockId>{0x10, 0x11}));
}

TEST_F(LogReader, DirectoriesKeepOnlyLogsInSortedOrder) {
  fs::create_directories(dir_ / "d" / "z");
  WriteBlocks("d/z/b.lglog", {{Acquire(1, 1, 0)}}, false);
  WriteBlocks("d/a.lglog", {{Acquire(1, 1, 0)}}, false);
  std::ofstream(dir_ / "d" / "notes.txt") << "just notes\n";
  std::ofstream(dir_ / "d" / "c.txt") << "# hand-written\nlockgraph-text 1\nacquire t1 A\n";
  std::vector<InputError> errors;
  auto paths = ExpandInputs({(dir_ / "d").string(), (dir_ / "missing").string()}, &errors);
  ASSERT_EQ(paths.size(), 3u);
  EXPECT_EQ(fs::path(paths[0]).filename(), "a.lglog");
  EXPECT_EQ(fs::path(paths[1]).filename(), "c.txt");
  EXPECT_EQ(fs::path(paths[2]).filename(), "b.lglog");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(FormatInputError(errors[0]), (dir_ / "missing").string() + ": no such file or directory");
}

}  // namespace
}  // namespace lockgraph::analyzer
