#pragma once
// Rank 0's console output travels from its wrapper to gaudi_spawn through mpirun's stdout, framed, so
// that gaudi_spawn can tell it apart from mpirun's own messages (which go to a log, not the console)
// and still give each byte back to the stream it was written to, as it arrives.
//
// A frame is 0x1E, the stream ('1' stdout, '2' stderr), the payload length in 4 hex digits, then the
// payload. Only the wrapper writes to its stdout, and mpirun passes those bytes on in order, so frames
// arrive whole and in order however mpirun chunks them. Bytes outside frames (something else printing
// on mpirun's stdout) are passed on to stdout unchanged.
#include <cstddef>
#include <functional>
#include <string>

namespace mpibert::launcher {

constexpr char kFrameMark = '\x1e';
constexpr size_t kMaxFramePayload = 0xffff;

// The frames for `size` bytes of `stream` (1 or 2); several when size exceeds kMaxFramePayload.
std::string encode_frames(int stream, const char* data, size_t size);

class FrameDecoder {
 public:
  using Sink = std::function<void(int stream, const char* data, size_t size)>;
  explicit FrameDecoder(Sink sink) : sink_(std::move(sink)) {}
  // Any split of the byte stream gives the same output; payloads are passed on as soon as they arrive.
  void feed(const char* data, size_t size);

 private:
  size_t feed_header(const char* data, size_t size);
  Sink sink_;
  std::string header_;  // a frame header being collected (starts with kFrameMark)
  int stream_ = 1;
  size_t remaining_ = 0;  // payload bytes of the current frame still to come
};

}  // namespace mpibert::launcher
