#pragma once
// BertForMaskedLM in libtorch, numerically as Hugging Face's modeling_bert: the shared encoder
// (bert_encoder.h) plus the MLM head (transform + decoder tied to the word embeddings), with an
// optional sparse head (transform + decoder only on masked positions, as NVIDIA's/MLPerf BERT).
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
  // aliases (decoder.weight/bias) may stand in for their primary names. Tensors other heads'
  // checkpoints carry (hf_names.h: buffers, pooler, NSP head) are skipped. Throws std::runtime_error
  // naming `source` on a missing parameter, a shape mismatch, or (when strict) any other unexpected
  // key. Returns the keys it skipped.
  std::vector<std::string> load_hf_state_dict(const std::map<std::string, torch::Tensor>& tensors,
                                              const std::string& source, bool strict = true);

  const BertConfig& config() const { return cfg_; }
  BertEncoderImpl& encoder() { return *bert_; }

  // Dropout masks of the following forward passes derive from (seed, forward index since this call,
  // dropout site): set it per micro-step from (seed, step, rank, micro-step) for reproducible runs.
  void set_dropout_seed(uint64_t seed) { bert_->set_dropout_seed(seed); }

  // Q, K and V as one GEMM on weights concatenated at forward time (default on; parameters and
  // their names are unchanged). Off = three GEMMs, as Hugging Face computes them.
  void set_fused_qkv(bool on) { bert_->set_fused_qkv(on); }
  bool fused_qkv() const { return bert_->fused_qkv(); }

  // fp32 attention through the fused (batch, head)-parallel kernel of attention.h (default on); off =
  // ATen batched matmuls + softmax, as Hugging Face computes it. bf16 has its own switch (default off).
  void set_fused_attention(bool on) { bert_->set_fused_attention(on); }
  bool fused_attention() const { return bert_->fused_attention(); }
  void set_fused_bf16_attention(bool on) { bert_->set_fused_bf16_attention(on); }
  // dropout + residual + LayerNorm in one kernel (default on); off = ATen ops, as Hugging Face.
  void set_fused_add_norm(bool on) { bert_->set_fused_add_norm(on); }
  bool fused_add_norm() const { return bert_->fused_add_norm(); }
  // The FFN's bias + GELU in one kernel (default off: no measured gain); off = addmm + ATen's gelu, as HF.
  void set_fused_bias_gelu(bool on) { bert_->set_fused_bias_gelu(on); }
  void set_gradient_checkpointing(bool on) { bert_->set_gradient_checkpointing(on); }

 private:
  torch::Tensor head_transform(const torch::Tensor& hidden_rows);

  BertConfig cfg_;
  BertEncoder bert_{nullptr};
  torch::Tensor decoder_bias_;  // cls.predictions.bias
  Dense transform_;
  Norm transform_norm_;
};
TORCH_MODULE(BertForMaskedLM);

}  // namespace mpibert::model
