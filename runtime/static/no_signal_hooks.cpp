// The signal state of a runtime built without interceptors.cpp: liblockgraph.a (a static program
// has no interposers) and the ThreadSanitizer build of the C-API stress test (TSan interposes the
// same functions). These stand in for the functions the rest of the runtime takes from the
// interposers: no signal has a handler, so every signal context counts as disabled, and no mask
// call is answered on libunwind's behalf (its calls go to libc).
#include "internal.h"
#include "runtime.h"

namespace lockgraph::runtime_internal {

std::uint64_t HandledSignals() { return 0; }
unsigned HandledSignalsGeneration() { return 0; }

ContextId SignalContext(int sig) {
  return static_cast<ContextId>(kFirstNumberedContext + sig - 1);
}

// Keeps the hardirq/softirq state the C API set and marks every signal context disabled.
void ApplySignalState(Runtime* rt, ThreadRecord* record) {
  tls.handled_gen = HandledSignalsGeneration();
  ThreadState& state = *record->state;
  const ContextMask now = state.disabled_contexts();
  ContextMask wanted;
  if (now.Test(kHardirqContext)) wanted.Set(kHardirqContext);
  if (now.Test(kSoftirqContext)) wanted.Set(kSoftirqContext);
  for (int sig = 1; sig <= 64; ++sig) wanted.Set(SignalContext(sig));
  if (wanted == now) return;
  GetEngine(rt).SetDisabledContexts(state, wanted);
}

bool BeginCaptureMask(sigset_t*) { return false; }
void EndCaptureMask(const sigset_t*) {}

}  // namespace lockgraph::runtime_internal
