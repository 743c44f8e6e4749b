// lockgraph-instrument as a user meets it: what --dry-run lists, what the rewritten file calls,
// its errors, and what instrumented un-annotated programs report when they run.
#include <sys/wait.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace {

namespace fs = std::filesystem;

struct Outcome {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteFile(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

fs::path WorkDir(const std::string& test) {
  fs::path dir = fs::path(LGI_WORK) / test;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// Runs a shell command, capturing stdout and stderr separately.
Outcome RunCommand(const std::string& command, const fs::path& dir) {
  const fs::path out = dir / "stdout.txt";
  const fs::path err = dir / "stderr.txt";
  const std::string full = command + " >'" + out.string() + "' 2>'" + err.string() + "'";
  int status = std::system(full.c_str());
  Outcome o;
  o.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  o.out = ReadFile(out);
  o.err = ReadFile(err);
  return o;
}

std::string Tool() { return LGI_TOOL; }
std::string Fixture(const std::string& name) { return std::string(LGI_FIXTURES) + "/" + name; }

std::string KernelTwinArgs() {
  return " --config " + std::string(LGI_KERNEL_CONF) + " --config " +
         Fixture("list_lru_reparent.conf") + " " + Fixture("list_lru_reparent.c") + " -- -std=gnu11";
}

// The lines of a lockdep report that say what was found: headlines and the dependency and
// lock lines naming classes ("(a) -> (b)"), without addresses, pids or stacks.
std::vector<std::string> Findings(const std::string& report) {
  std::vector<std::string> lines;
  std::istringstream in(report);
  std::string line;
  bool next_is_dependency = false;
  while (std::getline(in, line)) {
    if (line.rfind("WARNING:", 0) == 0 || line.rfind("-> #", 0) == 0 ||
        line.find(" --> ") != std::string::npos || next_is_dependency) {
      lines.push_back(line);
    }
    // " 000055e46dbd2e80 (list_lru_one::lock){....}, at: ...": the class, not the address.
    size_t open = line.find(" (");
    if (line.size() > 1 && line[0] == ' ' && open != std::string::npos && open > 8 &&
        line.find_first_not_of("0123456789abcdef", 1) == open) {
      lines.push_back(line.substr(open + 1, line.find(')', open) - open));
    }
    next_is_dependency = line.find("would create a new lock dependency") != std::string::npos;
  }
  return lines;
}

TEST(InstrumentDryRun, ListsKernelCallsWithDeclarationNamedClasses) {
  fs::path dir = WorkDir("dry_kernel");
  Outcome o = RunCommand(Tool() + " --dry-run" + KernelTwinArgs(), dir);
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.out.find("list_lru_reparent.c:114:3: lock_init 'xa_init' on '&shadow_nodes.xa' "
                       "(class 'shadow_nodes.xa')"),
            std::string::npos)
      << o.out;
  EXPECT_NE(o.out.find("lock_init 'xa_init' on '&mapping.i_pages' (class 'address_space::i_pages')"),
            std::string::npos)
      << o.out;
  EXPECT_NE(o.out.find("lock_irq 'xa_lock_irq' on '&mapping->i_pages' LG_EXCLUSIVE "
                       "(class 'address_space::i_pages')"),
            std::string::npos)
      << o.out;
  // A do { } while (0) macro from the config, reached through another macro.
  EXPECT_NE(o.out.find("lock_irqsave 'xa_lock_irqsave' on '&lru->xa' LG_EXCLUSIVE "
                       "(class 'list_lru::xa')"),
            std::string::npos)
      << o.out;
  EXPECT_NE(o.out.find("lock_unlock 'xa_erase' on '&lru->xa'"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("hardirq_handler 'folio_end_writeback'"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("\n10 instrumentation points\n"), std::string::npos) << o.out;
  EXPECT_EQ(o.err, "");
}

TEST(InstrumentDryRun, ListsStdGuardsAndCapabilityFunctions) {
  fs::path dir = WorkDir("dry_cxx");
  Outcome o = RunCommand(Tool() + " --dry-run " + Fixture("ledger.cpp") + " -- -std=c++20", dir);
  ASSERT_EQ(o.exit_code, 0) << o.err;
  for (const char* expected : {
           "ledger.cpp:43:12: global lock 'ledger_mutex' (class 'ledger_mutex')",
           "ledger.cpp:47:31: guard 'ledger' of 'std::lock_guard' on 'ledger_mutex' "
           "(class 'ledger_mutex')",
           "ledger.cpp:48:13: guard 'guard' of 'SpinGuard' on '&account.balance_lock' "
           "(class 'Account::balance_lock')",
           "ledger.cpp:54:3: lock 'Lock' on '&account.balance_lock' LG_EXCLUSIVE "
           "(class 'Account::balance_lock')",
           "ledger.cpp:55:32: guard 'ledger' of 'std::unique_lock' on 'ledger_mutex'",
           "ledger.cpp:57:3: guard call 'ledger.unlock' on 'ledger_mutex'",
           "ledger.cpp:59:3: unlock 'Unlock' on '&account.balance_lock'",
           "ledger.cpp:71:7: trylock 'TryLock' on '&account.balance_lock'",
       }) {
    EXPECT_NE(o.out.find(expected), std::string::npos) << "missing: " << expected << "\n" << o.out;
  }
  // Lock() inside SpinGuard's constructor is the guard's own work: its callers are instrumented.
  EXPECT_EQ(o.out.find("ledger.cpp:30:"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("\n9 instrumentation points\n"), std::string::npos) << o.out;
}

TEST(InstrumentDryRun, SharedModesStdLockAndGuardVariants) {
  fs::path dir = WorkDir("dry_shared");
  Outcome o = RunCommand(Tool() + " --dry-run " + Fixture("shared_modes.cpp") + " -- -std=c++17", dir);
  ASSERT_EQ(o.exit_code, 0) << o.err;
  for (const char* expected : {
           "shared_modes.cpp:23:39: guard 'reader' of 'std::shared_lock' on 't.rw' "
           "(class 'Table::rw')",
           "shared_modes.cpp:24:3: lock 'ReadLock' on '&t.spin' LG_READ (class 'Table::spin')",
           "shared_modes.cpp:25:3: unlock 'ReadUnlock' on '&t.spin'",
           "shared_modes.cpp:30:3: lock 'std::lock' on 't.a' (class 'Table::a'), 't.b' "
           "(class 'Table::b')",
           "shared_modes.cpp:31:31: guard 'ga' of 'std::lock_guard' on 't.a' (class 'Table::a') "
           "adopted",
           "shared_modes.cpp:33:32: guard 'maybe' of 'std::unique_lock' on 't.a' "
           "(class 'Table::a') tried",
           "shared_modes.cpp:34:3: lock 'std::shared_mutex::lock_shared' on '&t.rw' "
           "LG_READ_RECURSIVE (class 'Table::rw')",
           "shared_modes.cpp:35:3: unlock 'std::shared_mutex::unlock_shared' on '&t.rw'",
       }) {
    EXPECT_NE(o.out.find(expected), std::string::npos) << "missing: " << expected << "\n" << o.out;
  }
  EXPECT_NE(o.out.find("\n9 instrumentation points\n"), std::string::npos) << o.out;
  EXPECT_NE(o.err.find("shared_modes.cpp:36:41: warning: not instrumenting guard 'rec' of "
                       "'std::recursive_mutex': a recursive mutex has no lockdep equivalent"),
            std::string::npos)
      << o.err;
}

TEST(InstrumentRewrite, KeepsTheRealCallsAndWritesOnlyTheOutputDirectory) {
  fs::path dir = WorkDir("rewrite");
  const std::string before = ReadFile(Fixture("list_lru_reparent.c"));
  Outcome o = RunCommand(Tool() + " -o " + (dir / "out").string() + " --root " + LGI_FIXTURES +
                      KernelTwinArgs(),
                  dir);
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(ReadFile(Fixture("list_lru_reparent.c")), before);
  const std::string text = ReadFile(dir / "out" / "list_lru_reparent.c");
  ASSERT_FALSE(text.empty());
  EXPECT_NE(text.find("#include <lockgraph/lockgraph.h>"), std::string::npos);
  EXPECT_NE(text.find("#line 1 \"" + Fixture("list_lru_reparent.c") + "\""), std::string::npos);
  // plain_kernel.h is under --root, a project header: the copy includes its copy.
  EXPECT_NE(text.find("#include \"" +
                      (dir / "out" / "list_lru_reparent.c.lg-headers" / "plain_kernel.h").string() +
                      "\""),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("(lg_irq_disable(), lg_instr_hint_(&mapping->i_pages, "
                      "\"address_space::i_pages\", &lg_key_address_space__i_pages_"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("lg_acquire(&mapping->i_pages, LG_EXCLUSIVE, 0, 0), "
                      "xa_lock_irq(&mapping->i_pages));"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("(lg_release(&mapping->i_pages), lg_irq_enable(), "
                      "xa_unlock_irq(&mapping->i_pages));"),
            std::string::npos)
      << text;
  // A statement macro gets its events in a block with it.
  EXPECT_NE(text.find("{ lg_release(&lru->xa), lg_irq_restore(lg_instr_irq_pop_()); "
                      "xa_unlock_irqrestore(&lru->xa, flags); }"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("lg_lock_init_site(&shadow_nodes.xa, \"shadow_nodes.xa\", "
                      "&lg_key_shadow_nodes_xa_"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("{ __attribute__((cleanup(lg_instr_hardirq_exit_), unused)) int "
                      "lg_instr_hardirq_ = (lg_hardirq_enter(), 0);"),
            std::string::npos)
      << text;

  // Its own output is refused.
  Outcome again = RunCommand(Tool() + " -o " + (dir / "again").string() + " " +
                          (dir / "out" / "list_lru_reparent.c").string() + " -- -std=gnu11",
                      dir);
  EXPECT_EQ(again.exit_code, 1);
  EXPECT_NE(again.err.find("is already lockgraph-instrument output"), std::string::npos) << again.err;
}

TEST(InstrumentErrors, FileThatDoesNotParseGetsTheCompilerDiagnosticAndNoOutput) {
  fs::path dir = WorkDir("parse_error");
  WriteFile(dir / "src" / "broken.c", "int main(void) {\n  return undeclared_thing;\n}\n");
  Outcome o = RunCommand(Tool() + " -o " + (dir / "out").string() + " --root " + (dir / "src").string() +
                      " " + (dir / "src" / "broken.c").string() + " --",
                  dir);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_NE(o.err.find("broken.c:2:10: error: use of undeclared identifier 'undeclared_thing'"),
            std::string::npos)
      << o.err;
  EXPECT_NE(o.err.find("lockgraph-instrument: error: '" + (dir / "src" / "broken.c").string() +
                       "' was not instrumented"),
            std::string::npos)
      << o.err;
  EXPECT_FALSE(fs::exists(dir / "out" / "broken.c"));
}

TEST(InstrumentErrors, RefusesToOverwriteASourceFile) {
  fs::path dir = WorkDir("overwrite");
  const std::string source = "#include <pthread.h>\npthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;\n"
                             "void f(void) { pthread_mutex_lock(&m); pthread_mutex_unlock(&m); }\n";
  WriteFile(dir / "src" / "f.c", source);
  Outcome o = RunCommand(Tool() + " -o " + (dir / "src").string() + " --root " + (dir / "src").string() +
                      " " + (dir / "src" / "f.c").string() + " --",
                  dir);
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_NE(o.err.find("refusing to overwrite source file"), std::string::npos) << o.err;
  EXPECT_EQ(ReadFile(dir / "src" / "f.c"), source);
}

TEST(InstrumentErrors, BadConfigLineIsNamedByFileAndLine) {
  fs::path dir = WorkDir("bad_config");
  WriteFile(dir / "bad.conf", "# comment\nspin_lock = lok\n");
  Outcome o = RunCommand(Tool() + " --dry-run --config " + (dir / "bad.conf").string() + " " +
                      Fixture("list_lru_reparent.c") + " --",
                  dir);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find("lockgraph-instrument: error: " + (dir / "bad.conf").string() +
                       ":2: unknown meaning 'lok' for 'spin_lock'"),
            std::string::npos)
      << o.err;
}

TEST(InstrumentConfig, LaterFilesWinAndAConfigEntryOverridesTheBuiltInPthreadMeaning) {
  fs::path dir = WorkDir("config_order");
  WriteFile(dir / "first.conf", "my_lock = lock\nmy_unlock = unlock\n");
  WriteFile(dir / "second.conf",
            "my_lock = lock mode=read  # later file wins\n"
            "pthread_mutex_lock = trylock success=zero\n");
  WriteFile(dir / "c.c",
            "#include <pthread.h>\n"
            "struct dev { int lock; pthread_mutex_t mu; };\n"
            "void my_lock(int *l);\nvoid my_unlock(int *l);\n"
            "void f(struct dev *d) {\n"
            "  my_lock(&d->lock);\n"
            "  my_unlock(&d->lock);\n"
            "  pthread_mutex_lock(&d->mu);\n"
            "}\n");
  Outcome o = RunCommand(Tool() + " --dry-run --config " + (dir / "first.conf").string() +
                             " --config " + (dir / "second.conf").string() + " " +
                             (dir / "c.c").string() + " --",
                         dir);
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.out.find("c.c:6:3: lock 'my_lock' on '&d->lock' LG_READ (class 'dev::lock')"),
            std::string::npos)
      << o.out;
  EXPECT_NE(o.out.find("c.c:7:3: unlock 'my_unlock' on '&d->lock'"), std::string::npos) << o.out;
  EXPECT_NE(o.out.find("c.c:8:3: trylock 'pthread_mutex_lock' on '&d->mu'"), std::string::npos)
      << o.out;
}

TEST(InstrumentErrors, MissingOutputDirectoryIsAnError) {
  fs::path dir = WorkDir("no_output");
  Outcome o = RunCommand(Tool() + " " + Fixture("ledger.cpp") + " -- -std=c++20", dir);
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_NE(o.err.find("no output directory"), std::string::npos) << o.err;
}

TEST(InstrumentDryRun, PthreadCallsAreRecognisedWithoutAConfig) {
  fs::path dir = WorkDir("pthread");
  WriteFile(dir / "p.c",
            "#include <pthread.h>\n"
            "static pthread_mutex_t a = PTHREAD_MUTEX_INITIALIZER;\n"
            "struct queue { pthread_rwlock_t lock; };\n"
            "int f(struct queue *q) {\n"
            "  pthread_mutex_lock(&a);\n"
            "  pthread_rwlock_rdlock(&q->lock);\n"
            "  pthread_rwlock_unlock(&q->lock);\n"
            "  if (pthread_mutex_trylock(&a) == 0) pthread_mutex_unlock(&a);\n"
            "  return pthread_mutex_unlock(&a);\n"
            "}\n");
  Outcome o = RunCommand(Tool() + " --dry-run " + (dir / "p.c").string() + " --", dir);
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.out.find("p.c:5:3: lock 'pthread_mutex_lock' on '&a' LG_EXCLUSIVE (class 'a')"),
            std::string::npos)
      << o.out;
  EXPECT_NE(o.out.find("p.c:6:3: lock 'pthread_rwlock_rdlock' on '&q->lock' LG_READ_RECURSIVE "
                       "(class 'queue::lock')"),
            std::string::npos)
      << o.out;
  EXPECT_NE(o.out.find("p.c:8:7: trylock 'pthread_mutex_trylock' on '&a'"), std::string::npos)
      << o.out;
  EXPECT_NE(o.out.find("p.c:9:10: unlock 'pthread_mutex_unlock' on '&a'"), std::string::npos)
      << o.out;
}

TEST(InstrumentDryRun, CompileCommandsJsonGivesEachFileItsFlags) {
  fs::path dir = WorkDir("compile_commands");
  WriteFile(dir / "inc" / "queue.h",
            "#include <pthread.h>\nstruct queue { pthread_mutex_t QUEUE_LOCK; int n; };\n");
  WriteFile(dir / "src" / "queue.c",
            "#include \"queue.h\"\n"
            "void push(struct queue *q) {\n"
            "  pthread_mutex_lock(&q->QUEUE_LOCK);\n"
            "  q->n++;\n"
            "  pthread_mutex_unlock(&q->QUEUE_LOCK);\n"
            "}\n");
  // Without the database's -I and -D the file does not parse.
  WriteFile(dir / "build" / "compile_commands.json",
            "[{\"directory\": \"" + (dir / "build").string() + "\", \"file\": \"" +
                (dir / "src" / "queue.c").string() + "\", \"command\": \"cc -c -I" +
                (dir / "inc").string() + " -DQUEUE_LOCK=lock -o queue.o " +
                (dir / "src" / "queue.c").string() + "\"}]\n");
  Outcome o = RunCommand(Tool() + " --dry-run -p " + (dir / "build").string() + " " +
                             (dir / "src" / "queue.c").string(),
                         dir);
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.out.find("queue.c:3:3: lock 'pthread_mutex_lock' on '&q->QUEUE_LOCK' LG_EXCLUSIVE "
                       "(class 'queue::lock')"),
            std::string::npos)
      << o.out;
  EXPECT_NE(o.out.find("\n2 instrumentation points\n"), std::string::npos) << o.out;
}

#ifdef LGI_LIST_LRU_REPARENT
TEST(InstrumentedKernelTwin, ListLruReparentReportsHardirqSafeToUnsafeOrder) {
  fs::path dir = WorkDir("run_list_lru");
  Outcome o = RunCommand(std::string("'") + LGI_LIST_LRU_REPARENT + "'", dir);
  EXPECT_NE(o.out.find("list_lru_reparent: done"), std::string::npos);
  EXPECT_NE(o.err.find("WARNING: HARDIRQ-safe -> HARDIRQ-unsafe lock order detected"),
            std::string::npos)
      << o.err;
  EXPECT_NE(o.err.find(" (address_space::i_pages) -> (shadow_nodes.xa)"), std::string::npos)
      << o.err;
  // Line numbers are the original source's, not the instrumented copy's.
  EXPECT_NE(o.err.find("(address_space::i_pages){-...}, at: filemap_add_folio"), std::string::npos)
      << o.err;
  EXPECT_NE(o.err.find(" (list_lru_reparent.c:78)"), std::string::npos) << o.err;
}

TEST(InstrumentedKernelTwin, FixedListLruReparentIsSilent) {
  fs::path dir = WorkDir("run_list_lru_fixed");
  Outcome o = RunCommand(std::string("'") + LGI_LIST_LRU_REPARENT_FIXED + "'", dir);
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.out.find("list_lru_reparent_fixed: done"), std::string::npos);
  EXPECT_EQ(o.err.find("WARNING:"), std::string::npos) << o.err;
}
#endif

// The twin and the hand-annotated example must find the same things about the same classes.
void ExpectSameFindings(const std::string& twin_path, const std::string& annotated_path,
                        const std::string& test) {
  fs::path dir = WorkDir(test);
  Outcome twin = RunCommand("'" + twin_path + "'", dir);
  Outcome annotated = RunCommand("'" + annotated_path + "'", dir);
  std::vector<std::string> expected = Findings(annotated.err);
  ASSERT_FALSE(expected.empty()) << annotated.err;
  EXPECT_EQ(Findings(twin.err), expected) << "twin:\n" << twin.err << "\nannotated:\n" << annotated.err;
}

#if defined(LGI_LIST_LRU_REPARENT) && defined(LGI_EXAMPLE_LIST_LRU_REPARENT)
TEST(InstrumentedKernelTwin, ListLruReparentReportsWhatTheHandAnnotatedExampleReports) {
  ExpectSameFindings(LGI_LIST_LRU_REPARENT, LGI_EXAMPLE_LIST_LRU_REPARENT, "compare_list_lru");
}
#endif

#ifdef LGI_SLUB_FLUSH_HOTPLUG
TEST(InstrumentedKernelTwin, SlubFlushHotplugReportsTheFiveLockCycle) {
  fs::path dir = WorkDir("run_slub");
  Outcome o = RunCommand(std::string("'") + LGI_SLUB_FLUSH_HOTPLUG + "'", dir);
  EXPECT_NE(o.out.find("slub_flush_hotplug: done"), std::string::npos);
  EXPECT_NE(o.err.find("WARNING: possible circular locking dependency detected"), std::string::npos)
      << o.err;
  EXPECT_NE(o.err.find("flush_lock --> cpu_hotplug_lock --> pcp_batch_high_lock --> "
                       "memory_chain.rwsem --> slab_mutex"),
            std::string::npos)
      << o.err;
}

TEST(InstrumentedKernelTwin, FixedSlubFlushHotplugIsSilent) {
  fs::path dir = WorkDir("run_slub_fixed");
  Outcome o = RunCommand(std::string("'") + LGI_SLUB_FLUSH_HOTPLUG_FIXED + "'", dir);
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.out.find("slub_flush_hotplug_fixed: done"), std::string::npos);
  EXPECT_EQ(o.err.find("WARNING:"), std::string::npos) << o.err;
}
#endif

#ifdef LGI_ZSWAP_MEMCG_OFFLINE
TEST(InstrumentedKernelTwin, ZswapMemcgOfflineReportsUseOfDestroyedLock) {
  fs::path dir = WorkDir("run_zswap");
  Outcome o = RunCommand(std::string("'") + LGI_ZSWAP_MEMCG_OFFLINE + "'", dir);
  EXPECT_NE(o.out.find("zswap_memcg_offline: done"), std::string::npos);
  EXPECT_NE(o.err.find("WARNING: use of destroyed lock detected!"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find(" (list_lru_one::lock){"), std::string::npos) << o.err;
}

TEST(InstrumentedKernelTwin, FixedZswapMemcgOfflineIsSilent) {
  fs::path dir = WorkDir("run_zswap_fixed");
  Outcome o = RunCommand(std::string("'") + LGI_ZSWAP_MEMCG_OFFLINE_FIXED + "'", dir);
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.out.find("zswap_memcg_offline_fixed: done"), std::string::npos);
  EXPECT_EQ(o.err.find("WARNING:"), std::string::npos) << o.err;
}
#endif

#if defined(LGI_ZSWAP_MEMCG_OFFLINE) && defined(LGI_EXAMPLE_ZSWAP_MEMCG_OFFLINE)
TEST(InstrumentedKernelTwin, ZswapMemcgOfflineReportsWhatTheHandAnnotatedExampleReports) {
  ExpectSameFindings(LGI_ZSWAP_MEMCG_OFFLINE, LGI_EXAMPLE_ZSWAP_MEMCG_OFFLINE, "compare_zswap");
}
#endif

#ifdef LGI_THP_DEFERRED_SPLIT
TEST(InstrumentedKernelTwin, ThpDeferredSplitReportsInconsistentStateOfTheSharedClass) {
  fs::path dir = WorkDir("run_thp");
  Outcome o = RunCommand(std::string("'") + LGI_THP_DEFERRED_SPLIT + "'", dir);
  EXPECT_NE(o.out.find("thp_deferred_split: done"), std::string::npos);
  EXPECT_NE(o.err.find("WARNING: inconsistent lock state"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("inconsistent {IN-HARDIRQ-W} -> {HARDIRQ-ON-W} usage."), std::string::npos)
      << o.err;
  EXPECT_NE(o.err.find(" (list_lru_node::lock){"), std::string::npos) << o.err;
}

// The fix gives the deferred split list its own class with lockdep_set_class_and_name(), which
// the tool turns into lg_set_class().
TEST(InstrumentedKernelTwin, FixedThpDeferredSplitIsSilent) {
  fs::path dir = WorkDir("run_thp_fixed");
  Outcome o = RunCommand(std::string("'") + LGI_THP_DEFERRED_SPLIT_FIXED + "'", dir);
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.out.find("thp_deferred_split_fixed: done"), std::string::npos);
  EXPECT_EQ(o.err.find("WARNING:"), std::string::npos) << o.err;
}
#endif

#if defined(LGI_THP_DEFERRED_SPLIT) && defined(LGI_EXAMPLE_THP_DEFERRED_SPLIT)
TEST(InstrumentedKernelTwin, ThpDeferredSplitReportsWhatTheHandAnnotatedExampleReports) {
  ExpectSameFindings(LGI_THP_DEFERRED_SPLIT, LGI_EXAMPLE_THP_DEFERRED_SPLIT, "compare_thp");
}
#endif

#if defined(LGI_SLUB_FLUSH_HOTPLUG) && defined(LGI_EXAMPLE_SLUB_FLUSH_HOTPLUG)
TEST(InstrumentedKernelTwin, SlubFlushHotplugReportsWhatTheHandAnnotatedExampleReports) {
  ExpectSameFindings(LGI_SLUB_FLUSH_HOTPLUG, LGI_EXAMPLE_SLUB_FLUSH_HOTPLUG, "compare_slub");
}
#endif

#ifdef LGI_LEDGER
TEST(InstrumentedCxxProgram, StdMutexAndCapabilityLocksFormACycle) {
  fs::path dir = WorkDir("run_ledger");
  Outcome o = RunCommand(std::string("'") + LGI_LEDGER + "'", dir);
  EXPECT_NE(o.out.find("ledger: "), std::string::npos);
  EXPECT_NE(o.err.find("WARNING: possible circular locking dependency detected"), std::string::npos)
      << o.err;
  EXPECT_NE(o.err.find("(ledger_mutex)"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("(Account::balance_lock)"), std::string::npos) << o.err;
  // The guard's line, not the instrumentation's helper.
  EXPECT_NE(o.err.find("(ledger_mutex){+.+.}, at: Audit(Account&) (ledger.cpp:55)"),
            std::string::npos)
      << o.err;
  // Statically linked C++ runtime: the std::mutex calls are seen only through instrumentation.
  EXPECT_EQ(ReadFile(LGI_LEDGER).find("libstdc++.so"), std::string::npos);
}

TEST(InstrumentedCxxProgram, ConsistentOrderIsSilent) {
  fs::path dir = WorkDir("run_ledger_fixed");
  Outcome o = RunCommand(std::string("'") + LGI_LEDGER_FIXED + "'", dir);
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(o.err.find("WARNING:"), std::string::npos) << o.err;
}
#endif

// ---- project headers: lock helpers in inline functions of a header ---------------------------

std::string JournalArgs() {
  return " --root " + std::string(LGI_FIXTURES) + " " + Fixture("journal.cpp") + " -- -std=c++17 -I" +
         Fixture("include");
}

TEST(InstrumentHeaders, DryRunListsLockCallsInProjectHeaders) {
  fs::path dir = WorkDir("dry_headers");
  Outcome o = RunCommand(Tool() + " --dry-run" + JournalArgs(), dir);
  ASSERT_EQ(o.exit_code, 0) << o.err;
  for (const char* expected : {
           "include/journal.h:19:31: guard 'hold' of 'std::lock_guard' on 'j.mu' "
           "(class 'Journal::mu')",
           "include/journal.h:25:3: lock 'pthread_mutex_lock' on '&j->flush_lock' LG_EXCLUSIVE "
           "(class 'Journal::flush_lock')",
           "include/journal.h:27:3: lock 'std::mutex::lock' on '&j->mu' LG_EXCLUSIVE "
           "(class 'Journal::mu')",
           "include/journal.h:38:32: guard 'hold' of 'std::unique_lock' on 'j.mu' "
           "(class 'Journal::mu')",
           "include/journal.h:39:3: lock 'pthread_mutex_lock' on '&j.flush_lock' LG_EXCLUSIVE "
           "(class 'Journal::flush_lock')",
       }) {
    EXPECT_NE(o.out.find(expected), std::string::npos) << "missing: " << expected << "\n" << o.out;
  }
  // <mutex> and <pthread.h> are system headers: nothing in them is listed.
  EXPECT_EQ(o.out.find("/usr/"), std::string::npos) << o.out;

  // --headers=false: the main file only, which takes no lock itself.
  Outcome main_only = RunCommand(Tool() + " --dry-run --headers=false" + JournalArgs(), dir);
  ASSERT_EQ(main_only.exit_code, 0) << main_only.err;
  EXPECT_EQ(main_only.out, "0 instrumentation points\n");
}

TEST(InstrumentHeaders, WritesHeaderCopiesTheSourceCopyIncludesAndNeverTheUsersHeader) {
  fs::path dir = WorkDir("write_headers");
  const std::string header_before = ReadFile(Fixture("include/journal.h"));
  const fs::path out = dir / "out";
  Outcome o = RunCommand(Tool() + " -o " + out.string() + " --depfile " + (dir / "journal.d").string() +
                             JournalArgs(),
                         dir);
  ASSERT_EQ(o.exit_code, 0) << o.err;
  EXPECT_EQ(ReadFile(Fixture("include/journal.h")), header_before);
  const fs::path copy = out / "journal.cpp.lg-headers" / "include" / "journal.h";
  const std::string source = ReadFile(out / "journal.cpp");
  EXPECT_NE(source.find("#include \"" + copy.string() + "\""), std::string::npos) << source;
  const std::string header = ReadFile(copy);
  ASSERT_FALSE(header.empty());
  EXPECT_NE(header.find("#line 1 \"" + Fixture("include/journal.h") + "\""), std::string::npos)
      << header;
  EXPECT_NE(header.find("lg_acquire(&j->flush_lock, LG_EXCLUSIVE, 0, 0), "
                        "pthread_mutex_lock(&j->flush_lock)"),
            std::string::npos)
      << header;
  // The keys and helpers the header's code uses are defined once, in the source's copy.
  EXPECT_NE(source.find("lg_key_Journal__flush_lock_"), std::string::npos) << source;
  EXPECT_EQ(header.find("lg_class_key lg_key_"), std::string::npos) << header;
  // Only the project header is copied: the system headers stay where they are.
  size_t files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(out)) files += entry.is_regular_file();
  EXPECT_EQ(files, 2u);
  // The depfile names the source and the header it read, for the build to remake the copy.
  const std::string deps = ReadFile(dir / "journal.d");
  EXPECT_EQ(deps.rfind((out / "journal.cpp").string() + ":", 0), 0u) << deps;
  EXPECT_NE(deps.find(Fixture("journal.cpp")), std::string::npos) << deps;
  EXPECT_NE(deps.find(Fixture("include/journal.h")), std::string::npos) << deps;
}

#ifdef LGI_JOURNAL
TEST(InstrumentHeaders, LocksTakenOnlyInHeaderInlineFunctionsAreReported) {
  fs::path dir = WorkDir("run_journal");
  Outcome o = RunCommand(std::string("env LOCKGRAPH_OPTIONS=exitcode=42 '") + LGI_JOURNAL + "'", dir);
  EXPECT_EQ(o.exit_code, 42) << o.err;
  EXPECT_NE(o.out.find("journal: 1 flushed"), std::string::npos) << o.out;
  EXPECT_NE(o.err.find("WARNING: possible circular locking dependency detected"), std::string::npos)
      << o.err;
  EXPECT_NE(o.err.find("(Journal::flush_lock)"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("(Journal::mu)"), std::string::npos) << o.err;
  // Stacks point into the original header.
  EXPECT_NE(o.err.find("(journal.h:39)"), std::string::npos) << o.err;
}

TEST(InstrumentHeaders, FixedJournalIsSilent) {
  fs::path dir = WorkDir("run_journal_fixed");
  Outcome o = RunCommand(std::string("'") + LGI_JOURNAL_FIXED + "'", dir);
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.out.find("journal: 1 flushed"), std::string::npos) << o.out;
  EXPECT_EQ(o.err, "");
}
#endif

#ifdef LGI_TRYLOCK_SITE
// The lock a trylock took is held "at:" the user's trylock line (the helper the tool writes is
// inlined there and used to be named instead: `lg_instr_try_zero_ (<lockgraph-instrument>:25)`).
TEST(InstrumentedTrylock, HeldLockIsReportedAtTheUsersTrylockLine) {
  fs::path dir = WorkDir("run_trylock_site");
  Outcome o = RunCommand(std::string("env LOCKGRAPH_OPTIONS=exitcode=42 '") + LGI_TRYLOCK_SITE + "'",
                         dir);
  EXPECT_EQ(o.exit_code, 42) << o.err;
  EXPECT_NE(o.out.find("trylock_site: done"), std::string::npos) << o.out;
  EXPECT_NE(o.err.find("WARNING: possible circular locking dependency detected"), std::string::npos)
      << o.err;
  EXPECT_NE(o.err.find("(alpha){+.+.} (trylock), at: main (trylock_site.c:24)"), std::string::npos)
      << o.err;
  EXPECT_EQ(o.err.find("<lockgraph-instrument>"), std::string::npos) << o.err;
}
#endif

#if defined(LGI_BANK_STATIC) || defined(LGI_PACKAGE_PROJECT)
// True when the ELF file has a program interpreter (a dynamic loader that could preload the shim).
bool HasInterpreter(const std::string& path) {
  const std::string elf = ReadFile(path);
  if (elf.size() < 64 || elf.compare(0, 4, "\x7f" "ELF") != 0 || elf[4] != 2) return true;
  auto u64 = [&](size_t at) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = v << 8 | static_cast<unsigned char>(elf[at + i]);
    return v;
  };
  auto u16 = [&](size_t at) {
    return static_cast<unsigned>(static_cast<unsigned char>(elf[at]) |
                                 static_cast<unsigned char>(elf[at + 1]) << 8);
  };
  const std::uint64_t phoff = u64(32);
  const unsigned phentsize = u16(54);
  const unsigned phnum = u16(56);
  for (unsigned i = 0; i < phnum; ++i) {
    const size_t at = phoff + static_cast<size_t>(i) * phentsize;
    if (at + 4 > elf.size()) return true;
    if (elf[at] == 3 && elf[at + 1] == 0 && elf[at + 2] == 0 && elf[at + 3] == 0) return true;
  }
  return false;
}
#endif

#ifdef LGI_BANK_STATIC
TEST(InstrumentedStaticProgram, IsFullyStaticallyLinked) {
  fs::path dir = WorkDir("static_linkage");
  EXPECT_FALSE(HasInterpreter(LGI_BANK_STATIC));
  Outcome file = RunCommand(std::string("file -L '") + LGI_BANK_STATIC + "'", dir);
  EXPECT_NE(file.out.find("statically linked"), std::string::npos) << file.out;
  Outcome ldd = RunCommand(std::string("ldd '") + LGI_BANK_STATIC + "'", dir);
  EXPECT_NE(ldd.exit_code, 0);
  EXPECT_NE((ldd.out + ldd.err).find("not a dynamic executable"), std::string::npos)
      << ldd.out << ldd.err;
}

// std::mutex, std guards and a capability-annotated lock, reported through instrumentation alone:
// no LD_PRELOAD (a static program would ignore it anyway), no interposers in the binary.
TEST(InstrumentedStaticProgram, ReportsTheAbbaBetweenAStdMutexMemberAndACapabilityLock) {
  fs::path dir = WorkDir("run_bank_static");
  Outcome o = RunCommand(std::string("env -u LD_PRELOAD LOCKGRAPH_OPTIONS=exitcode=42 '") +
                             LGI_BANK_STATIC + "'",
                         dir);
  EXPECT_EQ(o.exit_code, 42) << o.err;
  EXPECT_NE(o.out.find("bank: total 100"), std::string::npos) << o.out;
  EXPECT_NE(o.err.find("WARNING: possible circular locking dependency detected"), std::string::npos)
      << o.err;
  EXPECT_NE(o.err.find("(Account::mu)"), std::string::npos) << o.err;
  EXPECT_NE(o.err.find("(Registry::lock_)"), std::string::npos) << o.err;
  // Exactly one finding: the scoped_lock of two Account::mu and journal_mutex -> Account::mu are
  // not reported.
  EXPECT_EQ(o.err.find("WARNING:", o.err.find("WARNING:") + 1), std::string::npos) << o.err;
  // The report's stacks name the program's functions and lines (the guard's own line, not the
  // instrumentation's helpers), and none of the runtime's frames.
  EXPECT_NE(o.err.find("(Account::mu){+.+.}, at: Registry::Snapshot() (bank_static.cpp:53)"),
            std::string::npos)
      << o.err;
  EXPECT_NE(o.err.find("Transfer(Account&, Account&, long)+"), std::string::npos) << o.err;
  EXPECT_EQ(o.err.find("lg_acquire"), std::string::npos) << o.err;
  EXPECT_EQ(o.err.find("lockgraph::"), std::string::npos) << o.err;
  EXPECT_EQ(o.err.find("<lockgraph-instrument>"), std::string::npos) << o.err;
  EXPECT_EQ(o.err.find("turning off the validator"), std::string::npos) << o.err;
}

TEST(InstrumentedStaticProgram, ConsistentOrderIsSilent) {
  fs::path dir = WorkDir("run_bank_static_fixed");
  Outcome o = RunCommand(std::string("env -u LD_PRELOAD LOCKGRAPH_OPTIONS=exitcode=42 '") +
                             LGI_BANK_STATIC_FIXED + "'",
                         dir);
  EXPECT_EQ(o.exit_code, 0) << o.err;
  EXPECT_NE(o.out.find("bank: total 100"), std::string::npos) << o.out;
  EXPECT_EQ(o.err, "");
}
#endif

#ifdef LGI_PACKAGE_PROJECT
// An installed lockgraph used as a user would: `cmake --install` into a fresh prefix, then a
// project of its own with find_package(lockgraph CONFIG REQUIRED) and one lockgraph_instrument()
// line per target (tests/instrument/package/), and the same program built by hand through
// pkg-config, dynamically and fully static.
void ExpectOrdersReport(const Outcome& o, const std::string& what) {
  EXPECT_EQ(o.exit_code, 42) << what << "\n" << o.err;
  EXPECT_NE(o.out.find("orders: 3 items"), std::string::npos) << what << "\n" << o.out;
  EXPECT_NE(o.err.find("WARNING: possible circular locking dependency detected"), std::string::npos)
      << what << "\n" << o.err;
  EXPECT_NE(o.err.find("(Inventory::stock_mu)"), std::string::npos) << what << "\n" << o.err;
  EXPECT_NE(o.err.find("(Billing::invoice_mu)"), std::string::npos) << what << "\n" << o.err;
}

TEST(InstrumentPackage, InstalledPackageInstrumentsAConsumerProject) {
  fs::path dir = WorkDir("package");
  const fs::path prefix = dir / "prefix";
  Outcome install = RunCommand("cmake --install '" + std::string(LGI_BUILD_DIR) + "' --prefix '" +
                                   prefix.string() + "'",
                               dir);
  ASSERT_EQ(install.exit_code, 0) << install.out << install.err;
  for (const char* file : {"lib/cmake/lockgraph/lockgraphConfig.cmake",
                           "lib/cmake/lockgraph/lockgraphConfigVersion.cmake",
                           "lib/cmake/lockgraph/lockgraphTargets.cmake",
                           "lib/cmake/lockgraph/LockgraphInstrument.cmake",
                           "lib/pkgconfig/lockgraph.pc", "lib/liblockgraph.a", "lib/liblockgraph.so",
                           "include/lockgraph/lockgraph.h", "bin/lockgraph-instrument",
                           "share/lockgraph/instrument/kernel.conf"}) {
    EXPECT_TRUE(fs::exists(prefix / file)) << file;
  }

  // The consumer project: configured against the prefix only (the tool comes from the package).
  const fs::path build = dir / "consumer";
  Outcome configure = RunCommand("cmake -S '" + std::string(LGI_PACKAGE_PROJECT) + "' -B '" +
                                     build.string() + "' -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo" +
                                     " -DCMAKE_PREFIX_PATH='" + prefix.string() + "'",
                                 dir);
  ASSERT_EQ(configure.exit_code, 0) << configure.out << configure.err;
  Outcome compile = RunCommand("cmake --build '" + build.string() + "' -j 2", dir);
  ASSERT_EQ(compile.exit_code, 0) << compile.out << compile.err;
  EXPECT_NE(compile.out.find("lockgraph-instrument orders.cpp"), std::string::npos) << compile.out;

  const std::string env = "env -u LD_PRELOAD LOCKGRAPH_OPTIONS=exitcode=42 ";
  ExpectOrdersReport(RunCommand(env + "'" + (build / "orders").string() + "'", dir), "cmake");
  EXPECT_FALSE(HasInterpreter((build / "orders_static").string()));
  ExpectOrdersReport(RunCommand(env + "'" + (build / "orders_static").string() + "'", dir),
                     "cmake, -static");

  // pkg-config, on the instrumented copy the build wrote.
  const std::string copy = (build / "lockgraph-instrumented" / "orders" / "orders.cpp").string();
  const std::string pc = "PKG_CONFIG_PATH='" + (prefix / "lib" / "pkgconfig").string() + "' pkg-config ";
  Outcome dynamic = RunCommand("c++ -std=c++17 -g '" + copy + "' -o '" + (dir / "orders_pc").string() +
                                   "' $(" + pc + "--cflags --libs lockgraph) -Wl,-rpath,'" +
                                   (prefix / "lib").string() + "'",
                               dir);
  ASSERT_EQ(dynamic.exit_code, 0) << dynamic.err;
  ExpectOrdersReport(RunCommand(env + "'" + (dir / "orders_pc").string() + "'", dir), "pkg-config");
  Outcome fully_static = RunCommand("c++ -static -std=c++17 -g '" + copy + "' -o '" +
                                        (dir / "orders_pc_static").string() + "' $(" + pc +
                                        "--static --cflags --libs lockgraph)",
                                    dir);
  ASSERT_EQ(fully_static.exit_code, 0) << fully_static.err;
  EXPECT_FALSE(HasInterpreter((dir / "orders_pc_static").string()));
  ExpectOrdersReport(RunCommand(env + "'" + (dir / "orders_pc_static").string() + "'", dir),
                     "pkg-config --static");
}
#endif

}  // namespace
