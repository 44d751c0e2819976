#include "worker/train/mlm_task.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>

#include "common/comm/agreement.h"
#include "common/data/shard_format.h"
#include "common/data/wordpiece.h"
#include "common/error.h"
#include "common/io/dir_lock.h"
#include "common/io/json_file.h"
#include "common/io/sha256.h"
#include "common/log/log.h"
#include "worker/io/hf_export.h"
#include "worker/io/hf_import.h"
#include "worker/train/checkpoint.h"
#include "worker/train/pretrained.h"
#include "worker/train/trainer.h"

namespace fs = std::filesystem;

namespace mpibert::train {

MlmTask::MlmTask(RunContext& ctx, const RunConfig& cfg) : cfg_(cfg) {
  // Shared: other runs may read the shards too, but prepare_data may not rewrite them under this run.
  agree(
      ctx.comm, RunOn::Root,
      [&] {
        shards_lock_ = io::DirLock::acquire(cfg_.data.shards_dir, io::LockMode::Shared, ctx.program + " (shards)");
      },
      silence_limit(ctx.timeout_s));
  open_data();
  build_model(ctx);
}

void MlmTask::open_data() {
  const std::string& dir = cfg_.data.shards_dir;
  if (cfg_.train.do_train) train_ds_ = data::ShardDataset::open(dir, "train");
  if (cfg_.train.do_eval) {
    try {
      eval_ds_ = data::ShardDataset::open(dir, "validation", train_ds_ ? train_ds_->vocab_size() : -1);
    } catch (const UsageError& e) {
      if (!train_ds_) throw;
      spdlog::warn("no evaluation: {}", e.what());
    }
  }
  const data::ShardDataset& ds = train_ds_ ? *train_ds_ : *eval_ds_;
  seq_len_ = ds.seq_len();
  if (cfg_.data.seq_len != seq_len_)
    throw UsageError("data.seq_len " + std::to_string(cfg_.data.seq_len) + " differs from the shards' " +
                     std::to_string(seq_len_) + " (" + dir +
                     "/manifest.json): sequences are cut by prepare_data; "
                     "set data.seq_len " +
                     std::to_string(seq_len_) + " or prepare shards of the length you want");
  data_fingerprint_ = io::sha256_hex(data::manifest_to_json(ds.manifest()).dump());
  vocab_path_ = ds.vocab_path();
  lowercase_ = ds.lowercase();
  tokenizer_config_path_ = (fs::path(dir) / "tokenizer_config.json").string();
  auto tok = data::WordPieceTokenizer::from_vocab_file(vocab_path_, ds.lowercase());
  is_continuation_.resize(tok.vocab_size());
  for (size_t i = 0; i < tok.vocab_size(); ++i) is_continuation_[i] = tok.is_continuation(static_cast<int32_t>(i));
  MaskingOptions mo;
  mo.mlm_probability = cfg_.train.mlm_probability;
  mo.whole_word = cfg_.train.whole_word_masking;
  const auto ids = ds.special_ids();
  if (ids.mask < 0)
    throw UsageError(vocab_path_ + " has no [MASK] token, which masked-LM training needs (the shards in " + dir +
                     " were prepared with it): use a BERT vocabulary with [PAD], [UNK], [CLS], [SEP] and [MASK]");
  mo.special_ids = {ids.pad, ids.unk, ids.cls, ids.sep, ids.mask};
  mo.vocab_size = ds.vocab_size();
  mo.pad_id = ids.pad;
  mo.mask_id = ids.mask;
  mo.is_continuation = &is_continuation_;
  masker_ = std::make_unique<MlmMasker>(mo);
}

void MlmTask::build_model(RunContext& ctx) {
  const int64_t vocab = dataset(train_ds_ ? Split::Train : Split::Validation).vocab_size();
  std::optional<Pretrained> init;
  const std::string& from = cfg_.model.init_from;
  if (!from.empty()) {
    init = read_pretrained(ctx, from);
    mcfg_ = init->config;
    agree(
        ctx.comm, RunOn::Root,
        [&] { check_same_vocabulary(from + "/vocab.txt", dataset(train_ds_ ? Split::Train : Split::Validation)); },
        silence_limit(ctx.timeout_s));
    if (mcfg_.vocab_size != vocab)
      throw UsageError("model.init_from " + from + ": the model's vocab_size is " + std::to_string(mcfg_.vocab_size) +
                       " but the shards in " + cfg_.data.shards_dir + " use " + std::to_string(vocab) +
                       " tokens: prepare the data with that model's vocab.txt (data.vocab_file)");
    if (seq_len_ > mcfg_.max_position_embeddings)
      throw UsageError("model.init_from " + from + ": seq_len " + std::to_string(seq_len_) +
                       " exceeds its max_position_embeddings " + std::to_string(mcfg_.max_position_embeddings));
    if (cfg_.model.hidden_dropout_prob >= 0) mcfg_.hidden_dropout_prob = cfg_.model.hidden_dropout_prob;
    if (cfg_.model.attention_probs_dropout_prob >= 0)
      mcfg_.attention_probs_dropout_prob = cfg_.model.attention_probs_dropout_prob;
  } else {
    mcfg_ = model::resolve_model_config(cfg_.model, vocab, seq_len_);
  }
  model_ = model::BertForMaskedLM(mcfg_, static_cast<uint64_t>(cfg_.train.seed));
  model_->set_gradient_checkpointing(cfg_.train.gradient_checkpointing);
  if (init && init->files) {
    auto report = io::load_into(model_, init->files->tensors, from);
    spdlog::info("initialised from {}{}", from,
                 report.ignored.empty()
                     ? ""
                     : " (ignored " + std::to_string(report.ignored.size()) + " tensors it has no use for)");
  }
  int64_t n_params = 0;
  for (auto& p : model_->parameters()) n_params += p.numel();
  spdlog::info("model: {} layers x {} hidden, {} heads, vocab {}, {:.1f}M parameters, {} head{}",
               mcfg_.num_hidden_layers, mcfg_.hidden_size, mcfg_.num_attention_heads, mcfg_.vocab_size, n_params / 1e6,
               cfg_.model.sparse_head ? "sparse (masked positions only)" : "dense",
               cfg_.train.gradient_checkpointing ? ", gradient checkpointing (layers recomputed in backward)" : "");
  flops_per_token_ = model::flops_per_token(mcfg_, seq_len_, cfg_.train.mlm_probability, cfg_.model.sparse_head);
}

// The model's vocab.txt and the shards' must be the same file: the same size is not enough (other ids).
void MlmTask::check_same_vocabulary(const std::string& model_vocab, const data::ShardDataset& ds) const {
  if (!fs::exists(model_vocab)) {
    spdlog::warn("{} is missing: cannot check that the model and the shards share a vocabulary", model_vocab);
    return;
  }
  if (io::sha256_file(model_vocab) != ds.vocab_sha256())
    throw UsageError("model.init_from: " + model_vocab +
                     " differs from the vocabulary the shards were prepared with (" + ds.vocab_path() +
                     "): the same ids would mean other words; prepare the data with "
                     "data.vocab_file " +
                     model_vocab);
}

const data::ShardDataset& MlmTask::dataset(Split split) const {
  const auto& ds = split == Split::Train ? train_ds_ : eval_ds_;
  if (!ds) throw std::logic_error(std::string("masked LM: no ") + split_name(split) + " shards are open");
  return *ds;
}

int64_t MlmTask::num_examples(Split split) const {
  if (split == Split::Train) return train_ds_ ? train_ds_->num_sequences() : 0;
  if (split == Split::Validation) return eval_ds_ ? eval_ds_->num_sequences() : 0;
  return 0;
}

Batch MlmTask::make_batch(Split split, const std::vector<int64_t>& indices, int64_t epoch) {
  const data::ShardDataset& ds = dataset(split);
  const int64_t rows = static_cast<int64_t>(indices.size());
  std::vector<int32_t> ids(static_cast<size_t>(rows * seq_len_));
  ds.read_many(indices, ids.data());
  at::Tensor input_ids = torch::empty({rows, seq_len_}, torch::kLong);
  at::Tensor labels = torch::empty({rows, seq_len_}, torch::kLong);
  Batch b;
  b.loss_units = masker_->mask_batch(ids.data(), rows, seq_len_, indices.data(), static_cast<uint64_t>(cfg_.train.seed),
                                     epoch, input_ids.data_ptr<int64_t>(), labels.data_ptr<int64_t>());
  const int32_t pad = ds.special_ids().pad;
  bool any_pad = false;
  for (int32_t id : ids) any_pad |= id == pad;
  at::Tensor attention_mask =
      any_pad ? torch::from_blob(ids.data(), {rows, seq_len_}, torch::kInt).ne(pad) : at::Tensor();
  b.tensors = {input_ids, attention_mask, labels};
  b.indices = indices;
  b.tokens = rows * seq_len_;
  b.flops = flops_per_token_ * static_cast<double>(b.tokens);
  return b;
}

at::Tensor MlmTask::loss_sum(const Batch& b) {
  return model_->forward_mlm(b.tensors[0], b.tensors[1], b.tensors[2], cfg_.model.sparse_head).loss_sum;
}

void MlmTask::eval_batch(const Batch& b, std::vector<double>& sums) {
  const model::MlmOutput out = model_->forward_mlm(b.tensors[0], b.tensors[1], b.tensors[2], cfg_.model.sparse_head);
  sums[0] += out.loss_sum.item<double>();
  sums[1] += out.num_masked.item<int64_t>();
  sums[2] += out.num_correct.item<int64_t>();
  sums[3] += static_cast<double>(b.indices.size());
}

Metrics MlmTask::eval_metrics(const std::vector<double>& sums) const {
  const double masked = sums[1];
  Metrics m;
  m["eval_loss"] = masked > 0 ? sums[0] / masked : 0.0;
  m["eval_accuracy"] = masked > 0 ? sums[2] / masked : 0.0;
  m["perplexity"] = std::exp(m["eval_loss"].get<double>());
  m["eval_samples"] = static_cast<int64_t>(sums[3]);
  m["eval_masked_tokens"] = static_cast<int64_t>(masked);
  return m;
}

std::string MlmTask::eval_summary(const Metrics& m) const {
  return fmt::format("loss {:.4f}, accuracy {:.4f}, perplexity {:.2f} ({} sequences, {} masked tokens)",
                     m["eval_loss"].get<double>(), m["eval_accuracy"].get<double>(), m["perplexity"].get<double>(),
                     m["eval_samples"].get<int64_t>(), m["eval_masked_tokens"].get<int64_t>());
}

nlohmann::json MlmTask::model_config_json() const {
  return model::to_hf_config_json(mcfg_);
}

void MlmTask::load_checkpoint_tensors(const std::map<std::string, at::Tensor>& tensors, const std::string& source) {
  model_->load_hf_state_dict(tensors, source, /*strict=*/true);
}

std::vector<std::string> MlmTask::checkpoint_files() const {
  return {vocab_path_, tokenizer_config_path_};
}

void MlmTask::export_model(const std::string& dir, const std::string& save_dtype) {
  io::export_hf_model(dir, mcfg_, model_->hf_state_dict(), vocab_path_, lowercase_, save_dtype);
}

CardFacts MlmTask::card_facts() const {
  CardFacts f;
  f.architecture = "BertForMaskedLM";
  f.pipeline_tag = "fill-mask";
  f.base_model = cfg_.model.init_from;
  f.data = fmt::format(
      "HDF5 shards in `{}` (prepare_data): {} training and {} validation sequences of {} tokens, "
      "WordPiece vocabulary of {} tokens ({}cased); masked-LM masking of {:.0f}% of the tokens{}, "
      "drawn anew every epoch.",
      cfg_.data.shards_dir, num_examples(Split::Train), num_examples(Split::Validation), seq_len_, mcfg_.vocab_size,
      lowercase_ ? "un" : "", 100 * cfg_.train.mlm_probability, cfg_.train.whole_word_masking ? " (whole words)" : "");
  f.metric_note =
      "eval_loss is the cross-entropy over masked tokens, eval_accuracy the share of masked tokens "
      "predicted exactly, perplexity exp(eval_loss); the evaluation masks are fixed by the seed.";
  return f;
}

int run_mlm(const RunConfig& given, HcclLike& comm) {
  RunConfig cfg = given;
  resolve_global_batch(cfg.train, comm.size());
  RunContext ctx = open_run(cfg.train, cfg.dist, comm, "run_mlm");
  MlmTask task(ctx, cfg);
  Trainer trainer(ctx, task, cfg.train, cfg.dist, run_schema().to_yaml(&cfg));
  return trainer.run();
}

void export_checkpoint_to_hf(const RunConfig& cfg) {
  const std::string& ck = cfg.train.export_hf;
  auto loaded = load_checkpoint(ck, /*with_optimizer=*/false);
  auto mcfg = model::load_hf_config_file((fs::path(ck) / "config.json").string());
  model::BertForMaskedLM m(mcfg, 0);
  m->load_hf_state_dict(loaded.model, ck + "/model.safetensors", /*strict=*/true);
  bool lowercase = true;
  auto tc = fs::path(ck) / "tokenizer_config.json";
  if (fs::exists(tc)) lowercase = io::read_json_file(tc.string()).value("do_lower_case", true);
  io::export_hf_model(cfg.train.output_dir, mcfg, m->hf_state_dict(), (fs::path(ck) / "vocab.txt").string(), lowercase,
                      cfg.train.save_dtype);
}

}  // namespace mpibert::train
