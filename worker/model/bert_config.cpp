#include "worker/model/bert_config.h"

#include <sys/stat.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "common/config/run_config.h"
#include "common/error.h"

namespace mpibert::model {
namespace {

struct PresetEntry {
  const char* name;
  int64_t layers, hidden, heads, ffn;
};

// The Google BERT miniatures (L-x_H-y) and the two original sizes.
constexpr PresetEntry kPresets[] = {
    {"tiny", 2, 128, 2, 512},    {"mini", 4, 256, 4, 1024},   {"small", 4, 512, 8, 2048},
    {"medium", 8, 512, 8, 2048}, {"base", 12, 768, 12, 3072}, {"large", 24, 1024, 16, 4096},
};

struct Alias {
  const char* alias;
  const char* name;
};
constexpr Alias kAliases[] = {
    {"bert-tiny", "tiny"}, {"bert-mini", "mini"},   {"bert-small", "small"},       {"bert-medium", "medium"},
    {"bert-base", "base"}, {"bert-large", "large"}, {"bert-base-uncased", "base"}, {"bert-large-uncased", "large"},
};

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + v[i];
  return out;
}

bool is_directory(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
bool is_file(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool supported_act(const std::string& a) {
  return a == "gelu" || a == "gelu_new" || a == "gelu_pytorch_tanh" || a == "relu";
}

}  // namespace

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const auto& p : kPresets) names.emplace_back(p.name);
  for (const auto& a : kAliases) names.emplace_back(a.alias);
  return names;
}

BertConfig preset(const std::string& name) {
  std::string canonical = name;
  for (const auto& a : kAliases)
    if (name == a.alias) canonical = a.name;
  for (const auto& p : kPresets) {
    if (canonical != p.name) continue;
    BertConfig c;
    c.num_hidden_layers = p.layers;
    c.hidden_size = p.hidden;
    c.num_attention_heads = p.heads;
    c.intermediate_size = p.ffn;
    return c;
  }
  throw UsageError("model.preset: unknown model preset '" + name + "'; valid presets: " + join(preset_names()) +
                   " (or a path to a Hugging Face config.json)");
}

void validate(const BertConfig& c, const std::string& source) {
  auto bad = [&](const std::string& what) { throw UsageError(source + ": " + what); };
  auto positive = [&](const char* key, int64_t v) {
    if (v <= 0) bad(std::string(key) + " must be > 0, got " + std::to_string(v));
  };
  positive("vocab_size", c.vocab_size);
  positive("hidden_size", c.hidden_size);
  positive("num_hidden_layers", c.num_hidden_layers);
  positive("num_attention_heads", c.num_attention_heads);
  positive("intermediate_size", c.intermediate_size);
  positive("max_position_embeddings", c.max_position_embeddings);
  positive("type_vocab_size", c.type_vocab_size);
  if (c.hidden_size % c.num_attention_heads != 0)
    bad("hidden_size " + std::to_string(c.hidden_size) + " is not divisible by num_attention_heads " +
        std::to_string(c.num_attention_heads));
  if (c.pad_token_id < 0 || c.pad_token_id >= c.vocab_size)
    bad("pad_token_id " + std::to_string(c.pad_token_id) + " is outside the vocabulary [0, " +
        std::to_string(c.vocab_size) + ")");
  auto prob = [&](const char* key, double v) {
    if (!(v >= 0.0 && v < 1.0)) bad(std::string(key) + " must be in [0, 1), got " + std::to_string(v));
  };
  prob("hidden_dropout_prob", c.hidden_dropout_prob);
  prob("attention_probs_dropout_prob", c.attention_probs_dropout_prob);
  if (!(c.layer_norm_eps > 0)) bad("layer_norm_eps must be > 0");
  if (!(c.initializer_range > 0)) bad("initializer_range must be > 0");
  if (c.num_labels < 1) bad("num_labels must be >= 1");
  if (c.classifier_dropout >= 1) bad("classifier_dropout must be < 1");
  if (!supported_act(c.hidden_act))
    bad("hidden_act '" + c.hidden_act + "' is not supported; valid: gelu, gelu_new, gelu_pytorch_tanh, relu");
}

std::string resolve_problem_type(const BertConfig& cfg) {
  if (!cfg.problem_type.empty()) return cfg.problem_type;
  return cfg.num_labels == 1 ? "regression" : "single_label_classification";
}

std::string label_name(const BertConfig& c, int64_t id) {
  if (id >= 0 && id < static_cast<int64_t>(c.id2label.size())) return c.id2label[static_cast<size_t>(id)];
  return "LABEL_" + std::to_string(id);
}

nlohmann::json to_hf_config_json(const BertConfig& c, BertHead head) {
  nlohmann::json j;
  j["architectures"] = {head == BertHead::MaskedLM ? "BertForMaskedLM" : "BertForSequenceClassification"};
  j["model_type"] = "bert";
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.hidden_size;
  j["num_hidden_layers"] = c.num_hidden_layers;
  j["num_attention_heads"] = c.num_attention_heads;
  j["intermediate_size"] = c.intermediate_size;
  j["hidden_act"] = c.hidden_act;
  j["hidden_dropout_prob"] = c.hidden_dropout_prob;
  j["attention_probs_dropout_prob"] = c.attention_probs_dropout_prob;
  j["max_position_embeddings"] = c.max_position_embeddings;
  j["type_vocab_size"] = c.type_vocab_size;
  j["initializer_range"] = c.initializer_range;
  j["layer_norm_eps"] = c.layer_norm_eps;
  j["pad_token_id"] = c.pad_token_id;
  j["position_embedding_type"] = "absolute";
  j["use_cache"] = true;
  j["classifier_dropout"] = nullptr;
  if (c.classifier_dropout >= 0) j["classifier_dropout"] = c.classifier_dropout;
  j["torch_dtype"] = "float32";
  if (head == BertHead::SequenceClassification) {
    nlohmann::json id2label = nlohmann::json::object(), label2id = nlohmann::json::object();
    for (int64_t i = 0; i < c.num_labels; ++i) {
      id2label[std::to_string(i)] = label_name(c, i);
      label2id[label_name(c, i)] = i;
    }
    j["id2label"] = id2label;
    j["label2id"] = label2id;
    if (!c.problem_type.empty()) j["problem_type"] = c.problem_type;
  }
  return j;
}

namespace {

// id2label {"0": "a", "1": "b"} (or num_labels alone) -> num_labels and names in id order.
void read_labels(const nlohmann::json& j, const std::string& source, BertConfig& c) {
  if (j.contains("id2label") && j.at("id2label").is_object() && !j.at("id2label").empty()) {
    const auto& m = j.at("id2label");
    c.id2label.assign(m.size(), "");
    for (const auto& item : m.items()) {
      size_t used = 0;
      long long id = -1;
      try {
        id = std::stoll(item.key(), &used);
      } catch (const std::exception&) {
      }
      if (used != item.key().size() || id < 0 || id >= static_cast<long long>(m.size()) || !item.value().is_string())
        throw UsageError(source + ": id2label must map the ids 0.." + std::to_string(m.size() - 1) +
                         " (as strings) to label names; got " + item.key() + ": " + item.value().dump());
      c.id2label[static_cast<size_t>(id)] = item.value().get<std::string>();
    }
    c.num_labels = static_cast<int64_t>(m.size());
    bool defaults = true;  // LABEL_0, LABEL_1, ...: transformers' names when none were given
    for (size_t i = 0; i < c.id2label.size(); ++i) defaults = defaults && c.id2label[i] == "LABEL_" + std::to_string(i);
    if (defaults) c.id2label.clear();
  } else if (j.contains("num_labels") && j.at("num_labels").is_number_integer()) {
    c.num_labels = j.at("num_labels").get<int64_t>();
  }
  if (j.contains("problem_type") && j.at("problem_type").is_string()) {
    c.problem_type = j.at("problem_type").get<std::string>();
    if (c.problem_type != "regression" && c.problem_type != "single_label_classification" &&
        c.problem_type != "multi_label_classification")
      throw UsageError(source + ": problem_type '" + c.problem_type +
                       "' is not one of regression, single_label_classification, multi_label_classification");
  }
  if (j.contains("classifier_dropout") && j.at("classifier_dropout").is_number())
    c.classifier_dropout = j.at("classifier_dropout").get<double>();
}

}  // namespace

BertConfig from_hf_config_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw UsageError(source + ": a Hugging Face config must be a JSON object");
  BertConfig c;
  auto get_int = [&](const char* key, int64_t& out) {
    if (!j.contains(key)) return;
    const auto& v = j.at(key);
    if (!v.is_number_integer()) throw UsageError(source + ": '" + key + "' must be an integer, got " + v.dump());
    out = v.get<int64_t>();
  };
  auto get_double = [&](const char* key, double& out) {
    if (!j.contains(key)) return;
    const auto& v = j.at(key);
    if (!v.is_number()) throw UsageError(source + ": '" + key + "' must be a number, got " + v.dump());
    out = v.get<double>();
  };
  if (j.contains("model_type") && j.at("model_type") != "bert")
    throw UsageError(source + ": model_type " + j.at("model_type").dump() + " is not supported (only \"bert\")");
  if (j.contains("position_embedding_type") && j.at("position_embedding_type") != "absolute")
    throw UsageError(source + ": position_embedding_type " + j.at("position_embedding_type").dump() +
                     " is not supported (only \"absolute\")");
  get_int("vocab_size", c.vocab_size);
  get_int("hidden_size", c.hidden_size);
  get_int("num_hidden_layers", c.num_hidden_layers);
  get_int("num_attention_heads", c.num_attention_heads);
  get_int("intermediate_size", c.intermediate_size);
  get_int("max_position_embeddings", c.max_position_embeddings);
  get_int("type_vocab_size", c.type_vocab_size);
  if (j.contains("pad_token_id") && !j.at("pad_token_id").is_null()) get_int("pad_token_id", c.pad_token_id);
  get_double("hidden_dropout_prob", c.hidden_dropout_prob);
  get_double("attention_probs_dropout_prob", c.attention_probs_dropout_prob);
  get_double("layer_norm_eps", c.layer_norm_eps);
  get_double("initializer_range", c.initializer_range);
  if (j.contains("hidden_act")) {
    if (!j.at("hidden_act").is_string())
      throw UsageError(source + ": 'hidden_act' must be a string, got " + j.at("hidden_act").dump());
    c.hidden_act = j.at("hidden_act").get<std::string>();
  }
  read_labels(j, source, c);
  validate(c, source);
  return c;
}

BertConfig load_hf_config_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw UsageError(path + ": cannot open Hugging Face config.json");
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::parse_error& e) {
    throw UsageError(path + ": invalid JSON: " + e.what());
  }
  return from_hf_config_json(j, path);
}

BertConfig resolve_model_config(const mpibert::ModelConfig& m, int64_t vocab_size, int64_t seq_len) {
  BertConfig c;
  std::string source = "model.preset '" + m.preset + "'";
  if (is_directory(m.preset) && is_file(m.preset + "/config.json")) {
    c = load_hf_config_file(m.preset + "/config.json");
  } else if (is_file(m.preset)) {
    c = load_hf_config_file(m.preset);
  } else {
    c = preset(m.preset);
  }
  if (m.hidden_size > 0) c.hidden_size = m.hidden_size;
  if (m.num_hidden_layers > 0) c.num_hidden_layers = m.num_hidden_layers;
  if (m.num_attention_heads > 0) c.num_attention_heads = m.num_attention_heads;
  if (m.intermediate_size > 0) c.intermediate_size = m.intermediate_size;
  if (m.max_position_embeddings > 0) c.max_position_embeddings = m.max_position_embeddings;
  if (m.type_vocab_size > 0) c.type_vocab_size = m.type_vocab_size;
  if (m.hidden_dropout_prob >= 0) c.hidden_dropout_prob = m.hidden_dropout_prob;
  if (m.attention_probs_dropout_prob >= 0) c.attention_probs_dropout_prob = m.attention_probs_dropout_prob;
  if (m.layer_norm_eps > 0) c.layer_norm_eps = m.layer_norm_eps;
  if (m.initializer_range > 0) c.initializer_range = m.initializer_range;
  // The data's vocabulary decides the embedding size (a preset's 30522 is only a default).
  if (vocab_size > 0) c.vocab_size = vocab_size;
  validate(c, source + " with the model.* overrides");
  if (seq_len > c.max_position_embeddings)
    throw UsageError("data.seq_len " + std::to_string(seq_len) + " exceeds the model's max_position_embeddings " +
                     std::to_string(c.max_position_embeddings) + " (" + source +
                     "); raise model.max_position_embeddings or shorten the sequences");
  return c;
}

double flops_per_token(const BertConfig& c, int64_t seq_len, double mask_fraction, bool sparse_head) {
  const double H = c.hidden_size, I = c.intermediate_size, V = c.vocab_size, L = seq_len;
  const double per_layer = 2.0 * (4.0 * H * H + 2.0 * H * I + 2.0 * L * H);
  const double head = 2.0 * (H * H + H * V) * (sparse_head ? mask_fraction : 1.0);
  return 3.0 * (c.num_hidden_layers * per_layer + head);
}

int64_t parameter_count(const BertConfig& c) {
  const int64_t H = c.hidden_size, I = c.intermediate_size, V = c.vocab_size;
  const int64_t embeddings = (V + c.max_position_embeddings + c.type_vocab_size) * H + 2 * H;
  const int64_t layer = 4 * (H * H + H) + 2 * H + (H * I + I) + (I * H + H) + 2 * H;
  const int64_t head = (H * H + H) + 2 * H + V;  // transform + LayerNorm + decoder bias (weight tied)
  return embeddings + c.num_hidden_layers * layer + head;
}

}  // namespace mpibert::model
