#include "worker/model/bert.h"

#include <torch/torch.h>

#include <stdexcept>

#include "worker/model/fused_ops.h"

namespace mpibert::model {

BertForMaskedLMImpl::BertForMaskedLMImpl(const BertConfig& cfg, std::optional<uint64_t> init_seed)
    : torch::nn::Module("BertForMaskedLM"), cfg_(cfg) {
  validate(cfg_, "BertForMaskedLM config");
  torch::NoGradGuard no_grad;
  const ParamInit init(cfg_, init_seed);
  bert_ = register_module("bert", BertEncoder(cfg_, init, /*with_pooler=*/false));
  // HF registers cls.predictions.bias before its children (transform; decoder is tied and deduplicated).
  auto predictions = child_module(*child_module(*this, "cls"), "predictions");
  decoder_bias_ = predictions->register_parameter("bias", torch::zeros({cfg_.vocab_size}));
  auto transform = child_module(*predictions, "transform");
  transform_ = make_dense(*transform, "dense", cfg_.hidden_size, cfg_.hidden_size, init);
  transform_norm_ = make_norm(*transform, "LayerNorm", cfg_.hidden_size);
  bert_->set_dropout_seed(init.random64());
}

torch::Tensor BertForMaskedLMImpl::head_transform(const torch::Tensor& rows) {
  // Logits in the matmul's dtype (bf16 under autocast): the fused cross-entropy reads them as they are.
  torch::Tensor t = activation(linear(rows, transform_), cfg_.hidden_act);
  t = layer_norm(t, transform_norm_, cfg_.layer_norm_eps);
  return at::addmm(decoder_bias_, t, gemm_weight(bert_->word_embeddings()).t());
}

torch::Tensor BertForMaskedLMImpl::encode(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
  return bert_->forward_flat(input_ids, attention_mask).view({input_ids.size(0), input_ids.size(1), cfg_.hidden_size});
}

torch::Tensor BertForMaskedLMImpl::logits(const torch::Tensor& input_ids, const torch::Tensor& attention_mask) {
  const torch::Tensor x = bert_->forward_flat(input_ids, attention_mask);
  return head_transform(x).to(at::kFloat).view({input_ids.size(0), input_ids.size(1), cfg_.vocab_size});
}

MlmOutput BertForMaskedLMImpl::forward_mlm(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                                           const torch::Tensor& labels_in, bool sparse_head) {
  if (!labels_in.defined()) throw std::invalid_argument("BertForMaskedLM::forward_mlm: labels are required");
  if (labels_in.sizes() != input_ids.sizes())
    throw std::invalid_argument("BertForMaskedLM: labels has shape " + c10::str(labels_in.sizes()) +
                                ", input_ids has " + c10::str(input_ids.sizes()));
  const torch::Tensor labels = labels_in.to(at::kLong).reshape({-1});
  const torch::Tensor x = bert_->forward_flat(input_ids, attention_mask);

  MlmOutput out;
  torch::Tensor masked_rows;
  {
    torch::NoGradGuard no_grad;
    masked_rows = labels.ne(-100).nonzero().squeeze(1);
  }
  // Cross-entropy (and the argmax for accuracy) in one fp32 pass over the logits (fused_ops.h).
  std::pair<torch::Tensor, torch::Tensor> ce;
  if (sparse_head) {
    ce = fused_cross_entropy_sum(head_transform(x.index_select(0, masked_rows)), labels.index_select(0, masked_rows));
  } else {
    ce = fused_cross_entropy_sum(head_transform(x), labels);
  }
  out.loss_sum = ce.first;
  out.num_correct = ce.second;
  out.num_masked = torch::scalar_tensor(masked_rows.size(0), at::kLong);
  return out;
}

std::vector<std::pair<std::string, torch::Tensor>> BertForMaskedLMImpl::hf_state_dict() {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& item : named_parameters(/*recurse=*/true)) out.emplace_back(item.key(), item.value());
  out.emplace_back("cls.predictions.decoder.weight", bert_->word_embeddings());
  out.emplace_back("cls.predictions.decoder.bias", decoder_bias_);
  return out;
}

std::vector<std::string> BertForMaskedLMImpl::load_hf_state_dict(const std::map<std::string, torch::Tensor>& tensors,
                                                                 const std::string& source, bool strict) {
  NamedTensors params;
  for (const auto& item : named_parameters(true)) params.emplace_back(item.key(), item.value());
  return load_hf_tensors_strict(params, BertHead::MaskedLM, tensors, source, strict);
}

}  // namespace mpibert::model
