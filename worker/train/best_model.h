#pragma once
// The best checkpoint and early stopping, as the Hugging Face Trainer keeps them: each evaluation's
// metric_for_best_model (with "eval_" prefixed when missing) is compared with the best so far
// (greater_is_better: as given, else higher is better unless the name ends in "loss"); a checkpoint
// saved at a best evaluation becomes best_model_checkpoint, which save_total_limit never deletes and
// load_best_model_at_end loads; early_stopping_patience evaluations without an improvement of more
// than early_stopping_threshold stop training. Torch-free.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/config/run_config.h"

namespace mpibert::train {

class BestModel {
 public:
  explicit BestModel(const TrainConfig& train);

  // Whether best-model tracking is on (metric_for_best_model given, load_best_model_at_end, or patience).
  bool enabled() const { return enabled_; }
  // Records an evaluation's metrics; returns true when early stopping says training should stop.
  // A metric missing from the evaluation is a UsageError listing the ones it has.
  bool on_eval(int64_t step, const nlohmann::ordered_json& metrics);
  // A checkpoint was written at `step`: it becomes the best one if that step's evaluation was the best.
  void on_save(int64_t step, const std::string& path);

  const std::string& checkpoint() const { return checkpoint_; }
  const std::string& metric_name() const { return metric_; }
  double value() const { return best_ ? *best_ : 0.0; }

  // trainer_state.json keys: best_metric, best_model_checkpoint, early_stopping_patience_counter.
  void describe(nlohmann::json& state) const;
  void restore(const nlohmann::json& state);

 private:
  bool enabled_ = false;
  std::string metric_;
  bool greater_is_better_ = false;
  int64_t patience_ = 0;
  double threshold_ = 0;
  std::optional<double> best_;
  int64_t best_step_ = -1;
  std::string checkpoint_;
  int64_t bad_evals_ = 0;
};

}  // namespace mpibert::train
