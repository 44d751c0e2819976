#include "common/data/encode_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/data/unicode_text.h"
#include "common/error.h"
#include "common/io/atomic_file.h"

namespace mpibert::data {

namespace {

// The input, memory-mapped when it is a regular file (read into memory otherwise, e.g. a pipe).
class InputText {
 public:
  explicit InputText(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw UsageError(path + ": cannot open input text: " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd_, &st) == 0 && S_ISDIR(st.st_mode)) {
      ::close(fd_);
      throw UsageError(path + ": is a directory, expected a text file");
    }
    if (::fstat(fd_, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
      void* p = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd_, 0);
      if (p != MAP_FAILED) {
        map_ = p;
        map_size_ = static_cast<size_t>(st.st_size);
        ::madvise(map_, map_size_, MADV_SEQUENTIAL);
        return;
      }
    }
    char buf[1 << 16];
    for (;;) {
      const ssize_t got = ::read(fd_, buf, sizeof buf);
      if (got == 0) break;
      if (got < 0) {
        if (errno == EINTR) continue;
        const std::string why = std::strerror(errno);
        ::close(fd_);
        throw std::runtime_error(path + ": read error: " + why);
      }
      copy_.append(buf, static_cast<size_t>(got));
    }
  }
  ~InputText() {
    if (map_ != nullptr) ::munmap(map_, map_size_);
    if (fd_ >= 0) ::close(fd_);
  }
  InputText(const InputText&) = delete;
  InputText& operator=(const InputText&) = delete;

  std::string_view text() const {
    return map_ != nullptr ? std::string_view(static_cast<const char*>(map_), map_size_) : std::string_view(copy_);
  }

 private:
  std::string path_;
  int fd_ = -1;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  std::string copy_;
};

// Writes v in decimal at p, returns the end.
inline char* write_uint(char* p, uint32_t v) {
  static constexpr char kDigits[] =
      "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
      "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
      "8081828384858687888990919293949596979899";
  char tmp[12];
  char* t = tmp + sizeof tmp;
  while (v >= 100) {
    const uint32_t r = (v % 100) * 2;
    v /= 100;
    *--t = kDigits[r + 1];
    *--t = kDigits[r];
  }
  if (v >= 10) {
    *--t = kDigits[v * 2 + 1];
    *--t = kDigits[v * 2];
  } else {
    *--t = static_cast<char>('0' + v);
  }
  const size_t n = static_cast<size_t>(tmp + sizeof tmp - t);
  std::memcpy(p, t, n);
  return p + n;
}

using Block = std::pair<size_t, size_t>;  // [begin, end) byte offsets
using Blocks = std::vector<Block>;

Blocks cut_blocks(std::string_view text) {
  Blocks blocks;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = std::min(text.size(), begin + kEncodeBlockBytes);
    if (end < text.size()) {
      const void* nl = std::memchr(text.data() + end, '\n', text.size() - end);
      end = nl == nullptr ? text.size() : static_cast<size_t>(static_cast<const char*>(nl) - text.data()) + 1;
    }
    blocks.emplace_back(begin, end);
    begin = end;
  }
  return blocks;
}

class OutputFile {
 public:
  explicit OutputFile(const std::string& path) : path_(path), tmp_(io::temporary_path_for(path)) {
    file_ = std::fopen(tmp_.c_str(), "wb");
    if (file_ == nullptr) throw std::runtime_error(path + ": cannot create output: " + std::strerror(errno));
    std::setvbuf(file_, nullptr, _IOFBF, 1 << 20);
  }
  ~OutputFile() {
    if (file_ != nullptr) {
      std::fclose(file_);
      std::remove(tmp_.c_str());
    }
  }
  void write(const std::string& bytes) {
    if (!bytes.empty() && std::fwrite(bytes.data(), 1, bytes.size(), file_) != bytes.size()) {
      throw std::runtime_error(path_ + ": write error: " + std::strerror(errno));
    }
  }
  void commit() {
    const int flushed = std::fflush(file_);
    const int err = errno;
    const int closed = std::fclose(file_);
    file_ = nullptr;
    if (flushed != 0 || closed != 0) {
      std::remove(tmp_.c_str());
      throw std::runtime_error(path_ + ": write error: " + std::strerror(flushed != 0 ? err : errno));
    }
    try {
      io::rename_durably(tmp_, path_);
    } catch (...) {
      std::remove(tmp_.c_str());
      throw;
    }
  }

 private:
  std::string path_, tmp_;
  FILE* file_ = nullptr;
};

}  // namespace

EncodeStats encode_lines(const WordPieceTokenizer& tok, std::string_view text, std::string& out) {
  EncodeStats stats;
  stats.bytes = text.size();
  WordList scratch;
  std::vector<int32_t> ids;
  std::vector<char> line_out;
  size_t pos = 0;
  while (pos < text.size()) {
    const void* nl = std::memchr(text.data() + pos, '\n', text.size() - pos);
    const size_t end = nl == nullptr ? text.size() : static_cast<size_t>(static_cast<const char*>(nl) - text.data());
    const std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (unicode::is_blank(line)) continue;
    ids.clear();
    tok.encode(line, ids, scratch);
    line_out.resize(ids.size() * 11 + 1);
    char* p = line_out.data();
    for (size_t k = 0; k < ids.size(); ++k) {
      if (k > 0) *p++ = ' ';
      p = write_uint(p, static_cast<uint32_t>(ids[k]));
    }
    *p++ = '\n';
    out.append(line_out.data(), static_cast<size_t>(p - line_out.data()));
    ++stats.lines;
    stats.tokens += ids.size();
  }
  return stats;
}

namespace {

void add(EncodeStats& total, const EncodeStats& part) {
  total.lines += part.lines;
  total.bytes += part.bytes;
  total.tokens += part.tokens;
}

std::string_view block_text(std::string_view text, const Block& block) {
  return text.substr(block.first, block.second - block.first);
}

// One thread: encodes and writes the blocks one after the other.
EncodeStats encode_blocks_in_order(const WordPieceTokenizer& tok, std::string_view text, const Blocks& blocks,
                                   OutputFile& output, const ProgressHook& progress) {
  EncodeStats total;
  std::string out;
  for (const Block& block : blocks) {
    out.clear();
    add(total, encode_lines(tok, block_text(text, block), out));
    output.write(out);
    progress.report(static_cast<int64_t>(block.second));
  }
  return total;
}

// Worker threads encode blocks into a ring of slots; the calling thread writes them in block order,
// so the output is the same as encode_blocks_in_order's. The first failure stops every thread.
class ParallelBlockEncoder {
 public:
  ParallelBlockEncoder(const WordPieceTokenizer& tok, std::string_view text, const Blocks& blocks, size_t workers)
      : tok_(tok), text_(text), blocks_(blocks), workers_(workers), window_(2 * workers), ring_(window_) {}

  EncodeStats run(OutputFile& output, const ProgressHook& progress) {
    std::vector<std::thread> pool;
    pool.reserve(workers_);
    for (size_t w = 0; w < workers_; ++w) pool.emplace_back([this] { encode_claimed_blocks(); });
    EncodeStats total;
    try {
      write_blocks_in_order(output, total, progress);
    } catch (...) {
      fail(std::current_exception());
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (error_) stop_ = true;
    }
    slot_free_.notify_all();
    for (auto& t : pool) t.join();
    if (error_) std::rethrow_exception(error_);
    return total;
  }

 private:
  struct Slot {
    std::string out;
    EncodeStats stats;
    bool done = false;
  };

  // Waits for a free slot; false when every block is taken or the run stopped.
  bool claim_block(size_t& i) {
    std::unique_lock<std::mutex> lock(mutex_);
    slot_free_.wait(lock, [&] { return stop_ || next_ >= blocks_.size() || next_ < written_ + window_; });
    if (stop_ || next_ >= blocks_.size()) return false;
    i = next_++;
    return true;
  }

  // Worker thread.
  void encode_claimed_blocks() {
    size_t i;
    while (claim_block(i)) {
      Slot& slot = ring_[i % window_];
      try {
        slot.out.clear();
        const EncodeStats s = encode_lines(tok_, block_text(text_, blocks_[i]), slot.out);
        std::lock_guard<std::mutex> lock(mutex_);
        slot.stats = s;
        slot.done = true;
      } catch (...) {
        fail(std::current_exception());
      }
      block_done_.notify_all();
    }
  }

  // Calling thread: writes each block as soon as it is encoded, then frees its slot.
  void write_blocks_in_order(OutputFile& output, EncodeStats& total, const ProgressHook& progress) {
    for (size_t i = 0; i < blocks_.size(); ++i) {
      Slot& slot = ring_[i % window_];
      {
        std::unique_lock<std::mutex> lock(mutex_);
        block_done_.wait(lock, [&] { return slot.done || stop_; });
        if (stop_) return;
      }
      output.write(slot.out);
      add(total, slot.stats);
      progress.report(static_cast<int64_t>(blocks_[i].second));
      {
        std::lock_guard<std::mutex> lock(mutex_);
        slot.done = false;
        written_ = i + 1;
      }
      slot_free_.notify_all();
    }
  }

  // Keeps the first failure and stops the run.
  void fail(std::exception_ptr error) {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!error_) error_ = error;
    stop_ = true;
  }

  const WordPieceTokenizer& tok_;
  std::string_view text_;
  const Blocks& blocks_;
  size_t workers_, window_;
  std::vector<Slot> ring_;
  std::mutex mutex_;
  std::condition_variable block_done_, slot_free_;
  size_t next_ = 0, written_ = 0;  // the next block to encode; the blocks written so far
  bool stop_ = false;
  std::exception_ptr error_;
};

}  // namespace

EncodeStats encode_file(const WordPieceTokenizer& tok, const std::string& input_path, const std::string& output_path,
                        int threads, const ProgressHook& progress) {
  const auto start = std::chrono::steady_clock::now();
  InputText input(input_path);
  const std::string_view text = input.text();
  const Blocks blocks = cut_blocks(text);
  size_t workers = threads > 0 ? static_cast<size_t>(threads) : std::max(1u, std::thread::hardware_concurrency());
  workers = std::min(workers, std::max<size_t>(1, blocks.size()));

  OutputFile output(output_path);
  progress.start(static_cast<int64_t>(text.size()));
  EncodeStats total = workers <= 1 ? encode_blocks_in_order(tok, text, blocks, output, progress)
                                   : ParallelBlockEncoder(tok, text, blocks, workers).run(output, progress);
  if (blocks.empty()) progress.report(0);  // an empty input: done too
  output.commit();
  total.bytes = text.size();
  total.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return total;
}

}  // namespace mpibert::data
