#include "worker/optim/lr_schedule.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"

namespace mpibert::optim {

std::vector<std::string> lr_schedule_types() {
  return {"linear", "polynomial", "cosine", "constant", "constant_with_warmup"};
}

int64_t resolve_warmup_steps(int64_t warmup_steps, double warmup_ratio, int64_t total_steps) {
  if (warmup_steps > 0) return warmup_steps;
  if (warmup_ratio < 0 || warmup_ratio > 1)
    throw UsageError("train.warmup_ratio must be in [0, 1], got " + std::to_string(warmup_ratio));
  return static_cast<int64_t>(std::ceil(warmup_ratio * static_cast<double>(total_steps)));
}

LrSchedule::LrSchedule(const LrScheduleOptions& o) : options_(o) {
  const std::string& t = o.type;
  if (t == "linear")
    kind_ = Kind::Linear;
  else if (t == "polynomial")
    kind_ = Kind::Polynomial;
  else if (t == "cosine")
    kind_ = Kind::Cosine;
  else if (t == "constant")
    kind_ = Kind::Constant;
  else if (t == "constant_with_warmup")
    kind_ = Kind::ConstantWithWarmup;
  else {
    std::string valid;
    for (const auto& n : lr_schedule_types()) valid += (valid.empty() ? "" : ", ") + n;
    throw UsageError("train.lr_scheduler_type: '" + t + "' is not valid; valid: " + valid);
  }
  if (o.warmup_steps < 0) throw UsageError("train.warmup_steps must be >= 0, got " + std::to_string(o.warmup_steps));
  if (!(o.base_lr >= 0)) throw UsageError("train.learning_rate must be >= 0, got " + std::to_string(o.base_lr));
  const bool decays = kind_ == Kind::Linear || kind_ == Kind::Polynomial || kind_ == Kind::Cosine;
  if (decays && o.total_steps <= 0)
    throw UsageError("lr_scheduler_type " + t + " needs the number of training steps (> 0), got " +
                     std::to_string(o.total_steps));
  if (kind_ == Kind::Polynomial) {
    if (o.lr_end > o.base_lr)
      throw UsageError("train.lr_end (" + std::to_string(o.lr_end) + ") must be <= the learning rate (" +
                       std::to_string(o.base_lr) + ")");
    if (!(o.power > 0)) throw UsageError("train.power must be > 0, got " + std::to_string(o.power));
  }
}

double LrSchedule::factor_at(int64_t step) const {
  const auto s = static_cast<double>(step);
  const auto warm = static_cast<double>(options_.warmup_steps);
  const auto total = static_cast<double>(options_.total_steps);
  if (kind_ == Kind::Constant) return 1.0;
  if (step < options_.warmup_steps) return s / std::max(1.0, warm);
  switch (kind_) {
    case Kind::ConstantWithWarmup:
      return 1.0;
    case Kind::Linear:
      return std::max(0.0, (total - s) / std::max(1.0, total - warm));
    case Kind::Cosine: {
      const double progress = (s - warm) / std::max(1.0, total - warm);
      return std::max(0.0, 0.5 * (1.0 + std::cos(M_PI * options_.num_cycles * 2.0 * progress)));
    }
    case Kind::Polynomial: {
      const double lr_init = options_.base_lr;
      if (lr_init == 0) return 0.0;
      if (step > options_.total_steps) return options_.lr_end / lr_init;
      const double range = lr_init - options_.lr_end;
      const double decay_steps = total - warm;
      const double pct_remaining = decay_steps > 0 ? 1.0 - (s - warm) / decay_steps : 0.0;
      return (range * std::pow(pct_remaining, options_.power) + options_.lr_end) / lr_init;
    }
    default:
      return 1.0;
  }
}

}  // namespace mpibert::optim
