// classify: labels and scores of texts from a fine-tuned BertForSequenceClassification directory, as
// Hugging Face's text-classification pipeline reports them ({"label", "score"}, best first).
//
//   classify --model DIR [--top_k 1] [--json] "a text" ["another text" ...]
//   classify --model DIR < texts.txt      (one text per line; blank lines are skipped)
#include <torch/torch.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/config/inference_args.h"
#include "common/data/text_classification.h"
#include "common/data/wordpiece.h"
#include "common/error.h"
#include "common/io/hf_tokenizer_files.h"
#include "common/log/log.h"
#include "common/platform/blas_fit.h"
#include "worker/io/hf_import.h"
#include "worker/model/bert_classifier.h"

namespace {

using mpibert::UsageError;
namespace fs = std::filesystem;

struct Scored {
  std::string label;
  double score;
};

class Classifier {
 public:
  Classifier(const mpibert::config::InferenceOptions& opt) : opt_(opt) {
    const std::string& dir = opt.model;
    const fs::path vocab = fs::path(dir) / "vocab.txt";
    auto loaded = mpibert::io::load_hf_model_dir(dir);
    cfg_ = loaded.config;
    if (!fs::exists(vocab)) throw UsageError("model directory " + dir + " has no vocab.txt (the WordPiece vocabulary)");
    std::string lowercase_source;
    const bool lowercase = mpibert::io::read_hf_do_lower_case(dir, &lowercase_source);
    tokenizer_ = std::make_unique<mpibert::data::WordPieceTokenizer>(
        mpibert::data::WordPieceTokenizer::from_vocab_file(vocab.string(), lowercase));
    model_ = mpibert::model::BertForSequenceClassification(cfg_);
    const auto report = mpibert::io::load_into(model_->hf_state_dict(),
                                               mpibert::model::BertHead::SequenceClassification, loaded.tensors, dir);
    if (!report.initialised.empty())
      throw UsageError(dir + " is not a sequence-classification model: it has no " +
                       mpibert::model::list_names(report.initialised) +
                       " (fine-tune it with run_classification first; fill_mask reads masked-LM models)");
    model_->eval();
    fn_ = opt.function_to_apply;
    if (fn_ == "default") {
      const std::string problem = mpibert::model::resolve_problem_type(cfg_);
      fn_ = problem == "regression"                                           ? "none"
            : problem == "multi_label_classification" || cfg_.num_labels == 1 ? "sigmoid"
                                                                              : "softmax";
    }
    spdlog::info("{}: {} labels, lowercase = {} (from {}), scores by {}", dir, cfg_.num_labels, lowercase,
                 lowercase_source, fn_);
  }

  std::vector<Scored> classify(const std::string& query) {
    std::string a = query, b;
    const std::string& sep = opt_.text_pair_separator;
    const size_t at = sep.empty() ? std::string::npos : query.find(sep);
    if (at != std::string::npos) {
      a = query.substr(0, at);
      b = query.substr(at + sep.size());
    }
    const auto max_len = static_cast<size_t>(cfg_.max_position_embeddings);
    const auto input = at == std::string::npos ? mpibert::data::encode_classification_input(*tokenizer_, a, max_len)
                                               : mpibert::data::encode_classification_input(*tokenizer_, a, b, max_len);
    if (input.num_truncated > 0)
      spdlog::warn("the text was cut to the model's {} tokens ({} tokens dropped)", max_len, input.num_truncated);
    torch::NoGradGuard no_grad;
    const auto to_tensor = [](const std::vector<int32_t>& v) { return torch::tensor(v, torch::kLong).unsqueeze(0); };
    const torch::Tensor logits = model_->logits(to_tensor(input.input_ids), {}, to_tensor(input.token_type_ids))[0];
    const torch::Tensor scores = (fn_ == "softmax"   ? logits.to(torch::kDouble).softmax(0)
                                  : fn_ == "sigmoid" ? logits.to(torch::kDouble).sigmoid()
                                                     : logits.to(torch::kDouble))
                                     .contiguous();
    std::vector<Scored> out;
    for (int64_t i = 0; i < scores.size(0); ++i)
      out.push_back({mpibert::model::label_name(cfg_, i), scores.data_ptr<double>()[i]});
    std::stable_sort(out.begin(), out.end(), [](const Scored& x, const Scored& y) { return x.score > y.score; });
    if (opt_.top_k > 0 && static_cast<size_t>(opt_.top_k) < out.size()) out.resize(static_cast<size_t>(opt_.top_k));
    return out;
  }

 private:
  const mpibert::config::InferenceOptions& opt_;
  mpibert::model::BertConfig cfg_;
  std::unique_ptr<mpibert::data::WordPieceTokenizer> tokenizer_;
  mpibert::model::BertForSequenceClassification model_{nullptr};
  std::string fn_;
};

void print(const std::string& query, const std::vector<Scored>& result, bool as_json) {
  if (as_json) {
    nlohmann::ordered_json list = nlohmann::ordered_json::array();
    for (const auto& s : result) list.push_back({{"label", s.label}, {"score", s.score}});
    std::printf("%s\n", list.dump().c_str());
  } else {
    std::printf("%s\n", query.c_str());
    for (size_t i = 0; i < result.size(); ++i)
      std::printf("  %2zu. %-20s %.4f\n", i + 1, result[i].label.c_str(), result[i].score);
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  mpibert::platform::fit_blas_to_cpu(argv);  // may re-execute this program with a better OpenBLAS core
  mpibert::config::InferenceOptions opt;
  std::vector<std::string> texts;
  if (auto done = mpibert::config::parse_inference_args(
          mpibert::config::InferenceProgram::Classify, argc, argv,
          "usage: classify --model DIR [--top_k 1] [--json] [--verbose] [\"text\" ...]\n"
          "Labels and scores of texts, like Hugging Face's text-classification pipeline.\n"
          "With no TEXT, reads one text per line from stdin.",
          opt, texts))
    return *done;
  return mpibert::run_main("classify", [&]() -> int {
    mpibert::init_logging({0, 1, opt.verbose ? "info" : "warning", "", false});
    Classifier classifier(opt);
    mpibert::config::for_each_query(texts, [&](const std::string& q) { print(q, classifier.classify(q), opt.json); });
    return 0;
  });
}
