// at::Tensor <-> safetensors, Hugging Face export (layout, names, dtypes) and import (round trip,
// rejected directories and tensors).
#include "worker/io/hf_export.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/error.h"
#include "common/io/safetensors.h"
#include "worker/io/hf_import.h"
#include "worker/io/tensor_io.h"
#include "worker/model/bert.h"

namespace mpibert::io {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ::testing::HasSubstr;

const std::vector<std::string> kWords = {"the",  "capital", "of", "france", "italy", "is", "paris",
                                         "rome", ".",       "a",  "##s",    "city",  "big"};

model::BertConfig tiny_config(int64_t vocab_size) {
  model::BertConfig c;
  c.vocab_size = vocab_size;
  c.hidden_size = 32;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 2;
  c.intermediate_size = 64;
  c.max_position_embeddings = 24;
  c.hidden_dropout_prob = 0;
  c.attention_probs_dropout_prob = 0;
  return c;
}

class HfExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("mpibert_hf_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::ofstream vocab(vocab_path());
    for (const char* s : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) vocab << s << "\n";
    for (const auto& w : kWords) vocab << w << "\n";
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string vocab_path() const { return (dir_ / "vocab.txt").string(); }
  std::string out(const std::string& name = "export") const { return (dir_ / name).string(); }
  static int64_t vocab_size() { return 5 + static_cast<int64_t>(kWords.size()); }

  static json read_json(const std::string& p) {
    std::ifstream in(p);
    return json::parse(in);
  }

  static torch::Tensor sample_ids() {
    return torch::tensor({{2, 5, 6, 7, 8, 10, 4, 13, 3}, {2, 5, 6, 7, 9, 10, 4, 13, 3}}, torch::kLong);
  }

  model::BertForMaskedLM make_model(uint64_t seed = 7) const {
    model::BertForMaskedLM m(tiny_config(vocab_size()), seed);
    m->eval();
    return m;
  }

  fs::path dir_;
};

// ---- tensor_io ----

TEST_F(HfExportTest, TensorIoRoundTripsEveryDtype) {
  torch::manual_seed(1);
  std::vector<std::pair<std::string, torch::Tensor>> tensors = {
      {"f32", torch::randn({3, 4})},
      {"f16", torch::randn({5}).to(torch::kHalf)},
      {"bf16", torch::randn({2, 2}).to(torch::kBFloat16)},
      {"f64", torch::randn({4}, torch::kDouble)},
      {"i64", torch::arange(-5, 5, torch::kLong)},
      {"i32", torch::arange(0, 6, torch::kInt).reshape({2, 3})},
      {"i16", torch::arange(-3, 3, torch::kShort)},
      {"i8", torch::arange(-3, 3, torch::kChar)},
      {"u8", torch::arange(250, 256, torch::kInt).to(torch::kByte)},
      {"bool", torch::tensor({true, false, true})},
      {"scalar", torch::scalar_tensor(2.5)},
      {"empty", torch::zeros({0, 3})},
  };
  save_tensors(out("t.safetensors"), tensors, {{"format", "pt"}});
  std::map<std::string, std::string> meta;
  const auto back = load_tensors(out("t.safetensors"), &meta);
  EXPECT_EQ(meta.at("format"), "pt");
  ASSERT_EQ(back.size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    const torch::Tensor& b = back.at(name);
    EXPECT_EQ(b.scalar_type(), t.scalar_type()) << name;
    EXPECT_EQ(b.sizes(), t.sizes()) << name;
    EXPECT_TRUE(torch::equal(b, t)) << name;
  }
}

TEST_F(HfExportTest, TensorIoSavesNonContiguousTensorsByValue) {
  const torch::Tensor base = torch::arange(12, torch::kFloat).reshape({3, 4});
  save_tensors(out("t.safetensors"), {{"t", base.t()}, {"col", base.select(1, 2)}});
  const auto back = load_tensors(out("t.safetensors"));
  EXPECT_TRUE(torch::equal(back.at("t"), base.t()));
  EXPECT_TRUE(torch::equal(back.at("col"), torch::tensor({2.f, 6.f, 10.f})));
}

TEST_F(HfExportTest, TensorIoCastsOnlyFloatingTensors) {
  const torch::Tensor w = torch::tensor({1.0f, 1.00390625f, -2.5f});
  save_tensors(out("t.safetensors"), {{"w", w}, {"ids", torch::arange(3, torch::kLong)}}, {}, torch::kBFloat16);
  const SafetensorsHeader h = read_safetensors_header(out("t.safetensors"));
  EXPECT_EQ(h.tensors.at("w").dtype, StDtype::BF16);
  EXPECT_EQ(h.tensors.at("ids").dtype, StDtype::I64);
  const auto back = load_tensors(out("t.safetensors"));
  EXPECT_TRUE(torch::equal(back.at("w"), w.to(torch::kBFloat16)));
  EXPECT_THROW(save_tensors(out("x.safetensors"), {{"w", w}}, {}, torch::kLong), UsageError);
}

// ---- export ----

TEST_F(HfExportTest, ExportWritesTheHuggingFaceLayout) {
  auto m = make_model();
  const auto cfg = m->config();
  export_hf_model(out(), cfg, m->hf_state_dict(), vocab_path(), true, "f32");
  for (const char* f : {"config.json", "model.safetensors", "vocab.txt", "tokenizer.json", "tokenizer_config.json",
                        "special_tokens_map.json"}) {
    EXPECT_TRUE(fs::exists(fs::path(out()) / f)) << f;
  }
  const json config = read_json(out() + "/config.json");
  EXPECT_EQ(config["architectures"], json::array({"BertForMaskedLM"}));
  EXPECT_EQ(config["model_type"], "bert");
  EXPECT_EQ(config["torch_dtype"], "float32");
  EXPECT_EQ(config["vocab_size"], vocab_size());
  EXPECT_EQ(config["hidden_size"], 32);
  EXPECT_EQ(config["num_hidden_layers"], 2);
  EXPECT_EQ(config["hidden_act"], "gelu");
  for (const char* key :
       {"num_attention_heads", "intermediate_size", "max_position_embeddings", "type_vocab_size", "layer_norm_eps",
        "pad_token_id", "hidden_dropout_prob", "attention_probs_dropout_prob", "initializer_range"}) {
    EXPECT_TRUE(config.contains(key)) << key;
  }

  const SafetensorsHeader h = read_safetensors_header(out() + "/model.safetensors");
  EXPECT_EQ(h.metadata, (std::map<std::string, std::string>{{"format", "pt"}}));
  const auto expected = model::hf_tensors(cfg, model::BertHead::MaskedLM);
  ASSERT_EQ(h.tensors.size(), expected.size());
  for (const auto& [name, shape] : expected) {
    ASSERT_TRUE(h.tensors.count(name)) << name;
    EXPECT_EQ(h.tensors.at(name).shape, shape) << name;
    EXPECT_EQ(h.tensors.at(name).dtype, StDtype::F32) << name;
  }
  EXPECT_FALSE(h.tensors.count("cls.predictions.decoder.weight"));
  EXPECT_FALSE(h.tensors.count("cls.predictions.decoder.bias"));
  EXPECT_EQ(read_json(out() + "/tokenizer_config.json")["do_lower_case"], true);
  EXPECT_EQ(read_json(out() + "/tokenizer.json")["model"]["vocab"]["paris"], 11);
}

TEST_F(HfExportTest, ExportedNamesAreExactlyTheModelsParametersWithoutTiedAliases) {
  auto m = make_model();
  std::set<std::string> params;
  for (const auto& p : m->named_parameters(true)) params.insert(p.key());
  std::set<std::string> listed;
  for (const auto& [name, shape] : model::hf_tensors(m->config(), model::BertHead::MaskedLM)) listed.insert(name);
  EXPECT_EQ(params, listed);
}

TEST_F(HfExportTest, ExportImportRoundTripGivesIdenticalLogits) {
  auto m = make_model();
  export_hf_model(out(), m->config(), m->hf_state_dict(), vocab_path(), true, "f32");
  auto back = load_hf_model(out());
  torch::NoGradGuard no_grad;
  const torch::Tensor ids = sample_ids();
  const torch::Tensor mask = torch::ones_like(ids);
  EXPECT_TRUE(torch::equal(m->logits(ids, mask), back->logits(ids, mask)));
  for (const auto& p : m->named_parameters(true)) {
    EXPECT_TRUE(torch::equal(p.value(), back->named_parameters(true)[p.key()])) << p.key();
  }
}

TEST_F(HfExportTest, Bf16ExportLoadsIntoFp32ParametersRoundedToBf16) {
  auto m = make_model();
  export_hf_model(out(), m->config(), m->hf_state_dict(), vocab_path(), false, "bf16");
  EXPECT_EQ(read_json(out() + "/config.json")["torch_dtype"], "bfloat16");
  EXPECT_EQ(read_json(out() + "/tokenizer_config.json")["do_lower_case"], false);
  const SafetensorsHeader h = read_safetensors_header(out() + "/model.safetensors");
  for (const auto& [name, info] : h.tensors) EXPECT_EQ(info.dtype, StDtype::BF16) << name;
  auto back = load_hf_model(out());
  for (const auto& p : back->named_parameters(true)) {
    EXPECT_EQ(p.value().scalar_type(), torch::kFloat) << p.key();
    const torch::Tensor expected = m->named_parameters(true)[p.key()].to(torch::kBFloat16).to(torch::kFloat);
    EXPECT_TRUE(torch::equal(p.value(), expected)) << p.key();
  }
}

TEST_F(HfExportTest, ExportRejectsABadSaveDtypeAndATooLargeVocabulary) {
  auto m = make_model();
  EXPECT_THROW(export_hf_model(out(), m->config(), m->hf_state_dict(), vocab_path(), true, "fp8"), UsageError);
  auto small = m->config();
  small.vocab_size = 6;
  try {
    export_hf_model(out(), small, m->hf_state_dict(), vocab_path(), true, "f32");
    FAIL() << "vocabulary larger than the model accepted";
  } catch (const UsageError& e) {
    EXPECT_THAT(e.what(), HasSubstr("has 18 tokens but the model's vocab_size is 6"));
  }
  EXPECT_FALSE(fs::exists(fs::path(out()) / "config.json"));
}

TEST_F(HfExportTest, ExportRejectsAStateThatDoesNotMatchTheConfig) {
  auto m = make_model();
  auto state = m->hf_state_dict();
  state.emplace_back("bert.encoder.layer.9.output.dense.bias", torch::zeros({32}));
  EXPECT_THROW(export_hf_model(out(), m->config(), state, vocab_path(), true, "f32"), std::runtime_error);
  auto wider = m->config();
  wider.intermediate_size = 128;
  try {
    export_hf_model(out(), wider, m->hf_state_dict(), vocab_path(), true, "f32");
    FAIL() << "shape mismatch accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_THAT(e.what(), HasSubstr("bert.encoder.layer.0.intermediate.dense.weight"));
    EXPECT_THAT(e.what(), HasSubstr("[64, 32]"));
    EXPECT_THAT(e.what(), HasSubstr("[128, 32]"));
  }
}

// The Python check (tests/e2e/hf_layout_check.py) re-states what transformers/tokenizers need and runs
// an independent PyTorch version of Hugging Face's BertForMaskedLM forward on the exported weights.
class HfLayoutCheck : public HfExportTest {
 protected:
  static bool python_torch_available() {
    return std::system("/usr/bin/python3 -c 'import torch' > /dev/null 2>&1") == 0;
  }
  // Exports, writes mpibert's logits for sample_ids() beside it and runs the checker.
  std::string run_check(const std::string& save_dtype) {
    auto m = make_model();
    export_hf_model(out(), m->config(), m->hf_state_dict(), vocab_path(), true, save_dtype);
    auto back = load_hf_model(out());  // bf16: the logits of the weights as stored
    torch::NoGradGuard no_grad;
    const torch::Tensor ids = sample_ids();
    save_tensors(out("reference.safetensors"),
                 {{"input_ids", ids}, {"logits", back->logits(ids, torch::ones_like(ids))}});
    const std::string log = out("check.log");
    const std::string cmd = "/usr/bin/python3 " + std::string(MPIBERT_SOURCE_DIR) + "/tests/e2e/hf_layout_check.py " +
                            out() + " --reference " + out("reference.safetensors") + " > " + log + " 2>&1";
    const int status = std::system(cmd.c_str());
    std::ifstream in(log);
    std::stringstream ss;
    ss << in.rdbuf();
    EXPECT_EQ(status, 0) << ss.str();
    return ss.str();
  }
};

TEST_F(HfLayoutCheck, Fp32ExportMatchesWhatHuggingFaceLoadsAndItsForward) {
  if (!python_torch_available())
    FAIL() << "/usr/bin/python3 with torch is missing: scripts/install-deps.sh installs python3-torch";
  const std::string log = run_check("f32");
  EXPECT_THAT(log, HasSubstr("logits: ok"));
  EXPECT_THAT(log, HasSubstr("OK"));
}

TEST_F(HfLayoutCheck, Bf16ExportMatchesWhatHuggingFaceLoadsAndItsForward) {
  if (!python_torch_available())
    FAIL() << "/usr/bin/python3 with torch is missing: scripts/install-deps.sh installs python3-torch";
  EXPECT_THAT(run_check("bf16"), HasSubstr("OK"));
}

TEST_F(HfLayoutCheck, CheckerRejectsATiedDecoderKeySavePretrainedWouldHaveDropped) {
  if (!python_torch_available())
    FAIL() << "/usr/bin/python3 with torch is missing: scripts/install-deps.sh installs python3-torch";
  auto m = make_model();
  export_hf_model(out(), m->config(), m->hf_state_dict(), vocab_path(), true, "f32");
  auto tensors = load_tensors(out() + "/model.safetensors");
  std::vector<std::pair<std::string, torch::Tensor>> with_alias(tensors.begin(), tensors.end());
  with_alias.emplace_back("cls.predictions.decoder.weight", tensors.at("bert.embeddings.word_embeddings.weight"));
  save_tensors(out() + "/model.safetensors", with_alias, {{"format", "pt"}});
  const std::string cmd = "/usr/bin/python3 " + std::string(MPIBERT_SOURCE_DIR) + "/tests/e2e/hf_layout_check.py " +
                          out() + " > /dev/null 2>&1";
  EXPECT_NE(std::system(cmd.c_str()), 0);
}

// ---- import ----

class HfImportTest : public HfExportTest {
 protected:
  // An exported model's tensors, to be edited by the test.
  std::map<std::string, torch::Tensor> exported_tensors() {
    auto m = make_model();
    export_hf_model(out(), m->config(), m->hf_state_dict(), vocab_path(), true, "f32");
    return load_hf_model_dir(out()).tensors;
  }
  std::string load_error(const std::map<std::string, torch::Tensor>& tensors) {
    auto target = make_model(99);
    try {
      load_into(target, tensors, "test.safetensors");
    } catch (const UsageError& e) {
      return e.what();
    }
    ADD_FAILURE() << "load_into accepted the tensors";
    return "";
  }
};

TEST_F(HfImportTest, MissingDirectoryIsAUsageError) {
  try {
    load_hf_model_dir(out("nope"));
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_THAT(e.what(), HasSubstr("does not exist"));
  }
}

TEST_F(HfImportTest, DirectoryWithoutConfigIsAUsageError) {
  fs::create_directories(out("empty"));
  try {
    load_hf_model_dir(out("empty"));
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_THAT(e.what(), HasSubstr("has no config.json"));
  }
}

TEST_F(HfImportTest, PytorchBinOnlyDirectoryGetsTheConversionCommand) {
  auto m = make_model();
  export_hf_model(out(), m->config(), m->hf_state_dict(), vocab_path(), true, "f32");
  fs::rename(fs::path(out()) / "model.safetensors", fs::path(out()) / "pytorch_model.bin");
  try {
    load_hf_model_dir(out());
    FAIL();
  } catch (const UsageError& e) {
    const std::string d = out();
    EXPECT_EQ(std::string(e.what()),
              d +
                  " has pytorch_model.bin but no model.safetensors: mpibert reads safetensors only; convert it with "
                  "`python -c \"from transformers import BertForMaskedLM; BertForMaskedLM.from_pretrained('" +
                  d + "').save_pretrained('" + d + "', safe_serialization=True)\"`");
  }
}

TEST_F(HfImportTest, MalformedSafetensorsIsAUsageErrorNamingTheFile) {
  auto m = make_model();
  export_hf_model(out(), m->config(), m->hf_state_dict(), vocab_path(), true, "f32");
  const std::string file = out() + "/model.safetensors";
  fs::resize_file(file, fs::file_size(file) - 4);
  try {
    load_hf_model_dir(out());
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_THAT(e.what(), HasSubstr(file));
    EXPECT_THAT(e.what(), HasSubstr("run past the end"));
  }
}

TEST_F(HfImportTest, ShapeMismatchNamesTheTensorAndBothShapes) {
  auto tensors = exported_tensors();
  tensors["bert.encoder.layer.1.intermediate.dense.weight"] = torch::zeros({48, 32});
  const std::string e = load_error(tensors);
  EXPECT_THAT(e, HasSubstr("test.safetensors"));
  EXPECT_THAT(e, HasSubstr("'bert.encoder.layer.1.intermediate.dense.weight' has shape [48, 32]"));
  EXPECT_THAT(e, HasSubstr("expects [64, 32]"));
}

TEST_F(HfImportTest, MissingTensorIsNamed) {
  auto tensors = exported_tensors();
  tensors.erase("cls.predictions.transform.dense.bias");
  EXPECT_THAT(load_error(tensors), HasSubstr("missing 1 model tensor(s): 'cls.predictions.transform.dense.bias'"));
}

TEST_F(HfImportTest, UnexpectedTensorsAreListed) {
  auto tensors = exported_tensors();
  tensors["bert.encoder.layer.5.output.dense.bias"] = torch::zeros({32});
  tensors["extra.weight"] = torch::zeros({2});
  const std::string e = load_error(tensors);
  EXPECT_THAT(e, HasSubstr("2 unexpected tensor(s)"));
  EXPECT_THAT(e, HasSubstr("'bert.encoder.layer.5.output.dense.bias'"));
  EXPECT_THAT(e, HasSubstr("'extra.weight'"));
}

TEST_F(HfImportTest, NonFloatTensorIsRejected) {
  auto tensors = exported_tensors();
  tensors["cls.predictions.bias"] = torch::zeros({vocab_size()}, torch::kLong);
  EXPECT_THAT(load_error(tensors), HasSubstr("'cls.predictions.bias' has dtype Long"));
}

TEST_F(HfImportTest, HubExtrasAreIgnoredAndTiedAliasesAccepted) {
  auto tensors = exported_tensors();
  tensors["bert.pooler.dense.weight"] = torch::zeros({32, 32});
  tensors["bert.pooler.dense.bias"] = torch::zeros({32});
  tensors["cls.seq_relationship.weight"] = torch::zeros({2, 32});
  tensors["cls.seq_relationship.bias"] = torch::zeros({2});
  tensors["bert.embeddings.position_ids"] = torch::arange(24, torch::kLong).unsqueeze(0);
  tensors["cls.predictions.decoder.weight"] = tensors.at("bert.embeddings.word_embeddings.weight").clone();
  tensors["cls.predictions.decoder.bias"] = tensors.at("cls.predictions.bias").clone();
  auto target = make_model(99);
  const LoadReport report = load_into(target, tensors, "hub");
  EXPECT_EQ(report.ignored.size(), 5u);
  EXPECT_EQ(report.aliases.size(), 2u);
  EXPECT_TRUE(torch::equal(target->named_parameters(true)["bert.embeddings.word_embeddings.weight"],
                           tensors.at("bert.embeddings.word_embeddings.weight")));
}

TEST_F(HfImportTest, DecoderAliasCanStandInForItsPrimary) {
  auto tensors = exported_tensors();
  const torch::Tensor word = tensors.at("bert.embeddings.word_embeddings.weight");
  tensors.erase("bert.embeddings.word_embeddings.weight");
  tensors["cls.predictions.decoder.weight"] = word;
  auto target = make_model(99);
  load_into(target, tensors, "alias-only");
  EXPECT_TRUE(torch::equal(target->named_parameters(true)["bert.embeddings.word_embeddings.weight"], word));
}

TEST_F(HfImportTest, UntiedDecoderWeightIsRejected) {
  auto tensors = exported_tensors();
  tensors["cls.predictions.decoder.weight"] = tensors.at("bert.embeddings.word_embeddings.weight") + 1;
  EXPECT_THAT(load_error(tensors), HasSubstr("differs from its tied weight"));
}

TEST_F(HfImportTest, FailedLoadLeavesTheModelUnchanged) {
  auto tensors = exported_tensors();
  tensors["bogus"] = torch::zeros({1});
  auto target = make_model(99);
  const torch::Tensor before = target->named_parameters(true)["bert.embeddings.LayerNorm.weight"].clone();
  tensors["bert.embeddings.LayerNorm.weight"] = torch::full({32}, 3.0f);
  EXPECT_THROW(load_into(target, tensors, "x"), UsageError);
  EXPECT_TRUE(torch::equal(target->named_parameters(true)["bert.embeddings.LayerNorm.weight"], before));
}

TEST_F(HfImportTest, LegacyGammaBetaNamesAreRenamedAsTransformersDoes) {
  auto m = make_model();
  export_hf_model(out(), m->config(), m->hf_state_dict(), vocab_path(), true, "f32");
  // Rewrite the file with TF-era LayerNorm names and a bf16 + f16 mix.
  std::vector<std::pair<std::string, torch::Tensor>> legacy;
  for (const auto& [name, t] : load_tensors(out() + "/model.safetensors")) {
    std::string n = name;
    if (n.find("LayerNorm.weight") != std::string::npos) n.replace(n.find("LayerNorm.weight"), 16, "LayerNorm.gamma");
    if (n.find("LayerNorm.bias") != std::string::npos) n.replace(n.find("LayerNorm.bias"), 14, "LayerNorm.beta");
    legacy.emplace_back(n, t);
  }
  save_tensors(out() + "/model.safetensors", legacy, {{"format", "pt"}});
  auto back = load_hf_model(out());
  torch::NoGradGuard no_grad;
  const torch::Tensor ids = sample_ids();
  EXPECT_TRUE(torch::equal(m->logits(ids, torch::ones_like(ids)), back->logits(ids, torch::ones_like(ids))));
}

TEST_F(HfImportTest, LegacyNameNextToItsModernNameIsRejected) {
  auto m = make_model();
  export_hf_model(out(), m->config(), m->hf_state_dict(), vocab_path(), true, "f32");
  auto tensors = load_tensors(out() + "/model.safetensors");
  std::vector<std::pair<std::string, torch::Tensor>> both(tensors.begin(), tensors.end());
  both.emplace_back("bert.embeddings.LayerNorm.gamma", torch::ones({32}));
  save_tensors(out() + "/model.safetensors", both, {{"format", "pt"}});
  try {
    load_hf_model_dir(out());
    FAIL() << "gamma next to weight accepted";
  } catch (const UsageError& e) {
    EXPECT_THAT(e.what(), HasSubstr("tensor 'bert.embeddings.LayerNorm.weight' appears twice"));
    EXPECT_THAT(e.what(), HasSubstr("model.safetensors 'bert.embeddings.LayerNorm.gamma'"));
  }
}

TEST_F(HfImportTest, ShardedCheckpointIsReadThroughItsIndex) {
  auto m = make_model();
  export_hf_model(out(), m->config(), m->hf_state_dict(), vocab_path(), true, "f32");
  const auto tensors = load_tensors(out() + "/model.safetensors");
  fs::remove(out() + "/model.safetensors");
  std::vector<std::pair<std::string, torch::Tensor>> a, b;
  json weight_map = json::object();
  for (const auto& [name, t] : tensors) {
    const bool first = name.rfind("bert.encoder", 0) == 0;
    (first ? a : b).emplace_back(name, t);
    weight_map[name] = first ? "model-00001-of-00002.safetensors" : "model-00002-of-00002.safetensors";
  }
  save_tensors(out() + "/model-00001-of-00002.safetensors", a, {{"format", "pt"}});
  save_tensors(out() + "/model-00002-of-00002.safetensors", b, {{"format", "pt"}});
  std::ofstream(out() + "/model.safetensors.index.json") << json{{"metadata", {}}, {"weight_map", weight_map}}.dump();
  const LoadedHfModel loaded = load_hf_model_dir(out());
  EXPECT_EQ(loaded.files.size(), 2u);
  EXPECT_EQ(loaded.tensors.size(), tensors.size());

  weight_map["cls.predictions.bias"] = "model-00001-of-00002.safetensors";  // index disagrees with shards
  std::ofstream(out() + "/model.safetensors.index.json") << json{{"weight_map", weight_map}}.dump();
  EXPECT_THROW(load_hf_model_dir(out()), UsageError);
}

}  // namespace
}  // namespace mpibert::io
