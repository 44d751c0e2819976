#pragma once
// BertForSequenceClassification in libtorch, numerically as Hugging Face's: the shared encoder with
// its pooler (tanh(dense(first token))), dropout (classifier_dropout, else hidden_dropout_prob) and a
// linear classifier, with HF's names (bert.*, bert.pooler.dense.*, classifier.*) and HF's losses per
// problem type, summed instead of averaged so that the trainer can divide by the global count.
#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "worker/model/bert_config.h"
#include "worker/model/bert_encoder.h"
#include "worker/model/hf_state.h"

namespace mpibert::model {

class BertForSequenceClassificationImpl : public torch::nn::Module {
 public:
  // cfg.num_labels outputs; initialised as Hugging Face does (see BertForMaskedLMImpl).
  explicit BertForSequenceClassificationImpl(const BertConfig& cfg, std::optional<uint64_t> init_seed = std::nullopt);

  // input_ids, attention_mask, token_type_ids as BertEncoderImpl::forward_flat. Returns [B, num_labels]
  // fp32 logits.
  torch::Tensor logits(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                       const torch::Tensor& token_type_ids);

  // Hugging Face state_dict names -> tensors (sharing storage with the parameters), in HF's order.
  std::vector<std::pair<std::string, torch::Tensor>> hf_state_dict();
  // As BertForMaskedLMImpl::load_hf_state_dict, for checkpoints of this model.
  std::vector<std::string> load_hf_state_dict(const std::map<std::string, torch::Tensor>& tensors,
                                              const std::string& source, bool strict = true);

  const BertConfig& config() const { return cfg_; }
  BertEncoderImpl& encoder() { return *bert_; }
  void set_dropout_seed(uint64_t seed) { bert_->set_dropout_seed(seed); }

 private:
  BertConfig cfg_;
  BertEncoder bert_{nullptr};
  Dense classifier_;
};
TORCH_MODULE(BertForSequenceClassification);

// HF's loss for the problem type, summed over its units: single-label cross-entropy over rows
// (labels int64 [B]), regression squared error over rows (labels float [B]), multi-label binary
// cross-entropy with logits over rows x labels (labels float [B, num_labels]). fp32 scalar.
torch::Tensor classification_loss_sum(const torch::Tensor& logits, const torch::Tensor& labels,
                                      const std::string& problem_type);

// How many units classification_loss_sum sums over for `rows` examples (rows, or rows x num_labels).
int64_t classification_loss_units(int64_t rows, int64_t num_labels, const std::string& problem_type);

}  // namespace mpibert::model
