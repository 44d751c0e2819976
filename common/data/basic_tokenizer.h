#pragma once
// The BERT "basic" tokenizer exactly as Hugging Face tokenizers runs it in BertTokenizerFast:
// BertNormalizer{clean_text, handle_chinese_chars, strip_accents = lowercase, lowercase} followed by
// BertPreTokenizer (split on whitespace, isolate each punctuation character). It turns raw UTF-8
// text into normalized words, the input of WordPiece. See docs/data.md for the rules.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mpibert::data {

// Normalized words stored back to back: word i is text[ends[i-1], ends[i]) (ends[-1] = 0).
// Reused between calls so the hot path does not allocate.
struct WordList {
  std::string text;
  std::vector<uint32_t> ends;

  void clear() {
    text.clear();
    ends.clear();
  }
  size_t size() const { return ends.size(); }
  std::string_view operator[](size_t i) const {
    const uint32_t begin = i == 0 ? 0 : ends[i - 1];
    return std::string_view(text).substr(begin, ends[i] - begin);
  }
};

class BasicTokenizer {
 public:
  // lowercase = uncased BERT: lowercase and strip accents (NFD, drop Mn); false leaves case and accents.
  explicit BasicTokenizer(bool lowercase);

  // Appends the words of `text` to `out` (does not clear it). Ill-formed UTF-8 bytes are dropped, as
  // U+FFFD would be (see docs/data.md).
  void split(std::string_view text, WordList& out) const;
  std::vector<std::string> split(std::string_view text) const;

  bool lowercase() const { return lowercase_; }

 private:
  enum AsciiClass : uint8_t { kWord, kSpace, kPunct, kDrop };
  class Run;
  void split_slow_char(char32_t cp, WordList& out, Run& run, size_t& word_begin) const;

  bool lowercase_;
  uint8_t ascii_class_[128];
  char ascii_map_[128];  // the byte a word character becomes (lowercased when uncased)
};

}  // namespace mpibert::data
