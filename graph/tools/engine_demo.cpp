// Engine demo: feeds the engine the list_lru reparenting event sequence (i_pages taken in
// hardirq context; i_pages -> shadow_nodes.xa with IRQs off; shadow_nodes.xa with IRQs on)
// and prints the report. Used by scripts/demo.sh until the runtime and examples are built.
#include <cstdio>
#include <string>

#include "lockgraph/engine.h"

namespace {

class PrintingSink : public lockgraph::FindingSink {
 public:
  void OnFinding(const lockgraph::Finding& f) override {
    std::fputs(lockgraph::FormatReport(f, symbolizer_).c_str(), stdout);
    ++count;
  }
  void OnTurnedOff(std::string_view why) override {
    std::fprintf(stderr, "lockgraph: turning off the validator: %.*s\n",
                 static_cast<int>(why.size()), why.data());
  }
  int count = 0;

 private:
  // Call sites are symbolic in this demo: ips index a small table of function names.
  class DemoSymbolizer : public lockgraph::Symbolizer {
   public:
    void AppendCallSite(std::uint64_t ip, std::string* out) const override {
      static const char* kSites[] = {"?", "folio_end_writeback (mm/filemap.c)",
                                     "__filemap_add_folio (mm/filemap.c)",
                                     "workingset_update_node (mm/workingset.c)",
                                     "memcg_reparent_list_lrus (mm/list_lru.c)"};
      *out += ip < 5 ? kSites[ip] : "?";
    }
    void AppendStack(lockgraph::StackId stack, int indent, std::string* out) const override {
      out->append(static_cast<std::size_t>(indent), ' ');
      AppendCallSite(stack, out);
      *out += '\n';
    }
  } symbolizer_;
};

}  // namespace

int main() {
  using namespace lockgraph;
  PrintingSink sink;
  Engine engine({}, &sink);
  const ClassId i_pages = engine.RegisterClass(1, "i_pages");
  const ClassId shadow = engine.RegisterClass(2, "shadow_nodes.xa");
  auto irq = engine.NewThread(1, "irq/24-nvme0q1");
  auto writer = engine.NewThread(2, "kworker/u8:3");
  auto reaper = engine.NewThread(3, "kworker/2:1");
  const LockId mapping = 0x7f00001000, lru = 0x7f00002000;
  engine.InitLock(*writer, mapping, i_pages);
  engine.InitLock(*writer, lru, shadow);

  auto acquire = [&](ThreadState& t, LockId l, std::uint64_t site) {
    AcquireRequest r;
    r.lock = l;
    r.ip = site;
    r.stack = site;
    engine.Acquire(t, r);
  };
  // Writeback completion: i_pages in hardirq context.
  engine.EnterContext(*irq, kHardirqContext);
  acquire(*irq, mapping, 1);
  engine.Release(*irq, mapping);
  engine.ExitContext(*irq, kHardirqContext);
  // Reparenting a dying memcg: xa_erase takes shadow_nodes.xa with IRQs on.
  acquire(*reaper, lru, 4);
  engine.Release(*reaper, lru);
  // Adding a folio: i_pages with IRQs off, then shadow_nodes.xa under it.
  engine.DisableContext(*writer, kHardirqContext);
  acquire(*writer, mapping, 2);
  acquire(*writer, lru, 3);
  engine.Release(*writer, lru);
  engine.Release(*writer, mapping);
  engine.EnableContext(*writer, kHardirqContext);
  return sink.count == 1 ? 0 : 1;  // exactly the one expected report
}
