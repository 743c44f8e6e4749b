// Many threads driving the engine through the C API at once: classes created concurrently,
// nested acquisitions in one global order, interrupt contexts, destroy and re-init of locks, and
// one real inversion that must be reported exactly once. Built into the ThreadSanitizer
// sub-build (see CMakeLists.txt), where it checks that the runtime and engine are data-race
// free, and into the main build, where it checks the findings.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "lockgraph/lockgraph.h"

namespace {

constexpr int kThreads = 6;
constexpr int kRounds = 3000;
constexpr int kLevels = 4;

LG_DEFINE_CLASS_KEY(level_keys_0);
LG_DEFINE_CLASS_KEY(level_keys_1);
LG_DEFINE_CLASS_KEY(level_keys_2);
LG_DEFINE_CLASS_KEY(level_keys_3);
LG_DEFINE_CLASS_KEY(irq_key);
LG_DEFINE_CLASS_KEY(inv_a_key);
LG_DEFINE_CLASS_KEY(inv_b_key);

const lg_class_key* const kLevelKeys[kLevels] = {&level_keys_0, &level_keys_1, &level_keys_2,
                                                 &level_keys_3};

std::atomic<int> reports{0};
std::atomic<int> cycle_reports{0};

void OnReport(const char* text, void*) {
  ++reports;
  if (std::string(text).find("possible circular locking dependency detected") !=
      std::string::npos) {
    ++cycle_reports;
  }
}

// Each thread owns one lock per level plus shares one per level with every thread; all are
// taken in level order, the irq lock only with interrupts off or inside the hardirq context.
void Worker(int self, char (*shared)[kLevels], char* irq_lock) {
  char own[kLevels];
  const std::string name = "own" + std::to_string(self);
  for (int l = 0; l < kLevels; ++l) lg_lock_init(&own[l], name.c_str(), kLevelKeys[l]);
  for (int r = 0; r < kRounds; ++r) {
    for (int l = 0; l < kLevels; ++l) {
      lg_lock(l % 2 ? &(*shared)[l] : &own[l]);
    }
    for (int l = kLevels - 1; l >= 0; --l) lg_unlock(l % 2 ? &(*shared)[l] : &own[l]);

    const unsigned long flags = lg_irq_save();
    lg_lock(irq_lock);
    lg_unlock(irq_lock);
    lg_irq_restore(flags);

    lg_hardirq_enter();
    lg_lock(irq_lock);
    lg_unlock(irq_lock);
    lg_hardirq_exit();

    if (r % 64 == 0) {  // lifetime churn: a new instance at the same address
      lg_lock_destroy(&own[0]);
      lg_lock_init(&own[0], name.c_str(), kLevelKeys[0]);
    }
  }
  for (int l = 0; l < kLevels; ++l) lg_lock_destroy(&own[l]);
}

TEST(CApiStress, ConcurrentThreadsReportTheOneRealInversionOnce) {
  lg_set_report_callback(&OnReport, nullptr);
  static char shared[kLevels];
  static char irq_lock;
  static char inv_a, inv_b;
  for (int l = 0; l < kLevels; ++l) lg_lock_init(&shared[l], "shared", kLevelKeys[l]);
  lg_lock_init(&irq_lock, "irq_lock", &irq_key);
  lg_lock_init(&inv_a, "inv_a", &inv_a_key);
  lg_lock_init(&inv_b, "inv_b", &inv_b_key);

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(Worker, t, &shared, &irq_lock);
  // The inversion, from two threads that run one after the other (no real deadlock).
  std::thread ab([] {
    lg_lock(&inv_a);
    lg_lock(&inv_b);
    lg_unlock(&inv_b);
    lg_unlock(&inv_a);
  });
  ab.join();
  std::thread ba([] {
    lg_lock(&inv_b);
    lg_lock(&inv_a);
    lg_unlock(&inv_a);
    lg_unlock(&inv_b);
  });
  ba.join();
  for (auto& t : threads) t.join();

  EXPECT_EQ(cycle_reports.load(), 1);
  EXPECT_EQ(reports.load(), 1);
  EXPECT_EQ(lg_findings_count(), 1ul);
  lg_set_report_callback(nullptr, nullptr);
}

}  // namespace
