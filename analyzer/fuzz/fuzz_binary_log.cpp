// libFuzzer target: the binary lock-log reader. Any bytes must decode without a crash, a leak or
// unbounded memory, and every record decoded from a valid block must survive re-encoding.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "block_decode.h"
#include "lockgraph/log_format.h"

using namespace lockgraph::logfmt;

namespace {

std::vector<std::uint8_t>& Scratch() {
  static std::vector<std::uint8_t> buf(kBlockHeaderSize + kMaxBlockPayload);
  return buf;
}

// Re-encodes the decoded records of one block and checks they decode to the same records.
void CheckRoundTrip(const std::vector<Event>& events, bool with_seq) {
  auto& buf = Scratch();
  BlockEncoder enc(buf.data(), buf.size(), with_seq);
  for (const Event& e : events)
    if (!enc.Put(e)) std::abort();  // a record that fit in a block fits again
  auto bytes = enc.Finish(7);
  BinaryScanner scan(bytes);
  BlockView block;
  DecodeError err;
  // The scanner expects a file header first; frame the lone block by hand instead.
  block.offset = 0;
  block.number = 7;
  block.payload = bytes.subspan(kBlockHeaderSize);
  BlockDecoder dec(block);
  Event back;
  std::size_t i = 0;
  while (dec.Next(&back, &err)) {
    if (i >= events.size() || !SameEvent(back, events[i])) std::abort();
    ++i;
  }
  if (!err.message.empty() || i != events.size()) std::abort();
}

// The analyzer's straight-line block decoder must agree with the codec on every payload: the
// same events, the same error at the same offset.
void CheckFastDecoder(const BlockView& block) {
  using lockgraph::analyzer::CompactRecord;
  using lockgraph::analyzer::DecodedBlock;
  static DecodedBlock fast, generic;
  DecodeError e1, e2;
  lockgraph::analyzer::DecodeBlock(block, &fast, &e1);
  lockgraph::analyzer::DecodeBlockGeneric(block, &generic, &e2);
  if (e1.message != e2.message || e1.offset != e2.offset) std::abort();
  if (fast.events != generic.events || fast.records_seen != generic.records_seen) std::abort();
  if (fast.first_seq != generic.first_seq || fast.last_seq != generic.last_seq ||
      fast.seq_sorted != generic.seq_sorted)
    std::abort();
  if (fast.nests != generic.nests || fast.names != generic.names) std::abort();
  if (fast.classes.size() != generic.classes.size() || fast.stacks != generic.stacks) std::abort();
  // Compare the events with the thread each one acts on and their stamps; switches themselves
  // are framing (the fast decoder keeps every one, the generic path only those before a change
  // of thread).
  auto flatten = [](const DecodedBlock& block) {
    std::vector<CompactRecord> out;
    std::uint64_t cur = 0;
    const auto recs = block.records();
    const auto seqs = block.seqs();
    for (std::size_t i = 0; i < recs.size(); ++i) {
      const CompactRecord& r = recs[i];
      if (r.type == RecordType::kThreadSwitch) {
        cur = r.x;
        continue;
      }
      if (r.type == RecordType::kThreadStart) cur = r.x;
      CompactRecord c = r;
      out.push_back(c);
      CompactRecord t{};
      t.type = RecordType::kThreadSwitch;
      t.x = IsThreadBound(r.type) ? cur : 0;
      t.y = seqs[i];
      out.push_back(t);
    }
    return out;
  };
  auto a = flatten(fast);
  auto b = flatten(generic);
  if (a.size() != b.size()) std::abort();
  for (std::size_t i = 0; i < a.size(); ++i) {
    const CompactRecord& x = a[i];
    const CompactRecord& y = b[i];
    if (x.type != y.type || x.a != y.a || x.b != y.b || x.c != y.c || x.index != y.index ||
        x.x != y.x || x.y != y.y || x.z != y.z)
      std::abort();
  }
}

// The merged reader's block index must agree with the decoder: a block it reads as stamped has
// the first stamp (or no events) the decoder finds in it, whenever the decoder accepts it.
void CheckIndex(std::span<const std::uint8_t> file, std::size_t at, std::uint16_t version) {
  using lockgraph::analyzer::DecodedBlock;
  using lockgraph::analyzer::IndexedBlock;
  std::vector<IndexedBlock> index;
  if (!lockgraph::analyzer::IndexStampedBlocks(file, at, &index)) return;
  static DecodedBlock decoded;
  for (const IndexedBlock& b : index) {
    BlockView view;
    if (!lockgraph::analyzer::CheckIndexedBlock(file, b, version, &view)) continue;
    DecodeError err;
    lockgraph::analyzer::DecodeBlock(view, &decoded, &err);
    if (!err.message.empty()) continue;
    if (!decoded.has_seq || (decoded.events > 0) != b.has_events) std::abort();
    if (b.has_events && decoded.first_seq != b.first_seq) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::uint8_t> file(data, size);
  (void)DetectFormat(file);
  // Random bytes rarely carry a valid CRC, so also decode the input as one block's payload:
  // that is what reaches the record decoder.
  if (size > 0 && size <= kMaxBlockPayload) {
    BlockView raw;
    raw.payload = file;
    CheckFastDecoder(raw);
    BlockDecoder dec(raw);
    std::vector<Event> records;
    Event e;
    DecodeError err;
    while (dec.Next(&e, &err)) records.push_back(e);
    if (err.message.empty()) CheckRoundTrip(records, dec.has_seq());
    // The same payload framed as a block with a valid CRC, for the index.
    auto& buf = Scratch();
    std::copy(file.begin(), file.end(), buf.begin() + kBlockHeaderSize);
    CheckIndex(SealBlock(buf.data(), kBlockHeaderSize + size, 0), 0, kBinaryVersion);
  }
  BinaryScanner scan(file);
  FileHeader header;
  DecodeError err;
  if (scan.ReadHeader(&header, &err) == BinaryScanner::HeaderResult::kFatal) return 0;
  CheckIndex(file, scan.offset(), scan.version());
  BlockView block;
  std::vector<Event> events;
  for (int guard = 0; guard < 1 << 20; ++guard) {
    auto r = scan.NextBlock(&block, &err);
    if (r == BinaryScanner::Next::kEnd) break;
    if (r == BinaryScanner::Next::kError) continue;
    BlockDecoder dec(block);
    Event e;
    events.clear();
    while (dec.Next(&e, &err)) events.push_back(e);
    if (err.message.empty()) CheckRoundTrip(events, dec.has_seq());
  }
  return 0;
}
