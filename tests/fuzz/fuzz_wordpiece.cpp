// Fuzz target: the BERT basic tokenizer and WordPiece (common/data/basic_tokenizer.h, wordpiece.h) on
// arbitrary bytes, with a small real vocabulary (tests/fuzz/vocab.txt, trained by `prepare_data
// train-tokenizer` on the Brown corpus and nlp-corpus), cased and uncased, and with a vocabulary made of
// the input's own lines (repeated, empty and odd tokens).
// Properties: every id is inside the vocabulary; no normalized word is empty or holds whitespace; a word
// that is not [UNK] is exactly the concatenation of its pieces (first piece, then "##" pieces).
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/data/wordpiece.h"
#include "fuzz_support.h"

namespace {

using namespace mpibert;
using data::WordPieceTokenizer;

const WordPieceTokenizer& real_vocab(bool lowercase) {
  static const WordPieceTokenizer uncased = WordPieceTokenizer::from_vocab_file(MPIBERT_FUZZ_VOCAB, true);
  static const WordPieceTokenizer cased = WordPieceTokenizer::from_vocab_file(MPIBERT_FUZZ_VOCAB, false);
  return lowercase ? uncased : cased;
}

void check_word(const WordPieceTokenizer& tok, std::string_view word) {
  if (word.empty()) fuzz::property_failed("the basic tokenizer produced an empty word");
  for (char c : word)
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') fuzz::property_failed("a word holds whitespace");
  std::vector<int32_t> ids;
  tok.encode_word(word, ids);
  if (ids.empty()) fuzz::property_failed("a word encoded to no ids");
  if (ids.size() == 1 && ids[0] == tok.special_ids().unk) return;
  std::string joined;
  for (size_t i = 0; i < ids.size(); ++i) {
    const std::string& token = tok.id_to_token(ids[i]);  // throws std::out_of_range on a bad id: a finding
    if (i == 0) {
      joined += token;
    } else {
      if (token.compare(0, 2, "##") != 0) fuzz::property_failed("a following piece is not a ## piece: " + token);
      joined += token.substr(2);
    }
  }
  if (joined != word)
    fuzz::property_failed("pieces '" + joined + "' do not spell the word '" + std::string(word) + "'");
}

void check_encode(const WordPieceTokenizer& tok, std::string_view text) {
  for (int32_t id : tok.encode(text))
    if (id < 0 || static_cast<size_t>(id) >= tok.vocab_size()) fuzz::property_failed("id outside the vocabulary");
  data::WordList words;
  tok.basic_tokenizer().split(text, words);
  for (size_t i = 0; i < words.size(); ++i) check_word(tok, words[i]);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = fuzz::as_text(data, size);
  check_encode(real_vocab(true), text);
  check_encode(real_vocab(false), text);
  std::vector<std::string> tokens = fuzz::lines_of(text);
  tokens.push_back("[UNK]");
  check_encode(WordPieceTokenizer::from_tokens(std::move(tokens), size % 2 == 0), text);
  return 0;
}
