#pragma once
// The Hugging Face tokenizer files of a BERT WordPiece model (torch-free): tokenizer.json (the
// `tokenizers` library's serialization, as BertTokenizerFast.save_pretrained writes it),
// tokenizer_config.json and special_tokens_map.json, plus reading vocab.txt the way transformers does
// and reading do_lower_case back.
#include <cstdint>
#include <string>
#include <vector>

namespace mpibert::io {

// The five BERT special tokens; every one must be in the vocabulary.
struct HfSpecialTokens {
  std::string pad = "[PAD]", unk = "[UNK]", cls = "[CLS]", sep = "[SEP]", mask = "[MASK]";
};

// vocab.txt as the tokenizers library (and data::WordPieceTokenizer) reads it: one token per line,
// id = line number, trailing whitespace of a line ignored. A repeated token keeps every line's id
// here; tokenizer.json maps it to its last line, as tokenizers does. Throws UsageError naming the
// file when it is missing or empty.
std::vector<std::string> read_hf_vocab(const std::string& vocab_path);

// Serialized files (text as written to disk). `vocab` is in id order. Throw UsageError naming the
// missing special token when one is not in `vocab`.
std::string hf_tokenizer_json_text(const std::vector<std::string>& vocab, bool lowercase,
                                   const HfSpecialTokens& specials = {});
std::string hf_tokenizer_config_text(const std::vector<std::string>& vocab, bool lowercase, int64_t model_max_length,
                                     const HfSpecialTokens& specials = {});
std::string hf_special_tokens_map_text(const HfSpecialTokens& specials = {});

// Writes vocab.txt (a byte copy of vocab_path), tokenizer.json, tokenizer_config.json and
// special_tokens_map.json into the existing directory `dir`, each atomically.
void write_hf_tokenizer_files(const std::string& dir, const std::string& vocab_path, bool lowercase,
                              int64_t model_max_length, const HfSpecialTokens& specials = {});

// Whether a model directory's tokenizer lowercases: tokenizer_config.json's do_lower_case, else
// tokenizer.json's normalizer.lowercase, else transformers' BertTokenizer default (true). `source`
// (optional) receives which of the three decided. Malformed files or a non-boolean value: UsageError.
bool read_hf_do_lower_case(const std::string& model_dir, std::string* source = nullptr);

}  // namespace mpibert::io
