#pragma once
// The keys of the model, train and dist sections, declared once for every program that trains
// (run_mlm, run_classification): each program's schema calls these on its own config struct, which
// has members `model` (ModelConfig), `train` (TrainConfig) and `dist` (DistConfig).
#include "common/config/run_config.h"
#include "common/config/schema.h"

namespace mpibert::config {

// model.*: the BERT architecture (a preset, a config.json, overrides) and where its weights come from.
// function-size: table
template <class R>
void declare_model_keys(Schema<R>& s) {
  s.template add<std::string>(
       "model.preset", [](R& c) -> std::string& { return c.model.preset; }, "bert-mini",
       "tiny|mini|small|medium|base|large (bert-base-uncased, bert-large-uncased) or a config.json path")
      .alias("model_config_id");
  s.template add<std::string>(
       "model.init_from", [](R& c) -> std::string& { return c.model.init_from; }, "",
       "Hugging Face model directory (model.safetensors) to start from")
      .alias("model_name_or_path");
  s.template add<bool>(
       "model.ignore_mismatched_sizes", [](R& c) -> bool& { return c.model.ignore_mismatched_sizes; }, false,
       "init_from tensors whose shape differs from the model's (a classifier for other labels) are left "
       "initialised instead of an error")
      .alias("ignore_mismatched_sizes");
  s.template add<int64_t>(
       "model.hidden_size", [](R& c) -> int64_t& { return c.model.hidden_size; }, 0, "hidden size (0 = preset)")
      .range(0, 65536);
  s.template add<int64_t>(
       "model.num_hidden_layers", [](R& c) -> int64_t& { return c.model.num_hidden_layers; }, 0,
       "transformer layers (0 = preset)")
      .range(0, 1024);
  s.template add<int64_t>(
       "model.num_attention_heads", [](R& c) -> int64_t& { return c.model.num_attention_heads; }, 0,
       "attention heads (0 = preset)")
      .range(0, 1024);
  s.template add<int64_t>(
       "model.intermediate_size", [](R& c) -> int64_t& { return c.model.intermediate_size; }, 0,
       "feed-forward size (0 = preset)")
      .range(0, 1 << 20);
  s.template add<int64_t>(
       "model.max_position_embeddings", [](R& c) -> int64_t& { return c.model.max_position_embeddings; }, 0,
       "position embeddings (0 = preset, 512)")
      .range(0, 1 << 20);
  s.template add<int64_t>(
       "model.type_vocab_size", [](R& c) -> int64_t& { return c.model.type_vocab_size; }, 2, "token type vocabulary")
      .range(1, 1024);
  s.template add<double>(
       "model.hidden_dropout_prob", [](R& c) -> double& { return c.model.hidden_dropout_prob; }, -1.0,
       "dropout on hidden states (negative = preset, 0.1)")
      .range(-1, 1);
  s.template add<double>(
       "model.attention_probs_dropout_prob", [](R& c) -> double& { return c.model.attention_probs_dropout_prob; }, -1.0,
       "dropout on attention probabilities (negative = preset, 0.1)")
      .range(-1, 1);
  s.template add<double>(
       "model.layer_norm_eps", [](R& c) -> double& { return c.model.layer_norm_eps; }, 1e-12, "LayerNorm epsilon")
      .range(0, 1);
  s.template add<double>(
       "model.initializer_range", [](R& c) -> double& { return c.model.initializer_range; }, 0.02,
       "std of the normal initialisation")
      .range(0, 10);
}

// train.*: the run (output, optimizer, schedule, steps, evaluation, checkpoints), with Hugging Face's names as aliases.
// function-size: table
template <class R>
void declare_train_keys(Schema<R>& s) {
  s.template add<std::string>(
       "train.output_dir", [](R& c) -> std::string& { return c.train.output_dir; }, "runs/mlm",
       "where checkpoints, metrics, logs and the exported model go")
      .alias("output_dir")
      .alias("repository_id");
  s.template add<bool>(
       "train.overwrite_output_dir", [](R& c) -> bool& { return c.train.overwrite_output_dir; }, false,
       "allow a non-empty output_dir that holds no checkpoint to resume")
      .alias("overwrite_output_dir");
  s.template add<std::string>(
       "train.resume_from_checkpoint", [](R& c) -> std::string& { return c.train.resume_from_checkpoint; }, "",
       "checkpoint directory to resume from; bare flag = the latest in output_dir")
      .alias("resume_from_checkpoint")
      .implicit("latest");
  s.template add<bool>(
       "train.ignore_data_change", [](R& c) -> bool& { return c.train.ignore_data_change; }, false,
       "resume a checkpoint although the training data changed since (rebuilt shards, another file)")
      .alias("ignore_data_change");
  s.template add<bool>(
       "train.do_train", [](R& c) -> bool& { return c.train.do_train; }, true, "train")
      .alias("do_train");
  s.template add<bool>(
       "train.do_eval", [](R& c) -> bool& { return c.train.do_eval; }, true, "evaluate on the validation shards")
      .alias("do_eval");
  s.template add<int64_t>(
       "train.per_device_train_batch_size", [](R& c) -> int64_t& { return c.train.per_device_train_batch_size; }, 8,
       "sequences per rank per micro-step")
      .range(1, 1 << 20)
      .alias("per_device_train_batch_size");
  s.template add<int64_t>(
       "train.per_device_eval_batch_size", [](R& c) -> int64_t& { return c.train.per_device_eval_batch_size; }, 8,
       "sequences per rank per evaluation batch")
      .range(1, 1 << 20)
      .alias("per_device_eval_batch_size");
  s.template add<int64_t>(
       "train.gradient_accumulation_steps", [](R& c) -> int64_t& { return c.train.gradient_accumulation_steps; }, 1,
       "micro-steps per optimizer step")
      .range(1, 1 << 20)
      .alias("gradient_accumulation_steps");
  s.template add<int64_t>(
       "train.global_batch_size", [](R& c) -> int64_t& { return c.train.global_batch_size; }, 0,
       "sequences per optimizer step over all ranks; when set, gradient_accumulation_steps is derived as "
       "global_batch_size / (world_size x per_device_train_batch_size), so the same run (and its resume "
       "after gaudi_spawn --max_restarts drops a host) keeps its global batch on any rank count; 0 = "
       "world_size x per_device_train_batch_size x gradient_accumulation_steps")
      .range(0, int64_t{1} << 40)
      .alias("global_batch_size");
  s.template add<double>(
       "train.learning_rate", [](R& c) -> double& { return c.train.learning_rate; }, 5e-5, "peak learning rate")
      .range(0, 10)
      .alias("learning_rate");
  s.template add<double>(
       "train.weight_decay", [](R& c) -> double& { return c.train.weight_decay; }, 0.0,
       "decoupled weight decay (not on biases and LayerNorm)")
      .range(0, 10)
      .alias("weight_decay");
  s.template add<double>(
       "train.adam_beta1", [](R& c) -> double& { return c.train.adam_beta1; }, 0.9, "Adam/LAMB first-moment decay")
      .range(0, 0.999999)
      .alias("adam_beta1");
  s.template add<double>(
       "train.adam_beta2", [](R& c) -> double& { return c.train.adam_beta2; }, 0.999,
       "Adam/LAMB second-moment decay (RoBERTa uses 0.98 at large learning rates)")
      .range(0, 0.999999999)
      .alias("adam_beta2");
  s.template add<double>(
       "train.adam_epsilon", [](R& c) -> double& { return c.train.adam_epsilon; }, 1e-8, "Adam epsilon")
      .range(0, 1)
      .satisfies([](const std::string& v) { return std::stod(v) > 0; }, "a number in (0, 1]: 0 divides by zero")
      .alias("adam_epsilon");
  s.template add<std::string>(
       "train.optimizer", [](R& c) -> std::string& { return c.train.optimizer; }, "adamw", "optimizer")
      .one_of({"adamw", "lamb"})
      .alias("optim");
  s.template add<std::string>(
       "train.lr_scheduler_type", [](R& c) -> std::string& { return c.train.lr_scheduler_type; }, "linear",
       "decay after warmup")
      .one_of({"linear", "polynomial", "cosine", "constant", "constant_with_warmup"})
      .alias("lr_scheduler_type");
  s.template add<double>(
       "train.lr_end", [](R& c) -> double& { return c.train.lr_end; }, 1e-7, "final learning rate of polynomial decay")
      .range(0, 10)
      .alias("lr_end");
  s.template add<double>(
       "train.power", [](R& c) -> double& { return c.train.power; }, 1.0, "power of polynomial decay")
      .range(0, 100)
      .alias("power");
  s.template add<int64_t>(
       "train.warmup_steps", [](R& c) -> int64_t& { return c.train.warmup_steps; }, 0, "linear warmup steps")
      .range(0, 1e12)
      .alias("warmup_steps");
  s.template add<double>(
       "train.warmup_ratio", [](R& c) -> double& { return c.train.warmup_ratio; }, 0.0,
       "warmup as a share of all steps (used when warmup_steps is 0)")
      .range(0, 1)
      .alias("warmup_ratio");
  s.template add<double>(
       "train.max_grad_norm", [](R& c) -> double& { return c.train.max_grad_norm; }, 1.0,
       "global gradient-norm clipping (0 = off)")
      .range(0, 1e9)
      .alias("max_grad_norm");
  s.template add<std::string>(
       "train.nan_policy", [](R& c) -> std::string& { return c.train.nan_policy; }, "abort",
       "a non-finite loss or gradient norm: stop with a message naming the step and ranks "
       "(the last checkpoint stays latest), or skip that update")
      .one_of({"abort", "skip_step"})
      .alias("nan_policy");
  s.template add<int64_t>(
       "train.max_steps", [](R& c) -> int64_t& { return c.train.max_steps; }, -1,
       "optimizer steps to run (> 0 overrides num_train_epochs; -1 = train num_train_epochs)")
      .range(-1, 1e12)
      .satisfies([](const std::string& v) { return std::stoll(v) != 0; },
                 "-1 (train num_train_epochs) or a number of steps >= 1; 0 would train nothing")
      .alias("max_steps");
  s.template add<double>(
       "train.num_train_epochs", [](R& c) -> double& { return c.train.num_train_epochs; }, 3.0,
       "epochs over the training shards (when max_steps <= 0)")
      .range(0, 1e9)
      .alias("num_train_epochs");
  s.template add<double>(
       "train.max_time", [](R& c) -> double& { return c.train.max_time; }, 0.0,
       "stop (with a checkpoint) after this many seconds; 0 = no limit")
      .range(0, 1e12)
      .alias("max_time");
  s.template add<int64_t>(
       "train.logging_steps", [](R& c) -> int64_t& { return c.train.logging_steps; }, 100,
       "progress line and metrics.jsonl row every N steps")
      .range(1, 1e12)
      .alias("logging_steps");
  s.template add<int64_t>(
       "train.save_steps", [](R& c) -> int64_t& { return c.train.save_steps; }, 5000,
       "checkpoint every N steps (0 = only at the end)")
      .range(0, 1e12)
      .alias("save_steps");
  s.template add<int64_t>(
       "train.save_total_limit", [](R& c) -> int64_t& { return c.train.save_total_limit; }, 2,
       "keep the newest N checkpoints (0 = all)")
      .range(0, 1e9)
      .alias("save_total_limit");
  s.template add<bool>(
       "train.save_on_each_node", [](R& c) -> bool& { return c.train.save_on_each_node; }, false,
       "write every checkpoint on each host (by its first rank), not only on rank 0's: without a shared "
       "file system a restart then finds them on any host left")
      .alias("save_on_each_node");
  s.template add<bool>(
       "train.gradient_checkpointing", [](R& c) -> bool& { return c.train.gradient_checkpointing; }, false,
       "keep only each layer's input and recompute the layer in backward: activation memory of one layer "
       "instead of all (bert-large at seq 512), for about a third more compute; same losses")
      .alias("gradient_checkpointing");
  s.template add<std::string>(
       "train.profile_dir", [](R& c) -> std::string& { return c.train.profile_dir; }, "",
       "write each rank's timeline there, DIR/timeline-rank-N.json: a Chrome trace of the steps, their phases, "
       "checkpoints, evaluations and every collective with its size (chrome://tracing, ui.perfetto.dev)")
      .alias("profile");
  s.template add<int64_t>(
       "train.eval_steps", [](R& c) -> int64_t& { return c.train.eval_steps; }, 0,
       "evaluate every N steps (0 = only at the end)")
      .range(0, 1e12)
      .alias("eval_steps");
  s.template add<std::string>(
       "train.eval_strategy", [](R& c) -> std::string& { return c.train.eval_strategy; }, "steps",
       "when to evaluate during training: every eval_steps steps, every epoch, or not at all (at the "
       "end only, with do_eval)")
      .one_of({"no", "steps", "epoch"})
      .alias("eval_strategy")
      .alias("evaluation_strategy");
  s.template add<bool>(
       "train.load_best_model_at_end", [](R& c) -> bool& { return c.train.load_best_model_at_end; }, false,
       "save a checkpoint at every evaluation and load the best one (metric_for_best_model) at the end")
      .alias("load_best_model_at_end");
  s.template add<std::string>(
       "train.metric_for_best_model", [](R& c) -> std::string& { return c.train.metric_for_best_model; }, "",
       "evaluation metric that picks the best checkpoint (\"\" = loss), with or without eval_")
      .alias("metric_for_best_model");
  s.template add<std::string>(
       "train.greater_is_better", [](R& c) -> std::string& { return c.train.greater_is_better; }, "auto",
       "whether a higher metric_for_best_model is better (auto: unless its name ends in loss)")
      .one_of({"auto", "true", "false"})
      .implicit("true")
      .alias("greater_is_better");
  s.template add<int64_t>(
       "train.early_stopping_patience", [](R& c) -> int64_t& { return c.train.early_stopping_patience; }, 0,
       "stop after this many evaluations without improvement (0 = never)")
      .range(0, 1e9)
      .alias("early_stopping_patience");
  s.template add<double>(
       "train.early_stopping_threshold", [](R& c) -> double& { return c.train.early_stopping_threshold; }, 0.0,
       "smallest change of the metric that counts as an improvement")
      .range(0, 1e9)
      .alias("early_stopping_threshold");
  s.template add<int64_t>(
       "train.max_eval_samples", [](R& c) -> int64_t& { return c.train.max_eval_samples; }, 0,
       "validation sequences to evaluate (0 = all)")
      .range(0, 1e12)
      .alias("max_eval_samples");
  s.template add<int64_t>(
       "train.seed", [](R& c) -> int64_t& { return c.train.seed; }, 34,
       "seed of initialisation, data order, masking and dropout")
      .range(0, 9e18)
      .alias("seed");
  s.template add<int64_t>(
       "train.throughput_warmup_steps", [](R& c) -> int64_t& { return c.train.throughput_warmup_steps; }, 2,
       "first steps left out of throughput figures")
      .range(0, 1e12)
      .alias("throughput_warmup_steps");
  s.template add<std::string>(
       "train.precision", [](R& c) -> std::string& { return c.train.precision; }, "auto",
       "compute precision: bf16 autocast with fp32 master weights, fp32, or auto (bf16 when the CPU has it)")
      .one_of({"auto", "fp32", "bf16"})
      .alias("precision");
  s.template add<double>(
       "train.cost_per_hour", [](R& c) -> double& { return c.train.cost_per_hour; }, 0.0,
       "price of the whole job per hour, for the cost estimate (0 = none)")
      .range(0, 1e9)
      .alias("cost_per_hour");
  s.template add<std::string>(
       "train.export_hf", [](R& c) -> std::string& { return c.train.export_hf; }, "",
       "export this checkpoint directory to output_dir in Hugging Face format, then exit")
      .alias("export_hf");
  s.template add<std::string>(
       "train.save_dtype", [](R& c) -> std::string& { return c.train.save_dtype; }, "f32", "dtype of exported weights")
      .one_of({"f32", "bf16"})
      .alias("save_dtype");
  s.template add<std::string>(
       "train.report_to", [](R& c) -> std::string& { return c.train.report_to; }, "tensorboard",
       "where rank 0 reports metrics besides metrics.jsonl: TensorBoard event files (all = tensorboard), or none")
      .one_of({"tensorboard", "all", "none"})
      .alias("report_to");
  s.template add<std::string>(
       "train.logging_dir", [](R& c) -> std::string& { return c.train.logging_dir; }, "",
       "TensorBoard event file directory (\"\" = OUTPUT_DIR/runs/<Mon><DD>_<HH>-<MM>-<SS>_<host>, "
       "as Hugging Face; a resumed run keeps its directory)")
      .alias("logging_dir");
  s.template add<std::string>(
       "train.log_level", [](R& c) -> std::string& { return c.train.log_level; }, "",
       "log level: trace|debug|info|warning|error (default: info on rank 0, warning elsewhere)")
      .alias("log_level");
}

// dist.*: threads and gradient communication.
// function-size: table
template <class R>
void declare_dist_keys(Schema<R>& s) {
  s.template add<int64_t>(
       "dist.threads", [](R& c) -> int64_t& { return c.dist.threads; }, 0,
       "intra-op threads per rank (0 = OMP_NUM_THREADS, else cores / local ranks)")
      .range(0, 4096);
  s.template add<double>(
       "dist.bucket_cap_mb", [](R& c) -> double& { return c.dist.bucket_cap_mb; }, 25.0, "gradient bucket size in MiB")
      .range(0.001, 4096);
  s.template add<double>(
       "dist.first_bucket_mb", [](R& c) -> double& { return c.dist.first_bucket_mb; }, 1.0,
       "first gradient bucket in MiB (small, so communication starts early)")
      .range(0.001, 4096);
  s.template add<bool>(
      "dist.overlap", [](R& c) -> bool& { return c.dist.overlap; }, true,
      "all-reduce gradient buckets while backward still runs");
  s.template add<std::string>(
       "dist.grad_comm_dtype", [](R& c) -> std::string& { return c.dist.grad_comm_dtype; }, "f32",
       "dtype gradient buckets are all-reduced in: bf16 sends half the bytes (a bucket is rounded to bf16, each "
       "pairwise sum is done in f32 and rounded back: up to 2^-8 relative error per rounding)")
      .one_of({"f32", "bf16"});
  s.template add<double>(
       "dist.timeout_s", [](R& c) -> double& { return c.dist.timeout_s; }, 600.0,
       "a collective not finished after this many seconds aborts the job, naming the ranks that have not "
       "arrived (600 s, as c10d's NCCL default)")
      .range(1, 1e9);
  s.template add<double>(
       "dist.stall_warning_s", [](R& c) -> double& { return c.dist.stall_warning_s; }, 60.0,
       "a collective waiting this long logs a warning naming the ranks that have not arrived (0: never)")
      .range(0, 1e9);
  s.template add<std::string>(
       "dist.debug", [](R& c) -> std::string& { return c.dist.debug; }, "off",
       "detail: every collective first compares its number, op, count, type and root across ranks and fails "
       "naming both sides on a mismatch (one extra small all-gather per collective)")
      .one_of({"off", "detail"});
}

}  // namespace mpibert::config
