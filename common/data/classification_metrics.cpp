#include "common/data/classification_metrics.h"

#include <stdexcept>

namespace mpibert::data {
namespace {

double ratio(int64_t num, int64_t den) {
  return den == 0 ? 0.0 : static_cast<double>(num) / static_cast<double>(den);
}

double f1_of(double precision, double recall) {
  return precision + recall == 0 ? 0.0 : 2 * precision * recall / (precision + recall);
}

}  // namespace

ConfusionMatrix::ConfusionMatrix(size_t num_classes) : n_(num_classes), counts_(num_classes * num_classes, 0) {}

void ConfusionMatrix::add(int64_t label, int64_t prediction) {
  const auto n = static_cast<int64_t>(n_);
  if (label < 0 || label >= n || prediction < 0 || prediction >= n) {
    throw std::out_of_range("ConfusionMatrix::add: label " + std::to_string(label) + " / prediction " +
                            std::to_string(prediction) + " outside [0, " + std::to_string(n_) + ")");
  }
  ++counts_[static_cast<size_t>(label) * n_ + static_cast<size_t>(prediction)];
}

void ConfusionMatrix::merge(const ConfusionMatrix& other) {
  if (other.n_ != n_) throw std::invalid_argument("ConfusionMatrix::merge: different numbers of classes");
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
}

int64_t ConfusionMatrix::total() const {
  int64_t sum = 0;
  for (int64_t c : counts_) sum += c;
  return sum;
}

ClassificationScores score_classification(const ConfusionMatrix& confusion) {
  const size_t n = confusion.num_classes();
  ClassificationScores s;
  s.total = confusion.total();
  s.per_class.resize(n);
  int64_t correct = 0;
  for (size_t label = 0; label < n; ++label) {
    correct += confusion.at(label, label);
    for (size_t pred = 0; pred < n; ++pred) {
      s.per_class[label].support += confusion.at(label, pred);
      s.per_class[pred].predicted += confusion.at(label, pred);
    }
  }
  s.accuracy = ratio(correct, s.total);
  for (size_t c = 0; c < n; ++c) {
    ClassScores& k = s.per_class[c];
    const int64_t tp = confusion.at(c, c);
    k.precision = ratio(tp, k.predicted);
    k.recall = ratio(tp, k.support);
    k.f1 = f1_of(k.precision, k.recall);
    if (k.support == 0 && k.predicted == 0) continue;  // in neither labels nor predictions
    ++s.classes_in_average;
    s.macro_precision += k.precision;
    s.macro_recall += k.recall;
    s.macro_f1 += k.f1;
    s.weighted_f1 += k.f1 * static_cast<double>(k.support);
  }
  if (s.classes_in_average > 0) {
    const auto m = static_cast<double>(s.classes_in_average);
    s.macro_precision /= m;
    s.macro_recall /= m;
    s.macro_f1 /= m;
  }
  s.weighted_f1 = s.total == 0 ? 0.0 : s.weighted_f1 / static_cast<double>(s.total);
  return s;
}

ClassificationScores score_classification(const std::vector<int32_t>& labels, const std::vector<int32_t>& predictions,
                                          size_t num_classes) {
  if (labels.size() != predictions.size()) {
    throw std::invalid_argument("score_classification: " + std::to_string(labels.size()) + " labels but " +
                                std::to_string(predictions.size()) + " predictions");
  }
  ConfusionMatrix confusion(num_classes);
  for (size_t i = 0; i < labels.size(); ++i) confusion.add(labels[i], predictions[i]);
  return score_classification(confusion);
}

nlohmann::json scores_to_json(const ClassificationScores& scores, const ConfusionMatrix& confusion,
                              const std::vector<std::string>& names) {
  nlohmann::json per_class = nlohmann::json::object();
  nlohmann::json matrix = nlohmann::json::array();
  for (size_t c = 0; c < scores.per_class.size(); ++c) {
    const ClassScores& k = scores.per_class[c];
    const std::string name = c < names.size() ? names[c] : std::to_string(c);
    per_class[name] = {{"precision", k.precision},
                       {"recall", k.recall},
                       {"f1", k.f1},
                       {"support", k.support},
                       {"predicted", k.predicted}};
    nlohmann::json row = nlohmann::json::array();
    for (size_t p = 0; p < confusion.num_classes(); ++p) row.push_back(confusion.at(c, p));
    matrix.push_back(row);
  }
  return {{"accuracy", scores.accuracy},
          {"macro_f1", scores.macro_f1},
          {"macro_precision", scores.macro_precision},
          {"macro_recall", scores.macro_recall},
          {"weighted_f1", scores.weighted_f1},
          {"total", scores.total},
          {"per_class", per_class},
          {"confusion", matrix}};
}

MultiLabelScores score_multi_label(const std::vector<std::vector<float>>& targets,
                                   const std::vector<std::vector<float>>& predictions) {
  if (targets.size() != predictions.size()) throw std::invalid_argument("score_multi_label: size mismatch");
  MultiLabelScores s;
  for (size_t i = 0; i < targets.size(); ++i) {
    if (targets[i].size() != predictions[i].size()) throw std::invalid_argument("score_multi_label: size mismatch");
    for (size_t j = 0; j < targets[i].size(); ++j) {
      const bool t = targets[i][j] > 0.5f, p = predictions[i][j] > 0.5f;
      s.true_positives += t && p;
      s.false_positives += !t && p;
      s.false_negatives += t && !p;
    }
  }
  s.micro_precision = ratio(s.true_positives, s.true_positives + s.false_positives);
  s.micro_recall = ratio(s.true_positives, s.true_positives + s.false_negatives);
  s.micro_f1 = f1_of(s.micro_precision, s.micro_recall);
  return s;
}

double mean_squared_error(const std::vector<float>& targets, const std::vector<float>& predictions) {
  if (targets.size() != predictions.size()) throw std::invalid_argument("mean_squared_error: size mismatch");
  double sum = 0;
  for (size_t i = 0; i < targets.size(); ++i) {
    const double d = static_cast<double>(predictions[i]) - targets[i];
    sum += d * d;
  }
  return targets.empty() ? 0.0 : sum / static_cast<double>(targets.size());
}

}  // namespace mpibert::data
