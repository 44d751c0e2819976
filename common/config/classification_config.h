#pragma once
// The configuration of run_classification: its own `data` section (Hugging Face run_classification's
// data arguments) and the model, train and dist sections shared with run_mlm (declared once, in
// shared_keys.h). Defaults live in the declarations.
#include <cstdint>
#include <map>
#include <string>

#include "common/config/run_config.h"
#include "common/config/schema.h"

namespace mpibert {

struct ClassificationDataConfig {
  std::string train_file{};  // CSV, TSV or JSON lines
  std::string validation_file{};
  std::string test_file{};          // may be unlabeled
  std::string text_column_names{};  // comma-separated; joined with text_column_delimiter unless sentence_pair
  std::string text_column_delimiter{};
  bool sentence_pair{};  // the two text columns as [CLS] a [SEP] b [SEP] with token types
  std::string label_column_name{};
  std::string
      problem_type{};  // "" = from the labels | single_label_classification | multi_label_classification | regression
  int64_t max_seq_length{};
  bool pad_to_max_length{};       // false: pad each batch to its longest example
  int64_t max_train_samples{};    // 0 = all
  int64_t max_predict_samples{};  // 0 = all
  bool shuffle_train_dataset{};   // shuffle once (seed) before max_train_samples
  std::string vocab_file{};       // vocab.txt when model.init_from is not given (random initialisation)
  bool lowercase{};               // when the vocabulary has no tokenizer_config.json beside it
};

struct ClassificationConfig {
  ClassificationDataConfig data;
  ModelConfig model;
  TrainConfig train;
  DistConfig dist;
};

const config::Schema<ClassificationConfig>& classification_schema();

}  // namespace mpibert
