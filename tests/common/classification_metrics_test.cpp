// Classification metrics on hand-computed cases (the values scikit-learn's accuracy_score,
// precision_recall_fscore_support and f1_score(average="macro") give for the same inputs).
#include "common/data/classification_metrics.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

namespace mpibert::data {
namespace {

using Ints = std::vector<int32_t>;

TEST(ClassificationMetrics, HandComputedThreeClassCase) {
  // labels 0 0 1 1 2 2, predictions 0 1 1 1 0 2:
  //   class 0: TP 1, predicted 2, support 2 -> P 1/2, R 1/2, F1 1/2
  //   class 1: TP 2, predicted 3, support 2 -> P 2/3, R 1,   F1 0.8
  //   class 2: TP 1, predicted 1, support 2 -> P 1,   R 1/2, F1 2/3
  const ClassificationScores s = score_classification(Ints{0, 0, 1, 1, 2, 2}, Ints{0, 1, 1, 1, 0, 2}, 3);
  EXPECT_EQ(s.total, 6);
  EXPECT_DOUBLE_EQ(s.accuracy, 4.0 / 6);
  EXPECT_DOUBLE_EQ(s.per_class[0].precision, 0.5);
  EXPECT_DOUBLE_EQ(s.per_class[1].precision, 2.0 / 3);
  EXPECT_DOUBLE_EQ(s.per_class[1].recall, 1.0);
  EXPECT_DOUBLE_EQ(s.per_class[1].f1, 0.8);
  EXPECT_DOUBLE_EQ(s.per_class[2].f1, 2.0 / 3);
  EXPECT_EQ(s.per_class[1].predicted, 3);
  EXPECT_EQ(s.per_class[2].support, 2);
  EXPECT_EQ(s.classes_in_average, 3u);
  EXPECT_DOUBLE_EQ(s.macro_f1, (0.5 + 0.8 + 2.0 / 3) / 3);
  EXPECT_DOUBLE_EQ(s.macro_precision, (0.5 + 2.0 / 3 + 1) / 3);
  EXPECT_DOUBLE_EQ(s.macro_recall, (0.5 + 1 + 0.5) / 3);
  EXPECT_DOUBLE_EQ(s.weighted_f1, s.macro_f1);  // equal supports
}

TEST(ClassificationMetrics, ClassNeverPredictedCountsWithZeroPrecision) {
  // labels 0 1 2 2, predictions 0 1 1 1: class 2 is never predicted -> P 0, R 0, F1 0, still averaged.
  const ClassificationScores s = score_classification(Ints{0, 1, 2, 2}, Ints{0, 1, 1, 1}, 3);
  EXPECT_DOUBLE_EQ(s.per_class[2].precision, 0.0);
  EXPECT_DOUBLE_EQ(s.per_class[2].recall, 0.0);
  EXPECT_EQ(s.per_class[2].predicted, 0);
  EXPECT_DOUBLE_EQ(s.per_class[1].f1, 0.5);  // P 1/3, R 1
  EXPECT_EQ(s.classes_in_average, 3u);
  EXPECT_DOUBLE_EQ(s.macro_f1, (1 + 0.5 + 0) / 3);
  EXPECT_DOUBLE_EQ(s.accuracy, 0.5);
  EXPECT_DOUBLE_EQ(s.weighted_f1, (1 * 1 + 0.5 * 1 + 0 * 2) / 4.0);
}

TEST(ClassificationMetrics, ClassAbsentFromLabelsCountsIfPredictedAndIsLeftOutOtherwise) {
  // 4 classes; labels 0 0 1 1, predictions 0 3 1 1. Class 3 is predicted but never a label: recall 0,
  // F1 0, averaged. Class 2 is in neither: left out of the macro averages (as scikit-learn does).
  const ClassificationScores s = score_classification(Ints{0, 0, 1, 1}, Ints{0, 3, 1, 1}, 4);
  EXPECT_EQ(s.per_class[3].support, 0);
  EXPECT_EQ(s.per_class[3].predicted, 1);
  EXPECT_DOUBLE_EQ(s.per_class[3].f1, 0.0);
  EXPECT_EQ(s.per_class[2].support + s.per_class[2].predicted, 0);
  EXPECT_EQ(s.classes_in_average, 3u);
  EXPECT_DOUBLE_EQ(s.macro_f1, (2.0 / 3 + 1 + 0) / 3);
  EXPECT_DOUBLE_EQ(s.macro_recall, (0.5 + 1 + 0) / 3);
}

TEST(ClassificationMetrics, ConfusionMatrixCountsMergesAndRejectsBadClasses) {
  ConfusionMatrix a(2), b(2);
  a.add(0, 1);
  a.add(1, 1);
  b.add(0, 1);
  b.add(0, 0);
  a.merge(b);
  EXPECT_EQ(a.at(0, 1), 2);
  EXPECT_EQ(a.at(0, 0), 1);
  EXPECT_EQ(a.at(1, 1), 1);
  EXPECT_EQ(a.total(), 4);
  EXPECT_EQ(a.counts(), (std::vector<int64_t>{1, 2, 0, 1}));  // row-major [label][prediction]
  EXPECT_THROW(a.add(2, 0), std::out_of_range);
  EXPECT_THROW(a.add(0, -1), std::out_of_range);
  EXPECT_THROW(a.merge(ConfusionMatrix(3)), std::invalid_argument);
  EXPECT_THROW(score_classification(Ints{0}, Ints{0, 1}, 2), std::invalid_argument);
}

TEST(ClassificationMetrics, NoExamplesGiveZeros) {
  const ClassificationScores s = score_classification(ConfusionMatrix(3));
  EXPECT_EQ(s.total, 0);
  EXPECT_EQ(s.accuracy, 0.0);
  EXPECT_EQ(s.macro_f1, 0.0);
  EXPECT_EQ(s.classes_in_average, 0u);
}

TEST(ClassificationMetrics, JsonHasScoresPerClassByNameAndTheConfusionMatrix) {
  ConfusionMatrix m(2);
  m.add(0, 0);
  m.add(1, 0);
  const nlohmann::json j = scores_to_json(score_classification(m), m, {"neg", "pos"});
  EXPECT_DOUBLE_EQ(j.at("accuracy").get<double>(), 0.5);
  EXPECT_EQ(j.at("per_class").at("pos").at("support"), 1);
  EXPECT_EQ(j.at("per_class").at("neg").at("predicted"), 2);
  EXPECT_EQ(j.at("confusion"), nlohmann::json::parse("[[1,0],[1,0]]"));
  EXPECT_TRUE(scores_to_json(score_classification(m), m).at("per_class").contains("1"));
}

TEST(ClassificationMetrics, MultiLabelMicroF1AndMeanSquaredError) {
  // Targets / predictions over 3 labels: TP = 2 (ex0 l0, ex1 l2), FP = 1 (ex0 l1), FN = 1 (ex1 l0).
  const MultiLabelScores s = score_multi_label({{1, 0, 0}, {1, 0, 1}}, {{1, 1, 0}, {0, 0, 1}});
  EXPECT_EQ(s.true_positives, 2);
  EXPECT_EQ(s.false_positives, 1);
  EXPECT_EQ(s.false_negatives, 1);
  EXPECT_DOUBLE_EQ(s.micro_precision, 2.0 / 3);
  EXPECT_DOUBLE_EQ(s.micro_f1, 2.0 / 3);
  EXPECT_DOUBLE_EQ(mean_squared_error({1, 2, 3}, {1, 4, 2}), 5.0 / 3);
  EXPECT_EQ(mean_squared_error({}, {}), 0.0);
  EXPECT_THROW(mean_squared_error({1}, {}), std::invalid_argument);
}

}  // namespace
}  // namespace mpibert::data
