#pragma once
// BERT architecture hyper-parameters: named presets, Hugging Face config.json conversion, the
// run-config overrides, and the FLOP count used for MFU. Torch-free.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mpibert {
struct ModelConfig;
}

namespace mpibert::model {

// Which Hugging Face model class a config and a set of tensors are for (hf_names.h has their tables).
enum class BertHead { MaskedLM, SequenceClassification };

struct BertConfig {
  int64_t vocab_size = 30522;
  int64_t hidden_size = 768;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t intermediate_size = 3072;
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 2;
  int64_t pad_token_id = 0;
  double hidden_dropout_prob = 0.1;
  double attention_probs_dropout_prob = 0.1;
  double layer_norm_eps = 1e-12;
  double initializer_range = 0.02;
  std::string hidden_act = "gelu";  // gelu (erf) | gelu_new / gelu_pytorch_tanh (tanh approx.) | relu
  // Sequence classification (config.json's id2label/label2id, problem_type, classifier_dropout).
  int64_t num_labels = 2;
  std::vector<std::string> id2label;  // label names by id; empty = LABEL_0, LABEL_1, ... as HF
  std::string problem_type;           // "" | regression | single_label_classification | multi_label_classification
  double classifier_dropout = -1;     // < 0 = null: the classifier uses hidden_dropout_prob

  int64_t head_dim() const { return hidden_size / num_attention_heads; }
};

// tiny (2 layers x 128, 2 heads, ffn 512), mini (4x256, 4, 1024), small (4x512, 8, 2048),
// medium (8x512, 8, 2048), base (12x768, 12, 3072), large (24x1024, 16, 4096); aliases bert-tiny,
// bert-mini, bert-small, bert-medium, bert-base, bert-large, bert-base-uncased, bert-large-uncased.
// Unknown name -> UsageError listing the valid ones.
BertConfig preset(const std::string& name);
std::vector<std::string> preset_names();  // canonical names and aliases

// Throws UsageError (naming `source`) when the sizes are inconsistent (non-positive sizes, hidden
// size not divisible by the heads, dropout outside [0, 1), unsupported activation).
void validate(const BertConfig& cfg, const std::string& source);

// m.preset is a preset name, a path to a Hugging Face config.json, or a directory holding one.
// Fields of m that are 0 (sizes) or negative (dropouts, eps, init range) keep the preset's value.
// vocab_size > 0 (the data's vocabulary) replaces the preset's. seq_len must be
// <= max_position_embeddings (UsageError otherwise; seq_len <= 0 skips the check).
BertConfig resolve_model_config(const mpibert::ModelConfig& m, int64_t vocab_size, int64_t seq_len);

// Hugging Face BertConfig keys + architectures ["BertForMaskedLM"] (or
// ["BertForSequenceClassification"] with id2label, label2id, problem_type), model_type "bert".
nlohmann::json to_hf_config_json(const BertConfig& cfg, BertHead head = BertHead::MaskedLM);
// "regression" | "single_label_classification" | "multi_label_classification": the config's, else as
// Hugging Face's pipeline infers it from the model alone (one output: regression; else single-label).
std::string resolve_problem_type(const BertConfig& cfg);
// The label name of class `id`: id2label's, else "LABEL_<id>".
std::string label_name(const BertConfig& cfg, int64_t id);
// Reads a Hugging Face BertConfig; keys it does not know are ignored, an unsupported model_type,
// position_embedding_type or hidden_act is a UsageError naming `source_for_errors`.
BertConfig from_hf_config_json(const nlohmann::json& j, const std::string& source_for_errors);
BertConfig load_hf_config_file(const std::string& path);

// Training FLOPs per token (forward + backward = 3 x forward, 2 FLOPs per multiply-add) of the
// matrix multiplies the model actually runs: per layer Q, K, V, output (4 H^2), FFN (2 H I),
// attention scores and context (2 L H); the MLM head (transform H^2 + decoder H V) on every
// position, or on the masked fraction only when sparse_head. Embedding lookups, LayerNorm,
// softmax and the optimizer are not counted (as in the usual 6N-style MFU accounting).
double flops_per_token(const BertConfig& cfg, int64_t seq_len, double mask_fraction, bool sparse_head);

// Number of trainable parameters of BertForMaskedLM (tied decoder weight counted once).
int64_t parameter_count(const BertConfig& cfg);

}  // namespace mpibert::model
