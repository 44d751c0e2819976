#pragma once
// AdamW and LAMB over fp32 parameters with fused single-pass kernels (no temporaries), Hugging Face's
// weight-decay grouping, checkpointable state, and deterministic gradient-norm clipping.
//
// AdamW = torch.optim.AdamW (what HF Trainer uses by default): p *= 1 - lr*wd; m = b1 m + (1-b1) g;
//   v = b2 v + (1-b2) g^2; p -= lr/(1-b1^t) * m / (sqrt(v)/sqrt(1-b2^t) + eps).
//   (transformers.AdamW applied the decay after the update instead; the difference is O(lr^2 wd).)
// LAMB = the LAMB paper / NVIDIA's FusedLAMB in NVLAMB mode: u = m_hat/(sqrt(v_hat)+eps) + wd p;
//   p -= lr * r * u with r = ||p|| / ||u|| per tensor (1 when either norm is 0). apex's default
//   (use_nvlamb=False) skips r for tensors without weight decay: lamb_trust_ratio_without_decay=false.
#include <torch/torch.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace mpibert::optim {

struct OptimizerOptions {
  std::string type = "adamw";  // adamw | lamb
  double weight_decay = 0.0;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;  // HF default adam_epsilon 1e-8 (FusedLAMB uses 1e-6)
  bool lamb_trust_ratio_without_decay = true;
};

// Hugging Face's rule (run_mlm / Trainer): no weight decay for names containing "bias" or
// "LayerNorm.weight".
bool hf_applies_weight_decay(const std::string& param_name);

class Optimizer {
 public:
  // named_params: fp32 contiguous leaf tensors, each once (pass module->named_parameters(), not
  // hf_state_dict(), which lists the tied weight twice). State (exp_avg, exp_avg_sq) starts at zero.
  // Throws UsageError for a bad type/hyper-parameter, std::invalid_argument for bad tensors.
  Optimizer(const std::vector<std::pair<std::string, torch::Tensor>>& named_params, const OptimizerOptions& options);

  // One update with learning rate lr; parameters whose grad is undefined are skipped (their state
  // is untouched, as torch does). Increments step_count() first (bias correction uses the new count).
  // grad_scale multiplies every gradient inside the fused kernel (clipping without an extra pass).
  void step(double lr, double grad_scale = 1.0);
  // = clip_grad_norm + step in one pass less: computes the gradient norm, steps with the gradients
  // scaled by clip_coefficient(norm, max_grad_norm) (the gradient tensors are not modified), returns
  // the norm before clipping. A non-finite norm skips the update (step_count unchanged).
  double clip_and_step(double lr, double max_grad_norm);
  // set_to_none (default, as HF/torch>=2) drops the grads; otherwise zeroes them in place.
  void zero_grad(bool set_to_none = true);

  // "<param>.exp_avg", "<param>.exp_avg_sq" for every parameter (the live tensors).
  std::vector<std::pair<std::string, torch::Tensor>> state_tensors() const;
  int64_t step_count() const { return step_count_; }
  // Copies every state tensor from `state` (same names, shapes; any float dtype). Missing or unknown
  // names -> std::runtime_error naming them.
  void load_state(const std::map<std::string, torch::Tensor>& state, int64_t step_count);

  std::vector<torch::Tensor> parameters() const;
  const OptimizerOptions& options() const { return options_; }
  bool decays(size_t index) const { return entries_[index].decay; }
  const std::string& name(size_t index) const { return entries_[index].name; }
  size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::string name;
    torch::Tensor param, exp_avg, exp_avg_sq;
    bool decay = false;
  };
  void adamw_step(Entry& e, double lr, double grad_scale);
  void lamb_step(Entry& e, double lr, double grad_scale);

  OptimizerOptions options_;
  bool lamb_ = false;
  std::vector<Entry> entries_;
  int64_t step_count_ = 0;
};

// L2 norm of all gradients together (undefined grads skipped), accumulated in fp64 over fixed
// blocks, so the result does not depend on the thread count.
double grad_norm(const std::vector<torch::Tensor>& params);

// max_norm / (norm + 1e-6) when max_norm > 0 and a finite norm exceeds it, else 1.
double clip_coefficient(double norm, double max_norm);

// As torch.nn.utils.clip_grad_norm_: returns the total norm before clipping and, when max_norm > 0
// and the norm exceeds it, scales every gradient by max_norm / (norm + 1e-6). A non-finite norm is
// returned as is and the gradients are left untouched (the caller decides to skip the step).
double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm);

}  // namespace mpibert::optim
