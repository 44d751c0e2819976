// fill_mask end to end: a tiny model trained on two sentences is exported and the fill_mask program
// must predict each sentence's masked word first, in the pipeline's output shape; bad input exits 2.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/data/wordpiece.h"
#include "worker/io/hf_export.h"
#include "worker/model/bert.h"

namespace mpibert {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ::testing::HasSubstr;

struct RunResult {
  int code;
  std::string out, err;
};

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

class FillMaskTest : public ::testing::Test {
 protected:
  // Trains and exports once for the whole suite (a few seconds on one core).
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / ("mpibert_fill_mask_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    const std::string vocab = (dir_ / "vocab.txt").string();
    {
      std::ofstream v(vocab);
      for (const char* t : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "capital", "of", "france", "italy",
                            "is", "paris", "rome", ".", "big", "city", "##s", "a"}) {
        v << t << "\n";
      }
    }
    const auto tok = data::WordPieceTokenizer::from_vocab_file(vocab, true);
    model::BertConfig cfg;
    cfg.vocab_size = static_cast<int64_t>(tok.vocab_size());
    cfg.hidden_size = 32;
    cfg.num_hidden_layers = 2;
    cfg.num_attention_heads = 2;
    cfg.intermediate_size = 64;
    cfg.max_position_embeddings = 16;
    cfg.hidden_dropout_prob = 0;
    cfg.attention_probs_dropout_prob = 0;

    // [CLS] the capital of X is [MASK] . [SEP] -> Y, for (france, paris) and (italy, rome).
    std::vector<std::vector<int64_t>> rows;
    std::vector<std::vector<int64_t>> labels;
    for (const auto& [country, city] : {std::pair<const char*, const char*>{"france", "paris"}, {"italy", "rome"}}) {
      std::vector<int64_t> ids = {tok.special_ids().cls};
      for (int32_t id : tok.encode(std::string("the capital of ") + country + " is")) ids.push_back(id);
      const std::size_t mask_at = ids.size();
      ids.push_back(tok.special_ids().mask);
      ids.push_back(tok.token_to_id("."));
      ids.push_back(tok.special_ids().sep);
      std::vector<int64_t> lab(ids.size(), -100);
      lab[mask_at] = tok.token_to_id(city);
      rows.push_back(ids);
      labels.push_back(lab);
    }
    auto to_tensor = [](const std::vector<std::vector<int64_t>>& v) {
      std::vector<int64_t> flat;
      for (const auto& r : v) flat.insert(flat.end(), r.begin(), r.end());
      return torch::tensor(flat, torch::kLong).reshape({static_cast<int64_t>(v.size()), -1});
    };
    const torch::Tensor input = to_tensor(rows), target = to_tensor(labels);
    model::BertForMaskedLM m(cfg, /*init_seed=*/1234);
    m->train();
    torch::optim::Adam opt(m->parameters(), torch::optim::AdamOptions(3e-3));
    for (int step = 0; step < 300; ++step) {
      opt.zero_grad();
      const auto outp = m->forward_mlm(input, torch::ones_like(input), target, /*sparse_head=*/false);
      (outp.loss_sum / outp.num_masked.to(torch::kFloat)).backward();
      opt.step();
    }
    m->eval();
    model_dir_ = (dir_ / "model").string();
    io::export_hf_model(model_dir_, cfg, m->hf_state_dict(), vocab, /*lowercase=*/true, "f32");
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  static RunResult run(const std::string& args, const std::string& stdin_text = "") {
    const fs::path in = dir_ / "stdin.txt", out = dir_ / "stdout.txt", err = dir_ / "stderr.txt";
    std::ofstream(in) << stdin_text;
    const std::string cmd = std::string(MPIBERT_BIN_DIR) + "/fill_mask " + args + " < " + in.string() + " > " +
                            out.string() + " 2> " + err.string();
    const int status = std::system(cmd.c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(out), slurp(err)};
  }

  static fs::path dir_;
  static std::string model_dir_;
};

fs::path FillMaskTest::dir_;
std::string FillMaskTest::model_dir_;

TEST_F(FillMaskTest, PredictsTheTrainedWordFirstInThePipelinesShape) {
  const RunResult r = run("--model " + quote(model_dir_) + " --json --top_k 3 'The capital of France is [MASK].'");
  ASSERT_EQ(r.code, 0) << r.err;
  const json result = json::parse(r.out);
  ASSERT_TRUE(result.is_array());
  ASSERT_EQ(result.size(), 3u);
  EXPECT_EQ(result[0]["token_str"], "paris");
  EXPECT_EQ(result[0]["token"], 11);
  EXPECT_EQ(result[0]["sequence"], "the capital of france is paris.");
  EXPECT_GT(result[0]["score"].get<double>(), 0.5);
  double total = 0, previous = 1;
  for (const auto& p : result) {
    EXPECT_LE(p["score"].get<double>(), previous);
    previous = p["score"].get<double>();
    total += previous;
  }
  EXPECT_LE(total, 1.0 + 1e-9);
}

TEST_F(FillMaskTest, ContextDecidesThePrediction) {
  const RunResult r = run("--model " + quote(model_dir_) + " --json 'the capital of italy is [MASK] .'");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)[0]["token_str"], "rome");
}

TEST_F(FillMaskTest, ReadsOneQueryPerStdinLineSkippingBlankLines) {
  const RunResult r = run("--model " + quote(model_dir_) + " --json --top_k 1",
                          "The capital of France is [MASK].\n\n   \nThe capital of Italy is [MASK].\n");
  ASSERT_EQ(r.code, 0) << r.err;
  std::istringstream lines(r.out);
  std::string a, b, c;
  std::getline(lines, a);
  std::getline(lines, b);
  EXPECT_FALSE(std::getline(lines, c));
  EXPECT_EQ(json::parse(a)[0]["token_str"], "paris");
  EXPECT_EQ(json::parse(b)[0]["token_str"], "rome");
}

TEST_F(FillMaskTest, TextOutputListsTokenScoreAndSequence) {
  const RunResult r = run("--model " + quote(model_dir_) + " --top_k 2 'The capital of France is [MASK].'");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("The capital of France is [MASK].\n"));
  EXPECT_THAT(r.out, HasSubstr(" 1. paris"));
  EXPECT_THAT(r.out, HasSubstr("the capital of france is paris."));
  EXPECT_THAT(r.out, HasSubstr(" 2. "));
}

TEST_F(FillMaskTest, SeveralMasksGiveOneListEachWithTheOtherMasksShown) {
  const RunResult r = run("--model " + quote(model_dir_) + " --json --top_k 2 'the capital of [MASK] is [MASK].'");
  ASSERT_EQ(r.code, 0) << r.err;
  const json result = json::parse(r.out);
  ASSERT_EQ(result.size(), 2u);
  ASSERT_EQ(result[0].size(), 2u);
  EXPECT_THAT(result[0][0]["sequence"].get<std::string>(), HasSubstr("[CLS] the capital of"));
  EXPECT_THAT(result[0][0]["sequence"].get<std::string>(), HasSubstr("is [MASK]. [SEP]"));
  EXPECT_THAT(result[1][0]["sequence"].get<std::string>(), HasSubstr("the capital of [MASK] is"));
}

TEST_F(FillMaskTest, TextWithoutMaskExitsTwoWithOneLine) {
  const RunResult r = run("--model " + quote(model_dir_) + " 'no mask here'");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "fill_mask: error: no [MASK] in the text \"no mask here\"\n");
}

TEST_F(FillMaskTest, StdinErrorsNameTheLine) {
  const RunResult r = run("--model " + quote(model_dir_), "the [MASK] .\nno mask\n");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("stdin line 2: no [MASK]"));
}

TEST_F(FillMaskTest, TextLongerThanThePositionsExitsTwo) {
  std::string text;
  for (int i = 0; i < 14; ++i) text += "the ";
  const RunResult r = run("--model " + quote(model_dir_) + " " + quote(text + "[MASK]"));
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("the text is 17 tokens long with [CLS] and [SEP]; the model takes at most 16"));
  // One word less fills the 16 positions exactly and is accepted.
  EXPECT_EQ(run("--model " + quote(model_dir_) + " " + quote(text.substr(4) + "[MASK]")).code, 0);
}

TEST_F(FillMaskTest, MissingModelDirectoryExitsTwo) {
  const RunResult r = run("--model " + quote((dir_ / "nope").string()) + " 'a [MASK]'");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("does not exist"));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1);
}

TEST_F(FillMaskTest, MissingModelFlagExitsTwo) {
  const RunResult r = run("'a [MASK]'");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--model"));
}

}  // namespace
}  // namespace mpibert
