#pragma once
// What a run tells its user: the progress line (loss, lr, grad norm, samples/s, tokens/s, MFU, ETA,
// cost), metrics.jsonl (one row per logged step and per evaluation, Hugging Face's keys), the
// evaluation files, train_results.json, all_results.json and trainer_state.json's log_history.
// Rank 0 writes the files; every rank keeps the same numbers.
#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "common/config/run_config.h"
#include "common/report/tfevents_writer.h"
#include "worker/train/run_context.h"
#include "worker/train/run_files.h"
#include "worker/train/task.h"

namespace mpibert::train {

// One optimizer step, summed over all ranks.
struct StepRecord {
  int64_t step = 0;  // after the step (1-based)
  double loss = 0;   // the step's loss (global sum / global units)
  double learning_rate = 0;
  double grad_norm = 0;
  double samples = 0, tokens = 0, flops = 0;
};

class Reporter {
 public:
  // total_steps / steps_per_epoch: the run's plan (0 when not training).
  Reporter(const RunContext& ctx, const TrainConfig& train, int64_t total_steps, double steps_per_epoch);

  // Measures this rank's GEMM peak in the training precision (MFU's denominator).
  void measure_peak();
  // Opens metrics.jsonl (rank 0); rows past first_step, from a run that went further before it
  // was resumed here, are dropped so the file tells one history. log_history continues the checkpoint's.
  void start_training(int64_t first_step, const nlohmann::json& log_history);
  // TensorBoard event files in `dir` (rank 0): the run configuration as text, then every logged row as
  // train/* and eval/* scalars, flushed at each logging step. A run resumed at first_step > 0 starts its
  // file with a SessionLog START at first_step + 1, so TensorBoard drops points an interrupted run logged
  // after its checkpoint.
  void open_tensorboard(const std::string& dir, const std::string& run_config_yaml);
  const std::string& tensorboard_dir() const { return tensorboard_dir_; }
  void on_step(const StepRecord& s);
  void on_eval(int64_t step, const Metrics& metrics, const std::string& summary);
  // train_results.json (rank 0); returns its content.
  nlohmann::json finish_training(int64_t step);
  // all_results.json: train and the last evaluation's results together (rank 0).
  void write_all_results(const nlohmann::json& train_results, const Metrics& eval);
  // Closes the TensorBoard file (errors writing it are reported here).
  void close();

  const nlohmann::json& log_history() const { return log_history_; }
  // Tokens processed in training by this run.
  double tokens_seen() const { return run_tokens_; }
  double epoch_at(int64_t step) const { return steps_per_epoch_ > 0 ? step / steps_per_epoch_ : 0; }

 private:
  using Clock = std::chrono::steady_clock;
  double mfu(double flops_per_second) const;
  void log_interval(const StepRecord& last);
  void append_row(const nlohmann::json& row);
  void write_scalars(const nlohmann::json& row, bool eval);

  const RunContext& ctx_;
  const TrainConfig& train_;
  int64_t total_steps_ = 0;
  double steps_per_epoch_ = 0;
  double peak_flops_ = 0;
  MetricsLog metrics_;
  std::unique_ptr<report::TfEventsWriter> tensorboard_;
  std::string tensorboard_dir_;
  nlohmann::json log_history_ = nlohmann::json::array();
  Clock::time_point start_ = Clock::now();  // the run's start (cost)
  Clock::time_point loop_start_, interval_start_, timed_start_;
  int64_t first_step_ = 0;
  // Since the last progress line.
  double interval_loss_ = 0, interval_samples_ = 0, interval_tokens_ = 0, interval_flops_ = 0;
  int64_t interval_steps_ = 0;
  // Since training (re)started here; "timed" leaves out the throughput warm-up steps.
  double run_loss_ = 0, run_samples_ = 0, run_tokens_ = 0, run_flops_ = 0, timed_samples_ = 0, timed_tokens_ = 0,
         timed_flops_ = 0, timed_seconds_ = 0;
  int64_t run_steps_ = 0, timed_steps_ = 0;
};

}  // namespace mpibert::train
