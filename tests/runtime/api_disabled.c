/* Every C API call compiled with LOCKGRAPH_DISABLE: must compile, and do nothing. */
#define LOCKGRAPH_DISABLE 1
#include "lockgraph/lockgraph.h"

static int a, b;
LG_DEFINE_CLASS_KEY(unused_key);

void disabled_calls(void) {
  (void)unused_key;
  lg_lock_init(&a, "a", 0);
  lg_lock_init(&b, "b", 0);
  lg_set_class(&a, "a", 0, 0);
  lg_lock(&a);
  lg_lock(&b);
  lg_unlock(&b);
  lg_unlock(&a);
  lg_lock(&b);
  lg_lock_nested(&a, 1);
  lg_lock_nest_lock(&a, &b);
  lg_read_lock(&a);
  lg_down_read(&a);
  lg_trylock(&a);
  lg_unlock(&a);
  lg_unlock(&b);
  (void)lg_assert_held(&a);
  (void)lg_assert_not_held(&a);
  (void)lg_assert_no_locks_held();
  lg_hardirq_enter();
  lg_hardirq_exit();
  lg_softirq_enter();
  lg_softirq_exit();
  lg_irq_disable();
  lg_irq_enable();
  lg_softirq_disable();
  lg_softirq_enable();
  unsigned long flags = lg_irq_save();
  lg_irq_restore(flags);
  (void)lg_set_option("strict", "1");
  lg_set_report_callback(0, 0);
  (void)lg_findings_count();
  lg_lock_destroy(&a);
}
