// libFuzzer target: the binary lock-log reader. Any bytes must decode without a crash, a leak or
// unbounded memory, and every record decoded from a valid block must survive re-encoding.
#include <cstdint>
#include <cstdlib>
#include <vector>

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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::span<const std::uint8_t> file(data, size);
  (void)DetectFormat(file);
  BinaryScanner scan(file);
  FileHeader header;
  DecodeError err;
  if (scan.ReadHeader(&header, &err) == BinaryScanner::HeaderResult::kFatal) {
    // Not a log: also try the blocks on their own, as if a header had been there.
    return 0;
  }
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
