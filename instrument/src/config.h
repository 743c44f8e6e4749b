// The instrumentation config: which functions lock, unlock, switch interrupts or run as handlers.
#ifndef LOCKGRAPH_INSTRUMENT_CONFIG_H_
#define LOCKGRAPH_INSTRUMENT_CONFIG_H_

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace lockgraph::instrument {

// What a call to a recognised function means to the validator.
enum class Meaning {
  kLock,               // takes the lock
  kUnlock,             // releases it
  kTrylock,            // takes it when it succeeds
  kLockIrq,            // disables hardirqs, then takes the lock (spin_lock_irq)
  kUnlockIrq,          // releases the lock, then enables hardirqs (spin_unlock_irq)
  kLockIrqsave,        // saves the hardirq state, disables, takes the lock (spin_lock_irqsave)
  kUnlockIrqrestore,   // releases the lock, restores the saved state (spin_unlock_irqrestore)
  kLockBh,             // disables softirqs, takes the lock (spin_lock_bh)
  kUnlockBh,           // releases the lock, enables softirqs (spin_unlock_bh)
  kIrqDisable,         // local_irq_disable
  kIrqEnable,          // local_irq_enable
  kIrqSave,            // local_irq_save
  kIrqRestore,         // local_irq_restore
  kSoftirqDisable,     // local_bh_disable
  kSoftirqEnable,      // local_bh_enable
  kHardirqHandler,     // the function's body runs in hardirq context
  kSoftirqHandler,     // the function's body runs in softirq context
  kLockUnlock,         // takes and releases the lock inside (xa_erase, xa_store)
  kLockUnlockIrq,      // the same with hardirqs disabled around it (xa_erase_irq)
  kSetClass,           // moves the lock to the class of a key (lockdep_set_class)
  kLockInit,           // initialises the lock (spin_lock_init): gives it its class
  kLockDestroy,        // ends the lock (mutex_destroy)
};

// Acquisition mode, as the C API's LG_EXCLUSIVE / LG_READ / LG_READ_RECURSIVE.
enum class Mode { kWrite, kRead, kReadRecursive };

// What a trylock returns on success.
enum class Success { kNonzero, kZero };

struct FunctionSpec {
  Meaning meaning = Meaning::kLock;
  Mode mode = Mode::kWrite;
  Success success = Success::kNonzero;
  unsigned lock_arg = 0;  // which argument is the lock (for lock meanings)
  int name_arg = -1;      // lock_init: the argument that names the class, instead of the source
  int subclass_arg = -1;  // lock meanings: the argument holding the subclass (spin_lock_nested)
  int key_arg = -1;       // set_class: the argument pointing to the key object
  std::string origin;     // "file:line" of the config entry, or "built-in"
};

std::string_view MeaningName(Meaning m);
bool MeaningTakesLock(Meaning m);  // lock, unlock, trylock and their irq variants, init, destroy
bool MeaningIsHandler(Meaning m);
const char* ModeFlag(Mode m);      // "LG_EXCLUSIVE", ...

class Config {
 public:
  // Parses the config file at `path`; on error returns false and sets `error` to a one-line
  // message naming the file and line.
  bool Load(const std::string& path, std::string& error);
  // Parses config text (`name` is used in error messages).
  bool Parse(std::string_view text, const std::string& name, std::string& error);
  // Adds the pthread lock functions (pthread_mutex_lock, pthread_rwlock_rdlock, ...), unless the
  // config already names them.
  void AddPthreadFunctions();

  const FunctionSpec* Find(std::string_view function) const;
  const std::map<std::string, FunctionSpec, std::less<>>& functions() const { return functions_; }

 private:
  std::map<std::string, FunctionSpec, std::less<>> functions_;
};

}  // namespace lockgraph::instrument

#endif  // LOCKGRAPH_INSTRUMENT_CONFIG_H_
