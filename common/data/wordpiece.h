#pragma once
// WordPiece tokenizer that gives the same ids as Hugging Face's BertTokenizerFast for a BERT
// vocab.txt: special tokens found in the raw text, then the basic tokenizer (basic_tokenizer.h), then
// greedy longest-match-first WordPiece with "##" continuations, [UNK] for a word of more than 100
// characters or with any piece missing. Thread-safe: encode() is const and keeps no shared state.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/data/basic_tokenizer.h"

namespace mpibert::data {

struct SpecialIds {
  int32_t pad = -1, unk = -1, cls = -1, sep = -1, mask = -1;
};

class WordPieceTokenizer {
 public:
  static constexpr size_t kMaxInputCharsPerWord = 100;

  // Loads any BERT vocab.txt (one token per line, id = line number; trailing whitespace of a line is
  // ignored and a repeated token maps to its last line, as tokenizers reads it). Throws UsageError
  // naming the file if it is missing, unreadable, empty or lacks [UNK].
  static WordPieceTokenizer from_vocab_file(const std::string& path, bool lowercase);
  // Same from tokens in id order; throws UsageError if empty or lacking [UNK].
  static WordPieceTokenizer from_tokens(std::vector<std::string> tokens, bool lowercase);

  // Appends the ids of `text` (no [CLS]/[SEP]). The special tokens [PAD] [UNK] [CLS] [SEP] [MASK] that
  // the vocab holds are matched in the raw text first, case-sensitively, as BertTokenizerFast does.
  void encode(std::string_view text, std::vector<int32_t>& out) const;
  // Same with caller-owned scratch space (no allocation once it has grown).
  void encode(std::string_view text, std::vector<int32_t>& out, WordList& scratch) const;
  std::vector<int32_t> encode(std::string_view text) const;
  std::vector<std::string> tokenize(std::string_view text) const;

  int32_t token_to_id(std::string_view token) const;  // -1 when absent
  const std::string& id_to_token(int32_t id) const;   // throws std::out_of_range
  size_t vocab_size() const { return tokens_.size(); }
  SpecialIds special_ids() const { return special_; }
  bool lowercase() const { return basic_.lowercase(); }
  const std::vector<std::string>& tokens() const { return tokens_; }
  // True for "##"-continuation pieces (whole-word masking groups a word's pieces by this).
  bool is_continuation(int32_t id) const;
  const BasicTokenizer& basic_tokenizer() const { return basic_; }

  // WordPiece of one normalized word (no special-token matching, no normalization).
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

 private:
  // Open-addressing hash table from byte strings to ids. Keys live in the tokenizer's arena (all
  // tokens back to back) and are found through the token offsets, so copies of the tokenizer stay
  // valid. A slot is 16 bytes and holds the key's first 8 bytes: a lookup of a word of up to 8 bytes
  // touches one cache line (the table of a 30k vocab is 1 MiB; its slot loads dominate encode time).
  class Table {
   public:
    // Adds every token (continuations = false) or every "##x" token keyed by "x" (true); a later
    // duplicate replaces an earlier one, as in tokenizers' vocab HashMap.
    void build(const std::string& arena, const std::vector<uint32_t>& offsets, bool continuations);
    int32_t find(const std::string& arena, const std::vector<uint32_t>& offsets, const char* p, size_t n) const;
    size_t max_key_bytes() const { return max_key_bytes_; }

   private:
    struct Slot {
      uint64_t head = 0;  // first min(size, 8) key bytes, zero-padded
      uint32_t meta = 0;  // hash tag (24 bits) << 8 | min(size, 255)
      int32_t id = -1;
    };
    std::vector<Slot> slots_;
    uint64_t mask_ = 0;
    size_t max_key_bytes_ = 0;
    uint32_t skip_ = 0;  // bytes of the token before its key: 2 for "##" continuations
  };

  WordPieceTokenizer(std::vector<std::string> tokens, bool lowercase, const std::string& source);
  void encode_segment(std::string_view text, std::vector<int32_t>& out, WordList& scratch) const;

  std::vector<std::string> tokens_;
  std::string arena_;              // tokens back to back
  std::vector<uint32_t> offsets_;  // token i is arena_[offsets_[i], offsets_[i+1])
  Table whole_;                    // every token, for the first piece of a word and token_to_id
  Table suffix_;                   // "##x" tokens keyed by "x", for the following pieces
  std::vector<uint8_t> continuation_;
  SpecialIds special_;
  std::vector<std::pair<std::string, int32_t>> special_tokens_;  // matched in raw text, longest first
  BasicTokenizer basic_;
};

}  // namespace mpibert::data
