#pragma once
// Matching Hugging Face-named tensors (a model file or a checkpoint) to a model's parameters, by the
// head's table (hf_names.h): which parameter comes from which tensor (tied aliases stand in for their
// primaries), and everything that does not fit. One matcher serves checkpoints, `model.init_from` and
// fill_mask/classify; each caller decides which findings are errors.
#include <torch/torch.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "worker/model/hf_names.h"

namespace mpibert::model {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

struct HfMismatch {
  std::string param;          // the model's parameter
  std::string source;         // the tensor's name in the file (the parameter's or a tied alias)
  std::string got, expected;  // shapes, e.g. "[48, 32]" (a shape mismatch)
  std::string bad_dtype;      // e.g. "Long" (a non-float tensor; shapes unchecked)
  bool shape_only() const { return bad_dtype.empty(); }
};

struct HfMatch {
  std::vector<std::pair<size_t, std::string>> copies;  // parameter index <- tensor name
  std::vector<std::string> missing;                    // required parameters the file lacks
  std::vector<std::string> initialised;                // initialisable parameters the file lacks
  std::vector<HfMismatch> mismatched;                  // wrong shape or non-float dtype
  std::vector<std::string> aliases;                    // tied aliases present beside / instead of primaries
  std::vector<std::string> alias_conflicts;            // "'alias' differs from its tied weight 'primary'"
  std::vector<std::string> ignored;                    // known tensors of other heads, buffers
  std::vector<std::string> unexpected;                 // anything else
};

HfMatch match_hf_tensors(const NamedTensors& params, BertHead head,
                         const std::map<std::string, torch::Tensor>& tensors);

// Copies every matched tensor into its parameter (converting the dtype to the parameter's), after
// checking that none holds a NaN or infinity (check_finite, naming `source`).
void copy_matched(const NamedTensors& params, const HfMatch& match, const std::map<std::string, torch::Tensor>& tensors,
                  const std::string& source);

// The checks of a checkpoint load: throws std::runtime_error naming `source` for a missing parameter
// (also an initialisable one when strict), a wrong shape or dtype, a tied alias that differs from its
// primary, and (when strict) an unexpected tensor; then copies. Returns what was skipped.
std::vector<std::string> load_hf_tensors_strict(const NamedTensors& params, BertHead head,
                                                const std::map<std::string, torch::Tensor>& tensors,
                                                const std::string& source, bool strict);

// Throws UsageError "SOURCE: tensor 'NAME' has N non-finite values (NaN or infinity) of M" when it has any:
// a model file, checkpoint or export with NaN weights is refused instead of producing NaN predictions.
void check_finite(const std::string& name, const torch::Tensor& t, const std::string& source);

// "'a', 'b' and 3 more".
std::string list_names(const std::vector<std::string>& names, size_t limit = 8);

}  // namespace mpibert::model
