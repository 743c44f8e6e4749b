// Lock-log input: expanding paths, mapping files, the validating first pass, replay-order streams.
#include "log_reader.h"

#include <fcntl.h>
#include <glob.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>
#include <thread>

#include "progress.h"

namespace lockgraph::analyzer {

namespace fs = std::filesystem;

// Named limit: errors kept per log (the rest are counted).
constexpr std::size_t kMaxErrorsPerLog = 100;

std::string FormatInputError(const InputError& e) {
  if (e.line) return e.file + ":" + std::to_string(e.line) + ": " + e.message;
  if (e.has_offset) return e.file + ": offset " + std::to_string(e.offset) + ": " + e.message;
  return e.file + ": " + e.message;
}

MappedFile::~MappedFile() {
  if (data_) munmap(const_cast<std::uint8_t*>(data_), size_);
}

bool MappedFile::Open(const std::string& path, std::string* error) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    *error = std::string("cannot open: ") + std::strerror(errno);
    return false;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    *error = std::string("cannot stat: ") + std::strerror(errno);
    ::close(fd);
    return false;
  }
  if (!S_ISREG(st.st_mode)) {
    *error = "not a regular file";
    ::close(fd);
    return false;
  }
  size_ = static_cast<std::size_t>(st.st_size);
  if (size_ > 0) {
    void* p = mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      *error = std::string("cannot map: ") + std::strerror(errno);
      ::close(fd);
      size_ = 0;
      return false;
    }
    madvise(p, size_, MADV_SEQUENTIAL);
    data_ = static_cast<const std::uint8_t*>(p);
  }
  ::close(fd);
  return true;
}

namespace {

bool LooksLikeLog(const fs::path& path) {
  std::uint8_t head[512];
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = ::read(fd, head, sizeof head);
  ::close(fd);
  if (n <= 0) return false;
  return logfmt::DetectFormat({head, static_cast<std::size_t>(n)}) != logfmt::Format::kUnknown;
}

bool HasGlobChars(const std::string& s) { return s.find_first_of("*?[") != std::string::npos; }

}  // namespace

std::vector<std::string> ExpandInputs(const std::vector<std::string>& inputs,
                                      std::vector<InputError>* errors) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  auto add = [&](const std::string& p) {
    if (seen.insert(p).second) out.push_back(p);
  };
  for (const std::string& in : inputs) {
    std::error_code ec;
    fs::file_status st = fs::status(in, ec);
    if (!ec && fs::is_directory(st)) {
      std::vector<std::string> found;
      for (auto it = fs::recursive_directory_iterator(
               in, fs::directory_options::skip_permission_denied, ec);
           !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
        if (it->is_regular_file(ec) && LooksLikeLog(it->path())) found.push_back(it->path().string());
      }
      if (ec) errors->push_back({in, 0, 0, false, "cannot read directory: " + ec.message()});
      std::sort(found.begin(), found.end());
      if (found.empty() && !ec) errors->push_back({in, 0, 0, false, "no lock logs in this directory"});
      for (auto& f : found) add(f);
    } else if (!ec && fs::exists(st)) {
      add(in);
    } else if (HasGlobChars(in)) {
      glob_t g{};
      int r = glob(in.c_str(), 0, nullptr, &g);
      if (r == 0) {
        std::vector<std::string> found(g.gl_pathv, g.gl_pathv + g.gl_pathc);
        std::sort(found.begin(), found.end());
        for (auto& f : found) add(f);
      } else {
        errors->push_back({in, 0, 0, false, "no file matches this pattern"});
      }
      globfree(&g);
    } else {
      errors->push_back({in, 0, 0, false, "no such file or directory"});
    }
  }
  return out;
}

namespace {

void AddError(LoadedLog* log, InputError e) {
  if (log->errors.size() < kMaxErrorsPerLog) log->errors.push_back(std::move(e));
}

void Collect(LoadedLog* log, const logfmt::Event& e) {
  ++log->records;
  using logfmt::RecordType;
  switch (e.type) {
    case RecordType::kClassDef:
      log->classes.try_emplace(e.class_id,
                               ClassDefinition{std::string(e.text), std::string(e.text2), e.subclass});
      break;
    case RecordType::kContextName:
      log->context_names.emplace_back(e.context, std::string(e.text));
      break;
    case RecordType::kStackDef:
      if (!log->stacks.count(e.stack))
        log->stacks.emplace(e.stack, std::vector<std::string>(e.frames.begin(), e.frames.end()));
      break;
    case RecordType::kCallSiteDef:
      log->sites.try_emplace(e.ip, std::string(e.text));
      break;
    case RecordType::kLockName:
      log->lock_names[e.lock] = std::string(e.text);
      break;
    case RecordType::kRunEnd:
      log->complete = true;
      ++log->events;
      break;
    default:
      ++log->events;
  }
}

void LoadBinary(LoadedLog* log, Progress* progress) {
  auto bytes = log->file.bytes();
  logfmt::BinaryScanner scan(bytes);
  logfmt::DecodeError err;
  auto header = scan.ReadHeader(&log->header, &err);
  if (header != logfmt::BinaryScanner::HeaderResult::kOk) {
    AddError(log, {log->path, err.offset, 0, true, err.message});
    if (header == logfmt::BinaryScanner::HeaderResult::kFatal) {
      log->fatal = true;
      return;
    }
  }
  bool any_seq = false, any_plain = false;
  std::vector<std::uint32_t> numbers;
  logfmt::BlockView block;
  logfmt::Event ev;
  std::uint64_t last_offset = scan.offset();
  for (;;) {
    auto r = scan.NextBlock(&block, &err);
    if (r == logfmt::BinaryScanner::Next::kEnd) break;
    if (r == logfmt::BinaryScanner::Next::kError) {
      ++log->damaged_blocks;
      AddError(log, {log->path, err.offset, 0, true, err.message});
      continue;
    }
    logfmt::BlockDecoder dec(block);
    std::uint64_t before = log->events;
    while (dec.Next(&ev, &err)) Collect(log, ev);
    if (!err.message.empty()) {
      ++log->damaged_blocks;
      AddError(log, {log->path, err.offset, 0, true, err.message});
    }
    (dec.has_seq() ? any_seq : any_plain) = true;
    log->blocks.push_back(block);
    numbers.push_back(block.number);
    if (progress) progress->Add(scan.offset() - last_offset, log->events - before);
    last_offset = scan.offset();
  }
  log->skipped_bytes = scan.skipped_bytes();
  FinishBinaryBlockChecks(log, any_seq, any_plain, &numbers);
  log->usable = !log->blocks.empty() || header == logfmt::BinaryScanner::HeaderResult::kOk;
}

void LoadText(LoadedLog* log, Progress* progress) {
  auto bytes = log->file.bytes();
  std::string_view all(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  logfmt::TextDecoder dec;
  std::vector<logfmt::Event> out;
  logfmt::DecodeError err;
  std::uint64_t line_no = 0, reported = 0;
  std::size_t pos = 0, last = 0;
  while (pos < all.size()) {
    std::size_t nl = all.find('\n', pos);
    if (nl == std::string_view::npos) nl = all.size();
    out.clear();
    std::uint64_t before = log->events;
    if (!dec.DecodeLine(all.substr(pos, nl - pos), ++line_no, &out, &err)) {
      ++log->bad_lines;
      AddError(log, {log->path, 0, line_no, false, err.message});
      if (!dec.saw_magic()) {  // the first real line is not the magic: not a text log at all
        log->fatal = true;
        return;
      }
    }
    for (const auto& e : out) Collect(log, e);
    pos = nl + 1;
    if (progress && (pos - last > (1u << 16) || pos >= all.size())) {
      progress->Add(std::min(pos, all.size()) - last, log->events - before);
      last = std::min(pos, all.size());
    }
    (void)reported;
  }
  log->header = dec.header();
  log->usable = dec.saw_magic();
}

}  // namespace

bool OpenLog(LoadedLog* log) {
  std::string why;
  if (!log->file.Open(log->path, &why)) {
    AddError(log, {log->path, 0, 0, false, why});
    log->fatal = true;
    return false;
  }
  auto bytes = log->file.bytes();
  log->format = logfmt::DetectFormat(bytes.first(std::min<std::size_t>(bytes.size(), 4096)));
  if (log->format == logfmt::Format::kUnknown) {
    AddError(log, {log->path, 0, 0, bytes.empty() ? false : true,
                   bytes.empty() ? "empty file, not a lock log"
                                 : "not a lockgraph log (no binary log magic and no "
                                   "'lockgraph-text 1' line at the start)"});
    log->fatal = true;
    return false;
  }
  return true;
}

void LoadOpenedLog(LoadedLog* log, Progress* progress) {
  if (log->format == logfmt::Format::kBinary) LoadBinary(log, progress);
  else if (log->format == logfmt::Format::kText) LoadText(log, progress);
}

void AddLogError(LoadedLog* log, InputError error) { AddError(log, std::move(error)); }

void FinishBinaryBlockChecks(LoadedLog* log, bool any_seq, bool any_plain,
                             std::vector<std::uint32_t>* numbers) {
  if (any_seq && any_plain) {
    AddError(log, {log->path, 0, 0, false,
                   "mixes blocks with and without sequence numbers; replaying in file order"});
  }
  log->has_seq = any_seq && !any_plain;
  // Block numbers come from one counter in the writer: a gap is a block that never arrived.
  if (numbers->empty() || log->damaged_blocks != 0) return;
  std::sort(numbers->begin(), numbers->end());
  numbers->erase(std::unique(numbers->begin(), numbers->end()), numbers->end());
  const std::uint64_t span = std::uint64_t{numbers->back()} - numbers->front() + 1;
  if (numbers->front() == 0 && span == numbers->size()) return;
  const std::uint64_t missing = numbers->back() + 1 - numbers->size();
  AddError(log, {log->path, 0, 0, false,
                 std::to_string(missing) + " block(s) missing (numbers " +
                     std::to_string(numbers->front()) + ".." + std::to_string(numbers->back()) +
                     " present with gaps); the writer lost data"});
}

void LoadLog(LoadedLog* log, Progress* progress) {
  if (OpenLog(log)) LoadOpenedLog(log, progress);
}

void LoadLogs(std::vector<std::unique_ptr<LoadedLog>>& logs, unsigned jobs, Progress* progress) {
  jobs = std::max(1u, std::min<unsigned>(jobs, static_cast<unsigned>(logs.size())));
  if (jobs <= 1) {
    for (auto& log : logs) LoadLog(log.get(), progress);
    return;
  }
  std::atomic<std::size_t> next{0};
  std::vector<std::thread> pool;
  for (unsigned t = 0; t < jobs; ++t) {
    pool.emplace_back([&] {
      for (std::size_t i = next++; i < logs.size(); i = next++) LoadLog(logs[i].get(), progress);
    });
  }
  for (auto& th : pool) th.join();
}

// --- Second pass -------------------------------------------------------------------------------

struct EventStream::Cursor {
  explicit Cursor(const logfmt::BlockView& b, std::size_t i) : dec(b), index(i), size(b.payload.size()) {}
  logfmt::BlockDecoder dec;
  logfmt::Event ev;
  std::size_t index;
  std::size_t size;
  // Moves to the next event (definitions skipped); false at the end of the block.
  bool Advance() {
    logfmt::DecodeError err;
    while (dec.Next(&ev, &err))
      if (!logfmt::IsDefinition(ev.type)) return true;
    return false;
  }
};

bool EventStream::CursorLater::operator()(const Cursor* a, const Cursor* b) const {
  if (a->ev.seq != b->ev.seq) return a->ev.seq > b->ev.seq;
  return a->index > b->index;
}

EventStream::EventStream(const LoadedLog& log) : log_(log) {
  if (log.format == logfmt::Format::kText) {
    text_ = std::make_unique<logfmt::TextDecoder>();
  } else if (log.format == logfmt::Format::kBinary && log.has_seq) {
    cursors_.reserve(log.blocks.size());
    for (std::size_t i = 0; i < log.blocks.size(); ++i) {
      cursors_.push_back(std::make_unique<Cursor>(log.blocks[i], i));
      if (cursors_.back()->Advance()) heap_.push(cursors_.back().get());
      else bytes_done_ += cursors_.back()->size;
    }
  }
}

EventStream::~EventStream() = default;

bool EventStream::Next(logfmt::Event* event) {
  if (log_.format == logfmt::Format::kText) return NextText(event);
  if (log_.format != logfmt::Format::kBinary) return false;
  return log_.has_seq ? NextBinaryMerged(event) : NextBinaryOrdered(event);
}

bool EventStream::NextBinaryOrdered(logfmt::Event* event) {
  logfmt::DecodeError err;
  for (;;) {
    if (decoder_) {
      while (decoder_->Next(event, &err))
        if (!logfmt::IsDefinition(event->type)) return true;
      bytes_done_ += log_.blocks[block_].payload.size() + logfmt::kBlockHeaderSize;
      decoder_.reset();
      ++block_;
    }
    if (block_ >= log_.blocks.size()) return false;
    decoder_ = std::make_unique<logfmt::BlockDecoder>(log_.blocks[block_]);
  }
}

bool EventStream::NextBinaryMerged(logfmt::Event* event) {
  if (current_) {
    if (current_->Advance()) {
      // A recorder's thread block is a run of consecutive stamps as long as no other thread
      // recorded in between: stay in it without touching the heap while it is still first.
      if (heap_.empty() || CursorLater()(heap_.top(), current_)) {
        *event = current_->ev;
        return true;
      }
      heap_.push(current_);
    } else {
      bytes_done_ += current_->size + logfmt::kBlockHeaderSize;
    }
    current_ = nullptr;
  }
  if (heap_.empty()) return false;
  current_ = heap_.top();
  heap_.pop();
  *event = current_->ev;
  return true;
}

bool EventStream::NextText(logfmt::Event* event) {
  auto bytes = log_.file.bytes();
  std::string_view all(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  for (;;) {
    while (pending_next_ < pending_.size()) {
      const logfmt::Event& e = pending_[pending_next_++];
      if (logfmt::IsDefinition(e.type)) continue;
      *event = e;
      return true;
    }
    if (text_pos_ >= all.size()) return false;
    std::size_t nl = all.find('\n', text_pos_);
    if (nl == std::string_view::npos) nl = all.size();
    pending_.clear();
    pending_next_ = 0;
    logfmt::DecodeError err;
    text_->DecodeLine(all.substr(text_pos_, nl - text_pos_), ++line_no_, &pending_, &err);
    bytes_done_ += nl + 1 - text_pos_;
    text_pos_ = nl + 1;
  }
}

}  // namespace lockgraph::analyzer
