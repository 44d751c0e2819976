#pragma once
// Export of a trained model as a Hugging Face model directory that
// `BertForMaskedLM.from_pretrained(DIR)` and `AutoTokenizer.from_pretrained(DIR)` load unchanged:
// config.json, model.safetensors, vocab.txt, tokenizer.json, tokenizer_config.json,
// special_tokens_map.json (layout and rules: docs/model-files.md).
#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "worker/model/bert_config.h"
#include "worker/model/hf_names.h"

namespace mpibert::io {

// Writes the directory (created if needed). hf_state: HF-named tensors, e.g. BertForMaskedLM's
// hf_state_dict(); the tied decoder aliases may be present (they are dropped after checking they
// alias their primaries' values). Every tensor of model::hf_tensors(cfg, head) must be present with
// that shape, and nothing else (std::runtime_error naming the tensor otherwise). save_dtype: "f32"
// or "bf16" (also "float32"/"bfloat16"; UsageError otherwise); floating tensors are stored in it
// and config.json's torch_dtype says so. The vocabulary must hold the five BERT special tokens and
// at most cfg.vocab_size tokens. Every file is written atomically; config.json comes last, so a
// directory with a config.json is complete.
void export_hf_model(const std::string& out_dir, const model::BertConfig& cfg,
                     std::vector<std::pair<std::string, torch::Tensor>> hf_state, const std::string& vocab_path,
                     bool lowercase, const std::string& save_dtype, model::BertHead head = model::BertHead::MaskedLM);

// "f32"/"float32" -> kFloat32, "bf16"/"bfloat16" -> kBFloat16; UsageError naming the valid values.
torch::ScalarType parse_save_dtype(const std::string& save_dtype);

}  // namespace mpibert::io
