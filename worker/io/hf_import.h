#pragma once
// Import of a Hugging Face BERT model directory (ours or one from the Hub, e.g. bert-base-uncased):
// config.json + model.safetensors (or a sharded model.safetensors.index.json). mpibert reads
// safetensors only; a directory with only pytorch_model.bin gets the one-line conversion command.
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "worker/model/bert.h"
#include "worker/model/bert_config.h"

namespace mpibert::io {

struct LoadedHfModel {
  std::string dir;
  model::BertConfig config;                      // from config.json
  std::map<std::string, torch::Tensor> tensors;  // as stored (any float dtype), legacy names fixed
  std::vector<std::string> files;                // the safetensors files read
};

// Reads DIR/config.json and the weights. Errors (UsageError, one line naming the directory or file):
// missing directory, no config.json, no safetensors (with the conversion command when
// pytorch_model.bin is there), a malformed file (see safetensors.h), a shard index that does not
// match its shards. Legacy TF-era names (LayerNorm.gamma/.beta) are renamed to .weight/.bias as
// transformers does.
LoadedHfModel load_hf_model_dir(const std::string& dir);

// What load_into did besides copying the parameters.
struct LoadReport {
  std::vector<std::string> ignored;      // known tensors of other heads and buffers, left out
  std::vector<std::string> aliases;      // tied aliases present in the file (checked equal to their primaries)
  std::vector<std::string> initialised;  // head tensors the file lacks, left as initialised (pooler, classifier)
  std::vector<std::string> resized;      // tensors of another shape left as initialised (ignore_mismatched_sizes)
};

struct LoadOptions {
  // As transformers' from_pretrained(ignore_mismatched_sizes=True): a tensor whose shape differs from
  // the model's (a classifier trained for other labels) is left as initialised instead of an error.
  bool ignore_mismatched_sizes = false;
};

// The checks of load_into on any model's parameters (HF names, in order) for `head`.
LoadReport load_into(const model::NamedTensors& params, model::BertHead head,
                     const std::map<std::string, torch::Tensor>& tensors, const std::string& source,
                     const LoadOptions& options = {});

// Copies `tensors` into the model's parameters, converting any float dtype (bf16/f16/f64) to the
// parameter's. Everything is checked before anything is copied; each problem is a UsageError naming
// `source`: a missing parameter (the tied decoder.weight/.bias may stand in for
// word_embeddings.weight/cls.predictions.bias), a shape mismatch (both shapes), a non-float tensor, a
// tied alias whose values differ from its primary, unexpected tensors (all listed). Known-ignorable
// tensors (hf_names.h: bert.pooler.*, cls.seq_relationship.*, buffers) are logged and skipped.
LoadReport load_into(model::BertForMaskedLM& model, const std::map<std::string, torch::Tensor>& tensors,
                     const std::string& source);

// Reads the directory, builds the model from its config.json and loads the weights (eval mode).
model::BertForMaskedLM load_hf_model(const std::string& dir);

}  // namespace mpibert::io
