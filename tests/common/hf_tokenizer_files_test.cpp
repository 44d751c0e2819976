// Hugging Face tokenizer files: the tokenizer.json schema BertTokenizerFast.save_pretrained writes,
// tokenizer_config.json / special_tokens_map.json, reading vocab.txt as transformers does.
#include "common/io/hf_tokenizer_files.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/error.h"

namespace mpibert::io {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

class HfTokenizerFilesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("mpibert_tok_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    const std::string p = (dir_ / name).string();
    std::ofstream(p, std::ios::binary) << text;
    return p;
  }
  static std::string read(const std::string& p) {
    std::ifstream in(p, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }

  // ids: [PAD]=0, then 96 filler tokens so the specials sit where bert-base-uncased has them.
  static std::vector<std::string> bert_like_vocab() {
    std::vector<std::string> v = {"[PAD]"};
    for (int i = 1; i < 100; ++i) v.push_back("[unused" + std::to_string(i - 1) + "]");
    for (const char* t : {"[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "##s", "caf\xc3\xa9", "\"q\""}) v.push_back(t);
    return v;
  }

  fs::path dir_;
};

TEST_F(HfTokenizerFilesTest, ReadsVocabOneTokenPerLineIgnoringTrailingWhitespace) {
  EXPECT_THAT(read_hf_vocab(write("a.txt", "[PAD]\nhello\n##lo\n")), ElementsAre("[PAD]", "hello", "##lo"));
  EXPECT_THAT(read_hf_vocab(write("b.txt", "x\ny")), ElementsAre("x", "y"));
  EXPECT_THAT(read_hf_vocab(write("c.txt", "x \r\n\ny\n")), ElementsAre("x", "", "y"));
}

TEST_F(HfTokenizerFilesTest, RepeatedVocabTokenMapsToItsLastLineInTokenizerJson) {
  const std::vector<std::string> vocab = {"[PAD]", "dup", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "dup", "z"};
  const json tok = json::parse(hf_tokenizer_json_text(vocab, true));
  EXPECT_EQ(tok["model"]["vocab"]["dup"], 6);
  EXPECT_EQ(tok["model"]["vocab"]["z"], 7);
  EXPECT_EQ(tok["model"]["vocab"].size(), 7u);
}

TEST_F(HfTokenizerFilesTest, RejectsEmptyOrMissingVocab) {
  EXPECT_THROW(read_hf_vocab(write("empty.txt", "")), UsageError);
  EXPECT_THROW(read_hf_vocab((dir_ / "none.txt").string()), UsageError);
}

TEST_F(HfTokenizerFilesTest, TokenizerJsonFollowsTheTokenizersSchema) {
  const auto vocab = bert_like_vocab();
  const json tok = json::parse(hf_tokenizer_json_text(vocab, true));
  EXPECT_EQ(tok["version"], "1.0");
  EXPECT_TRUE(tok["truncation"].is_null());
  EXPECT_TRUE(tok["padding"].is_null());

  ASSERT_EQ(tok["added_tokens"].size(), 5u);
  const std::vector<std::pair<int, std::string>> expected = {
      {0, "[PAD]"}, {100, "[UNK]"}, {101, "[CLS]"}, {102, "[SEP]"}, {103, "[MASK]"}};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const json& t = tok["added_tokens"][i];
    EXPECT_EQ(t["id"], expected[i].first);
    EXPECT_EQ(t["content"], expected[i].second);
    EXPECT_EQ(t["special"], true);
    EXPECT_EQ(t["normalized"], false);
    EXPECT_EQ(t["single_word"], false);
    EXPECT_EQ(t["lstrip"], false);
    EXPECT_EQ(t["rstrip"], false);
  }

  EXPECT_EQ(tok["normalizer"], (json{{"type", "BertNormalizer"},
                                     {"clean_text", true},
                                     {"handle_chinese_chars", true},
                                     {"strip_accents", nullptr},
                                     {"lowercase", true}}));
  EXPECT_EQ(tok["pre_tokenizer"], (json{{"type", "BertPreTokenizer"}}));

  const json& post = tok["post_processor"];
  EXPECT_EQ(post["type"], "TemplateProcessing");
  EXPECT_EQ(post["single"], json::parse(R"([{"SpecialToken":{"id":"[CLS]","type_id":0}},
      {"Sequence":{"id":"A","type_id":0}},{"SpecialToken":{"id":"[SEP]","type_id":0}}])"));
  EXPECT_EQ(post["pair"], json::parse(R"([{"SpecialToken":{"id":"[CLS]","type_id":0}},
      {"Sequence":{"id":"A","type_id":0}},{"SpecialToken":{"id":"[SEP]","type_id":0}},
      {"Sequence":{"id":"B","type_id":1}},{"SpecialToken":{"id":"[SEP]","type_id":1}}])"));
  EXPECT_EQ(post["special_tokens"], json::parse(R"({"[CLS]":{"id":"[CLS]","ids":[101],"tokens":["[CLS]"]},
      "[SEP]":{"id":"[SEP]","ids":[102],"tokens":["[SEP]"]}})"));

  EXPECT_EQ(tok["decoder"], (json{{"type", "WordPiece"}, {"prefix", "##"}, {"cleanup", true}}));

  const json& model = tok["model"];
  EXPECT_EQ(model["type"], "WordPiece");
  EXPECT_EQ(model["unk_token"], "[UNK]");
  EXPECT_EQ(model["continuing_subword_prefix"], "##");
  EXPECT_EQ(model["max_input_chars_per_word"], 100);
  ASSERT_EQ(model["vocab"].size(), vocab.size());
  for (std::size_t i = 0; i < vocab.size(); ++i) EXPECT_EQ(model["vocab"][vocab[i]], i) << vocab[i];
}

TEST_F(HfTokenizerFilesTest, TokenizerJsonKeepsTheLibrarysKeyOrderAndVocabInIdOrder) {
  const std::string text = hf_tokenizer_json_text(bert_like_vocab(), false);
  std::size_t last = 0;
  for (const char* key : {"\"version\"", "\"truncation\"", "\"padding\"", "\"added_tokens\"", "\"normalizer\"",
                          "\"pre_tokenizer\"", "\"post_processor\"", "\"decoder\"", "\"model\""}) {
    const std::size_t at = text.find(key);
    ASSERT_NE(at, std::string::npos) << key;
    EXPECT_GT(at, last) << key;
    last = at;
  }
  EXPECT_LT(text.find("\"[unused98]\": 99"), text.find("\"[UNK]\": 100"));
  EXPECT_EQ(json::parse(text)["normalizer"]["lowercase"], false);
}

TEST_F(HfTokenizerFilesTest, MissingSpecialTokenIsAUsageErrorNamingIt) {
  try {
    hf_tokenizer_json_text({"[PAD]", "[UNK]", "[CLS]", "[SEP]", "hello"}, true);
    FAIL() << "vocabulary without [MASK] accepted";
  } catch (const UsageError& e) {
    EXPECT_THAT(e.what(), HasSubstr("no mask token '[MASK]'"));
  }
}

TEST_F(HfTokenizerFilesTest, TokenizerConfigMatchesTransformersKeys) {
  const json config = json::parse(hf_tokenizer_config_text(bert_like_vocab(), true, 512));
  EXPECT_EQ(config["tokenizer_class"], "BertTokenizer");
  EXPECT_EQ(config["do_lower_case"], true);
  EXPECT_EQ(config["model_max_length"], 512);
  EXPECT_EQ(config["mask_token"], "[MASK]");
  EXPECT_EQ(config["unk_token"], "[UNK]");
  EXPECT_TRUE(config["strip_accents"].is_null());
  EXPECT_EQ(config["tokenize_chinese_chars"], true);
  EXPECT_EQ(config["added_tokens_decoder"]["103"]["content"], "[MASK]");
  EXPECT_EQ(config["added_tokens_decoder"]["0"]["special"], true);
  EXPECT_EQ(config["added_tokens_decoder"].size(), 5u);

  const json map = json::parse(hf_special_tokens_map_text());
  EXPECT_EQ(map, (json{{"cls_token", "[CLS]"},
                       {"mask_token", "[MASK]"},
                       {"pad_token", "[PAD]"},
                       {"sep_token", "[SEP]"},
                       {"unk_token", "[UNK]"}}));
}

TEST_F(HfTokenizerFilesTest, WritesTheFourFilesWithVocabCopiedByteForByte) {
  std::string vocab_text;
  for (const auto& t : bert_like_vocab()) vocab_text += t + "\n";
  const std::string vocab = write("src_vocab.txt", vocab_text);
  fs::create_directories(dir_ / "out");
  write_hf_tokenizer_files((dir_ / "out").string(), vocab, false, 128);
  EXPECT_EQ(read((dir_ / "out" / "vocab.txt").string()), vocab_text);
  EXPECT_EQ(json::parse(read((dir_ / "out" / "tokenizer.json").string()))["model"]["vocab"]["caf\xc3\xa9"], 106);
  EXPECT_EQ(json::parse(read((dir_ / "out" / "tokenizer_config.json").string()))["model_max_length"], 128);
  EXPECT_TRUE(fs::exists(dir_ / "out" / "special_tokens_map.json"));

  std::string source;
  EXPECT_FALSE(read_hf_do_lower_case((dir_ / "out").string(), &source));
  EXPECT_THAT(source, HasSubstr("tokenizer_config.json"));
}

TEST_F(HfTokenizerFilesTest, DoLowerCaseFallsBackToTokenizerJsonThenToTheBertDefault) {
  std::string source;
  EXPECT_TRUE(read_hf_do_lower_case(dir_.string(), &source));
  EXPECT_THAT(source, HasSubstr("default"));
  write("tokenizer.json", R"({"normalizer": {"type": "BertNormalizer", "lowercase": false}})");
  EXPECT_FALSE(read_hf_do_lower_case(dir_.string(), &source));
  EXPECT_THAT(source, HasSubstr("normalizer.lowercase"));
  write("tokenizer_config.json", R"({"do_lower_case": true})");
  EXPECT_TRUE(read_hf_do_lower_case(dir_.string()));
  write("tokenizer_config.json", R"({"do_lower_case": "yes"})");
  EXPECT_THROW(read_hf_do_lower_case(dir_.string()), UsageError);
}

}  // namespace
}  // namespace mpibert::io
