// Parser for the instrumentation config: `function = meaning [key=value...]` lines.
#include "config.h"

#include <cctype>
#include <fstream>
#include <sstream>
#include <vector>

namespace lockgraph::instrument {
namespace {

struct MeaningEntry {
  std::string_view name;
  Meaning meaning;
};

constexpr MeaningEntry kMeanings[] = {
    {"lock", Meaning::kLock},
    {"unlock", Meaning::kUnlock},
    {"trylock", Meaning::kTrylock},
    {"lock_irq", Meaning::kLockIrq},
    {"unlock_irq", Meaning::kUnlockIrq},
    {"lock_irqsave", Meaning::kLockIrqsave},
    {"unlock_irqrestore", Meaning::kUnlockIrqrestore},
    {"lock_bh", Meaning::kLockBh},
    {"unlock_bh", Meaning::kUnlockBh},
    {"irq_disable", Meaning::kIrqDisable},
    {"irq_enable", Meaning::kIrqEnable},
    {"irq_save", Meaning::kIrqSave},
    {"irq_restore", Meaning::kIrqRestore},
    {"softirq_disable", Meaning::kSoftirqDisable},
    {"softirq_enable", Meaning::kSoftirqEnable},
    {"hardirq_handler", Meaning::kHardirqHandler},
    {"softirq_handler", Meaning::kSoftirqHandler},
    {"lock_unlock", Meaning::kLockUnlock},
    {"lock_unlock_irq", Meaning::kLockUnlockIrq},
    {"set_class", Meaning::kSetClass},
    {"lock_init", Meaning::kLockInit},
    {"lock_destroy", Meaning::kLockDestroy},
};

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool IsIdentifier(std::string_view s) {
  if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  for (char c : s) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != ':') return false;
  }
  return true;
}

std::vector<std::string_view> Words(std::string_view s) {
  std::vector<std::string_view> words;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    size_t start = i;
    while (i < s.size() && !std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    if (i > start) words.push_back(s.substr(start, i - start));
  }
  return words;
}

}  // namespace

std::string_view MeaningName(Meaning m) {
  for (const auto& e : kMeanings) {
    if (e.meaning == m) return e.name;
  }
  return "?";
}

bool MeaningTakesLock(Meaning m) {
  switch (m) {
    case Meaning::kLock:
    case Meaning::kUnlock:
    case Meaning::kTrylock:
    case Meaning::kLockIrq:
    case Meaning::kUnlockIrq:
    case Meaning::kLockIrqsave:
    case Meaning::kUnlockIrqrestore:
    case Meaning::kLockBh:
    case Meaning::kUnlockBh:
    case Meaning::kLockUnlock:
    case Meaning::kLockUnlockIrq:
    case Meaning::kSetClass:
    case Meaning::kLockInit:
    case Meaning::kLockDestroy:
      return true;
    default:
      return false;
  }
}

bool MeaningIsHandler(Meaning m) {
  return m == Meaning::kHardirqHandler || m == Meaning::kSoftirqHandler;
}

const char* ModeFlag(Mode m) {
  switch (m) {
    case Mode::kWrite:
      return "LG_EXCLUSIVE";
    case Mode::kRead:
      return "LG_READ";
    case Mode::kReadRecursive:
      return "LG_READ_RECURSIVE";
  }
  return "LG_EXCLUSIVE";
}

bool Config::Load(const std::string& path, std::string& error) {
  std::ifstream in(path);
  if (!in) {
    error = "cannot read config file '" + path + "'";
    return false;
  }
  std::stringstream text;
  text << in.rdbuf();
  return Parse(text.str(), path, error);
}

// Each line: `function = meaning [arg=N] [mode=write|read|read_recursive] [success=nonzero|zero]
// [name_arg=N] [subclass_arg=N] [key_arg=N]`.
// '#' starts a comment. A later line for the same function replaces an earlier one.
bool Config::Parse(std::string_view text, const std::string& name, std::string& error) {
  int line_no = 0;
  while (!text.empty()) {
    size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
    ++line_no;
    if (size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    line = Trim(line);
    if (line.empty()) continue;
    const std::string where = name + ":" + std::to_string(line_no) + ": ";
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) {
      error = where + "expected 'function = meaning', got '" + std::string(line) + "'";
      return false;
    }
    std::string_view function = Trim(line.substr(0, eq));
    if (!IsIdentifier(function)) {
      error = where + "'" + std::string(function) + "' is not a function name";
      return false;
    }
    std::vector<std::string_view> words = Words(line.substr(eq + 1));
    if (words.empty()) {
      error = where + "no meaning given for '" + std::string(function) + "'";
      return false;
    }
    FunctionSpec spec;
    spec.origin = name + ":" + std::to_string(line_no);
    bool known = false;
    for (const auto& e : kMeanings) {
      if (e.name == words[0]) {
        spec.meaning = e.meaning;
        known = true;
      }
    }
    if (!known) {
      error = where + "unknown meaning '" + std::string(words[0]) + "' for '" +
              std::string(function) + "'";
      return false;
    }
    for (size_t i = 1; i < words.size(); ++i) {
      std::string_view w = words[i];
      size_t e = w.find('=');
      std::string_view key = w.substr(0, e);
      std::string_view value = e == std::string_view::npos ? std::string_view() : w.substr(e + 1);
      if (key == "arg" && !value.empty() &&
          value.find_first_not_of("0123456789") == std::string_view::npos && value.size() < 3) {
        spec.lock_arg = static_cast<unsigned>(std::stoul(std::string(value)));
      } else if (key == "name_arg" && !value.empty() &&
                 value.find_first_not_of("0123456789") == std::string_view::npos &&
                 value.size() < 3) {
        spec.name_arg = static_cast<int>(std::stoul(std::string(value)));
      } else if (key == "key_arg" && !value.empty() &&
                 value.find_first_not_of("0123456789") == std::string_view::npos &&
                 value.size() < 3) {
        spec.key_arg = static_cast<int>(std::stoul(std::string(value)));
      } else if (key == "subclass_arg" && !value.empty() &&
                 value.find_first_not_of("0123456789") == std::string_view::npos &&
                 value.size() < 3) {
        spec.subclass_arg = static_cast<int>(std::stoul(std::string(value)));
      } else if (key == "mode" && value == "write") {
        spec.mode = Mode::kWrite;
      } else if (key == "mode" && value == "read") {
        spec.mode = Mode::kRead;
      } else if (key == "mode" && value == "read_recursive") {
        spec.mode = Mode::kReadRecursive;
      } else if (key == "success" && value == "nonzero") {
        spec.success = Success::kNonzero;
      } else if (key == "success" && value == "zero") {
        spec.success = Success::kZero;
      } else {
        error = where + "unknown option '" + std::string(w) + "' for '" + std::string(function) +
                "' (expected arg=N, mode=write|read|read_recursive, success=nonzero|zero, "
                "name_arg=N, subclass_arg=N, key_arg=N)";
        return false;
      }
    }
    if (spec.meaning == Meaning::kSetClass && spec.key_arg < 0) {
      error = where + "'" + std::string(function) + "' is set_class but has no key_arg=N";
      return false;
    }
    functions_[std::string(function)] = spec;
  }
  return true;
}

void Config::AddPthreadFunctions() {
  struct Builtin {
    const char* name;
    Meaning meaning;
    Mode mode;
  };
  // Timed locks are recorded as trylocks: they cannot wait forever, so lockdep adds no dependency.
  static const Builtin kPthread[] = {
      {"pthread_mutex_lock", Meaning::kLock, Mode::kWrite},
      {"pthread_mutex_unlock", Meaning::kUnlock, Mode::kWrite},
      {"pthread_mutex_trylock", Meaning::kTrylock, Mode::kWrite},
      {"pthread_mutex_timedlock", Meaning::kTrylock, Mode::kWrite},
      {"pthread_mutex_clocklock", Meaning::kTrylock, Mode::kWrite},
      {"pthread_mutex_init", Meaning::kLockInit, Mode::kWrite},
      {"pthread_mutex_destroy", Meaning::kLockDestroy, Mode::kWrite},
      {"pthread_rwlock_rdlock", Meaning::kLock, Mode::kReadRecursive},
      {"pthread_rwlock_wrlock", Meaning::kLock, Mode::kWrite},
      {"pthread_rwlock_tryrdlock", Meaning::kTrylock, Mode::kReadRecursive},
      {"pthread_rwlock_trywrlock", Meaning::kTrylock, Mode::kWrite},
      {"pthread_rwlock_timedrdlock", Meaning::kTrylock, Mode::kReadRecursive},
      {"pthread_rwlock_timedwrlock", Meaning::kTrylock, Mode::kWrite},
      {"pthread_rwlock_unlock", Meaning::kUnlock, Mode::kWrite},
      {"pthread_rwlock_init", Meaning::kLockInit, Mode::kWrite},
      {"pthread_rwlock_destroy", Meaning::kLockDestroy, Mode::kWrite},
      {"pthread_spin_lock", Meaning::kLock, Mode::kWrite},
      {"pthread_spin_trylock", Meaning::kTrylock, Mode::kWrite},
      {"pthread_spin_unlock", Meaning::kUnlock, Mode::kWrite},
      {"pthread_spin_init", Meaning::kLockInit, Mode::kWrite},
      {"pthread_spin_destroy", Meaning::kLockDestroy, Mode::kWrite},
  };
  for (const Builtin& b : kPthread) {
    if (functions_.count(b.name)) continue;
    FunctionSpec spec;
    spec.meaning = b.meaning;
    spec.mode = b.mode;
    spec.success = Success::kZero;  // pthread calls return 0 on success
    spec.origin = "built-in";
    functions_[b.name] = spec;
  }
}

const FunctionSpec* Config::Find(std::string_view function) const {
  auto it = functions_.find(function);
  return it == functions_.end() ? nullptr : &it->second;
}

}  // namespace lockgraph::instrument
