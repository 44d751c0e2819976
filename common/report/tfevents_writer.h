#pragma once
// TensorBoard event files, as torch's SummaryWriter (and so Hugging Face's TensorBoard callback) writes
// them: DIR/events.out.tfevents.<unix time>.<hostname>.<pid>.<n>, TFRecord-framed Event protos, the first
// one file_version "brain.Event:2". Only rank 0 should own one. Not thread-safe.
#include <cstdint>
#include <cstdio>
#include <string>

namespace mpibert::report {

// Seconds since the Unix epoch with sub-second precision (the Event wall_time).
double unix_time_now();

// events.out.tfevents.%010d.<host>.<pid>.<n>, the name torch gives the n-th file of a process.
std::string event_file_name(double unix_time, const std::string& hostname, long pid, int n);

class TfEventsWriter {
 public:
  // Creates `dir` (and its parents) and a new event file in it, then writes and flushes the
  // file_version event. Throws std::runtime_error naming the path if either cannot be created.
  explicit TfEventsWriter(const std::string& dir);
  ~TfEventsWriter();  // closes the file (errors are ignored here: call close() to see them)
  TfEventsWriter(const TfEventsWriter&) = delete;
  TfEventsWriter& operator=(const TfEventsWriter&) = delete;

  // A point of the scalar series `tag` (e.g. "train/loss"); TensorBoard stores it as float32.
  void add_scalar(const std::string& tag, double value, int64_t step, double wall_time = unix_time_now());

  // A text for TensorBoard's Text tab, under "<tag>/text_summary" as torch's add_text names it (Markdown
  // is rendered, so wrap JSON or YAML in a ``` block to keep it as written).
  void add_text(const std::string& tag, const std::string& text, int64_t step, double wall_time = unix_time_now());

  // SessionLog START at `step`: TensorBoard then drops every point of this run dir (older files
  // included) at steps >= `step`, as torch's purge_step does. A run resumed from checkpoint-S passes
  // S + 1 so that points an interrupted run logged after its last checkpoint disappear.
  void add_session_start(int64_t step, double wall_time = unix_time_now());

  // Pushes what was written to the OS, so a live TensorBoard sees it. Call at every logging step.
  void flush();

  // Flushes and closes; throws std::runtime_error naming the file if that fails. Later calls do nothing.
  void close();

  const std::string& path() const { return path_; }

 private:
  void write_event(const std::string& serialized_event);
  [[noreturn]] void fail(const char* what) const;

  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace mpibert::report
