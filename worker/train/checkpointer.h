#pragma once
// Checkpoints of a distributed run: rank 0 writes OUTPUT_DIR/checkpoint-<step>/ (checkpoint.h: atomic,
// HF names) while the others wait; on resume rank 0 reads one and broadcasts the weights, the
// optimizer state and trainer_state.json to every rank (no shared file system is assumed).
#include <nlohmann/json.hpp>
#include <string>

#include "common/config/run_config.h"
#include "worker/optim/optimizer.h"
#include "worker/train/run_context.h"
#include "worker/train/task.h"

namespace mpibert::train {

class Checkpointer {
 public:
  Checkpointer(RunContext& ctx, Task& task, const TrainConfig& train, std::string run_config_yaml);

  // Writes checkpoint-<step> with the model, the optimizer state (if any) and trainer_state; `keep`
  // is a checkpoint save_total_limit must not delete (the best one). Returns its path on every rank.
  std::string save(int64_t step, const nlohmann::json& trainer_state, const optim::Optimizer* optimizer,
                   const std::string& keep);
  // Loads `dir` into the model (and the optimizer when given) on every rank; returns its trainer_state.
  // Problems are UsageErrors naming the directory, raised on every rank: another vocabulary than the
  // data's, other training data (unless train.ignore_data_change), another optimizer, non-finite tensors.
  nlohmann::json restore(const std::string& dir, optim::Optimizer* optimizer);

 private:
  void broadcast_tensors(NamedTensors tensors);

  RunContext& ctx_;
  Task& task_;
  const TrainConfig& train_;
  std::string run_config_yaml_;
};

}  // namespace mpibert::train
