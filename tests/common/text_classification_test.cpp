// Sequence-classification inputs: special tokens, token types, tokenizers' longest_first truncation
// (lengths derived by hand from truncate_encodings), and whole tables with labels. The same encoding
// is compared with the real Hugging Face tokenizers on real pairs by tests/e2e/pair_encoding_reference.sh.
#include "common/data/text_classification.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "common/error.h"
#include "tests/usage_error_of.h"

namespace mpibert::data {
namespace {

using mpibert::testing::usage_error_of;
using ::testing::HasSubstr;
using Ids = std::vector<int32_t>;

// [PAD]0 [UNK]1 [CLS]2 [SEP]3 [MASK]4, then words: a5 b6 c7 d8 e9 f10 g11 h12 ,13 ##a14 ("aa" = a ##a)
WordPieceTokenizer test_tokenizer() {
  return WordPieceTokenizer::from_tokens(
      {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "b", "c", "d", "e", "f", "g", "h", ",", "##a"}, true);
}

TEST(LongestFirst, LengthsDerivedFromTruncateEncodings) {
  struct Case {
    size_t first, second, budget, keep_first, keep_second;
  };
  const Case cases[] = {
      {3, 4, 7, 3, 4},                      // fits: unchanged
      {10, 4, 12, 8, 4},                    // the shorter keeps all, the longer gets the rest
      {4, 10, 12, 4, 8}, {7, 7, 12, 6, 6},  // both over half: halves
      {9, 9, 5, 2, 3},                      // equal lengths: the first counts as the shorter and gets floor(5/2)
      {3, 9, 5, 2, 3},                      // 2 * 3 > 5: halves, the shorter (first) gets the floor
      {9, 3, 5, 3, 2},                      // ... and here the shorter is the second
      {2, 9, 5, 2, 3},                      // 2 * 2 <= 5: the shorter keeps its 2
      {0, 10, 4, 0, 4},  {6, 6, 0, 0, 0},
  };
  for (const Case& c : cases) {
    const PairLengths got = longest_first_lengths(c.first, c.second, c.budget);
    EXPECT_EQ(got.first, c.keep_first) << c.first << "," << c.second << " budget " << c.budget;
    EXPECT_EQ(got.second, c.keep_second) << c.first << "," << c.second << " budget " << c.budget;
  }
  // First 20, second 1, budget 1: the shorter (second, 1) has 2 * 1 > 1, so halves: shorter floor(1/2)
  // = 0, longer 1. The second text vanishes entirely while the first keeps one token.
  const PairLengths odd = longest_first_lengths(20, 1, 1);
  EXPECT_EQ(odd.first, 1u);
  EXPECT_EQ(odd.second, 0u);
}

TEST(LongestFirst, KeepsExactlyTheBudgetAndNeverGrowsAText) {
  for (size_t a = 0; a <= 12; ++a) {
    for (size_t b = 0; b <= 12; ++b) {
      for (size_t budget = 0; budget <= 26; ++budget) {
        const PairLengths k = longest_first_lengths(a, b, budget);
        ASSERT_EQ(k.first + k.second, std::min(a + b, budget)) << a << " " << b << " " << budget;
        ASSERT_LE(k.first, a);
        ASSERT_LE(k.second, b);
        // The text that was longer never ends up with fewer tokens than the other.
        if (a > b) {
          ASSERT_GE(k.first, k.second);
        }
        if (b > a) {
          ASSERT_GE(k.second, k.first);
        }
      }
    }
  }
}

TEST(ClassificationInput, SingleTextGetsClsAndSepWithTypeZero) {
  const auto tok = test_tokenizer();
  const ClassificationInput in = encode_classification_input(tok, "a b, c", 16);
  EXPECT_EQ(in.input_ids, (Ids{2, 5, 6, 13, 7, 3}));
  EXPECT_EQ(in.token_type_ids, (Ids{0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(in.num_truncated, 0);
  // max_seq_length 4 keeps 2 content tokens, cut from the right.
  const ClassificationInput cut = encode_classification_input(tok, "a b c d", 4);
  EXPECT_EQ(cut.input_ids, (Ids{2, 5, 6, 3}));
  EXPECT_EQ(cut.num_truncated, 2);
  EXPECT_EQ(encode_classification_input(tok, "", 2).input_ids, (Ids{2, 3}));
}

TEST(ClassificationInput, PairGetsTypeOneForTheSecondTextAndItsSep) {
  const auto tok = test_tokenizer();
  const ClassificationInput in = encode_classification_input(tok, "a b", "c d e", 8);  // exactly fits
  EXPECT_EQ(in.input_ids, (Ids{2, 5, 6, 3, 7, 8, 9, 3}));
  EXPECT_EQ(in.token_type_ids, (Ids{0, 0, 0, 0, 1, 1, 1, 1}));
  EXPECT_EQ(in.num_truncated, 0);
  // 7 content tokens into budget 4: shorter "a b" keeps 2 (2 * 2 <= 4), the longer keeps 2.
  const ClassificationInput cut = encode_classification_input(tok, "a b", "c d e f g", 7);
  EXPECT_EQ(cut.input_ids, (Ids{2, 5, 6, 3, 7, 8, 3}));
  EXPECT_EQ(cut.token_type_ids, (Ids{0, 0, 0, 0, 1, 1, 1}));
  EXPECT_EQ(cut.num_truncated, 3);
  // Equal lengths 4 and 4 into budget 5: first 2, second 3.
  const ClassificationInput tie = encode_classification_input(tok, "a b c d", "e f g h", 8);
  EXPECT_EQ(tie.input_ids, (Ids{2, 5, 6, 3, 9, 10, 11, 3}));
  EXPECT_EQ(encode_classification_input(tok, "a", "b", 3).input_ids, (Ids{2, 3, 3}));
}

TEST(ClassificationInput, ComparedLengthStopsAtTheWordThatReachesMaxLength) {
  const auto tok = test_tokenizer();
  // Words a | b | a ##a | c: the count reaches 3 inside "aa", so its both pieces count: 4 of 5.
  TextTokens t = tokenize_for_classification(tok, "a b aa c", 3);
  EXPECT_EQ(t.ids, (Ids{5, 6, 5, 14, 7}));
  EXPECT_EQ(t.compared_length, 4u);
  EXPECT_EQ(tokenize_for_classification(tok, "a b aa c", 2).compared_length, 2u);
  EXPECT_EQ(tokenize_for_classification(tok, "a b aa c", 9).compared_length, 5u);  // short text: all
  // Special tokens matched in the raw text count but never end the count themselves.
  t = tokenize_for_classification(tok, "[SEP][SEP] a b c", 2);
  EXPECT_EQ(t.ids, (Ids{3, 3, 5, 6, 7}));
  EXPECT_EQ(t.compared_length, 3u);
}

TEST(ClassificationInput, PairTruncationComparesTheLimitedLengths) {
  const auto tok = test_tokenizer();
  // 8 one-piece words against 3 two-piece words (6 tokens), max_seq_length 6 (budget 3). Full lengths
  // 8 and 6 would give the shorter second text floor(3/2) = 1 token; tokenizers >= 0.23 compares 6 and
  // 6 (both counts stop at 6), a tie, so the first text gets 1 and the second 2.
  const ClassificationInput in = encode_classification_input(tok, "a b c d e f g h", "aa aa aa", 6);
  EXPECT_EQ(in.input_ids, (Ids{2, 5, 3, 5, 14, 3}));
  EXPECT_EQ(in.token_type_ids, (Ids{0, 0, 0, 1, 1, 1}));
  EXPECT_EQ(in.num_truncated, 11);
}

TEST(ClassificationInput, TooSmallMaxLengthOrMissingSpecialsAreErrors) {
  const auto tok = test_tokenizer();
  EXPECT_THAT(usage_error_of([&] { encode_classification_input(tok, "a", 1); }),
              HasSubstr("max_seq_length 1 is too small: a text needs at least 2"));
  EXPECT_THAT(usage_error_of([&] { encode_classification_input(tok, "a", "b", 2); }),
              HasSubstr("max_seq_length 2 is too small: a pair needs at least 3"));
  const auto no_cls = WordPieceTokenizer::from_tokens({"[PAD]", "[UNK]", "[SEP]", "a"}, true);
  EXPECT_THAT(usage_error_of([&] { encode_classification_input(no_cls, "a", 8); }), HasSubstr("lacks [CLS] or [SEP]"));
}

TEST(ClassificationTable, JoinsTextColumnsAndMapsLabels) {
  const auto tok = test_tokenizer();
  const Table train = parse_table("title,body,label,id\na,b c,pos,1\nd,e,neg,2\n", TableFormat::kCsv, "train.csv");
  const LabelSpace labels = build_label_space(train, "label");
  TextColumns columns;
  columns.first = split_column_names("title,body", "text_column_names");
  columns.delimiter = ", ";
  const ClassificationDataset d = encode_classification_table(train, columns, &labels, true, tok, 16);
  ASSERT_EQ(d.examples.size(), 2u);
  EXPECT_EQ(d.examples[0].input.input_ids, (Ids{2, 5, 13, 6, 7, 3}));  // "a, b c"
  EXPECT_TRUE(d.examples[0].has_label);
  EXPECT_EQ(d.examples[0].label.class_id, 1);  // neg 0, pos 1
  EXPECT_EQ(d.examples[1].label.class_id, 0);
  EXPECT_EQ(d.examples[1].line, 3u);
  EXPECT_EQ(d.truncated_examples, 0u);
  EXPECT_EQ(d.longest_input, 6u);
}

TEST(ClassificationTable, PairsTruncationCountsAndUnlabelledPredictionData) {
  const auto tok = test_tokenizer();
  const Table test = parse_table("{\"s1\": \"a b c d\", \"s2\": \"e\"}\n{\"s1\": \"a\", \"s2\": \"b\"}\n",
                                 TableFormat::kJsonLines, "test.jsonl");
  TextColumns columns;
  columns.first = {"s1"};
  columns.second = {"s2"};
  const ClassificationDataset d = encode_classification_table(test, columns, nullptr, false, tok, 5);
  EXPECT_EQ(d.examples[0].input.input_ids, (Ids{2, 5, 3, 9, 3}));
  EXPECT_EQ(d.examples[0].input.token_type_ids, (Ids{0, 0, 0, 1, 1}));
  EXPECT_FALSE(d.examples[0].has_label);
  EXPECT_EQ(d.truncated_examples, 1u);
}

TEST(ClassificationTable, ErrorsNameTheFileAndLine) {
  const auto tok = test_tokenizer();
  const Table train = parse_table("sentence,label\na,x\nb,y\n", TableFormat::kCsv, "train.csv");
  const LabelSpace labels = build_label_space(train, "label");
  TextColumns columns;  // default text column "sentence"
  const Table no_text = parse_table("text,label\na,x\n", TableFormat::kCsv, "v.csv");
  EXPECT_THAT(usage_error_of([&] { encode_classification_table(no_text, columns, &labels, true, tok, 8); }),
              HasSubstr("v.csv: no text column 'sentence' (the columns are text,label)"));
  const Table no_label = parse_table("sentence\na\n", TableFormat::kCsv, "v.csv");
  EXPECT_THAT(usage_error_of([&] { encode_classification_table(no_label, columns, &labels, true, tok, 8); }),
              HasSubstr("v.csv: no label column 'label'"));
  EXPECT_EQ(encode_classification_table(no_label, columns, &labels, false, tok, 8).examples.size(), 1u);
  const Table unknown = parse_table("sentence,label\na,x\nb,z\n", TableFormat::kCsv, "v.csv");
  EXPECT_THAT(usage_error_of([&] { encode_classification_table(unknown, columns, &labels, true, tok, 8); }),
              HasSubstr("v.csv:3: label 'z' does not occur in the training data (train.csv"));
  const Table list_text =
      parse_table("{\"sentence\": [\"a\"], \"label\": \"x\"}\n", TableFormat::kJsonLines, "v.jsonl");
  EXPECT_THAT(usage_error_of([&] { encode_classification_table(list_text, columns, &labels, true, tok, 8); }),
              HasSubstr("v.jsonl:1: text column 'sentence' holds a list"));
}

TEST(ClassificationTable, ColumnNameLists) {
  EXPECT_EQ(split_column_names("a", "x"), (std::vector<std::string>{"a"}));
  EXPECT_EQ(split_column_names("title,review", "x"), (std::vector<std::string>{"title", "review"}));
  EXPECT_THAT(usage_error_of([] { split_column_names("a,,b", "text_column_names"); }),
              HasSubstr("text_column_names: empty column name in 'a,,b'"));
  EXPECT_THAT(usage_error_of([] { split_column_names("", "text_column_names"); }), HasSubstr("empty column name"));
}

}  // namespace
}  // namespace mpibert::data
