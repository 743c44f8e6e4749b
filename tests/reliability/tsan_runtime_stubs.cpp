// The ThreadSanitizer build of the C-API stress test links liblockgraph's sources without its
// pthread/signal interposers (TSan interposes the same functions and calls them during its own
// start-up). These stand in for the four functions the rest of the runtime takes from
// interceptors.cpp: no signal has a handler, so every signal context counts as disabled.
#include "internal.h"
#include "runtime.h"

namespace lockgraph::runtime_internal {

std::uint64_t HandledSignals() { return 0; }
unsigned HandledSignalsGeneration() { return 0; }

ContextId SignalContext(int sig) {
  return static_cast<ContextId>(kFirstNumberedContext + sig - 1);
}

void ApplySignalState(Runtime* rt, ThreadRecord* record) {
  tls.handled_gen = HandledSignalsGeneration();
  ThreadState& ts = *record->state;
  const ContextMask current = ts.disabled_contexts();
  ContextMask mask;
  if (current.Test(kHardirqContext)) mask.Set(kHardirqContext);
  if (current.Test(kSoftirqContext)) mask.Set(kSoftirqContext);
  for (int s = 1; s <= 64; ++s) mask.Set(SignalContext(s));
  if (mask == current) return;
  GetEngine(rt).SetDisabledContexts(ts, mask);
}

}  // namespace lockgraph::runtime_internal
