#pragma once
// The run's output directory and the Hugging Face rules for it: a non-empty output_dir is refused
// unless overwrite_output_dir; one holding checkpoints resumes from the latest (or from
// resume_from_checkpoint). Rank 0 decides (no shared file system is assumed) and tells every rank.
#include <filesystem>
#include <string>

#include "common/comm/hccl_like.h"
#include "common/config/run_config.h"

namespace mpibert::train {

class RunDirectory {
 public:
  // Decides whether and where to resume (UsageError on every rank for a refused directory).
  RunDirectory(const TrainConfig& train, HcclLike& comm, double timeout_s);

  const std::filesystem::path& path() const { return dir_; }
  // The checkpoint to resume from; "" = a fresh start.
  const std::string& resume_from() const { return resume_from_; }
  std::string rank_log_file(int rank) const;
  std::string file(const std::string& name) const { return (dir_ / name).string(); }

 private:
  std::filesystem::path dir_;
  std::string resume_from_;
};

}  // namespace mpibert::train
