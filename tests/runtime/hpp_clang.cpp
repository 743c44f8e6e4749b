// lockgraph.hpp compiled by Clang 14 with -Wthread-safety -Werror: the wrappers' capability
// annotations must check real code, and the program must still report through the shim.
// `runtime_hpp_clang abba|ok`. Built with -DLG_BREAK_LOCKING it must NOT compile (a guarded
// member written without its mutex): tests/runtime/CMakeLists.txt checks clang's message.
#include <cstdio>
#include <cstring>
#include <thread>

#include "lockgraph/lockgraph.hpp"

namespace {

class Ledger {
 public:
  void Post(long amount) LG_EXCLUDES(ledger_mu_, audit_mu_) {
    lockgraph::LockGuard<lockgraph::Mutex> ledger(ledger_mu_);
    balance_ += amount;
    lockgraph::LockGuard<lockgraph::Mutex> audit(audit_mu_);
    ++entries_;
  }
  // Takes the two locks the other way round: the inversion lockgraph must report.
  void Audit() LG_EXCLUDES(ledger_mu_, audit_mu_) {
    lockgraph::LockGuard<lockgraph::Mutex> audit(audit_mu_);
    lockgraph::LockGuard<lockgraph::Mutex> ledger(ledger_mu_);
    checked_ = balance_;
  }
  long Read() LG_EXCLUDES(ledger_mu_) {
    lockgraph::LockGuard<lockgraph::Mutex> ledger(ledger_mu_);
    return balance_;
  }
  long Rate() LG_EXCLUDES(rate_mu_) {
    lockgraph::SharedLockGuard<lockgraph::SharedMutex> read(rate_mu_);
    return rate_;
  }
#ifdef LG_BREAK_LOCKING
  void Broken() { balance_ = 0; }
#endif

 private:
  lockgraph::Mutex ledger_mu_{"ledger_mu"};
  lockgraph::Mutex audit_mu_{"audit_mu"};
  lockgraph::SharedMutex rate_mu_{"rate_mu"};
  long balance_ LG_GUARDED_BY(ledger_mu_) = 0;
  long entries_ LG_GUARDED_BY(audit_mu_) = 0;
  long checked_ LG_GUARDED_BY(audit_mu_) = 0;
  long rate_ LG_GUARDED_BY(rate_mu_) = 3;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  Ledger ledger;
  ledger.Post(5);
  const bool abba = std::strcmp(argv[1], "abba") == 0;
  std::thread t([&ledger, abba] {
    if (abba) ledger.Audit();
    else ledger.Post(1);
  });
  t.join();
  std::printf("%s: balance %ld rate %ld\n", argv[1], ledger.Read(), ledger.Rate());
  return 0;
}
