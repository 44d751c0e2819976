#include "launcher/output_tee.h"

#include <cerrno>
#include <cstring>

#include "launcher/console_frames.h"
#include "launcher/process.h"

namespace mpibert::launcher {

TailBuffer::TailBuffer(size_t max_lines, size_t max_line_chars)
    : max_lines_(max_lines), max_line_chars_(max_line_chars) {}

void TailBuffer::push(std::string line) {
  if (observer_) observer_(line);
  lines_.push_back(std::move(line));
  while (lines_.size() > max_lines_) lines_.pop_front();
}

void TailBuffer::append(int stream, const char* data, size_t size) {
  const int s = stream == 2 ? 2 : 1;
  std::string& cur = partial_[s];
  for (size_t i = 0; i < size; ++i) {
    char c = data[i];
    if (pending_cr_[s] && c != '\n') cur.clear();  // a lone CR starts the line over
    pending_cr_[s] = false;
    if (c == '\n') {
      push(std::move(cur));
      cur.clear();
    } else if (c == '\r') {
      pending_cr_[s] = true;  // decided by the next byte: CRLF ends the line normally
    } else {
      cur += c;
      if (cur.size() > 2 * max_line_chars_) cur.erase(0, cur.size() - max_line_chars_);
    }
  }
}

std::vector<std::string> TailBuffer::lines() const {
  std::vector<std::string> out(lines_.begin(), lines_.end());
  for (int s : {1, 2})
    if (!partial_[s].empty()) out.push_back(partial_[s]);
  while (out.size() > max_lines_) out.erase(out.begin());
  for (auto& line : out)
    if (line.size() > max_line_chars_) line = "..." + line.substr(line.size() - max_line_chars_);
  return out;
}

OutputTee::OutputTee(int log_fd, Console console, TailBuffer* tail) : log_fd_(log_fd), console_(console), tail_(tail) {}

void OutputTee::write(int stream, const char* data, size_t size) {
  bool console_ok = true;  // false: the console is gone (e.g. `| head` closed); keep logging
  if (console_ == Console::Mirror) console_ok = write_all(stream == 2 ? 2 : 1, data, size);
  if (console_ == Console::Framed) {
    const std::string frames = encode_frames(stream, data, size);
    console_ok = write_all(1, frames.data(), frames.size());
  }
  if (!console_ok) console_ = Console::Off;
  if (log_fd_ >= 0 && !write_all(log_fd_, data, size)) {
    log_error_ = std::strerror(errno);
    log_fd_ = -1;  // keep the rank running; the error is reported at the end
  }
  if (tail_) tail_->append(stream, data, size);
}

}  // namespace mpibert::launcher
