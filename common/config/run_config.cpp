#include "common/config/run_config.h"

#include <cstdio>

#include "common/config/shared_keys.h"
#include "common/error.h"

namespace mpibert {
namespace {

using config::Schema;
using R = RunConfig;

// One line per key: the only place a key, its type, default, help and valid range are written.
// function-size: table
Schema<RunConfig> build_schema() {
  Schema<RunConfig> s;
  // data
  s.add<std::string>(
      "data.input", [](R& c) -> std::string& { return c.data.input; }, "data/corpus",
      "text corpus: files, directories and *.jsonl files, comma-separated");
  s.add<std::string>(
      "data.text_field", [](R& c) -> std::string& { return c.data.text_field; }, "text",
      "JSON-lines field that holds the text");
  s.add<std::string>(
       "data.shards_dir", [](R& c) -> std::string& { return c.data.shards_dir; }, "data/shards",
       "directory of HDF5 shards, manifest.json and vocab.txt")
      .alias("dataset_id");
  s.add<std::string>(
       "data.vocab_file", [](R& c) -> std::string& { return c.data.vocab_file; }, "",
       "existing BERT vocab.txt to use instead of training one")
      .alias("tokenizer_id");
  s.add<int64_t>(
       "data.vocab_size", [](R& c) -> int64_t& { return c.data.vocab_size; }, 30522,
       "WordPiece vocabulary size to train")
      .range(16, 1 << 24);
  s.add<int64_t>(
       "data.min_frequency", [](R& c) -> int64_t& { return c.data.min_frequency; }, 2,
       "minimum pair frequency for a WordPiece merge")
      .range(1, 1e9);
  s.add<int64_t>(
       "data.limit_alphabet", [](R& c) -> int64_t& { return c.data.limit_alphabet; }, 1000,
       "most frequent initial characters kept in the alphabet")
      .range(1, 1e7);
  s.add<bool>(
      "data.lowercase", [](R& c) -> bool& { return c.data.lowercase; }, true,
      "uncased BERT: lowercase and strip accents");
  s.add<int64_t>(
       "data.seq_len", [](R& c) -> int64_t& { return c.data.seq_len; }, 128, "tokens per training sequence")
      .range(8, 65536)
      .alias("max_seq_length");
  s.add<std::string>(
       "data.document_separator", [](R& c) -> std::string& { return c.data.document_separator; }, "blank_line",
       "what ends a document in text files")
      .one_of({"blank_line", "line"});
  s.add<bool>(
      "data.line_by_line", [](R& c) -> bool& { return c.data.line_by_line; }, false,
      "each document its own sequence, truncated and padded (instead of packing)");
  s.add<double>(
       "data.validation_fraction", [](R& c) -> double& { return c.data.validation_fraction; }, 0.05,
       "share of sequences held out for evaluation")
      .range(0, 0.5);
  s.add<int64_t>(
       "data.shuffle_seed", [](R& c) -> int64_t& { return c.data.shuffle_seed; }, 34,
       "seed of the sequence shuffle in prepare_data")
      .range(0, 9e18);
  s.add<int64_t>(
       "data.sequences_per_shard", [](R& c) -> int64_t& { return c.data.sequences_per_shard; }, 65536,
       "sequences per HDF5 shard file")
      .range(1, 1e9);

  config::declare_model_keys(s);
  s.add<bool>(
      "model.sparse_head", [](R& c) -> bool& { return c.model.sparse_head; }, true,
      "run the MLM head only on masked positions (same loss and gradients, less work)");
  config::declare_train_keys(s);
  s.add<double>(
       "train.mlm_probability", [](R& c) -> double& { return c.train.mlm_probability; }, 0.15,
       "share of tokens selected for masking")
      .range(0, 1)
      .alias("mlm_probability");
  s.add<bool>(
       "train.whole_word_masking", [](R& c) -> bool& { return c.train.whole_word_masking; }, false,
       "mask whole words (a token and its ## continuations)")
      .alias("whole_word_masking");
  config::declare_dist_keys(s);
  return s;
}

}  // namespace

const config::Schema<RunConfig>& run_schema() {
  static const Schema<RunConfig> schema = build_schema();
  return schema;
}

RunConfig parse_run_config(int argc, const char* const* argv, config::ParsedArgs* parsed,
                           const std::map<std::string, bool>& extra_flags) {
  RunConfig cfg = run_schema().defaults();
  config::ParsedArgs p = run_schema().parse_args(&cfg, argc, argv, extra_flags);
  if (parsed) *parsed = std::move(p);
  return cfg;
}

void resolve_global_batch(TrainConfig& train, int world) {
  if (train.global_batch_size <= 0) return;
  const int64_t per_step = static_cast<int64_t>(world) * train.per_device_train_batch_size;
  if (train.global_batch_size % per_step != 0)
    throw UsageError("train.global_batch_size " + std::to_string(train.global_batch_size) +
                     " is not a multiple of world_size x per_device_train_batch_size = " + std::to_string(world) +
                     " x " + std::to_string(train.per_device_train_batch_size) + " = " + std::to_string(per_step) +
                     ": choose a multiple of it, or change per_device_train_batch_size");
  train.gradient_accumulation_steps = train.global_batch_size / per_step;
}

}  // namespace mpibert
