// Finds what to instrument in one translation unit (AST matchers) and rewrites its main file and
// the project headers it includes (every header outside the system include directories), each
// into a copy: the main file's copy includes the headers' copies.
//
// Every rewrite keeps the user's call and its value: a call `f(x)` becomes `(pre, f(x))` where
// `pre` reports the event before the real call runs (as lockdep's lock_acquire precedes the real
// spin), and a trylock becomes `lg_instr_try_*_(f(x), lock, flags)`, which reports the acquisition
// only when the real call succeeded. Scope-bound events (guards, handler bodies) use a helper
// object declared just before the guard, so every way out of the scope releases.
#include "instrumenter.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>
#include <optional>
#include <set>

#include "clang/AST/ASTContext.h"
#include "clang/AST/Attr.h"
#include "clang/AST/ParentMapContext.h"
#include "clang/AST/RecursiveASTVisitor.h"
#include "clang/Lex/MacroArgs.h"
#include "clang/Lex/MacroInfo.h"
#include "clang/ASTMatchers/ASTMatchFinder.h"
#include "clang/ASTMatchers/ASTMatchers.h"
#include "clang/Frontend/CompilerInstance.h"
#include "clang/Frontend/FrontendActions.h"
#include "clang/Lex/Lexer.h"
#include "clang/Lex/PPCallbacks.h"
#include "clang/Lex/Preprocessor.h"
#include "clang/Rewrite/Core/Rewriter.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

namespace lockgraph::instrument {
namespace {

using namespace clang;
using namespace clang::ast_matchers;

// Marks an instrumented file, so the tool refuses to instrument its own output twice.
constexpr const char* kMarker = "/* lockgraph-instrument: generated";

// Save/restore pairs may nest this deep per thread; deeper saves restore to "enabled".
constexpr int kIrqSaveDepth = 32;

// A lock class as the instrumentation names it: after the declaration of the lock.
struct LockClass {
  std::string name;        // "address_space::i_pages", "dcache_lock", "main::m"
  std::string key;         // symbol of its lg_class_key in the instrumented file
  bool external = false;   // key shared (weak) across files, not static to this one
};

// One instrumentation point, for --dry-run and the summary.
struct Point {
  unsigned offset;
  std::string text;
};

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// A 32-bit FNV-1a hash keeps key symbols of similar names apart ("a::b_c" vs "a_b::c").
std::string KeySymbol(const std::string& name) {
  uint32_t h = 2166136261u;
  std::string sym = "lg_key_";
  for (char c : name) {
    h = (h ^ static_cast<unsigned char>(c)) * 16777619u;
    sym += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
  }
  char hex[16];
  std::snprintf(hex, sizeof hex, "_%08x", h);
  return sym + hex;
}

bool IsSimpleLvalueText(const std::string& s) {
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '.' && c != '-' &&
        c != '>' && c != ':') {
      return false;
    }
  }
  return !s.empty();
}

bool IsStdMutexType(const std::string& qualified) {
  return qualified == "std::mutex" || qualified == "std::timed_mutex" ||
         qualified == "std::shared_mutex" || qualified == "std::shared_timed_mutex";
}

bool IsStdRecursiveMutexType(const std::string& qualified) {
  return qualified == "std::recursive_mutex" || qualified == "std::recursive_timed_mutex";
}

const CXXRecordDecl* RecordOf(QualType t) {
  t = t.getNonReferenceType();
  if (t->isPointerType()) t = t->getPointeeType();
  return t->getAsCXXRecordDecl();
}

std::string RecordName(const RecordDecl* record) {
  if (record->getIdentifier()) return record->getQualifiedNameAsString();
  if (const TypedefNameDecl* td = record->getTypedefNameForAnonDecl()) {
    return td->getQualifiedNameAsString();
  }
  return "(anonymous)";
}

bool HasLockAttrs(const FunctionDecl* fd) {
  return fd->hasAttr<AcquireCapabilityAttr>() || fd->hasAttr<ReleaseCapabilityAttr>() ||
         fd->hasAttr<TryAcquireCapabilityAttr>() || fd->hasAttr<ExclusiveTrylockFunctionAttr>() ||
         fd->hasAttr<SharedTrylockFunctionAttr>();
}

// The C and C++ helpers every instrumented file starts with. They call only the C API.
std::string Prologue(bool cxx, const std::string& original_path, bool keep_interposers) {
  std::string p;
  p += kMarker;
  p += " from " + original_path + "; do not edit */\n";
  p += "#ifdef LOCKGRAPH_DISABLE\n"
       "#error \"lockgraph-instrument output calls the lockgraph runtime; build the original "
       "sources to turn lockgraph off\"\n"
       "#endif\n"
       "#include <lockgraph/lockgraph.h>\n"
       // Helper code is inlined into the instrumented function and attributed to a file name of
       // its own, so report stacks show the user's function and line, never a helper's.
       "#define LG_INSTR_INLINE_ __attribute__((always_inline))\n"
       "#line 1 \"<lockgraph-instrument>\"\n";
  if (cxx) p += "extern \"C\" {\n";
  // The class hint is optional in the runtime: weak, called only when present.
  p += "extern void lg_lock_class_hint(const void *, const char *, const lg_class_key *, "
       "const char *) __attribute__((weak));\n";
  // One save stack per thread shared by every instrumented file (weak definitions merge), so a
  // local_irq_save in one file pairs with the local_irq_restore in another.
  p += "__attribute__((weak, visibility(\"default\"))) __thread unsigned long "
       "lg_instr_irq_saved_[" + std::to_string(kIrqSaveDepth) + "];\n"
       "__attribute__((weak, visibility(\"default\"))) __thread unsigned lg_instr_irq_depth_;\n";
  if (cxx) p += "}\n";
  p += "static inline LG_INSTR_INLINE_ void lg_instr_hint_(const void *lock, const char *name, "
       "const lg_class_key *key, const char *site) {\n"
       "  if (lg_lock_class_hint) lg_lock_class_hint(lock, name, key, site);\n"
       "}\n"
       "static inline LG_INSTR_INLINE_ void lg_instr_irq_push_(unsigned long flags) {\n"
       "  if (lg_instr_irq_depth_ < " + std::to_string(kIrqSaveDepth) +
       ") lg_instr_irq_saved_[lg_instr_irq_depth_] = flags;\n"
       "  ++lg_instr_irq_depth_;\n"
       "}\n"
       "static inline LG_INSTR_INLINE_ unsigned long lg_instr_irq_pop_(void) {\n"
       "  if (lg_instr_irq_depth_ == 0) return 0;\n"
       "  --lg_instr_irq_depth_;\n"
       "  return lg_instr_irq_depth_ < " + std::to_string(kIrqSaveDepth) +
       " ? lg_instr_irq_saved_[lg_instr_irq_depth_] : 0;\n"
       "}\n"
       "static inline LG_INSTR_INLINE_ void lg_instr_hardirq_exit_(int *unused) { (void)unused; lg_hardirq_exit(); }\n"
       "static inline LG_INSTR_INLINE_ void lg_instr_softirq_exit_(int *unused) { (void)unused; lg_softirq_exit(); }\n";
  if (!keep_interposers) {
    // The instrumented calls report every pthread and std lock already; the interposers of a
    // preloaded or linked liblockgraph would report each a second time.
    p += "static void lg_instr_interposers_off_(void) __attribute__((constructor(101)));\n"
         "static void lg_instr_interposers_off_(void) { (void)lg_set_option(\"intercept\", \"0\"); }\n";
  }
  if (cxx) {
    p += "template <class T> static inline LG_INSTR_INLINE_ T lg_instr_try_nz_(T r, const void *lock, unsigned f) {\n"
         "  if (r) lg_acquire(lock, f | LG_TRY, 0, 0);\n"
         "  return r;\n"
         "}\n"
         "template <class T> static inline LG_INSTR_INLINE_ T lg_instr_try_zero_(T r, const void *lock, unsigned f) {\n"
         "  if (r == 0) lg_acquire(lock, f | LG_TRY, 0, 0);\n"
         "  return r;\n"
         "}\n"
         "namespace {\n"
         "// Mirrors one guard's hold on its lock; destroyed after the guard, so it releases last.\n"
         "struct lg_instr_scope_ {\n"
         "  const void *lock_;\n"
         "  unsigned flags_;\n"
         "  bool held_;\n"
         "  LG_INSTR_INLINE_ lg_instr_scope_(const void *lock, unsigned flags, int how)\n"
         "      : lock_(lock), flags_(flags), held_(how == 1) {\n"
         "    if (how == 0) acquire();\n"
         "  }\n"
         "  lg_instr_scope_(const lg_instr_scope_ &) = delete;\n"
         "  lg_instr_scope_ &operator=(const lg_instr_scope_ &) = delete;\n"
         "  LG_INSTR_INLINE_ ~lg_instr_scope_() { release(); }\n"
         "  LG_INSTR_INLINE_ void acquire() { lg_acquire(lock_, flags_, 0, 0); held_ = true; }\n"
         "  LG_INSTR_INLINE_ void release() { if (held_) lg_release(lock_); held_ = false; }\n"
         "  void forget() { held_ = false; }\n"
         "  LG_INSTR_INLINE_ bool took(bool ok) {\n"
         "    if (ok) { lg_acquire(lock_, flags_ | LG_TRY, 0, 0); held_ = true; }\n"
         "    return ok;\n"
         "  }\n"
         "};\n"
         "}  // namespace\n";
  } else {
    p += "static inline LG_INSTR_INLINE_ long lg_instr_try_nz_(long r, const void *lock, unsigned f) {\n"
         "  if (r) lg_acquire(lock, f | LG_TRY, 0, 0);\n"
         "  return r;\n"
         "}\n"
         "static inline LG_INSTR_INLINE_ long lg_instr_try_zero_(long r, const void *lock, unsigned f) {\n"
         "  if (r == 0) lg_acquire(lock, f | LG_TRY, 0, 0);\n"
         "  return r;\n"
         "}\n";
  }
  return p;
}

// An expansion, in the main file or a project header, of a macro the config names
// (spin_lock_irqsave(l, flags)).
struct MacroUse {
  std::string name;
  const FunctionSpec* spec;
  SourceRange range;      // the invocation
  FileID file;            // the file the invocation is written in
  unsigned begin_offset;  // of the invocation in that file
  unsigned end_offset;
  bool statement;         // its body is `do { } while (0)` or a block
  std::vector<std::pair<SourceLocation, SourceLocation>> args;  // first and last token
};

// Finds the expressions a macro's arguments became, to name their lock classes.
class MacroArgFinder : public RecursiveASTVisitor<MacroArgFinder> {
 public:
  using Key = std::pair<unsigned, unsigned>;
  MacroArgFinder(SourceManager& sm, std::map<Key, const Expr*>& wanted) : sm_(sm), wanted_(wanted) {}
  bool VisitExpr(Expr* e) {
    if (!e->getBeginLoc().isMacroID()) return true;
    Key key{sm_.getSpellingLoc(e->getBeginLoc()).getRawEncoding(),
            sm_.getSpellingLoc(e->getEndLoc()).getRawEncoding()};
    auto it = wanted_.find(key);
    if (it != wanted_.end() && !it->second) it->second = e;
    return true;
  }

 private:
  SourceManager& sm_;
  std::map<Key, const Expr*>& wanted_;
};

// Guard kinds the tool mirrors with an lg_instr_scope_.
enum class GuardHow { kAcquire = 0, kAdopt = 1, kDefer = 2, kTry = 3 };

class TuInstrumenter : public MatchFinder::MatchCallback {
 public:
  TuInstrumenter(const Config& config, const Options& options, CompilerInstance& ci)
      : config_(config), options_(options), ci_(ci), sm_(ci.getSourceManager()),
        lo_(ci.getLangOpts()) {
    rewriter_.setSourceMgr(sm_, lo_);
  }

  Rewriter& rewriter() { return rewriter_; }

  void Register(MatchFinder& finder) {
    // Matched outside system headers; run() keeps what is written in a file the tool rewrites.
    finder.addMatcher(callExpr(unless(isExpansionInSystemHeader()),
                               unless(isInTemplateInstantiation()))
                          .bind("call"),
                      this);
    finder.addMatcher(functionDecl(unless(isExpansionInSystemHeader()), isDefinition(),
                                   unless(isInstantiated()))
                          .bind("function"),
                      this);
    finder.addMatcher(varDecl(unless(isExpansionInSystemHeader()), unless(parmVarDecl()),
                              unless(isInstantiated()))
                          .bind("var"),
                      this);
  }

  void run(const MatchFinder::MatchResult& result) override {
    ctx_ = result.Context;
    if (const auto* call = result.Nodes.getNodeAs<CallExpr>("call")) {
      if (Rewritten(call->getBeginLoc())) OnCall(call);
    }
    if (const auto* fn = result.Nodes.getNodeAs<FunctionDecl>("function")) {
      if (Rewritten(fn->getLocation())) OnFunction(fn);
    }
    if (const auto* var = result.Nodes.getNodeAs<VarDecl>("var")) {
      if (Rewritten(var->getLocation())) OnVar(var);
    }
  }

  // Whether the code at `loc` (where it is expanded) is written in a file the tool rewrites: the
  // main file, or the first inclusion of a project header (with --headers).
  bool Rewritten(SourceLocation loc) const {
    if (loc.isInvalid()) return false;
    FileID fid = sm_.getFileID(sm_.getExpansionLoc(loc));
    if (fid == sm_.getMainFileID()) return true;
    auto it = header_ids_.find(fid);
    return it != header_ids_.end() && it->second;
  }

  // A header about to be entered: whether it is a project header the tool copies.
  bool IsProjectHeader(const FileEntry* file, SrcMgr::CharacteristicKind kind) const {
    if (!options_.headers || !file || kind != SrcMgr::C_User) return false;
    llvm::SmallString<256> path(file->getName());
    llvm::sys::fs::make_absolute(path);
    llvm::sys::path::remove_dots(path, true);
    // lockgraph's own headers (<lockgraph/...>) report through the runtime already.
    if (llvm::sys::path::filename(llvm::sys::path::parent_path(path)) == "lockgraph") return false;
    if (options_.header_dirs.empty()) {
      return !options_.root.empty() && path.str().startswith(options_.root + "/");
    }
    for (const std::string& d : options_.header_dirs) {
      if (path.str().startswith(d + "/")) return true;
    }
    return false;
  }

  // The files the output depends on: the main file and every header outside the system
  // directories (for --depfile).
  const std::set<std::string>& Dependencies() const { return dependencies_; }

  // Called when the preprocessor enters a file: the first FileID of each project header is the
  // one rewritten (a header without include guards entered again is the same text).
  void OnEnterFile(FileID fid, SrcMgr::CharacteristicKind kind) {
    if (fid.isInvalid()) return;
    const FileEntry* entry = sm_.getFileEntryForID(fid);
    if (entry && kind == SrcMgr::C_User) {
      llvm::SmallString<256> path(entry->getName());
      llvm::sys::fs::make_absolute(path);
      llvm::sys::path::remove_dots(path, true);
      dependencies_.insert(std::string(path));
    }
    if (fid == sm_.getMainFileID()) return;
    if (!IsProjectHeader(entry, kind)) return;
    const bool first = headers_.emplace(entry, fid).second;
    header_ids_[fid] = first;
  }

  // Where the copy of a project header goes, for the files that include it.
  std::string HeaderCopyPath(const FileEntry* file) const {
    llvm::SmallString<256> path(file->tryGetRealPathName());
    if (path.empty()) {
      path = file->getName();
      llvm::sys::fs::make_absolute(path);
    }
    llvm::sys::path::remove_dots(path, true);
    llvm::StringRef rel(path);
    if (!options_.root.empty() && rel.startswith(options_.root + "/")) {
      rel = rel.drop_front(options_.root.size() + 1);
    } else {
      rel = rel.ltrim('/');
    }
    llvm::SmallString<256> out(header_dir_);
    llvm::sys::path::append(out, rel);
    return std::string(out);
  }

  void SetHeaderDir(const std::string& dir) { header_dir_ = dir; }

  // The rewritten project headers: original path and new text.
  std::vector<std::pair<std::string, std::string>> HeaderCopies() {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& [entry, fid] : headers_) {
      llvm::SmallString<256> original(entry->getName());
      llvm::sys::fs::make_absolute(original);
      llvm::sys::path::remove_dots(original, true);
      std::string text = std::string(kMarker) + " from " + std::string(original) +
                         "; do not edit */\n#line 1 " + Quote(std::string(original)) + "\n";
      if (const RewriteBuffer* buffer = rewriter_.getRewriteBufferFor(fid)) {
        text += std::string(buffer->begin(), buffer->end());
      } else {
        text += sm_.getBufferData(fid).str();
      }
      out.emplace_back(HeaderCopyPath(entry), std::move(text));
    }
    return out;
  }

  // Adds the prologue, the class keys and the global-lock initialiser; returns the new text of
  // the main file, or nothing when it must not be written.
  std::optional<std::string> Finish(const std::string& original_path) {
    FileID main = sm_.getMainFileID();
    StringRef text = sm_.getBufferData(main);
    if (text.contains(kMarker)) {
      Error(sm_.getLocForStartOfFile(main),
            "'" + original_path + "' is already lockgraph-instrument output");
      return std::nullopt;
    }
    std::string head = Prologue(lo_.CPlusPlus, original_path, options_.keep_interposers);
    for (const auto& [symbol, external] : keys_) {
      if (external) {
        head += "__attribute__((weak, visibility(\"default\"))) lg_class_key " + symbol + ";\n";
      } else {
        head += "static lg_class_key " + symbol + ";\n";
      }
    }
    head += "#line 1 " + Quote(original_path) + "\n";
    rewriter_.InsertTextBefore(sm_.getLocForStartOfFile(main), head);
    if (!globals_.empty()) {
      // Globals defined here get their class before main() runs (no init call names them).
      std::string tail = "\n#line 1 \"<lockgraph-instrument>\"\n"
                         "static void lg_instr_init_globals_(void) __attribute__((constructor));\n"
                         "static void lg_instr_init_globals_(void) {\n";
      for (const auto& g : globals_) tail += "  " + g + ";\n";
      tail += "}\n";
      rewriter_.InsertTextAfter(sm_.getLocForEndOfFile(main), tail);
    }
    std::string out;
    llvm::raw_string_ostream os(out);
    rewriter_.getEditBuffer(main).write(os);
    return os.str();
  }

  std::vector<Point>& points() { return points_; }

  // Records an expansion of a config-named macro written in the main file.
  void OnMacro(const Token& name_token, const MacroDefinition& definition, SourceRange range,
               const MacroArgs* args) {
    IdentifierInfo* id = name_token.getIdentifierInfo();
    if (!id || !name_token.getLocation().isFileID() || !Rewritten(name_token.getLocation())) {
      return;
    }
    const FunctionSpec* spec = config_.Find(id->getName());
    if (!spec || MeaningIsHandler(spec->meaning)) return;
    const MacroInfo* info = definition.getMacroInfo();
    if (!info) return;
    MacroUse use;
    use.name = id->getName().str();
    use.spec = spec;
    use.range = range;
    use.file = sm_.getFileID(range.getBegin());
    use.begin_offset = sm_.getFileOffset(range.getBegin());
    use.end_offset = sm_.getFileOffset(range.getEnd()) + 1;
    use.statement = IsStatementMacro(info);
    if (args) {
      for (unsigned i = 0; i < args->getNumMacroArguments(); ++i) {
        const Token* t = args->getUnexpArgument(i);
        SourceLocation first = t->getLocation();
        SourceLocation last = first;
        for (; t->isNot(tok::eof); ++t) last = t->getLocation();
        use.args.emplace_back(first, last);
      }
    }
    macro_uses_.push_back(std::move(use));
  }

  // Whether a macro expands to a statement (`do { } while (0)`, a block), directly or through
  // the macro its body starts with (xa_lock_irqsave -> spin_lock_irqsave -> do ...).
  bool IsStatementMacro(const MacroInfo* info) const {
    for (int depth = 0; info && depth < 16 && info->getNumTokens() > 0; ++depth) {
      const Token& first = info->getReplacementToken(0);
      if (first.is(tok::kw_do) || first.is(tok::l_brace)) return true;
      if (!first.is(tok::identifier)) return false;
      info = ci_.getPreprocessor().getMacroInfo(first.getIdentifierInfo());
    }
    return false;
  }

  // Emits what had to wait for the whole AST: guard method calls and config-named macros.
  void ProcessDeferred() {
    for (const auto& [call, callee] : guard_calls_) OnGuardMethod(call, callee);
    guard_calls_.clear();
    ProcessMacros();
  }

  // Emits the events of the config-named macros, once the AST tells what their arguments are.
  void ProcessMacros() {
    if (macro_uses_.empty()) return;
    ASTContext& ast = ci_.getASTContext();
    ctx_ = &ast;
    std::map<MacroArgFinder::Key, const Expr*> wanted;
    for (const MacroUse& use : macro_uses_) {
      for (const auto& [first, last] : use.args) {
        wanted[{first.getRawEncoding(), last.getRawEncoding()}] = nullptr;
      }
    }
    MacroArgFinder finder(sm_, wanted);
    for (Decl* d : ast.getTranslationUnitDecl()->decls()) {
      if (Rewritten(d->getLocation())) finder.TraverseDecl(d);
    }
    for (const MacroUse& use : macro_uses_) {
      const FunctionSpec& spec = *use.spec;
      std::string lock;
      std::optional<LockClass> cls;
      const FunctionDecl* encl = nullptr;
      if (MeaningTakesLock(spec.meaning)) {
        if (spec.lock_arg >= use.args.size()) {
          Warn(use.range.getBegin(), "not instrumenting macro '" + use.name + "': it has no argument " +
                                         std::to_string(spec.lock_arg) + " (config " + spec.origin + ")");
          continue;
        }
        const auto& [first, last] = use.args[spec.lock_arg];
        lock = Lexer::getSourceText(CharSourceRange::getTokenRange(first, last), sm_, lo_).str();
        auto it = wanted.find({first.getRawEncoding(), last.getRawEncoding()});
        if (it != wanted.end() && it->second) {
          encl = EnclosingFunction(DynTypedNode::create(*it->second));
          if (it->second->HasSideEffects(ast)) {
            Warn(use.range.getBegin(), "not instrumenting macro '" + use.name +
                                           "': its lock argument has side effects");
            continue;
          }
          cls = ClassOfPointer(it->second, encl);
        }
      }
      if (encl && IsLockPrimitive(encl)) continue;
      std::string name_expr;
      if (spec.name_arg >= 0 && static_cast<unsigned>(spec.name_arg) < use.args.size()) {
        const auto& [first, last] = use.args[spec.name_arg];
        name_expr = Lexer::getSourceText(CharSourceRange::getTokenRange(first, last), sm_, lo_).str();
      }
      std::string key_expr;
      if (spec.key_arg >= 0 && static_cast<unsigned>(spec.key_arg) < use.args.size()) {
        const auto& [first, last] = use.args[spec.key_arg];
        key_expr = Lexer::getSourceText(CharSourceRange::getTokenRange(first, last), sm_, lo_).str();
      }
      CallSite site;
      site.loc = use.range.getBegin();
      site.statement = use.statement;
      site.range = CharSourceRange::getTokenRange(use.range);
      if (use.statement) {
        SourceLocation after = Lexer::findLocationAfterToken(use.range.getEnd(), tok::semi, sm_, lo_,
                                                             false);
        if (after.isInvalid()) {
          Warn(use.range.getBegin(), "not instrumenting macro '" + use.name +
                                         "': a statement macro must be followed by ';'");
          continue;
        }
        site.range = CharSourceRange::getCharRange(use.range.getBegin(), after);
      }
      std::string subclass = "0";
      if (spec.subclass_arg >= 0 && static_cast<unsigned>(spec.subclass_arg) < use.args.size()) {
        const auto& [first, last] = use.args[spec.subclass_arg];
        subclass = "(unsigned)(" +
                   Lexer::getSourceText(CharSourceRange::getTokenRange(first, last), sm_, lo_).str() + ")";
      }
      if (!FirstTime(site.loc)) continue;
      EmitAt(site, use.name, spec.meaning, spec.mode, spec.success, lock, cls, name_expr, subclass,
             key_expr);
    }
  }

  // An include of a project header names its instrumented copy; other quoted includes are made
  // absolute: the instrumented copy lives in another directory.
  void OnInclusion(CharSourceRange filename_range, const FileEntry* file, bool angled,
                   SrcMgr::CharacteristicKind kind) {
    if (!file || !Rewritten(filename_range.getBegin())) return;
    if (filename_range.getBegin().isMacroID()) return;
    if (IsProjectHeader(file, kind)) {
      rewriter_.ReplaceText(filename_range, Quote(HeaderCopyPath(file)));
      return;
    }
    if (angled) return;
    llvm::SmallString<256> path(file->tryGetRealPathName());
    if (path.empty()) {
      path = file->getName();
      llvm::sys::fs::make_absolute(path);
    }
    rewriter_.ReplaceText(filename_range, Quote(std::string(path)));
  }

 private:
  // ---- source text helpers -------------------------------------------------------------------

  CharSourceRange FileRange(SourceRange r) const {
    return Lexer::makeFileCharRange(CharSourceRange::getTokenRange(r), sm_, lo_);
  }

  bool Editable(CharSourceRange r) const {
    return r.isValid() && Rewritten(r.getBegin()) &&
           sm_.getFileID(r.getBegin()) == sm_.getFileID(r.getEnd());
  }

  std::string Text(const Expr* e) const {
    CharSourceRange r = FileRange(e->getSourceRange());
    if (r.isValid()) return Lexer::getSourceText(r, sm_, lo_).str();
    std::string s;
    llvm::raw_string_ostream os(s);
    e->printPretty(os, nullptr, PrintingPolicy(lo_));
    return os.str();
  }

  // Text of a pointer to the object `e` designates.
  std::string AddressText(const Expr* object) const {
    std::string t = Text(object);
    if (object->getType()->isPointerType() && !object->isLValue()) return t;
    return IsSimpleLvalueText(t) ? "&" + t : "&(" + t + ")";
  }

  std::string Site(SourceLocation loc) const {
    PresumedLoc p = sm_.getPresumedLoc(sm_.getExpansionLoc(loc));
    std::string file = p.isValid() ? p.getFilename() : "?";
    if (!options_.root.empty() && llvm::StringRef(file).startswith(options_.root + "/")) {
      file = file.substr(options_.root.size() + 1);
    }
    return file + ":" + std::to_string(p.isValid() ? p.getLine() : 0);
  }

  std::string Where(SourceLocation loc) const {
    PresumedLoc p = sm_.getPresumedLoc(sm_.getExpansionLoc(loc));
    if (!p.isValid()) return "?";
    return std::string(p.getFilename()) + ":" + std::to_string(p.getLine()) + ":" +
           std::to_string(p.getColumn());
  }

  void Warn(SourceLocation loc, const std::string& message) {
    llvm::errs() << Where(loc) << ": warning: " << message << "\n";
  }

  void Error(SourceLocation loc, const std::string& message) {
    llvm::errs() << Where(loc) << ": error: " << message << "\n";
  }

  void AddPoint(SourceLocation loc, const std::string& what) {
    SourceLocation e = sm_.getExpansionLoc(loc);
    // Raw encodings order the main file first, then the headers in the order they were entered.
    points_.push_back({e.getRawEncoding(), Where(loc) + ": " + what});
  }

  // True the first time a location is instrumented (template patterns and macro arguments can
  // reach one spot twice).
  bool FirstTime(SourceLocation loc) {
    return handled_.insert(sm_.getExpansionLoc(loc).getRawEncoding()).second;
  }

  // ---- lock classes ------------------------------------------------------------------------

  const FunctionDecl* EnclosingFunction(DynTypedNode node) const {
    for (int depth = 0; depth < 256; ++depth) {
      if (const auto* fd = node.get<FunctionDecl>()) return fd;
      DynTypedNodeList parents = ctx_->getParents(node);
      if (parents.empty()) return nullptr;
      node = parents[0];
    }
    return nullptr;
  }

  std::string FunctionName(const FunctionDecl* fd) const {
    if (!fd) return "(global)";
    if (const auto* m = dyn_cast<CXXMethodDecl>(fd)) {
      return RecordName(m->getParent()) + "::" + fd->getNameAsString();
    }
    return fd->getQualifiedNameAsString();
  }

  LockClass MakeClass(std::string name, bool external) {
    LockClass c;
    c.name = std::move(name);
    c.key = KeySymbol(c.name);
    c.external = external;
    keys_.emplace(c.key, external);
    return c;
  }

  // The class of the lock object designated by lvalue `e`: one class per declaration.
  std::optional<LockClass> ClassOfObject(const Expr* e, const FunctionDecl* encl) {
    e = e->IgnoreParenImpCasts();
    if (const auto* me = dyn_cast<MemberExpr>(e)) {
      if (const auto* fd = dyn_cast<FieldDecl>(me->getMemberDecl())) {
        if (std::optional<LockClass> c = ClassOfGlobalMember(me)) return c;
        return MakeClass(RecordName(fd->getParent()) + "::" + fd->getNameAsString(), true);
      }
      if (const auto* vd = dyn_cast<VarDecl>(me->getMemberDecl())) return ClassOfVar(vd, encl);
      return std::nullopt;
    }
    if (const auto* sub = dyn_cast<ArraySubscriptExpr>(e)) {
      const Expr* base = sub->getBase()->IgnoreParenImpCasts();
      if (base->getType()->isArrayType()) return ClassOfObject(base, encl);
      return std::nullopt;
    }
    if (const auto* ref = dyn_cast<DeclRefExpr>(e)) {
      if (const auto* vd = dyn_cast<VarDecl>(ref->getDecl())) {
        if (vd->getType()->isReferenceType()) return std::nullopt;
        return ClassOfVar(vd, encl);
      }
    }
    return std::nullopt;
  }

  // A member of a named global object, reached without a pointer: "<object>.<field>"
  // (shadow_nodes.xa), so that two global objects of one type keep distinct classes.
  std::optional<LockClass> ClassOfGlobalMember(const MemberExpr* me) {
    std::string path;
    const Expr* e = me;
    while (const auto* m = dyn_cast<MemberExpr>(e)) {
      if (m->isArrow() || !isa<FieldDecl>(m->getMemberDecl())) return std::nullopt;
      path = "." + m->getMemberDecl()->getNameAsString() + path;
      e = m->getBase()->IgnoreParenImpCasts();
    }
    const auto* ref = dyn_cast<DeclRefExpr>(e);
    const auto* vd = ref ? dyn_cast<VarDecl>(ref->getDecl()) : nullptr;
    if (!vd || !vd->hasGlobalStorage() || vd->isStaticLocal() || vd->getType()->isReferenceType()) {
      return std::nullopt;
    }
    return MakeClass(vd->getQualifiedNameAsString() + path, vd->isExternallyVisible());
  }

  std::optional<LockClass> ClassOfVar(const VarDecl* vd, const FunctionDecl* encl) {
    if (vd->hasGlobalStorage() && !vd->isStaticLocal()) {
      LockClass c = MakeClass(vd->getQualifiedNameAsString(), vd->isExternallyVisible());
      NoteGlobal(vd, c);
      return c;
    }
    const auto* owner = dyn_cast_or_null<FunctionDecl>(vd->getParentFunctionOrMethod());
    return MakeClass(FunctionName(owner ? owner : encl) + "::" + vd->getNameAsString(), false);
  }

  // The class of the lock a pointer expression points to, when it names it (`&x`, `&p->f`).
  std::optional<LockClass> ClassOfPointer(const Expr* e, const FunctionDecl* encl) {
    e = e->IgnoreParenImpCasts();
    if (const auto* uo = dyn_cast<UnaryOperator>(e)) {
      if (uo->getOpcode() == UO_AddrOf) return ClassOfObject(uo->getSubExpr(), encl);
    }
    return std::nullopt;
  }

  // A global lock defined in this file is initialised at startup with its class.
  void NoteGlobal(const VarDecl* vd, const LockClass& c) {
    const VarDecl* def = vd->getDefinition();
    // Defined in this translation unit (a static in a header included here counts): no other
    // file defines this object.
    if (!def || def->hasExternalStorage()) return;
    if (!noted_globals_.insert(def).second) return;
    std::string address = "&" + def->getNameAsString();
    if (def->getType()->isArrayType()) return;  // arrays of locks: classed at each acquisition
    globals_.push_back("lg_lock_init_site(" + address + ", " + Quote(c.name) + ", &" + c.key +
                       ", " + Quote(Site(def->getLocation())) + ")");
  }

  std::string Hint(const std::string& lock, const std::optional<LockClass>& c, SourceLocation loc) {
    if (!c) return "";
    return "lg_instr_hint_(" + lock + ", " + Quote(c->name) + ", &" + c->key + ", " +
           Quote(Site(loc)) + "), ";
  }

  static std::string ClassNote(const std::optional<LockClass>& c) {
    return c ? " (class '" + c->name + "')" : " (class from its initialisation)";
  }

  // ---- calls -------------------------------------------------------------------------------

  // Whether the body of `fd` is the implementation of a lock operation: calls inside it are
  // not instrumented (its callers are), or every acquisition would be seen twice.
  bool IsLockPrimitive(const FunctionDecl* fd) const {
    if (!fd) return false;
    if (const FunctionSpec* spec = config_.Find(fd->getName().empty() ? "" : fd->getName())) {
      if (!MeaningIsHandler(spec->meaning)) return true;
    }
    if (options_.capabilities && HasLockAttrs(fd)) return true;
    if (const auto* m = dyn_cast<CXXMethodDecl>(fd)) {
      if (options_.capabilities && m->getParent()->hasAttr<ScopedLockableAttr>()) return true;
      if (options_.capabilities && m->getParent()->hasAttr<CapabilityAttr>()) return true;
    }
    return false;
  }

  // Where a recognised call sits in the main file.
  struct CallSite {
    CharSourceRange range;   // the call's text; for a statement macro, through its ';'
    bool statement = false;  // a `do { } while (0)` macro: events go in a block with it
    SourceLocation loc;
  };

  // Replaces the call's text by `(pre, call)`, or a statement by `{ pre; statement }`.
  void WrapBefore(const CallSite& site, const std::string& pre) {
    rewriter_.InsertTextBefore(site.range.getBegin(), site.statement ? "{ " + pre + "; " : "(" + pre + ", ");
    rewriter_.InsertTextAfter(site.range.getEnd(), site.statement ? " }" : ")");
  }

  // Replaces the call's text by `fn(call, rest)`.
  bool WrapAround(const CallSite& site, const std::string& prefix, const std::string& fn,
                  const std::string& rest) {
    if (site.statement) return false;
    rewriter_.InsertTextBefore(site.range.getBegin(), "(" + prefix + fn + "(");
    rewriter_.InsertTextAfter(site.range.getEnd(), ", " + rest + "))");
    return true;
  }

  // Whether `loc` lies inside the expansion of a macro the config names: its events are
  // emitted once, for the macro.
  bool InConfigMacro(SourceLocation loc) const {
    if (!loc.isMacroID()) return false;
    SourceLocation e = sm_.getExpansionLoc(loc);
    FileID fid = sm_.getFileID(e);
    unsigned offset = sm_.getFileOffset(e);
    for (const MacroUse& use : macro_uses_) {
      if (use.file == fid && offset >= use.begin_offset && offset < use.end_offset) return true;
    }
    return false;
  }

  void OnCall(const CallExpr* call) {
    const FunctionDecl* callee = call->getDirectCallee();
    if (!callee || InConfigMacro(call->getBeginLoc())) return;
    const FunctionDecl* encl = EnclosingFunction(DynTypedNode::create(*call));
    if (IsLockPrimitive(encl)) return;

    // lockgraph's own C++ API (lockgraph.hpp) reports its locks itself.
    if (llvm::StringRef(callee->getQualifiedNameAsString()).startswith("lockgraph::")) return;

    const auto* member_call = dyn_cast<CXXMemberCallExpr>(call);
    if (member_call && IsGuardObject(member_call)) {
      // Guards are matched in no fixed order relative to calls: handled once all are known.
      guard_calls_.emplace_back(member_call, callee);
      return;
    }

    std::string name = callee->getIdentifier() ? callee->getName().str() : "";
    const FunctionSpec* spec = name.empty() ? nullptr : config_.Find(name);
    if (!spec && lo_.CPlusPlus && !name.empty()) spec = config_.Find(callee->getQualifiedNameAsString());
    if (spec && !MeaningIsHandler(spec->meaning)) {
      OnConfigCall(call, name, *spec, encl);
      return;
    }
    if (options_.capabilities && HasLockAttrs(callee)) {
      OnCapabilityCall(call, callee, encl);
      return;
    }
    if (options_.std_locks && lo_.CPlusPlus) {
      if (member_call) {
        OnStdMutexMethod(member_call, callee, encl);
      } else if (name == "lock" && callee->isInStdNamespace() && call->getNumArgs() >= 2) {
        OnStdLock(call, encl);
      }
    }
  }

  // A call through the config (or the built-in pthread list).
  void OnConfigCall(const CallExpr* call, const std::string& name, const FunctionSpec& spec,
                    const FunctionDecl* encl) {
    std::string lock;
    std::optional<LockClass> cls;
    if (MeaningTakesLock(spec.meaning)) {
      if (spec.lock_arg >= call->getNumArgs()) {
        Warn(call->getBeginLoc(), "not instrumenting call to '" + name + "': it has no argument " +
                                      std::to_string(spec.lock_arg) + " (config " + spec.origin + ")");
        return;
      }
      const Expr* arg = call->getArg(spec.lock_arg);
      if (arg->HasSideEffects(*ctx_)) {
        Warn(call->getBeginLoc(), "not instrumenting call to '" + name +
                                      "': its lock argument has side effects");
        return;
      }
      lock = Text(arg);
      cls = ClassOfPointer(arg, encl);
    }
    std::string name_expr;
    if (spec.name_arg >= 0 && static_cast<unsigned>(spec.name_arg) < call->getNumArgs()) {
      name_expr = Text(call->getArg(spec.name_arg));
    }
    std::string key_expr;
    if (spec.key_arg >= 0 && static_cast<unsigned>(spec.key_arg) < call->getNumArgs()) {
      key_expr = Text(call->getArg(spec.key_arg));
    }
    std::string subclass = "0";
    if (spec.subclass_arg >= 0 && static_cast<unsigned>(spec.subclass_arg) < call->getNumArgs()) {
      const Expr* arg = call->getArg(spec.subclass_arg);
      if (arg->HasSideEffects(*ctx_)) {
        Warn(call->getBeginLoc(), "not instrumenting call to '" + name +
                                      "': its subclass argument has side effects");
        return;
      }
      subclass = "(unsigned)(" + Text(arg) + ")";
    }
    EmitLockCall(call, name, spec.meaning, spec.mode, spec.success, lock, cls, name_expr, subclass,
                 key_expr);
  }

  // Emits the rewrite for one recognised call. `lock` is the text of a pointer to the lock.
  void EmitLockCall(const CallExpr* call, const std::string& name, Meaning meaning, Mode mode,
                    Success success, const std::string& lock, const std::optional<LockClass>& cls,
                    const std::string& name_expr = "", const std::string& subclass = "0",
                    const std::string& key_expr = "") {
    CharSourceRange r = FileRange(call->getSourceRange());
    if (!Editable(r)) {
      Warn(call->getBeginLoc(), "not instrumenting call to '" + name +
                                    "': it is inside a macro body; name the macro in the config");
      return;
    }
    if (!FirstTime(r.getBegin())) return;
    EmitAt({r, false, call->getBeginLoc()}, name, meaning, mode, success, lock, cls, name_expr,
           subclass, key_expr);
  }

  // Emits the events of one recognised call or macro. `lock` is the text of a pointer to the
  // lock; `name_expr`, if not empty, the C expression naming a lock_init's class.
  void EmitAt(const CallSite& r, const std::string& name, Meaning meaning, Mode mode,
              Success success, const std::string& lock, const std::optional<LockClass>& cls,
              const std::string& name_expr, const std::string& subclass = "0",
              const std::string& key_expr = "") {
    const SourceLocation loc = r.loc;
    const std::string flags = ModeFlag(mode);
    const std::string hint = Hint(lock, cls, loc);
    const std::string acquire = "lg_acquire(" + lock + ", " + flags + ", " + subclass + ", 0)";
    const std::string release = "lg_release(" + lock + ")";
    switch (meaning) {
      case Meaning::kLock:
        WrapBefore(r, hint + acquire);
        break;
      case Meaning::kLockIrq:
        WrapBefore(r, "lg_irq_disable(), " + hint + acquire);
        break;
      case Meaning::kLockIrqsave:
        WrapBefore(r, "lg_instr_irq_push_(lg_irq_save()), " + hint + acquire);
        break;
      case Meaning::kLockBh:
        WrapBefore(r, "lg_softirq_disable(), " + hint + acquire);
        break;
      case Meaning::kUnlock:
        WrapBefore(r, release);
        break;
      case Meaning::kUnlockIrq:
        WrapBefore(r, release + ", lg_irq_enable()");
        break;
      case Meaning::kUnlockIrqrestore:
        WrapBefore(r, release + ", lg_irq_restore(lg_instr_irq_pop_())");
        break;
      case Meaning::kUnlockBh:
        WrapBefore(r, release + ", lg_softirq_enable()");
        break;
      case Meaning::kTrylock:
        if (!WrapAround(r, hint,
                        success == Success::kZero ? "lg_instr_try_zero_" : "lg_instr_try_nz_",
                        lock + ", " + flags)) {
          Warn(loc, "not instrumenting '" + name + "': a trylock macro must be an expression");
          return;
        }
        break;
      case Meaning::kLockUnlock:
        WrapBefore(r, hint + acquire + ", " + release);
        break;
      case Meaning::kLockUnlockIrq:
        WrapBefore(r, "lg_irq_disable(), " + hint + acquire + ", " + release + ", lg_irq_enable()");
        break;
      case Meaning::kIrqDisable:
        WrapBefore(r, "lg_irq_disable()");
        break;
      case Meaning::kIrqEnable:
        WrapBefore(r, "lg_irq_enable()");
        break;
      case Meaning::kIrqSave:
        WrapBefore(r, "lg_instr_irq_push_(lg_irq_save())");
        break;
      case Meaning::kIrqRestore:
        WrapBefore(r, "lg_irq_restore(lg_instr_irq_pop_())");
        break;
      case Meaning::kSoftirqDisable:
        WrapBefore(r, "lg_softirq_disable()");
        break;
      case Meaning::kSoftirqEnable:
        WrapBefore(r, "lg_softirq_enable()");
        break;
      case Meaning::kLockInit: {
        // A lock whose declaration is not visible here gets a class of its own init site.
        std::optional<LockClass> c = cls;
        if (!c) {
          LockClass site = MakeClass(Site(loc) + ":" + lock, false);
          site.name = lock;
          c = site;
        }
        std::string class_name = name_expr.empty() ? Quote(c->name) : name_expr;
        WrapBefore(r, "lg_lock_init_site(" + lock + ", " + class_name + ", &" + c->key + ", " +
                          Quote(Site(loc)) + ")");
        AddPoint(loc, std::string(MeaningName(meaning)) + " '" + name + "' on '" + lock +
                          "' (class '" + (name_expr.empty() ? c->name : name_expr) + "')");
        return;
      }
      case Meaning::kLockDestroy:
        WrapBefore(r, "lg_lock_destroy(" + lock + ")");
        break;
      case Meaning::kSetClass: {
        // The user's key object is the class key (its address is what matters); the class is
        // named by name_arg, else after the key expression as lockdep does ("&foo_key" -> foo_key).
        if (key_expr.empty()) {
          Warn(loc, "not instrumenting '" + name + "': it has no key argument");
          return;
        }
        std::string key_name = key_expr;
        if (!key_name.empty() && key_name[0] == '&') key_name = key_name.substr(1);
        const std::string shown = name_expr.empty() ? Quote(key_name) : name_expr;
        WrapBefore(r, "lg_set_class(" + lock + ", " + shown + ", (const lg_class_key *)(" + key_expr +
                          "), 0)");
        AddPoint(loc, "set_class '" + name + "' on '" + lock + "' (class '" +
                          (name_expr.empty() ? key_name : name_expr) + "')");
        return;
      }
      case Meaning::kHardirqHandler:
      case Meaning::kSoftirqHandler:
        return;
    }
    std::string what = std::string(MeaningName(meaning)) + " '" + name + "'";
    if (!lock.empty()) {
      what += " on '" + lock + "'";
      if (meaning != Meaning::kUnlock && meaning != Meaning::kUnlockIrq &&
          meaning != Meaning::kUnlockIrqrestore && meaning != Meaning::kUnlockBh &&
          meaning != Meaning::kLockDestroy) {
        what += std::string(" ") + flags + ClassNote(cls);
        if (subclass != "0") what += " subclass " + subclass;
      }
    }
    AddPoint(loc, what);
  }

  // The lock a capability attribute argument designates at this call: text and class.
  bool CapabilityLock(const CallExpr* call, const FunctionDecl* callee, const Expr* attr_arg,
                      const FunctionDecl* encl, std::string& lock, std::optional<LockClass>& cls) {
    const auto* member_call = dyn_cast<CXXMemberCallExpr>(call);
    const Expr* object = member_call ? member_call->getImplicitObjectArgument() : nullptr;
    bool arrow = false;
    if (member_call) {
      if (const auto* me = dyn_cast<MemberExpr>(member_call->getCallee()->IgnoreParens())) {
        arrow = me->isArrow();
      }
    }
    if (!attr_arg || isa<CXXThisExpr>(attr_arg->IgnoreParenImpCasts())) {
      if (!object || isa<CXXThisExpr>(object->IgnoreParenImpCasts())) {
        if (object && encl) {  // this->Lock() inside a method: the object is *this
          lock = "this";
          return true;
        }
        return false;
      }
      if (arrow) {
        lock = Text(object);
        cls = ClassOfPointer(object, encl);
      } else {
        lock = AddressText(object);
        cls = ClassOfObject(object, encl);
      }
      return true;
    }
    const Expr* a = attr_arg->IgnoreParenImpCasts();
    if (const auto* ref = dyn_cast<DeclRefExpr>(a)) {
      if (const auto* parm = dyn_cast<ParmVarDecl>(ref->getDecl())) {
        unsigned index = parm->getFunctionScopeIndex();
        if (index >= call->getNumArgs()) return false;
        const Expr* arg = call->getArg(index);
        if (arg->HasSideEffects(*ctx_)) return false;
        if (parm->getType()->isPointerType()) {
          lock = Text(arg);
          cls = ClassOfPointer(arg, encl);
        } else {
          lock = AddressText(arg);
          cls = ClassOfObject(arg, encl);
        }
        return true;
      }
      if (const auto* vd = dyn_cast<VarDecl>(ref->getDecl())) {  // a global capability
        if (!vd->hasGlobalStorage()) return false;
        lock = "&" + vd->getQualifiedNameAsString();
        cls = ClassOfVar(vd, encl);
        return true;
      }
    }
    if (const auto* me = dyn_cast<MemberExpr>(a)) {  // a member of the called object: ACQUIRE(mu_)
      const auto* fd = dyn_cast<FieldDecl>(me->getMemberDecl());
      if (!fd || !isa<CXXThisExpr>(me->getBase()->IgnoreParenImpCasts()) || !object) return false;
      std::string base = Text(object);
      if (isa<CXXThisExpr>(object->IgnoreParenImpCasts())) {
        lock = "&this->" + fd->getNameAsString();
      } else {
        lock = "&(" + base + ")" + (arrow ? "->" : ".") + fd->getNameAsString();
      }
      cls = MakeClass(RecordName(fd->getParent()) + "::" + fd->getNameAsString(), true);
      return true;
    }
    return false;
  }

  void OnCapabilityCall(const CallExpr* call, const FunctionDecl* callee, const FunctionDecl* encl) {
    Meaning meaning;
    Mode mode = Mode::kWrite;
    Success success = Success::kNonzero;
    std::vector<const Expr*> args;
    if (const auto* a = callee->getAttr<AcquireCapabilityAttr>()) {
      meaning = Meaning::kLock;
      mode = a->isShared() ? Mode::kRead : Mode::kWrite;
      args.assign(a->args_begin(), a->args_end());
    } else if (const auto* r = callee->getAttr<ReleaseCapabilityAttr>()) {
      meaning = Meaning::kUnlock;
      args.assign(r->args_begin(), r->args_end());
    } else if (const auto* t = callee->getAttr<TryAcquireCapabilityAttr>()) {
      meaning = Meaning::kTrylock;
      mode = t->isShared() ? Mode::kRead : Mode::kWrite;
      success = SuccessOf(t->getSuccessValue());
      args.assign(t->args_begin(), t->args_end());
    } else if (const auto* t = callee->getAttr<ExclusiveTrylockFunctionAttr>()) {
      meaning = Meaning::kTrylock;
      success = SuccessOf(t->getSuccessValue());
      args.assign(t->args_begin(), t->args_end());
    } else if (const auto* t = callee->getAttr<SharedTrylockFunctionAttr>()) {
      meaning = Meaning::kTrylock;
      mode = Mode::kRead;
      success = SuccessOf(t->getSuccessValue());
      args.assign(t->args_begin(), t->args_end());
    } else {
      return;
    }
    if (args.empty()) args.push_back(nullptr);
    if (args.size() > 1 && meaning == Meaning::kTrylock) {
      Warn(call->getBeginLoc(), "not instrumenting call to '" + callee->getNameAsString() +
                                    "': a trylock of several capabilities");
      return;
    }
    // Several capabilities in one call: each is an event on one wrapped call. Each wrap goes
    // outside the previous one, so the last capability is wrapped first.
    for (auto it = args.rbegin(); it != args.rend(); ++it) {
      const Expr* attr_arg = *it;
      std::string lock;
      std::optional<LockClass> cls;
      if (!CapabilityLock(call, callee, attr_arg, encl, lock, cls)) {
        Warn(call->getBeginLoc(), "not instrumenting call to '" + callee->getNameAsString() +
                                      "': cannot tell which lock its capability attribute names");
        return;
      }
      handled_.erase(sm_.getExpansionLoc(FileRange(call->getSourceRange()).getBegin()).getRawEncoding());
      EmitLockCall(call, callee->getNameAsString(), meaning, mode, success, lock, cls);
    }
  }

  static Success SuccessOf(const Expr* value) {
    if (!value) return Success::kNonzero;
    value = value->IgnoreParenImpCasts();
    if (const auto* b = dyn_cast<CXXBoolLiteralExpr>(value)) {
      return b->getValue() ? Success::kNonzero : Success::kZero;
    }
    if (const auto* i = dyn_cast<IntegerLiteral>(value)) {
      return i->getValue() != 0 ? Success::kNonzero : Success::kZero;
    }
    return Success::kNonzero;
  }

  // m.lock(), m.try_lock(), m.lock_shared() ... on the std mutex types.
  void OnStdMutexMethod(const CXXMemberCallExpr* call, const FunctionDecl* callee,
                        const FunctionDecl* encl) {
    const CXXRecordDecl* record = RecordOf(call->getImplicitObjectArgument()->getType());
    if (!record) return;
    std::string type = record->getQualifiedNameAsString();
    std::string method = callee->getNameAsString();
    if (IsStdRecursiveMutexType(type)) {
      if (method == "lock" || method == "try_lock") {
        Warn(call->getBeginLoc(), "not instrumenting '" + type + "::" + method +
                                      "': a recursive mutex has no lockdep equivalent");
      }
      return;
    }
    if (!IsStdMutexType(type)) return;
    Meaning meaning;
    Mode mode = Mode::kWrite;
    if (method == "lock") {
      meaning = Meaning::kLock;
    } else if (method == "unlock" || method == "unlock_shared") {
      meaning = Meaning::kUnlock;
    } else if (method == "try_lock" || method == "try_lock_for" || method == "try_lock_until") {
      meaning = Meaning::kTrylock;
    } else if (method == "lock_shared") {
      meaning = Meaning::kLock;
      mode = Mode::kReadRecursive;  // glibc's rwlock, under std::shared_mutex, prefers readers
    } else if (method == "try_lock_shared" || method == "try_lock_shared_for" ||
               method == "try_lock_shared_until") {
      meaning = Meaning::kTrylock;
      mode = Mode::kReadRecursive;
    } else {
      return;
    }
    std::string lock;
    std::optional<LockClass> cls;
    if (!CapabilityLock(call, callee, nullptr, encl, lock, cls)) return;
    EmitLockCall(call, type + "::" + method, meaning, mode, Success::kNonzero, lock, cls);
  }

  // std::lock(a, b, ...): deadlock-free among its arguments, so the first is a lock and the
  // rest are trylocks (no dependency between them), as std::lock itself backs off and retries.
  void OnStdLock(const CallExpr* call, const FunctionDecl* encl) {
    CharSourceRange r = FileRange(call->getSourceRange());
    if (!Editable(r) || !FirstTime(r.getBegin())) return;
    std::string pre;
    std::string names;
    for (unsigned i = 0; i < call->getNumArgs(); ++i) {
      const Expr* arg = call->getArg(i);
      if (arg->HasSideEffects(*ctx_)) return;
      std::string lock = AddressText(arg);
      std::optional<LockClass> cls = ClassOfObject(arg, encl);
      if (!pre.empty()) pre += ", ";
      pre += Hint(lock, cls, call->getBeginLoc());
      pre += "lg_acquire(" + lock + (i == 0 ? ", LG_EXCLUSIVE, 0, 0)" : ", LG_EXCLUSIVE | LG_TRY, 0, 0)");
      names += (i ? ", '" : "'") + Text(arg) + "'" + ClassNote(cls);
    }
    WrapBefore({r, false, call->getBeginLoc()}, pre);
    AddPoint(call->getBeginLoc(), "lock 'std::lock' on " + names);
  }

  // ---- guards (C++) ------------------------------------------------------------------------

  struct Guard {
    std::vector<std::string> scopes;  // helper variable names, one per lock
    std::string locks;                // the locks as written, for --dry-run
  };

  // Whether a member call is on a local std lock guard or scoped-capability object.
  bool IsGuardObject(const CXXMemberCallExpr* call) const {
    const auto* ref = dyn_cast<DeclRefExpr>(call->getImplicitObjectArgument()->IgnoreParenImpCasts());
    const auto* var = ref ? dyn_cast<VarDecl>(ref->getDecl()) : nullptr;
    if (!var || !var->hasLocalStorage()) return false;
    const CXXRecordDecl* record = RecordOf(var->getType());
    if (!record) return false;
    std::string type = record->getQualifiedNameAsString();
    return type == "std::unique_lock" || type == "std::shared_lock" || type == "std::lock_guard" ||
           type == "std::scoped_lock" || record->hasAttr<ScopedLockableAttr>();
  }

  // Calls on a mirrored guard variable: ul.unlock(), ul.lock(), ul.try_lock(), ul.release().
  bool OnGuardMethod(const CXXMemberCallExpr* call, const FunctionDecl* callee) {
    const auto* ref = dyn_cast<DeclRefExpr>(call->getImplicitObjectArgument()->IgnoreParenImpCasts());
    if (!ref) return false;
    auto it = guards_.find(ref->getDecl());
    if (it == guards_.end()) return false;
    if (it->second.scopes.size() != 1) return true;
    const std::string& scope = it->second.scopes[0];
    std::string method = callee->getNameAsString();
    CharSourceRange r = FileRange(call->getSourceRange());
    if (!Editable(r) || !FirstTime(r.getBegin())) return true;
    bool acquire = method == "lock" || callee->hasAttr<AcquireCapabilityAttr>();
    bool release = method == "unlock" || callee->hasAttr<ReleaseCapabilityAttr>();
    bool attempt = method.rfind("try_lock", 0) == 0 || callee->hasAttr<TryAcquireCapabilityAttr>();
    const CallSite site{r, false, call->getBeginLoc()};
    if (acquire) {
      WrapBefore(site, "lg_acquire(" + scope + ".lock_, " + scope + ".flags_, 0, 0), " + scope +
                           ".held_ = true");
    } else if (release) {
      WrapBefore(site, scope + ".release()");
    } else if (attempt) {
      rewriter_.InsertTextBefore(r.getBegin(), scope + ".took(");
      rewriter_.InsertTextAfter(r.getEnd(), ")");
    } else if (method == "release") {
      WrapBefore(site, scope + ".forget()");
    } else {
      return true;
    }
    AddPoint(call->getBeginLoc(), "guard call '" + ref->getDecl()->getNameAsString() + "." +
                                      method + "' on " + it->second.locks);
    return true;
  }

  static bool IsTag(const Expr* arg, const char* tag) {
    const CXXRecordDecl* r = RecordOf(arg->getType());
    return r && r->getQualifiedNameAsString() == tag;
  }

  static bool IsChrono(const Expr* arg) {
    const CXXRecordDecl* r = RecordOf(arg->getType());
    return r && llvm::StringRef(r->getQualifiedNameAsString()).startswith("std::chrono::");
  }

  void OnVar(const VarDecl* var) {
    if (!var->hasLocalStorage() || isa<ParmVarDecl>(var)) {
      OnGlobalVar(var);
      return;
    }
    if (!lo_.CPlusPlus || !var->getInit()) {
      OnLocalLock(var);
      return;
    }
    const Expr* init = var->getInit()->IgnoreImplicit();
    const auto* construct = dyn_cast<CXXConstructExpr>(init);
    if (!construct) {
      OnLocalLock(var);
      return;
    }
    const CXXConstructorDecl* ctor = construct->getConstructor();
    const CXXRecordDecl* record = ctor->getParent();
    std::string type = record->getQualifiedNameAsString();
    if (llvm::StringRef(type).startswith("lockgraph::")) return;  // lockgraph.hpp guards report
    const FunctionDecl* encl = EnclosingFunction(DynTypedNode::create(*var));
    if (IsLockPrimitive(encl)) return;

    std::vector<const Expr*> locks;
    GuardHow how = GuardHow::kAcquire;
    Mode mode = Mode::kWrite;
    unsigned n = construct->getNumArgs();
    auto args = [&](unsigned i) { return construct->getArg(i); };
    if (options_.std_locks && (type == "std::lock_guard" || type == "std::unique_lock" ||
                               type == "std::shared_lock")) {
      if (n == 0 || (n == 1 && RecordOf(args(0)->getType()) == record)) return;  // empty or moved
      locks.push_back(args(0));
      if (type == "std::shared_lock") mode = Mode::kReadRecursive;
      if (n >= 2) {
        if (IsTag(args(1), "std::adopt_lock_t")) how = GuardHow::kAdopt;
        else if (IsTag(args(1), "std::defer_lock_t")) how = GuardHow::kDefer;
        else if (IsTag(args(1), "std::try_to_lock_t") || IsChrono(args(1))) how = GuardHow::kTry;
      }
    } else if (options_.std_locks && type == "std::scoped_lock") {
      unsigned first = 0;
      if (n >= 1 && IsTag(args(0), "std::adopt_lock_t")) {
        how = GuardHow::kAdopt;
        first = 1;
      }
      for (unsigned i = first; i < n; ++i) locks.push_back(args(i));
    } else if (options_.capabilities && record->hasAttr<ScopedLockableAttr>()) {
      const auto* acquire = ctor->getAttr<AcquireCapabilityAttr>();
      if (!acquire) return;
      mode = acquire->isShared() ? Mode::kRead : Mode::kWrite;
      for (const Expr* a : acquire->args()) {
        const auto* ref = dyn_cast<DeclRefExpr>(a->IgnoreParenImpCasts());
        const auto* parm = ref ? dyn_cast<ParmVarDecl>(ref->getDecl()) : nullptr;
        if (!parm || parm->getFunctionScopeIndex() >= n) {
          Warn(var->getLocation(), "not instrumenting guard '" + var->getNameAsString() +
                                       "': cannot tell which lock its constructor acquires");
          return;
        }
        locks.push_back(args(parm->getFunctionScopeIndex()));
      }
    } else {
      OnLocalLock(var);
      return;
    }
    if (locks.empty()) return;
    for (const Expr* l : locks) {
      const CXXRecordDecl* lr = RecordOf(l->getType());
      if (lr && IsStdRecursiveMutexType(lr->getQualifiedNameAsString())) {
        Warn(var->getLocation(), "not instrumenting guard '" + var->getNameAsString() + "' of '" +
                                     lr->getQualifiedNameAsString() +
                                     "': a recursive mutex has no lockdep equivalent");
        return;
      }
      if (l->HasSideEffects(*ctx_)) {
        Warn(var->getLocation(), "not instrumenting guard '" + var->getNameAsString() +
                                     "': its lock argument has side effects");
        return;
      }
    }
    // The helper must sit in the same block, right before the guard's declaration.
    DynTypedNodeList parents = ctx_->getParents(*var);
    const DeclStmt* decl_stmt = parents.empty() ? nullptr : parents[0].get<DeclStmt>();
    const CompoundStmt* block = nullptr;
    if (decl_stmt) {
      DynTypedNodeList up = ctx_->getParents(*decl_stmt);
      if (!up.empty()) block = up[0].get<CompoundStmt>();
    }
    CharSourceRange r = decl_stmt ? FileRange(decl_stmt->getSourceRange()) : CharSourceRange();
    if (!block || !Editable(r) || !decl_stmt->isSingleDecl()) {
      Warn(var->getLocation(), "not instrumenting guard '" + var->getNameAsString() +
                                   "': it is not a single declaration directly in a block");
      return;
    }
    if (!FirstTime(r.getBegin())) return;
    Guard guard;
    std::string before;
    std::string after;
    std::string what = "guard '" + var->getNameAsString() + "' of '" + type + "' on ";
    for (size_t i = 0; i < locks.size(); ++i) {
      std::string lock = AddressText(locks[i]);
      std::optional<LockClass> cls = locks[i]->getType()->isPointerType()
                                         ? ClassOfPointer(locks[i], encl)
                                         : ClassOfObject(locks[i], encl);
      std::string scope = "lg_scope_" + var->getNameAsString() + "_" +
                          std::to_string(sm_.getFileOffset(r.getBegin())) +
                          (locks.size() > 1 ? "_" + std::to_string(i) : "");
      std::string flags = ModeFlag(mode);
      GuardHow h = how;
      if (locks.size() > 1 && i > 0 && how == GuardHow::kAcquire) flags += " | LG_TRY";
      if (h == GuardHow::kTry) {
        h = GuardHow::kDefer;
        after += " " + scope + ".took(" + var->getNameAsString() + ".owns_lock());";
      }
      if (cls) before += "lg_instr_hint_(" + lock + ", " + Quote(cls->name) + ", &" + cls->key +
                         ", " + Quote(Site(var->getLocation())) + "); ";
      if (h == GuardHow::kAcquire) {
        // Reported from the user's function itself, not from inside the helper: the captured
        // stack's top frame is then the guard's line.
        before += "lg_acquire(" + lock + ", " + flags + ", 0, 0); ";
        h = GuardHow::kAdopt;
      }
      before += "lg_instr_scope_ " + scope + "(" + lock + ", " + flags + ", " +
                std::to_string(static_cast<int>(h)) + "); ";
      guard.scopes.push_back(scope);
      what += (i ? ", '" : "'") + Text(locks[i]) + "'" + ClassNote(cls);
      guard.locks += (i ? ", '" : "'") + Text(locks[i]) + "'";
    }
    rewriter_.InsertTextBefore(r.getBegin(), before);
    if (!after.empty()) rewriter_.InsertTextAfter(r.getEnd(), after);
    guards_[var] = guard;
    static const char* kHowNames[] = {"", " adopted", " deferred", " tried"};
    AddPoint(var->getLocation(), what + kHowNames[static_cast<int>(how)]);
  }

  bool IsLockType(QualType t) const {
    t = t.getCanonicalType();
    while (const auto* at = dyn_cast<ArrayType>(t.getTypePtr())) t = at->getElementType().getCanonicalType();
    if (const RecordDecl* rd = t->getAsRecordDecl()) {
      std::string name = rd->getQualifiedNameAsString();
      if (IsStdMutexType(name) || rd->hasAttr<CapabilityAttr>()) return true;
      std::string c_name = RecordName(rd);
      if (c_name == "pthread_mutex_t" || c_name == "pthread_rwlock_t") return true;
    }
    return false;
  }

  // A local lock variable starts life as a new instance of the class of its declaration: its
  // stack slot may have held another function's lock before.
  void OnLocalLock(const VarDecl* var) {
    if (!options_.std_locks && !options_.capabilities) return;
    if (!IsLockType(var->getType()) || var->getType()->isArrayType()) return;
    DynTypedNodeList parents = ctx_->getParents(*var);
    const DeclStmt* decl_stmt = parents.empty() ? nullptr : parents[0].get<DeclStmt>();
    if (!decl_stmt) return;
    DynTypedNodeList up = ctx_->getParents(*decl_stmt);
    if (up.empty() || !up[0].get<CompoundStmt>()) return;
    CharSourceRange r = FileRange(decl_stmt->getSourceRange());
    if (!Editable(r) || !FirstTime(r.getBegin())) return;
    const FunctionDecl* encl = EnclosingFunction(DynTypedNode::create(*var));
    std::optional<LockClass> cls = ClassOfVar(var, encl);
    rewriter_.InsertTextAfter(r.getEnd(), " lg_lock_init_site(&" + var->getNameAsString() + ", " +
                                              Quote(cls->name) + ", &" + cls->key + ", " +
                                              Quote(Site(var->getLocation())) + ");");
    AddPoint(var->getLocation(), "local lock '" + var->getNameAsString() + "' (class '" +
                                     cls->name + "')");
  }

  void OnGlobalVar(const VarDecl* var) {
    if (!var->hasGlobalStorage() || var->isStaticLocal() || !IsLockType(var->getType())) return;
    if (var->isThisDeclarationADefinition() != VarDecl::Definition) return;
    if (var->getDeclContext()->isDependentContext()) return;
    std::optional<LockClass> cls = ClassOfVar(var, nullptr);
    AddPoint(var->getLocation(), "global lock '" + var->getNameAsString() + "' (class '" +
                                     cls->name + "')");
  }

  // ---- handlers ----------------------------------------------------------------------------

  void OnFunction(const FunctionDecl* fn) {
    if (!fn->getIdentifier()) return;
    const FunctionSpec* spec = config_.Find(fn->getName());
    if (!spec || !MeaningIsHandler(spec->meaning)) return;
    const auto* body = dyn_cast_or_null<CompoundStmt>(fn->getBody());
    if (!body) return;
    SourceLocation lbrace = body->getLBracLoc();
    if (lbrace.isMacroID() || !Rewritten(lbrace)) {
      Warn(fn->getLocation(), "not instrumenting handler '" + fn->getNameAsString() +
                                  "': its body starts inside a macro");
      return;
    }
    if (!FirstTime(lbrace)) return;
    bool hard = spec->meaning == Meaning::kHardirqHandler;
    std::string ctx = hard ? "hardirq" : "softirq";
    rewriter_.InsertTextAfter(
        lbrace.getLocWithOffset(1),
        " __attribute__((cleanup(lg_instr_" + ctx + "_exit_), unused)) int lg_instr_" + ctx +
            "_ = (lg_" + ctx + "_enter(), 0);");
    AddPoint(fn->getLocation(), spec->meaning == Meaning::kHardirqHandler
                                    ? "hardirq_handler '" + fn->getNameAsString() + "'"
                                    : "softirq_handler '" + fn->getNameAsString() + "'");
  }

  std::vector<MacroUse> macro_uses_;
  std::vector<std::pair<const CXXMemberCallExpr*, const FunctionDecl*>> guard_calls_;
  const Config& config_;
  const Options& options_;
  CompilerInstance& ci_;
  SourceManager& sm_;
  const LangOptions& lo_;
  ASTContext* ctx_ = nullptr;
  Rewriter rewriter_;
  std::map<std::string, bool> keys_;  // key symbol -> external
  std::vector<std::string> globals_;  // init calls for globals defined in this file
  std::set<const VarDecl*> noted_globals_;
  std::map<const Decl*, Guard> guards_;
  std::set<unsigned> handled_;
  std::map<const FileEntry*, FileID> headers_;  // project headers: the FileID rewritten
  std::map<FileID, bool> header_ids_;           // every entry of a project header: rewritten?
  std::string header_dir_;                      // where this file's header copies go
  std::set<std::string> dependencies_;
  std::vector<Point> points_;
};

class IncludeRewriter : public PPCallbacks {
 public:
  explicit IncludeRewriter(TuInstrumenter& tu) : tu_(tu) {}
  void MacroExpands(const Token& name, const MacroDefinition& definition, SourceRange range,
                    const MacroArgs* args) override {
    tu_.OnMacro(name, definition, range, args);
  }
  void InclusionDirective(SourceLocation, const Token&, StringRef, bool angled,
                          CharSourceRange filename_range, const FileEntry* file, StringRef,
                          StringRef, const Module*, SrcMgr::CharacteristicKind kind) override {
    tu_.OnInclusion(filename_range, file, angled, kind);
  }
  void FileChanged(SourceLocation loc, FileChangeReason reason, SrcMgr::CharacteristicKind kind,
                   FileID) override {
    if (reason != EnterFile) return;
    SourceManager& sm = tu_.rewriter().getSourceMgr();
    tu_.OnEnterFile(sm.getFileID(sm.getExpansionLoc(loc)), kind);
  }

 private:
  TuInstrumenter& tu_;
};

class InstrumentAction : public ASTFrontendAction {
 public:
  InstrumentAction(const Config& config, const Options& options, Results& results)
      : config_(config), options_(options), results_(results) {}

  // Refuses the tool's own output before parsing it (its runtime include may not resolve).
  bool BeginSourceFileAction(CompilerInstance& ci) override {
    SourceManager& sm = ci.getSourceManager();
    if (sm.getBufferData(sm.getMainFileID()).contains(kMarker)) {
      const std::string input = OriginalPath(ci);
      llvm::errs() << input << ": error: '" << input << "' is already lockgraph-instrument output\n";
      results_.failed.push_back(input);
      return false;
    }
    return true;
  }

  std::unique_ptr<ASTConsumer> CreateASTConsumer(CompilerInstance& ci, StringRef file) override {
    tu_ = std::make_unique<TuInstrumenter>(config_, options_, ci);
    llvm::SmallString<256> input(file);
    llvm::sys::fs::make_absolute(input);
    llvm::sys::path::remove_dots(input, true);
    // Each source has its own header copies: a header may be rewritten differently in two files
    // (other definitions), and two builds may instrument them at once.
    tu_->SetHeaderDir(OutputPath(std::string(input)) + ".lg-headers");
    tu_->Register(finder_);
    ci.getPreprocessor().addPPCallbacks(std::make_unique<IncludeRewriter>(*tu_));
    return finder_.newASTConsumer();
  }

  void EndSourceFileAction() override {
    CompilerInstance& ci = getCompilerInstance();
    const std::string input = OriginalPath(ci);
    if (ci.getDiagnostics().hasErrorOccurred()) {
      results_.failed.push_back(input);
      return;
    }
    tu_->ProcessDeferred();
    std::vector<Point>& points = tu_->points();
    std::stable_sort(points.begin(), points.end(),
                     [](const Point& a, const Point& b) { return a.offset < b.offset; });
    results_.points += points.size();
    if (options_.dry_run) {
      for (const Point& p : points) llvm::outs() << p.text << "\n";
      return;
    }
    std::optional<std::string> text = tu_->Finish(input);
    if (!text) {
      results_.failed.push_back(input);
      return;
    }
    std::string output = OutputPath(input);
    llvm::SmallString<256> real_in;
    llvm::SmallString<256> real_out;
    if (!llvm::sys::fs::real_path(input, real_in) && !llvm::sys::fs::real_path(output, real_out) &&
        real_in == real_out) {
      llvm::errs() << "lockgraph-instrument: error: refusing to overwrite source file '" << input
                   << "': choose an output directory other than the source directory\n";
      results_.failed.push_back(input);
      return;
    }
    if (std::error_code ec = llvm::sys::fs::create_directories(llvm::sys::path::parent_path(output))) {
      llvm::errs() << "lockgraph-instrument: error: cannot create directory for '" << output
                   << "': " << ec.message() << "\n";
      results_.failed.push_back(input);
      return;
    }
    std::error_code ec;
    llvm::raw_fd_ostream out(output, ec);
    if (ec) {
      llvm::errs() << "lockgraph-instrument: error: cannot write '" << output << "': " << ec.message()
                   << "\n";
      results_.failed.push_back(input);
      return;
    }
    out << *text;
    results_.written.push_back(output);
    for (const auto& [path, header_text] : tu_->HeaderCopies()) {
      if (!WriteFile(path, header_text)) {
        results_.failed.push_back(input);
        return;
      }
      results_.written.push_back(path);
    }
    if (!options_.depfile.empty()) {
      std::string deps = Escape(output) + ":";
      for (const std::string& d : tu_->Dependencies()) deps += " \\\n  " + Escape(d);
      if (!WriteFile(options_.depfile, deps + "\n")) results_.failed.push_back(input);
    }
  }

  // Writes a generated file (never over a source: header copies live below -o).
  static bool WriteFile(const std::string& path, const std::string& text) {
    if (std::error_code ec = llvm::sys::fs::create_directories(llvm::sys::path::parent_path(path))) {
      llvm::errs() << "lockgraph-instrument: error: cannot create directory for '" << path
                   << "': " << ec.message() << "\n";
      return false;
    }
    std::error_code ec;
    llvm::raw_fd_ostream out(path, ec);
    if (ec) {
      llvm::errs() << "lockgraph-instrument: error: cannot write '" << path << "': " << ec.message()
                   << "\n";
      return false;
    }
    out << text;
    return true;
  }

  // A path in a Makefile rule: spaces and '$' escaped.
  static std::string Escape(const std::string& path) {
    std::string out;
    for (char c : path) {
      if (c == ' ' || c == '#') out += '\\';
      if (c == '$') out += '$';
      out += c;
    }
    return out;
  }

 private:
  std::string OriginalPath(CompilerInstance& ci) const {
    SourceManager& sm = ci.getSourceManager();
    const FileEntry* entry = sm.getFileEntryForID(sm.getMainFileID());
    llvm::SmallString<256> path(entry ? entry->getName() : getCurrentFile());
    llvm::sys::fs::make_absolute(path);
    llvm::sys::path::remove_dots(path, true);
    return std::string(path);
  }

  std::string OutputPath(const std::string& input) const {
    llvm::StringRef rel(input);
    if (!options_.root.empty() && rel.startswith(options_.root + "/")) {
      rel = rel.drop_front(options_.root.size() + 1);
    } else {
      rel = rel.ltrim('/');
    }
    llvm::SmallString<256> out(options_.output_dir);
    llvm::sys::path::append(out, rel);
    return std::string(out);
  }

  const Config& config_;
  const Options& options_;
  Results& results_;
  MatchFinder finder_;
  std::unique_ptr<TuInstrumenter> tu_;
};

class Factory : public tooling::FrontendActionFactory {
 public:
  Factory(const Config& config, const Options& options, Results& results)
      : config_(config), options_(options), results_(results) {}
  std::unique_ptr<FrontendAction> create() override {
    return std::make_unique<InstrumentAction>(config_, options_, results_);
  }

 private:
  const Config& config_;
  const Options& options_;
  Results& results_;
};

}  // namespace

std::unique_ptr<tooling::FrontendActionFactory> MakeInstrumentActionFactory(
    const Config& config, const Options& options, Results& results) {
  return std::make_unique<Factory>(config, options, results);
}

}  // namespace lockgraph::instrument
