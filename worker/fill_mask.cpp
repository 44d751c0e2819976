// fill_mask: the top-k tokens (with probabilities) for each [MASK] of a text, as Hugging Face's
// fill-mask pipeline reports them (score, token, token_str, sequence).
//
//   fill_mask --model DIR [--top_k 5] [--json] "The capital of France is [MASK]."
//   fill_mask --model DIR < queries.txt      (one query per line; blank lines are skipped)
//
// DIR is a Hugging Face model directory (run_mlm's export, or a Hub BERT converted to safetensors).
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/config/inference_args.h"
#include "common/data/wordpiece.h"
#include "common/error.h"
#include "common/io/hf_tokenizer_files.h"
#include "common/log/log.h"
#include "common/platform/blas_fit.h"
#include "worker/io/hf_import.h"

namespace {

using mpibert::UsageError;
namespace fs = std::filesystem;

constexpr const char* kMaskToken = "[MASK]";

struct Prediction {
  double score;
  int64_t token;
  std::string token_str;
  std::string sequence;
};

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (std::size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
  return s;
}

// transformers' clean_up_tokenization (clean_up_tokenization_spaces=True in our tokenizer_config).
std::string clean_up_tokenization(std::string s) {
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{{" .", "."},
                                                                                 {" ?", "?"},
                                                                                 {" !", "!"},
                                                                                 {" ,", ","},
                                                                                 {" ' ", "'"},
                                                                                 {" n't", "n't"},
                                                                                 {" 'm", "'m"},
                                                                                 {" 's", "'s"},
                                                                                 {" 've", "'ve"},
                                                                                 {" 're", "'re"}}) {
    s = replace_all(std::move(s), from, to);
  }
  return s;
}

class FillMask {
 public:
  FillMask(const std::string& dir, int top_k) : top_k_(top_k) {
    if (!fs::exists(dir)) throw UsageError("model directory " + dir + " does not exist");
    const fs::path vocab = fs::path(dir) / "vocab.txt";
    if (!fs::exists(vocab)) throw UsageError("model directory " + dir + " has no vocab.txt (the WordPiece vocabulary)");
    std::string lowercase_source;
    const bool lowercase = mpibert::io::read_hf_do_lower_case(dir, &lowercase_source);
    spdlog::info("lowercase = {} (from {})", lowercase, lowercase_source);
    tokenizer_ = std::make_unique<mpibert::data::WordPieceTokenizer>(
        mpibert::data::WordPieceTokenizer::from_vocab_file(vocab.string(), lowercase));
    model_ = mpibert::io::load_hf_model(dir);
    const auto& cfg = model_->config();
    if (static_cast<int64_t>(tokenizer_->vocab_size()) > cfg.vocab_size) {
      throw UsageError(vocab.string() + " has " + std::to_string(tokenizer_->vocab_size()) +
                       " tokens but config.json's vocab_size is " + std::to_string(cfg.vocab_size));
    }
    const auto ids = tokenizer_->special_ids();
    for (const auto& [id, name] :
         {std::pair<int32_t, const char*>{ids.cls, "[CLS]"}, {ids.sep, "[SEP]"}, {ids.mask, kMaskToken}}) {
      if (id < 0) throw UsageError(vocab.string() + " has no " + name + " token");
    }
    special_ = {ids.pad, ids.unk, ids.cls, ids.sep, ids.mask};
  }

  // One list of predictions per [MASK], in text order.
  std::vector<std::vector<Prediction>> predict(const std::string& text) {
    const auto specials = tokenizer_->special_ids();
    std::vector<int64_t> ids = {specials.cls};
    std::vector<std::size_t> masks;
    std::size_t start = 0;
    while (true) {
      const std::size_t at = text.find(kMaskToken, start);
      for (int32_t id : tokenizer_->encode(
               std::string_view(text).substr(start, at == std::string::npos ? std::string::npos : at - start))) {
        ids.push_back(id);
      }
      if (at == std::string::npos) break;
      masks.push_back(ids.size());
      ids.push_back(specials.mask);
      start = at + std::string(kMaskToken).size();
    }
    ids.push_back(specials.sep);
    if (masks.empty()) throw UsageError("no [MASK] in the text \"" + text + "\"");
    const int64_t max_len = model_->config().max_position_embeddings;
    if (static_cast<int64_t>(ids.size()) > max_len) {
      throw UsageError("the text is " + std::to_string(ids.size()) +
                       " tokens long with [CLS] and [SEP]; the model takes at most " + std::to_string(max_len) +
                       " (max_position_embeddings)");
    }

    torch::NoGradGuard no_grad;
    const torch::Tensor input = torch::tensor(ids, torch::kLong).unsqueeze(0);
    const torch::Tensor logits = model_->logits(input, torch::ones_like(input))[0];  // [L, V]
    const int64_t k = std::min<int64_t>(top_k_, logits.size(1));
    const bool single_mask = masks.size() == 1;
    std::vector<std::vector<Prediction>> out;
    for (std::size_t m : masks) {
      const torch::Tensor probs = logits[static_cast<int64_t>(m)].to(torch::kDouble).softmax(-1);
      const auto [values, indices] = probs.topk(k);
      std::vector<Prediction> row;
      for (int64_t i = 0; i < k; ++i) {
        Prediction p;
        p.score = values[i].item<double>();
        p.token = indices[i].item<int64_t>();
        p.token_str = decode({p.token}, /*skip_special=*/false);
        std::vector<int64_t> filled = ids;
        filled[m] = p.token;
        // As the pipeline does: specials dropped for one mask; kept for several, so the other [MASK]s show.
        p.sequence = decode(filled, /*skip_special=*/single_mask);
        row.push_back(std::move(p));
      }
      out.push_back(std::move(row));
    }
    return out;
  }

 private:
  bool is_special(int64_t id) const {
    for (int32_t s : special_) {
      if (s >= 0 && s == id) return true;
    }
    return false;
  }

  std::string token_text(int64_t id) const {
    if (id < 0 || id >= static_cast<int64_t>(tokenizer_->vocab_size())) return "[id " + std::to_string(id) + "]";
    return tokenizer_->id_to_token(static_cast<int32_t>(id));
  }

  // tokenizers' WordPiece decoder (prefix "##", cleanup) then transformers' clean-up of spaces.
  std::string decode(const std::vector<int64_t>& ids, bool skip_special) const {
    std::string text;
    bool first = true;
    for (int64_t id : ids) {
      if (skip_special && is_special(id)) continue;
      std::string token = token_text(id);
      if (!first) token = token.rfind("##", 0) == 0 ? token.substr(2) : " " + token;
      first = false;
      text += clean_up_tokenization(token);
    }
    return clean_up_tokenization(text);
  }

  int top_k_;
  std::unique_ptr<mpibert::data::WordPieceTokenizer> tokenizer_;
  mpibert::model::BertForMaskedLM model_{nullptr};
  std::vector<int32_t> special_;
};

// The pipeline's output: per mask a list of {score, token, token_str, sequence} (in its key order);
// one list for a single mask, a list of lists for several.
nlohmann::ordered_json to_json(const std::vector<std::vector<Prediction>>& result) {
  nlohmann::ordered_json masks = nlohmann::ordered_json::array();
  for (const auto& row : result) {
    nlohmann::ordered_json r = nlohmann::ordered_json::array();
    for (const auto& p : row) {
      nlohmann::ordered_json item;
      item["score"] = p.score;
      item["token"] = p.token;
      item["token_str"] = p.token_str;
      item["sequence"] = p.sequence;
      r.push_back(std::move(item));
    }
    masks.push_back(std::move(r));
  }
  return result.size() == 1 ? masks[0] : masks;
}

void print_text(const std::string& query, const std::vector<std::vector<Prediction>>& result) {
  std::printf("%s\n", query.c_str());
  for (std::size_t m = 0; m < result.size(); ++m) {
    if (result.size() > 1) std::printf("  [MASK] %zu of %zu:\n", m + 1, result.size());
    for (std::size_t i = 0; i < result[m].size(); ++i) {
      const Prediction& p = result[m][i];
      std::printf("  %2zu. %-16s %.4f  %s\n", i + 1, p.token_str.c_str(), p.score, p.sequence.c_str());
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  mpibert::platform::fit_blas_to_cpu(argv);  // may re-execute this program with a better OpenBLAS core
  mpibert::config::InferenceOptions opt;
  std::vector<std::string> texts;
  if (auto done = mpibert::config::parse_inference_args(
          mpibert::config::InferenceProgram::FillMask, argc, argv,
          "usage: fill_mask --model DIR [--top_k 5] [--json] [--verbose] [\"text with [MASK]\" ...]\n"
          "Top-k predictions for each [MASK] of a text, like Hugging Face's fill-mask pipeline.\n"
          "With no TEXT, reads one query per line from stdin.",
          opt, texts))
    return *done;
  return mpibert::run_main("fill_mask", [&]() -> int {
    mpibert::init_logging({0, 1, opt.verbose ? "info" : "warning", "", false});
    FillMask fill(opt.model, static_cast<int>(opt.top_k));
    mpibert::config::for_each_query(texts, [&](const std::string& query) {
      const auto result = fill.predict(query);
      if (opt.json) {
        std::printf("%s\n", to_json(result).dump().c_str());
      } else {
        print_text(query, result);
      }
      std::fflush(stdout);
    });
    return 0;
  });
}
