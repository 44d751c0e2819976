// WordPiece vocabulary training: the tokenizers WordPieceTrainer algorithm on small corpora whose
// result is derived by hand, determinism, size and frequency limits, and the files written.
#include "common/data/wordpiece_trainer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/data/wordpiece.h"
#include "common/error.h"
#include "tests/common/unique_temp_dir.h"

namespace mpibert::data {
namespace {

using Tokens = std::vector<std::string>;
const Tokens kSpecials = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};

Tokens with_specials(const Tokens& rest) {
  Tokens all = kSpecials;
  all.insert(all.end(), rest.begin(), rest.end());
  return all;
}

WordPieceTrainerOptions options(size_t vocab_size, size_t min_frequency, size_t limit_alphabet = 1000) {
  WordPieceTrainerOptions o;
  o.vocab_size = vocab_size;
  o.min_frequency = min_frequency;
  o.limit_alphabet = limit_alphabet;
  return o;
}

TEST(WordPieceTrainer, MergesTheMostFrequentPairAndStopsBelowMinFrequency) {
  // Words: ab ×3, ac ×1. Ids: specials 0-4, alphabet a=5 b=6 c=7; words in byte order give
  // ab -> [a, ##b=8], ac -> [a, ##c=9]. Pairs: (a,##b)=3, (a,##c)=1.
  // min_frequency 2: merge (a,##b) -> "ab" (the "##" of the right part is dropped); (a,##c) has 1 < 2.
  EXPECT_EQ(train_wordpiece({"ab ab ab ac"}, options(100, 2)), with_specials({"a", "b", "c", "##b", "##c", "ab"}));
  // min_frequency 1: "ac" as well.
  EXPECT_EQ(train_wordpiece({"ab ab ab ac"}, options(100, 1)),
            with_specials({"a", "b", "c", "##b", "##c", "ab", "ac"}));
}

TEST(WordPieceTrainer, VocabSizeStopsTheMerges) {
  // The same corpus: 10 tokens exist before any merge, so vocab_size 10 allows none and 11 one.
  EXPECT_EQ(train_wordpiece({"ab ab ab ac"}, options(10, 1)), with_specials({"a", "b", "c", "##b", "##c"}));
  EXPECT_EQ(train_wordpiece({"ab ab ab ac"}, options(11, 1)), with_specials({"a", "b", "c", "##b", "##c", "ab"}));
}

TEST(WordPieceTrainer, TiesGoToTheSmallerPairAndContinuationsMergeWithPrefix) {
  // Words xbc ×2, ybc ×2. Alphabet b=5 c=6 x=7 y=8; ##b=9 ##c=10. Pairs (x,##b)=2 (##b,##c)=4 (y,##b)=2.
  // 1. (##b,##c)=4 -> "##bc" (11): "##b" + "c". Now (x,##bc)=2 and (y,##bc)=2, (x,##b)=(y,##b)=0.
  // 2. tie at 2: (7,11) < (8,11) -> "xbc" (12), then "ybc" (13).
  EXPECT_EQ(train_wordpiece({"xbc ybc", "xbc ybc"}, options(100, 2)),
            with_specials({"b", "c", "x", "y", "##b", "##c", "##bc", "xbc", "ybc"}));
  // Words abc ×2: pairs (a=5,##b=8)=2 and (##b,##c=9)=2 tie -> (5,8) first: "ab"; then (ab,##c) -> "abc";
  // (##b,##c) fell to 0 and ends the loop.
  EXPECT_EQ(train_wordpiece({"abc abc"}, options(100, 1)), with_specials({"a", "b", "c", "##b", "##c", "ab", "abc"}));
}

TEST(WordPieceTrainer, LimitAlphabetKeepsTheMostFrequentCharacters) {
  // "aaa b" with limit 1: a (3) stays, b (1) goes, and so does every b in words.
  // aaa -> [a, ##a, ##a]: (a,##a)=1 and (##a,##a)=1 tie -> "aa", then (aa,##a) -> "aaa".
  EXPECT_EQ(train_wordpiece({"aaa b"}, options(100, 1, 1)), with_specials({"a", "##a", "aa", "aaa"}));
}

TEST(WordPieceTrainer, UsesTheBasicTokenizerForWords) {
  // Uncased: "Café, CAFÉ!" -> cafe , cafe ! : punctuation is its own word, accents are stripped.
  // Alphabet ! , a c e f = 5..10; words "!" "," "cafe" -> c ##a(11) ##f(12) ##e(13).
  // Pairs (c,##a) (##a,##f) (##f,##e) all 2: (8,11) -> "ca"(14), leaving (ca,##f)=(14,12);
  // then (12,13) < (14,12) -> "##fe"(15); then (ca,##fe) -> "cafe"(16).
  const Tokens vocab = train_wordpiece({"Caf\u00e9, CAF\u00c9!"}, options(100, 2));
  EXPECT_EQ(vocab, with_specials({"!", ",", "a", "c", "e", "f", "##a", "##f", "##e", "ca", "##fe", "cafe"}));
  // Cased keeps É and é as different characters.
  WordPieceTrainerOptions cased = options(100, 2);
  cased.lowercase = false;
  const Tokens cased_vocab = train_wordpiece({"Caf\u00e9, CAF\u00c9!"}, cased);
  EXPECT_NE(std::find(cased_vocab.begin(), cased_vocab.end(), "\u00c9"), cased_vocab.end());
  EXPECT_NE(std::find(cased_vocab.begin(), cased_vocab.end(), "\u00e9"), cased_vocab.end());
}

// A deterministic pseudo-text: 4000 words drawn from a Zipf-like list by a fixed LCG.
std::vector<std::string> pseudo_text() {
  const Tokens stems = {"the",    "token", "izer", "train", "ing",  "word", "piece", "bert", "model", "data",
                        "corpus", "re",    "un",   "able",  "ness", "pre",  "fix",   "s",    "ed",    "ly"};
  std::vector<std::string> lines;
  uint64_t state = 42;
  for (int l = 0; l < 400; ++l) {
    std::string line;
    for (int w = 0; w < 10; ++w) {
      std::string word;
      const int parts = 1 + static_cast<int>((state >> 40) % 3);
      for (int p = 0; p < parts; ++p) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        const size_t k = (state >> 33) % stems.size();
        word += stems[(k * k) % stems.size()];
      }
      line += word + (w % 4 == 3 ? ". " : " ");
    }
    lines.push_back(line);
  }
  return lines;
}

TEST(WordPieceTrainer, IsDeterministicWithSpecialsFirstAndTheRequestedSize) {
  const auto text = pseudo_text();
  const Tokens a = train_wordpiece(text, options(120, 2));
  const Tokens b = train_wordpiece(text, options(120, 2));
  EXPECT_EQ(a, b);
  ASSERT_EQ(a.size(), 120u);
  EXPECT_EQ(Tokens(a.begin(), a.begin() + 5), kSpecials);
  // No duplicates.
  EXPECT_EQ(std::set<std::string>(a.begin(), a.end()).size(), a.size());
  // Counting in pieces and merging the counters gives the same vocabulary as counting at once.
  WordCounter left(true), right(true);
  for (size_t i = 0; i < text.size(); ++i) (i % 3 == 0 ? left : right).add_text(text[i]);
  right.merge(left);
  EXPECT_EQ(train_wordpiece(right, options(120, 2)), a);
}

TEST(WordPieceTrainer, MinFrequencyBoundsEveryMerge) {
  // With a high min_frequency no merge happens: only specials, the alphabet and its ## forms.
  const Tokens vocab = train_wordpiece(pseudo_text(), options(30000, 1000000));
  for (size_t i = 5; i < vocab.size(); ++i) {
    const std::string& t = vocab[i];
    const size_t chars = t.rfind("##", 0) == 0 ? t.size() - 2 : t.size();
    EXPECT_EQ(chars, 1u) << t;
  }
  // The trained vocab encodes its own corpus without [UNK].
  const Tokens trained = train_wordpiece(pseudo_text(), options(200, 2));
  const auto tok = WordPieceTokenizer::from_tokens(trained, true);
  for (const std::string& line : pseudo_text()) {
    for (int32_t id : tok.encode(line)) ASSERT_NE(id, tok.special_ids().unk) << line;
  }
}

TEST(WordPieceTrainer, WritesVocabAndTokenizerConfig) {
  const mpibert::testing::UniqueTempDir temp("wordpiece_trainer_test");  // unique: ctest -j runs cases at once
  const std::string dir = temp.dir();
  const Tokens vocab = train_wordpiece(pseudo_text(), options(150, 2));
  write_vocab_file(dir + "vocab.txt", vocab);
  const auto tok = WordPieceTokenizer::from_vocab_file(dir + "vocab.txt", true);
  EXPECT_EQ(tok.tokens(), vocab);
  EXPECT_THROW(write_vocab_file(dir + "bad.txt", {"[UNK]", "a\nb"}), UsageError);

  write_tokenizer_config(dir + "tokenizer_config.json", true, 512);
  std::ifstream in(dir + "tokenizer_config.json");
  const nlohmann::json config = nlohmann::json::parse(in);
  EXPECT_EQ(config.at("tokenizer_class"), "BertTokenizer");
  EXPECT_EQ(config.at("do_lower_case"), true);
  EXPECT_EQ(config.at("model_max_length"), 512);
  EXPECT_EQ(config.at("unk_token"), "[UNK]");
  EXPECT_EQ(config.at("mask_token"), "[MASK]");
  EXPECT_EQ(config.at("pad_token"), "[PAD]");
  EXPECT_EQ(config.at("cls_token"), "[CLS]");
  EXPECT_EQ(config.at("sep_token"), "[SEP]");
  write_tokenizer_config(dir + "cased.json", false, 128);
  std::ifstream cased_in(dir + "cased.json");
  EXPECT_EQ(nlohmann::json::parse(cased_in).at("do_lower_case"), false);
}

}  // namespace
}  // namespace mpibert::data
