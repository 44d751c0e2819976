#pragma once
// Learning-rate schedules as Hugging Face's get_scheduler (torch-free): linear warmup from 0, then
// linear | polynomial | cosine | constant decay, or constant | constant_with_warmup.
// `step` counts completed optimizer steps, as LambdaLR: the lr used for the first update is lr_at(0).
#include <cstdint>
#include <string>
#include <vector>

namespace mpibert::optim {

struct LrScheduleOptions {
  std::string type = "linear";  // linear | polynomial | cosine | constant | constant_with_warmup
  double base_lr = 5e-5;
  int64_t warmup_steps = 0;
  int64_t total_steps = 0;  // training steps; needed by linear, polynomial and cosine
  double lr_end = 1e-7;     // polynomial: final learning rate (HF default)
  double power = 1.0;       // polynomial: power (HF default)
  double num_cycles = 0.5;  // cosine: number of waves (HF default 0.5 = half cosine to 0)
};

std::vector<std::string> lr_schedule_types();

// HF TrainingArguments.get_warmup_steps: warmup_steps if > 0, else ceil(warmup_ratio * total_steps).
int64_t resolve_warmup_steps(int64_t warmup_steps, double warmup_ratio, int64_t total_steps);

class LrSchedule {
 public:
  // Throws UsageError (naming train.lr_scheduler_type and the values) for an unknown type,
  // negative warmup, total_steps <= 0 where the schedule decays, or lr_end > base_lr (polynomial).
  explicit LrSchedule(const LrScheduleOptions& options);

  double factor_at(int64_t step) const;  // multiplier of base_lr (HF's lr_lambda)
  double lr_at(int64_t step) const { return options_.base_lr * factor_at(step); }
  const LrScheduleOptions& options() const { return options_; }

 private:
  enum class Kind { Linear, Polynomial, Cosine, Constant, ConstantWithWarmup };
  LrScheduleOptions options_;
  Kind kind_;
};

}  // namespace mpibert::optim
