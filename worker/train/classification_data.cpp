#include "worker/train/classification_data.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "common/comm/agreement.h"
#include "common/data/batch_sampler.h"
#include "common/data/classification_blob.h"
#include "common/data/table_reader.h"
#include "common/error.h"
#include "common/io/json_file.h"
#include "common/io/sha256.h"

namespace fs = std::filesystem;

namespace mpibert::train {
namespace {

struct Vocabulary {
  std::string path;
  bool lowercase = true;
};

// The model directory's vocab.txt (and its casing from tokenizer_config.json), else data.vocab_file.
Vocabulary find_vocabulary(const ClassificationConfig& cfg) {
  Vocabulary v;
  v.lowercase = cfg.data.lowercase;
  const bool from_model = !cfg.model.init_from.empty();
  v.path = from_model ? (fs::path(cfg.model.init_from) / "vocab.txt").string() : cfg.data.vocab_file;
  if (v.path.empty())
    throw UsageError(
        "no vocabulary: give --model_name_or_path DIR (a BERT directory with vocab.txt) or, for a model "
        "built from model.preset, --tokenizer_name VOCAB.txt");
  if (!fs::is_regular_file(v.path))
    throw UsageError((from_model ? "model directory " + cfg.model.init_from + " has no vocab.txt"
                                 : "data.vocab_file " + v.path + ": no such file"));
  const fs::path config = fs::path(v.path).parent_path() / "tokenizer_config.json";
  if (fs::exists(config)) v.lowercase = io::read_json_file(config.string()).value("do_lower_case", v.lowercase);
  return v;
}

data::TextColumns text_columns(const ClassificationDataConfig& d) {
  data::TextColumns c;
  c.delimiter = d.text_column_delimiter;
  auto names = data::split_column_names(d.text_column_names, "--text_column_names");
  if (!d.sentence_pair) {
    c.first = names;
    return c;
  }
  if (names.size() != 2)
    throw UsageError("--sentence_pair needs exactly two --text_column_names (got '" + d.text_column_names + "')");
  c.first = {names[0]};
  c.second = {names[1]};
  return c;
}

// The labels when not training: the model's (init_from), sorted as a training file's would be.
data::LabelSpace labels_of_model(const model::BertConfig& m, const ClassificationDataConfig& d) {
  data::LabelSpace s;
  s.problem_type = data::parse_problem_type(model::resolve_problem_type(m), "the model's config.json");
  s.label_column = d.label_column_name;
  s.source = "the model's config.json (id2label)";
  if (s.problem_type != data::ProblemType::kRegression)
    for (int64_t i = 0; i < m.num_labels; ++i) s.labels.push_back(model::label_name(m, i));
  std::sort(s.labels.begin(), s.labels.end());
  return s;
}

// Label id order: the model's when it names the same labels (so its classifier keeps its meaning).
std::vector<int32_t> model_order(const data::LabelSpace& s, const model::BertConfig* m) {
  std::vector<int32_t> order;
  if (!m || m->id2label.empty() || s.labels.size() != m->id2label.size()) return order;
  std::vector<std::string> theirs = m->id2label;
  std::sort(theirs.begin(), theirs.end());
  if (theirs != s.labels) return order;
  for (const auto& label : s.labels)
    order.push_back(
        static_cast<int32_t>(std::find(m->id2label.begin(), m->id2label.end(), label) - m->id2label.begin()));
  return order;
}

void take_first(data::ClassificationDataset& d, int64_t n) {
  if (n > 0 && static_cast<size_t>(n) < d.examples.size()) d.examples.resize(static_cast<size_t>(n));
}

void shuffle_once(data::ClassificationDataset& d, uint64_t seed) {
  const auto perm = data::shuffled_range(static_cast<int64_t>(d.examples.size()), seed, 0x73687566);
  std::vector<data::ClassificationExample> out;
  out.reserve(d.examples.size());
  for (int64_t i : perm) out.push_back(std::move(d.examples[static_cast<size_t>(i)]));
  d.examples = std::move(out);
}

void log_split(const char* name, const data::ClassificationDataset& d, int64_t max_len) {
  if (d.examples.empty()) return;
  spdlog::info("{}: {} examples from {}, longest {} tokens, {} truncated to {} tokens", name, d.examples.size(),
               d.source, d.longest_input, d.truncated_examples, max_len);
}

// Rank 0's part: everything that touches the files.
std::string read_and_encode(const ClassificationConfig& cfg, const model::BertConfig* pretrained,
                            ClassificationData& out) {
  const auto& d = cfg.data;
  const Vocabulary vocab = find_vocabulary(cfg);
  const auto tokenizer = data::WordPieceTokenizer::from_vocab_file(vocab.path, vocab.lowercase);
  const data::TextColumns columns = text_columns(d);
  const auto max_len = static_cast<size_t>(d.max_seq_length);
  std::optional<data::ProblemType> wanted;
  if (!d.problem_type.empty()) wanted = data::parse_problem_type(d.problem_type, "--problem_type");
  if (cfg.train.do_train) {
    if (d.train_file.empty()) throw UsageError("do_train needs --train_file");
    const data::Table table = data::read_table(d.train_file);
    out.labels = data::build_label_space(table, d.label_column_name, wanted);
    out.train = data::encode_classification_table(table, columns, &out.labels, true, tokenizer, max_len);
    if (d.shuffle_train_dataset) shuffle_once(out.train, static_cast<uint64_t>(cfg.train.seed));
    take_first(out.train, d.max_train_samples);
  } else {
    if (!pretrained) throw UsageError("evaluation or prediction without training needs --model_name_or_path");
    out.labels = labels_of_model(*pretrained, d);
  }
  if (cfg.train.do_eval && !d.validation_file.empty())
    out.validation = data::encode_classification_table(data::read_table(d.validation_file), columns, &out.labels, true,
                                                       tokenizer, max_len);
  if (cfg.train.do_predict) {
    if (d.test_file.empty()) throw UsageError("do_predict needs --test_file");
    out.test = data::encode_classification_table(data::read_table(d.test_file), columns, &out.labels, false, tokenizer,
                                                 max_len);
    take_first(out.test, d.max_predict_samples);
  }
  std::vector<int32_t> order = model_order(out.labels, pretrained);
  if (!order.empty()) {
    std::vector<std::string> names(out.labels.labels.size());
    for (size_t i = 0; i < order.size(); ++i) names[static_cast<size_t>(order[i])] = out.labels.labels[i];
    out.labels.labels = names;
    for (auto* ds : {&out.train, &out.validation, &out.test}) data::renumber_labels(*ds, order);
  }
  const data::SpecialIds sp = tokenizer.special_ids();
  const std::string fingerprint = d.train_file.empty() ? "" : io::sha256_file(d.train_file);
  return fingerprint + '\n' + vocab.path + '\n' + (vocab.lowercase ? "1" : "0") + '\n' +
         std::to_string(tokenizer.vocab_size()) + '\n' + std::to_string(sp.pad) + ' ' + std::to_string(sp.unk) + ' ' +
         std::to_string(sp.cls) + ' ' + std::to_string(sp.sep) + ' ' + std::to_string(sp.mask) + '\n' +
         data::to_blob(out.labels, {&out.train, &out.validation, &out.test});
}

}  // namespace

ClassificationData load_classification_data(RunContext& ctx, const ClassificationConfig& cfg,
                                            const model::BertConfig* pretrained) {
  ClassificationData out;
  std::string text = agree_on_root(
      ctx.comm, [&] { return read_and_encode(cfg, pretrained, out); }, silence_limit(ctx.timeout_s));
  // Every rank (rank 0 too) takes the broadcast form, so all hold exactly the same data.
  auto next_line = [&] {
    const size_t nl = text.find('\n');
    std::string line = text.substr(0, nl);
    text.erase(0, nl + 1);
    return line;
  };
  out.fingerprint = next_line();
  out.vocab_path = next_line();
  out.lowercase = next_line() == "1";
  out.vocab_size = std::stoll(next_line());
  std::istringstream(next_line()) >> out.special.pad >> out.special.unk >> out.special.cls >> out.special.sep >>
      out.special.mask;
  std::vector<data::ClassificationDataset*> sets = {&out.train, &out.validation, &out.test};
  data::from_blob(text, out.labels, sets);
  out.pairs = cfg.data.sentence_pair;
  if (ctx.rank == 0) {
    log_split("train", out.train, cfg.data.max_seq_length);
    log_split("validation", out.validation, cfg.data.max_seq_length);
    log_split("test", out.test, cfg.data.max_seq_length);
  }
  return out;
}

}  // namespace mpibert::train
