#include "worker/io/hf_export.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <map>
#include <set>
#include <stdexcept>

#include "common/error.h"
#include "common/io/hf_tokenizer_files.h"
#include "common/io/json_file.h"
#include "common/log/progress.h"
#include "worker/io/tensor_io.h"
#include "worker/model/hf_state.h"

namespace mpibert::io {

namespace {

namespace fs = std::filesystem;

std::string shape_text(const std::vector<int64_t>& shape) {
  return c10::str(c10::IntArrayRef(shape));
}

}  // namespace

torch::ScalarType parse_save_dtype(const std::string& save_dtype) {
  if (save_dtype == "f32" || save_dtype == "float32") return torch::kFloat32;
  if (save_dtype == "bf16" || save_dtype == "bfloat16") return torch::kBFloat16;
  throw UsageError("save dtype '" + save_dtype + "' is not supported; valid: f32, bf16");
}

// The tensors Hugging Face's architecture has, in its order, each checked (shape, dtype, finite). A
// progress line counts them: checking every weight of a large model takes a moment.
static std::vector<std::pair<std::string, torch::Tensor>> checked_tensors(
    const model::BertConfig& cfg, model::BertHead head, const std::map<std::string, torch::Tensor>& by_name,
    const std::string& out_dir) {
  const auto wanted = model::hf_tensors(cfg, head);
  Progress progress("export", static_cast<int64_t>(wanted.size()), "tensors checked", true);
  std::vector<std::pair<std::string, torch::Tensor>> to_save;
  std::set<std::string> expected;
  for (const auto& [name, shape] : wanted) {
    expected.insert(name);
    auto it = by_name.find(name);
    if (it == by_name.end()) throw std::runtime_error("export: the model state has no tensor '" + name + "'");
    if (it->second.sizes().vec() != shape) {
      throw std::runtime_error("export: tensor '" + name + "' has shape " + c10::str(it->second.sizes()) +
                               " but the config implies " + shape_text(shape));
    }
    if (!c10::isFloatingType(it->second.scalar_type())) {
      throw std::runtime_error("export: tensor '" + name + "' has non-floating dtype " +
                               c10::toString(it->second.scalar_type()));
    }
    model::check_finite(name, it->second, "export to " + out_dir);  // never write NaN weights
    to_save.emplace_back(name, it->second);
    progress.update(static_cast<int64_t>(to_save.size()));
  }
  for (const auto& [name, tensor] : by_name) {
    if (!expected.count(name)) {
      throw std::runtime_error("export: unexpected tensor '" + name + "' (not part of Hugging Face's " +
                               model::hf_architecture(head) + ")");
    }
  }
  progress.finish();
  return to_save;
}

void export_hf_model(const std::string& out_dir, const model::BertConfig& cfg,
                     std::vector<std::pair<std::string, torch::Tensor>> hf_state, const std::string& vocab_path,
                     bool lowercase, const std::string& save_dtype, model::BertHead head) {
  const torch::ScalarType dtype = parse_save_dtype(save_dtype);
  model::validate(cfg, "export to " + out_dir);

  // The vocabulary must fit the model before anything is written.
  const std::vector<std::string> vocab = read_hf_vocab(vocab_path);
  if (static_cast<int64_t>(vocab.size()) > cfg.vocab_size) {
    throw UsageError("vocabulary file " + vocab_path + " has " + std::to_string(vocab.size()) +
                     " tokens but the model's vocab_size is " + std::to_string(cfg.vocab_size));
  }
  if (static_cast<int64_t>(vocab.size()) < cfg.vocab_size) {
    spdlog::warn("export: {} has {} tokens, the model {} (ids past the vocabulary are never produced)", vocab_path,
                 vocab.size(), cfg.vocab_size);
  }

  // Keep exactly what save_pretrained keeps: drop tied aliases, check names and shapes.
  std::map<std::string, torch::Tensor> by_name;
  for (auto& [name, tensor] : hf_state) {
    if (!by_name.emplace(name, tensor).second) throw std::runtime_error("export: tensor '" + name + "' given twice");
  }
  for (const auto& [alias, primary] : model::hf_tied_aliases(head)) {
    auto it = by_name.find(alias);
    if (it == by_name.end()) continue;
    auto p = by_name.find(primary);
    if (p == by_name.end()) {
      by_name[primary] = it->second;  // only the alias was given
    } else if (!p->second.is_same(it->second) &&
               (p->second.sizes() != it->second.sizes() || !p->second.equal(it->second))) {
      throw std::runtime_error("export: '" + alias + "' differs from its tied weight '" + primary +
                               "'; Hugging Face ties them on load, so the exported model would change");
    }
    by_name.erase(alias);
  }
  by_name.erase("bert.embeddings.position_ids");  // buffers transformers re-creates
  by_name.erase("bert.embeddings.token_type_ids");

  std::vector<std::pair<std::string, torch::Tensor>> to_save = checked_tensors(cfg, head, by_name, out_dir);
  hf_state.clear();

  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec || !fs::is_directory(out_dir)) {
    throw std::runtime_error("export: cannot create directory " + out_dir + ": " + ec.message());
  }
  const fs::path dir(out_dir);
  save_tensors((dir / "model.safetensors").string(), to_save, {{"format", "pt"}}, dtype);
  write_hf_tokenizer_files(out_dir, vocab_path, lowercase, cfg.max_position_embeddings);

  nlohmann::json config = model::to_hf_config_json(cfg, head);
  config["torch_dtype"] = dtype == torch::kBFloat16 ? "bfloat16" : "float32";
  write_json_file((dir / "config.json").string(), config, 2);
  spdlog::info("exported {} tensors ({}) and the tokenizer to {}", to_save.size(),
               dtype == torch::kBFloat16 ? "bf16" : "f32", out_dir);
}

}  // namespace mpibert::io
