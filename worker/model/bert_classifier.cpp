#include "worker/model/bert_classifier.h"

#include <torch/torch.h>

#include <stdexcept>

namespace mpibert::model {

BertForSequenceClassificationImpl::BertForSequenceClassificationImpl(const BertConfig& cfg,
                                                                     std::optional<uint64_t> init_seed)
    : torch::nn::Module("BertForSequenceClassification"), cfg_(cfg) {
  validate(cfg_, "BertForSequenceClassification config");
  torch::NoGradGuard no_grad;
  const ParamInit init(cfg_, init_seed);
  bert_ = register_module("bert", BertEncoder(cfg_, init, /*with_pooler=*/true));
  classifier_ = make_dense(*this, "classifier", cfg_.hidden_size, cfg_.num_labels, init);
  bert_->set_dropout_seed(init.random64());
}

torch::Tensor BertForSequenceClassificationImpl::logits(const torch::Tensor& input_ids,
                                                        const torch::Tensor& attention_mask,
                                                        const torch::Tensor& token_type_ids) {
  const int64_t B = input_ids.size(0), L = input_ids.size(1);
  const torch::Tensor hidden = bert_->forward_flat(input_ids, attention_mask, token_type_ids);
  const double p = cfg_.classifier_dropout >= 0 ? cfg_.classifier_dropout : cfg_.hidden_dropout_prob;
  const torch::Tensor pooled = bert_->dropout(bert_->pool(hidden, B, L), p);
  return linear(pooled, classifier_).to(at::kFloat);
}

std::vector<std::pair<std::string, torch::Tensor>> BertForSequenceClassificationImpl::hf_state_dict() {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& item : named_parameters(/*recurse=*/true)) out.emplace_back(item.key(), item.value());
  return out;
}

std::vector<std::string> BertForSequenceClassificationImpl::load_hf_state_dict(
    const std::map<std::string, torch::Tensor>& tensors, const std::string& source, bool strict) {
  return load_hf_tensors_strict(hf_state_dict(), BertHead::SequenceClassification, tensors, source, strict);
}

torch::Tensor classification_loss_sum(const torch::Tensor& logits_in, const torch::Tensor& labels,
                                      const std::string& problem_type) {
  const torch::Tensor logits = logits_in.to(at::kFloat);
  if (problem_type == "regression") {
    return (logits.reshape({-1}) - labels.to(at::kFloat).reshape({-1})).pow(2).sum();
  }
  if (problem_type == "multi_label_classification") {
    return at::binary_cross_entropy_with_logits(logits, labels.to(at::kFloat), {}, {}, at::Reduction::Sum);
  }
  if (problem_type == "single_label_classification") {
    return at::cross_entropy_loss(logits, labels.to(at::kLong), {}, at::Reduction::Sum);
  }
  throw std::invalid_argument("classification_loss_sum: unknown problem_type '" + problem_type + "'");
}

int64_t classification_loss_units(int64_t rows, int64_t num_labels, const std::string& problem_type) {
  return problem_type == "multi_label_classification" ? rows * num_labels : rows;
}

}  // namespace mpibert::model
