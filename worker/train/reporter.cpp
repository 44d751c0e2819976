#include "worker/train/reporter.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/io/atomic_file.h"
#include "common/io/json_file.h"
#include "common/log/progress.h"

namespace mpibert::train {
namespace {

double seconds_between(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Peak matrix-multiply FLOP/s of this rank in the training precision, measured now: MFU's denominator.
double measure_peak_flops(bool bf16) {
  torch::NoGradGuard ng;
  const int64_t n = 1024;
  auto dtype = bf16 ? torch::kBFloat16 : torch::kFloat;
  auto a = torch::randn({n, n}).to(dtype), b = torch::randn({n, n}).to(dtype);
  auto c = torch::mm(a, b);  // warm up
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < 2; ++i) c = torch::mm(a, b);
    double s = seconds_between(t0, std::chrono::steady_clock::now());
    best = std::max(best, 2 * 2.0 * n * n * n / s);
  }
  return best;
}

// Rewrites metrics.jsonl without rows of steps after `step` (left by a run that went further).
void drop_rows_after(const std::string& path, int64_t step) {
  std::ifstream in(path);
  if (!in) return;
  std::string line, kept;
  bool dropped = false;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto row = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (row.is_object() && row.value("step", int64_t(0)) > step) {
      dropped = true;
      continue;
    }
    kept += line + "\n";
  }
  if (dropped) io::write_file_atomic(path, kept);
}

}  // namespace

Reporter::Reporter(const RunContext& ctx, const TrainConfig& train, int64_t total_steps, double steps_per_epoch)
    : ctx_(ctx), train_(train), total_steps_(total_steps), steps_per_epoch_(steps_per_epoch) {}

void Reporter::measure_peak() {
  peak_flops_ = measure_peak_flops(ctx_.bf16);
}

void Reporter::start_training(int64_t first_step, const nlohmann::json& log_history) {
  first_step_ = first_step;
  for (const auto& row : log_history)
    if (row.value("step", int64_t(0)) <= first_step) log_history_.push_back(row);
  if (ctx_.rank == 0) {
    const std::string path = ctx_.dir.file("metrics.jsonl");
    drop_rows_after(path, first_step);
    metrics_.open(path);
  }
  loop_start_ = interval_start_ = timed_start_ = Clock::now();
}

double Reporter::mfu(double flops_per_second) const {
  return peak_flops_ > 0 ? flops_per_second / (peak_flops_ * ctx_.world) : 0;
}

void Reporter::open_tensorboard(const std::string& dir, const std::string& run_config_yaml) {
  tensorboard_dir_ = dir;
  if (ctx_.rank != 0) return;
  tensorboard_ = std::make_unique<report::TfEventsWriter>(dir);
  if (first_step_ > 0) tensorboard_->add_session_start(first_step_ + 1);
  tensorboard_->add_text("args", "```yaml\n" + run_config_yaml + "```", first_step_);
  tensorboard_->flush();
  spdlog::info("TensorBoard event file: {}", tensorboard_->path());
}

// Hugging Face's tags: eval/<name without eval_> for evaluation rows, train/<name> otherwise.
void Reporter::write_scalars(const nlohmann::json& row, bool eval) {
  if (!tensorboard_) return;
  const int64_t step = row.value("step", int64_t(0));
  for (const auto& [key, value] : row.items()) {
    if (key == "step" || !value.is_number()) continue;
    const std::string name = eval && key.rfind("eval_", 0) == 0 ? key.substr(5) : key;
    tensorboard_->add_scalar((eval ? "eval/" : "train/") + name, value.get<double>(), step);
  }
  tensorboard_->flush();
}

void Reporter::append_row(const nlohmann::json& row) {
  log_history_.push_back(row);
  if (metrics_.is_open()) metrics_.append(row);
  write_scalars(row, row.contains("eval_loss") || row.contains("eval_samples"));
}

void Reporter::on_step(const StepRecord& s) {
  interval_loss_ += s.loss;
  interval_samples_ += s.samples;
  interval_tokens_ += s.tokens;
  interval_flops_ += s.flops;
  ++interval_steps_;
  run_loss_ += s.loss;
  run_samples_ += s.samples;
  run_tokens_ += s.tokens;
  run_flops_ += s.flops;
  ++run_steps_;
  const auto now = Clock::now();
  const int64_t done_here = s.step - first_step_;
  if (done_here == train_.throughput_warmup_steps) timed_start_ = now;
  if (done_here > train_.throughput_warmup_steps) {
    ++timed_steps_;
    timed_samples_ += s.samples;
    timed_tokens_ += s.tokens;
    timed_flops_ += s.flops;
    timed_seconds_ = seconds_between(timed_start_, now);
  }
  if (s.step % train_.logging_steps == 0 || s.step == total_steps_) {
    log_interval(s);
    interval_loss_ = interval_samples_ = interval_tokens_ = interval_flops_ = 0;
    interval_steps_ = 0;
    interval_start_ = Clock::now();
  }
}

void Reporter::log_interval(const StepRecord& last) {
  const double seconds = seconds_between(interval_start_, Clock::now());
  const double loss = interval_loss_ / interval_steps_;
  const double sps = seconds > 0 ? interval_samples_ / seconds : 0;
  const double tps = seconds > 0 ? interval_tokens_ / seconds : 0;
  const double interval_mfu = seconds > 0 ? mfu(interval_flops_ / seconds) : 0;
  const double avg_step = timed_steps_ > 0 ? timed_seconds_ / timed_steps_ : seconds / interval_steps_;
  const double eta = avg_step * (total_steps_ - last.step);
  std::string line = fmt::format(
      "step {}/{} | loss {:.4f} | lr {:.3e} | grad_norm {:.3f} | {:.1f} samples/s | "
      "{:.0f} tokens/s | MFU {:.1f}% | ETA {}",
      last.step, total_steps_, loss, last.learning_rate, last.grad_norm, sps, tps, 100 * interval_mfu,
      format_duration(eta));
  if (train_.cost_per_hour > 0) {
    const double so_far = seconds_between(start_, Clock::now()) / 3600 * train_.cost_per_hour;
    line += fmt::format(" | cost ${:.2f} (est. total ${:.2f})", so_far, so_far + eta / 3600 * train_.cost_per_hour);
  }
  spdlog::info("{}", line);
  append_row({{"step", last.step},
              {"epoch", epoch_at(last.step)},
              {"loss", loss},
              {"learning_rate", last.learning_rate},
              {"grad_norm", last.grad_norm},
              {"samples_per_second", sps},
              {"tokens_per_second", tps},
              {"mfu", interval_mfu}});
}

void Reporter::on_eval(int64_t step, const Metrics& metrics, const std::string& summary) {
  spdlog::info("eval at step {}: {}", step, summary);
  Metrics file = metrics;
  file["epoch"] = epoch_at(step);
  file["step"] = step;
  if (ctx_.rank == 0) io::write_json_file(ctx_.dir.file("eval_results.json"), nlohmann::json(file));
  // Every rank keeps the history (a checkpoint written on another host holds it too); files are rank 0's.
  append_row(nlohmann::json(file));
}

nlohmann::json Reporter::finish_training(int64_t step) {
  if (run_steps_ == 0) {  // resumed at or past the last step: the previous run's results stand
    const std::string path = ctx_.dir.file("train_results.json");
    return std::filesystem::exists(path) ? io::read_json_file(path) : nlohmann::json::object();
  }
  const double runtime = seconds_between(loop_start_, Clock::now());
  // Throughput leaves out the first throughput_warmup_steps steps (as Hugging Face's option does).
  const bool timed = timed_steps_ > 0;
  const double s = timed ? timed_seconds_ : runtime;
  const double samples = timed ? timed_samples_ : run_samples_;
  const double steps = timed ? timed_steps_ : run_steps_;
  const double tokens = timed ? timed_tokens_ : run_tokens_;
  const double flops = timed ? timed_flops_ : run_flops_;
  nlohmann::json j = {{"train_runtime", runtime},
                      {"train_samples_per_second", s > 0 ? samples / s : 0},
                      {"train_steps_per_second", s > 0 ? steps / s : 0},
                      {"train_tokens_per_second", s > 0 ? tokens / s : 0},
                      {"train_loss", run_steps_ > 0 ? run_loss_ / run_steps_ : 0},
                      {"total_flos", run_flops_},
                      {"world_size", ctx_.world},
                      {"mfu", s > 0 ? mfu(flops / s) : 0},
                      {"global_step", step},
                      {"epoch", epoch_at(step)},
                      {"precision", ctx_.bf16 ? "bf16" : "fp32"},
                      {"threads_per_rank", ctx_.threads}};
  if (ctx_.rank == 0) io::write_json_file(ctx_.dir.file("train_results.json"), j);
  return j;
}

void Reporter::close() {
  if (tensorboard_) tensorboard_->close();
  tensorboard_.reset();
}

void Reporter::write_all_results(const nlohmann::json& train_results, const Metrics& eval) {
  if (ctx_.rank != 0) return;
  nlohmann::json all = train_results.is_object() ? train_results : nlohmann::json::object();
  for (const auto& [k, v] : eval.items())
    if (v.is_number()) all[k] = v;  // flat, as the HF examples write it; tables stay in eval_results.json
  io::write_json_file(ctx_.dir.file("all_results.json"), all);
}

}  // namespace mpibert::train
