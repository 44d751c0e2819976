#pragma once
// The run configuration shared by run_mlm and prepare_data: sections data, model, train, dist.
// Every key is declared once in run_config.cpp (type, default, help, range, aliases); this struct
// only holds the values. Defaults live in the declarations, not here.
#include <cstdint>
#include <string>

#include "common/config/schema.h"

namespace mpibert {

struct DataConfig {
  std::string input{};               // text corpus: files, directories, *.jsonl (comma-separated)
  std::string text_field{};          // JSON-lines field holding the text
  std::string shards_dir{};          // HDF5 shards + manifest.json + vocab.txt (prepare_data output, run_mlm input)
  std::string vocab_file{};          // existing vocab.txt to use ("" = train one into shards_dir)
  int64_t vocab_size{};              // WordPiece vocabulary size to train
  int64_t min_frequency{};           // minimum pair frequency for a merge
  int64_t limit_alphabet{};          // most frequent initial characters kept
  bool lowercase{};                  // uncased BERT (lowercase + strip accents)
  int64_t seq_len{};                 // tokens per sequence
  std::string document_separator{};  // blank_line | line
  bool line_by_line{};               // one document per sequence, truncated and padded
  double validation_fraction{};      // share of sequences held out
  int64_t shuffle_seed{};            // sequence shuffle seed
  int64_t sequences_per_shard{};     // sequences per HDF5 file
};

struct ModelConfig {
  std::string preset{};               // tiny|mini|small|medium|base|large|bert-base-uncased|... or a config.json path
  std::string init_from{};            // Hugging Face model directory (model.safetensors) to start from
  int64_t hidden_size{};              // 0 = from preset
  int64_t num_hidden_layers{};        // 0 = from preset
  int64_t num_attention_heads{};      // 0 = from preset
  int64_t intermediate_size{};        // 0 = from preset
  int64_t max_position_embeddings{};  // 0 = from preset
  int64_t type_vocab_size{};
  double hidden_dropout_prob{};           // < 0 = from preset
  double attention_probs_dropout_prob{};  // < 0 = from preset
  double layer_norm_eps{};
  double initializer_range{};
  bool sparse_head{};              // MLM head only on masked positions
  bool ignore_mismatched_sizes{};  // init_from tensors of another shape stay initialised (a new classifier)
};

struct TrainConfig {
  std::string output_dir{};
  bool overwrite_output_dir{};
  std::string resume_from_checkpoint{};  // "" = no; "latest" = newest in output_dir; else a path
  bool do_train{};
  bool do_eval{};
  bool do_predict{};          // run_classification: predict the test file
  bool ignore_data_change{};  // resume a checkpoint trained on other data
  int64_t per_device_train_batch_size{};
  int64_t per_device_eval_batch_size{};
  int64_t gradient_accumulation_steps{};
  int64_t global_batch_size{};  // 0 = world x batch x accumulation; else accumulation follows from it
  double learning_rate{};
  double weight_decay{};
  double adam_beta1{};
  double adam_beta2{};
  double adam_epsilon{};
  std::string optimizer{};          // adamw | lamb
  std::string lr_scheduler_type{};  // linear | polynomial | cosine | constant | constant_with_warmup
  double lr_end{};                  // polynomial decay's final learning rate
  double power{};                   // polynomial decay's power
  int64_t warmup_steps{};
  double warmup_ratio{};
  double max_grad_norm{};    // 0 = no clipping
  std::string nan_policy{};  // abort | skip_step: a non-finite loss or gradient norm
  int64_t max_steps{};       // > 0 overrides num_train_epochs
  double num_train_epochs{};
  double max_time{};  // seconds; 0 = no limit
  int64_t logging_steps{};
  int64_t save_steps{};           // 0 = only at the end
  int64_t save_total_limit{};     // 0 = keep all
  bool save_on_each_node{};       // every host's first rank writes the checkpoints too (HF's name)
  bool gradient_checkpointing{};  // recompute each layer in backward instead of keeping activations (HF's name)
  std::string profile_dir;        // --profile: a timeline per rank (Chrome trace) written there; "" = none
  int64_t eval_steps{};           // 0 = only at the end
  std::string eval_strategy{};    // no | steps | epoch
  bool load_best_model_at_end{};
  std::string metric_for_best_model{};  // "" = loss when load_best_model_at_end
  std::string greater_is_better{};      // auto | true | false
  int64_t early_stopping_patience{};    // 0 = off
  double early_stopping_threshold{};
  int64_t max_eval_samples{};  // 0 = the whole validation split
  int64_t seed{};
  double mlm_probability{};
  bool whole_word_masking{};
  int64_t throughput_warmup_steps{};
  std::string precision{};   // fp32 | bf16 | auto
  double cost_per_hour{};    // for the cost estimate in the progress line; 0 = none
  std::string export_hf{};   // checkpoint dir to export (then exit)
  std::string save_dtype{};  // f32 | bf16 for exported weights
  std::string log_level{};
  std::string report_to{};    // tensorboard | none
  std::string logging_dir{};  // TensorBoard event files ("" = OUTPUT_DIR/runs/<date>_<host>)            // "" = info on
                              // rank 0, warning elsewhere
};

struct DistConfig {
  int64_t threads{};         // intra-op threads per rank; 0 = OMP_NUM_THREADS or cores / local ranks
  double bucket_cap_mb{};    // gradient bucket size after the first
  double first_bucket_mb{};  // first (smallest) bucket, so communication starts early
  bool overlap{};            // all-reduce buckets during backward (false: after backward)
  // f32 | bf16: the dtype gradient buckets travel in
  std::string grad_comm_dtype;
  double timeout_s{};        // a collective not done by then aborts the job
  double stall_warning_s{};  // a collective waiting this long warns, naming the missing ranks (0: never)
  std::string debug;         // "detail": compare every collective's fingerprint across ranks
};

struct RunConfig {
  DataConfig data;
  ModelConfig model;
  TrainConfig train;
  DistConfig dist;
};

const config::Schema<RunConfig>& run_schema();

// With train.global_batch_size set, derives gradient_accumulation_steps for `world` ranks (an elastic
// restart on fewer ranks keeps the global batch). Throws UsageError, naming the key and the values, when
// the global batch is not a multiple of world x per_device_train_batch_size.
void resolve_global_batch(TrainConfig& train, int world);

// Parses argv (see SchemaBase::parse_args) into a RunConfig; `--help` prints the generated help.
RunConfig parse_run_config(int argc, const char* const* argv, config::ParsedArgs* parsed = nullptr,
                           const std::map<std::string, bool>& extra_flags = {});

}  // namespace mpibert
