#include "worker/train/run_directory.h"

#include "common/comm/agreement.h"
#include "common/error.h"
#include "worker/train/checkpoint.h"
#include "worker/train/runtime_env.h"

namespace fs = std::filesystem;

namespace mpibert::train {
namespace {

// True when dir holds nothing but logs/ and the lock file (what this run itself just created).
bool empty_but_logs(const fs::path& dir) {
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename() != "logs" && e.path().filename() != io::DirLock::kFileName) return false;
  return true;
}

// --overwrite_output_dir starts afresh: the previous run's checkpoints and `latest` would otherwise
// survive (one of the same step is not overwritten) and a later resume would pick them up.
void remove_previous_checkpoints(const fs::path& dir) {
  if (!fs::is_directory(dir)) return;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("checkpoint-", 0) == 0 || name == "latest") fs::remove_all(e.path());
  }
}

// An output_dir that cannot be a directory (it, or one of its parents, is a file) is bad input.
void check_can_be_directory(const fs::path& dir) {
  for (fs::path p = dir; !p.empty(); p = p.parent_path()) {
    std::error_code ec;
    const auto status = fs::status(p, ec);
    if (!ec && fs::exists(status) && !fs::is_directory(status))
      throw UsageError("train.output_dir " + dir.string() + ": " + p.string() +
                       " is a file, not a directory; choose another --output_dir");
    if (p == p.parent_path()) break;
  }
}

std::string decide_resume(const TrainConfig& t, const fs::path& dir) {
  check_can_be_directory(dir);
  // An elastic restart continues the attempt before it: from output_dir's latest checkpoint (whatever the
  // first attempt was told to resume from or overwrite), or afresh when that attempt saved none.
  const bool restart = t.do_train && elastic_attempt().restart_count > 0;
  if (!restart && !t.resume_from_checkpoint.empty() && t.resume_from_checkpoint != "latest")
    return t.resume_from_checkpoint;
  if (!t.do_train) return "";
  remove_stale_checkpoint_temps(dir.string());
  auto latest = find_latest_checkpoint(dir.string());
  if (restart) return latest.value_or("");
  if (t.resume_from_checkpoint == "latest") {
    if (!latest)
      throw UsageError("--resume_from_checkpoint: no checkpoint in " + dir.string() +
                       " to resume from (give a checkpoint directory, or drop the flag)");
    return *latest;
  }
  if (latest && !t.overwrite_output_dir) return *latest;
  if (!latest && !t.overwrite_output_dir && fs::is_directory(dir) && !empty_but_logs(dir))
    throw UsageError("output_dir " + dir.string() +
                     " already exists and is not empty (no checkpoint to resume from); use "
                     "--overwrite_output_dir to train into it anyway, or choose another --output_dir");
  if (t.overwrite_output_dir) remove_previous_checkpoints(dir);
  return "";
}

}  // namespace

RunDirectory::RunDirectory(const TrainConfig& train, HcclLike& comm, double timeout_s, const std::string& program)
    : dir_(train.output_dir) {
  resume_from_ = agree_on_root(
      comm,
      [&] {
        check_can_be_directory(dir_);
        made_it_ = !fs::exists(dir_);
        lock_ = io::DirLock::acquire(dir_.string(), io::LockMode::Exclusive, program + " (output_dir)");
        return decide_resume(train, dir_);
      },
      silence_limit(timeout_s));
}

RunDirectory::~RunDirectory() {
  if (!made_it_ || !lock_.held()) return;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir_, ec))
    if (e.path().filename() != io::DirLock::kFileName) return;
  lock_.release();
  fs::remove(dir_ / io::DirLock::kFileName, ec);
  fs::remove(dir_, ec);
}

std::string RunDirectory::rank_log_file(int rank) const {
  return (dir_ / "logs" / ("rank-" + std::to_string(rank) + ".log")).string();
}

}  // namespace mpibert::train
