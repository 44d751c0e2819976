#pragma once
// Training checkpoints: OUTPUT_DIR/checkpoint-<step>/ as Hugging Face names them, written by rank 0
// alone (no shared file system is assumed) and atomically: everything goes to a hidden temporary
// directory, every file is fsynced, the directory is renamed into place, and only then does
// OUTPUT_DIR/latest name it. A crash at any moment leaves the previous checkpoint loadable.
//
// checkpoint-<step>/
//   model.safetensors      parameters (fp32, our = Hugging Face names, tied decoder stored once)
//   optimizer.safetensors  optimizer state (e.g. <param>.exp_avg, <param>.exp_avg_sq)
//   trainer_state.json     step, epoch, consumed sequences, scheduler, world size, versions, RNG scheme
//   run_config.yaml        the resolved run configuration
//   config.json            the model (Hugging Face BertConfig keys)
//   vocab.txt, tokenizer_config.json   so that the checkpoint alone can be exported
#include <torch/torch.h>

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace mpibert {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

struct CheckpointContents {
  NamedTensors model;
  NamedTensors optimizer;
  nlohmann::json trainer_state;
  std::string run_config_yaml;
  nlohmann::json model_config;
  std::vector<std::string> files;  // copied in under their own names when they exist (vocab.txt, tokenizer_config.json)
};

struct LoadedCheckpoint {
  std::string dir;
  std::map<std::string, at::Tensor> model;
  std::map<std::string, at::Tensor> optimizer;
  nlohmann::json trainer_state;
};

// "checkpoint-<step>" directory name.
std::string checkpoint_name(int64_t step);

// Writes OUTPUT_DIR/checkpoint-<step> atomically, points OUTPUT_DIR/latest at it, then deletes the
// oldest checkpoints beyond save_total_limit (0 = keep all). The newest is never deleted, nor `keep`
// (the best checkpoint so far, kept in addition to the newest save_total_limit, as Hugging Face does).
// Returns the checkpoint's path. An existing checkpoint of the same step is left as it is.
std::string save_checkpoint(const std::string& output_dir, int64_t step, const CheckpointContents& contents,
                            int64_t save_total_limit, const std::string& keep = "");

// Complete checkpoints in output_dir (those with trainer_state.json), oldest first, as (step, path).
std::vector<std::pair<int64_t, std::string>> list_checkpoints(const std::string& output_dir);

// The newest complete checkpoint: the one `latest` names if it is complete, else the highest step.
std::optional<std::string> find_latest_checkpoint(const std::string& output_dir);

// Reads and validates a checkpoint directory; UsageError naming the path if it is not one. Without
// `with_optimizer` the optimizer state is neither required nor read (an export needs only the weights).
LoadedCheckpoint load_checkpoint(const std::string& dir, bool with_optimizer = true);

// Removes temporary directories a crashed save left behind.
void remove_stale_checkpoint_temps(const std::string& output_dir);

}  // namespace mpibert
