// libFuzzer target: the text lock-log reader. Any bytes must parse without a crash, and every
// event parsed must come back unchanged from its canonical text line.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "lockgraph/log_format.h"

using namespace lockgraph::logfmt;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  TextDecoder dec;
  TextDecoder canonical;
  std::vector<Event> out, back;
  DecodeError err;
  std::string line;
  if (!canonical.DecodeLine("lockgraph-text 1", 1, &back, &err)) std::abort();
  std::uint64_t n = 0;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    out.clear();
    dec.DecodeLine(text.substr(pos, nl - pos), ++n, &out, &err);
    for (const Event& e : out) {
      line.clear();
      EncodeTextLine(e, &line);
      line.pop_back();  // '\n'
      back.clear();
      if (!canonical.DecodeLine(line, n, &back, &err)) std::abort();
      if (back.size() != 1 || !SameEvent(back[0], e)) std::abort();
    }
    pos = nl + 1;
  }
  return 0;
}
