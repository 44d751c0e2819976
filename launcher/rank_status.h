#pragma once
// How one rank ended, written by its wrapper as CAPTURE_DIR/.rank-N.status (JSON, atomically) and read
// by gaudi_spawn to name the rank that failed first, its host, its exit code and its last lines.
#include <optional>
#include <string>
#include <vector>

namespace mpibert::launcher {

struct RankStatus {
  int rank = -1;
  std::string host;
  long pid = 0;
  int exit_code = 0;              // when signal == 0
  int signal = 0;                 // > 0: the program was killed by this signal
  bool stopped = false;           // it ended because it was told to stop (job teardown): not a first failure
  std::string start_error;        // the program could not be started
  double finished_at = 0;         // wall-clock seconds, orders failures across ranks
  std::vector<std::string> tail;  // last lines of its console output
  int stop_step = -1;             // a clean stop (exit 75): the step it said it stopped at, -1 = not said
  std::string checkpoint;         // the last checkpoint it said it saved

  bool failed() const { return signal != 0 || exit_code != 0 || !start_error.empty(); }
  // The exit code a shell would report: exit_code, or 128 + signal.
  int shell_code() const;
};

std::string status_file_name(int rank);  // ".rank-N.status"
std::string log_file_name(int rank);     // "rank-N.log"

std::string rank_status_to_json(const RankStatus& status);
// Throws std::runtime_error naming `source` when the text is not a status.
RankStatus rank_status_from_json(const std::string& text, const std::string& source);

// A stop request: gaudi_spawn writes the signal here, then sends SIGUSR2 through mpirun (which passes
// SIGUSR2 on to every rank at once, where its own SIGTERM handling would kill them within a second).
// A wrapper that cannot read the file (another host, no shared filesystem) delivers SIGTERM.
void write_stop_request(const std::string& dir, int sig);
int read_stop_request(const std::string& dir);  // 0 when there is none

// Written with io::write_file_atomic, so readers never see half a status.
void write_rank_status(const std::string& dir, const RankStatus& status);
// Every readable status in dir (unreadable or half-written files are skipped), sorted by rank.
std::vector<RankStatus> read_rank_statuses(const std::string& dir);
// What remove_rank_files does with the rank-N.log files.
enum class RankLogs { Keep, Remove };
// Removes the status and stop-request files gaudi_spawn made in dir (with the temporary files of writes
// cut short), and the rank logs when asked.
void remove_rank_files(const std::string& dir, RankLogs logs);

// The failure that brought the job down: the earliest failed rank that was not told to stop, else the
// earliest failed rank at all. Ties break by rank.
std::optional<RankStatus> first_failure(const std::vector<RankStatus>& statuses);

// "rank 1 on host vm exited with code 3" / "... was killed by signal 9 (SIGKILL)" / "... could not start: ...".
std::string describe_rank_end(const RankStatus& status);
// The failure report: the line above, then the last lines of the rank's output, indented.
std::string format_failure_report(const RankStatus& status, const std::string& log_path);

}  // namespace mpibert::launcher
