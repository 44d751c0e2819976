#include "worker/model/fused_ops.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/torch.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "worker/model/fast_math.h"

namespace mpibert::model {
namespace {

constexpr int64_t kIgnore = -100;

// ----- cross-entropy rows ----------------------------------------------------------------------

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) float row_max(const float* x, int64_t n) {
  return fast_math::max_lanes(x, n);
}

// sum_j exp(x_j - m), with the exponentials staged in tmp[n] so that both loops vectorise.
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) float row_sum_exp(
    const float* __restrict x, float* __restrict tmp, int64_t n, float m) {
  for (int64_t j = 0; j < n; ++j) tmp[j] = fast_math::exp(x[j] - m);
  return fast_math::sum_lanes(tmp, n);
}

// g * softmax(x) (the target's -g is added by the caller).
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void row_softmax_scaled(
    const float* __restrict x, float* __restrict out, int64_t n, float lse, float g) {
  for (int64_t j = 0; j < n; ++j) out[j] = g * fast_math::exp(x[j] - lse);
}

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void bf16_row_to_float(
    const uint16_t* __restrict in, float* __restrict out, int64_t n) {
  for (int64_t j = 0; j < n; ++j) out[j] = fast_math::bf16_to_float(in[j]);
}

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void float_row_to_bf16(
    const float* __restrict in, uint16_t* __restrict out, int64_t n) {
  for (int64_t j = 0; j < n; ++j) out[j] = fast_math::float_to_bf16(in[j]);
}

// The row as float: the data itself, or a converted copy in buf.
const float* row_as_float(const torch::Tensor& logits, int64_t r, int64_t V, std::vector<float>& buf) {
  if (logits.scalar_type() == at::kFloat) return logits.data_ptr<float>() + r * V;
  buf.resize(static_cast<size_t>(V));
  bf16_row_to_float(reinterpret_cast<const uint16_t*>(logits.data_ptr<at::BFloat16>()) + r * V, buf.data(), V);
  return buf.data();
}

void check_targets(const int64_t* t, int64_t rows, int64_t V) {
  for (int64_t r = 0; r < rows; ++r)
    if (t[r] != kIgnore && (t[r] < 0 || t[r] >= V))
      throw std::out_of_range("cross-entropy: target " + std::to_string(t[r]) + " of row " + std::to_string(r) +
                              " is outside the vocabulary [0, " + std::to_string(V) + ")");
}

class CrossEntropySumFn : public torch::autograd::Function<CrossEntropySumFn> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& logits_in,
                                                const torch::Tensor& targets_in) {
    RECORD_FUNCTION("mpibert::cross_entropy", std::vector<c10::IValue>());
    const torch::Tensor logits = logits_in.contiguous();
    const torch::Tensor targets = targets_in.to(at::kLong).contiguous();
    const int64_t rows = logits.size(0), V = logits.size(1);
    const int64_t* t = targets.data_ptr<int64_t>();
    check_targets(t, rows, V);
    torch::Tensor lse = torch::empty({rows}, torch::kFloat);
    float* lse_p = lse.data_ptr<float>();
    std::vector<double> loss(static_cast<size_t>(rows), 0.0);
    std::vector<uint8_t> correct(static_cast<size_t>(rows), 0);
    at::parallel_for(0, rows, 1, [&](int64_t begin, int64_t end) {
      std::vector<float> buf, tmp(static_cast<size_t>(V));
      for (int64_t r = begin; r < end; ++r) {
        const float* x = row_as_float(logits, r, V, buf);
        const float m = row_max(x, V);
        const float l = m + std::log(row_sum_exp(x, tmp.data(), V, m));
        lse_p[r] = l;
        if (t[r] == kIgnore) continue;
        loss[static_cast<size_t>(r)] = static_cast<double>(l) - static_cast<double>(x[t[r]]);
        int64_t arg = 0;
        while (arg < V && x[arg] != m) ++arg;  // first maximum, as torch.argmax; none when m is NaN
        correct[static_cast<size_t>(r)] = arg < V && arg == t[r];
      }
    });
    double total = 0.0;  // fixed order: independent of the thread count
    int64_t n_correct = 0;
    for (int64_t r = 0; r < rows; ++r) {
      total += loss[static_cast<size_t>(r)];
      n_correct += correct[static_cast<size_t>(r)];
    }
    ctx->save_for_backward({logits, targets, lse});
    torch::Tensor num_correct = torch::scalar_tensor(n_correct, torch::kLong);
    ctx->mark_non_differentiable({num_correct});
    return {torch::scalar_tensor(static_cast<float>(total), torch::kFloat), num_correct};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    RECORD_FUNCTION("mpibert::cross_entropy_backward", std::vector<c10::IValue>());
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& logits = saved[0];
    const int64_t* t = saved[1].data_ptr<int64_t>();
    const float* lse = saved[2].data_ptr<float>();
    const float g = grads[0].defined() ? grads[0].item<float>() : 0.0f;
    const int64_t rows = logits.size(0), V = logits.size(1);
    torch::Tensor grad = torch::empty_like(logits);
    const bool bf16 = logits.scalar_type() == at::kBFloat16;
    at::parallel_for(0, rows, 1, [&](int64_t begin, int64_t end) {
      std::vector<float> buf, out(bf16 ? static_cast<size_t>(V) : 0);
      for (int64_t r = begin; r < end; ++r) {
        float* o = bf16 ? out.data() : grad.data_ptr<float>() + r * V;
        if (t[r] == kIgnore) {
          std::fill(o, o + V, 0.0f);
        } else {
          row_softmax_scaled(row_as_float(logits, r, V, buf), o, V, lse[r], g);
          o[t[r]] -= g;
        }
        if (bf16) float_row_to_bf16(o, reinterpret_cast<uint16_t*>(grad.data_ptr<at::BFloat16>()) + r * V, V);
      }
    });
    return {grad, torch::Tensor()};
  }
};

}  // namespace

std::pair<torch::Tensor, torch::Tensor> fused_cross_entropy_sum(const torch::Tensor& logits,
                                                                const torch::Tensor& targets) {
  TORCH_CHECK(logits.dim() == 2 && (logits.scalar_type() == at::kFloat || logits.scalar_type() == at::kBFloat16),
              "fused_cross_entropy_sum: logits must be float32 or bfloat16 [rows, V], got ", logits.sizes(), " ",
              logits.scalar_type());
  TORCH_CHECK(targets.dim() == 1 && targets.size(0) == logits.size(0),
              "fused_cross_entropy_sum: targets must be [rows]");
  TORCH_CHECK(logits.size(1) > 0, "fused_cross_entropy_sum: empty vocabulary");
  auto out = CrossEntropySumFn::apply(logits, targets);
  return {out[0], out[1]};
}

}  // namespace mpibert::model
