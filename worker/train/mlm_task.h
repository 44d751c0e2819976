#pragma once
// The masked-LM pre-training task on HDF5 shards (run_mlm): dynamic masking from (seed, epoch,
// sequence index), BertForMaskedLM with the sparse head, the loss summed over masked tokens, and MLM
// evaluation (loss, accuracy over masked tokens, perplexity).
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/config/run_config.h"
#include "common/data/shard_reader.h"
#include "common/io/dir_lock.h"
#include "worker/model/bert.h"
#include "worker/train/masking.h"
#include "worker/train/run_context.h"
#include "worker/train/task.h"

namespace mpibert::train {

class MlmTask : public Task {
 public:
  MlmTask(RunContext& ctx, const RunConfig& cfg);

  torch::nn::Module& model() override { return *model_; }
  void set_dropout_seed(uint64_t seed) override { model_->set_dropout_seed(seed); }
  int64_t num_examples(Split split) const override;
  Batch make_batch(Split split, const std::vector<int64_t>& indices, int64_t epoch) override;
  at::Tensor loss_sum(const Batch& batch) override;
  size_t eval_sums_size() const override { return 4; }
  void eval_batch(const Batch& batch, std::vector<double>& sums) override;
  Metrics eval_metrics(const std::vector<double>& sums) const override;
  std::string eval_summary(const Metrics& metrics) const override;
  nlohmann::json model_config_json() const override;
  NamedTensors hf_state() override { return model_->hf_state_dict(); }
  void load_checkpoint_tensors(const std::map<std::string, at::Tensor>& tensors, const std::string& source) override;
  std::vector<std::string> checkpoint_files() const override;
  void export_model(const std::string& dir, const std::string& save_dtype) override;
  CardFacts card_facts() const override;
  std::string vocab_file() const override { return vocab_path_; }
  std::string data_fingerprint() const override { return data_fingerprint_; }

 private:
  void open_data();
  void build_model(RunContext& ctx);
  const data::ShardDataset& dataset(Split split) const;
  void check_same_vocabulary(const std::string& model_vocab, const data::ShardDataset& ds) const;

  const RunConfig& cfg_;
  std::optional<data::ShardDataset> train_ds_, eval_ds_;
  std::string vocab_path_, tokenizer_config_path_;
  bool lowercase_ = true;
  int64_t seq_len_ = 0;
  std::vector<uint8_t> is_continuation_;
  std::unique_ptr<MlmMasker> masker_;
  model::BertConfig mcfg_;
  model::BertForMaskedLM model_{nullptr};
  double flops_per_token_ = 0;
  io::DirLock shards_lock_;       // rank 0 only
  std::string data_fingerprint_;  // SHA-256 of the shard set's manifest
};

// run_mlm: opens the run, builds the task and the engine, trains and/or evaluates. Returns the exit code.
int run_mlm(const RunConfig& cfg, HcclLike& comm);

// `run_mlm --export_hf CHECKPOINT --output_dir DIR`: writes the Hugging Face directory (one process).
void export_checkpoint_to_hf(const RunConfig& cfg);

}  // namespace mpibert::train
