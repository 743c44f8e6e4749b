// C++ standard library locks under the shim: std::mutex, recursive_mutex, shared_mutex,
// timed_mutex and condition_variable reach lockgraph through the pthread interposers.
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>

#include "lockgraph/lockgraph.hpp"

namespace {

std::mutex config_mu;     // named globals: classes "config_mu", "stats_mu"
std::mutex stats_mu;
std::recursive_mutex tree_mu;
std::shared_mutex routes_mu;
std::shared_mutex peers_mu;
std::timed_mutex disk_mu;
std::timed_mutex net_mu;

template <typename F>
void OnThread(F f) {
  std::thread t(f);
  t.join();
}

void MutexAbba() {
  { std::scoped_lock a(config_mu); std::lock_guard b(stats_mu); }
  OnThread([] {
    std::lock_guard b(stats_mu);
    std::lock_guard a(config_mu);
  });
}

void MutexOk() {
  { std::lock_guard a(config_mu); std::lock_guard b(stats_mu); }
  OnThread([] {
    std::lock_guard a(config_mu);
    std::lock_guard b(stats_mu);
  });
}

struct Account {
  std::mutex mu;
  long balance = 100;
};

__attribute__((noinline)) void Transfer(Account& from, Account& to, long amount) {
  std::lock_guard a(from.mu);
  std::lock_guard b(to.mu);
  from.balance -= amount;
  to.balance += amount;
}

// Heap std::mutex members: one class per first-acquiring function, instances ordered.
void HeapAbba() {
  auto alice = std::make_unique<Account>();
  auto bob = std::make_unique<Account>();
  Transfer(*alice, *bob, 10);
  OnThread([&] { Transfer(*bob, *alice, 5); });
}

void HeapOk() {
  auto alice = std::make_unique<Account>();
  auto bob = std::make_unique<Account>();
  Transfer(*alice, *bob, 10);
  OnThread([&] { Transfer(*alice, *bob, 5); });
}

void RecursiveOk() {
  std::lock_guard outer(tree_mu);
  std::lock_guard stats(stats_mu);
  std::lock_guard inner(tree_mu);  // owner re-lock: no tree_mu -> stats_mu -> tree_mu cycle
}

void SharedReadReadOk() {
  { std::shared_lock a(routes_mu); std::shared_lock b(peers_mu); }
  OnThread([] {
    std::shared_lock b(peers_mu);
    std::shared_lock a(routes_mu);
  });
}

void SharedWriteInversion() {
  { std::unique_lock a(routes_mu); std::shared_lock b(peers_mu); }
  OnThread([] {
    std::unique_lock b(peers_mu);
    std::shared_lock a(routes_mu);
  });
}

void TimedAbba() {
  {
    std::unique_lock a(disk_mu);
    std::unique_lock b(net_mu, std::chrono::seconds(5));
  }
  OnThread([] {
    std::unique_lock b(net_mu);
    std::unique_lock a(disk_mu, std::chrono::seconds(5));
  });
}

void TimedOk() {
  {
    std::unique_lock a(disk_mu);
    std::unique_lock b(net_mu, std::chrono::seconds(5));
  }
  OnThread([] {
    std::unique_lock a(disk_mu, std::chrono::seconds(5));
    std::unique_lock b(net_mu);
  });
}

std::mutex queue_mu;
std::condition_variable queue_cv;
int queue_items = 0;

void CondvarOk() {
  std::thread producer([] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::lock_guard g(queue_mu);
    ++queue_items;
    queue_cv.notify_one();
  });
  {
    std::unique_lock lock(queue_mu);
    queue_cv.wait(lock, [] { return queue_items > 0; });
    queue_cv.wait_for(lock, std::chrono::milliseconds(1));  // times out: re-takes the mutex
  }
  producer.join();
}

// The annotated wrappers: named classes, RAII guards, a C-API-only lock.
lockgraph::Mutex cache_mu{"cache_mu"};
lockgraph::Mutex index_mu{"index_mu"};

void WrapperAbba() {
  { lockgraph::LockGuard a(cache_mu); lockgraph::LockGuard b(index_mu); }
  OnThread([] {
    lockgraph::LockGuard b(index_mu);
    lockgraph::LockGuard a(cache_mu);
  });
}

void WrapperOk() {
  { lockgraph::LockGuard a(cache_mu); lockgraph::LockGuard b(index_mu); }
  OnThread([] {
    std::scoped_lock both(cache_mu, index_mu);  // Lockable: works with the std algorithms
  });
}

// A lock the shim cannot see (a spin flag), annotated through lockgraph::Annotated.
struct SpinFlag {
  std::atomic_flag flag = ATOMIC_FLAG_INIT;
  void lock() { while (flag.test_and_set(std::memory_order_acquire)) {} }
  void unlock() { flag.clear(std::memory_order_release); }
  bool try_lock() { return !flag.test_and_set(std::memory_order_acquire); }
};
lockgraph::Annotated<SpinFlag> ring_lock{"ring_lock"};

void AnnotatedAbba() {
  { std::lock_guard a(ring_lock); std::lock_guard b(config_mu); }
  OnThread([] {
    std::lock_guard b(config_mu);
    std::lock_guard a(ring_lock);
  });
}

// Locking after static destructors have run must not crash.
struct LateLocker {
  ~LateLocker() {
    static std::mutex late;
    std::lock_guard g(late);
    std::lock_guard h(config_mu);
  }
};
LateLocker late_locker;

struct Case {
  const char* name;
  void (*fn)();
};
const Case kCases[] = {
    {"mutex_abba", MutexAbba},       {"mutex_ok", MutexOk},
    {"heap_abba", HeapAbba},         {"heap_ok", HeapOk},
    {"recursive_ok", RecursiveOk},   {"shared_read_read_ok", SharedReadReadOk},
    {"shared_write_inversion", SharedWriteInversion},
    {"timed_abba", TimedAbba},       {"timed_ok", TimedOk},
    {"condvar_ok", CondvarOk},       {"wrapper_abba", WrapperAbba},
    {"wrapper_ok", WrapperOk},       {"annotated_abba", AnnotatedAbba},
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  for (const Case& c : kCases) {
    if (std::strcmp(c.name, argv[1]) == 0) {
      c.fn();
      std::printf("%s: done\n", argv[1]);
      return 0;
    }
  }
  std::fprintf(stderr, "unknown case %s\n", argv[1]);
  return 2;
}
