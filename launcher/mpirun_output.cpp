#include "launcher/mpirun_output.h"

#include "launcher/process.h"

namespace mpibert::launcher {

MpirunOutput::MpirunOutput(int mpirun_log_fd)
    : messages_(mpirun_log_fd),
      frames_([this](int stream, const char* data, size_t size) { to_console(stream, data, size); }) {}

void MpirunOutput::write(int stream, const char* data, size_t size) {
  if (stream == 2)
    messages_.write(data, size);
  else
    frames_.feed(data, size);
}

void MpirunOutput::to_console(int stream, const char* data, size_t size) {
  rank_output_seen_ = true;
  const int fd = stream == 2 ? 2 : 1;
  if (console_[fd] && !write_all(fd, data, size)) console_[fd] = false;  // e.g. `| head` closed
}

}  // namespace mpibert::launcher
