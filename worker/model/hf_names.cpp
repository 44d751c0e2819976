#include "worker/model/hf_names.h"

namespace mpibert::model {
namespace {

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

void add_encoder(const BertConfig& c, std::vector<HfTensor>& out) {
  const int64_t H = c.hidden_size, I = c.intermediate_size;
  out.push_back({"bert.embeddings.word_embeddings.weight", {c.vocab_size, H}});
  out.push_back({"bert.embeddings.position_embeddings.weight", {c.max_position_embeddings, H}});
  out.push_back({"bert.embeddings.token_type_embeddings.weight", {c.type_vocab_size, H}});
  out.push_back({"bert.embeddings.LayerNorm.weight", {H}});
  out.push_back({"bert.embeddings.LayerNorm.bias", {H}});
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "bert.encoder.layer." + std::to_string(i) + ".";
    for (const char* qkv : {"query", "key", "value"}) {
      out.push_back({p + "attention.self." + qkv + ".weight", {H, H}});
      out.push_back({p + "attention.self." + qkv + ".bias", {H}});
    }
    out.push_back({p + "attention.output.dense.weight", {H, H}});
    out.push_back({p + "attention.output.dense.bias", {H}});
    out.push_back({p + "attention.output.LayerNorm.weight", {H}});
    out.push_back({p + "attention.output.LayerNorm.bias", {H}});
    out.push_back({p + "intermediate.dense.weight", {I, H}});
    out.push_back({p + "intermediate.dense.bias", {I}});
    out.push_back({p + "output.dense.weight", {H, I}});
    out.push_back({p + "output.dense.bias", {H}});
    out.push_back({p + "output.LayerNorm.weight", {H}});
    out.push_back({p + "output.LayerNorm.bias", {H}});
  }
}

bool is_buffer(const std::string& name) {
  return ends_with(name, "position_ids") || name == "bert.embeddings.token_type_ids";
}

}  // namespace

const char* hf_architecture(BertHead head) {
  return head == BertHead::MaskedLM ? "BertForMaskedLM" : "BertForSequenceClassification";
}

std::vector<HfTensor> hf_tensors(const BertConfig& c, BertHead head) {
  const int64_t H = c.hidden_size;
  std::vector<HfTensor> out;
  add_encoder(c, out);
  if (head == BertHead::MaskedLM) {
    // HF registers cls.predictions.bias before the transform; the decoder is tied and left out.
    out.push_back({"cls.predictions.bias", {c.vocab_size}});
    out.push_back({"cls.predictions.transform.dense.weight", {H, H}});
    out.push_back({"cls.predictions.transform.dense.bias", {H}});
    out.push_back({"cls.predictions.transform.LayerNorm.weight", {H}});
    out.push_back({"cls.predictions.transform.LayerNorm.bias", {H}});
  } else {
    out.push_back({"bert.pooler.dense.weight", {H, H}});
    out.push_back({"bert.pooler.dense.bias", {H}});
    out.push_back({"classifier.weight", {c.num_labels, H}});
    out.push_back({"classifier.bias", {c.num_labels}});
  }
  return out;
}

const std::map<std::string, std::string>& hf_tied_aliases(BertHead head) {
  static const std::map<std::string, std::string> mlm = {
      {"cls.predictions.decoder.weight", "bert.embeddings.word_embeddings.weight"},
      {"cls.predictions.decoder.bias", "cls.predictions.bias"}};
  static const std::map<std::string, std::string> none;
  return head == BertHead::MaskedLM ? mlm : none;
}

bool hf_ignorable(const std::string& name, BertHead head) {
  if (is_buffer(name)) return true;
  if (head == BertHead::MaskedLM)
    return starts_with(name, "bert.pooler.") || starts_with(name, "cls.seq_relationship.") ||
           starts_with(name, "classifier.");
  return starts_with(name, "cls.");
}

bool hf_initialisable(const std::string& name, BertHead head) {
  return head == BertHead::SequenceClassification &&
         (starts_with(name, "bert.pooler.") || starts_with(name, "classifier."));
}

}  // namespace mpibert::model
