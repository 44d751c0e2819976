#include "common/config/classification_config.h"

#include "common/config/shared_keys.h"

namespace mpibert {
namespace {

using config::Schema;
using R = ClassificationConfig;

// data.*: run_classification's data arguments, with Hugging Face's names as aliases.
// function-size: table
void declare_data_keys(Schema<R>& s) {
  s.add<std::string>(
       "data.train_file", [](R& c) -> std::string& { return c.data.train_file; }, "",
       "training data: .csv, .tsv, .json or .jsonl")
      .alias("train_file");
  s.add<std::string>(
       "data.validation_file", [](R& c) -> std::string& { return c.data.validation_file; }, "",
       "evaluation data, same columns")
      .alias("validation_file");
  s.add<std::string>(
       "data.test_file", [](R& c) -> std::string& { return c.data.test_file; }, "",
       "prediction data (do_predict); its labels, if any, are scored")
      .alias("test_file");
  s.add<std::string>(
       "data.text_column_names", [](R& c) -> std::string& { return c.data.text_column_names; }, "sentence",
       "text column(s), comma-separated; joined with text_column_delimiter, or the two "
       "texts of a pair with sentence_pair")
      .alias("text_column_names")
      .alias("text_column_name");
  s.add<std::string>(
       "data.text_column_delimiter", [](R& c) -> std::string& { return c.data.text_column_delimiter; }, " ",
       "what joins several text columns into one text")
      .alias("text_column_delimiter");
  s.add<bool>(
       "data.sentence_pair", [](R& c) -> bool& { return c.data.sentence_pair; }, false,
       "the two text columns are a pair: [CLS] a [SEP] b [SEP] with token types 0 and 1")
      .alias("sentence_pair");
  s.add<std::string>(
       "data.label_column_name", [](R& c) -> std::string& { return c.data.label_column_name; }, "label", "label column")
      .alias("label_column_name");
  s.add<std::string>(
       "data.problem_type", [](R& c) -> std::string& { return c.data.problem_type; }, "",
       "\"\" = from the labels (lists: multi-label, floats: regression, else single-label)")
      .one_of({"", "single_label_classification", "multi_label_classification", "regression"})
      .alias("problem_type");
  s.add<int64_t>(
       "data.max_seq_length", [](R& c) -> int64_t& { return c.data.max_seq_length; }, 128,
       "tokens per example after truncation, [CLS] and [SEP] included")
      .range(3, 65536)
      .alias("max_seq_length");
  s.add<bool>(
       "data.pad_to_max_length", [](R& c) -> bool& { return c.data.pad_to_max_length; }, false,
       "pad every batch to max_seq_length (default: to its longest example)")
      .alias("pad_to_max_length");
  s.add<int64_t>(
       "data.max_train_samples", [](R& c) -> int64_t& { return c.data.max_train_samples; }, 0,
       "use only the first N training examples (after shuffle_train_dataset; 0 = all)")
      .range(0, 1e12)
      .alias("max_train_samples");
  s.add<int64_t>(
       "data.max_predict_samples", [](R& c) -> int64_t& { return c.data.max_predict_samples; }, 0,
       "predict only the first N test examples (0 = all)")
      .range(0, 1e12)
      .alias("max_predict_samples");
  s.add<bool>(
       "data.shuffle_train_dataset", [](R& c) -> bool& { return c.data.shuffle_train_dataset; }, false,
       "shuffle the training examples once (train.seed) before max_train_samples")
      .alias("shuffle_train_dataset");
  s.add<std::string>(
       "data.vocab_file", [](R& c) -> std::string& { return c.data.vocab_file; }, "",
       "vocab.txt for a model built from model.preset (with init_from, the model's own is used)")
      .alias("tokenizer_name");
  s.add<bool>(
      "data.lowercase", [](R& c) -> bool& { return c.data.lowercase; }, true,
      "uncased text, when the vocabulary has no tokenizer_config.json beside it");
}

// function-size: table
Schema<R> build_schema() {
  Schema<R> s;
  declare_data_keys(s);
  config::declare_model_keys(s);
  config::declare_train_keys(s);
  s.add<bool>(
       "train.do_predict", [](R& c) -> bool& { return c.train.do_predict; }, false,
       "predict the test file (predict_results.txt, test_results.json)")
      .alias("do_predict");
  config::declare_dist_keys(s);
  // Fine-tuning runs are short: Hugging Face's save_steps, more frequent progress lines.
  s.set_default("train.output_dir", "runs/classification");
  s.set_default("train.logging_steps", "50");
  s.set_default("train.save_steps", "500");
  return s;
}

}  // namespace

const config::Schema<ClassificationConfig>& classification_schema() {
  static const Schema<ClassificationConfig> schema = build_schema();
  return schema;
}

}  // namespace mpibert
