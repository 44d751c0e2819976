#pragma once
// Export of a trained model as a Hugging Face model directory that
// `BertForMaskedLM.from_pretrained(DIR)` and `AutoTokenizer.from_pretrained(DIR)` load unchanged:
// config.json, model.safetensors, vocab.txt, tokenizer.json, tokenizer_config.json,
// special_tokens_map.json (layout and rules: README.md).
#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "worker/model/bert_config.h"

namespace mpibert::io {

// Tied aliases in Hugging Face's BertForMaskedLM state_dict -> the tensor save_pretrained keeps
// (from_pretrained re-ties them). Export drops the aliases, import accepts either name.
const std::map<std::string, std::string>& hf_tied_aliases();

// The tensors model.safetensors holds for BertForMaskedLM, in HF's state_dict order, with their
// shapes: what transformers' save_pretrained(safe_serialization=True) writes. The tied
// cls.predictions.decoder.weight/.bias are not listed (save_pretrained drops them; from_pretrained
// re-ties them to bert.embeddings.word_embeddings.weight and cls.predictions.bias), nor is the
// bert.embeddings.position_ids buffer (not persistent in transformers >= 4.31, ignored on load).
std::vector<std::pair<std::string, std::vector<int64_t>>> hf_mlm_tensor_shapes(const model::BertConfig& cfg);

// Writes the directory (created if needed). hf_state: HF-named tensors, e.g. BertForMaskedLM's
// hf_state_dict(); the tied decoder aliases may be present (they are dropped after checking they
// alias their primaries' values). Every tensor of hf_mlm_tensor_shapes(cfg) must be present with
// that shape, and nothing else (std::runtime_error naming the tensor otherwise). save_dtype: "f32"
// or "bf16" (also "float32"/"bfloat16"; UsageError otherwise); floating tensors are stored in it
// and config.json's torch_dtype says so. The vocabulary must hold the five BERT special tokens and
// at most cfg.vocab_size tokens. Every file is written atomically; config.json comes last, so a
// directory with a config.json is complete.
void export_hf_model(const std::string& out_dir, const model::BertConfig& cfg,
                     std::vector<std::pair<std::string, torch::Tensor>> hf_state, const std::string& vocab_path,
                     bool lowercase, const std::string& save_dtype);

// "f32"/"float32" -> kFloat32, "bf16"/"bfloat16" -> kBFloat16; UsageError naming the valid values.
torch::ScalarType parse_save_dtype(const std::string& save_dtype);

}  // namespace mpibert::io
