#pragma once
// The BERT encoder shared by every head: Hugging Face's BertModel (embeddings, post-LayerNorm
// transformer layers with GELU, optional pooler) in libtorch with HF parameter names, fused Q/K/V
// GEMM, fused attention tiles, fused dropout + residual + LayerNorm, and a counter-based dropout whose masks derive
// from an explicit seed. Heads (bert.h: masked LM, bert_classifier.h: sequence classification) register it as their
// child "bert", so parameter names read "bert.embeddings...", as in transformers.
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "worker/model/bert_config.h"

namespace mpibert::model {

// Dropout with p in [0,1) whose keep/drop decision for element i is a hash of (key, i): the same key
// gives the same mask whatever the thread count; backward recomputes the mask instead of storing it.
// float and bfloat16 tensors.
torch::Tensor seeded_dropout(const torch::Tensor& x, double p, uint64_t key);

// Hugging Face's initialisation: normal(0, initializer_range) for Linear/Embedding weights, drawn from
// an explicit generator when seeded (else torch's default CPU generator).
struct ParamInit {
  std::optional<at::Generator> gen;
  double stddev = 0.02;
  ParamInit(const BertConfig& cfg, std::optional<uint64_t> seed);
  void normal(torch::Tensor& t) const;
  // A 64-bit value from the same source (the dropout seed of a fresh model).
  uint64_t random64() const;
};

// Building blocks with Hugging Face's module names (`parent.name.weight` / `.bias`).
struct Dense {
  torch::Tensor weight, bias;
};
struct Norm {
  torch::Tensor weight, bias;
};
std::shared_ptr<torch::nn::Module> child_module(torch::nn::Module& parent, const std::string& name);
Dense make_dense(torch::nn::Module& parent, const std::string& name, int64_t in, int64_t out, const ParamInit& init);
Norm make_norm(torch::nn::Module& parent, const std::string& name, int64_t size);
torch::Tensor linear(const torch::Tensor& x, const Dense& d);
// A GEMM's weight: under autocast its kept bf16 copy (bf16_weights.h), else the weight itself.
torch::Tensor gemm_weight(const torch::Tensor& weight);
// LayerNorm in fp32 whatever the input dtype (bf16 under autocast).
torch::Tensor layer_norm(const torch::Tensor& x, const Norm& n, double eps);
torch::Tensor activation(const torch::Tensor& x, const std::string& hidden_act);

class BertEncoderImpl : public torch::nn::Module {
 public:
  BertEncoderImpl(const BertConfig& cfg, const ParamInit& init, bool with_pooler);

  // input_ids [B,L] (any integer dtype); attention_mask [B,L] (1 = token, 0 = padding) or undefined;
  // token_type_ids [B,L] or undefined (= all type 0, HF's default). Returns the last hidden states as
  // [B*L, H] fp32.
  torch::Tensor forward_flat(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                             const torch::Tensor& token_type_ids = {});
  // HF's BertPooler: tanh(dense(hidden state of the first token)); flat is forward_flat's output.
  torch::Tensor pool(const torch::Tensor& flat, int64_t batch, int64_t seq_len);

  const BertConfig& config() const { return cfg_; }
  const torch::Tensor& word_embeddings() const;

  // Dropout masks of the following forward passes derive from (seed, forward index since this call,
  // dropout site).
  void set_dropout_seed(uint64_t seed);
  uint64_t next_dropout_key();
  // Dropout as configured while training, identity in eval mode.
  torch::Tensor dropout(const torch::Tensor& x, double p);

  void set_fused_qkv(bool on) { fused_qkv_ = on; }
  bool fused_qkv() const { return fused_qkv_; }
  void set_fused_attention(bool on) { fused_attention_ = on; }
  bool fused_attention() const { return fused_attention_; }
  // bf16 (autocast) attention through the fused tiles too; off by default: measured slower than ATen's
  // oneDNN batched matmuls on the CPUs we have (docs/benchmarks.md).
  void set_fused_bf16_attention(bool on) { fused_bf16_attention_ = on; }
  bool fused_bf16_attention() const { return fused_bf16_attention_; }
  // dropout + residual + LayerNorm in one kernel (fused_ops.h), or as ATen ops.
  void set_fused_add_norm(bool on) { fused_add_norm_ = on; }
  bool fused_add_norm() const { return fused_add_norm_; }
  // The FFN's bias + GELU (hidden_act "gelu") in one kernel after a bias-free GEMM (fused_ops.h); off by
  // default (ATen's addmm + gelu): its gain was within the noise of our measurements (docs/benchmarks.md).
  void set_fused_bias_gelu(bool on) { fused_bias_gelu_ = on; }
  bool fused_bias_gelu() const { return fused_bias_gelu_; }
  // While training: keep each layer's input only and recompute the layer in backward (HF's
  // gradient_checkpointing): activation memory of one layer instead of all, for about a third more time.
  void set_gradient_checkpointing(bool on) { gradient_checkpointing_ = on; }
  bool gradient_checkpointing() const { return gradient_checkpointing_; }

  struct Layer;    // one transformer layer's parameters (bert_encoder.cpp)
  struct Weights;  // grouped parameter tensors (bert_encoder.cpp)

 private:
  torch::Tensor embed(const torch::Tensor& ids, const torch::Tensor& token_type_ids);
  torch::Tensor attention(const torch::Tensor& x, const Layer& l, const torch::Tensor& key_mask,
                          torch::Tensor& key_mask_bh, int64_t batch, int64_t seq_len);
  torch::Tensor layer(const torch::Tensor& x, const Layer& l, const torch::Tensor& key_mask, torch::Tensor& key_mask_bh,
                      int64_t batch, int64_t seq_len);
  // LayerNorm(dropout(a) + residual); .second: a bf16 copy of it for the next GEMM when bf16_copy and a is bf16
  // (fused path only), else undefined.
  std::pair<torch::Tensor, torch::Tensor> add_norm(const torch::Tensor& a, const torch::Tensor& residual, const Norm& n,
                                                   bool bf16_copy);
  torch::Tensor checkpointed_layer(const torch::Tensor& x, const Layer& l, const torch::Tensor& key_mask, int64_t batch,
                                   int64_t seq_len);

  BertConfig cfg_;
  std::shared_ptr<Weights> w_;
  bool fused_qkv_ = true;
  bool fused_attention_ = true;
  bool fused_bf16_attention_ = false;
  bool fused_add_norm_ = true;
  bool fused_bias_gelu_ = false;
  bool gradient_checkpointing_ = false;
  uint64_t dropout_seed_ = 0;
  uint64_t dropout_counter_ = 0;
};
TORCH_MODULE(BertEncoder);

}  // namespace mpibert::model
