#include "common/io/hf_tokenizer_files.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "common/error.h"
#include "common/io/atomic_file.h"
#include "common/io/json_file.h"

namespace mpibert::io {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ojson = nlohmann::ordered_json;

std::string read_all(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw UsageError(what + " " + path + ": cannot read it");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct SpecialIds {
  int64_t pad, unk, cls, sep, mask;
};

SpecialIds special_ids(const std::vector<std::string>& vocab, const HfSpecialTokens& s) {
  std::unordered_map<std::string, int64_t> ids;
  for (std::size_t i = 0; i < vocab.size(); ++i) ids[vocab[i]] = static_cast<int64_t>(i);  // last line wins
  auto id_of = [&](const std::string& token, const char* role) {
    auto it = ids.find(token);
    if (it == ids.end()) {
      throw UsageError(std::string("the vocabulary has no ") + role + " token '" + token +
                       "' (a BERT vocabulary needs [PAD], [UNK], [CLS], [SEP] and [MASK])");
    }
    return it->second;
  };
  return {id_of(s.pad, "pad"), id_of(s.unk, "unk"), id_of(s.cls, "cls"), id_of(s.sep, "sep"), id_of(s.mask, "mask")};
}

// The specials as (id, content), in id order, as the tokenizers library lists added_tokens.
std::vector<std::pair<int64_t, std::string>> specials_by_id(const std::vector<std::string>& vocab,
                                                            const HfSpecialTokens& s) {
  const SpecialIds ids = special_ids(vocab, s);
  std::vector<std::pair<int64_t, std::string>> out = {
      {ids.pad, s.pad}, {ids.unk, s.unk}, {ids.cls, s.cls}, {ids.sep, s.sep}, {ids.mask, s.mask}};
  std::sort(out.begin(), out.end());
  return out;
}

ojson template_piece(const char* kind, const std::string& id, int type_id) {
  ojson inner;
  inner["id"] = id;
  inner["type_id"] = type_id;
  ojson piece;
  piece[kind] = inner;
  return piece;
}

// tokenizer.json's "added_tokens": the specials in id order.
ojson added_tokens_json(const std::vector<std::string>& vocab, const HfSpecialTokens& specials) {
  ojson added = ojson::array();
  for (const auto& [id, content] : specials_by_id(vocab, specials)) {
    ojson t;
    t["id"] = id;
    t["content"] = content;
    t["single_word"] = false;
    t["lstrip"] = false;
    t["rstrip"] = false;
    t["normalized"] = false;
    t["special"] = true;
    added.push_back(t);
  }
  return added;
}

ojson normalizer_json(bool lowercase) {
  ojson normalizer;
  normalizer["type"] = "BertNormalizer";
  normalizer["clean_text"] = true;
  normalizer["handle_chinese_chars"] = true;
  normalizer["strip_accents"] = nullptr;
  normalizer["lowercase"] = lowercase;
  return normalizer;
}

// [CLS] A [SEP] for one sequence, [CLS] A [SEP] B [SEP] for a pair.
ojson post_processor_json(const HfSpecialTokens& specials, const SpecialIds& ids) {
  ojson post;
  post["type"] = "TemplateProcessing";
  post["single"] = ojson::array({template_piece("SpecialToken", specials.cls, 0), template_piece("Sequence", "A", 0),
                                 template_piece("SpecialToken", specials.sep, 0)});
  post["pair"] = ojson::array({template_piece("SpecialToken", specials.cls, 0), template_piece("Sequence", "A", 0),
                               template_piece("SpecialToken", specials.sep, 0), template_piece("Sequence", "B", 1),
                               template_piece("SpecialToken", specials.sep, 1)});
  ojson special_tokens;
  for (const auto& [token, id] : {std::pair<std::string, int64_t>{specials.cls, ids.cls}, {specials.sep, ids.sep}}) {
    ojson entry;
    entry["id"] = token;
    entry["ids"] = ojson::array({id});
    entry["tokens"] = ojson::array({token});
    special_tokens[token] = entry;
  }
  post["special_tokens"] = special_tokens;
  return post;
}

ojson decoder_json() {
  ojson decoder;
  decoder["type"] = "WordPiece";
  decoder["prefix"] = "##";
  decoder["cleanup"] = true;
  return decoder;
}

const std::string kVocabMarker = "@VOCAB@";

// The WordPiece model with kVocabMarker where the vocabulary goes (see vocab_json_text).
ojson model_json(const HfSpecialTokens& specials) {
  ojson model;
  model["type"] = "WordPiece";
  model["unk_token"] = specials.unk;
  model["continuing_subword_prefix"] = "##";
  model["max_input_chars_per_word"] = 100;
  model["vocab"] = kVocabMarker;  // spliced later: ordered_json inserts in O(n) per key, vocab has 30k+
  return model;
}

// The "vocab" object as root.dump(2) would indent it. A repeated token maps to its last line (as
// tokenizers' vocab HashMap does): earlier copies are left out.
std::string vocab_json_text(const std::vector<std::string>& vocab) {
  std::unordered_map<std::string, std::size_t> last_id;
  for (std::size_t i = 0; i < vocab.size(); ++i) last_id[vocab[i]] = i;
  std::string vocab_text = "{\n";
  try {
    bool first = true;
    for (std::size_t i = 0; i < vocab.size(); ++i) {
      if (last_id[vocab[i]] != i) continue;
      vocab_text += std::string(first ? "" : ",\n") + "      " + json(vocab[i]).dump() + ": " + std::to_string(i);
      first = false;
    }
    vocab_text += "\n";
  } catch (const json::exception& e) {
    throw UsageError("tokenizer.json: a vocabulary token is not valid UTF-8: " + std::string(e.what()));
  }
  vocab_text += "    }";
  return vocab_text;
}

}  // namespace

std::vector<std::string> read_hf_vocab(const std::string& vocab_path) {
  const std::string text = read_all(vocab_path, "vocabulary file");
  std::vector<std::string> vocab;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    std::size_t end = nl;
    while (end > start && std::strchr(" \t\r\v\f", text[end - 1]) != nullptr) --end;
    vocab.push_back(text.substr(start, end - start));
    start = nl + 1;
  }
  if (vocab.empty()) throw UsageError("vocabulary file " + vocab_path + ": it is empty");
  return vocab;
}

std::string hf_tokenizer_json_text(const std::vector<std::string>& vocab, bool lowercase,
                                   const HfSpecialTokens& specials) {
  const SpecialIds ids = special_ids(vocab, specials);
  ojson root;
  root["version"] = "1.0";
  root["truncation"] = nullptr;
  root["padding"] = nullptr;
  root["added_tokens"] = added_tokens_json(vocab, specials);
  root["normalizer"] = normalizer_json(lowercase);
  root["pre_tokenizer"] = ojson{{"type", "BertPreTokenizer"}};
  root["post_processor"] = post_processor_json(specials, ids);
  root["decoder"] = decoder_json();
  root["model"] = model_json(specials);

  std::string text;
  try {
    text = root.dump(2);
  } catch (const json::exception& e) {
    throw UsageError(std::string("tokenizer.json: a special token is not valid UTF-8: ") + e.what());
  }
  const std::string marker = "\"" + kVocabMarker + "\"";
  text.replace(text.find(marker), marker.size(), vocab_json_text(vocab));
  return text;
}

std::string hf_tokenizer_config_text(const std::vector<std::string>& vocab, bool lowercase, int64_t model_max_length,
                                     const HfSpecialTokens& specials) {
  // transformers writes this file with json.dumps(sort_keys=True, indent=2); nlohmann::json sorts too.
  json added_decoder = json::object();
  for (const auto& [id, content] : specials_by_id(vocab, specials)) {
    added_decoder[std::to_string(id)] = {{"content", content}, {"lstrip", false},      {"normalized", false},
                                         {"rstrip", false},    {"single_word", false}, {"special", true}};
  }
  json config = {{"added_tokens_decoder", added_decoder},
                 {"clean_up_tokenization_spaces", true},
                 {"cls_token", specials.cls},
                 {"do_basic_tokenize", true},
                 {"do_lower_case", lowercase},
                 {"mask_token", specials.mask},
                 {"model_max_length", model_max_length},
                 {"never_split", nullptr},
                 {"pad_token", specials.pad},
                 {"sep_token", specials.sep},
                 {"strip_accents", nullptr},
                 {"tokenize_chinese_chars", true},
                 {"tokenizer_class", "BertTokenizer"},
                 {"unk_token", specials.unk}};
  return config.dump(2) + "\n";
}

std::string hf_special_tokens_map_text(const HfSpecialTokens& s) {
  json map = {
      {"cls_token", s.cls}, {"mask_token", s.mask}, {"pad_token", s.pad}, {"sep_token", s.sep}, {"unk_token", s.unk}};
  return map.dump(2) + "\n";
}

void write_hf_tokenizer_files(const std::string& dir, const std::string& vocab_path, bool lowercase,
                              int64_t model_max_length, const HfSpecialTokens& specials) {
  if (!fs::is_directory(dir)) throw UsageError("tokenizer output directory " + dir + " does not exist");
  const std::vector<std::string> vocab = read_hf_vocab(vocab_path);
  std::string tokenizer_json, config_json;
  try {
    tokenizer_json = hf_tokenizer_json_text(vocab, lowercase, specials);
    config_json = hf_tokenizer_config_text(vocab, lowercase, model_max_length, specials);
  } catch (const UsageError& e) {
    throw UsageError("vocabulary file " + vocab_path + ": " + e.what());
  }
  const fs::path d(dir);
  write_file_atomic((d / "vocab.txt").string(), read_all(vocab_path, "vocabulary file"));
  write_file_atomic((d / "tokenizer.json").string(), tokenizer_json);
  write_file_atomic((d / "tokenizer_config.json").string(), config_json);
  write_file_atomic((d / "special_tokens_map.json").string(), hf_special_tokens_map_text(specials));
}

bool read_hf_do_lower_case(const std::string& model_dir, std::string* source) {
  const fs::path d(model_dir);
  const fs::path config_path = d / "tokenizer_config.json";
  if (fs::exists(config_path)) {
    const json config = read_json_file(config_path.string());
    if (config.is_object() && config.contains("do_lower_case")) {
      const json& v = config.at("do_lower_case");
      if (!v.is_boolean()) {
        throw UsageError(config_path.string() + ": do_lower_case must be true or false, found " + v.dump());
      }
      if (source) *source = config_path.string() + " do_lower_case";
      return v.get<bool>();
    }
  }
  const fs::path tokenizer_path = d / "tokenizer.json";
  if (fs::exists(tokenizer_path)) {
    const json tok = read_json_file(tokenizer_path.string());
    if (tok.is_object() && tok.contains("normalizer") && tok["normalizer"].is_object() &&
        tok["normalizer"].contains("lowercase")) {
      const json& v = tok["normalizer"]["lowercase"];
      if (!v.is_boolean()) {
        throw UsageError(tokenizer_path.string() + ": normalizer.lowercase must be true or false, found " + v.dump());
      }
      if (source) *source = tokenizer_path.string() + " normalizer.lowercase";
      return v.get<bool>();
    }
  }
  if (source) *source = "BertTokenizer's default (no do_lower_case in " + model_dir + ")";
  return true;
}

}  // namespace mpibert::io
