// The analysis pipeline (decoder threads + block replay) against the two-pass path it replaces:
// the same findings, reports, counts and errors on every kind of log, including the ones where
// it must fall back (definitions after their use, stamped blocks, damaged blocks).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "analysis.h"
#include "block_decode.h"
#include "lockgraph/log_format.h"

namespace lockgraph::analyzer {
namespace {

namespace fs = std::filesystem;
using logfmt::Event;
using logfmt::RecordType;

const std::string kCorpus = LOCKGRAPH_CORPUS_DIR;

class Pipeline : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("lockgraph-pipeline-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }

  // Writes `events` as a binary log, starting a new block every `per_block` records.
  std::string Write(const std::string& name, const std::vector<Event>& events,
                    std::size_t per_block = 1000, bool with_seq = false) {
    std::string file;
    logfmt::FileHeader h;
    h.program = "./" + name;
    h.pid = 77;
    logfmt::EncodeFileHeader(h, &file);
    std::vector<std::uint8_t> buf(64 * 1024);
    logfmt::BlockEncoder enc(buf.data(), buf.size(), with_seq);
    std::uint32_t n = 0;
    std::uint64_t seq = 0;
    auto flush = [&] {
      if (enc.empty()) return;
      auto b = enc.Finish(n++);
      file.append(reinterpret_cast<const char*>(b.data()), b.size());
      enc.Reset();
    };
    for (Event e : events) {
      e.seq = ++seq;
      if (enc.records() >= per_block || !enc.Put(e)) {
        flush();
        EXPECT_TRUE(enc.Put(e));
      }
    }
    flush();
    fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << file;
    return p.string();
  }

  // Writes `events` as lockgraph's recorder writes a multi-threaded program: every event
  // stamped from one counter, each thread's records in a buffer of its own that goes out as a
  // block after `per_block` records (the pending definitions and thread-less records first,
  // in a block of their own), the threads' partial blocks at the end in thread order.
  std::string WritePerThread(const std::string& name, const std::vector<Event>& events,
                             std::size_t per_block) {
    std::string file;
    logfmt::FileHeader h;
    h.program = "./" + name;
    h.pid = 78;
    logfmt::EncodeFileHeader(h, &file);
    std::uint32_t n = 0;
    std::uint64_t seq = 0;
    struct Buffer {
      std::vector<std::uint8_t> data = std::vector<std::uint8_t>(64 * 1024);
      logfmt::BlockEncoder enc{data.data(), data.size(), true};
    };
    Buffer defs;
    std::map<ThreadKey, std::unique_ptr<Buffer>> threads;
    auto write = [&](logfmt::BlockEncoder& enc) {
      if (enc.empty()) return;
      auto b = enc.Finish(n++);
      file.append(reinterpret_cast<const char*>(b.data()), b.size());
      enc.Reset();
    };
    for (Event e : events) {
      e.seq = ++seq;
      if (logfmt::IsDefinition(e.type) || !logfmt::IsThreadBound(e.type)) {
        EXPECT_TRUE(defs.enc.Put(e));
        continue;
      }
      auto& b = threads[e.thread];
      if (!b) b = std::make_unique<Buffer>();
      if (b->enc.records() >= per_block) {
        write(defs.enc);
        write(b->enc);
      }
      EXPECT_TRUE(b->enc.Put(e));
    }
    write(defs.enc);
    for (auto& [t, b] : threads) write(b->enc);
    fs::path p = dir_ / name;
    std::ofstream(p, std::ios::binary) << file;
    return p.string();
  }

  fs::path dir_;
};

// What a user would see of an analysis, for comparing the two paths.
struct Outcome {
  std::vector<std::string> reports;
  std::vector<std::string> errors;
  std::vector<RunId> runs;
  std::uint64_t events = 0;
  std::vector<std::uint64_t> log_events, log_records, damaged;
  int exit_code = -1;
  std::size_t classes = 0, dependencies = 0;
  std::map<std::uint64_t, std::string> sites, lock_names;  // the symbol tables, run-mapped
  std::size_t merged = 0;  // logs the pipeline merged by stamp (not compared)
  std::string two_pass_reason;  // (not compared)
};

Outcome Analyzed(const std::vector<std::string>& inputs, bool two_pass, bool* pipelined = nullptr) {
  AnalyzeOptions o;
  o.inputs = inputs;
  o.two_pass = two_pass;
  o.jobs = 2;
  Analysis a;
  Analyze(o, &a);
  Outcome out;
  for (const auto& f : a.findings) out.reports.push_back(f.report);
  for (const auto& e : a.errors) out.errors.push_back(FormatInputError(e));
  out.runs = a.runs;
  out.events = a.events;
  for (const auto& log : a.logs) {
    out.log_events.push_back(log->events);
    out.log_records.push_back(log->records);
    out.damaged.push_back(log->damaged_blocks);
  }
  out.exit_code = a.ExitCode();
  auto st = a.engine->stats();
  out.classes = st.classes;
  out.dependencies = st.dependencies;
  out.merged = a.merged_logs;
  out.two_pass_reason = a.two_pass_reason;
  out.sites.insert(a.symbolizer.sites.begin(), a.symbolizer.sites.end());
  out.lock_names.insert(a.symbolizer.lock_names.begin(), a.symbolizer.lock_names.end());
  if (pipelined) *pipelined = a.pipelined;
  return out;
}

void ExpectSame(const Outcome& fast, const Outcome& slow) {
  EXPECT_EQ(fast.reports, slow.reports);
  EXPECT_EQ(fast.errors, slow.errors);
  EXPECT_EQ(fast.runs, slow.runs);
  EXPECT_EQ(fast.events, slow.events);
  EXPECT_EQ(fast.log_events, slow.log_events);
  EXPECT_EQ(fast.log_records, slow.log_records);
  EXPECT_EQ(fast.damaged, slow.damaged);
  EXPECT_EQ(fast.exit_code, slow.exit_code);
  EXPECT_EQ(fast.classes, slow.classes);
  EXPECT_EQ(fast.dependencies, slow.dependencies);
  EXPECT_EQ(fast.sites, slow.sites);
  EXPECT_EQ(fast.lock_names, slow.lock_names);
}

Event Ev(RecordType type, ThreadKey t = 0, LockId lock = 0) {
  Event e;
  e.type = type;
  e.thread = t;
  e.lock = lock;
  return e;
}

Event ClassDef(logfmt::LogClassId id, const char* identity, const char* name) {
  Event e;
  e.type = RecordType::kClassDef;
  e.class_id = id;
  e.text = identity;
  e.text2 = name;
  return e;
}

Event Init(ThreadKey t, LockId lock, logfmt::LogClassId cls, std::uint64_t ip = 0) {
  Event e = Ev(RecordType::kLockInit, t, lock);
  e.class_id = cls;
  e.ip = ip;
  return e;
}

Event Acq(ThreadKey t, LockId lock, std::uint64_t ip, AcquireMode mode = AcquireMode::kExclusive) {
  Event e = Ev(RecordType::kAcquire, t, lock);
  e.ip = ip;
  e.mode = mode;
  return e;
}

Event Rel(ThreadKey t, LockId lock, std::uint64_t ip = 0) {
  Event e = Ev(RecordType::kRelease, t, lock);
  e.ip = ip;
  return e;
}

Event Site(std::uint64_t ip, const char* text) {
  Event e;
  e.type = RecordType::kCallSiteDef;
  e.ip = ip;
  e.text = text;
  return e;
}

// Two threads, an ABBA between them, many blocks of filler in between, and every record type.
std::vector<Event> Scenario(bool class_after_use) {
  std::vector<Event> v;
  if (!class_after_use) {
    v.push_back(ClassDef(1, "sym:lock_a", "lock_a"));
    v.push_back(ClassDef(2, "sym:lock_b", "lock_b"));
  }
  Event t1 = Ev(RecordType::kThreadStart, 11);
  t1.text = "main";
  v.push_back(t1);
  v.push_back(Site(0x100, "transfer (bank.c:40)"));
  v.push_back(Site(0x104, "transfer (bank.c:41)"));
  v.push_back(Init(11, 0xa0, 1, 0x90));
  v.push_back(Init(11, 0xb0, 2, 0x94));
  if (class_after_use) {
    v.push_back(ClassDef(1, "sym:lock_a", "lock_a"));
    v.push_back(ClassDef(2, "sym:lock_b", "lock_b"));
  }
  v.push_back(Acq(11, 0xa0, 0x100));
  v.push_back(Acq(11, 0xb0, 0x104));
  v.push_back(Rel(11, 0xb0));
  v.push_back(Rel(11, 0xa0));
  Event ctx;
  ctx.type = RecordType::kContextName;
  ctx.context = 11;
  ctx.text = "SIGUSR1";
  v.push_back(ctx);
  std::mt19937 rng(5);
  for (int i = 0; i < 20000; ++i) {
    ThreadKey t = 20 + rng() % 3;
    LockId l = 0x1000 + 0x40 * (rng() % 6);
    v.push_back(Acq(t, l, 0x200 + (l & 0xff), i % 7 == 0 ? AcquireMode::kShared : AcquireMode::kExclusive));
    if (i % 5 == 0) {
      Event en = Ev(RecordType::kEnableContext, t);
      en.context = 11;
      v.push_back(en);
      Event d = Ev(RecordType::kDisableContext, t);
      d.context = 11;
      v.push_back(d);
    }
    v.push_back(Rel(t, l, 0x300));
  }
  Event rename = Ev(RecordType::kThreadName, 21);
  rename.text = "worker";
  v.push_back(rename);
  Event tr = Acq(12, 0xa0, 0x104);
  tr.trylock = true;
  v.push_back(Acq(12, 0xb0, 0x100));
  v.push_back(Acq(12, 0xa0, 0x104));
  v.push_back(Ev(RecordType::kCancelAcquire, 12, 0xa0));
  v.push_back(tr);
  v.push_back(Rel(12, 0xa0));
  v.push_back(Rel(12, 0xb0));
  Event nest = Acq(13, 0xc0, 0x108);
  nest.nest_lock = 0xb0;
  nest.subclass = 1;
  v.push_back(Acq(13, 0xb0, 0x100));
  v.push_back(nest);
  v.push_back(Rel(13, 0xc0));
  v.push_back(Rel(13, 0xb0));
  Event mask = Ev(RecordType::kSetDisabledMask, 13);
  mask.mask.Set(11);
  mask.mask.Set(100);
  v.push_back(mask);
  Event enter = Ev(RecordType::kEnterContext, 13);
  enter.context = 11;
  v.push_back(enter);
  Event leave = Ev(RecordType::kExitContext, 13);
  leave.context = 11;
  leave.ip = 0x500;
  v.push_back(leave);
  v.push_back(Ev(RecordType::kLockDestroy, 11, 0xa0));
  v.push_back(Acq(11, 0xa0, 0x100));  // use after destroy
  Event exit = Ev(RecordType::kThreadExit, 11);
  exit.ip = 0x600;
  v.push_back(exit);
  Event sc = Ev(RecordType::kLockSetClass, 0, 0xb0);
  sc.class_id = 1;
  v.push_back(sc);
  v.push_back(Ev(RecordType::kRunEnd));
  return v;
}

TEST_F(Pipeline, FastDecoderMatchesTheCodecRecordForRecord) {
  for (bool seq : {false, true}) {
    std::string path = Write(seq ? "s.lglog" : "p.lglog", Scenario(false), 300, seq);
    LoadedLog log;
    log.path = path;
    LoadLog(&log, nullptr);
    ASSERT_TRUE(log.errors.empty());
    ASSERT_GT(log.blocks.size(), 10u);
    for (const auto& block : log.blocks) {
      DecodedBlock fast, generic;
      logfmt::DecodeError e1, e2;
      DecodeBlock(block, &fast, &e1);
      DecodeBlockGeneric(block, &generic, &e2);
      EXPECT_TRUE(e1.message.empty()) << e1.message;
      EXPECT_EQ(fast.events, generic.events);
      EXPECT_EQ(fast.records_seen, generic.records_seen);
      EXPECT_EQ(fast.has_seq, seq);
      EXPECT_EQ(fast.first_seq, generic.first_seq);
      EXPECT_EQ(fast.last_seq, generic.last_seq);
      EXPECT_EQ(fast.seq_sorted, generic.seq_sorted);
      if (seq) EXPECT_LT(fast.first_seq, fast.last_seq);
      EXPECT_EQ(fast.nests, generic.nests);
      EXPECT_EQ(fast.names, generic.names);
      EXPECT_EQ(fast.classes.size(), generic.classes.size());
      EXPECT_EQ(fast.sites, generic.sites);
      // Each event with the thread it acts on (switches are framing: the fast decoder keeps
      // every one, the generic path only those before a change of thread).
      auto strip = [](const DecodedBlock& b) {
        std::vector<std::string> out;
        ThreadKey cur = 0;
        for (std::size_t i = 0; i < b.records().size(); ++i) {
          const CompactRecord& r = b.records()[i];
          if (r.type == RecordType::kThreadSwitch) {
            cur = r.x;
            continue;
          }
          if (r.type == RecordType::kThreadStart) cur = r.x;
          out.push_back(std::to_string(int(r.type)) + "/" + std::to_string(r.a) + "/" +
                        std::to_string(r.b) + "/" + std::to_string(r.c) + "/" +
                        std::to_string(r.index) + "/" + std::to_string(r.x) + "/" +
                        std::to_string(r.y) + "/" + std::to_string(r.z) + " @" +
                        std::to_string(logfmt::IsThreadBound(r.type) ? cur : 0) + " #" +
                        std::to_string(b.seqs()[i]));
        }
        return out;
      };
      EXPECT_EQ(strip(fast), strip(generic));
    }
  }
}

TEST_F(Pipeline, DamagedRecordGivesTheCodecsErrorAndKeepsWhatCameBefore) {
  std::string path = Write("d.lglog", Scenario(false), 100000);
  LoadedLog log;
  log.path = path;
  LoadLog(&log, nullptr);
  ASSERT_GE(log.blocks.size(), 2u);
  // A block's payload followed by a record of unknown type (0) and more bytes.
  std::vector<std::uint8_t> payload(log.blocks[1].payload.begin(), log.blocks[1].payload.end());
  payload.insert(payload.end(), {0x00, 0x0a, 0x0a, 0x0b});
  logfmt::BlockView bad = log.blocks[1];
  bad.payload = payload;
  DecodedBlock fast, generic;
  logfmt::DecodeError e1, e2;
  DecodeBlock(bad, &fast, &e1);
  DecodeBlockGeneric(bad, &generic, &e2);
  EXPECT_FALSE(e1.message.empty());
  EXPECT_EQ(e1.message, e2.message);
  EXPECT_EQ(e1.offset, e2.offset);
  EXPECT_EQ(fast.events, generic.events);
  EXPECT_GT(fast.events, 100u);
}

TEST_F(Pipeline, SameFindingsAsTwoPassOnAMultiThreadedLog) {
  std::string path = Write("m.lglog", Scenario(false), 700);
  bool pipelined = false;
  Outcome fast = Analyzed({path}, false, &pipelined);
  EXPECT_TRUE(pipelined);
  Outcome slow = Analyzed({path}, true);
  ExpectSame(fast, slow);
  ASSERT_GE(fast.reports.size(), 2u);
  // The ABBA between threads 11 and 12, named by the classes' definitions.
  bool abba = false;
  for (const auto& r : fast.reports)
    abba = abba || (r.find("possible circular locking dependency") != std::string::npos &&
                    r.find("(lock_a)") != std::string::npos && r.find("(lock_b)") != std::string::npos);
  EXPECT_TRUE(abba);
}

TEST_F(Pipeline, ClassDefinedAfterItsUseFallsBackToTwoPass) {
  // The definitions are in a later block than the init that uses them.
  std::string path = Write("late.lglog", Scenario(true), 6);
  bool pipelined = true;
  Outcome fast = Analyzed({path}, false, &pipelined);
  EXPECT_FALSE(pipelined);
  EXPECT_EQ(fast.two_pass_reason, path + ": definitions after their use");
  Outcome slow = Analyzed({path}, true);
  ExpectSame(fast, slow);
  for (const auto& r : fast.reports) EXPECT_EQ(r.find("class#"), std::string::npos) << r;
}

TEST_F(Pipeline, StampedBlocksOutOfFileOrderAreMergedByStamp) {
  // Thread 1's block was written after thread 2's, but its first events came first: B then A in
  // file order, A then B in stamp order (thread 2 takes B then A; thread 1 A then B before it).
  std::string file;
  logfmt::FileHeader h;
  h.program = "./stamped";
  logfmt::EncodeFileHeader(h, &file);
  std::vector<std::uint8_t> buf(8192);
  auto block = [&](std::vector<Event> events, std::uint32_t n) {
    logfmt::BlockEncoder enc(buf.data(), buf.size(), true);
    for (const auto& e : events) EXPECT_TRUE(enc.Put(e));
    auto b = enc.Finish(n);
    file.append(reinterpret_cast<const char*>(b.data()), b.size());
  };
  auto stamp = [](Event e, std::uint64_t seq) {
    e.seq = seq;
    return e;
  };
  block({stamp(Acq(2, 0xb, 0x2), 5), stamp(Acq(2, 0xa, 0x1), 6), stamp(Rel(2, 0xa), 7),
         stamp(Rel(2, 0xb), 8)},
        0);
  block({stamp(Acq(1, 0xa, 0x1), 1), stamp(Acq(1, 0xb, 0x2), 2), stamp(Rel(1, 0xb), 3),
         stamp(Rel(1, 0xa), 4)},
        1);
  std::ofstream(dir_ / "st.lglog", std::ios::binary) << file;
  bool pipelined = false;
  Outcome fast = Analyzed({(dir_ / "st.lglog").string()}, false, &pipelined);
  EXPECT_TRUE(pipelined);
  EXPECT_EQ(fast.merged, 1u);
  Outcome slow = Analyzed({(dir_ / "st.lglog").string()}, true);
  ExpectSame(fast, slow);
  ASSERT_EQ(fast.reports.size(), 1u);
  // In stamp order thread 1's A -> B is the existing dependency, thread 2's B -> A the new one.
  EXPECT_NE(fast.reports[0].find("is trying to acquire lock:\n 000000000000000a"), std::string::npos)
      << fast.reports[0];
  // The same log with its blocks in stamp order streams, with the same report.
  std::string sorted = file.substr(0, file.find("LGBK"));
  std::size_t b0 = file.find("LGBK"), b1 = file.find("LGBK", b0 + 1);
  sorted += file.substr(b1) + file.substr(b0, b1 - b0);
  std::ofstream(dir_ / "sorted.lglog", std::ios::binary) << sorted;
  Outcome streamed = Analyzed({(dir_ / "sorted.lglog").string()}, false, &pipelined);
  EXPECT_TRUE(pipelined);
  EXPECT_EQ(streamed.reports, fast.reports);
}

TEST_F(Pipeline, ManyRunsStampedLogsAndDamageMatchTwoPass) {
  std::vector<std::string> inputs;
  inputs.push_back(Write("a.lglog", Scenario(false), 500));
  inputs.push_back(Write("b.lglog", Scenario(false), 400, /*with_seq=*/true));
  // A damaged copy: one corrupt block in the middle and a truncated tail.
  std::string bin;
  {
    std::ifstream in(inputs[0], std::ios::binary);
    bin.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::size_t second = bin.find("LGBK", bin.find("LGBK") + 1);
  bin[second + 40] ^= 0x5a;
  bin.resize(bin.size() - 7);
  std::ofstream(dir_ / "c.lglog", std::ios::binary) << bin;
  inputs.push_back((dir_ / "c.lglog").string());
  inputs.push_back((dir_ / "missing.lglog").string());
  std::vector<std::string> corpus;
  for (const auto& entry : fs::directory_iterator(kCorpus + "/binary"))
    if (entry.path().extension() == ".lglog") corpus.push_back(entry.path().string());
  for (const auto& entry : fs::directory_iterator(kCorpus + "/text"))
    corpus.push_back(entry.path().string());
  std::sort(corpus.begin(), corpus.end());
  inputs.insert(inputs.end(), corpus.begin(), corpus.end());
  Outcome fast = Analyzed(inputs, false);
  Outcome slow = Analyzed(inputs, true);
  ExpectSame(fast, slow);
  EXPECT_GE(fast.errors.size(), 3u);
  EXPECT_EQ(fast.exit_code, 1);
}

TEST_F(Pipeline, RecorderStyleMultiThreadedLogIsMergedAsTwoPassMergesIt) {
  // Small per-thread blocks: hundreds of blocks whose stamps interleave, every record type.
  for (std::size_t per_block : {7u, 60u, 1000u}) {
    std::string path = WritePerThread("mt" + std::to_string(per_block) + ".lglog",
                                      Scenario(false), per_block);
    bool pipelined = false;
    Outcome fast = Analyzed({path}, false, &pipelined);
    EXPECT_TRUE(pipelined);
    EXPECT_EQ(fast.merged, 1u);
    EXPECT_EQ(fast.two_pass_reason, "");
    Outcome slow = Analyzed({path}, true);
    EXPECT_EQ(slow.two_pass_reason, "asked for");
    ExpectSame(fast, slow);
    EXPECT_EQ(fast.errors, std::vector<std::string>{});
    bool abba = false;
    for (const auto& r : fast.reports)
      abba = abba || (r.find("possible circular locking dependency") != std::string::npos &&
                      r.find("(lock_a)") != std::string::npos);
    EXPECT_TRUE(abba) << per_block;
  }
}

TEST_F(Pipeline, MergeBreaksTiesAndUnsortedBlocksAsTwoPassDoes) {
  // Random programs of four threads taking pairs of five locks in random orders (so which
  // inversion is found first, and its report, depends on the replay order), with stamps that
  // repeat across threads and go backwards inside blocks, and blocks in shuffled file order.
  std::mt19937 rng(::testing::UnitTest::GetInstance()->random_seed());
  for (int round = 0; round < 40; ++round) {
    std::map<ThreadKey, std::vector<Event>> per_thread;
    std::uint64_t seq = 0;
    for (int i = 0; i < 300; ++i) {
      const ThreadKey t = 1 + rng() % 4;
      const LockId a = 0x10 * (1 + rng() % 5), b = 0x10 * (1 + rng() % 5);
      if (a == b) continue;
      for (Event e : {Acq(t, a, 0x100 + a), Acq(t, b, 0x100 + b), Rel(t, b), Rel(t, a)}) {
        seq += rng() % 3;  // 0: the same stamp as the previous event, often of another thread
        e.seq = rng() % 10 == 0 && seq > 60 ? seq - rng() % 60 : seq;  // now and then backwards
        per_thread[t].push_back(e);
      }
    }
    std::vector<std::vector<Event>> blocks;
    for (auto& [t, events] : per_thread) {
      for (std::size_t i = 0; i < events.size();) {
        const std::size_t n = std::min<std::size_t>(events.size() - i, 1 + rng() % 40);
        blocks.emplace_back(events.begin() + i, events.begin() + i + n);
        i += n;
      }
    }
    std::shuffle(blocks.begin(), blocks.end(), rng);
    std::string file;
    logfmt::FileHeader h;
    h.program = "./random";
    logfmt::EncodeFileHeader(h, &file);
    std::vector<std::uint8_t> buf(64 * 1024);
    std::uint32_t n = 0;
    for (const auto& events : blocks) {
      logfmt::BlockEncoder enc(buf.data(), buf.size(), true);
      for (const auto& e : events) EXPECT_TRUE(enc.Put(e));
      auto b = enc.Finish(n++);
      file.append(reinterpret_cast<const char*>(b.data()), b.size());
    }
    const std::string path = (dir_ / ("r" + std::to_string(round) + ".lglog")).string();
    std::ofstream(path, std::ios::binary) << file;
    Outcome fast = Analyzed({path}, false);
    EXPECT_EQ(fast.merged, 1u);
    Outcome slow = Analyzed({path}, true);
    ExpectSame(fast, slow);
    EXPECT_FALSE(fast.reports.empty());
    if (HasFailure()) {
      ADD_FAILURE() << "round " << round << ", log " << path;
      return;
    }
  }
}

TEST_F(Pipeline, DefinitionsOutOfFileOrderInTheMergeGiveTheTwoPassTables) {
  // The file's first block is merged second: its class definition (the first in the file)
  // differs from the second block's, which the merge meets first; lock and context names differ
  // too (the last in the file wins).
  auto def = [](logfmt::LogClassId id, const char* identity) { return ClassDef(id, identity, identity); };
  auto stamp = [](Event e, std::uint64_t seq) {
    e.seq = seq;
    return e;
  };
  Event name_a;
  name_a.type = RecordType::kLockName;
  name_a.lock = 0xb0;
  name_a.text = "first_name";
  Event name_b = name_a;
  name_b.text = "second_name";
  Event ctx_a;
  ctx_a.type = RecordType::kContextName;
  ctx_a.context = 11;
  ctx_a.text = "SIGUSR1";
  Event ctx_b = ctx_a;
  ctx_b.text = "SIGALRM";
  std::vector<std::vector<Event>> blocks = {
      {def(1, "sym:first"), name_a, ctx_a, Site(0x1, "first_site"), stamp(Acq(2, 0xb0, 0x2), 10), stamp(Acq(2, 0xa0, 0x1), 11),
       stamp(Rel(2, 0xa0), 12), stamp(Rel(2, 0xb0), 13)},
      {def(1, "sym:second"), name_b, ctx_b, Site(0x1, "second_site"), stamp(Init(1, 0xa0, 1), 1), stamp(Acq(1, 0xa0, 0x1), 2),
       stamp(Acq(1, 0xb0, 0x2), 3), stamp(Rel(1, 0xb0), 4), stamp(Rel(1, 0xa0), 5)},
  };
  std::string file;
  logfmt::FileHeader h;
  h.program = "./defs";
  logfmt::EncodeFileHeader(h, &file);
  std::vector<std::uint8_t> buf(8192);
  std::uint32_t n = 0;
  for (const auto& events : blocks) {
    logfmt::BlockEncoder enc(buf.data(), buf.size(), true);
    for (const auto& e : events) EXPECT_TRUE(enc.Put(e));
    auto b = enc.Finish(n++);
    file.append(reinterpret_cast<const char*>(b.data()), b.size());
  }
  const std::string path = (dir_ / "defs.lglog").string();
  std::ofstream(path, std::ios::binary) << file;
  Outcome fast = Analyzed({path}, false);
  Outcome slow = Analyzed({path}, true);
  ExpectSame(fast, slow);
  ASSERT_EQ(slow.reports.size(), 1u);
  EXPECT_NE(slow.reports[0].find("(sym:first)"), std::string::npos) << slow.reports[0];
  EXPECT_NE(slow.reports[0].find("at: first_site"), std::string::npos) << slow.reports[0];
  EXPECT_EQ(slow.lock_names[0xb0], "second_name");
}

TEST_F(Pipeline, DamagedBlockInAMergedLogFallsBackToTwoPass) {
  std::string path = WritePerThread("dmg.lglog", Scenario(false), 50);
  std::string bin;
  {
    std::ifstream in(path, std::ios::binary);
    bin.assign(std::istreambuf_iterator<char>(in), {});
  }
  // A payload byte of the fifth block: its CRC no longer matches.
  std::size_t at = 0;
  for (int i = 0; i < 5; ++i) at = bin.find("LGBK", at + 1);
  bin[at + 20] ^= 0x21;
  std::ofstream(path, std::ios::binary) << bin;
  bool pipelined = true;
  Outcome fast = Analyzed({path}, false, &pipelined);
  EXPECT_FALSE(pipelined);
  EXPECT_EQ(fast.two_pass_reason, path + ": a damaged stamped log");
  Outcome slow = Analyzed({path}, true);
  ExpectSame(fast, slow);
  ASSERT_FALSE(fast.errors.empty());
  EXPECT_NE(fast.errors[0].find("dmg.lglog: offset " + std::to_string(at) + ": corrupt block (CRC mismatch)"),
            std::string::npos)
      << fast.errors[0];
  EXPECT_EQ(fast.damaged, std::vector<std::uint64_t>{1});
  EXPECT_FALSE(fast.reports.empty());
}

// The decoder's lock slots against a model: Of and Retire in a random order over clustered lock
// ids (adjacent mutexes), through several growths of the table. A lock keeps its slot until it
// is retired, no two locks hold one slot at once, a retired slot is handed out again before a
// new one is made, every slot is below limit(), and slot 0 is kNoLock's alone.
TEST(LockSlots, OneSlotPerLiveLockReusedAfterRetire) {
  LockSlots slots;
  std::map<LockId, std::uint32_t> model;  // lock -> its slot
  std::map<std::uint32_t, LockId> owner;  // slot -> its lock
  std::uint32_t retired = 0;              // slots given back and not handed out again
  std::mt19937_64 rng(7);
  EXPECT_EQ(slots.Of(kNoLock), 0u);
  for (int step = 0; step < 200000; ++step) {
    const LockId lock = 0x10000 + 40 * (rng() % 6000);
    auto it = model.find(lock);
    if (rng() % 4 == 0) {
      const std::uint32_t s = slots.Retire(lock);
      if (it != model.end()) {
        ASSERT_EQ(s, it->second) << "step " << step;
        model.erase(it);
        owner.erase(s);
        ++retired;
      } else {
        // Handed out (a free one if any) and given back at once.
        ASSERT_EQ(owner.count(s), 0u) << "step " << step;
        if (retired == 0) ++retired;
      }
      continue;
    }
    const std::uint32_t before = slots.limit();
    const std::uint32_t s = slots.Of(lock);
    ASSERT_NE(s, 0u);
    ASSERT_LT(s, slots.limit());
    if (it != model.end()) {
      ASSERT_EQ(s, it->second) << "step " << step;
      continue;
    }
    ASSERT_EQ(owner.count(s), 0u) << "step " << step;
    if (retired > 0) {
      ASSERT_EQ(slots.limit(), before) << "a new slot while one was free, step " << step;
      --retired;
    }
    model[lock] = s;
    owner[s] = lock;
  }
  EXPECT_EQ(slots.Of(kNoLock), 0u);
  for (const auto& [lock, s] : model) ASSERT_EQ(slots.Of(lock), s);
  EXPECT_EQ(slots.limit(), 1 + model.size() + retired);
}

// A pool of 200 locks taken in pairs, enough distinct steps that the thread's 64-entry memo
// misses and the pipeline's replay finds instances by their handles (replay.cpp): two lock
// addresses are destroyed and reused as another class while replay holds their handles, one
// still remembered by the engine (its slot is re-bound), one forgotten (its slot recycled to
// another lock). An inversion on each reused address must name its new class, not the old.
TEST_F(Pipeline, AddressReusedAsAnotherClassIsNotAcquiredThroughAStaleHandle) {
  constexpr ThreadKey kT = 11;
  constexpr LockId kY = 0x5000, kX = 0x6000, kW = 0x7000, kZ = 0x8000;
  constexpr int kPool = 200;
  std::vector<Event> v;
  v.push_back(ClassDef(1, "sym:other", "other"));
  v.push_back(ClassDef(2, "sym:old_x", "old_x"));
  v.push_back(ClassDef(3, "sym:new_x", "new_x"));
  v.push_back(ClassDef(4, "sym:old_w", "old_w"));
  v.push_back(ClassDef(5, "sym:new_w", "new_w"));
  v.push_back(ClassDef(6, "sym:z", "z"));
  v.push_back(ClassDef(7, "sym:filler", "filler"));
  std::vector<std::string> ids(kPool);  // the events' text views point here
  for (int i = 0; i < kPool; ++i) {
    ids[i] = "sym:pool" + std::to_string(i);
    Event def = ClassDef(static_cast<logfmt::LogClassId>(100 + i), "", "");
    def.text = ids[i];
    def.text2 = std::string_view(ids[i]).substr(4);
    v.push_back(def);
  }
  Event start = Ev(RecordType::kThreadStart, kT);
  start.text = "main";
  v.push_back(start);
  auto pool = [](int i) { return LockId{0x100000} + 0x40 * static_cast<LockId>(i); };
  v.push_back(Init(kT, kY, 1));
  v.push_back(Init(kT, kX, 2));
  v.push_back(Init(kT, kW, 4));
  v.push_back(Init(kT, kZ, 6));
  for (int i = 0; i < kPool; ++i)
    v.push_back(Init(kT, pool(i), static_cast<logfmt::LogClassId>(100 + i)));
  auto pair = [&](LockId a, LockId b) {
    v.push_back(Acq(kT, a, 0x100));
    v.push_back(Acq(kT, b, 0x104));
    v.push_back(Rel(kT, b));
    v.push_back(Rel(kT, a));
  };
  // Pool pairs in one order (no cycle), each round ~400 distinct steps.
  auto rounds = [&](int n) {
    for (int r = 0; r < n; ++r)
      for (int i = 0; i + 1 < kPool; ++i) pair(pool(i), pool(i + 1));
  };
  // other -> old_x and other -> old_w, learned and then taken again among the pool's steps.
  for (int r = 0; r < 3; ++r) {
    pair(kY, kX);
    pair(kY, kW);
    rounds(1);
  }
  // X: destroyed and initialised again as new_x (the engine keeps its record and slot).
  v.push_back(Ev(RecordType::kLockDestroy, kT, kX));
  v.push_back(Init(kT, kX, 3));
  // W: destroyed, then forgotten by the engine (more destroyed locks than it remembers per
  // shard, in every shard), its slot recycled to Z's first handle; then W is new_w.
  v.push_back(Ev(RecordType::kLockDestroy, kT, kW));
  for (LockId i = 0; i < 80000; ++i) {
    const LockId f = 0x40000000 + 0x40 * i;
    v.push_back(Init(kT, f, 7));
    v.push_back(Ev(RecordType::kLockDestroy, kT, f));
  }
  rounds(1);
  pair(kZ, pool(0));
  v.push_back(Init(kT, kW, 5));
  // The same steps as before on the reused addresses (other -> new_x, other -> new_w), then
  // their reverse: two inversions.
  pair(kY, kX);
  pair(kY, kW);
  rounds(1);
  pair(kX, kY);
  pair(kW, kY);
  v.push_back(Ev(RecordType::kRunEnd));

  std::string path = Write("reuse.lglog", v, 5000);
  bool pipelined = false;
  Outcome fast = Analyzed({path}, false, &pipelined);
  EXPECT_TRUE(pipelined);
  Outcome slow = Analyzed({path}, true);
  ExpectSame(fast, slow);
  ASSERT_EQ(fast.reports.size(), 2u);
  const std::string& x = fast.reports[0];
  const std::string& w = fast.reports[1];
  EXPECT_NE(x.find("possible circular locking dependency"), std::string::npos) << x;
  EXPECT_NE(x.find("(new_x)"), std::string::npos) << x;
  EXPECT_NE(x.find("(other)"), std::string::npos) << x;
  EXPECT_EQ(x.find("old_x"), std::string::npos) << x;
  EXPECT_NE(w.find("possible circular locking dependency"), std::string::npos) << w;
  EXPECT_NE(w.find("(new_w)"), std::string::npos) << w;
  EXPECT_NE(w.find("(other)"), std::string::npos) << w;
  EXPECT_EQ(w.find("old_w"), std::string::npos) << w;
  EXPECT_EQ(fast.exit_code, 1);

  // The same log twice: the second run's lock ids are mapped into their own space, and its
  // handles are its own.
  const std::string again = (dir_ / "reuse2.lglog").string();
  fs::copy_file(path, again);
  Outcome fast2 = Analyzed({path, again}, false);
  Outcome slow2 = Analyzed({path, again}, true);
  ExpectSame(fast2, slow2);
  EXPECT_EQ(fast2.runs, (std::vector<RunId>{0, 1}));
  EXPECT_EQ(fast2.reports.size(), 2u);
}

}  // namespace
}  // namespace lockgraph::analyzer
