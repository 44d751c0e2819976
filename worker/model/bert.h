#pragma once
// BertForMaskedLM in libtorch, numerically as Hugging Face's modeling_bert (post-LayerNorm, GELU erf,
// word + position + token-type embeddings, tied decoder), with Hugging Face parameter names, an
// optional sparse MLM head (transform + decoder only on masked positions, as NVIDIA's/MLPerf BERT),
// fused Q/K/V GEMM, and a counter-based dropout whose masks derive from an explicit seed.
#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "worker/model/bert_config.h"

namespace mpibert::model {

struct MlmOutput {
  torch::Tensor loss_sum;     // sum of cross-entropy over masked tokens, fp32 scalar (differentiable)
  torch::Tensor num_masked;   // int64 scalar
  torch::Tensor num_correct;  // int64 scalar: masked tokens whose argmax prediction equals the label
};

class BertForMaskedLMImpl : public torch::nn::Module {
 public:
  // Initialised as Hugging Face does: normal(0, initializer_range) for Linear/Embedding weights, zero
  // biases, LayerNorm weight 1 / bias 0, the padding_idx row of the word embeddings zero. With
  // init_seed the weights come from a generator seeded with it; otherwise from torch's default CPU
  // generator (torch::manual_seed). The dropout seed starts from the same source.
  explicit BertForMaskedLMImpl(const BertConfig& cfg, std::optional<uint64_t> init_seed = std::nullopt);

  // input_ids [B,L] int64; attention_mask [B,L] (1 = token, 0 = padding; any integer/bool/float
  // dtype) or undefined = all tokens; labels [B,L] int64 with -100 where not masked.
  // sparse_head: run the head only on rows with labels != -100 (same loss and gradients as dense).
  MlmOutput forward_mlm(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                        const torch::Tensor& labels, bool sparse_head);

  // Dense MLM logits [B,L,V] in fp32 (fill_mask, evaluation).
  torch::Tensor logits(const torch::Tensor& input_ids, const torch::Tensor& attention_mask);

  // Last encoder hidden states [B,L,H] (fp32).
  torch::Tensor encode(const torch::Tensor& input_ids, const torch::Tensor& attention_mask);

  // Hugging Face state_dict names -> tensors (sharing storage with the parameters), in HF's order.
  // Includes cls.predictions.decoder.weight (= bert.embeddings.word_embeddings.weight) and
  // cls.predictions.decoder.bias (= cls.predictions.bias), as HF's state_dict has them.
  std::vector<std::pair<std::string, torch::Tensor>> hf_state_dict();

  // Copies HF-named tensors into the parameters (any float dtype; shapes must match). The tied
  // aliases (decoder.weight/bias) may stand in for their primary names. Keys HF checkpoints carry
  // that this model has no use for (bert.embeddings.position_ids, bert.pooler.*, cls.seq_relationship.*)
  // are skipped. Throws std::runtime_error naming `source` on a missing parameter, a shape mismatch, or
  // (when strict) any other unexpected key. Returns the keys it skipped.
  std::vector<std::string> load_hf_state_dict(const std::map<std::string, torch::Tensor>& tensors,
                                              const std::string& source, bool strict = true);

  const BertConfig& config() const { return cfg_; }

  // Dropout masks of the following forward passes derive from (seed, forward index since this call,
  // dropout site): set it per micro-step from (seed, step, rank, micro-step) for reproducible runs.
  void set_dropout_seed(uint64_t seed);

  // Q, K and V as one GEMM on weights concatenated at forward time (default on; parameters and
  // their names are unchanged). Off = three GEMMs, as Hugging Face computes them.
  void set_fused_qkv(bool on) { fused_qkv_ = on; }
  bool fused_qkv() const { return fused_qkv_; }

  // fp32 attention through the fused (batch, head)-parallel kernel of attention.h (default on);
  // off = ATen batched matmuls + softmax, as Hugging Face computes it. bf16 always uses the latter.
  void set_fused_attention(bool on) { fused_attention_ = on; }
  bool fused_attention() const { return fused_attention_; }

  struct Weights;  // the parameter tensors, grouped per layer (defined in bert.cpp)

 private:
  torch::Tensor encode_flat(const torch::Tensor& input_ids, const torch::Tensor& attention_mask);
  torch::Tensor head_transform(const torch::Tensor& hidden_rows);
  uint64_t next_dropout_key();

  BertConfig cfg_;
  std::shared_ptr<Weights> w_;
  bool fused_qkv_ = true;
  bool fused_attention_ = true;
  uint64_t dropout_seed_ = 0;
  uint64_t dropout_counter_ = 0;
};
TORCH_MODULE(BertForMaskedLM);

// Dropout with p in [0,1) whose keep/drop decision for element i is a hash of (key, i): the same key
// gives the same mask whatever the thread count; backward recomputes the mask instead of storing it.
// float and bfloat16 tensors. Exposed for tests.
torch::Tensor seeded_dropout(const torch::Tensor& x, double p, uint64_t key);

}  // namespace mpibert::model
