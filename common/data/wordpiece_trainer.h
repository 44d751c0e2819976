#pragma once
// WordPiece vocabulary training with Hugging Face tokenizers' WordPieceTrainer algorithm (a BpeTrainer
// with the "##" continuing-subword prefix): count the words the BERT basic tokenizer produces, keep
// the `limit_alphabet` most frequent characters, split words into characters ("##" on all but the
// first), then repeatedly merge the most frequent adjacent pair (ties: the pair of smaller ids) until
// the vocabulary has `vocab_size` tokens or no pair occurs `min_frequency` times. Unlike tokenizers,
// every step is deterministic (tokenizers walks hash maps in random order, which changes ids and tie
// breaks from run to run); see docs/data.md.
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/data/basic_tokenizer.h"
#include "common/data/progress_hook.h"

namespace mpibert::data {

struct WordPieceTrainerOptions {
  size_t vocab_size = 30522;
  size_t min_frequency = 2;
  size_t limit_alphabet = 1000;
  bool lowercase = true;
  std::vector<std::string> special_tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  // The merges: start(tokens they must add to reach vocab_size), then the tokens added so far, every
  // kMergeProgressTokens and at the end (fewer than the total when min_frequency stops them early).
  ProgressHook progress;
};

// How many tokens the merges add between two reports of WordPieceTrainerOptions::progress.
inline constexpr int64_t kMergeProgressTokens = 64;

// Word frequencies of a text stream, as the trainer needs them. Feed it from several threads by
// giving each its own counter and merging them: the result does not depend on how text was split.
class WordCounter {
 public:
  explicit WordCounter(bool lowercase);
  // Counts the words of one sequence (a line or a document; word boundaries never cross lines).
  void add_text(std::string_view text);
  void add_word(std::string_view word, uint64_t count = 1);
  void merge(const WordCounter& other);
  const std::unordered_map<std::string, uint64_t>& counts() const { return counts_; }
  bool lowercase() const { return basic_.lowercase(); }

 private:
  BasicTokenizer basic_;
  WordList scratch_;
  std::string key_;
  std::unordered_map<std::string, uint64_t> counts_;
};

// Returns the vocabulary in id order: special tokens first, then the alphabet (sorted by code point),
// then "##" forms and merges in the order they were created. The result has at most
// max(vocab_size, specials + alphabet + their "##" forms) tokens.
std::vector<std::string> train_wordpiece(const WordCounter& words, const WordPieceTrainerOptions& options);
// Counts the words of each string (documents or lines) and trains.
std::vector<std::string> train_wordpiece(const std::vector<std::string>& documents_or_lines,
                                         const WordPieceTrainerOptions& options);
// Same; lets train_wordpiece({"some text", ...}, options) pick this rather than the WordCounter overload.
std::vector<std::string> train_wordpiece(std::initializer_list<std::string> documents_or_lines,
                                         const WordPieceTrainerOptions& options);

// vocab.txt: one token per line in id order. Atomic; throws std::runtime_error naming the file, or
// UsageError for a token holding a line break (it could not be read back).
void write_vocab_file(const std::string& path, const std::vector<std::string>& tokens);

// tokenizer_config.json that Hugging Face BertTokenizer(Fast).from_pretrained accepts.
void write_tokenizer_config(const std::string& path, bool lowercase, int64_t model_max_length);

}  // namespace mpibert::data
