#include "worker/model/hf_state.h"

#include <set>
#include <stdexcept>

#include "common/error.h"

namespace mpibert::model {

HfMatch match_hf_tensors(const NamedTensors& params, BertHead head,
                         const std::map<std::string, torch::Tensor>& tensors) {
  const auto& aliases = hf_tied_aliases(head);
  HfMatch m;
  std::set<std::string> used;
  for (size_t i = 0; i < params.size(); ++i) {
    const auto& [name, param] = params[i];
    auto it = tensors.find(name);
    for (const auto& [alias, primary] : aliases)
      if (it == tensors.end() && primary == name) it = tensors.find(alias);
    if (it == tensors.end()) {
      (hf_initialisable(name, head) ? m.initialised : m.missing).push_back(name);
      continue;
    }
    used.insert(it->first);
    if (!c10::isFloatingType(it->second.scalar_type())) {
      m.mismatched.push_back({name, it->first, "", "", c10::toString(it->second.scalar_type())});
    } else if (it->second.sizes() != param.sizes()) {
      m.mismatched.push_back({name, it->first, c10::str(it->second.sizes()), c10::str(param.sizes()), ""});
    } else {
      m.copies.emplace_back(i, it->first);
    }
  }
  for (const auto& [name, tensor] : tensors) {
    if (used.count(name)) continue;
    auto alias = aliases.find(name);
    if (alias != aliases.end()) {
      auto primary = tensors.find(alias->second);
      if (primary != tensors.end() && (primary->second.sizes() != tensor.sizes() ||
                                       !primary->second.to(torch::kFloat).equal(tensor.to(torch::kFloat))))
        m.alias_conflicts.push_back("'" + name + "' differs from its tied weight '" + alias->second + "'");
      m.aliases.push_back(name);
    } else if (hf_ignorable(name, head)) {
      m.ignored.push_back(name);
    } else {
      m.unexpected.push_back(name);
    }
  }
  return m;
}

void copy_matched(const NamedTensors& params, const HfMatch& match, const std::map<std::string, torch::Tensor>& tensors,
                  const std::string& source) {
  torch::NoGradGuard no_grad;
  for (const auto& [index, name] : match.copies) check_finite(name, tensors.at(name), source);  // before any copy
  for (const auto& [index, source] : match.copies) {
    torch::Tensor param = params[index].second;
    param.copy_(tensors.at(source));
  }
}

std::vector<std::string> load_hf_tensors_strict(const NamedTensors& params, BertHead head,
                                                const std::map<std::string, torch::Tensor>& tensors,
                                                const std::string& source, bool strict) {
  const HfMatch m = match_hf_tensors(params, head, tensors);
  if (!m.missing.empty()) throw std::runtime_error(source + ": missing parameter '" + m.missing.front() + "'");
  if (strict && !m.initialised.empty())
    throw std::runtime_error(source + ": missing parameter '" + m.initialised.front() + "'");
  if (!m.mismatched.empty()) {
    const HfMismatch& mm = m.mismatched.front();
    throw std::runtime_error(source + ": parameter '" + mm.source + "' " +
                             (mm.shape_only() ? "has shape " + mm.got + ", the model expects " + mm.expected
                                              : "has non-float dtype " + mm.bad_dtype));
  }
  if (!m.alias_conflicts.empty()) throw std::runtime_error(source + ": " + m.alias_conflicts.front());
  if (strict && !m.unexpected.empty())
    throw std::runtime_error(source + ": unexpected tensor '" + m.unexpected.front() + "'");
  copy_matched(params, m, tensors, source);
  std::vector<std::string> skipped = m.ignored;
  skipped.insert(skipped.end(), m.unexpected.begin(), m.unexpected.end());
  return skipped;
}

void check_finite(const std::string& name, const torch::Tensor& t, const std::string& source) {
  if (!t.defined() || !at::isFloatingType(t.scalar_type())) return;
  torch::NoGradGuard no_grad;
  const int64_t bad = t.numel() - t.isfinite().sum().item<int64_t>();
  if (bad > 0)
    throw UsageError(source + ": tensor '" + name + "' has " + std::to_string(bad) +
                     " non-finite value(s) (NaN or infinity) of " + std::to_string(t.numel()));
}

std::string list_names(const std::vector<std::string>& names, size_t limit) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < limit; ++i) out += (i ? ", " : "") + ("'" + names[i] + "'");
  if (names.size() > limit) out += " and " + std::to_string(names.size() - limit) + " more";
  return out;
}

}  // namespace mpibert::model
