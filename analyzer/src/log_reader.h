// Reading lock logs from disk: input expansion, mapping, a validating first pass that collects a
// run's symbol tables, and an event stream in replay order for the second pass.
#ifndef LOCKGRAPH_ANALYZER_LOG_READER_H_
#define LOCKGRAPH_ANALYZER_LOG_READER_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <queue>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "lockgraph/log_format.h"

namespace lockgraph::analyzer {

class Progress;

// One problem with an input: "FILE: offset N: message" or "FILE:LINE: message".
struct InputError {
  std::string file;
  std::uint64_t offset = 0;
  std::uint64_t line = 0;
  bool has_offset = false;
  std::string message;
};
std::string FormatInputError(const InputError& error);

// A read-only mapping of a whole file (nothing mapped for an empty file).
class MappedFile {
 public:
  MappedFile() = default;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();
  // Returns false with *error set (strerror text) when the file cannot be opened or mapped.
  bool Open(const std::string& path, std::string* error);
  std::span<const std::uint8_t> bytes() const { return {data_, size_}; }

 private:
  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

struct ClassDefinition {
  std::string identity;
  std::string name;
  std::uint8_t subclass = 0;
};

// A log after the first pass: where its events are, its tables, and what was wrong with it.
struct LoadedLog {
  std::string path;
  logfmt::Format format = logfmt::Format::kUnknown;
  logfmt::FileHeader header;
  MappedFile file;
  bool usable = false;       // something can be replayed
  bool complete = false;     // an `end` record was seen
  bool has_seq = false;      // binary: every block carries sequence numbers
  std::vector<logfmt::BlockView> blocks;  // binary: the valid blocks, in file order

  // Definitions (tables), keyed by the run's own numbers.
  std::unordered_map<logfmt::LogClassId, ClassDefinition> classes;
  std::vector<std::pair<ContextId, std::string>> context_names;
  std::unordered_map<std::uint64_t, std::string> sites;
  std::unordered_map<StackId, std::vector<std::string>> stacks;
  std::unordered_map<LockId, std::string> lock_names;

  // Counters.
  std::uint64_t events = 0;         // replayable events (not definitions)
  std::uint64_t records = 0;        // all records
  std::uint64_t damaged_blocks = 0; // corrupt or truncated regions skipped
  std::uint64_t skipped_bytes = 0;
  std::uint64_t bad_lines = 0;
  std::vector<InputError> errors;
  bool fatal = false;               // the file could not be read at all
};

// Expands files, directories (recursively: every file that looks like a lock log) and glob
// patterns into paths, in a deterministic order. Problems go to *errors.
std::vector<std::string> ExpandInputs(const std::vector<std::string>& inputs,
                                      std::vector<InputError>* errors);

// First pass over one log: maps it, validates every block or line, collects the tables.
void LoadLog(LoadedLog* log, Progress* progress);
// LoadLog in two steps: OpenLog maps the file and detects its format (false, with log->fatal
// and an error, when it is not a readable log); LoadOpenedLog is the first pass proper.
bool OpenLog(LoadedLog* log);
void LoadOpenedLog(LoadedLog* log, Progress* progress);
// Records a problem with the log (at most 100 are kept per log).
void AddLogError(LoadedLog* log, InputError error);
// The checks after a binary log's last block: blocks with and without sequence numbers mixed,
// gaps in the block numbers (a block the writer lost); sets log->has_seq. Sorts `numbers`.
void FinishBinaryBlockChecks(LoadedLog* log, bool any_seq, bool any_plain,
                             std::vector<std::uint32_t>* numbers);
// Loads several logs on up to `jobs` threads.
void LoadLogs(std::vector<std::unique_ptr<LoadedLog>>& logs, unsigned jobs, Progress* progress);

// Second pass: the events of a loaded log (definitions left out) in replay order: sequence
// order for stamped binary logs (a merge of the blocks, each sorted), else file order.
class EventStream {
 public:
  explicit EventStream(const LoadedLog& log);
  ~EventStream();
  // Fills *event; its strings stay valid until the next call. False at the end.
  bool Next(logfmt::Event* event);
  // Bytes of the input consumed so far (for progress).
  std::uint64_t bytes_done() const { return bytes_done_; }

 private:
  bool NextBinaryOrdered(logfmt::Event* event);
  bool NextBinaryMerged(logfmt::Event* event);
  bool NextText(logfmt::Event* event);

  const LoadedLog& log_;
  std::uint64_t bytes_done_ = 0;
  // Binary, file order.
  std::size_t block_ = 0;
  std::unique_ptr<logfmt::BlockDecoder> decoder_;
  // Binary, merged by sequence number.
  struct Cursor;
  struct CursorLater {
    bool operator()(const Cursor* a, const Cursor* b) const;
  };
  std::vector<std::unique_ptr<Cursor>> cursors_;
  std::priority_queue<Cursor*, std::vector<Cursor*>, CursorLater> heap_;
  Cursor* current_ = nullptr;
  // Text.
  std::unique_ptr<logfmt::TextDecoder> text_;
  std::size_t text_pos_ = 0;
  std::uint64_t line_no_ = 0;
  std::vector<logfmt::Event> pending_;
  std::size_t pending_next_ = 0;
};

}  // namespace lockgraph::analyzer

#endif  // LOCKGRAPH_ANALYZER_LOG_READER_H_
