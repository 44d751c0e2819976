#pragma once
// A Hugging Face model directory to start from (`model.init_from` / `--model_name_or_path`): rank 0
// reads it (no shared file system is assumed) and every rank learns its config; the tensors stay on
// rank 0, whose weights the engine broadcasts once the model is built.
#include <optional>
#include <string>

#include "worker/io/hf_import.h"
#include "worker/train/run_context.h"

namespace mpibert::train {

struct Pretrained {
  model::BertConfig config;                // on every rank
  std::optional<io::LoadedHfModel> files;  // rank 0 only
};

// UsageError on every rank when the directory is not a BERT model directory.
Pretrained read_pretrained(RunContext& ctx, const std::string& dir);

}  // namespace mpibert::train
