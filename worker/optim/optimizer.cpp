#include "worker/optim/optimizer.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <immintrin.h>
#include <torch/torch.h>

#include <cmath>
#include <set>
#include <stdexcept>

#include "common/error.h"
#include "worker/model/bf16_weights.h"
#include "worker/model/fast_math.h"

namespace mpibert::optim {
namespace {

// ---------------------------------------------------------------------------------------------
// AdamW kernel: one pass over (p, g, m, v). The arithmetic follows torch.optim.AdamW's op order
// (mul, add; addcmul = v + (c*g)*g; addcdiv = p + (c*m)/denom) with separate multiplies and adds
// (no FMA), so the AVX-512, AVX2 and scalar versions give identical bits.
// ---------------------------------------------------------------------------------------------
// The bf16 copy of updated weights (bf16_weights.h), written while the chunk is still in cache.
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void write_bf16(const float* __restrict p,
                                                                                              uint16_t* __restrict out,
                                                                                              int64_t begin,
                                                                                              int64_t end) {
  for (int64_t i = begin; i < end; ++i) out[i] = model::fast_math::float_to_bf16(p[i]);
}

// After an update through raw pointers: the weight's version moves on (as an in-place ATen op's would),
// and its kept bf16 copy, written in the same pass, is current for that version.
uint16_t* kept_copy_data(const std::shared_ptr<model::Bf16Copy>& kept) {
  return kept ? reinterpret_cast<uint16_t*>(kept->copy.data_ptr<at::BFloat16>()) : nullptr;
}
void mark_updated(const torch::Tensor& param, const std::shared_ptr<model::Bf16Copy>& kept) {
  param.unsafeGetTensorImpl()->bump_version();
  if (kept) kept->version = param._version();
}

struct AdamCoeffs {
  float gscale, b1, one_minus_b1, b2, one_minus_b2, decay, neg_step_size, bc2_sqrt, eps;
};

inline void adamw_scalar(float* p, const float* g, float* m, float* v, int64_t begin, int64_t end,
                         const AdamCoeffs& c) {
  for (int64_t i = begin; i < end; ++i) {
    const float gi = g[i] * c.gscale;
    const float mi = m[i] * c.b1 + gi * c.one_minus_b1;
    const float vi = v[i] * c.b2 + c.one_minus_b2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const float denom = std::sqrt(vi) / c.bc2_sqrt + c.eps;
    const float pi = p[i] * c.decay;
    p[i] = pi + c.neg_step_size * mi / denom;
  }
}

__attribute__((target("avx512f"))) void adamw_avx512(float* p, const float* g, float* m, float* v, int64_t begin,
                                                     int64_t end, const AdamCoeffs& c) {
  const __m512 gs = _mm512_set1_ps(c.gscale);
  const __m512 b1 = _mm512_set1_ps(c.b1), omb1 = _mm512_set1_ps(c.one_minus_b1);
  const __m512 b2 = _mm512_set1_ps(c.b2), omb2 = _mm512_set1_ps(c.one_minus_b2);
  const __m512 decay = _mm512_set1_ps(c.decay), nss = _mm512_set1_ps(c.neg_step_size);
  const __m512 bc2 = _mm512_set1_ps(c.bc2_sqrt), eps = _mm512_set1_ps(c.eps);
  int64_t i = begin;
  for (; i + 16 <= end; i += 16) {
    const __m512 gi = _mm512_mul_ps(_mm512_loadu_ps(g + i), gs);
    const __m512 mi = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(m + i), b1), _mm512_mul_ps(gi, omb1));
    const __m512 vi =
        _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(v + i), b2), _mm512_mul_ps(_mm512_mul_ps(omb2, gi), gi));
    _mm512_storeu_ps(m + i, mi);
    _mm512_storeu_ps(v + i, vi);
    const __m512 denom =
        _mm512_add_ps(_mm512_div_ps(_mm512_maskz_sqrt_ps(static_cast<__mmask16>(0xFFFF), vi), bc2), eps);
    const __m512 pi = _mm512_mul_ps(_mm512_loadu_ps(p + i), decay);
    _mm512_storeu_ps(p + i, _mm512_add_ps(pi, _mm512_div_ps(_mm512_mul_ps(nss, mi), denom)));
  }
  adamw_scalar(p, g, m, v, i, end, c);
}

__attribute__((target("avx2"))) void adamw_avx2(float* p, const float* g, float* m, float* v, int64_t begin,
                                                int64_t end, const AdamCoeffs& c) {
  const __m256 gs = _mm256_set1_ps(c.gscale);
  const __m256 b1 = _mm256_set1_ps(c.b1), omb1 = _mm256_set1_ps(c.one_minus_b1);
  const __m256 b2 = _mm256_set1_ps(c.b2), omb2 = _mm256_set1_ps(c.one_minus_b2);
  const __m256 decay = _mm256_set1_ps(c.decay), nss = _mm256_set1_ps(c.neg_step_size);
  const __m256 bc2 = _mm256_set1_ps(c.bc2_sqrt), eps = _mm256_set1_ps(c.eps);
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) {
    const __m256 gi = _mm256_mul_ps(_mm256_loadu_ps(g + i), gs);
    const __m256 mi = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(m + i), b1), _mm256_mul_ps(gi, omb1));
    const __m256 vi =
        _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(v + i), b2), _mm256_mul_ps(_mm256_mul_ps(omb2, gi), gi));
    _mm256_storeu_ps(m + i, mi);
    _mm256_storeu_ps(v + i, vi);
    const __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vi), bc2), eps);
    const __m256 pi = _mm256_mul_ps(_mm256_loadu_ps(p + i), decay);
    _mm256_storeu_ps(p + i, _mm256_add_ps(pi, _mm256_div_ps(_mm256_mul_ps(nss, mi), denom)));
  }
  adamw_scalar(p, g, m, v, i, end, c);
}

using AdamKernel = void (*)(float*, const float*, float*, float*, int64_t, int64_t, const AdamCoeffs&);

AdamKernel pick_adam_kernel() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return adamw_avx512;
  if (__builtin_cpu_supports("avx2")) return adamw_avx2;
  return adamw_scalar;
}

constexpr int64_t kBlock = 1 << 16;  // fixed reduction blocks: sums independent of thread count

// Sum of squares of a contiguous float array in fp64, block by block, blocks added in order.
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) double sum_squares_block(const float* x,
                                                                                                       int64_t n) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  return s;
}

double sum_squares(const torch::Tensor& t) {
  const torch::Tensor c = t.contiguous();
  const float* x = c.data_ptr<float>();
  const int64_t n = c.numel();
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> partial(static_cast<size_t>(blocks), 0.0);
  at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t lo = b * kBlock, hi = std::min(n, lo + kBlock);
      partial[static_cast<size_t>(b)] = sum_squares_block(x + lo, hi - lo);
    }
  });
  double total = 0.0;
  for (double s : partial) total += s;
  return total;
}

void check_fp32(const torch::Tensor& t, const std::string& what) {
  if (t.scalar_type() != at::kFloat || !t.is_contiguous() || t.device().type() != at::kCPU)
    throw std::invalid_argument(what + " must be a contiguous float32 CPU tensor (got " +
                                std::string(c10::toString(t.scalar_type())) + (t.is_contiguous() ? "" : ", strided") +
                                ")");
}

}  // namespace

bool hf_applies_weight_decay(const std::string& name) {
  return name.find("bias") == std::string::npos && name.find("LayerNorm.weight") == std::string::npos;
}

Optimizer::Optimizer(const std::vector<std::pair<std::string, torch::Tensor>>& named_params,
                     const OptimizerOptions& options)
    : options_(options) {
  if (options_.type == "adamw") {
    lamb_ = false;
  } else if (options_.type == "lamb") {
    lamb_ = true;
  } else {
    throw UsageError("train.optimizer: '" + options_.type + "' is not valid; valid: adamw, lamb");
  }
  if (!(options_.beta1 >= 0 && options_.beta1 < 1)) throw UsageError("train.adam_beta1 must be in [0, 1)");
  if (!(options_.beta2 >= 0 && options_.beta2 < 1)) throw UsageError("train.adam_beta2 must be in [0, 1)");
  if (!(options_.eps >= 0)) throw UsageError("train.adam_epsilon must be >= 0");
  if (!(options_.weight_decay >= 0)) throw UsageError("train.weight_decay must be >= 0");
  std::set<const void*> seen;
  for (const auto& [name, p] : named_params) {
    check_fp32(p, "optimizer parameter '" + name + "'");
    if (!seen.insert(p.unsafeGetTensorImpl()).second)
      throw std::invalid_argument("optimizer parameter '" + name + "' is listed twice (tied weights must appear once)");
    Entry e;
    e.name = name;
    e.param = p;
    e.exp_avg = torch::zeros_like(p);
    e.exp_avg_sq = torch::zeros_like(p);
    e.decay = hf_applies_weight_decay(name);
    entries_.push_back(std::move(e));
  }
}

std::vector<torch::Tensor> Optimizer::parameters() const {
  std::vector<torch::Tensor> out;
  for (const auto& e : entries_) out.push_back(e.param);
  return out;
}

void Optimizer::step(double lr, double grad_scale) {
  torch::NoGradGuard no_grad;
  ++step_count_;
  for (auto& e : entries_) {
    if (!e.param.grad().defined()) continue;
    check_fp32(e.param.grad(), "gradient of '" + e.name + "'");
    if (lamb_) {
      lamb_step(e, lr, grad_scale);
    } else {
      adamw_step(e, lr, grad_scale);
    }
  }
}

double Optimizer::clip_and_step(double lr, double max_grad_norm) {
  RECORD_FUNCTION("mpibert::optimizer", std::vector<c10::IValue>());  // a named range in profiles
  const double norm = grad_norm(parameters());
  if (!std::isfinite(norm)) return norm;
  step(lr, clip_coefficient(norm, max_grad_norm));
  return norm;
}

void Optimizer::adamw_step(Entry& e, double lr, double grad_scale) {
  static const AdamKernel kernel = pick_adam_kernel();
  const double t = static_cast<double>(step_count_);
  const double wd = e.decay ? options_.weight_decay : 0.0;
  AdamCoeffs c;
  c.gscale = static_cast<float>(grad_scale);
  c.b1 = static_cast<float>(options_.beta1);
  c.one_minus_b1 = static_cast<float>(1.0 - options_.beta1);
  c.b2 = static_cast<float>(options_.beta2);
  c.one_minus_b2 = static_cast<float>(1.0 - options_.beta2);
  c.decay = static_cast<float>(1.0 - lr * wd);
  c.neg_step_size = static_cast<float>(-(lr / (1.0 - std::pow(options_.beta1, t))));
  c.bc2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(options_.beta2, t)));
  c.eps = static_cast<float>(options_.eps);
  float* p = e.param.data_ptr<float>();
  const float* g = e.param.grad().data_ptr<float>();
  float* m = e.exp_avg.data_ptr<float>();
  float* v = e.exp_avg_sq.data_ptr<float>();
  const auto kept = model::kept_bf16_copy(e.param);
  uint16_t* copy = kept_copy_data(kept);
  at::parallel_for(0, e.param.numel(), 1 << 15, [&](int64_t b, int64_t end) {
    kernel(p, g, m, v, b, end, c);
    if (copy) write_bf16(p, copy, b, end);
  });
  mark_updated(e.param, kept);
}

void Optimizer::lamb_step(Entry& e, double lr, double grad_scale) {
  const double t = static_cast<double>(step_count_);
  const double wd = e.decay ? options_.weight_decay : 0.0;
  const float b1 = static_cast<float>(options_.beta1), omb1 = static_cast<float>(1.0 - options_.beta1);
  const float b2 = static_cast<float>(options_.beta2), omb2 = static_cast<float>(1.0 - options_.beta2);
  const float inv_bc1 = static_cast<float>(1.0 / (1.0 - std::pow(options_.beta1, t)));
  const float inv_bc2 = static_cast<float>(1.0 / (1.0 - std::pow(options_.beta2, t)));
  const float eps = static_cast<float>(options_.eps), wdf = static_cast<float>(wd);
  const float gs = static_cast<float>(grad_scale);
  float* p = e.param.data_ptr<float>();
  const float* g = e.param.grad().data_ptr<float>();
  float* m = e.exp_avg.data_ptr<float>();
  float* v = e.exp_avg_sq.data_ptr<float>();
  const int64_t n = e.param.numel();
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  auto update = [&](int64_t i) { return (m[i] * inv_bc1) / (std::sqrt(v[i] * inv_bc2) + eps) + wdf * p[i]; };

  // Pass 1: moments, and ||p||^2, ||u||^2 per fixed block (fp64).
  std::vector<double> p_sq(static_cast<size_t>(blocks)), u_sq(static_cast<size_t>(blocks));
  at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1_) {
    for (int64_t b = b0; b < b1_; ++b) {
      double ps = 0, us = 0;
      for (int64_t i = b * kBlock, hi = std::min(n, (b + 1) * kBlock); i < hi; ++i) {
        const float gi = g[i] * gs;
        m[i] = m[i] * b1 + gi * omb1;
        v[i] = v[i] * b2 + omb2 * gi * gi;
        const double u = update(i);
        ps += static_cast<double>(p[i]) * p[i];
        us += u * u;
      }
      p_sq[static_cast<size_t>(b)] = ps;
      u_sq[static_cast<size_t>(b)] = us;
    }
  });
  double p_norm = 0, u_norm = 0;
  for (int64_t b = 0; b < blocks; ++b) {
    p_norm += p_sq[static_cast<size_t>(b)];
    u_norm += u_sq[static_cast<size_t>(b)];
  }
  p_norm = std::sqrt(p_norm);
  u_norm = std::sqrt(u_norm);
  double ratio = 1.0;
  if ((wd != 0.0 || options_.lamb_trust_ratio_without_decay) && p_norm > 0 && u_norm > 0) ratio = p_norm / u_norm;
  // Pass 2: p -= lr * ratio * u, with u recomputed from the updated moments.
  const float scale = static_cast<float>(lr * ratio);
  const auto kept = model::kept_bf16_copy(e.param);
  uint16_t* copy = kept_copy_data(kept);
  at::parallel_for(0, n, 1 << 15, [&](int64_t b, int64_t end) {
    for (int64_t i = b; i < end; ++i) p[i] = p[i] - scale * update(i);
    if (copy) write_bf16(p, copy, b, end);
  });
  mark_updated(e.param, kept);
}

void Optimizer::zero_grad(bool set_to_none) {
  for (auto& e : entries_) {
    auto& g = e.param.mutable_grad();
    if (!g.defined()) continue;
    if (set_to_none) {
      g = torch::Tensor();
    } else {
      g.detach_();
      g.zero_();
    }
  }
}

std::vector<std::pair<std::string, torch::Tensor>> Optimizer::state_tensors() const {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& e : entries_) {
    out.emplace_back(e.name + ".exp_avg", e.exp_avg);
    out.emplace_back(e.name + ".exp_avg_sq", e.exp_avg_sq);
  }
  return out;
}

void Optimizer::load_state(const std::map<std::string, torch::Tensor>& state, int64_t step_count) {
  if (step_count < 0) throw std::runtime_error("optimizer state: negative step count " + std::to_string(step_count));
  std::set<std::string> expected;
  for (const auto& [name, t] : state_tensors()) {
    expected.insert(name);
    auto it = state.find(name);
    if (it == state.end()) throw std::runtime_error("optimizer state: missing '" + name + "'");
    if (it->second.sizes() != t.sizes())
      throw std::runtime_error("optimizer state: '" + name + "' has shape " + c10::str(it->second.sizes()) +
                               ", expected " + c10::str(t.sizes()));
  }
  for (const auto& [name, t] : state)
    if (!expected.count(name)) throw std::runtime_error("optimizer state: unexpected '" + name + "'");
  torch::NoGradGuard no_grad;
  for (auto& [name, t] : state_tensors()) t.copy_(state.at(name));
  step_count_ = step_count;
}

double grad_norm(const std::vector<torch::Tensor>& params) {
  torch::NoGradGuard no_grad;
  double total = 0.0;
  for (const auto& p : params) {
    const torch::Tensor& g = p.grad();
    if (!g.defined()) continue;
    if (g.scalar_type() != at::kFloat) {
      total += g.to(at::kDouble).pow(2).sum().item<double>();
    } else {
      total += sum_squares(g);
    }
  }
  return std::sqrt(total);
}

double clip_coefficient(double norm, double max_norm) {
  if (!std::isfinite(norm) || max_norm <= 0 || norm <= max_norm) return 1.0;
  return max_norm / (norm + 1e-6);
}

double clip_grad_norm(const std::vector<torch::Tensor>& params, double max_norm) {
  const double norm = grad_norm(params);
  const double coef = clip_coefficient(norm, max_norm);
  if (coef == 1.0) return norm;
  torch::NoGradGuard no_grad;
  for (const auto& p : params) {
    if (p.grad().defined()) p.grad().mul_(coef);
  }
  return norm;
}

}  // namespace mpibert::optim
