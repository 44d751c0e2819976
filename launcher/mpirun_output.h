#pragma once
// What gaudi_spawn does with mpirun's output: stdout carries rank 0's console output as frames, which go
// back to gaudi_spawn's stdout and stderr as they arrive; stderr is mpirun's own (MpirunStderr).
#include "launcher/console_frames.h"
#include "launcher/mpirun_messages.h"
#include "launcher/output_tee.h"

namespace mpibert::launcher {

class MpirunOutput : public OutputSink {
 public:
  explicit MpirunOutput(int mpirun_log_fd);
  void write(int stream, const char* data, size_t size) override;
  MpirunStderr& messages() { return messages_; }
  // Rank 0's console output has arrived: every daemon had started, since ranks start only after them.
  bool rank_output_seen() const { return rank_output_seen_; }

 private:
  void to_console(int stream, const char* data, size_t size);
  MpirunStderr messages_;
  FrameDecoder frames_;
  bool console_[3] = {false, true, true};  // false once that stream of the console is gone
  bool rank_output_seen_ = false;
};

}  // namespace mpibert::launcher
