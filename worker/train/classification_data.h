#pragma once
// The data of a sequence-classification run: rank 0 reads the train / validation / test files (CSV,
// TSV, JSON lines), decides the labels (run_classification's rules, or the model's labels when not
// training), tokenises every example with the model's vocabulary (pairs with token types, truncation
// as BertTokenizerFast), and broadcasts the encoded examples; errors are agreed by every rank.
#include <optional>
#include <string>

#include "common/config/classification_config.h"
#include "common/data/classification_labels.h"
#include "common/data/text_classification.h"
#include "common/data/wordpiece.h"
#include "worker/model/bert_config.h"
#include "worker/train/run_context.h"

namespace mpibert::train {

struct ClassificationData {
  data::LabelSpace labels;  // label ids as the model numbers them
  data::ClassificationDataset train, validation, test;
  std::string vocab_path;  // rank 0's
  bool lowercase = true;
  int64_t vocab_size = 0;
  data::SpecialIds special;
  bool pairs = false;
  std::string fingerprint;  // SHA-256 of the training file (its encoded examples depend on nothing else here)
};

// `pretrained` is the init_from model's config (its labels are kept when the training labels are the
// same set, and are the labels when not training), or null for a model from model.preset.
ClassificationData load_classification_data(RunContext& ctx, const ClassificationConfig& cfg,
                                            const model::BertConfig* pretrained);

}  // namespace mpibert::train
