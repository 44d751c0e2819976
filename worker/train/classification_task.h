#pragma once
// Sequence classification (run_classification, as Hugging Face's run_classification / run_glue):
// BertForSequenceClassification fine-tuned on CSV / TSV / JSON-lines files, with dynamic padding,
// single-label, multi-label and regression problems, evaluation (accuracy, macro-F1, per-class scores,
// confusion matrix) and predictions of a test file.
#include <string>
#include <vector>

#include "common/config/classification_config.h"
#include "worker/model/bert_classifier.h"
#include "worker/train/classification_data.h"
#include "worker/train/evaluator.h"
#include "worker/train/pretrained.h"
#include "worker/train/run_context.h"
#include "worker/train/task.h"

namespace mpibert::train {

class ClassificationTask : public Task {
 public:
  ClassificationTask(RunContext& ctx, const ClassificationConfig& cfg);

  torch::nn::Module& model() override { return *model_; }
  void set_dropout_seed(uint64_t seed) override { model_->set_dropout_seed(seed); }
  int64_t num_examples(Split split) const override;
  Batch make_batch(Split split, const std::vector<int64_t>& indices, int64_t epoch) override;
  at::Tensor loss_sum(const Batch& batch) override;
  size_t eval_sums_size() const override;
  void eval_batch(const Batch& batch, std::vector<double>& sums) override;
  Metrics eval_metrics(const std::vector<double>& sums) const override;
  std::string eval_summary(const Metrics& metrics) const override;
  nlohmann::json model_config_json() const override;
  NamedTensors hf_state() override { return model_->hf_state_dict(); }
  void load_checkpoint_tensors(const std::map<std::string, at::Tensor>& tensors, const std::string& source) override;
  std::vector<std::string> checkpoint_files() const override;
  void export_model(const std::string& dir, const std::string& save_dtype) override;
  CardFacts card_facts() const override;
  std::string vocab_file() const override { return data_.vocab_path; }
  std::string data_fingerprint() const override { return data_.fingerprint; }

  // do_predict: every test example's prediction and probabilities to predict_results.txt, and, when
  // the test file has labels, its metrics (test_*) to test_results.json and all_results.json.
  void predict(Evaluator& evaluator);

 private:
  void build_model(const Pretrained* pretrained);
  const data::ClassificationDataset& dataset(Split split) const;
  int64_t num_labels() const { return mcfg_.num_labels; }
  std::string prediction_text(const float* scores) const;
  void write_predictions(const std::vector<double>& rows, int64_t width) const;
  void add_to_sums(const at::Tensor& logits, const Batch& batch, std::vector<double>& sums) const;

  RunContext& ctx_;
  const ClassificationConfig& cfg_;
  ClassificationData data_;
  std::string problem_type_;
  model::BertConfig mcfg_;
  model::BertForSequenceClassification model_{nullptr};
};

// run_classification: opens the run, loads the data (before anything is written to output_dir), builds
// the task and the engine, trains / evaluates / predicts. Returns the exit code.
int run_classification(const ClassificationConfig& cfg, HcclLike& comm);

}  // namespace mpibert::train
