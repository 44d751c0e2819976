#include "worker/train/best_model.h"

#include <cmath>

#include "common/error.h"

namespace mpibert::train {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

BestModel::BestModel(const TrainConfig& t)
    : patience_(t.early_stopping_patience), threshold_(t.early_stopping_threshold) {
  std::string name = t.metric_for_best_model;
  enabled_ = !name.empty() || t.load_best_model_at_end || patience_ > 0;
  if (name.empty()) name = "loss";
  metric_ = name.rfind("eval_", 0) == 0 ? name : "eval_" + name;
  greater_is_better_ = t.greater_is_better == "auto" ? !ends_with(metric_, "loss") : t.greater_is_better == "true";
}

bool BestModel::on_eval(int64_t step, const nlohmann::ordered_json& metrics) {
  if (!enabled_) return false;
  if (!metrics.contains(metric_) || !metrics.at(metric_).is_number()) {
    std::string have;
    for (const auto& item : metrics.items())
      if (item.value().is_number()) have += (have.empty() ? "" : ", ") + item.key();
    throw UsageError("metric_for_best_model: the evaluation has no metric '" + metric_ + "' (it has: " + have + ")");
  }
  const double v = metrics.at(metric_).get<double>();
  const bool improved = !best_ || (greater_is_better_ ? v > *best_ : v < *best_);
  if (improved && std::isfinite(v)) {
    const bool significant = !best_ || std::fabs(v - *best_) > threshold_;
    best_ = v;
    best_step_ = step;
    bad_evals_ = significant ? 0 : bad_evals_ + 1;
  } else {
    ++bad_evals_;
  }
  return patience_ > 0 && bad_evals_ >= patience_;
}

void BestModel::on_save(int64_t step, const std::string& path) {
  if (enabled_ && step == best_step_) checkpoint_ = path;
}

void BestModel::describe(nlohmann::json& state) const {
  state["best_metric"] = best_ ? nlohmann::json(*best_) : nlohmann::json(nullptr);
  state["best_model_checkpoint"] = checkpoint_.empty() ? nlohmann::json(nullptr) : nlohmann::json(checkpoint_);
  state["best_step"] = best_step_;
  state["early_stopping_patience_counter"] = bad_evals_;
}

void BestModel::restore(const nlohmann::json& state) {
  if (state.contains("best_metric") && state["best_metric"].is_number()) best_ = state["best_metric"].get<double>();
  if (state.contains("best_model_checkpoint") && state["best_model_checkpoint"].is_string())
    checkpoint_ = state["best_model_checkpoint"].get<std::string>();
  best_step_ = state.value("best_step", int64_t(-1));
  bad_evals_ = state.value("early_stopping_patience_counter", int64_t(0));
}

}  // namespace mpibert::train
