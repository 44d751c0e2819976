// Label spaces: run_classification's rules for problem type, label list and order, and our
// errors for labels the training data lacks.
#include "common/data/classification_labels.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/error.h"
#include "tests/usage_error_of.h"

namespace mpibert::data {
namespace {

using mpibert::testing::usage_error_of;
using ::testing::HasSubstr;
using Strings = std::vector<std::string>;

Table csv(const std::string& text, const std::string& name = "train.csv") {
  return parse_table(text, TableFormat::kCsv, name);
}
Table jsonl(const std::string& text, const std::string& name = "train.jsonl") {
  return parse_table(text, TableFormat::kJsonLines, name);
}

TEST(ClassificationLabels, StringLabelsAreSortedUniqueValues) {
  const LabelSpace s = build_label_space(csv("text,label\na,pos\nb,neg\nc,neutral\nd,pos\n"), "label");
  EXPECT_EQ(s.problem_type, ProblemType::kSingleLabel);
  EXPECT_EQ(s.labels, (Strings{"neg", "neutral", "pos"}));
  EXPECT_EQ(s.num_outputs(), 3u);
  EXPECT_EQ(s.id_of("neutral"), 1);
  EXPECT_EQ(s.id_of("other"), -1);
}

TEST(ClassificationLabels, IntegerLabelsSortAsStringsLikePython) {
  std::string text = "text,label\n";
  for (int i = 0; i <= 10; ++i) text += "t," + std::to_string(i) + "\n";
  const LabelSpace s = build_label_space(csv(text), "label");
  EXPECT_EQ(s.problem_type, ProblemType::kSingleLabel);
  EXPECT_EQ(s.labels, (Strings{"0", "1", "10", "2", "3", "4", "5", "6", "7", "8", "9"}));
  // Uppercase sorts before lowercase, as code points do.
  EXPECT_EQ(build_label_space(csv("t,label\na,b\na,B\na,a\n"), "label").labels, (Strings{"B", "a", "b"}));
}

TEST(ClassificationLabels, IntegerLabelTextIsItsDecimalAsPandasReadsIt) {
  const Table t = csv("t,label\na,+3\nb,03\nc,-1\n");
  EXPECT_EQ(label_text(t.rows[0][1]), "3");
  EXPECT_EQ(label_text(t.rows[1][1]), "3");
  EXPECT_EQ(build_label_space(t, "label").labels, (Strings{"-1", "3"}));
}

TEST(ClassificationLabels, FloatLabelsMeanRegression) {
  const LabelSpace s = build_label_space(csv("t,score\na,1\nb,2.5\nc,4\n"), "score");
  EXPECT_EQ(s.problem_type, ProblemType::kRegression);
  EXPECT_TRUE(s.labels.empty());
  EXPECT_EQ(s.num_outputs(), 1u);
  EXPECT_EQ(label_target(s, Cell::string("3.25"), "v.csv:2").value, 3.25f);
  // JSON 1.0 is a float, so regression; JSON integers are classes.
  EXPECT_EQ(build_label_space(jsonl("{\"l\": 1.0}\n{\"l\": 2}\n"), "l").problem_type, ProblemType::kRegression);
  EXPECT_EQ(build_label_space(jsonl("{\"l\": 1}\n{\"l\": 2}\n"), "l").problem_type, ProblemType::kSingleLabel);
}

TEST(ClassificationLabels, ExplicitProblemTypeOverridesDetection) {
  const Table ints = csv("t,l\na,1\nb,2\n");
  const LabelSpace reg = build_label_space(ints, "l", ProblemType::kRegression);
  EXPECT_EQ(reg.problem_type, ProblemType::kRegression);
  EXPECT_EQ(label_target(reg, ints.rows[1][1], "x").value, 2.0f);
  const LabelSpace cls = build_label_space(csv("t,l\na,0.5\nb,1.5\n"), "l", ProblemType::kSingleLabel);
  EXPECT_EQ(cls.labels, (Strings{"0.5", "1.5"}));
  EXPECT_THAT(usage_error_of([] { build_label_space(csv("t,l\na,x\nb,y\n"), "l", ProblemType::kRegression); }),
              HasSubstr("train.csv:2: regression label 'x' is not a finite number"));
}

TEST(ClassificationLabels, ListLabelsMeanMultiLabel) {
  const Table t = jsonl(
      "{\"t\": \"a\", \"topics\": [\"grain\", \"corn\"]}\n{\"t\": \"b\", \"topics\": []}\n"
      "{\"t\": \"c\", \"topics\": [\"acq\"]}\n");
  const LabelSpace s = build_label_space(t, "topics");
  EXPECT_EQ(s.problem_type, ProblemType::kMultiLabel);
  EXPECT_EQ(s.labels, (Strings{"acq", "corn", "grain"}));
  EXPECT_EQ(label_target(s, t.rows[0][1], "x").multi_hot, (std::vector<float>{0, 1, 1}));
  EXPECT_EQ(label_target(s, t.rows[1][1], "x").multi_hot, (std::vector<float>{0, 0, 0}));  // no label applies
}

TEST(ClassificationLabels, CommaSeparatedStringsAreSplitOnlyWhenMultiLabelIsAsked) {
  const Table t = csv("t,labels\na,\"x, y\"\nb,z\nc,\"y,z\"\n");
  EXPECT_EQ(build_label_space(t, "labels").labels, (Strings{"x, y", "y,z", "z"}));  // single labels
  const LabelSpace multi = build_label_space(t, "labels", ProblemType::kMultiLabel);
  EXPECT_EQ(multi.labels, (Strings{"x", "y", "z"}));
  EXPECT_EQ(label_target(multi, t.rows[0][1], "x").multi_hot, (std::vector<float>{1, 1, 0}));
  EXPECT_THAT(usage_error_of([] { build_label_space(csv("t,l\na,\"x,,y\"\n"), "l", ProblemType::kMultiLabel); }),
              HasSubstr("train.csv:2: empty label in the comma-separated labels 'x,,y'"));
}

TEST(ClassificationLabels, ValidationLabelAbsentFromTrainingIsAnErrorNamingItAndWhere) {
  const LabelSpace s = build_label_space(csv("t,label\na,pos\nb,neg\n"), "label");
  const Table validation = csv("t,label\nc,pos\nd,meh\n", "validation.csv");
  EXPECT_EQ(label_target(s, validation.rows[0][1], validation.where(0)).class_id, 1);
  EXPECT_EQ(usage_error_of([&] { label_target(s, validation.rows[1][1], validation.where(1)); }),
            "validation.csv:3: label 'meh' does not occur in the training data (train.csv, column 'label')");
  const LabelSpace m = build_label_space(jsonl("{\"l\": [\"a\"]}\n{\"l\": [\"b\"]}\n"), "l");
  EXPECT_THAT(usage_error_of([&] {
                label_target(m, Cell::list({"a", "c"}), "v.jsonl:4");
              }),
              HasSubstr("v.jsonl:4: label 'c' does not occur in the training data"));
}

TEST(ClassificationLabels, BadTrainingLabelsAreErrors) {
  EXPECT_THAT(
      usage_error_of([] { build_label_space(csv("t,label\na,x\nb,x\n"), "label"); }),
      HasSubstr("train.csv: label column 'label' has 1 distinct label(s) ('x'); classification needs at least two"));
  EXPECT_THAT(usage_error_of([] { build_label_space(csv("t,label\na,x\nb,\n"), "label"); }),
              HasSubstr("train.csv:3: empty label"));
  EXPECT_THAT(usage_error_of([] { build_label_space(csv("t,label\n"), "label"); }), HasSubstr("train.csv: no rows"));
  EXPECT_THAT(usage_error_of([] { build_label_space(csv("t,y\na,b\n"), "label"); }),
              HasSubstr("train.csv: no label column 'label'"));
  EXPECT_THAT(usage_error_of([] { build_label_space(jsonl("{\"l\": [\"a\"]}\n{\"l\": \"b\"}\n"), "l"); }),
              HasSubstr("train.jsonl:2: a single label in a label column 'l' that holds lists (at line 1)"));
  EXPECT_THAT(usage_error_of([] { build_label_space(jsonl("{\"l\": 1}\n{\"l\": \"b\"}\n"), "l"); }),
              HasSubstr("train.jsonl:2: the label column 'l' holds the string 'b' and numbers (line 1)"));
  const LabelSpace s = build_label_space(csv("t,label\na,x\nb,y\n"), "label");
  EXPECT_THAT(usage_error_of([&] { label_target(s, Cell::list({"x"}), "v.jsonl:2"); }),
              HasSubstr("v.jsonl:2: a list label [x] in a single-label task"));
}

TEST(ClassificationLabels, ProblemTypeNames) {
  EXPECT_STREQ(problem_type_name(ProblemType::kMultiLabel), "multi_label_classification");
  EXPECT_EQ(parse_problem_type("regression", "cfg"), ProblemType::kRegression);
  EXPECT_EQ(parse_problem_type("single_label_classification", "cfg"), ProblemType::kSingleLabel);
  EXPECT_THAT(usage_error_of([] { parse_problem_type("binary", "task.problem_type"); }),
              HasSubstr("task.problem_type: unknown problem type 'binary'; valid: single_label_classification"));
}

}  // namespace
}  // namespace mpibert::data
