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

// transformers' renaming of TF-era names on load (LayerNorm.gamma/.beta, as in bert-base-uncased).
std::string fix_legacy_name(const std::string& name) {
  if (ends_with(name, "LayerNorm.gamma")) return name.substr(0, name.size() - 5) + "weight";
  if (ends_with(name, "LayerNorm.beta")) return name.substr(0, name.size() - 4) + "bias";
  return name;
}

using model::list_names;

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

LoadReport load_into(const model::NamedTensors& params, model::BertHead head,
                     const std::map<std::string, torch::Tensor>& tensors, const std::string& source,
                     const LoadOptions& options) {
  const model::HfMatch m = model::match_hf_tensors(params, head, tensors);
  const char* arch = model::hf_architecture(head);
  if (!m.missing.empty()) {
    bool any_head = false;
    for (const auto& [name, t] : tensors) any_head = any_head || name.rfind("cls.predictions.", 0) == 0;
    const bool mlm_without_head = head == model::BertHead::MaskedLM && !any_head;
    throw UsageError(
        source + ": missing " + std::to_string(m.missing.size()) + " model tensor(s): " + list_names(m.missing) +
        (mlm_without_head ? " (no cls.predictions.* at all: is this a BertModel without the masked-LM head?)" : ""));
  }
  LoadReport report;
  for (const auto& mm : m.mismatched) {
    if (options.ignore_mismatched_sizes && mm.shape_only()) {
      report.resized.push_back(mm.param);
      continue;
    }
    const std::string what = mm.shape_only()
                                 ? "has shape " + mm.got + " but the model (from config.json) expects " + mm.expected
                                 : "has dtype " + mm.bad_dtype + "; model weights must be floating point";
    const bool hint = mm.shape_only() && model::hf_initialisable(mm.param, head);
    throw UsageError(source + ": tensor '" + mm.source + "' " + what +
                     (mm.source != mm.param ? " for '" + mm.param + "'" : std::string()) +
                     (hint ? " (ignore_mismatched_sizes re-initialises it)" : ""));
  }
  if (!m.alias_conflicts.empty())
    throw UsageError(source + ": " + m.alias_conflicts.front() +
                     " (untied decoder weights are not supported: Hugging Face's BertForMaskedLM ties them)");
  if (!m.unexpected.empty())
    throw UsageError(source + ": " + std::to_string(m.unexpected.size()) + " unexpected tensor(s) not part of " + arch +
                     ": " + list_names(m.unexpected));
  model::copy_matched(params, m, tensors, source);  // everything checked: now copy (dtypes converted)
  report.ignored = m.ignored;
  report.aliases = m.aliases;
  report.initialised = m.initialised;
  if (!report.ignored.empty())
    spdlog::info("{}: ignored {} tensor(s) {} does not use: {}", source, report.ignored.size(), arch,
                 list_names(report.ignored, 100));
  return report;
}

LoadReport load_into(model::BertForMaskedLM& model, const std::map<std::string, torch::Tensor>& tensors,
                     const std::string& source) {
  model::NamedTensors params;
  for (const auto& item : model->named_parameters(/*recurse=*/true)) params.emplace_back(item.key(), item.value());
  return load_into(params, model::BertHead::MaskedLM, tensors, source);
}

model::BertForMaskedLM load_hf_model(const std::string& dir) {
  LoadedHfModel loaded = load_hf_model_dir(dir);
  model::BertForMaskedLM model(loaded.config);
  load_into(model, loaded.tensors, dir);
  model->eval();
  return model;
}

}  // namespace mpibert::io
