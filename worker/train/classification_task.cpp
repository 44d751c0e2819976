#include "worker/train/classification_task.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <optional>

#include "common/comm/agreement.h"
#include "common/data/classification_metrics.h"
#include "common/error.h"
#include "common/io/atomic_file.h"
#include "common/io/json_file.h"
#include "worker/io/hf_export.h"
#include "worker/io/hf_import.h"
#include "worker/model/hf_state.h"
#include "worker/model/precision.h"
#include "worker/train/trainer.h"

namespace fs = std::filesystem;

namespace mpibert::train {
namespace {

bool is_single(const std::string& p) {
  return p == "single_label_classification";
}
bool is_multi(const std::string& p) {
  return p == "multi_label_classification";
}

void check_model_fits(const model::BertConfig& m, const ClassificationConfig& cfg, const ClassificationData& d,
                      const std::string& source) {
  if (cfg.data.max_seq_length > m.max_position_embeddings)
    throw UsageError("--max_seq_length " + std::to_string(cfg.data.max_seq_length) + " exceeds " + source +
                     "'s max_position_embeddings " + std::to_string(m.max_position_embeddings));
  if (d.vocab_size > m.vocab_size)
    throw UsageError(d.vocab_path + " has " + std::to_string(d.vocab_size) + " tokens but " + source +
                     " has vocab_size " + std::to_string(m.vocab_size) + ": use the model's own vocab.txt");
  if (d.pairs && m.type_vocab_size < 2)
    throw UsageError("--sentence_pair needs token types 0 and 1 but " + source + " has type_vocab_size " +
                     std::to_string(m.type_vocab_size));
}

}  // namespace

ClassificationTask::ClassificationTask(RunContext& ctx, const ClassificationConfig& cfg) : ctx_(ctx), cfg_(cfg) {
  std::optional<Pretrained> pretrained;
  if (!cfg.model.init_from.empty()) pretrained = read_pretrained(ctx, cfg.model.init_from);
  data_ = load_classification_data(ctx, cfg, pretrained ? &pretrained->config : nullptr);
  problem_type_ = data::problem_type_name(data_.labels.problem_type);
  build_model(pretrained ? &*pretrained : nullptr);
}

void ClassificationTask::build_model(const Pretrained* pretrained) {
  const std::string source = pretrained ? cfg_.model.init_from : "model.preset '" + cfg_.model.preset + "'";
  if (pretrained) {
    mcfg_ = pretrained->config;
    if (cfg_.model.hidden_dropout_prob >= 0) mcfg_.hidden_dropout_prob = cfg_.model.hidden_dropout_prob;
    if (cfg_.model.attention_probs_dropout_prob >= 0)
      mcfg_.attention_probs_dropout_prob = cfg_.model.attention_probs_dropout_prob;
  } else {
    mcfg_ = model::resolve_model_config(cfg_.model, data_.vocab_size, cfg_.data.max_seq_length);
  }
  check_model_fits(mcfg_, cfg_, data_, source);
  mcfg_.num_labels = static_cast<int64_t>(data_.labels.num_outputs());
  mcfg_.id2label = data_.labels.labels;
  mcfg_.problem_type = problem_type_;
  model_ = model::BertForSequenceClassification(mcfg_, static_cast<uint64_t>(cfg_.train.seed));
  model_->encoder().set_gradient_checkpointing(cfg_.train.gradient_checkpointing);
  if (pretrained && pretrained->files) {
    io::LoadOptions options;
    options.ignore_mismatched_sizes = cfg_.model.ignore_mismatched_sizes;
    const auto report = io::load_into(model_->hf_state_dict(), model::BertHead::SequenceClassification,
                                      pretrained->files->tensors, source, options);
    auto newly = report.initialised;
    newly.insert(newly.end(), report.resized.begin(), report.resized.end());
    spdlog::info("initialised from {}; newly initialised (not in it{}): {}", source,
                 report.resized.empty() ? "" : ", or of another shape",
                 newly.empty() ? "none" : model::list_names(newly, 20));
  }
  int64_t n_params = 0;
  for (auto& p : model_->parameters()) n_params += p.numel();
  spdlog::info("model: BertForSequenceClassification, {} layers x {} hidden, {} labels ({}), {:.1f}M parameters",
               mcfg_.num_hidden_layers, mcfg_.hidden_size, mcfg_.num_labels, problem_type_, n_params / 1e6);
}

const data::ClassificationDataset& ClassificationTask::dataset(Split split) const {
  return split == Split::Train ? data_.train : split == Split::Validation ? data_.validation : data_.test;
}

int64_t ClassificationTask::num_examples(Split split) const {
  return static_cast<int64_t>(dataset(split).examples.size());
}

Batch ClassificationTask::make_batch(Split split, const std::vector<int64_t>& indices, int64_t /*epoch*/) {
  const auto& examples = dataset(split).examples;
  const int64_t rows = static_cast<int64_t>(indices.size());
  int64_t len = 1;
  for (int64_t i : indices) len = std::max<int64_t>(len, examples[i].input.input_ids.size());
  if (cfg_.data.pad_to_max_length) len = cfg_.data.max_seq_length;
  at::Tensor ids = torch::full({rows, len}, data_.special.pad, torch::kLong);
  at::Tensor mask = torch::zeros({rows, len}, torch::kLong);
  at::Tensor types = torch::zeros({rows, len}, torch::kLong);
  const int64_t k = num_labels();
  const bool single = is_single(problem_type_), multi = is_multi(problem_type_);
  at::Tensor labels = single ? torch::full({rows}, -1, torch::kLong) : torch::zeros({rows, multi ? k : 1});
  int64_t* id = ids.data_ptr<int64_t>();
  int64_t* mk = mask.data_ptr<int64_t>();
  int64_t* ty = types.data_ptr<int64_t>();
  Batch b;
  bool padded = false, labelled = true;
  for (int64_t r = 0; r < rows; ++r) {
    const auto& e = examples[static_cast<size_t>(indices[r])];
    const auto n = static_cast<int64_t>(e.input.input_ids.size());
    std::copy(e.input.input_ids.begin(), e.input.input_ids.end(), id + r * len);
    std::copy(e.input.token_type_ids.begin(), e.input.token_type_ids.end(), ty + r * len);
    std::fill(mk + r * len, mk + r * len + n, 1);
    padded |= n < len;
    b.tokens += n;
    labelled &= e.has_label;
    if (!e.has_label) continue;
    if (single) {
      labels.data_ptr<int64_t>()[r] = e.label.class_id;
    } else if (multi) {
      std::copy(e.label.multi_hot.begin(), e.label.multi_hot.end(), labels.data_ptr<float>() + r * k);
    } else {
      labels.data_ptr<float>()[r] = e.label.value;
    }
  }
  if (!single && !multi) labels = labels.reshape({rows});
  b.tensors = {ids, padded ? mask : at::Tensor(), data_.pairs ? types : at::Tensor(), labelled ? labels : at::Tensor()};
  b.indices = indices;
  b.loss_units = model::classification_loss_units(rows, k, problem_type_);
  b.flops = model::flops_per_token(mcfg_, len, 0.0, /*sparse_head=*/true) * static_cast<double>(rows * len);
  return b;
}

at::Tensor ClassificationTask::loss_sum(const Batch& b) {
  const at::Tensor logits = model_->logits(b.tensors[0], b.tensors[1], b.tensors[2]);
  return model::classification_loss_sum(logits, b.tensors[3], problem_type_);
}

size_t ClassificationTask::eval_sums_size() const {
  if (is_single(problem_type_)) return 2 + static_cast<size_t>(num_labels() * num_labels());
  return is_multi(problem_type_) ? 6 : 3;
}

void ClassificationTask::eval_batch(const Batch& b, std::vector<double>& sums) {
  add_to_sums(model_->logits(b.tensors[0], b.tensors[1], b.tensors[2]), b, sums);
}

void ClassificationTask::add_to_sums(const at::Tensor& logits, const Batch& b, std::vector<double>& sums) const {
  const at::Tensor& labels = b.tensors[3];
  sums[0] += model::classification_loss_sum(logits, labels, problem_type_).item<double>();
  sums[1] += static_cast<double>(b.indices.size());
  if (is_single(problem_type_)) {
    const at::Tensor pred = logits.argmax(1).contiguous();
    const at::Tensor truth = labels.contiguous();
    for (int64_t r = 0; r < pred.size(0); ++r)
      sums[2 + static_cast<size_t>(truth.data_ptr<int64_t>()[r] * num_labels() + pred.data_ptr<int64_t>()[r])] += 1;
  } else if (is_multi(problem_type_)) {
    const at::Tensor pred = logits.gt(0).to(torch::kFloat), truth = labels.gt(0.5).to(torch::kFloat);
    sums[2] += (pred * truth).sum().item<double>();
    sums[3] += (pred * (1 - truth)).sum().item<double>();
    sums[4] += ((1 - pred) * truth).sum().item<double>();
    sums[5] += pred.eq(truth).all(1).sum().item<double>();
  } else {
    sums[2] += (logits.reshape({-1}) - labels.reshape({-1})).abs().sum().item<double>();
  }
}

Metrics ClassificationTask::eval_metrics(const std::vector<double>& sums) const {
  const double n = sums[1];
  const double units =
      static_cast<double>(model::classification_loss_units(static_cast<int64_t>(n), num_labels(), problem_type_));
  Metrics m;
  m["eval_loss"] = units > 0 ? sums[0] / units : 0.0;
  if (is_single(problem_type_)) {
    data::ConfusionMatrix cm(static_cast<size_t>(num_labels()));
    for (size_t i = 0; i < cm.counts().size(); ++i) cm.counts()[i] = static_cast<int64_t>(sums[2 + i]);
    const auto s = data::score_classification(cm);
    const nlohmann::json detail = data::scores_to_json(s, cm, mcfg_.id2label);
    m["eval_accuracy"] = s.accuracy;
    m["eval_f1"] = s.macro_f1;
    m["eval_precision"] = s.macro_precision;
    m["eval_recall"] = s.macro_recall;
    m["eval_weighted_f1"] = s.weighted_f1;
    m["eval_per_class"] = detail["per_class"];
    m["eval_confusion_matrix"] = detail["confusion"];
  } else if (is_multi(problem_type_)) {
    const double tp = sums[2], fp = sums[3], fn = sums[4];
    m["eval_precision"] = tp + fp > 0 ? tp / (tp + fp) : 0.0;
    m["eval_recall"] = tp + fn > 0 ? tp / (tp + fn) : 0.0;
    m["eval_f1"] = 2 * tp + fp + fn > 0 ? 2 * tp / (2 * tp + fp + fn) : 0.0;
    m["eval_accuracy"] = n > 0 ? sums[5] / n : 0.0;  // exact match
  } else {
    m["eval_mse"] = m["eval_loss"];
    m["eval_mae"] = n > 0 ? sums[2] / n : 0.0;
  }
  m["eval_samples"] = static_cast<int64_t>(n);
  return m;
}

std::string ClassificationTask::eval_summary(const Metrics& m) const {
  std::string line = fmt::format("loss {:.4f}", m["eval_loss"].get<double>());
  if (m.contains("eval_accuracy")) line += fmt::format(", accuracy {:.4f}", m["eval_accuracy"].get<double>());
  if (m.contains("eval_f1"))
    line += fmt::format(", {}F1 {:.4f}", is_single(problem_type_) ? "macro-" : "micro-", m["eval_f1"].get<double>());
  if (m.contains("eval_mae")) line += fmt::format(", MAE {:.4f}", m["eval_mae"].get<double>());
  line += fmt::format(" ({} examples)", m["eval_samples"].get<int64_t>());
  if (!m.contains("eval_per_class")) return line;
  // A readable table: per-class scores and the confusion matrix (rows: true label, columns: predicted).
  size_t width = 8;
  for (const auto& name : mcfg_.id2label) width = std::max(width, name.size());
  line += fmt::format("\n  {:<{}}  precision  recall     f1  support", "label", width);
  for (int64_t i = 0; i < num_labels(); ++i) {
    const auto& c = m["eval_per_class"][model::label_name(mcfg_, i)];
    line += fmt::format("\n  {:<{}}  {:9.3f}  {:6.3f}  {:5.3f}  {:7d}", model::label_name(mcfg_, i), width,
                        c["precision"].get<double>(), c["recall"].get<double>(), c["f1"].get<double>(),
                        c["support"].get<int64_t>());
  }
  line += "\n  confusion matrix (row: true label, column: predicted, in label order):";
  for (const auto& row : m["eval_confusion_matrix"]) {
    line += "\n   ";
    for (const auto& v : row) line += fmt::format(" {:5d}", v.get<int64_t>());
  }
  return line;
}

nlohmann::json ClassificationTask::model_config_json() const {
  return model::to_hf_config_json(mcfg_, model::BertHead::SequenceClassification);
}

void ClassificationTask::load_checkpoint_tensors(const std::map<std::string, at::Tensor>& tensors,
                                                 const std::string& source) {
  model_->load_hf_state_dict(tensors, source, /*strict=*/true);
}

std::vector<std::string> ClassificationTask::checkpoint_files() const {
  const fs::path dir = fs::path(data_.vocab_path).parent_path();
  return {data_.vocab_path, (dir / "tokenizer_config.json").string()};
}

void ClassificationTask::export_model(const std::string& dir, const std::string& save_dtype) {
  io::export_hf_model(dir, mcfg_, model_->hf_state_dict(), data_.vocab_path, data_.lowercase, save_dtype,
                      model::BertHead::SequenceClassification);
}

CardFacts ClassificationTask::card_facts() const {
  CardFacts f;
  f.architecture = "BertForSequenceClassification";
  f.pipeline_tag = "text-classification";
  f.base_model = cfg_.model.init_from;
  std::string labels;
  for (int64_t i = 0; i < num_labels(); ++i) labels += (i ? ", " : "") + model::label_name(mcfg_, i);
  f.data = fmt::format(
      "`{}` ({} examples) for training, `{}` ({} examples) for evaluation; text column(s) `{}`{}, "
      "label column `{}`; {} with the labels {}; at most {} tokens per example.",
      cfg_.data.train_file, data_.train.examples.size(), cfg_.data.validation_file, data_.validation.examples.size(),
      cfg_.data.text_column_names, data_.pairs ? " (sentence pairs)" : "", cfg_.data.label_column_name, problem_type_,
      labels, cfg_.data.max_seq_length);
  f.metric_note = is_single(problem_type_)
                      ? "eval_f1 is the macro-F1 over the labels (each label counts alike), eval_accuracy the share "
                        "of examples whose top label is right."
                  : is_multi(problem_type_) ? "eval_f1 is the micro-F1 over (example, label) pairs at a 0.5 threshold."
                                            : "eval_loss is the mean squared error.";
  return f;
}

std::string ClassificationTask::prediction_text(const float* p) const {
  if (is_single(problem_type_)) return model::label_name(mcfg_, std::max_element(p, p + num_labels()) - p);
  if (!is_multi(problem_type_)) return fmt::format("{:.6g}", p[0]);
  std::string out;
  for (int64_t i = 0; i < num_labels(); ++i)
    if (p[i] > 0.5f) out += (out.empty() ? "" : ",") + model::label_name(mcfg_, i);
  return out;
}

// One pass over the test split: every example's scores go to rank 0 (predict_results.txt) and, when
// the file has labels, the evaluation sums give test_* metrics.
void ClassificationTask::predict(Evaluator& evaluator) {
  const int64_t n = num_examples(Split::Test), k = num_labels(), width = 1 + k;
  const int64_t per_rank = (n + ctx_.world - 1) / ctx_.world;
  const auto& test = data_.test.examples;
  const bool labelled = n > 0 && std::all_of(test.begin(), test.end(), [](const auto& e) { return e.has_label; });
  std::vector<double> mine(static_cast<size_t>(std::max<int64_t>(1, per_rank) * width), -1.0);  // [index, scores]
  std::vector<double> sums(labelled ? eval_sums_size() : 0, 0.0);
  size_t row = 0;
  evaluator.for_each_batch(Split::Test, [&](const Batch& b) {
    at::Tensor logits;
    {
      model::AutocastGuard autocast(ctx_.bf16);
      logits = model_->logits(b.tensors[0], b.tensors[1], b.tensors[2]);
      if (labelled) add_to_sums(logits, b, sums);
    }
    const at::Tensor scores = (is_single(problem_type_)  ? logits.softmax(1)
                               : is_multi(problem_type_) ? logits.sigmoid()
                                                         : logits)
                                  .to(torch::kDouble)
                                  .contiguous();
    for (size_t r = 0; r < b.indices.size(); ++r, ++row) {
      mine[row * width] = static_cast<double>(b.indices[r]);
      std::copy(scores.data_ptr<double>() + r * k, scores.data_ptr<double>() + (r + 1) * k, &mine[row * width + 1]);
    }
  });
  std::vector<double> all(mine.size() * static_cast<size_t>(ctx_.world));
  wait_or_abort(ctx_.comm, ctx_.comm.allGather(mine.data(), all.data(), mine.size(), DataType::F64), ctx_.timeout_s);
  if (ctx_.rank == 0) write_predictions(all, width);
  if (!labelled) return;
  wait_or_abort(ctx_.comm, ctx_.comm.allReduce(sums.data(), sums.data(), sums.size(), DataType::F64, ReduceOp::Sum),
                ctx_.timeout_s);
  const Metrics scores = eval_metrics(sums);
  spdlog::info("test: {}", eval_summary(scores));
  if (ctx_.rank != 0) return;
  Metrics renamed;
  for (const auto& [key, value] : scores.items())
    renamed["test_" + key.substr(key.rfind("eval_", 0) == 0 ? 5 : 0)] = value;
  io::write_json_file(ctx_.dir.file("test_results.json"), nlohmann::json(renamed));
  nlohmann::json all_results = fs::exists(ctx_.dir.file("all_results.json"))
                                   ? io::read_json_file(ctx_.dir.file("all_results.json"))
                                   : nlohmann::json::object();
  for (const auto& [key, value] : renamed.items())
    if (value.is_number()) all_results[key] = value;  // the per-class tables stay in test_results.json
  io::write_json_file(ctx_.dir.file("all_results.json"), all_results);
}

void ClassificationTask::write_predictions(const std::vector<double>& rows, int64_t width) const {
  const int64_t n = num_examples(Split::Test);
  std::vector<const double*> by_index(static_cast<size_t>(n), nullptr);
  for (size_t off = 0; off + static_cast<size_t>(width) <= rows.size(); off += static_cast<size_t>(width))
    if (rows[off] >= 0) by_index[static_cast<size_t>(rows[off])] = &rows[off + 1];
  std::string out = "index\tline\tprediction\tscores\n";
  std::vector<float> scores(static_cast<size_t>(width - 1));
  for (int64_t i = 0; i < n; ++i) {
    std::copy(by_index[static_cast<size_t>(i)], by_index[static_cast<size_t>(i)] + width - 1, scores.begin());
    std::string joined;
    for (float v : scores) joined += (joined.empty() ? "" : ",") + fmt::format("{:.6g}", v);
    out += fmt::format("{}\t{}\t{}\t{}\n", i, data_.test.examples[static_cast<size_t>(i)].line,
                       prediction_text(scores.data()), joined);
  }
  io::write_file_atomic(ctx_.dir.file("predict_results.txt"), out);
  spdlog::info("wrote {} predictions to {}", n, ctx_.dir.file("predict_results.txt"));
}

int run_classification(const ClassificationConfig& given, HcclLike& comm) {
  ClassificationConfig cfg = given;
  resolve_global_batch(cfg.train, comm.size());
  RunContext ctx = open_run(cfg.train, cfg.dist, comm, "run_classification", /*log_file=*/false);
  ClassificationTask task(ctx, cfg);  // every input checked before anything is written
  open_log_file(ctx, cfg.train);
  Trainer trainer(ctx, task, cfg.train, cfg.dist, classification_schema().to_yaml(&cfg));
  const int code = trainer.run();
  if (code == 0 && cfg.train.do_predict) task.predict(trainer.evaluator());
  wait_or_abort(ctx.comm, ctx.comm.barrier(), ctx.timeout_s);
  return code;
}

}  // namespace mpibert::train
