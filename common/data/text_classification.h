#pragma once
// Sequence-classification inputs, torch-free, exactly as Hugging Face's BertTokenizerFast makes them
// with tokenizer(a, b, truncation=True, max_length=L) (run_glue / run_classification), checked against
// tokenizers 0.23 by tests/e2e/pair_encoding_reference.sh:
//   single text: [CLS] a [SEP]            token_type_ids 0 ... 0
//   pair:        [CLS] a [SEP] b [SEP]    token_type_ids 0 for [CLS] a [SEP], 1 for b [SEP]
// Truncation is tokenizers' default "longest_first", applied to the content tokens (L minus 2 or 3
// special tokens), cutting from the right; see longest_first_lengths and TextTokens. No padding: a
// batch collator pads (with [PAD], token type 0, attention mask 0).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/data/classification_labels.h"
#include "common/data/table_reader.h"
#include "common/data/wordpiece.h"

namespace mpibert::data {

struct ClassificationInput {
  std::vector<int32_t> input_ids;
  std::vector<int32_t> token_type_ids;  // same length as input_ids
  int32_t num_truncated = 0;            // content tokens cut off (both texts together)
};

struct PairLengths {
  size_t first = 0, second = 0;
};

// How many tokens each text of a pair keeps when their lengths `first` + `second` exceed `budget`
// (tokenizers' truncate_encodings, LongestFirst): the shorter text keeps all its tokens if that
// leaves at least as many for the longer, which gets the rest; otherwise the shorter gets
// floor(budget / 2) and the longer ceil(budget / 2). On equal lengths the first text counts as the
// shorter. (This is not the one-token-at-a-time rule of the slow Python tokenizer: for budget 5 and
// lengths 9 and 9 it keeps 2 + 3, the slow one 3 + 2.) Unchanged when the sum fits.
PairLengths longest_first_lengths(size_t first, size_t second, size_t budget);

// The content ids of one text and the length truncation compares. tokenizers >= 0.23 tokenizes a
// text under truncation only until its words (and the special tokens matched in the raw text) reach
// max_length tokens (tokenize_with_limit), so longest_first_lengths sees
//   compared_length = the tokens up to the end of the first word at which the count reaches
//                     max_length, or all of them;
// a word's pieces are counted whole, and a special token alone never ends the count. It differs from
// ids.size() only when the text has at least max_length tokens, and changes the result only when both
// texts of a pair do and the budget is odd: which text gets the extra token. (tokenizers <= 0.22
// compared the full lengths.)
struct TextTokens {
  std::vector<int32_t> ids;
  size_t compared_length = 0;
};
TextTokens tokenize_for_classification(const WordPieceTokenizer& tokenizer, std::string_view text,
                                       size_t max_seq_length);

// The input of one text or of a pair. max_seq_length counts the special tokens and must be at least
// 2 (one text) or 3 (a pair); the vocabulary must hold [CLS] and [SEP]. Throws UsageError otherwise.
ClassificationInput encode_classification_input(const WordPieceTokenizer& tokenizer, std::string_view text,
                                                size_t max_seq_length);
ClassificationInput encode_classification_input(const WordPieceTokenizer& tokenizer, std::string_view text_a,
                                                std::string_view text_b, size_t max_seq_length);
// The same from tokenized texts; `second` null for a single text.
ClassificationInput assemble_classification_input(const TextTokens& first, const TextTokens* second,
                                                  const SpecialIds& special, size_t max_seq_length);

// Which columns make the text(s) of an example. Each list of columns is joined with `delimiter` into
// one text, as run_classification's --text_column_names / --text_column_delimiter do; `second` empty
// means a single text per example, otherwise a pair (run_glue's sentence1_key / sentence2_key).
struct TextColumns {
  std::vector<std::string> first = {"sentence"};
  std::vector<std::string> second;
  std::string delimiter = " ";
};

// Splits a comma-separated list of column names ("title,review"); throws UsageError naming
// `context` for an empty list or an empty name.
std::vector<std::string> split_column_names(const std::string& list, const std::string& context);

struct ClassificationExample {
  ClassificationInput input;
  bool has_label = false;
  LabelTarget label;  // when has_label
  size_t line = 0;    // the table row's source line
};

struct ClassificationDataset {
  std::string source;
  std::vector<ClassificationExample> examples;
  size_t truncated_examples = 0;  // examples that lost tokens to max_seq_length
  size_t longest_input = 0;       // tokens of the longest input after truncation
};

// Encodes every row of `table`. Labels are read from labels->label_column when `labels` is given and
// the table has that column; `require_labels` makes a missing label column an error (training and
// evaluation data) instead of examples without labels (prediction data). Throws UsageError naming
// the file for a missing text column, and "FILE:LINE" for a list in a text column or a bad label
// (see label_target).
ClassificationDataset encode_classification_table(const Table& table, const TextColumns& columns,
                                                  const LabelSpace* labels, bool require_labels,
                                                  const WordPieceTokenizer& tokenizer, size_t max_seq_length);

}  // namespace mpibert::data
