// LOCKGRAPH_OPTIONS parsing: sanitizer-style "name=value" pairs.
#include <charconv>
#include <string>
#include <string_view>

#include "internal.h"

namespace lockgraph::runtime_internal {
namespace {

bool ParseBool(std::string_view v, bool* out) {
  if (v == "1" || v == "true" || v == "yes" || v == "on") {
    *out = true;
    return true;
  }
  if (v == "0" || v == "false" || v == "no" || v == "off") {
    *out = false;
    return true;
  }
  return false;
}

bool ParseInt(std::string_view v, int lo, int hi, int* out) {
  int value = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), value);
  if (ec != std::errc() || ptr != v.data() + v.size() || value < lo || value > hi) return false;
  *out = value;
  return true;
}

}  // namespace

bool SetOption(Options* o, std::string_view name, std::string_view value, std::string* error) {
  bool ok = true;
  if (name == "strict") {
    ok = ParseBool(value, &o->strict);
  } else if (name == "halt_on_error") {
    ok = ParseBool(value, &o->halt_on_error);
  } else if (name == "exitcode") {
    ok = ParseInt(value, 0, 255, &o->exitcode);
  } else if (name == "log_file" || name == "log_path") {
    o->log_file = std::string(value);
  } else if (name == "verbosity") {
    ok = ParseInt(value, 0, 4, &o->verbosity);
  } else if (name == "record") {
    o->record = std::string(value);
  } else if (name == "status_file") {
    o->status_file = std::string(value);
  } else if (name == "stacks") {
    ok = ParseBool(value, &o->stacks);
  } else if (name == "intercept") {
    bool on = true;
    ok = ParseBool(value, &on);
    if (ok) o->intercept.store(on, std::memory_order_relaxed);
  } else if (name == "max_stack_depth") {
    ok = ParseInt(value, 1, 64, &o->max_stack_depth);
  } else if (name == "max_held_locks") {
    ok = ParseInt(value, 1, 1 << 20, &o->max_held_locks);
  } else if (name == "max_classes") {
    ok = ParseInt(value, 1, 1 << 24, &o->max_classes);
  } else if (name == "max_dependencies") {
    ok = ParseInt(value, 1, 1 << 30, &o->max_dependencies);
  } else if (name == "memory_limit_mb") {
    ok = ParseInt(value, 1, 1 << 20, &o->memory_limit_mb);
  } else {
    if (error) *error = "unknown option '" + std::string(name) + "'";
    return false;
  }
  if (!ok && error) {
    *error = "bad value '" + std::string(value) + "' for option '" + std::string(name) + "'";
  }
  return ok;
}

bool ParseOptions(std::string_view text, Options* options, std::string* error) {
  std::size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ':' || text[i] == ',' || text[i] == ' ' ||
                               text[i] == '\t' || text[i] == '\n')) {
      ++i;
    }
    if (i >= text.size()) break;
    std::size_t end = i;
    while (end < text.size() && text[end] != ':' && text[end] != ',' && text[end] != ' ' &&
           text[end] != '\t' && text[end] != '\n') {
      ++end;
    }
    std::string_view pair = text.substr(i, end - i);
    i = end;
    const std::size_t eq = pair.find('=');
    if (eq == std::string_view::npos) {
      if (error) *error = "option '" + std::string(pair) + "' has no '=value'";
      return false;
    }
    if (!SetOption(options, pair.substr(0, eq), pair.substr(eq + 1), error)) return false;
  }
  return true;
}

}  // namespace lockgraph::runtime_internal
