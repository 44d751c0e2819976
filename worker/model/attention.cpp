#include "worker/model/attention.h"

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <dlfcn.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

#include "worker/model/counter_rng.h"
#include "worker/model/fast_math.h"

namespace mpibert::model {
namespace {

using SgemmFn = void (*)(const char*, const char*, const int*, const int*, const int*, const float*, const float*,
                         const int*, const float*, const int*, const float*, float*, const int*);
// oneDNN's C API (row-major, bf16 operands, fp32 result); libtorch links libdnnl for its bf16 matmuls.
using Bf16GemmFn = int (*)(char, char, int64_t, int64_t, int64_t, float, const uint16_t*, int64_t, const uint16_t*,
                           int64_t, float, float*, int64_t);
using GetThreadsFn = int (*)();
using SetThreadsFn = void (*)(int);

struct Blas {
  SgemmFn sgemm = nullptr;
  Bf16GemmFn bf16_gemm = nullptr;
  GetThreadsFn get_threads = nullptr;  // OpenBLAS only
  SetThreadsFn set_threads = nullptr;
};

const Blas& blas() {
  static const Blas b = [] {
    Blas r;
    r.sgemm = reinterpret_cast<SgemmFn>(dlsym(RTLD_DEFAULT, "sgemm_"));
    r.bf16_gemm = reinterpret_cast<Bf16GemmFn>(dlsym(RTLD_DEFAULT, "dnnl_gemm_bf16bf16f32"));
    r.get_threads = reinterpret_cast<GetThreadsFn>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
    r.set_threads = reinterpret_cast<SetThreadsFn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
    return r;
  }();
  return b;
}

// The (batch, head) tiles run on the intra-op threads, each with a single-threaded BLAS: OpenBLAS's
// own pool would otherwise wake for every 128x128 product (and MKL/BLIS detect the nesting; oneDNN
// runs single-threaded inside a parallel region).
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

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void to_bf16(const float* __restrict in,
                                                                                           uint16_t* __restrict out,
                                                                                           int64_t n) {
  for (int64_t j = 0; j < n; ++j) out[j] = fast_math::float_to_bf16(in[j]);
}

// The element type's products on row-major tiles. Every product has fp32 accumulation; `product`
// writes an fp32 tile (scores, dP), `product_into` the element type at a strided destination (the
// context and dQ/dK/dV, through the fp32 scratch `tmp` for bf16), and `operand` gives an fp32 tile
// (probabilities, dS) as the element type (a bf16 copy in `scratch`).
struct Fp32Tiles {
  using T = float;
  static bool available() { return blas().sgemm != nullptr; }
  static void product(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda, const float* B,
                      int ldb, float* C, int ldc) {
    // Row-major through column-major sgemm on the transposes.
    const char ca = ta ? 'T' : 'N', cb = tb ? 'T' : 'N';
    const float beta = 0.0f;
    blas().sgemm(&cb, &ca, &N, &M, &K, &alpha, B, &ldb, A, &lda, &beta, C, &ldc);
  }
  static void product_into(bool ta, bool tb, int M, int N, int K, const float* A, int lda, const float* B, int ldb,
                           float* C, int ldc, float* /*tmp*/) {
    product(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, C, ldc);
  }
  static const float* operand(const float* tile, float* /*scratch*/, int64_t /*n*/) { return tile; }
};

struct Bf16Tiles {
  using T = uint16_t;
  static bool available() { return blas().bf16_gemm != nullptr; }
  static void product(bool ta, bool tb, int M, int N, int K, float alpha, const uint16_t* A, int lda, const uint16_t* B,
                      int ldb, float* C, int ldc) {
    blas().bf16_gemm(ta ? 'T' : 'N', tb ? 'T' : 'N', M, N, K, alpha, A, lda, B, ldb, 0.0f, C, ldc);
  }
  static void product_into(bool ta, bool tb, int M, int N, int K, const uint16_t* A, int lda, const uint16_t* B,
                           int ldb, uint16_t* C, int ldc, float* tmp) {
    product(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, tmp, N);
    for (int i = 0; i < M; ++i) to_bf16(tmp + static_cast<int64_t>(i) * N, C + static_cast<int64_t>(i) * ldc, N);
  }
  static const uint16_t* operand(const float* tile, uint16_t* scratch, int64_t n) {
    to_bf16(tile, scratch, n);
    return scratch;
  }
};

template <typename E>
typename E::T* data_of(const torch::Tensor& t) {
  return static_cast<typename E::T*>(t.data_ptr());
}

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

// Per-thread scratch of one (batch, head) tile.
template <typename E>
struct Scratch {
  // fp32 tiles are their own operands and products land in place: only bf16 needs tile and tmp.
  static constexpr bool kConverts = !std::is_same_v<typename E::T, float>;
  Scratch(int64_t L, int64_t d)
      : pd(static_cast<size_t>(L * L)),
        dp(static_cast<size_t>(L * L)),
        tile(kConverts ? static_cast<size_t>(L * L) : 0),
        tmp(kConverts ? static_cast<size_t>(L * d) : 0) {}
  std::vector<float> pd, dp;
  std::vector<typename E::T> tile;
  std::vector<float> tmp;
};

template <typename E>
class FusedAttentionFn : public torch::autograd::Function<FusedAttentionFn<E>> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& qkv_in,
                               const torch::Tensor& key_mask, int64_t B, int64_t L, int64_t heads, double scale,
                               double p, int64_t key) {
    RECORD_FUNCTION("mpibert::attention", std::vector<c10::IValue>());
    const torch::Tensor qkv = qkv_in.contiguous();
    const int64_t H = qkv.size(1) / 3, d = H / heads, BH = B * heads;
    torch::Tensor out = torch::empty({B * L, H}, qkv.options());
    torch::Tensor probs = torch::empty({BH, L, L}, qkv.options().dtype(at::kFloat));
    const auto* src = data_of<E>(qkv);
    auto* dst = data_of<E>(out);
    float* P = probs.data_ptr<float>();
    const float* mask = key_mask.numel() > 0 ? key_mask.data_ptr<float>() : nullptr;
    const uint32_t threshold = rng::drop_threshold(p);
    const float keep_scale = static_cast<float>(1.0 / (1.0 - p));
    const int iL = static_cast<int>(L), id = static_cast<int>(d), ld3 = static_cast<int>(3 * H),
              ldH = static_cast<int>(H);
    {
      SingleThreadedBlas single;
      at::parallel_for(0, BH, 1, [&](int64_t begin, int64_t end) {
        Scratch<E> w(L, d);
        for (int64_t bh = begin; bh < end; ++bh) {
          const int64_t b = bh / heads, h = bh % heads;
          const auto* q = src + b * L * 3 * H + h * d;
          float* s = P + bh * L * L;
          E::product(false, true, iL, iL, id, static_cast<float>(scale), q, ld3, q + H, ld3, s, iL);
          for (int64_t i = 0; i < L; ++i)
            softmax_row(s + i * L, mask ? mask + b * L : nullptr, iL, p > 0 ? w.pd.data() + i * L : nullptr,
                        static_cast<uint64_t>(key), bh * L * L + i * L, threshold, keep_scale);
          const auto* used = E::operand(p > 0 ? w.pd.data() : s, w.tile.data(), L * L);
          E::product_into(false, false, iL, id, iL, used, iL, q + 2 * H, ld3, dst + b * L * H + h * d, ldH,
                          w.tmp.data());
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
    const torch::Tensor dout = grads[0].to(qkv.scalar_type()).contiguous();
    torch::Tensor dqkv = torch::empty_like(qkv);
    const auto* src = data_of<E>(qkv);
    const auto* go = data_of<E>(dout);
    const float* P = probs.data_ptr<float>();
    auto* dst = data_of<E>(dqkv);
    const uint32_t threshold = rng::drop_threshold(p);
    const float keep_scale = static_cast<float>(1.0 / (1.0 - p));
    const int iL = static_cast<int>(L), id = static_cast<int>(d), ld3 = static_cast<int>(3 * H),
              ldH = static_cast<int>(H);
    {
      SingleThreadedBlas single;
      at::parallel_for(0, BH, 1, [&](int64_t begin, int64_t end) {
        Scratch<E> w(L, d);
        for (int64_t bh = begin; bh < end; ++bh) {
          const int64_t b = bh / heads, h = bh % heads;
          const auto* q = src + b * L * 3 * H + h * d;
          const auto* k = q + H;
          const auto* v = q + 2 * H;
          const float* s = P + bh * L * L;
          const auto* dO = go + b * L * H + h * d;
          auto* dq = dst + b * L * 3 * H + h * d;
          const float* used = s;  // the probabilities the forward multiplied V with
          if (p > 0) {
            for (int64_t i = 0; i < L; ++i)
              dropout_row(s + i * L, w.pd.data() + i * L, iL, key, bh * L * L + i * L, threshold, keep_scale);
            used = w.pd.data();
          }
          const auto* pd = E::operand(used, w.tile.data(), L * L);
          E::product_into(true, false, iL, id, iL, pd, iL, dO, ldH, dq + 2 * H, ld3, w.tmp.data());  // dV = Pd^T dO
          E::product(false, true, iL, iL, id, 1.0f, dO, ldH, v, ld3, w.dp.data(), iL);               // dPd = dO V^T
          for (int64_t i = 0; i < L; ++i)
            softmax_backward_row(s + i * L, w.dp.data() + i * L, iL, p > 0, key, bh * L * L + i * L, threshold,
                                 keep_scale, static_cast<float>(scale));
          const auto* ds = E::operand(w.dp.data(), w.tile.data(), L * L);
          E::product_into(false, false, iL, id, iL, ds, iL, k, ld3, dq, ld3, w.tmp.data());     // dQ = dS K
          E::product_into(true, false, iL, id, iL, ds, iL, q, ld3, dq + H, ld3, w.tmp.data());  // dK = dS^T Q
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

bool fused_attention_available(at::ScalarType dtype) {
  if (dtype == at::kFloat) return Fp32Tiles::available();
  if (dtype == at::kBFloat16) return Bf16Tiles::available();
  return false;
}

torch::Tensor fused_attention(const torch::Tensor& qkv, const torch::Tensor& key_mask, int64_t batch, int64_t seq_len,
                              int64_t heads, double scale, double dropout_p, uint64_t dropout_key) {
  const bool bf16 = qkv.scalar_type() == at::kBFloat16;
  TORCH_CHECK((qkv.scalar_type() == at::kFloat || bf16) && qkv.dim() == 2 && qkv.size(0) == batch * seq_len &&
                  qkv.size(1) % (3 * heads) == 0,
              "fused_attention: qkv must be float32 or bfloat16 [batch*seq_len, 3*H] with H divisible by heads, got ",
              qkv.sizes(), " ", qkv.scalar_type());
  TORCH_CHECK(fused_attention_available(qkv.scalar_type()), "fused_attention: no ", bf16 ? "bf16" : "fp32",
              " GEMM in the process");
  TORCH_CHECK(!key_mask.defined() || (key_mask.scalar_type() == at::kFloat && key_mask.is_contiguous() &&
                                      key_mask.numel() == batch * seq_len),
              "fused_attention: key_mask must be a contiguous float32 [batch, seq_len]");
  TORCH_CHECK(dropout_p >= 0.0 && dropout_p < 1.0, "fused_attention: dropout must be in [0, 1)");
  // Custom autograd functions cannot take undefined tensors: "no mask" travels as an empty tensor.
  const torch::Tensor mask = key_mask.defined() ? key_mask : torch::empty({0});
  const auto key = static_cast<int64_t>(dropout_key);
  if (bf16) return FusedAttentionFn<Bf16Tiles>::apply(qkv, mask, batch, seq_len, heads, scale, dropout_p, key);
  return FusedAttentionFn<Fp32Tiles>::apply(qkv, mask, batch, seq_len, heads, scale, dropout_p, key);
}

}  // namespace mpibert::model
