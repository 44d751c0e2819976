#include "worker/io/hf_import.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <set>

#include "common/error.h"
#include "common/io/json_file.h"
#include "worker/io/hf_export.h"
#include "worker/io/tensor_io.h"

namespace mpibert::io {
namespace {

namespace fs = std::filesystem;


bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

// Tensors BertForMaskedLM has no use for that Hub checkpoints carry (BertForPreTraining's pooler and
// next-sentence head, the position_ids buffer older transformers saved).
bool ignorable(const std::string& name) {
  return starts_with(name, "bert.pooler.") || starts_with(name, "cls.seq_relationship.") ||
         ends_with(name, "position_ids") || name == "bert.embeddings.token_type_ids";
}

// transformers' renaming of TF-era names on load (LayerNorm.gamma/.beta, as in bert-base-uncased).
std::string fix_legacy_name(const std::string& name) {
  if (ends_with(name, "LayerNorm.gamma")) return name.substr(0, name.size() - 5) + "weight";
  if (ends_with(name, "LayerNorm.beta")) return name.substr(0, name.size() - 4) + "bias";
  return name;
}

std::string list_names(const std::vector<std::string>& names, std::size_t limit = 8) {
  std::string out;
  for (std::size_t i = 0; i < names.size() && i < limit; ++i) out += (i ? ", " : "") + ("'" + names[i] + "'");
  if (names.size() > limit) out += " and " + std::to_string(names.size() - limit) + " more";
  return out;
}

void add_tensors(std::map<std::string, torch::Tensor> from, const std::string& file,
                 std::map<std::string, torch::Tensor>& into, std::map<std::string, std::string>& origin) {
  for (auto& [name, tensor] : from) {
    const std::string fixed = fix_legacy_name(name);
    const std::string here = file + " '" + name + "'";
    auto [it, inserted] = origin.emplace(fixed, here);
    if (!inserted) {
      throw UsageError("tensor '" + fixed + "' appears twice: as " + it->second + " and as " + here +
                       " (LayerNorm.gamma/.beta are legacy names of .weight/.bias)");
    }
    into.emplace(fixed, std::move(tensor));
  }
}

}  // namespace

LoadedHfModel load_hf_model_dir(const std::string& dir) {
  if (!fs::exists(dir)) throw UsageError("model directory " + dir + " does not exist");
  if (!fs::is_directory(dir)) throw UsageError("model directory " + dir + " is not a directory");
  const fs::path d(dir);
  LoadedHfModel out;
  out.dir = dir;
  const fs::path config_path = d / "config.json";
  if (!fs::exists(config_path)) {
    throw UsageError("model directory " + dir +
                     " has no config.json (a Hugging Face model directory holds config.json and model.safetensors)");
  }
  out.config = model::from_hf_config_json(read_json_file(config_path.string()), config_path.string());

  std::map<std::string, std::string> origin;  // final name -> where it came from, for duplicate errors
  const fs::path single = d / "model.safetensors";
  const fs::path index = d / "model.safetensors.index.json";
  if (fs::exists(single)) {
    add_tensors(load_tensors(single.string()), single.string(), out.tensors, origin);
    out.files.push_back(single.string());
  } else if (fs::exists(index)) {
    // Sharded checkpoint: {"metadata": {...}, "weight_map": {tensor: shard file}}.
    const nlohmann::json j = read_json_file(index.string());
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object()) {
      throw UsageError(index.string() + ": no \"weight_map\" object");
    }
    std::map<std::string, std::set<std::string>> by_file;
    for (const auto& item : j["weight_map"].items()) {
      if (!item.value().is_string())
        throw UsageError(index.string() + ": weight_map['" + item.key() + "'] is not a file name");
      const std::string file = item.value().get<std::string>();
      if (file.find('/') != std::string::npos || file == "." || file == "..") {
        throw UsageError(index.string() + ": shard name '" + file + "' must be a file in the same directory");
      }
      by_file[file].insert(item.key());
    }
    for (const auto& [file, names] : by_file) {
      const std::string shard = (d / file).string();
      if (!fs::exists(shard)) throw UsageError(index.string() + " names shard " + file + ", which is missing");
      std::map<std::string, torch::Tensor> tensors = load_tensors(shard);
      for (const auto& [name, t] : tensors) {
        if (!names.count(name)) throw UsageError(shard + ": tensor '" + name + "' is not in " + index.string());
      }
      for (const auto& name : names) {
        if (!tensors.count(name)) throw UsageError(index.string() + ": tensor '" + name + "' is not in " + shard);
      }
      add_tensors(std::move(tensors), shard, out.tensors, origin);
      out.files.push_back(shard);
    }
  } else if (fs::exists(d / "pytorch_model.bin")) {
    throw UsageError(dir +
                     " has pytorch_model.bin but no model.safetensors: mpibert reads safetensors only; "
                     "convert it with `python -c \"from transformers import BertForMaskedLM; "
                     "BertForMaskedLM.from_pretrained('" +
                     dir + "').save_pretrained('" + dir + "', safe_serialization=True)\"`");
  } else {
    throw UsageError("model directory " + dir + " has no model.safetensors (nor model.safetensors.index.json)");
  }
  return out;
}

LoadReport load_into(model::BertForMaskedLM& model, const std::map<std::string, torch::Tensor>& tensors,
                     const std::string& source) {
  LoadReport report;
  std::set<std::string> used;
  std::vector<std::string> missing;
  for (const auto& item : model->named_parameters(/*recurse=*/true)) {
    const std::string& name = item.key();
    auto it = tensors.find(name);
    if (it == tensors.end()) {
      for (const auto& [alias, primary] : hf_tied_aliases()) {
        if (primary == name && tensors.count(alias)) it = tensors.find(alias);
      }
    }
    if (it == tensors.end()) {
      missing.push_back(name);
      continue;
    }
    const torch::Tensor& param = item.value();
    if (it->second.sizes() != param.sizes()) {
      throw UsageError(source + ": tensor '" + it->first + "' has shape " + c10::str(it->second.sizes()) +
                       " but the model (from config.json) expects " + c10::str(param.sizes()) +
                       (it->first != name ? " for '" + name + "'" : std::string()));
    }
    if (!c10::isFloatingType(it->second.scalar_type())) {
      throw UsageError(source + ": tensor '" + it->first + "' has dtype " + c10::toString(it->second.scalar_type()) +
                       "; model weights must be floating point");
    }
    used.insert(it->first);
  }
  if (!missing.empty()) {
    bool any_head = false;
    for (const auto& [name, t] : tensors) any_head = any_head || starts_with(name, "cls.predictions.");
    throw UsageError(source + ": missing " + std::to_string(missing.size()) +
                     " model tensor(s): " + list_names(missing) +
                     (any_head ? std::string()
                               : " (no cls.predictions.* at all: is this a BertModel without the "
                                 "masked-LM head?)"));
  }
  std::vector<std::string> unexpected;
  for (const auto& [name, tensor] : tensors) {
    if (used.count(name)) continue;
    auto alias = hf_tied_aliases().find(name);
    if (alias != hf_tied_aliases().end()) {
      const torch::Tensor& primary = tensors.at(alias->second);
      if (primary.sizes() != tensor.sizes() || !primary.to(torch::kFloat).equal(tensor.to(torch::kFloat))) {
        throw UsageError(source + ": '" + name + "' differs from its tied weight '" + alias->second +
                         "' (untied decoder weights are not supported: Hugging Face's BertForMaskedLM ties them)");
      }
      report.aliases.push_back(name);
    } else if (ignorable(name)) {
      report.ignored.push_back(name);
    } else {
      unexpected.push_back(name);
    }
  }
  if (!unexpected.empty()) {
    throw UsageError(source + ": " + std::to_string(unexpected.size()) +
                     " unexpected tensor(s) not part of BertForMaskedLM: " + list_names(unexpected));
  }

  // Everything checked: copy (the model converts dtypes and resolves the tied aliases).
  model->load_hf_state_dict(tensors, source, /*strict=*/false);
  if (!report.ignored.empty()) {
    spdlog::info("{}: ignored {} tensor(s) BertForMaskedLM does not use: {}", source, report.ignored.size(),
                 list_names(report.ignored, 100));
  }
  return report;
}

model::BertForMaskedLM load_hf_model(const std::string& dir) {
  LoadedHfModel loaded = load_hf_model_dir(dir);
  model::BertForMaskedLM model(loaded.config);
  load_into(model, loaded.tensors, dir);
  model->eval();
  return model;
}

}  // namespace mpibert::io
