// Non-BERT baselines for the Brown genre tasks of scripts/fetch-corpus.sh, the bar a fine-tuned model
// has to clear. Torch-free and deterministic.
//   bench_cls_baselines [DATA_DIR] [--epochs N] [--seed S]   (--help lists the options)
// DATA_DIR (default data/brown-genres) holds {train,validation,test}.csv (task "genre", 15 classes)
// and {train,validation,test}-coarse.csv (task "coarse", 4 classes), columns text,label,doc_id.
// Per task, JSON lines:
//   cls_baseline model=majority     the most frequent training label, always
//   cls_baseline model=bow_logreg   multinomial logistic regression on a bag of words: lowercased
//                                   basic-tokenizer words seen in at least 2 training passages,
//                                   sublinear TF-IDF, each vector L2-normalised; softmax cross-entropy
//                                   + L2, Adam (lr 0.01, batch 64) for up to N epochs (default 20).
//                                   Model selection on validation macro-F1 over the L2 grid and epoch;
//                                   test scored once, with the selected weights.
// Scores: accuracy and macro-F1 (common/data/classification_metrics.h) on validation and test.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "bench/bench_args.h"
#include "common/data/basic_tokenizer.h"
#include "common/data/classification_labels.h"
#include "common/data/classification_metrics.h"
#include "common/data/table_reader.h"
#include "common/error.h"

using namespace mpibert;
using namespace mpibert::data;
using Clock = std::chrono::steady_clock;

namespace {

const char* const kSplits[] = {"train", "validation", "test"};
constexpr double kLearningRate = 0.01;
constexpr size_t kBatch = 64;
const double kL2Grid[] = {0.0, 1e-5, 1e-4, 1e-3};

struct Split {
  std::vector<std::string> texts;
  std::vector<int32_t> labels;
};

struct Task {
  std::string name;
  LabelSpace labels;
  Split splits[3];
};

Task load_task(const std::string& dir, const std::string& name, const std::string& suffix) {
  Task task;
  task.name = name;
  for (int s = 0; s < 3; ++s) {
    const Table table = read_table(dir + "/" + kSplits[s] + suffix + ".csv");
    if (s == 0) task.labels = build_label_space(table, "label", ProblemType::kSingleLabel);
    const int text = table.column_index("text"), label = table.column_index("label");
    if (text < 0) throw UsageError(table.source + ": no column 'text'");
    for (size_t r = 0; r < table.rows.size(); ++r) {
      task.splits[s].texts.push_back(table.rows[r][text].text);
      task.splits[s].labels.push_back(label_target(task.labels, table.rows[r][label], table.where(r)).class_id);
    }
  }
  return task;
}

// Rows of (feature index, value), CSR.
struct SparseRows {
  std::vector<size_t> begin{0};
  std::vector<int32_t> index;
  std::vector<float> value;
  size_t size() const { return begin.size() - 1; }
};

// Sublinear TF-IDF over the words of the training texts with document frequency >= 2.
class BagOfWords {
 public:
  explicit BagOfWords(const std::vector<std::string>& train) : basic_(true) {
    std::unordered_map<std::string, size_t> df;
    for (const std::string& text : train) {
      for (const auto& [word, count] : counts(text)) ++df[word];
    }
    std::map<std::string, size_t> kept;  // sorted: feature ids do not depend on hash order
    for (const auto& [word, n] : df) {
      if (n >= 2) kept.emplace(word, n);
    }
    for (const auto& [word, n] : kept) {
      ids_.emplace(word, static_cast<int32_t>(idf_.size()));
      idf_.push_back(static_cast<float>(std::log((1.0 + train.size()) / (1.0 + n)) + 1.0));
    }
  }
  size_t size() const { return idf_.size(); }

  SparseRows transform(const std::vector<std::string>& texts) const {
    SparseRows rows;
    for (const std::string& text : texts) {
      std::map<int32_t, float> features;
      for (const auto& [word, count] : counts(text)) {
        const auto it = ids_.find(word);
        if (it != ids_.end()) features[it->second] = (1.0f + std::log(static_cast<float>(count))) * idf_[it->second];
      }
      double norm = 0;
      for (const auto& [id, v] : features) norm += static_cast<double>(v) * v;
      const float scale = norm > 0 ? static_cast<float>(1.0 / std::sqrt(norm)) : 0.0f;
      for (const auto& [id, v] : features) {
        rows.index.push_back(id);
        rows.value.push_back(v * scale);
      }
      rows.begin.push_back(rows.index.size());
    }
    return rows;
  }

 private:
  std::map<std::string, int> counts(const std::string& text) const {
    std::map<std::string, int> c;
    for (std::string& w : basic_.split(text)) ++c[std::move(w)];
    return c;
  }

  BasicTokenizer basic_;
  std::unordered_map<std::string, int32_t> ids_;
  std::vector<float> idf_;
};

// Softmax regression: logits = x W + b, W stored feature-major [features][classes].
class LogisticRegression {
 public:
  LogisticRegression(size_t features, size_t classes, double l2)
      : c_(classes), l2_(l2), w_(features * classes, 0.0f), b_(classes, 0.0f) {
    m_.assign(w_.size() + c_, 0.0f);
    v_.assign(w_.size() + c_, 0.0f);
  }

  void logits(const SparseRows& x, size_t row, std::vector<float>& out) const {
    out.assign(b_.begin(), b_.end());
    for (size_t k = x.begin[row]; k < x.begin[row + 1]; ++k) {
      const float* w = &w_[static_cast<size_t>(x.index[k]) * c_];
      for (size_t j = 0; j < c_; ++j) out[j] += x.value[k] * w[j];
    }
  }

  int32_t predict(const SparseRows& x, size_t row) const {
    std::vector<float> z;
    logits(x, row, z);
    return static_cast<int32_t>(std::max_element(z.begin(), z.end()) - z.begin());
  }

  // One epoch of Adam over minibatches in `order`.
  void train_epoch(const SparseRows& x, const std::vector<int32_t>& y, const std::vector<size_t>& order) {
    std::vector<float> grad(w_.size() + c_), z;
    for (size_t start = 0; start < order.size(); start += kBatch) {
      const size_t end = std::min(order.size(), start + kBatch);
      std::fill(grad.begin(), grad.end(), 0.0f);
      const float inv = 1.0f / static_cast<float>(end - start);
      for (size_t i = start; i < end; ++i) {
        const size_t row = order[i];
        logits(x, row, z);
        softmax(z);
        z[y[row]] -= 1.0f;  // d(cross-entropy)/d(logits)
        for (size_t k = x.begin[row]; k < x.begin[row + 1]; ++k) {
          float* g = &grad[static_cast<size_t>(x.index[k]) * c_];
          for (size_t j = 0; j < c_; ++j) g[j] += inv * x.value[k] * z[j];
        }
        for (size_t j = 0; j < c_; ++j) grad[w_.size() + j] += inv * z[j];
      }
      adam_step(grad);
    }
  }

 private:
  static void softmax(std::vector<float>& z) {
    const float top = *std::max_element(z.begin(), z.end());
    float sum = 0;
    for (float& v : z) sum += (v = std::exp(v - top));
    for (float& v : z) v /= sum;
  }

  void adam_step(const std::vector<float>& grad) {
    constexpr double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    ++t_;
    const double c1 = 1 - std::pow(b1, t_), c2 = 1 - std::pow(b2, t_);
    const auto lr = static_cast<float>(kLearningRate * std::sqrt(c2) / c1);
    for (size_t i = 0; i < grad.size(); ++i) {
      float& p = i < w_.size() ? w_[i] : b_[i - w_.size()];
      const float g = grad[i] + (i < w_.size() ? static_cast<float>(l2_) * p : 0.0f);  // no decay on the bias
      m_[i] = static_cast<float>(b1) * m_[i] + static_cast<float>(1 - b1) * g;
      v_[i] = static_cast<float>(b2) * v_[i] + static_cast<float>(1 - b2) * g * g;
      p -= lr * m_[i] / (std::sqrt(v_[i]) + static_cast<float>(eps));
    }
  }

  size_t c_;
  double l2_;
  std::vector<float> w_, b_, m_, v_;
  int t_ = 0;
};

nlohmann::json scores_of(const std::vector<int32_t>& labels, const std::vector<int32_t>& predictions, size_t classes) {
  const ClassificationScores s = score_classification(labels, predictions, classes);
  return {{"accuracy", s.accuracy}, {"macro_f1", s.macro_f1}};
}

void majority_baseline(const Task& task) {
  std::vector<int64_t> counts(task.labels.labels.size(), 0);
  for (int32_t y : task.splits[0].labels) ++counts[y];
  const auto top = static_cast<int32_t>(std::max_element(counts.begin(), counts.end()) - counts.begin());
  nlohmann::json line = {{"bench", "cls_baseline"},
                         {"task", task.name},
                         {"model", "majority"},
                         {"label", task.labels.labels[top]},
                         {"classes", task.labels.labels.size()}};
  for (int s = 1; s < 3; ++s) {
    const auto& y = task.splits[s].labels;
    line[kSplits[s]] = scores_of(y, std::vector<int32_t>(y.size(), top), task.labels.labels.size());
  }
  std::cout << line.dump() << std::endl;
}

std::vector<int32_t> predict_all(const LogisticRegression& model, const SparseRows& x) {
  std::vector<int32_t> out(x.size());
  for (size_t r = 0; r < x.size(); ++r) out[r] = model.predict(x, r);
  return out;
}

void logreg_baseline(const Task& task, int epochs, uint64_t seed) {
  const auto t0 = Clock::now();
  const size_t classes = task.labels.labels.size();
  const BagOfWords bow(task.splits[0].texts);
  SparseRows x[3];
  for (int s = 0; s < 3; ++s) x[s] = bow.transform(task.splits[s].texts);
  nlohmann::json grid = nlohmann::json::array();
  double best_f1 = -1, best_l2 = 0;
  int best_epoch = 0;
  std::vector<int32_t> best_test, best_val;
  for (double l2 : kL2Grid) {
    LogisticRegression model(bow.size(), classes, l2);
    std::mt19937_64 rng(seed);
    std::vector<size_t> order(x[0].size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    double grid_best = -1;
    for (int epoch = 1; epoch <= epochs; ++epoch) {
      for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng() % i]);  // Fisher-Yates
      model.train_epoch(x[0], task.splits[0].labels, order);
      const std::vector<int32_t> val = predict_all(model, x[1]);
      const double f1 = score_classification(task.splits[1].labels, val, classes).macro_f1;
      grid_best = std::max(grid_best, f1);
      if (f1 > best_f1) {  // strictly better: ties keep the earlier (smaller l2, fewer epochs)
        best_f1 = f1;
        best_l2 = l2;
        best_epoch = epoch;
        best_val = val;
        best_test = predict_all(model, x[2]);  // scored only for the selected weights
      }
    }
    grid.push_back({{"l2", l2}, {"best_validation_macro_f1", grid_best}});
  }
  const ClassificationScores test = score_classification(task.splits[2].labels, best_test, classes);
  nlohmann::json per_class = nlohmann::json::object();
  for (size_t c = 0; c < classes; ++c) per_class[task.labels.labels[c]] = test.per_class[c].f1;
  const nlohmann::json line = {{"bench", "cls_baseline"},
                               {"task", task.name},
                               {"model", "bow_logreg"},
                               {"classes", classes},
                               {"features", bow.size()},
                               {"train_examples", x[0].size()},
                               {"l2", best_l2},
                               {"epochs", best_epoch},
                               {"validation", scores_of(task.splits[1].labels, best_val, classes)},
                               {"test", {{"accuracy", test.accuracy}, {"macro_f1", test.macro_f1}}},
                               {"test_f1_per_class", per_class},
                               {"grid", grid},
                               {"seconds", std::chrono::duration<double>(Clock::now() - t0).count()}};
  std::cout << line.dump() << std::endl;
}

struct Options {
  int64_t epochs = 0, seed = 0;
};

// function-size: table
config::Schema<Options> build_schema() {
  config::Schema<Options> s;
  s.add<int64_t>(
       "train.epochs", [](Options& o) -> int64_t& { return o.epochs; }, 20,
       "most epochs of the logistic regression (the best on validation is kept)")
      .range(1, 1e6)
      .alias("epochs");
  s.add<int64_t>(
       "train.seed", [](Options& o) -> int64_t& { return o.seed; }, 1234, "seed of the shuffles")
      .range(0, 9e18)
      .alias("seed");
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  return run_main("bench_cls_baselines", [&] {
    static const config::Schema<Options> schema = build_schema();
    Options o;
    const auto positionals = bench::parse_bench_args(
        schema, o, argc, argv,
        "bench_cls_baselines [DATA_DIR] [options]: majority-class and bag-of-words logistic-regression baselines\n"
        "of the Brown genre tasks; DATA_DIR (default data/brown-genres) from scripts/fetch-corpus.sh.",
        1);
    const std::string dir = positionals.empty() ? "data/brown-genres" : positionals[0];
    for (const auto& [name, suffix] : {std::pair<std::string, std::string>{"genre", ""}, {"coarse", "-coarse"}}) {
      const Task task = load_task(dir, name, suffix);
      majority_baseline(task);
      logreg_baseline(task, static_cast<int>(o.epochs), static_cast<uint64_t>(o.seed));
    }
    return 0;
  });
}
