#include "worker/model/fused_ops.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/torch.h>

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "worker/model/counter_rng.h"
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

// ----- dropout + residual + LayerNorm rows -------------------------------------------------------

// s = dropout(a) + r; returns nothing, the caller normalises s. Element j of row `row` is element
// row*H + j of the dropout stream, as seeded_dropout numbers a contiguous [N, H] tensor.
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void dropout_add_row(
    const float* __restrict a, const float* __restrict r, float* __restrict s, int64_t H, uint64_t key, int64_t base,
    uint32_t threshold, float keep_scale, bool dropout) {
  if (dropout) {
    for (int64_t j = 0; j < H; ++j) s[j] = (rng::bits32(key, base + j) >= threshold ? a[j] * keep_scale : 0.0f) + r[j];
  } else {
    for (int64_t j = 0; j < H; ++j) s[j] = a[j] + r[j];
  }
}

// y = (s - mean) * rstd * g + b, two-pass mean and variance (fp32); returns {mean, rstd}.
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) std::pair<float, float> normalize_row(
    const float* __restrict s, const float* __restrict g, const float* __restrict b, float* __restrict y,
    float* __restrict centered, int64_t H, float eps) {
  const float mean = fast_math::sum_lanes(s, H) / static_cast<float>(H);
  for (int64_t j = 0; j < H; ++j) centered[j] = s[j] - mean;
  const float var = fast_math::dot_lanes(centered, centered, H) / static_cast<float>(H);
  const float rstd = 1.0f / std::sqrt(var + eps);
  for (int64_t j = 0; j < H; ++j) y[j] = centered[j] * rstd * g[j] + b[j];
  return {mean, rstd};
}

// Given g = dL/dy of one row: ds = rstd * (g*gamma - mean(g*gamma) - xhat * mean(g*gamma*xhat)), and
// the row's terms of dgamma (g * xhat) and dbeta (g) added to the block's partial sums, in double: which
// rows share a block depends on the batch, so the sums must not round differently by much (a run on N
// ranks must follow one rank with N times the batch to 1e-5).
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void norm_backward_row(
    const float* __restrict s, const float* __restrict g, const float* __restrict gamma, float mean, float rstd,
    float* __restrict ds, float* __restrict xhat, double* __restrict dgamma, double* __restrict dbeta, int64_t H) {
  for (int64_t j = 0; j < H; ++j) {
    xhat[j] = (s[j] - mean) * rstd;
    ds[j] = g[j] * gamma[j];
    dgamma[j] += static_cast<double>(g[j]) * xhat[j];
    dbeta[j] += g[j];
  }
  const float c1 = fast_math::sum_lanes(ds, H) / static_cast<float>(H);
  const float c2 = fast_math::dot_lanes(ds, xhat, H) / static_cast<float>(H);
  for (int64_t j = 0; j < H; ++j) ds[j] = rstd * (ds[j] - c1 - xhat[j] * c2);
}

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void add_rows(float* __restrict acc,
                                                                                            const float* __restrict x,
                                                                                            int64_t n) {
  for (int64_t j = 0; j < n; ++j) acc[j] += x[j];
}

// The dropout of the backward pass: da = mask * keep_scale * ds.
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void dropout_back_row(
    const float* __restrict ds, float* __restrict da, int64_t H, uint64_t key, int64_t base, uint32_t threshold,
    float keep_scale) {
  for (int64_t j = 0; j < H; ++j) da[j] = rng::bits32(key, base + j) >= threshold ? ds[j] * keep_scale : 0.0f;
}

// A row of a float32 or bfloat16 [N, H] tensor written from float (row_as_float reads one).
void write_row(torch::Tensor& t, int64_t row, int64_t H, const float* x) {
  if (t.scalar_type() == at::kFloat) {
    std::copy(x, x + H, t.data_ptr<float>() + row * H);
  } else {
    float_row_to_bf16(x, reinterpret_cast<uint16_t*>(t.data_ptr<at::BFloat16>()) + row * H, H);
  }
}

// Row blocks whose dgamma/dbeta partial sums are added in block order: the same sums whatever the
// thread count.
constexpr int64_t kNormRowsPerBlock = 64;

// The float32 [width] sum of per-block partial sums [blocks, width], added in block order in double.
torch::Tensor sum_blocks(const std::vector<double>& partial, int64_t blocks, int64_t width) {
  std::vector<double> total(static_cast<size_t>(width), 0.0);
  for (int64_t blk = 0; blk < blocks; ++blk)
    for (int64_t j = 0; j < width; ++j) total[static_cast<size_t>(j)] += partial[static_cast<size_t>(blk * width + j)];
  torch::Tensor out = torch::empty({width});
  std::copy(total.begin(), total.end(), out.data_ptr<float>());
  return out;
}

class DropoutAddLayerNormFn : public torch::autograd::Function<DropoutAddLayerNormFn> {
 public:
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& a_in,
                                                const torch::Tensor& residual_in, const torch::Tensor& gamma,
                                                const torch::Tensor& beta, double eps, double p, int64_t key,
                                                bool bf16_copy) {
    RECORD_FUNCTION("mpibert::add_layer_norm", std::vector<c10::IValue>());
    const torch::Tensor a = a_in.contiguous(), residual = residual_in.contiguous();
    const int64_t N = a.size(0), H = a.size(1);
    torch::Tensor sum = torch::empty({N, H}, torch::kFloat);  // dropout(a) + residual, kept for backward
    torch::Tensor y = torch::empty({N, H}, torch::kFloat);
    torch::Tensor y16 = bf16_copy ? torch::empty({N, H}, torch::kBFloat16) : torch::empty({0}, torch::kBFloat16);
    torch::Tensor stats = torch::empty({N, 2}, torch::kFloat);  // mean, rstd
    const float* r = residual.data_ptr<float>();
    const float *g = gamma.data_ptr<float>(), *b = beta.data_ptr<float>();
    float *sp = sum.data_ptr<float>(), *yp = y.data_ptr<float>(), *st = stats.data_ptr<float>();
    const uint32_t threshold = rng::drop_threshold(p);
    const float keep_scale = static_cast<float>(1.0 / (1.0 - p));
    at::parallel_for(0, N, 16, [&](int64_t begin, int64_t end) {
      std::vector<float> buf, centered(static_cast<size_t>(H));
      for (int64_t row = begin; row < end; ++row) {
        dropout_add_row(row_as_float(a, row, H, buf), r + row * H, sp + row * H, H, static_cast<uint64_t>(key), row * H,
                        threshold, keep_scale, p > 0);
        const auto [mean, rstd] =
            normalize_row(sp + row * H, g, b, yp + row * H, centered.data(), H, static_cast<float>(eps));
        st[2 * row] = mean;
        st[2 * row + 1] = rstd;
        if (bf16_copy) write_row(y16, row, H, yp + row * H);
      }
    });
    ctx->save_for_backward({sum, stats, gamma});
    ctx->saved_data["p"] = p;
    ctx->saved_data["key"] = key;
    ctx->saved_data["a_dtype"] = static_cast<int64_t>(a.scalar_type());
    if (!bf16_copy) ctx->mark_non_differentiable({y16});
    return {y, y16};
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    RECORD_FUNCTION("mpibert::add_layer_norm_backward", std::vector<c10::IValue>());
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &sum = saved[0], &stats = saved[1], &gamma = saved[2];
    const double p = ctx->saved_data["p"].toDouble();
    const auto key = static_cast<uint64_t>(ctx->saved_data["key"].toInt());
    const auto a_dtype = static_cast<at::ScalarType>(ctx->saved_data["a_dtype"].toInt());
    const int64_t N = sum.size(0), H = sum.size(1);
    const torch::Tensor dy = grads[0].defined() ? grads[0].to(at::kFloat).contiguous() : torch::zeros({N, H});
    const torch::Tensor dy16 = grads[1].defined() && grads[1].numel() > 0 ? grads[1].contiguous() : torch::Tensor();
    torch::Tensor dresidual = torch::empty({N, H}, torch::kFloat);
    torch::Tensor da = torch::empty({N, H}, torch::TensorOptions().dtype(a_dtype));
    const int64_t blocks = (N + kNormRowsPerBlock - 1) / kNormRowsPerBlock;
    std::vector<double> partial(static_cast<size_t>(blocks * 2 * H), 0.0);  // dgamma, dbeta per row block
    const float *sp = sum.data_ptr<float>(), *st = stats.data_ptr<float>(), *gm = gamma.data_ptr<float>();
    const float* dyp = dy.data_ptr<float>();
    float* dr = dresidual.data_ptr<float>();
    double* pp = partial.data();
    const uint32_t threshold = rng::drop_threshold(p);
    const float keep_scale = static_cast<float>(1.0 / (1.0 - p));
    at::parallel_for(0, blocks, 1, [&](int64_t begin, int64_t end) {
      std::vector<float> buf, g(static_cast<size_t>(H)), xhat(static_cast<size_t>(H)), tmp(static_cast<size_t>(H));
      for (int64_t blk = begin; blk < end; ++blk) {
        double* dgamma = pp + blk * 2 * H;
        for (int64_t row = blk * kNormRowsPerBlock; row < std::min(N, (blk + 1) * kNormRowsPerBlock); ++row) {
          std::copy(dyp + row * H, dyp + (row + 1) * H, g.begin());
          if (dy16.defined()) add_rows(g.data(), row_as_float(dy16, row, H, buf), H);
          float* ds = dr + row * H;
          norm_backward_row(sp + row * H, g.data(), gm, st[2 * row], st[2 * row + 1], ds, xhat.data(), dgamma,
                            dgamma + H, H);
          if (p > 0) {
            dropout_back_row(ds, tmp.data(), H, key, row * H, threshold, keep_scale);
            write_row(da, row, H, tmp.data());
          } else {
            write_row(da, row, H, ds);
          }
        }
      }
    });
    const torch::Tensor reduced = sum_blocks(partial, blocks, 2 * H).view({2, H});
    return {da,
            dresidual,
            reduced[0].clone(),
            reduced[1].clone(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor()};
  }
};

// ----- bias + GELU rows ----------------------------------------------------------------------------

constexpr float kInvSqrt2 = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;

// y = gelu(h + b) = 0.5 x (1 + erf(x / sqrt 2)), x = h + b.
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void bias_gelu_row(
    const float* __restrict h, const float* __restrict b, float* __restrict y, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const float x = h[j] + b[j];
    y[j] = 0.5f * x * fast_math::one_plus_erf(x * kInvSqrt2);
  }
}

// dh = dy * gelu'(x) = dy * (Phi(x) + x phi(x)); the row's dh is added to the block's bias gradient (double).
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void bias_gelu_backward_row(
    const float* __restrict h, const float* __restrict b, const float* __restrict dy, float* __restrict dh,
    double* __restrict dbias, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    const float x = h[j] + b[j];
    const float cdf = 0.5f * fast_math::one_plus_erf(x * kInvSqrt2);
    const float pdf = kInvSqrt2Pi * fast_math::exp(-0.5f * x * x);
    dh[j] = dy[j] * (cdf + x * pdf);
    dbias[j] += dh[j];
  }
}

class BiasGeluFn : public torch::autograd::Function<BiasGeluFn> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& h_in,
                               const torch::Tensor& bias) {
    RECORD_FUNCTION("mpibert::bias_gelu", std::vector<c10::IValue>());
    const torch::Tensor h = h_in.contiguous();
    const int64_t N = h.size(0), I = h.size(1);
    torch::Tensor y = torch::empty_like(h);
    const float* b = bias.data_ptr<float>();
    at::parallel_for(0, N, 16, [&](int64_t begin, int64_t end) {
      std::vector<float> buf, out(static_cast<size_t>(I));
      for (int64_t row = begin; row < end; ++row) {
        bias_gelu_row(row_as_float(h, row, I, buf), b, out.data(), I);
        write_row(y, row, I, out.data());
      }
    });
    ctx->save_for_backward({h, bias});
    return y;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    RECORD_FUNCTION("mpibert::bias_gelu_backward", std::vector<c10::IValue>());
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &h = saved[0], &bias = saved[1];
    const int64_t N = h.size(0), I = h.size(1);
    const torch::Tensor dy = grads[0].contiguous();
    torch::Tensor dh = torch::empty_like(h);
    const int64_t blocks = (N + kNormRowsPerBlock - 1) / kNormRowsPerBlock;
    std::vector<double> partial(static_cast<size_t>(blocks * I), 0.0);  // the bias gradient per row block
    const float* b = bias.data_ptr<float>();
    at::parallel_for(0, blocks, 1, [&](int64_t begin, int64_t end) {
      std::vector<float> hbuf, dybuf, out(static_cast<size_t>(I));
      for (int64_t blk = begin; blk < end; ++blk)
        for (int64_t row = blk * kNormRowsPerBlock; row < std::min(N, (blk + 1) * kNormRowsPerBlock); ++row) {
          bias_gelu_backward_row(row_as_float(h, row, I, hbuf), b, row_as_float(dy, row, I, dybuf), out.data(),
                                 partial.data() + blk * I, I);
          write_row(dh, row, I, out.data());
        }
    });
    return {dh, sum_blocks(partial, blocks, I)};
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

namespace mpibert::model {

std::pair<torch::Tensor, torch::Tensor> fused_dropout_add_layer_norm(const torch::Tensor& a,
                                                                     const torch::Tensor& residual,
                                                                     const torch::Tensor& gamma,
                                                                     const torch::Tensor& beta, double eps, double p,
                                                                     uint64_t dropout_key, bool bf16_copy) {
  TORCH_CHECK(a.dim() == 2 && (a.scalar_type() == at::kFloat || a.scalar_type() == at::kBFloat16),
              "fused_dropout_add_layer_norm: a must be float32 or bfloat16 [N, H], got ", a.sizes(), " ",
              a.scalar_type());
  TORCH_CHECK(residual.scalar_type() == at::kFloat && residual.sizes() == a.sizes(),
              "fused_dropout_add_layer_norm: residual must be float32 with a's shape");
  TORCH_CHECK(gamma.scalar_type() == at::kFloat && beta.scalar_type() == at::kFloat && gamma.is_contiguous() &&
                  beta.is_contiguous() && gamma.numel() == a.size(1) && beta.numel() == a.size(1),
              "fused_dropout_add_layer_norm: gamma and beta must be contiguous float32 [H]");
  TORCH_CHECK(p >= 0.0 && p < 1.0, "fused_dropout_add_layer_norm: dropout must be in [0, 1)");
  auto out =
      DropoutAddLayerNormFn::apply(a, residual, gamma, beta, eps, p, static_cast<int64_t>(dropout_key), bf16_copy);
  return {out[0], bf16_copy ? out[1] : torch::Tensor()};
}

}  // namespace mpibert::model

namespace mpibert::model {

torch::Tensor fused_bias_gelu(const torch::Tensor& h, const torch::Tensor& bias) {
  TORCH_CHECK(h.dim() == 2 && (h.scalar_type() == at::kFloat || h.scalar_type() == at::kBFloat16),
              "fused_bias_gelu: h must be float32 or bfloat16 [N, I], got ", h.sizes(), " ", h.scalar_type());
  TORCH_CHECK(bias.scalar_type() == at::kFloat && bias.is_contiguous() && bias.numel() == h.size(1),
              "fused_bias_gelu: bias must be a contiguous float32 [I]");
  return BiasGeluFn::apply(h, bias);
}

}  // namespace mpibert::model
