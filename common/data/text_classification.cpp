#include "common/data/text_classification.h"

#include <algorithm>

#include "common/error.h"

namespace mpibert::data {
namespace {

void check_special(const SpecialIds& special, size_t max_seq_length, bool pair) {
  if (special.cls < 0 || special.sep < 0) {
    throw UsageError("the vocabulary lacks [CLS] or [SEP], which sequence classification needs");
  }
  const size_t minimum = pair ? 3 : 2;
  if (max_seq_length < minimum) {
    throw UsageError(
        "max_seq_length " + std::to_string(max_seq_length) + " is too small: " +
        (pair ? "a pair needs at least 3 ([CLS] a [SEP] b [SEP])" : "a text needs at least 2 ([CLS] a [SEP])"));
  }
}

// The text of a row made of `names` joined with `delimiter`.
std::string join_columns(const Table& table, size_t row, const std::vector<int>& columns,
                         const std::string& delimiter) {
  std::string text;
  for (size_t i = 0; i < columns.size(); ++i) {
    const Cell& cell = table.rows[row][columns[i]];
    if (cell.kind == Cell::Kind::kList) {
      throw UsageError(table.where(row) + ": text column '" + table.columns[columns[i]] + "' holds a list");
    }
    if (i > 0) text += delimiter;
    text += cell.text;
  }
  return text;
}

std::vector<int> column_indices(const Table& table, const std::vector<std::string>& names) {
  std::vector<int> out;
  for (const std::string& name : names) {
    const int c = table.column_index(name);
    if (c < 0) {
      std::string have;
      for (const std::string& col : table.columns) have += (have.empty() ? "" : ",") + col;
      throw UsageError(table.source + ": no text column '" + name + "' (the columns are " + have + ")");
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace

PairLengths longest_first_lengths(size_t first, size_t second, size_t budget) {
  if (first + second <= budget) return {first, second};
  const bool first_is_shorter = first <= second;
  const size_t shorter = first_is_shorter ? first : second;
  size_t keep_shorter, keep_longer;
  if (2 * shorter <= budget) {
    keep_shorter = shorter;
    keep_longer = budget - shorter;
  } else {
    keep_shorter = budget / 2;
    keep_longer = budget - keep_shorter;
  }
  return first_is_shorter ? PairLengths{keep_shorter, keep_longer} : PairLengths{keep_longer, keep_shorter};
}

TextTokens tokenize_for_classification(const WordPieceTokenizer& tokenizer, std::string_view text,
                                       size_t max_seq_length) {
  TextTokens out;
  // Split at special tokens in the raw text as WordPieceTokenizer::encode does (at each '[', the
  // longest special token that matches), remembering where each special id lands.
  std::vector<std::string_view> specials;
  for (const char* name : {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}) {
    if (tokenizer.token_to_id(name) >= 0) specials.emplace_back(name);
  }
  std::stable_sort(specials.begin(), specials.end(), [](auto a, auto b) { return a.size() > b.size(); });
  std::vector<size_t> special_at;
  size_t segment = 0, pos = 0;
  while (!specials.empty() && (pos = text.find('[', pos)) != std::string_view::npos) {
    const auto hit = std::find_if(specials.begin(), specials.end(),
                                  [&](std::string_view s) { return text.substr(pos, s.size()) == s; });
    if (hit == specials.end()) {
      ++pos;
      continue;
    }
    tokenizer.encode(text.substr(segment, pos - segment), out.ids);
    special_at.push_back(out.ids.size());
    out.ids.push_back(tokenizer.token_to_id(*hit));
    pos += hit->size();
    segment = pos;
  }
  tokenizer.encode(text.substr(segment), out.ids);
  // Count split by split (a special token, or a word: a piece and its "##" continuations); the count
  // after a split is the split's end.
  out.compared_length = out.ids.size();
  size_t next_special = 0;
  for (size_t i = 0; i < out.ids.size();) {
    const bool special = next_special < special_at.size() && special_at[next_special] == i;
    size_t end = i + 1;
    if (special) {
      ++next_special;
    } else {
      while (end < out.ids.size() && tokenizer.is_continuation(out.ids[end])) ++end;
    }
    i = end;
    if (!special && end >= max_seq_length) {
      out.compared_length = end;
      break;
    }
  }
  return out;
}

ClassificationInput assemble_classification_input(const TextTokens& first, const TextTokens* second,
                                                  const SpecialIds& special, size_t max_seq_length) {
  check_special(special, max_seq_length, second != nullptr);
  ClassificationInput out;
  const size_t first_size = first.ids.size(), second_size = second ? second->ids.size() : 0;
  const size_t budget = max_seq_length - (second ? 3 : 2);
  PairLengths keep{std::min(first_size, budget), 0};
  if (second && first_size + second_size > budget) {
    keep = longest_first_lengths(first.compared_length, second->compared_length, budget);
  } else if (second) {
    keep = {first_size, second_size};
  }
  out.num_truncated = static_cast<int32_t>(first_size + second_size - keep.first - keep.second);
  out.input_ids.reserve(keep.first + keep.second + 3);
  out.input_ids.push_back(special.cls);
  out.input_ids.insert(out.input_ids.end(), first.ids.begin(), first.ids.begin() + keep.first);
  out.input_ids.push_back(special.sep);
  out.token_type_ids.assign(out.input_ids.size(), 0);
  if (second) {
    out.input_ids.insert(out.input_ids.end(), second->ids.begin(), second->ids.begin() + keep.second);
    out.input_ids.push_back(special.sep);
    out.token_type_ids.resize(out.input_ids.size(), 1);
  }
  return out;
}

ClassificationInput encode_classification_input(const WordPieceTokenizer& tokenizer, std::string_view text,
                                                size_t max_seq_length) {
  check_special(tokenizer.special_ids(), max_seq_length, false);
  return assemble_classification_input(tokenize_for_classification(tokenizer, text, max_seq_length), nullptr,
                                       tokenizer.special_ids(), max_seq_length);
}

ClassificationInput encode_classification_input(const WordPieceTokenizer& tokenizer, std::string_view text_a,
                                                std::string_view text_b, size_t max_seq_length) {
  check_special(tokenizer.special_ids(), max_seq_length, true);
  const TextTokens second = tokenize_for_classification(tokenizer, text_b, max_seq_length);
  return assemble_classification_input(tokenize_for_classification(tokenizer, text_a, max_seq_length), &second,
                                       tokenizer.special_ids(), max_seq_length);
}

std::vector<std::string> split_column_names(const std::string& list, const std::string& context) {
  std::vector<std::string> names;
  size_t pos = 0;
  for (;;) {
    const size_t comma = list.find(',', pos);
    names.push_back(list.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
    if (names.back().empty()) {
      throw UsageError(context + ": empty column name in '" + list + "' (expected names separated by commas)");
    }
    if (comma == std::string::npos) return names;
    pos = comma + 1;
  }
}

ClassificationDataset encode_classification_table(const Table& table, const TextColumns& columns,
                                                  const LabelSpace* labels, bool require_labels,
                                                  const WordPieceTokenizer& tokenizer, size_t max_seq_length) {
  const bool pair = !columns.second.empty();
  check_special(tokenizer.special_ids(), max_seq_length, pair);
  const std::vector<int> first = column_indices(table, columns.first);
  const std::vector<int> second = column_indices(table, columns.second);
  const int label_column = labels ? table.column_index(labels->label_column) : -1;
  if (require_labels && label_column < 0) {
    throw UsageError(table.source + ": no label column '" + (labels ? labels->label_column : std::string("label")) +
                     "'");
  }
  ClassificationDataset data;
  data.source = table.source;
  data.examples.reserve(table.rows.size());
  size_t empty_texts = 0;  // a single empty text is data; every text empty is the wrong column
  for (size_t r = 0; r < table.rows.size(); ++r) {
    ClassificationExample ex;
    ex.line = table.lines[r];
    const std::string text = join_columns(table, r, first, columns.delimiter);
    empty_texts += text.find_first_not_of(" \t\r\n") == std::string::npos ? 1 : 0;
    const TextTokens a = tokenize_for_classification(tokenizer, text, max_seq_length);
    if (pair) {
      const TextTokens b =
          tokenize_for_classification(tokenizer, join_columns(table, r, second, columns.delimiter), max_seq_length);
      ex.input = assemble_classification_input(a, &b, tokenizer.special_ids(), max_seq_length);
    } else {
      ex.input = assemble_classification_input(a, nullptr, tokenizer.special_ids(), max_seq_length);
    }
    if (label_column >= 0) {
      ex.label = label_target(*labels, table.rows[r][label_column], table.where(r));
      ex.has_label = true;
    }
    data.truncated_examples += ex.input.num_truncated > 0 ? 1 : 0;
    data.longest_input = std::max(data.longest_input, ex.input.input_ids.size());
    data.examples.push_back(std::move(ex));
  }
  if (!table.rows.empty() && empty_texts == table.rows.size()) {
    std::string names;
    for (const auto& c : columns.first) names += (names.empty() ? "'" : ", '") + c + "'";
    throw UsageError(table.source + ": the text column " + names + " is empty in every row");
  }
  return data;
}

}  // namespace mpibert::data
