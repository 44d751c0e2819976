#include "launcher/console_frames.h"

#include <cstdio>

namespace mpibert::launcher {
namespace {

constexpr size_t kHeaderSize = 6;  // mark, stream, 4 hex digits

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

// Whether byte `i` of a header can be `c`: the stream, then hex digits.
bool header_byte_ok(size_t i, char c) {
  return i == 1 ? (c == '1' || c == '2') : hex_value(c) >= 0;
}

}  // namespace

std::string encode_frames(int stream, const char* data, size_t size) {
  std::string out;
  const char tag = stream == 2 ? '2' : '1';
  for (size_t off = 0; off < size; off += kMaxFramePayload) {
    const size_t n = std::min(kMaxFramePayload, size - off);
    char header[kHeaderSize + 1];
    std::snprintf(header, sizeof header, "%c%c%04zx", kFrameMark, tag, n);
    out.append(header, kHeaderSize);
    out.append(data + off, n);
  }
  return out;
}

// Consumes header bytes; returns how many. A header that turns out not to be one is passed on as text as
// soon as one of its bytes does not fit (a mark in plain text never holds back what follows it).
size_t FrameDecoder::feed_header(const char* data, size_t size) {
  size_t used = 0;
  while (used < size && header_.size() < kHeaderSize) {
    const char c = data[used++];
    header_ += c;
    if (header_byte_ok(header_.size() - 1, c)) continue;
    sink_(1, header_.data(), header_.size());
    header_.clear();
    return used;
  }
  if (header_.size() < kHeaderSize) return used;
  size_t length = 0;
  for (size_t i = 2; i < kHeaderSize; ++i) length = length * 16 + static_cast<size_t>(hex_value(header_[i]));
  stream_ = header_[1] - '0';
  remaining_ = length;
  header_.clear();
  return used;
}

void FrameDecoder::feed(const char* data, size_t size) {
  size_t i = 0;
  while (i < size) {
    if (remaining_ > 0) {
      const size_t n = std::min(remaining_, size - i);
      sink_(stream_, data + i, n);
      remaining_ -= n;
      i += n;
    } else if (!header_.empty()) {
      i += feed_header(data + i, size - i);
    } else if (data[i] == kFrameMark) {
      header_ += data[i++];
    } else {
      size_t end = i;  // plain text up to the next mark
      while (end < size && data[end] != kFrameMark) ++end;
      sink_(1, data + i, end - i);
      i = end;
    }
  }
}

}  // namespace mpibert::launcher
