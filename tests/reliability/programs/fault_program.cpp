// Host program for the reliability tests: each scenario is a fault a real program can put the
// shim through (fork with locks held, cancellation, signal storms, unwinding, huge lock counts).
// It knows nothing about lockgraph except, for the C-API scenarios, the lg_ symbols it looks up
// at run time; it prints a deterministic result so a test can compare it with a native run.
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

pthread_mutex_t lock_a = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t lock_b = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t lock_c = PTHREAD_MUTEX_INITIALIZER;
pthread_mutex_t handler_lock = PTHREAD_MUTEX_INITIALIZER;

void Check(int rc, const char* what) {
  if (rc != 0) {
    std::fprintf(stderr, "fault_program: %s failed: %s\n", what, std::strerror(rc));
    std::exit(3);
  }
}

// Creates, uses and destroys `n` heap mutexes: slow paths in the shim (init, first use, destroy)
// and, under --record, plenty of log records.
void ChurnHeapLocks(int n) {
  for (int i = 0; i < n; ++i) {
    auto* m = static_cast<pthread_mutex_t*>(std::malloc(sizeof(pthread_mutex_t)));
    Check(pthread_mutex_init(m, nullptr), "init");
    Check(pthread_mutex_lock(m), "lock");
    Check(pthread_mutex_unlock(m), "unlock");
    Check(pthread_mutex_destroy(m), "destroy");
    std::free(m);
  }
}

// lock_a -> lock_b here and lock_b -> lock_a there: a real inversion (one thread, two phases).
void Abba() {
  pthread_mutex_lock(&lock_a);
  pthread_mutex_lock(&lock_b);
  pthread_mutex_unlock(&lock_b);
  pthread_mutex_unlock(&lock_a);
  pthread_mutex_lock(&lock_b);
  pthread_mutex_lock(&lock_a);
  pthread_mutex_unlock(&lock_a);
  pthread_mutex_unlock(&lock_b);
}

// --- fork ----------------------------------------------------------------------------------------

// The parent forks while holding lock_a and while another thread holds lock_c; the child, the
// owner of its copy of lock_a, takes lock_b under it and releases both, as a fork server does.
int ForkHeld() {
  std::atomic<bool> holding{false}, release{false};
  std::thread holder([&] {
    pthread_mutex_lock(&lock_c);
    holding = true;
    while (!release) usleep(1000);
    pthread_mutex_unlock(&lock_c);
  });
  while (!holding) usleep(1000);
  pthread_mutex_lock(&lock_a);
  const pid_t pid = fork();
  if (pid == 0) {
    pthread_mutex_lock(&lock_b);
    pthread_mutex_unlock(&lock_b);
    pthread_mutex_unlock(&lock_a);
    ChurnHeapLocks(100);
    std::printf("child ok\n");
    std::fflush(stdout);
    std::exit(0);  // lock_c stays locked (its owner does not exist here): not the child's fault
  }
  pthread_mutex_lock(&lock_b);
  pthread_mutex_unlock(&lock_b);
  pthread_mutex_unlock(&lock_a);
  int status = 0;
  waitpid(pid, &status, 0);
  release = true;
  holder.join();
  std::printf("parent ok, child exit %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  return 0;
}

// Forks many times while two threads lock and unlock in one consistent order, so forks land
// while the other threads are inside the shim's hooks. Every child must run to exit.
int ForkStorm() {
  std::atomic<bool> stop{false};
  auto worker = [&] {
    while (!stop) {
      pthread_mutex_lock(&lock_a);
      pthread_mutex_lock(&lock_b);
      pthread_mutex_unlock(&lock_b);
      pthread_mutex_unlock(&lock_a);
      ChurnHeapLocks(1);
    }
  };
  std::thread t1(worker), t2(worker);
  int ok = 0;
  constexpr int kForks = 40;
  for (int i = 0; i < kForks; ++i) {
    const pid_t pid = fork();
    if (pid == 0) {  // lock_a/lock_b may be held by a thread that is not here: use others
      pthread_mutex_lock(&lock_c);
      ChurnHeapLocks(10);
      pthread_mutex_unlock(&lock_c);
      _exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) ++ok;
  }
  stop = true;
  t1.join();
  t2.join();
  std::printf("children ok: %d/%d\n", ok, kForks);
  return 0;
}

// --- exits ---------------------------------------------------------------------------------------

// A thread that ends while holding a lock: a genuine lifecycle error, reported once.
int ThreadExitHeld() {
  std::thread t([] {
    pthread_mutex_lock(&lock_c);
    pthread_exit(nullptr);
  });
  t.join();
  std::printf("joined\n");
  return 0;
}

// The process exits while threads hold locks (redis and many servers do): not a finding.
int ExitHeld() {
  std::atomic<bool> holding{false};
  std::thread t([&] {
    pthread_mutex_lock(&lock_b);
    holding = true;
    pause();
  });
  t.detach();
  while (!holding) usleep(1000);
  pthread_mutex_lock(&lock_a);
  std::printf("exiting with locks held\n");
  std::fflush(stdout);
  std::exit(0);
}

// --- cancellation --------------------------------------------------------------------------------

pthread_cond_t cond = PTHREAD_COND_INITIALIZER;

void UnlockCleanup(void* m) { pthread_mutex_unlock(static_cast<pthread_mutex_t*>(m)); }

void* WaitForever(void*) {
  pthread_mutex_lock(&lock_a);
  pthread_cleanup_push(UnlockCleanup, &lock_a);
  for (;;) pthread_cond_wait(&cond, &lock_a);  // cancelled here: lock_a is re-taken first
  pthread_cleanup_pop(0);
  return nullptr;
}

void* SleepHolding(void*) {
  pthread_mutex_lock(&lock_b);
  pthread_cleanup_push(UnlockCleanup, &lock_b);
  for (;;) usleep(1000);  // cancelled in usleep with lock_b held
  pthread_cleanup_pop(0);
  return nullptr;
}

// Cancelled threads release their locks in cleanup handlers; the locks stay usable after.
int Cancel() {
  for (int i = 0; i < 20; ++i) {
    pthread_t waiter, sleeper;
    Check(pthread_create(&waiter, nullptr, WaitForever, nullptr), "pthread_create");
    Check(pthread_create(&sleeper, nullptr, SleepHolding, nullptr), "pthread_create");
    usleep(2000);
    pthread_cancel(waiter);
    pthread_cancel(sleeper);
    void* r1 = nullptr;
    void* r2 = nullptr;
    pthread_join(waiter, &r1);
    pthread_join(sleeper, &r2);
    if (r1 != PTHREAD_CANCELED || r2 != PTHREAD_CANCELED) {
      std::printf("not cancelled\n");
      return 1;
    }
    pthread_mutex_lock(&lock_a);  // the same order the threads used: a, then b on its own
    pthread_mutex_lock(&lock_b);
    pthread_mutex_unlock(&lock_b);
    pthread_mutex_unlock(&lock_a);
  }
  std::printf("cancelled 40 threads\n");
  return 0;
}

// --- signals -------------------------------------------------------------------------------------

std::atomic<long> handled{0};

void OnAlarm(int) {
  const int saved = errno;
  pthread_mutex_lock(&handler_lock);  // only ever taken in the handler: consistent
  handled.fetch_add(1, std::memory_order_relaxed);
  pthread_mutex_unlock(&handler_lock);
  errno = saved;
}

// A SIGALRM storm (every 50 us, any thread) while four threads lock, unlock, create and destroy
// locks, so handlers land inside the shim's own hooks. The counts must come out exact.
int SignalStorm() {
  struct sigaction sa {};
  sa.sa_handler = OnAlarm;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGALRM, &sa, nullptr);
  itimerval tv{};
  tv.it_interval.tv_usec = 50;
  tv.it_value.tv_usec = 50;
  setitimer(ITIMER_REAL, &tv, nullptr);
  constexpr int kThreads = 4, kIterations = 30000;
  long counter = 0;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kIterations; ++i) {
        pthread_mutex_lock(&lock_a);
        pthread_mutex_lock(&lock_b);
        ++counter;
        pthread_mutex_unlock(&lock_b);
        pthread_mutex_unlock(&lock_a);
        if (i % 16 == 0) ChurnHeapLocks(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  tv = {};
  setitimer(ITIMER_REAL, &tv, nullptr);
  std::fprintf(stderr, "fault_program: %ld SIGALRM handled\n", handled.load());
  std::printf("counter %ld\n", counter);
  return 0;
}

// --- exceptions ----------------------------------------------------------------------------------

std::mutex mutex_outer, mutex_inner;

int Thrower(int i) {
  std::lock_guard<std::mutex> outer(mutex_outer);
  std::unique_lock<std::mutex> inner(mutex_inner);
  if (i % 3 == 0) throw std::runtime_error("odd");
  inner.unlock();
  if (i % 3 == 1) throw std::out_of_range("one");
  return i;
}

// Exceptions unwind through lock_guard/unique_lock/scoped_lock in two threads; every guard's
// unlock runs during unwinding and the order outer -> inner is always the same.
int Exceptions() {
  std::atomic<long> caught{0}, returned{0};
  auto worker = [&] {
    for (int i = 0; i < 20000; ++i) {
      try {
        returned += Thrower(i);
      } catch (const std::exception&) {
        ++caught;
      }
      try {
        std::scoped_lock both(mutex_outer, mutex_inner);
        if (i % 2) throw 1;
      } catch (int) {
        ++caught;
      }
    }
  };
  std::thread t1(worker), t2(worker);
  t1.join();
  t2.join();
  std::printf("caught %ld, returned %ld\n", caught.load(), returned.load());
  return 0;
}

// --- recording -----------------------------------------------------------------------------------

// An inversion first, then lock traffic until killed (at most 60 s): for kill -9 while recording.
int RecordUntilKilled(const char* ready_file) {
  Abba();
  ChurnHeapLocks(2000);
  if (FILE* f = std::fopen(ready_file, "w")) {
    std::fprintf(f, "%d\n", getpid());
    std::fclose(f);
  }
  const time_t end = time(nullptr) + 60;
  while (time(nullptr) < end) ChurnHeapLocks(1000);
  return 0;
}

// Enough lock traffic to fill several log blocks, then an inversion: for full and unwritable
// log paths, where recording stops and live checking must go on.
int RecordThenAbba() {
  ChurnHeapLocks(20000);
  Abba();
  std::printf("done\n");
  return 0;
}

// --- capacity ------------------------------------------------------------------------------------

// One thread holds `n` locks at once: half from a static array (a class per element), half
// from a heap array (one class, instances nested in one order), released in both orders.
// Twice, in two threads.
// With `statics_only`, every lock is its own class (no same-class instance order to keep).
int HoldMany(int n, bool statics_only) {
  static pthread_mutex_t statics[8192];
  const int ns = statics_only ? n : n / 2, nh = n - ns;
  if (ns > 8192) return 2;
  for (int i = 0; i < ns; ++i) statics[i] = PTHREAD_MUTEX_INITIALIZER;
  std::vector<pthread_mutex_t> heap(nh);
  for (auto& m : heap) Check(pthread_mutex_init(&m, nullptr), "init");
  auto run = [&] {
    for (int round = 0; round < 2; ++round) {
      for (int i = 0; i < ns; ++i) Check(pthread_mutex_lock(&statics[i]), "lock");
      for (int i = 0; i < nh; ++i) Check(pthread_mutex_lock(&heap[i]), "lock");
      if (round == 0) {
        for (int i = nh - 1; i >= 0; --i) pthread_mutex_unlock(&heap[i]);
        for (int i = ns - 1; i >= 0; --i) pthread_mutex_unlock(&statics[i]);
      } else {  // out-of-order release: bottom first
        for (int i = 0; i < ns; ++i) pthread_mutex_unlock(&statics[i]);
        for (int i = 0; i < nh; ++i) pthread_mutex_unlock(&heap[i]);
      }
    }
  };
  std::thread t(run);
  t.join();
  run();
  for (auto& m : heap) pthread_mutex_destroy(&m);
  std::printf("held %d locks at once\n", n);
  return 0;
}

// Millions of short-lived locks: init/lock/unlock/destroy, statically initialised heap mutexes
// that are never destroyed, and mutexes destroyed without ever being seen locked.
int ShortLived(int millions) {
  const int n = millions * 1000000;
  ChurnHeapLocks(n / 2);
  for (int i = 0; i < n / 4; ++i) {
    auto* m = new pthread_mutex_t(PTHREAD_MUTEX_INITIALIZER);
    pthread_mutex_lock(m);
    pthread_mutex_unlock(m);
    delete m;  // never destroyed: the address comes back for the next one
  }
  for (int i = 0; i < n / 4; ++i) {
    pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_destroy(&m);  // never initialised through a call, never locked
  }
  std::printf("%d short-lived locks\n", n);
  return 0;
}

// --- C API capacity ------------------------------------------------------------------------------

struct Api {
  void (*init)(const void*, const char*, const void*, const char*);
  void (*acquire)(const void*, unsigned, unsigned, const void*);
  void (*release)(const void*);
};

bool LoadApi(Api* api) {
  api->init = reinterpret_cast<decltype(api->init)>(dlsym(RTLD_DEFAULT, "lg_lock_init_site"));
  api->acquire = reinterpret_cast<decltype(api->acquire)>(dlsym(RTLD_DEFAULT, "lg_acquire"));
  api->release = reinterpret_cast<decltype(api->release)>(dlsym(RTLD_DEFAULT, "lg_release"));
  return api->init && api->acquire && api->release;
}

// `classes` lock classes (one key each) and about `deps` dependencies among them, all in one
// order (i before j when i < j), so none is a cycle.
int ApiCapacity(int classes, long deps) {
  Api api;
  const bool live = LoadApi(&api);  // natively there is no lockgraph: the same work, no calls
  std::vector<char> keys(classes), locks(classes);
  if (live) {
    for (int i = 0; i < classes; ++i) api.init(&locks[i], nullptr, &keys[i], "capacity");
  }
  const int span = static_cast<int>(deps / 1000);  // 1000 holders, `span` successors each
  long made = 0;
  for (int i = 0; i < 1000 && i < classes; ++i) {
    if (live) api.acquire(&locks[i], 0, 0, nullptr);
    for (int j = i + 1; j <= i + span && j < classes; ++j) {
      if (live) {
        api.acquire(&locks[j], 0, 0, nullptr);
        api.release(&locks[j]);
      }
      ++made;
    }
    if (live) api.release(&locks[i]);
  }
  std::printf("%d classes, %ld dependencies\n", classes, made);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  setvbuf(stdout, nullptr, _IOLBF, 0);
  const std::string s = argc > 1 ? argv[1] : "";
  const char* arg = argc > 2 ? argv[2] : "0";
  if (s == "fork-held") return ForkHeld();
  if (s == "fork-storm") return ForkStorm();
  if (s == "thread-exit-held") return ThreadExitHeld();
  if (s == "exit-held") return ExitHeld();
  if (s == "cancel") return Cancel();
  if (s == "signal-storm") return SignalStorm();
  if (s == "exceptions") return Exceptions();
  if (s == "record-until-killed") return RecordUntilKilled(arg);
  if (s == "record-then-abba") return RecordThenAbba();
  if (s == "abba") return Abba(), std::printf("done\n"), 0;
  if (s == "hold-many") return HoldMany(std::atoi(arg), false);
  if (s == "hold-many-static") return HoldMany(std::atoi(arg), true);
  if (s == "short-lived") return ShortLived(std::atoi(arg));
  if (s == "api-capacity") return ApiCapacity(std::atoi(arg), argc > 3 ? std::atol(argv[3]) : 0);
  std::fprintf(stderr, "usage: fault_program SCENARIO [ARG]\n");
  return 2;
}
