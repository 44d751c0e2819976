#include "worker/model/attention.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <dlfcn.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "worker/model/counter_rng.h"
#include "worker/model/fast_math.h"

namespace mpibert::model {
namespace {

using SgemmFn = void (*)(const char*, const char*, const int*, const int*, const int*, const float*, const float*,
                         const int*, const float*, const int*, const float*, float*, const int*);
using GetThreadsFn = int (*)();
using SetThreadsFn = void (*)(int);

struct Blas {
  SgemmFn sgemm = nullptr;
  GetThreadsFn get_threads = nullptr;  // OpenBLAS only
  SetThreadsFn set_threads = nullptr;
};

const Blas& blas() {
  static const Blas b = [] {
    Blas r;
    r.sgemm = reinterpret_cast<SgemmFn>(dlsym(RTLD_DEFAULT, "sgemm_"));
    r.get_threads = reinterpret_cast<GetThreadsFn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
    r.set_threads = reinterpret_cast<SetThreadsFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
    return r;
  }();
  return b;
}

// Row-major C[M x N] = alpha * op(A) * op(B) + beta * C, through column-major sgemm on the transposes.
inline void gemm_rm(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B,
                    int ldb, float beta, float* C, int ldc) {
  const char ca = ta ? 'T' : 'N', cb = tb ? 'T' : 'N';
  blas().sgemm(&cb, &ca, &N, &M, &K, &alpha, B, &ldb, A, &lda, &beta, C, &ldc);
}

// The (batch, head) tiles run on the intra-op threads, each with a single-threaded BLAS: OpenBLAS's
// own pool would otherwise wake for every 128x128 product (and MKL/BLIS detect the nesting).
class SingleThreadedBlas {
 public:
  SingleThreadedBlas() {
    const Blas& b = blas();
    if (b.get_threads && b.set_threads) {
      prev_ = b.get_threads();
      if (prev_ != 1) b.set_threads(1);
    }
  }
  ~SingleThreadedBlas() {
    if (prev_ > 1) blas().set_threads(prev_);
  }

 private:
  int prev_ = 0;
};

// One row: s (+ mask) -> softmax in place (p); pd = dropout(p) when pd != nullptr.
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void softmax_row(
    float* __restrict s, const float* __restrict mask, int L, float* __restrict pd, uint64_t key, int64_t base,
    uint32_t threshold, float keep_scale) {
  if (mask)
    for (int j = 0; j < L; ++j) s[j] += mask[j];
  const float m = fast_math::max_lanes(s, L);
  for (int j = 0; j < L; ++j) s[j] = fast_math::exp(s[j] - m);
  const float inv = 1.0f / fast_math::sum_lanes(s, L);
  for (int j = 0; j < L; ++j) s[j] *= inv;
  if (pd)
    for (int j = 0; j < L; ++j) pd[j] = rng::bits32(key, base + j) >= threshold ? s[j] * keep_scale : 0.0f;
}

// Recomputes the dropped-out probabilities of one row (backward).
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void dropout_row(
    const float* __restrict p, float* __restrict pd, int L, uint64_t key, int64_t base, uint32_t threshold,
    float keep_scale) {
  for (int j = 0; j < L; ++j) pd[j] = rng::bits32(key, base + j) >= threshold ? p[j] * keep_scale : 0.0f;
}

// dS = P * (dP - sum(dP * P)) * scale, with dP first passed back through the dropout.
__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void softmax_backward_row(
    const float* __restrict p, float* __restrict dp, int L, bool dropout, uint64_t key, int64_t base,
    uint32_t threshold, float keep_scale, float scale) {
  if (dropout)
    for (int j = 0; j < L; ++j) dp[j] = rng::bits32(key, base + j) >= threshold ? dp[j] * keep_scale : 0.0f;
  const float dot = fast_math::dot_lanes(dp, p, L);
  for (int j = 0; j < L; ++j) dp[j] = p[j] * (dp[j] - dot) * scale;
}

struct Shape {
  int64_t B, L, heads, d, H;
};

class FusedAttentionFn : public torch::autograd::Function<FusedAttentionFn> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& qkv_in,
                               const torch::Tensor& key_mask, int64_t B, int64_t L, int64_t heads, double scale,
                               double p, int64_t key) {
    RECORD_FUNCTION("mpibert::attention", std::vector<c10::IValue>());
    const torch::Tensor qkv = qkv_in.contiguous();
    const int64_t H = qkv.size(1) / 3, d = H / heads, BH = B * heads;
    torch::Tensor out = torch::empty({B * L, H}, qkv.options());
    torch::Tensor probs = torch::empty({BH, L, L}, qkv.options());
    const float* src = qkv.data_ptr<float>();
    float* dst = out.data_ptr<float>();
    float* P = probs.data_ptr<float>();
    const float* mask = key_mask.numel() > 0 ? key_mask.data_ptr<float>() : nullptr;
    const uint32_t threshold = rng::drop_threshold(p);
    const float keep_scale = static_cast<float>(1.0 / (1.0 - p));
    const int iL = static_cast<int>(L), id = static_cast<int>(d), ld3 = static_cast<int>(3 * H),
              ldH = static_cast<int>(H);
    {
      SingleThreadedBlas single;
      at::parallel_for(0, BH, 1, [&](int64_t begin, int64_t end) {
        std::vector<float> pd(p > 0 ? static_cast<size_t>(L * L) : 0);
        for (int64_t bh = begin; bh < end; ++bh) {
          const int64_t b = bh / heads, h = bh % heads;
          const float* q = src + b * L * 3 * H + h * d;
          float* s = P + bh * L * L;
          gemm_rm(false, true, iL, iL, id, static_cast<float>(scale), q, ld3, q + H, ld3, 0.0f, s, iL);
          for (int64_t i = 0; i < L; ++i)
            softmax_row(s + i * L, mask ? mask + b * L : nullptr, iL, p > 0 ? pd.data() + i * L : nullptr,
                        static_cast<uint64_t>(key), bh * L * L + i * L, threshold, keep_scale);
          gemm_rm(false, false, iL, id, iL, 1.0f, p > 0 ? pd.data() : s, iL, q + 2 * H, ld3, 0.0f,
                  dst + b * L * H + h * d, ldH);
        }
      });
    }
    ctx->save_for_backward({qkv, probs});
    ctx->saved_data["heads"] = heads;
    ctx->saved_data["L"] = L;
    ctx->saved_data["B"] = B;
    ctx->saved_data["scale"] = scale;
    ctx->saved_data["p"] = p;
    ctx->saved_data["key"] = key;
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    RECORD_FUNCTION("mpibert::attention_backward", std::vector<c10::IValue>());
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& qkv = saved[0];
    const torch::Tensor& probs = saved[1];
    const int64_t heads = ctx->saved_data["heads"].toInt(), L = ctx->saved_data["L"].toInt();
    const int64_t B = ctx->saved_data["B"].toInt();
    const double scale = ctx->saved_data["scale"].toDouble(), p = ctx->saved_data["p"].toDouble();
    const auto key = static_cast<uint64_t>(ctx->saved_data["key"].toInt());
    const int64_t H = qkv.size(1) / 3, d = H / heads, BH = B * heads;
    const torch::Tensor dout = grads[0].contiguous();
    torch::Tensor dqkv = torch::empty_like(qkv);
    const float* src = qkv.data_ptr<float>();
    const float* go = dout.data_ptr<float>();
    const float* P = probs.data_ptr<float>();
    float* dst = dqkv.data_ptr<float>();
    const uint32_t threshold = rng::drop_threshold(p);
    const float keep_scale = static_cast<float>(1.0 / (1.0 - p));
    const int iL = static_cast<int>(L), id = static_cast<int>(d), ld3 = static_cast<int>(3 * H),
              ldH = static_cast<int>(H);
    {
      SingleThreadedBlas single;
      at::parallel_for(0, BH, 1, [&](int64_t begin, int64_t end) {
        std::vector<float> pd(p > 0 ? static_cast<size_t>(L * L) : 0), dp(static_cast<size_t>(L * L));
        for (int64_t bh = begin; bh < end; ++bh) {
          const int64_t b = bh / heads, h = bh % heads;
          const float* q = src + b * L * 3 * H + h * d;
          const float* k = q + H;
          const float* v = q + 2 * H;
          const float* s = P + bh * L * L;
          const float* dO = go + b * L * H + h * d;
          float* dq = dst + b * L * 3 * H + h * d;
          const float* used = s;  // the probabilities the forward multiplied V with
          if (p > 0) {
            for (int64_t i = 0; i < L; ++i)
              dropout_row(s + i * L, pd.data() + i * L, iL, key, bh * L * L + i * L, threshold, keep_scale);
            used = pd.data();
          }
          gemm_rm(true, false, iL, id, iL, 1.0f, used, iL, dO, ldH, 0.0f, dq + 2 * H, ld3);  // dV = Pd^T dO
          gemm_rm(false, true, iL, iL, id, 1.0f, dO, ldH, v, ld3, 0.0f, dp.data(), iL);      // dPd = dO V^T
          for (int64_t i = 0; i < L; ++i)
            softmax_backward_row(s + i * L, dp.data() + i * L, iL, p > 0, key, bh * L * L + i * L, threshold,
                                 keep_scale, static_cast<float>(scale));
          gemm_rm(false, false, iL, id, iL, 1.0f, dp.data(), iL, k, ld3, 0.0f, dq, ld3);     // dQ = dS K
          gemm_rm(true, false, iL, id, iL, 1.0f, dp.data(), iL, q, ld3, 0.0f, dq + H, ld3);  // dK = dS^T Q
        }
      });
    }
    return {dqkv,
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor(),
            torch::Tensor()};
  }
};

}  // namespace

bool fused_attention_available() {
  return blas().sgemm != nullptr;
}

torch::Tensor fused_attention(const torch::Tensor& qkv, const torch::Tensor& key_mask, int64_t batch, int64_t seq_len,
                              int64_t heads, double scale, double dropout_p, uint64_t dropout_key) {
  TORCH_CHECK(fused_attention_available(), "fused_attention: no sgemm_ in the process");
  TORCH_CHECK(qkv.scalar_type() == at::kFloat && qkv.dim() == 2 && qkv.size(0) == batch * seq_len &&
                  qkv.size(1) % (3 * heads) == 0,
              "fused_attention: qkv must be float32 [batch*seq_len, 3*H] with H divisible by heads, got ", qkv.sizes(),
              " ", qkv.scalar_type());
  TORCH_CHECK(!key_mask.defined() || (key_mask.scalar_type() == at::kFloat && key_mask.is_contiguous() &&
                                      key_mask.numel() == batch * seq_len),
              "fused_attention: key_mask must be a contiguous float32 [batch, seq_len]");
  TORCH_CHECK(dropout_p >= 0.0 && dropout_p < 1.0, "fused_attention: dropout must be in [0, 1)");
  // Custom autograd functions cannot take undefined tensors: "no mask" travels as an empty tensor.
  return FusedAttentionFn::apply(qkv, key_mask.defined() ? key_mask : torch::empty({0}), batch, seq_len, heads, scale,
                                 dropout_p, static_cast<int64_t>(dropout_key));
}

}  // namespace mpibert::model
