#pragma once
// Evaluation metrics of a classifier, torch-free. Counts live in a confusion matrix of int64 so that
// ranks can sum theirs (an all-reduce of counts()) before the scores are computed once.
//
// Per class c: precision = TP / (TP + FP), recall = TP / (TP + FN), F1 = 2PR / (P + R); a zero
// denominator gives 0 (scikit-learn's zero_division=0). Macro averages run over the classes that
// occur in the labels or in the predictions (scikit-learn's default `labels`): a class that is never
// predicted but occurs counts with precision 0; a class that never occurs but is predicted counts
// with recall 0; a class in neither is left out. Accuracy = trace / total (0 for no examples).
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mpibert::data {

class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(size_t num_classes);

  // Counts one example. Throws std::out_of_range for a class outside [0, num_classes).
  void add(int64_t label, int64_t prediction);
  void merge(const ConfusionMatrix& other);  // throws std::invalid_argument on a size mismatch

  size_t num_classes() const { return n_; }
  int64_t at(size_t label, size_t prediction) const { return counts_[label * n_ + prediction]; }
  int64_t total() const;
  // Row-major [label][prediction], for summing across ranks.
  std::vector<int64_t>& counts() { return counts_; }
  const std::vector<int64_t>& counts() const { return counts_; }

 private:
  size_t n_;
  std::vector<int64_t> counts_;
};

struct ClassScores {
  double precision = 0, recall = 0, f1 = 0;
  int64_t support = 0;    // examples with this label
  int64_t predicted = 0;  // examples predicted as this class
};

struct ClassificationScores {
  int64_t total = 0;
  double accuracy = 0;
  double macro_precision = 0, macro_recall = 0, macro_f1 = 0;
  double weighted_f1 = 0;         // F1 averaged with weights = support
  size_t classes_in_average = 0;  // classes the macro averages run over
  std::vector<ClassScores> per_class;
};

ClassificationScores score_classification(const ConfusionMatrix& confusion);

// Convenience: scores of parallel label / prediction vectors (sizes must match).
ClassificationScores score_classification(const std::vector<int32_t>& labels, const std::vector<int32_t>& predictions,
                                          size_t num_classes);

// {"accuracy", "macro_f1", "macro_precision", "macro_recall", "weighted_f1", "total",
//  "per_class": {name: {"precision","recall","f1","support","predicted"}}, "confusion": [[...]]}
// with class names from `names` (size num_classes; empty = the ids as text).
nlohmann::json scores_to_json(const ClassificationScores& scores, const ConfusionMatrix& confusion,
                              const std::vector<std::string>& names = {});

// Multi-label scores from 0/1 targets and 0/1 predictions, micro-averaged over all (example, label)
// cells as run_classification reports them (evaluate "f1", config multilabel, average="micro").
struct MultiLabelScores {
  int64_t true_positives = 0, false_positives = 0, false_negatives = 0;
  double micro_precision = 0, micro_recall = 0, micro_f1 = 0;
};
MultiLabelScores score_multi_label(const std::vector<std::vector<float>>& targets,
                                   const std::vector<std::vector<float>>& predictions);

// Mean squared error, run_classification's regression metric (0 for no examples).
double mean_squared_error(const std::vector<float>& targets, const std::vector<float>& predictions);

}  // namespace mpibert::data
