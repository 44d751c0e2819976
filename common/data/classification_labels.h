#pragma once
// Labels of a text-classification task, decided as Hugging Face's run_classification.py decides them:
//  - the problem type comes from the training labels unless it is given: a list label means
//    multi_label_classification, numbers with at least one float (1.5, 2.0, 1e3) mean regression,
//    anything else single_label_classification;
//  - the label list is every distinct training label as text (str(label): an integer is its decimal,
//    a string itself), sorted by code point as Python sorts strings ("10" < "2"); label id = index;
//  - multi-label labels are lists (JSON lines) or, when multi-label is asked for explicitly, strings
//    of comma-separated labels (each trimmed of spaces); a CSV string is never split unless asked,
//    because a single label may contain a comma;
//  - regression has no label list and one output.
// Unlike run_classification, which adds a validation/test label missing from training to the list,
// such a label is an error naming it, the file and the line: the classifier could never predict it.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/data/table_reader.h"

namespace mpibert::data {

enum class ProblemType { kSingleLabel, kMultiLabel, kRegression };

// The Hugging Face config.problem_type names: single_label_classification,
// multi_label_classification, regression.
const char* problem_type_name(ProblemType type);
// Parses one of those names; throws UsageError "<context>: unknown problem type 'x'; valid: ...".
ProblemType parse_problem_type(std::string_view name, const std::string& context);

struct LabelSpace {
  ProblemType problem_type = ProblemType::kSingleLabel;
  std::vector<std::string> labels;  // id -> label text, sorted; empty for regression
  std::string label_column;
  std::string source;  // the training file, for messages

  // Model outputs: the number of labels, 1 for regression.
  size_t num_outputs() const { return problem_type == ProblemType::kRegression ? 1 : labels.size(); }
  // The id of a label text, or -1.
  int32_t id_of(std::string_view label) const;
};

// What one example's label becomes for the loss.
struct LabelTarget {
  int32_t class_id = -1;         // single-label: the label id
  std::vector<float> multi_hot;  // multi-label: 1.0 at each label id, 0.0 elsewhere (BCE targets)
  float value = 0;               // regression: the number
};

// The text of a label cell as str(label) gives it in Python: an integer in decimal, else as written.
std::string label_text(const Cell& cell);

// Builds the label space from the training table's `label_column`. `problem_type` empty = detect it
// (rules above). Throws UsageError naming the file (and line) for: a missing label column, no rows,
// an empty label, a column mixing lists with single labels or numbers with strings, regression
// labels that are not numbers, and fewer than two distinct labels for classification.
LabelSpace build_label_space(const Table& train, const std::string& label_column,
                             std::optional<ProblemType> problem_type = std::nullopt);

// The loss target of one label cell; `where` is "FILE:LINE" for messages. Throws UsageError for a
// label absent from the training labels (naming the label, where, and the training file), an empty
// label, a list in a single-label task and a non-number in regression.
LabelTarget label_target(const LabelSpace& space, const Cell& cell, const std::string& where);

}  // namespace mpibert::data
