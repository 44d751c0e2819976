#pragma once
// The files a run leaves in OUTPUT_DIR besides checkpoints (docs/training.md "Output directory"): metrics.jsonl (one
// JSON object per logged step, Hugging Face log keys), train_results.json, eval_results.json, config.json and
// run_config.yaml. Rank 0 writes them.
#include <nlohmann/json.hpp>
#include <string>

namespace mpibert {

// Appends one JSON object per line and flushes, so a crash loses at most the line being written.
class MetricsLog {
 public:
  MetricsLog() = default;
  explicit MetricsLog(const std::string& path) { open(path); }
  void open(const std::string& path);
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;
  void append(const nlohmann::json& row);
  bool is_open() const { return fp_ != nullptr; }

 private:
  std::FILE* fp_ = nullptr;
  std::string path_;
};

// Rounds to `digits` significant digits for human-facing JSON (metrics keep full precision).
double round_sig(double value, int digits);

}  // namespace mpibert
