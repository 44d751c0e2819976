#pragma once
// Test helper: deterministic text of words made of the letters a-l, and a tokenizer that knows just
// those letters, for tests that need megabytes of corpus without a real one.
#include <cstdint>
#include <string>
#include <vector>

#include "common/data/wordpiece.h"

namespace mpibert::testing {

// `lines` lines of 1-12 words of 2-8 letters, each ending in "."; about one line in six is blank
// (so documents separated by blank lines are a few lines long). The text ends with a newline.
inline std::string letter_text(int lines, uint64_t seed) {
  std::string text;
  uint64_t state = seed;
  auto next = [&](uint64_t n) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (state >> 33) % n;
  };
  for (int line = 0; line < lines; ++line) {
    if (next(6) == 0) {
      text += '\n';
      continue;
    }
    const uint64_t words = 1 + next(12);
    for (uint64_t w = 0; w < words; ++w) {
      const uint64_t letters = 2 + next(7);
      for (uint64_t k = 0; k < letters; ++k) text += static_cast<char>('a' + next(12));
      text += w + 1 < words ? " " : ".\n";
    }
  }
  return text;
}

// The special tokens, ".", and every letter a-l with its "##" form.
inline std::vector<std::string> letter_tokens() {
  std::vector<std::string> tokens = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "."};
  for (char c = 'a'; c <= 'l'; ++c) tokens.insert(tokens.end(), {std::string(1, c), "##" + std::string(1, c)});
  return tokens;
}

inline data::WordPieceTokenizer letter_tokenizer() {
  return data::WordPieceTokenizer::from_tokens(letter_tokens(), true);
}

}  // namespace mpibert::testing
