#include "common/data/classification_labels.h"

#include <algorithm>
#include <cmath>
#include <set>

#include "common/error.h"

namespace mpibert::data {
namespace {

std::string_view trim_spaces(std::string_view s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string_view::npos) return {};
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

// The labels of a multi-label cell: a list's items, or a string's comma-separated parts.
std::vector<std::string> label_set(const Cell& cell, const std::string& where) {
  if (cell.kind == Cell::Kind::kList) return cell.items;
  if (cell.kind == Cell::Kind::kNumber) return {label_text(cell)};
  std::vector<std::string> out;
  size_t pos = 0;
  for (;;) {
    const size_t comma = cell.text.find(',', pos);
    const std::string_view part = trim_spaces(
        std::string_view(cell.text).substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
    if (part.empty()) throw UsageError(where + ": empty label in the comma-separated labels '" + cell.text + "'");
    out.emplace_back(part);
    if (comma == std::string::npos) return out;
    pos = comma + 1;
  }
}

bool parse_regression_value(const Cell& cell, float& value) {
  if (cell.kind == Cell::Kind::kNumber) {
    value = static_cast<float>(cell.number);
    return true;
  }
  Cell parsed;
  if (cell.kind != Cell::Kind::kString || !Cell::parse_number(trim_spaces(cell.text), parsed)) return false;
  value = static_cast<float>(parsed.number);
  return true;
}

void check_not_empty(const Cell& cell, const std::string& where) {
  // An empty list is a valid multi-label label (no label applies); an empty string is not a label.
  if (cell.kind == Cell::Kind::kString && cell.text.empty()) {
    throw UsageError(where + ": empty label");
  }
}

// Detects the problem type from the training labels (rules in the header).
ProblemType detect_problem_type(const Table& train, int column) {
  const auto first_of = [&](Cell::Kind kind) -> size_t {
    for (size_t r = 0; r < train.rows.size(); ++r) {
      if (train.rows[r][column].kind == kind) return r;
    }
    return train.rows.size();
  };
  const size_t n = train.rows.size();
  const size_t first_list = first_of(Cell::Kind::kList);
  const size_t first_number = first_of(Cell::Kind::kNumber);
  const size_t first_string = first_of(Cell::Kind::kString);
  const std::string name = "label column '" + train.columns[column] + "'";
  if (first_list < n && (first_number < n || first_string < n)) {
    const size_t single = std::min(first_number, first_string);
    throw UsageError(train.where(single) + ": a single label in a " + name + " that holds lists (at line " +
                     std::to_string(train.lines[first_list]) + "); a multi-label column holds lists only");
  }
  if (first_list < n) return ProblemType::kMultiLabel;
  if (first_number < n && first_string < n) {
    throw UsageError(train.where(first_string) + ": the " + name + " holds the string '" +
                     train.rows[first_string][column].text + "' and numbers (line " +
                     std::to_string(train.lines[first_number]) + "); a label column holds one kind");
  }
  for (const auto& row : train.rows) {
    if (row[column].kind == Cell::Kind::kNumber && !row[column].integral) return ProblemType::kRegression;
  }
  return ProblemType::kSingleLabel;
}

}  // namespace

const char* problem_type_name(ProblemType type) {
  switch (type) {
    case ProblemType::kSingleLabel:
      return "single_label_classification";
    case ProblemType::kMultiLabel:
      return "multi_label_classification";
    case ProblemType::kRegression:
      return "regression";
  }
  return "?";
}

ProblemType parse_problem_type(std::string_view name, const std::string& context) {
  for (ProblemType t : {ProblemType::kSingleLabel, ProblemType::kMultiLabel, ProblemType::kRegression}) {
    if (name == problem_type_name(t)) return t;
  }
  throw UsageError(context + ": unknown problem type '" + std::string(name) +
                   "'; valid: single_label_classification, multi_label_classification, regression");
}

int32_t LabelSpace::id_of(std::string_view label) const {
  const auto it = std::lower_bound(labels.begin(), labels.end(), label);
  return it != labels.end() && *it == label ? static_cast<int32_t>(it - labels.begin()) : -1;
}

std::string label_text(const Cell& cell) {
  if (cell.kind == Cell::Kind::kNumber && cell.integral && std::abs(cell.number) < 9.007199254740992e15) {
    return std::to_string(static_cast<int64_t>(cell.number));
  }
  return cell.text;
}

LabelSpace build_label_space(const Table& train, const std::string& label_column,
                             std::optional<ProblemType> problem_type) {
  const int column = train.column_index(label_column);
  if (column < 0) throw UsageError(train.source + ": no label column '" + label_column + "'");
  if (train.rows.empty()) throw UsageError(train.source + ": no rows, so no labels to learn");
  LabelSpace space;
  space.label_column = label_column;
  space.source = train.source;
  for (size_t r = 0; r < train.rows.size(); ++r) check_not_empty(train.rows[r][column], train.where(r));
  space.problem_type = problem_type ? *problem_type : detect_problem_type(train, column);
  if (space.problem_type == ProblemType::kRegression) {
    for (size_t r = 0; r < train.rows.size(); ++r) label_target(space, train.rows[r][column], train.where(r));
    return space;
  }
  std::set<std::string> distinct;
  for (size_t r = 0; r < train.rows.size(); ++r) {
    const Cell& cell = train.rows[r][column];
    if (space.problem_type == ProblemType::kMultiLabel) {
      for (std::string& l : label_set(cell, train.where(r))) distinct.insert(std::move(l));
    } else if (cell.kind == Cell::Kind::kList) {
      throw UsageError(train.where(r) + ": a list label [" + cell.text + "] in a single-label task");
    } else {
      distinct.insert(label_text(cell));
    }
  }
  space.labels.assign(distinct.begin(), distinct.end());  // std::set orders by bytes = code points
  if (space.labels.size() < 2) {
    throw UsageError(train.source + ": label column '" + label_column + "' has " + std::to_string(space.labels.size()) +
                     " distinct label(s)" + (space.labels.empty() ? "" : " ('" + space.labels[0] + "')") +
                     "; classification needs at least two");
  }
  return space;
}

LabelTarget label_target(const LabelSpace& space, const Cell& cell, const std::string& where) {
  check_not_empty(cell, where);
  LabelTarget target;
  const auto id_or_throw = [&](const std::string& label) {
    const int32_t id = space.id_of(label);
    if (id < 0) {
      throw UsageError(where + ": label '" + label + "' does not occur in the training data (" + space.source +
                       ", column '" + space.label_column + "')");
    }
    return id;
  };
  switch (space.problem_type) {
    case ProblemType::kRegression:
      if (!parse_regression_value(cell, target.value) || !std::isfinite(target.value)) {
        throw UsageError(where + ": regression label '" + cell.text + "' is not a finite number");
      }
      break;
    case ProblemType::kMultiLabel:
      target.multi_hot.assign(space.labels.size(), 0.0f);
      for (const std::string& label : label_set(cell, where)) target.multi_hot[id_or_throw(label)] = 1.0f;
      break;
    case ProblemType::kSingleLabel:
      if (cell.kind == Cell::Kind::kList) {
        throw UsageError(where + ": a list label [" + cell.text + "] in a single-label task");
      }
      target.class_id = id_or_throw(label_text(cell));
      break;
  }
  return target;
}

}  // namespace mpibert::data
