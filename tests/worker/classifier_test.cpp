// BertForSequenceClassification: Hugging Face's names and shapes, token types, the three losses
// against torch's own, loading a masked-LM export (pooler and classifier initialised), shape
// mismatches and ignore_mismatched_sizes, and the config.json labels round trip.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "common/error.h"
#include "worker/io/hf_export.h"
#include "worker/io/hf_import.h"
#include "worker/model/bert.h"
#include "worker/model/bert_classifier.h"
#include "worker/model/hf_names.h"

namespace mpibert::model {
namespace {

BertConfig tiny(int64_t labels) {
  BertConfig c = preset("tiny");
  c.vocab_size = 40;
  c.hidden_dropout_prob = 0;
  c.attention_probs_dropout_prob = 0;
  c.num_labels = labels;
  return c;
}

TEST(Classifier, ParametersAreHuggingFacesNamesAndShapesInOrder) {
  BertForSequenceClassification m(tiny(3), 1);
  const auto expected = hf_tensors(m->config(), BertHead::SequenceClassification);
  const auto state = m->hf_state_dict();
  ASSERT_EQ(state.size(), expected.size());
  for (size_t i = 0; i < state.size(); ++i) {
    EXPECT_EQ(state[i].first, expected[i].name);
    EXPECT_EQ(state[i].second.sizes().vec(), expected[i].shape) << expected[i].name;
  }
  EXPECT_EQ(state.back().first, "classifier.bias");
}

TEST(Classifier, TokenTypesAndPaddingChangeWhatTheyShould) {
  BertForSequenceClassification m(tiny(2), 2);
  m->eval();
  auto ids = torch::tensor({{2, 7, 8, 3, 9, 3}}, torch::kLong);
  auto zeros = torch::zeros_like(ids), pair = torch::tensor({{0, 0, 0, 0, 1, 1}}, torch::kLong);
  torch::NoGradGuard ng;
  const auto undefined = m->logits(ids, {}, {});
  EXPECT_TRUE(torch::allclose(undefined, m->logits(ids, {}, zeros), 1e-6, 1e-6)) << "undefined = all type 0";
  EXPECT_FALSE(torch::allclose(undefined, m->logits(ids, {}, pair), 1e-4, 1e-4)) << "type 1 must matter";
  // Padding with an attention mask of 0 does not change the logits of the real tokens.
  auto padded = torch::tensor({{2, 7, 8, 3, 9, 3, 0, 0}}, torch::kLong);
  auto mask = torch::tensor({{1, 1, 1, 1, 1, 1, 0, 0}}, torch::kLong);
  EXPECT_TRUE(torch::allclose(undefined, m->logits(padded, mask, {}), 1e-5, 1e-5));
}

TEST(Classifier, LossSumsAreHuggingFacesMeanLossesTimesTheirUnits) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
  const auto logits = torch::randn({6, 4}, gen);
  const auto classes = torch::tensor({0, 3, 1, 1, 2, 0}, torch::kLong);
  EXPECT_NEAR(classification_loss_sum(logits, classes, "single_label_classification").item<double>(),
              6 * torch::nn::functional::cross_entropy(logits, classes).item<double>(), 1e-5);
  const auto multi_hot = (torch::rand({6, 4}, gen) > 0.5).to(torch::kFloat);
  EXPECT_NEAR(classification_loss_sum(logits, multi_hot, "multi_label_classification").item<double>(),
              24 * torch::nn::functional::binary_cross_entropy_with_logits(logits, multi_hot).item<double>(), 1e-4);
  const auto values = torch::randn({6}, gen), one = logits.narrow(1, 0, 1);
  EXPECT_NEAR(classification_loss_sum(one, values, "regression").item<double>(),
              6 * torch::nn::functional::mse_loss(one.squeeze(1), values).item<double>(), 1e-5);
  EXPECT_EQ(classification_loss_units(6, 4, "multi_label_classification"), 24);
  EXPECT_EQ(classification_loss_units(6, 4, "single_label_classification"), 6);
}

TEST(Classifier, LoadingAMaskedLmModelCopiesTheEncoderAndInitialisesTheHead) {
  BertForMaskedLM mlm(tiny(2), 7);
  std::map<std::string, torch::Tensor> tensors;
  for (auto& [name, t] : mlm->hf_state_dict()) tensors[name] = t.detach().clone();
  BertForSequenceClassification cls(tiny(3), 8);
  const auto report = io::load_into(cls->hf_state_dict(), BertHead::SequenceClassification, tensors, "mlm");
  EXPECT_EQ(std::set<std::string>(report.initialised.begin(), report.initialised.end()),
            (std::set<std::string>{"bert.pooler.dense.weight", "bert.pooler.dense.bias", "classifier.weight",
                                   "classifier.bias"}));
  EXPECT_FALSE(report.ignored.empty()) << "the MLM head (cls.*) is skipped";
  for (auto& [name, t] : cls->hf_state_dict()) {
    if (name.rfind("bert.encoder.", 0) == 0 || name.rfind("bert.embeddings.", 0) == 0) {
      EXPECT_TRUE(t.equal(tensors.at(name))) << name;
    }
  }
}

TEST(Classifier, AClassifierForOtherLabelsNeedsIgnoreMismatchedSizes) {
  BertForSequenceClassification five(tiny(5), 1);
  std::map<std::string, torch::Tensor> tensors;
  for (auto& [name, t] : five->hf_state_dict()) tensors[name] = t.detach().clone();
  BertForSequenceClassification three(tiny(3), 2);
  try {
    io::load_into(three->hf_state_dict(), BertHead::SequenceClassification, tensors, "five");
    ADD_FAILURE() << "a 5-label classifier loaded into a 3-label model";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("ignore_mismatched_sizes"), std::string::npos) << e.what();
  }
  io::LoadOptions o;
  o.ignore_mismatched_sizes = true;
  const auto report = io::load_into(three->hf_state_dict(), BertHead::SequenceClassification, tensors, "five", o);
  EXPECT_EQ(report.resized, (std::vector<std::string>{"classifier.weight", "classifier.bias"}));
}

TEST(Classifier, ConfigJsonCarriesLabelsAndProblemType) {
  BertConfig c = tiny(3);
  c.id2label = {"fiction", "learned", "press"};
  c.problem_type = "single_label_classification";
  const auto j = to_hf_config_json(c, BertHead::SequenceClassification);
  EXPECT_EQ(j["architectures"][0], "BertForSequenceClassification");
  EXPECT_EQ(j["id2label"]["1"], "learned");
  EXPECT_EQ(j["label2id"]["press"], 2);
  const BertConfig back = from_hf_config_json(j, "test");
  EXPECT_EQ(back.num_labels, 3);
  EXPECT_EQ(back.id2label, c.id2label);
  EXPECT_EQ(back.problem_type, c.problem_type);
  EXPECT_EQ(resolve_problem_type(tiny(1)), "regression");
  EXPECT_THROW(from_hf_config_json({{"id2label", {{"0", "a"}, {"2", "b"}}}}, "test"), UsageError);
}

// The export as transformers would load it: layout, labels and logits against tests/e2e/hf_cls_check.py's
// independent transcription of BertForSequenceClassification's forward, with token types and padding.
TEST(Classifier, ExportMatchesHuggingFacesLayoutAndAnIndependentForward) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("mpibert_cls_export_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  {
    std::ofstream v(dir / "vocab.txt");
    for (const char* t : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) v << t << "\n";
    for (int i = 5; i < 40; ++i) v << "w" << i << "\n";
  }
  BertConfig c = tiny(3);
  c.id2label = {"fiction", "learned", "press"};
  c.problem_type = "single_label_classification";
  BertForSequenceClassification m(c, 11);
  m->eval();
  const fs::path out = dir / "model";
  io::export_hf_model(out.string(), c, m->hf_state_dict(), (dir / "vocab.txt").string(), true, "f32",
                      BertHead::SequenceClassification);
  const auto ids = torch::tensor({{2, 7, 8, 3, 9, 10, 3}, {2, 11, 3, 12, 3, 0, 0}}, torch::kLong);
  const auto types = torch::tensor({{0, 0, 0, 0, 1, 1, 1}, {0, 0, 0, 1, 1, 0, 0}}, torch::kLong);
  const auto mask = torch::tensor({{1, 1, 1, 1, 1, 1, 1}, {1, 1, 1, 1, 1, 0, 0}}, torch::kLong);
  torch::NoGradGuard ng;
  const auto logits = m->logits(ids, mask, types).contiguous();
  auto rows = [](const torch::Tensor& t) {
    nlohmann::json j = nlohmann::json::array();
    for (int64_t r = 0; r < t.size(0); ++r) {
      nlohmann::json row = nlohmann::json::array();
      for (int64_t k = 0; k < t.size(1); ++k)
        row.push_back(t.dtype() == torch::kLong ? nlohmann::json(t[r][k].item<int64_t>())
                                                : nlohmann::json(t[r][k].item<double>()));
      j.push_back(row);
    }
    return j;
  };
  std::ofstream(dir / "inputs.json") << nlohmann::json{
      {"input_ids", rows(ids)},
      {"token_type_ids", rows(types)},
      {"attention_mask", rows(mask)}}.dump();
  std::ofstream(dir / "expect.json") << nlohmann::json{{"logits", rows(logits)}}.dump();
  const std::string log = (dir / "check.log").string();
  const std::string cmd = "/usr/bin/python3 " + std::string(MPIBERT_SOURCE_DIR) + "/tests/e2e/hf_cls_check.py " +
                          out.string() + " --inputs " + (dir / "inputs.json").string() + " --expect-logits " +
                          (dir / "expect.json").string() + " > " + log + " 2>&1";
  const int status = std::system(cmd.c_str());
  std::stringstream text;
  text << std::ifstream(log).rdbuf();
  EXPECT_EQ(status, 0) << text.str();
  EXPECT_NE(text.str().find("OK"), std::string::npos) << text.str();
  fs::remove_all(dir);
}

}  // namespace
}  // namespace mpibert::model
