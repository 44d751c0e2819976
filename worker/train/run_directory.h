#pragma once
// The run's output directory and the Hugging Face rules for it: a non-empty output_dir is refused
// unless overwrite_output_dir; one holding checkpoints resumes from the latest (or from
// resume_from_checkpoint). Rank 0 decides (no shared file system is assumed) and tells every rank.
// Rank 0 holds output_dir exclusively for the whole run (common/io/dir_lock.h): a second run into it
// fails at once naming this one, instead of resuming from its checkpoints and mixing their files.
#include <filesystem>
#include <string>

#include "common/comm/hccl_like.h"
#include "common/config/run_config.h"
#include "common/io/dir_lock.h"

namespace mpibert::train {

class RunDirectory {
 public:
  // Locks the directory on rank 0 and decides whether and where to resume (UsageError on every rank
  // for a refused or locked directory). `program` names this run in another run's lock error.
  RunDirectory(const TrainConfig& train, HcclLike& comm, double timeout_s, const std::string& program);
  // A run that made the directory for its lock and wrote nothing else into it leaves no directory behind.
  ~RunDirectory();
  RunDirectory(RunDirectory&&) = default;
  RunDirectory& operator=(RunDirectory&&) = default;

  const std::filesystem::path& path() const { return dir_; }
  // The checkpoint to resume from; "" = a fresh start.
  const std::string& resume_from() const { return resume_from_; }
  std::string rank_log_file(int rank) const;
  std::string file(const std::string& name) const { return (dir_ / name).string(); }

 private:
  std::filesystem::path dir_;
  std::string resume_from_;
  io::DirLock lock_;      // rank 0 only
  bool made_it_ = false;  // rank 0: the directory did not exist before the lock
};

}  // namespace mpibert::train
