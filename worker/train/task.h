#pragma once
// What the training engine asks of a task (masked LM, sequence classification): its model, how to
// turn dataset indices into a micro-batch, the loss of a batch, evaluation sums and metrics, and the
// model files. The engine (trainer.h) owns the loop, accumulation, gradient reduction, the optimizer,
// checkpoints, evaluation scheduling and reporting, and never knows which head it trains.
#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "worker/train/model_card.h"

namespace mpibert::train {

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

enum class Split { Train, Validation, Test };
const char* split_name(Split split);

// One micro-batch as the task prepared it; the engine only reads the counts.
struct Batch {
  std::vector<at::Tensor> tensors;  // the task's inputs and labels
  std::vector<int64_t> indices;     // dataset indices of the rows, in order
  int64_t loss_units = 0;           // what loss_sum() sums over: masked tokens, examples, example x label
  int64_t tokens = 0;               // tokens the model processed (throughput)
  double flops = 0;                 // training FLOPs of forward + backward on this batch (MFU)
};

// Evaluation metrics in the order they are written (Hugging Face names: eval_loss, eval_accuracy, ...).
using Metrics = nlohmann::ordered_json;

class Task {
 public:
  virtual ~Task() = default;

  // The model: parameters in Hugging Face names and order (optimizer, reducer and checkpoints follow it).
  virtual torch::nn::Module& model() = 0;
  // Dropout masks of the following forward passes derive from this seed.
  virtual void set_dropout_seed(uint64_t seed) = 0;

  // Examples in a split (0: the split does not exist).
  virtual int64_t num_examples(Split split) const = 0;
  // Reads, encodes and stacks the examples `indices` of `split`. epoch is the training epoch (masks
  // of the masked LM derive from it); evaluation passes a fixed value so every evaluation is alike.
  virtual Batch make_batch(Split split, const std::vector<int64_t>& indices, int64_t epoch) = 0;
  // Differentiable fp32 sum of the loss over the batch's loss_units (runs under the engine's autocast).
  virtual at::Tensor loss_sum(const Batch& batch) = 0;

  // Evaluation: each batch adds into a fixed-length vector of sums (reduced across ranks), from which
  // the metrics follow. eval_batch runs without gradients, under the engine's autocast.
  virtual size_t eval_sums_size() const = 0;
  virtual void eval_batch(const Batch& batch, std::vector<double>& sums) = 0;
  virtual Metrics eval_metrics(const std::vector<double>& sums) const = 0;
  // One line for the log, e.g. "loss 6.69, accuracy 0.083, perplexity 805.9 (512 sequences)".
  virtual std::string eval_summary(const Metrics& metrics) const = 0;

  // Model files: config.json's content, the HF-named state (tied aliases included), loading a
  // checkpoint's tensors (strict), the files copied into checkpoints (vocab.txt, tokenizer_config.json),
  // and the Hugging Face export of the current weights.
  virtual nlohmann::json model_config_json() const = 0;
  virtual NamedTensors hf_state() = 0;
  virtual void load_checkpoint_tensors(const std::map<std::string, at::Tensor>& tensors, const std::string& source) = 0;
  virtual std::vector<std::string> checkpoint_files() const = 0;
  virtual void export_model(const std::string& dir, const std::string& save_dtype) = 0;
  // What the model card says about the model and its data.
  virtual CardFacts card_facts() const = 0;

  // Identity, checked on resume (rank 0): the vocabulary the data was tokenised with (a checkpoint's
  // vocab.txt must be the same file), and a fingerprint of the training data (a checkpoint trained on
  // other data is refused unless train.ignore_data_change).
  virtual std::string vocab_file() const = 0;
  virtual std::string data_fingerprint() const = 0;
};

}  // namespace mpibert::train
