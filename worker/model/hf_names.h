#pragma once
// The one table of Hugging Face tensor names, per head: what save_pretrained writes for
// BertForMaskedLM and BertForSequenceClassification (names, shapes, state_dict order), which names are
// tied aliases, which tensors other heads' checkpoints carry that a head skips, and which a head may
// initialise itself. The model, the export and the import all read it. Torch-free.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "worker/model/bert_config.h"

namespace mpibert::model {

// "BertForMaskedLM" | "BertForSequenceClassification" (config.json's architectures).
const char* hf_architecture(BertHead head);

struct HfTensor {
  std::string name;
  std::vector<int64_t> shape;
};

// What model.safetensors holds for the head, in Hugging Face's state_dict order: the encoder
// (bert.embeddings.*, bert.encoder.*), then bert.pooler.dense.* and classifier.* (classification,
// cfg.num_labels outputs) or cls.predictions.* (masked LM). Tied aliases and the position_ids /
// token_type_ids buffers are not listed (save_pretrained drops them; from_pretrained re-creates them).
std::vector<HfTensor> hf_tensors(const BertConfig& cfg, BertHead head);

// Tied alias -> the tensor save_pretrained keeps (masked LM: the decoder shares the word embeddings
// and cls.predictions.bias). Empty for classification.
const std::map<std::string, std::string>& hf_tied_aliases(BertHead head);

// Tensors checkpoints of other BERT heads carry that this head has no use for (skipped on import and
// listed in the log): buffers (*position_ids, bert.embeddings.token_type_ids), the pre-training heads
// (cls.*) or the pooler and classifier (masked LM).
bool hf_ignorable(const std::string& name, BertHead head);

// Tensors a head initialises itself when the source lacks them (a classifier, or a pooler, on top of
// a pre-trained encoder); everything else must be present.
bool hf_initialisable(const std::string& name, BertHead head);

}  // namespace mpibert::model
