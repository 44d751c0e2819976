#pragma once
// mpirun's stderr as gaudi_spawn reads it. mpirun's own messages (the boxed "job aborted" paragraphs,
// ORTE's daemon reports, ssh's errors) go to a log file, not to the user: gaudi_spawn's one line is the
// message, and diagnose_mpirun_messages() turns the messages into that line when no rank explains the
// failure (a host that cannot be resolved or reached, a lost daemon). Ranks on other hosts, whose files
// gaudi_spawn cannot read, send their status on the same stream as one marked line (status_record).
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "launcher/output_tee.h"
#include "launcher/rank_status.h"

namespace mpibert::launcher {

// A rank's status as one line on its wrapper's stderr: a mark gaudi_spawn looks for, then the JSON.
std::string status_record(const RankStatus& status);

// What mpirun's messages say went wrong, in one line, and the host they name ("" if none).
struct MpirunDiagnosis {
  std::string host;
  std::string text;
  bool host_lost = false;      // a host went away during the job (its daemon died or the network failed)
  bool daemon_failed = false;  // "a daemon failed": at launch, or (when ranks had run) a host lost mid-job
};
std::optional<MpirunDiagnosis> diagnose_mpirun_messages(const std::vector<std::string>& lines);

// Splits mpirun's stderr into lines: status records are parsed and kept; every other line is written
// to the log (as it comes, so that a hang leaves evidence) and its last lines kept for the diagnosis.
class MpirunStderr {
 public:
  explicit MpirunStderr(int log_fd, size_t keep_lines = 400);
  void write(const char* data, size_t size);
  void finish();  // a last line without its newline
  const std::vector<RankStatus>& statuses() const { return statuses_; }
  std::vector<std::string> lines() const { return {lines_.begin(), lines_.end()}; }
  size_t line_count() const { return line_count_; }

 private:
  void take_line(std::string line);
  int log_fd_;
  size_t keep_lines_;
  std::string partial_;
  std::deque<std::string> lines_;
  size_t line_count_ = 0;
  std::vector<RankStatus> statuses_;
};

}  // namespace mpibert::launcher
