// WordPiece tokenizer: hard cases with ids derived by hand from the BertTokenizerFast rules
// (tokenizers' BertNormalizer + BertPreTokenizer + WordPiece; see docs/data.md), UTF-8 decoding,
// and vocab loading errors. The same rules are checked against the real Hugging Face library on the
// fetched corpus, on every code point and on a hard-case file by tests/e2e/tokenizer_reference.sh.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "common/data/basic_tokenizer.h"
#include "common/data/unicode_text.h"
#include "common/data/wordpiece.h"
#include "common/error.h"
#include "tests/common/unique_temp_dir.h"

namespace mpibert::data {
namespace {

// The test vocabulary; the id of a token is its index (written next to it).
std::vector<std::string> test_vocab() {
  return {
      "[PAD]",                                             // 0
      "[UNK]",                                             // 1
      "[CLS]",                                             // 2
      "[SEP]",                                             // 3
      "[MASK]",                                            // 4
      "hello",                                             // 5
      "world",                                             // 6
      ",",                                                 // 7
      "!",                                                 // 8
      "cafe",                                              // 9
      "naive",                                             // 10
      "un",                                                // 11
      "##aff",                                             // 12
      "##able",                                            // 13
      "\u4e2d",                                            // 14 中
      "\u6587",                                            // 15 文
      "a",                                                 // 16
      "##a",                                               // 17
      "##b",                                               // 18
      "b",                                                 // 19
      ".",                                                 // 20
      "istanbul",                                          // 21
      "\u03bf\u03b4\u03c5\u03c3\u03c3\u03b5\u03c5\u03c3",  // 22 οδυσσευσ (every sigma σ)
      "[",                                                 // 23
      "]",                                                 // 24
      "mask",                                              // 25
      "x",                                                 // 26
      "##\U0001D165",                                      // 27 MUSICAL SYMBOL COMBINING STEM (Mc, ccc 216)
      "##\U0001D16D",                                      // 28 MUSICAL SYMBOL COMBINING AUGMENTATION DOT (Mc, ccc 226)
      "\u1112",                                            // 29 HANGUL CHOSEONG HIEUH
      "##\u1161",                                          // 30 HANGUL JUNGSEONG A
      "##\u11ab",                                          // 31 HANGUL JONGSEONG NIEUN
      "\U0001F600",                                        // 32 😀
      "\u8c48",                                            // 33 the canonical form of U+F900
      "##\u0301",                                          // 34 COMBINING ACUTE ACCENT as a continuation
      "e",                                                 // 35
      "Hello",                                             // 36
      "Caf\u00e9",                                         // 37 Café, precomposed
      "##s",                                               // 38
  };
}

class Tokenizer : public ::testing::Test {
 protected:
  WordPieceTokenizer uncased = WordPieceTokenizer::from_tokens(test_vocab(), true);
  WordPieceTokenizer cased = WordPieceTokenizer::from_tokens(test_vocab(), false);
  using Ids = std::vector<int32_t>;
};

TEST_F(Tokenizer, LowercasesAndIsolatesPunctuation) {
  // "Hello, World!" -> lowercase -> hello , world ! (punctuation is its own word)
  EXPECT_EQ(uncased.encode("Hello, World!"), (Ids{5, 7, 6, 8}));
  // Cased: Hello , World ! ; "World" is not in the vocab and has no pieces -> [UNK]
  EXPECT_EQ(cased.encode("Hello, World!"), (Ids{36, 7, 1, 8}));
  // ASCII punctuation ranges 33-47, 58-64, 91-96, 123-126 split: a . b, a $ b ($ unknown -> [UNK])
  EXPECT_EQ(uncased.encode("a.b"), (Ids{16, 20, 19}));
  EXPECT_EQ(uncased.encode("a$b"), (Ids{16, 1, 19}));
  EXPECT_EQ(uncased.encode("a^b"), (Ids{16, 1, 19}));
  // Unicode P* splits too: « (Pi) and » (Pf) are words of their own, unknown -> [UNK]
  EXPECT_EQ(uncased.encode("a\u00abb\u00bb"), (Ids{16, 1, 19, 1}));
  // € is Sc, not punctuation: "a€b" stays one word; "##€" is missing -> the whole word is [UNK]
  EXPECT_EQ(uncased.encode("a\u20acb"), (Ids{1}));
}

TEST_F(Tokenizer, StripsAccentsOnlyWhenUncased) {
  // Uncased: NFD(Café) = Cafe + U+0301; Mn dropped; lowercase -> cafe. NAÏVE -> naive.
  EXPECT_EQ(uncased.encode("Caf\u00e9 NA\u00cfVE"), (Ids{9, 10}));
  // Already decomposed input gives the same.
  EXPECT_EQ(uncased.encode("Cafe\u0301"), (Ids{9}));
  // Cased: no NFD and no NFC: precomposed Café is the token 37; the decomposed form is not, and no
  // piece sequence covers it ("C" is missing) -> [UNK].
  EXPECT_EQ(cased.encode("Caf\u00e9"), (Ids{37}));
  EXPECT_EQ(cased.encode("Cafe\u0301"), (Ids{1}));
  // Cased keeps a combining mark as a character of the word: e + ##U+0301.
  EXPECT_EQ(cased.encode("e\u0301"), (Ids{35, 34}));
}

TEST_F(Tokenizer, DottedCapitalIAndFinalSigma) {
  // U+0130 İ: NFD = I + U+0307 (Mn, dropped), then lowercase -> "istanbul".
  EXPECT_EQ(uncased.encode("\u0130stanbul"), (Ids{21}));
  // Lowercasing is per character (Rust char::to_lowercase): the final Σ becomes σ, never ς.
  EXPECT_EQ(uncased.encode("\u039f\u0394\u03a5\u03a3\u03a3\u0395\u03a5\u03a3"), (Ids{22}));
  // Cased: İ is kept and the word is unknown.
  EXPECT_EQ(cased.encode("\u0130stanbul"), (Ids{1}));
}

TEST_F(Tokenizer, GreedyLongestMatchFirstWithContinuations) {
  // unaffable: longest prefix in vocab "un", then "##aff", then "##able".
  EXPECT_EQ(uncased.encode("unaffable"), (Ids{11, 12, 13}));
  // unaffablex: after un ##aff ##able, "x" needs "##x" which is missing -> the whole word is one [UNK].
  EXPECT_EQ(uncased.encode("unaffablex"), (Ids{1}));
  // "aab": a, then longest continuation "##a", then "##b".
  EXPECT_EQ(uncased.encode("aab"), (Ids{16, 17, 18}));
}

TEST_F(Tokenizer, CjkIdeographsAreWordsOfTheirOwn) {
  // Spaces go around each ideograph: a 中 b, 中 文.
  EXPECT_EQ(uncased.encode("\u4e2d\u6587"), (Ids{14, 15}));
  EXPECT_EQ(uncased.encode("a\u4e2db"), (Ids{16, 14, 19}));
  // U+F900 (compatibility ideograph) is in the CJK ranges; NFD maps it to U+8C48 when uncased.
  EXPECT_EQ(uncased.encode("a\uf900"), (Ids{16, 33}));
  EXPECT_EQ(cased.encode("a\uf900"), (Ids{16, 1}));
  // U+2B820 lies in Google BERT's range but not in tokenizers' (it starts at U+2B920): no split,
  // "a" + "##U+2B820" is missing -> [UNK].
  EXPECT_EQ(uncased.encode("a\U0002B820"), (Ids{1}));
}

TEST_F(Tokenizer, HangulDecomposesToJamoWhenUncased) {
  // 한 = U+D55C -> NFD U+1112 U+1161 U+11AB (all Lo, kept): ᄒ ##ᅡ ##ᆫ
  EXPECT_EQ(uncased.encode("\ud55c"), (Ids{29, 30, 31}));
  EXPECT_EQ(cased.encode("\ud55c"), (Ids{1}));
}

TEST_F(Tokenizer, EmojiAreWordCharacters) {
  // 😀 is So: not punctuation, so it is a word: alone it is token 32; "a😀" is one unknown word.
  EXPECT_EQ(uncased.encode("\U0001F600"), (Ids{32}));
  EXPECT_EQ(uncased.encode("a\U0001F600"), (Ids{1}));
  EXPECT_EQ(uncased.encode("a \U0001F600"), (Ids{16, 32}));
}

TEST_F(Tokenizer, ControlCharactersVanishAndWhitespaceSplits) {
  // \t \n \r and Unicode White_Space split words: a b
  EXPECT_EQ(uncased.encode("a\tb"), (Ids{16, 19}));
  EXPECT_EQ(uncased.encode("a\r\nb"), (Ids{16, 19}));
  EXPECT_EQ(uncased.encode("a\u00a0b"), (Ids{16, 19}));  // NO-BREAK SPACE (Zs)
  EXPECT_EQ(uncased.encode("a\u3000b"), (Ids{16, 19}));  // IDEOGRAPHIC SPACE (Zs)
  EXPECT_EQ(uncased.encode("a\u2028b"), (Ids{16, 19}));  // LINE SEPARATOR (Zl)
  // Controls are removed before whitespace is mapped, so Cc/Cf join the letters around them:
  // "a<ctl>b" -> "ab" -> a ##b. \v \f and U+0085 are Cc (removed) although White_Space.
  for (const char* text : {"a\x01"
                           "b",
                           "a\x7f"
                           "b",
                           "a\x0b"
                           "b",
                           "a\x0c"
                           "b",
                           "a\u0085b", "a\u200db", "a\ufeffb", "a\u00adb", "a\ue001b", "a\ufffdb"}) {
    EXPECT_EQ(uncased.encode(text), (Ids{16, 18})) << text;
  }
  // U+0000 too.
  EXPECT_EQ(uncased.encode(std::string_view("a\0b", 3)), (Ids{16, 18}));
  // Only controls: nothing.
  EXPECT_TRUE(uncased.encode("\x01\x02\x7f").empty());
}

TEST_F(Tokenizer, IllFormedUtf8BytesAreDropped) {
  // Each ill-formed sequence would decode to U+FFFD (maximal subparts), which clean_text removes.
  EXPECT_EQ(uncased.encode("a\xff"
                           "b"),
            (Ids{16, 18}));  // stray byte: "ab"
  EXPECT_EQ(uncased.encode("a\xe2\x82"
                           "b"),
            (Ids{16, 18}));  // truncated 3-byte sequence; 'b' survives
  EXPECT_EQ(uncased.encode("a\xc0\xaf"
                           "b"),
            (Ids{16, 18}));  // overlong '/': not a slash, dropped
  EXPECT_EQ(uncased.encode("a\xed\xa0\x80"
                           "b"),
            (Ids{16, 18}));  // encoded surrogate
  EXPECT_EQ(uncased.encode("a\xf4\x90\x80\x80"
                           "b"),
            (Ids{16, 18}));                              // above U+10FFFF
  EXPECT_EQ(uncased.encode("a \xc3"), (Ids{16}));        // truncated at the end
  EXPECT_EQ(uncased.encode("\xc3\xa9\xff"), (Ids{35}));  // é then junk: e
  // A truncated sequence must not swallow a following ASCII punctuation byte: a , b
  EXPECT_EQ(uncased.encode("a\xe2,b"), (Ids{16, 7, 19}));
}

TEST_F(Tokenizer, WordsLongerThan100CharactersAreUnknown) {
  // 100 × "a" -> a + 99 × ##a; 101 -> [UNK]. Characters are counted after normalization.
  Ids hundred{16};
  hundred.insert(hundred.end(), 99, 17);
  std::string a100(100, 'a');
  EXPECT_EQ(uncased.encode(a100), hundred);
  EXPECT_EQ(uncased.encode(a100 + "a"), (Ids{1}));
  // 100 × precomposed á (U+00E1, 200 bytes): uncased -> 100 × "a" -> same ids; 101 -> [UNK].
  std::string a_acute100;
  for (int i = 0; i < 100; ++i) a_acute100 += "\u00e1";
  EXPECT_EQ(uncased.encode(a_acute100), hundred);
  EXPECT_EQ(uncased.encode(a_acute100 + "\u00e1"), (Ids{1}));
  // Cased, 50 × "a" + U+0301 = 100 characters -> a ##U+0301 (##a ##U+0301)×49; 51 × -> 102 -> [UNK].
  std::string decomposed50;
  Ids expected{16, 34};
  for (int i = 0; i < 50; ++i) decomposed50 += "a\u0301";
  for (int i = 1; i < 50; ++i) expected.insert(expected.end(), {17, 34});
  EXPECT_EQ(cased.encode(decomposed50), expected);
  EXPECT_EQ(cased.encode(decomposed50 + "a\u0301"), (Ids{1}));
}

TEST_F(Tokenizer, CombiningMarksFollowCanonicalOrder) {
  // Uncased NFD sorts marks by combining class: U+1D16D (226) after U+1D165 (216). Both are Mc, kept.
  EXPECT_EQ(uncased.encode("x\U0001D16D\U0001D165"), (Ids{26, 27, 28}));
  // A Cf control between them was removed before NFD, so they are still reordered.
  EXPECT_EQ(uncased.encode("x\U0001D16D\u200d\U0001D165"), (Ids{26, 27, 28}));
  // U+034F (Mn, class 0) blocks the reordering even though it is dropped afterwards.
  EXPECT_EQ(uncased.encode("x\U0001D16D\u034f\U0001D165"), (Ids{26, 28, 27}));
  // Cased: no NFD, the order is kept.
  EXPECT_EQ(cased.encode("x\U0001D16D\U0001D165"), (Ids{26, 28, 27}));
}

TEST_F(Tokenizer, SpecialTokensAreMatchedInRawTextCaseSensitively) {
  // [MASK] is one token; [mask] is text: [ mask ]
  EXPECT_EQ(uncased.encode("[MASK]"), (Ids{4}));
  EXPECT_EQ(uncased.encode("[mask]"), (Ids{23, 25, 24}));
  // A special token separates words even without spaces: a [SEP] b
  EXPECT_EQ(uncased.encode("a[SEP]b"), (Ids{16, 3, 19}));
  EXPECT_EQ(uncased.encode("[CLS][SEP][PAD][UNK]"), (Ids{2, 3, 0, 1}));
  // Unterminated: [ mask ; nested: [ [MASK] ]
  EXPECT_EQ(uncased.encode("[MASK"), (Ids{23, 25}));
  EXPECT_EQ(uncased.encode("[[MASK]]"), (Ids{23, 4, 24}));
  EXPECT_EQ(uncased.tokenize("Hello [MASK]!"), (std::vector<std::string>{"hello", "[MASK]", "!"}));
}

TEST_F(Tokenizer, ReportsVocabularyFacts) {
  EXPECT_EQ(uncased.vocab_size(), test_vocab().size());
  const SpecialIds s = uncased.special_ids();
  EXPECT_EQ(s.pad, 0);
  EXPECT_EQ(s.unk, 1);
  EXPECT_EQ(s.cls, 2);
  EXPECT_EQ(s.sep, 3);
  EXPECT_EQ(s.mask, 4);
  EXPECT_TRUE(uncased.lowercase());
  EXPECT_FALSE(cased.lowercase());
  EXPECT_EQ(uncased.token_to_id("hello"), 5);
  EXPECT_EQ(uncased.token_to_id("##aff"), 12);
  EXPECT_EQ(uncased.token_to_id("nope"), -1);
  EXPECT_EQ(uncased.id_to_token(13), "##able");
  EXPECT_THROW(uncased.id_to_token(-1), std::out_of_range);
  EXPECT_THROW(uncased.id_to_token(static_cast<int32_t>(test_vocab().size())), std::out_of_range);
  EXPECT_TRUE(uncased.is_continuation(12));
  EXPECT_FALSE(uncased.is_continuation(11));
  EXPECT_FALSE(uncased.is_continuation(-3));
  EXPECT_EQ(uncased.tokens(), test_vocab());
  // encode() appends.
  std::vector<int32_t> out{99};
  uncased.encode("hello", out);
  EXPECT_EQ(out, (Ids{99, 5}));
}

TEST_F(Tokenizer, CopiesStayValidAfterTheOriginalIsGone) {
  auto* original = new WordPieceTokenizer(WordPieceTokenizer::from_tokens(test_vocab(), true));
  WordPieceTokenizer copy = *original;
  delete original;
  EXPECT_EQ(copy.encode("hello unaffable"), (Ids{5, 11, 12, 13}));
}

TEST(BasicTokenizer, SplitsIntoNormalizedWords) {
  BasicTokenizer basic(true);
  EXPECT_EQ(basic.split("  H\u00e9llo,  W\u00d6RLD!! \u4e2d\u6587x "),
            (std::vector<std::string>{"hello", ",", "world", "!", "!", "\u4e2d", "\u6587", "x"}));
  // Appending to a WordList keeps earlier words.
  WordList words;
  basic.split("a b", words);
  basic.split("c", words);
  ASSERT_EQ(words.size(), 3u);
  EXPECT_EQ(words[2], "c");
}

TEST(Utf8, DecodesAndSkipsMaximalSubparts) {
  struct Case {
    std::string bytes;
    char32_t cp;
    size_t consumed;
  };
  const std::vector<Case> cases = {
      {"a", U'a', 1},
      {"\xc3\xa9", 0xE9, 2},
      {"\xe4\xb8\xad", 0x4E2D, 3},
      {"\xf0\x9f\x98\x80", 0x1F600, 4},
      {"\xff", unicode::kInvalid, 1},
      {"\x80", unicode::kInvalid, 1},
      {"\xc0\xaf", unicode::kInvalid, 1},  // C0 is never a lead byte
      {"\xe2\x82"
       "a",
       unicode::kInvalid, 2},                      // valid prefix E2 82, stops before 'a'
      {"\xe0\x80\x80", unicode::kInvalid, 1},      // E0 needs A0..BF next
      {"\xed\xa0\x80", unicode::kInvalid, 1},      // surrogate: ED needs 80..9F next
      {"\xf4\x90\x80\x80", unicode::kInvalid, 1},  // above U+10FFFF
      {"\xf0\x9f\x98"
       "a",
       unicode::kInvalid, 3},
      {"\xc3", unicode::kInvalid, 1},
  };
  for (const Case& c : cases) {
    size_t i = 0;
    EXPECT_EQ(unicode::decode_utf8(c.bytes, i), c.cp) << c.bytes;
    EXPECT_EQ(i, c.consumed) << c.bytes;
  }
  std::string round;
  for (char32_t cp : {U'a', char32_t{0xE9}, char32_t{0x4E2D}, char32_t{0x1F600}}) unicode::append_utf8(round, cp);
  EXPECT_EQ(round, "a\xc3\xa9\xe4\xb8\xad\xf0\x9f\x98\x80");
}

TEST(Utf8, BlankMeansOnlyWhiteSpace) {
  EXPECT_TRUE(unicode::is_blank(""));
  EXPECT_TRUE(unicode::is_blank(" \t\r\x0b\x0c"));
  EXPECT_TRUE(unicode::is_blank("\u00a0\u3000\u2028"));
  EXPECT_FALSE(unicode::is_blank(" x "));
  EXPECT_FALSE(unicode::is_blank("\x01"));    // a control is not whitespace
  EXPECT_FALSE(unicode::is_blank("\xff"));    // nor an ill-formed byte
  EXPECT_FALSE(unicode::is_blank("\ufeff"));  // BOM is Cf
}

class VocabFile : public ::testing::Test {
 protected:
  mpibert::testing::UniqueTempDir temp{"tokenizer_test_vocab"};  // unique: ctest -j runs cases at once
  std::string dir = temp.dir();
  std::string write(const std::string& name, const std::string& text) { return temp.write(name, text); }
  static std::string message_of(const std::function<void()>& f) {
    try {
      f();
    } catch (const UsageError& e) {
      return e.what();
    }
    return "(no UsageError)";
  }
};

TEST_F(VocabFile, LoadsIdsByLineTrimmingTrailingWhitespace) {
  // CRLF line ends and trailing spaces are trimmed (tokenizers' WordPiece::read_file); a repeated
  // token maps to its last line.
  const std::string path = write("v.txt", "[PAD]\r\n[UNK]\nhello  \nworld\nhello\n##s\n");
  const auto tok = WordPieceTokenizer::from_vocab_file(path, true);
  EXPECT_EQ(tok.vocab_size(), 6u);
  EXPECT_EQ(tok.special_ids().pad, 0);
  EXPECT_EQ(tok.special_ids().unk, 1);
  EXPECT_EQ(tok.special_ids().mask, -1);
  EXPECT_EQ(tok.token_to_id("hello"), 4);
  EXPECT_EQ(tok.encode("worlds hello"), (std::vector<int32_t>{3, 5, 4}));
}

TEST_F(VocabFile, MissingEmptyOrUnkLessVocabIsAUsageErrorNamingTheFile) {
  const std::string missing = dir + "does-not-exist.txt";
  EXPECT_NE(message_of([&] { WordPieceTokenizer::from_vocab_file(missing, true); }).find(missing), std::string::npos);
  const std::string empty = write("empty.txt", "");
  EXPECT_NE(
      message_of([&] { WordPieceTokenizer::from_vocab_file(empty, true); }).find(empty + ": the vocabulary is empty"),
      std::string::npos);
  const std::string no_unk = write("nounk.txt", "[PAD]\nhello\n");
  EXPECT_NE(message_of([&] { WordPieceTokenizer::from_vocab_file(no_unk, true); }).find("no [UNK]"), std::string::npos);
  EXPECT_NE(message_of([&] { WordPieceTokenizer::from_vocab_file(dir, true); }).find("is a directory"),
            std::string::npos);
  EXPECT_THROW(WordPieceTokenizer::from_tokens({}, true), UsageError);
}

}  // namespace
}  // namespace mpibert::data
