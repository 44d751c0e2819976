#include "worker/model/bert_encoder.h"

#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <ATen/record_function.h>
#include <torch/torch.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <mutex>
#include <stdexcept>

#include "worker/model/attention.h"
#include "worker/model/bf16_weights.h"
#include "worker/model/counter_rng.h"
#include "worker/model/fused_ops.h"
#include "worker/model/precision.h"

namespace mpibert::model {

// ---------------------------------------------------------------------------------------------
// Seeded dropout: element i is kept when the high 32 bits of splitmix64(key + (i+1) * golden) are
// >= p * 2^32. The hash vectorises (AVX-512 has 64-bit multiplies), runs ~50x faster than ATen's
// bernoulli_ on CPU, and backward recomputes the mask from (key, i) instead of saving it.
// ---------------------------------------------------------------------------------------------
namespace {

using rng::kGolden;
using rng::splitmix64;

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void dropout_f32(
    const float* __restrict in, float* __restrict out, int64_t begin, int64_t end, uint64_t key, uint32_t threshold,
    float scale) {
  for (int64_t i = begin; i < end; ++i) {
    const uint32_t r = static_cast<uint32_t>(splitmix64(key + static_cast<uint64_t>(i + 1) * kGolden) >> 32);
    out[i] = r >= threshold ? in[i] * scale : 0.0f;
  }
}

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void dropout_bf16(
    const uint16_t* __restrict in, uint16_t* __restrict out, int64_t begin, int64_t end, uint64_t key,
    uint32_t threshold, float scale) {
  for (int64_t i = begin; i < end; ++i) {
    const uint32_t r = static_cast<uint32_t>(splitmix64(key + static_cast<uint64_t>(i + 1) * kGolden) >> 32);
    uint32_t bits = static_cast<uint32_t>(in[i]) << 16;
    float v;
    std::memcpy(&v, &bits, 4);
    v = r >= threshold ? v * scale : 0.0f;
    std::memcpy(&bits, &v, 4);
    // Round to nearest even, as c10::BFloat16 does (inputs here are finite activations/gradients).
    bits += 0x7FFFu + ((bits >> 16) & 1u);
    out[i] = static_cast<uint16_t>(bits >> 16);
  }
}

torch::Tensor apply_dropout_mask(const torch::Tensor& x_in, double p, uint64_t key) {
  RECORD_FUNCTION("mpibert::dropout", std::vector<c10::IValue>());  // forward and backward: a named profile range
  torch::Tensor x = x_in.contiguous();
  torch::Tensor out = torch::empty_like(x, at::MemoryFormat::Contiguous);
  const int64_t n = x.numel();
  const uint32_t threshold = rng::drop_threshold(p);
  const float scale = static_cast<float>(1.0 / (1.0 - p));
  constexpr int64_t kGrain = 32768;
  if (x.scalar_type() == at::kFloat) {
    const float* src = x.data_ptr<float>();
    float* dst = out.data_ptr<float>();
    at::parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) { dropout_f32(src, dst, b, e, key, threshold, scale); });
  } else if (x.scalar_type() == at::kBFloat16) {
    const auto* src = reinterpret_cast<const uint16_t*>(x.data_ptr<at::BFloat16>());
    auto* dst = reinterpret_cast<uint16_t*>(out.data_ptr<at::BFloat16>());
    at::parallel_for(0, n, kGrain, [&](int64_t b, int64_t e) { dropout_bf16(src, dst, b, e, key, threshold, scale); });
  } else {
    throw std::runtime_error(std::string("seeded_dropout: unsupported dtype ") + c10::toString(x.scalar_type()) +
                             " (float32 and bfloat16 are)");
  }
  return out;
}

class SeededDropoutFn : public torch::autograd::Function<SeededDropoutFn> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, double p, int64_t key) {
    ctx->saved_data["p"] = p;
    ctx->saved_data["key"] = key;
    return apply_dropout_mask(x, p, static_cast<uint64_t>(key));
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const double p = ctx->saved_data["p"].toDouble();
    const auto key = static_cast<uint64_t>(ctx->saved_data["key"].toInt());
    return {apply_dropout_mask(grads[0], p, key), torch::Tensor(), torch::Tensor()};
  }
};

// What a checkpointed layer needs to run again in backward (kept in the autograd node as a capsule).
struct LayerRecompute : torch::CustomClassHolder {
  std::function<torch::Tensor(const torch::Tensor&)> run;
  std::vector<torch::Tensor> params;
};

// Activation checkpointing (HF's gradient_checkpointing): the forward pass keeps a layer's input only;
// backward runs the layer again, under the same autocast, and backpropagates through that run. The layer's
// parameters are inputs of this node, so their gradients reach AccumulateGrad (and the reducer's hooks).
class CheckpointedLayerFn : public torch::autograd::Function<CheckpointedLayerFn> {
 public:
  static torch::Tensor forward(torch::autograd::AutogradContext* ctx, const torch::Tensor& x, at::TensorList,
                               const c10::IValue& recompute) {
    ctx->save_for_backward({x});
    ctx->saved_data["recompute"] = recompute;
    ctx->saved_data["bf16"] = at::autocast::is_cpu_enabled();
    return static_cast<LayerRecompute&>(*recompute.toCapsule()).run(x);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    RECORD_FUNCTION("mpibert::checkpoint_recompute", std::vector<c10::IValue>());
    const auto capsule = ctx->saved_data["recompute"].toCapsule();
    auto& recompute = static_cast<LayerRecompute&>(*capsule);
    const torch::Tensor x = ctx->get_saved_variables()[0].detach().requires_grad_(true);
    torch::Tensor out;
    {
      at::AutoGradMode grad_on(true);
      AutocastGuard autocast(ctx->saved_data["bf16"].toBool());
      out = recompute.run(x);
    }
    std::vector<torch::Tensor> wrt{x};
    wrt.insert(wrt.end(), recompute.params.begin(), recompute.params.end());
    torch::autograd::variable_list g = torch::autograd::grad({out}, wrt, {grads[0]}, false, false, true);
    g.emplace_back();  // for the recompute capsule
    return g;
  }
};

}  // namespace

torch::Tensor seeded_dropout(const torch::Tensor& x, double p, uint64_t key) {
  if (!(p >= 0.0 && p < 1.0))
    throw std::invalid_argument("seeded_dropout: p must be in [0, 1), got " + std::to_string(p));
  if (p == 0.0) return x;
  return SeededDropoutFn::apply(x, p, static_cast<int64_t>(key));
}

// ---------------------------------------------------------------------------------------------
// Building blocks, registered in a module tree that reproduces Hugging Face's names.
// ---------------------------------------------------------------------------------------------
ParamInit::ParamInit(const BertConfig& cfg, std::optional<uint64_t> seed) : stddev(cfg.initializer_range) {
  if (seed) gen = at::make_generator<at::CPUGeneratorImpl>(*seed);
}

void ParamInit::normal(torch::Tensor& t) const {
  if (gen) {
    t.normal_(0.0, stddev, *gen);
  } else {
    t.normal_(0.0, stddev);
  }
}

uint64_t ParamInit::random64() const {
  at::Generator source = gen ? *gen : at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(source.mutex());
  return source.get<at::CPUGeneratorImpl>()->random64();
}

std::shared_ptr<torch::nn::Module> child_module(torch::nn::Module& parent, const std::string& name) {
  return parent.register_module(name, std::make_shared<torch::nn::Module>(name));
}

Dense make_dense(torch::nn::Module& parent, const std::string& name, int64_t in, int64_t out, const ParamInit& init) {
  auto m = child_module(parent, name);
  Dense d;
  d.weight = torch::empty({out, in});
  init.normal(d.weight);
  d.bias = torch::zeros({out});
  d.weight = m->register_parameter("weight", d.weight);
  d.bias = m->register_parameter("bias", d.bias);
  return d;
}

Norm make_norm(torch::nn::Module& parent, const std::string& name, int64_t size) {
  auto m = child_module(parent, name);
  Norm n;
  n.weight = m->register_parameter("weight", torch::ones({size}));
  n.bias = m->register_parameter("bias", torch::zeros({size}));
  return n;
}

torch::Tensor linear(const torch::Tensor& x, const Dense& d) {
  return at::addmm(d.bias, x, gemm_weight(d.weight).t());
}

torch::Tensor gemm_weight(const torch::Tensor& weight) {
  // Under autocast the GEMM runs in bf16: the kept copy instead of a fresh cast in every forward.
  return at::autocast::is_cpu_enabled() && weight.scalar_type() == at::kFloat ? bf16_weight(weight) : weight;
}

torch::Tensor layer_norm(const torch::Tensor& x, const Norm& n, double eps) {
  // libtorch 1.13's CPU layer_norm rejects mixed dtypes: bf16 inputs (autocast) go up to fp32 first.
  const torch::Tensor in = x.scalar_type() == at::kFloat ? x : x.to(at::kFloat);
  return at::layer_norm(in, {n.weight.size(0)}, n.weight, n.bias, eps, /*cudnn_enable=*/false);
}

torch::Tensor activation(const torch::Tensor& x, const std::string& act) {
  if (act == "gelu") return at::gelu(x);
  if (act == "relu") return at::relu(x);
  return at::gelu(x, "tanh");  // gelu_new, gelu_pytorch_tanh (validated in the config)
}

// ---------------------------------------------------------------------------------------------
// The encoder.
// ---------------------------------------------------------------------------------------------
struct BertEncoderImpl::Layer {
  Dense query, key, value, attn_out;
  Norm attn_norm;
  Dense intermediate, output;
  Norm out_norm;
};

struct BertEncoderImpl::Weights {
  torch::Tensor word, position, token_type;
  Norm emb_norm;
  std::vector<Layer> layers;
  std::optional<Dense> pooler;
};

namespace {

torch::Tensor make_embedding(torch::nn::Module& parent, const std::string& name, int64_t rows, int64_t dim,
                             const ParamInit& init, int64_t padding_idx) {
  auto m = child_module(parent, name);
  auto w = torch::empty({rows, dim});
  init.normal(w);
  if (padding_idx >= 0) w[padding_idx].zero_();
  return m->register_parameter("weight", w);
}

void check_shape(const torch::Tensor& t, const char* what, const torch::Tensor& ids) {
  if (t.defined() && t.sizes() != ids.sizes())
    throw std::invalid_argument(std::string("BERT: ") + what + " has shape " + c10::str(t.sizes()) +
                                ", input_ids has " + c10::str(ids.sizes()));
}

const float kMaskValue = -std::ldexp(255.0f / 128.0f, 127);  // bf16 lowest, exact in fp32

// Additive key mask [B, L]: 0 for tokens, a huge negative for padding (HF uses fp32's lowest; bf16's
// lowest survives autocast's cast to bf16 instead of becoming -inf, which would turn an all-padding
// row into NaN). Undefined when nothing is padded.
torch::Tensor additive_key_mask(const torch::Tensor& attention_mask) {
  if (!attention_mask.defined()) return {};
  torch::NoGradGuard no_grad;
  const torch::Tensor keep = attention_mask.to(at::kFloat);
  if (keep.eq(1.0f).all().item<bool>()) return {};
  return ((1.0f - keep) * kMaskValue).contiguous();
}

}  // namespace

BertEncoderImpl::BertEncoderImpl(const BertConfig& cfg, const ParamInit& init, bool with_pooler)
    : torch::nn::Module("BertModel"), cfg_(cfg), w_(std::make_shared<Weights>()) {
  validate(cfg_, "BERT config");
  torch::NoGradGuard no_grad;
  const int64_t H = cfg_.hidden_size, I = cfg_.intermediate_size;
  Weights& w = *w_;
  auto embeddings = child_module(*this, "embeddings");
  w.word = make_embedding(*embeddings, "word_embeddings", cfg_.vocab_size, H, init, cfg_.pad_token_id);
  w.position = make_embedding(*embeddings, "position_embeddings", cfg_.max_position_embeddings, H, init, -1);
  w.token_type = make_embedding(*embeddings, "token_type_embeddings", cfg_.type_vocab_size, H, init, -1);
  w.emb_norm = make_norm(*embeddings, "LayerNorm", H);

  auto layer_list = child_module(*child_module(*this, "encoder"), "layer");
  for (int64_t i = 0; i < cfg_.num_hidden_layers; ++i) {
    auto layer = child_module(*layer_list, std::to_string(i));
    auto attention = child_module(*layer, "attention");
    auto self = child_module(*attention, "self");
    Layer l;
    l.query = make_dense(*self, "query", H, H, init);
    l.key = make_dense(*self, "key", H, H, init);
    l.value = make_dense(*self, "value", H, H, init);
    auto attn_output = child_module(*attention, "output");
    l.attn_out = make_dense(*attn_output, "dense", H, H, init);
    l.attn_norm = make_norm(*attn_output, "LayerNorm", H);
    l.intermediate = make_dense(*child_module(*layer, "intermediate"), "dense", H, I, init);
    auto output = child_module(*layer, "output");
    l.output = make_dense(*output, "dense", I, H, init);
    l.out_norm = make_norm(*output, "LayerNorm", H);
    w.layers.push_back(l);
  }
  if (with_pooler) w.pooler = make_dense(*child_module(*this, "pooler"), "dense", H, H, init);
}

const torch::Tensor& BertEncoderImpl::word_embeddings() const {
  return w_->word;
}

void BertEncoderImpl::set_dropout_seed(uint64_t seed) {
  dropout_seed_ = seed;
  dropout_counter_ = 0;
}

uint64_t BertEncoderImpl::next_dropout_key() {
  return rng::splitmix64(rng::splitmix64(dropout_seed_ ^ 0x6D70696265727444ull) + (++dropout_counter_) * kGolden);
}

torch::Tensor BertEncoderImpl::dropout(const torch::Tensor& x, double p) {
  return is_training() && p > 0 ? seeded_dropout(x, p, next_dropout_key()) : x;
}

torch::Tensor BertEncoderImpl::embed(const torch::Tensor& ids, const torch::Tensor& token_type_ids) {
  const Weights& w = *w_;
  const int64_t L = ids.size(1);
  torch::Tensor x = at::embedding(w.word, ids, cfg_.pad_token_id);
  if (token_type_ids.defined()) {
    x = x + w.position.narrow(0, 0, L) + at::embedding(w.token_type, token_type_ids.to(at::kLong));
  } else {
    x = x + (w.position.narrow(0, 0, L) + w.token_type.select(0, 0));  // HF's default: all type 0
  }
  return dropout(layer_norm(x, w.emb_norm, cfg_.layer_norm_eps), cfg_.hidden_dropout_prob)
      .reshape({ids.size(0) * L, cfg_.hidden_size});
}

torch::Tensor BertEncoderImpl::attention(const torch::Tensor& x, const Layer& l, const torch::Tensor& key_mask,
                                         torch::Tensor& key_mask_bh, int64_t B, int64_t L) {
  const int64_t H = cfg_.hidden_size, heads = cfg_.num_attention_heads, d = cfg_.head_dim();
  const double p_attn = is_training() ? cfg_.attention_probs_dropout_prob : 0.0;
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  // Q | K | V as [N, 3H]: one GEMM on weights concatenated at forward time, or three (as HF).
  torch::Tensor qkv;
  if (fused_qkv_) {
    const torch::Tensor wqkv =
        at::cat({gemm_weight(l.query.weight), gemm_weight(l.key.weight), gemm_weight(l.value.weight)}, 0);
    const torch::Tensor bqkv = at::cat({l.query.bias, l.key.bias, l.value.bias}, 0);
    qkv = at::addmm(bqkv, x, wqkv.t());
  } else {
    qkv = at::cat({linear(x, l.query), linear(x, l.key), linear(x, l.value)}, 1);
  }
  const bool fused = qkv.scalar_type() == at::kBFloat16 ? fused_bf16_attention_ : fused_attention_;
  if (fused && fused_attention_available(qkv.scalar_type())) {
    // (batch, head) tiles in parallel on strided views (attention.h).
    return ::mpibert::model::fused_attention(qkv, key_mask, B, L, heads, scale, p_attn,
                                             p_attn > 0 ? next_dropout_key() : 0);
  }
  // No GEMM for the fused kernel (or turned off): ATen ops on [B*heads, L, d] copies.
  const torch::Tensor qkv5 = qkv.view({B, L, 3, heads, d});
  const torch::Tensor q = qkv5.select(2, 0).permute({0, 2, 1, 3}).reshape({B * heads, L, d});
  const torch::Tensor k = qkv5.select(2, 1).permute({0, 2, 1, 3}).reshape({B * heads, L, d});
  const torch::Tensor v = qkv5.select(2, 2).permute({0, 2, 1, 3}).reshape({B * heads, L, d});
  if (key_mask.defined() && !key_mask_bh.defined())
    key_mask_bh = key_mask.view({B, 1, 1, L}).expand({B, heads, 1, L}).reshape({B * heads, 1, L});
  // scores = Q K^T / sqrt(d) + mask in one GEMM; softmax in fp32.
  torch::Tensor scores = key_mask_bh.defined() ? at::baddbmm(key_mask_bh, q, k.transpose(1, 2), 1.0, scale)
                                               : at::baddbmm(torch::zeros({1, 1, 1}), q, k.transpose(1, 2), 0.0, scale);
  if (scores.scalar_type() != at::kFloat) scores = scores.to(at::kFloat);
  const torch::Tensor probs = dropout(at::softmax(scores, -1), p_attn);
  return at::bmm(probs, v).view({B, heads, L, d}).permute({0, 2, 1, 3}).reshape({B * L, H});
}

torch::Tensor BertEncoderImpl::forward_flat(const torch::Tensor& input_ids_in, const torch::Tensor& attention_mask,
                                            const torch::Tensor& token_type_ids) {
  if (input_ids_in.dim() != 2)
    throw std::invalid_argument("BERT: input_ids must be [batch, seq_len], got " + c10::str(input_ids_in.sizes()));
  check_shape(attention_mask, "attention_mask", input_ids_in);
  check_shape(token_type_ids, "token_type_ids", input_ids_in);
  const torch::Tensor ids = input_ids_in.scalar_type() == at::kLong ? input_ids_in : input_ids_in.to(at::kLong);
  const int64_t B = ids.size(0), L = ids.size(1);
  if (L > cfg_.max_position_embeddings)
    throw std::invalid_argument("BERT: sequence length " + std::to_string(L) + " exceeds max_position_embeddings " +
                                std::to_string(cfg_.max_position_embeddings));
  torch::Tensor x = embed(ids, token_type_ids);
  const torch::Tensor key_mask = additive_key_mask(attention_mask);
  torch::Tensor key_mask_bh;
  const bool checkpoint = gradient_checkpointing_ && is_training() && torch::GradMode::is_enabled();
  for (const Layer& l : w_->layers)
    x = checkpoint ? checkpointed_layer(x, l, key_mask, B, L) : layer(x, l, key_mask, key_mask_bh, B, L);
  return x;  // [N, H] fp32
}

torch::Tensor BertEncoderImpl::layer(const torch::Tensor& x_in, const Layer& l, const torch::Tensor& key_mask,
                                     torch::Tensor& key_mask_bh, int64_t B, int64_t L) {
  const torch::Tensor attn = linear(attention(x_in, l, key_mask, key_mask_bh, B, L), l.attn_out);
  const auto [x, x_bf16] = add_norm(attn, x_in, l.attn_norm, /*bf16_copy=*/true);
  const torch::Tensor ffn_in = x_bf16.defined() ? x_bf16 : x;
  const torch::Tensor inner = fused_bias_gelu_ && cfg_.hidden_act == "gelu"
                                  ? ::mpibert::model::fused_bias_gelu(
                                        at::mm(ffn_in, gemm_weight(l.intermediate.weight).t()), l.intermediate.bias)
                                  : activation(linear(ffn_in, l.intermediate), cfg_.hidden_act);
  return add_norm(linear(inner, l.output), x, l.out_norm, /*bf16_copy=*/false).first;
}

std::pair<torch::Tensor, torch::Tensor> BertEncoderImpl::add_norm(const torch::Tensor& a, const torch::Tensor& residual,
                                                                  const Norm& n, bool bf16_copy) {
  if (fused_add_norm_ && residual.scalar_type() == at::kFloat) {
    const double p = is_training() ? cfg_.hidden_dropout_prob : 0.0;
    // The same dropout key as the ATen path below draws (one per dropout while training).
    return fused_dropout_add_layer_norm(a, residual, n.weight, n.bias, cfg_.layer_norm_eps, p,
                                        p > 0 ? next_dropout_key() : 0, bf16_copy && a.scalar_type() == at::kBFloat16);
  }
  return {layer_norm(dropout(a, cfg_.hidden_dropout_prob) + residual, n, cfg_.layer_norm_eps), torch::Tensor()};
}

torch::Tensor BertEncoderImpl::checkpointed_layer(const torch::Tensor& x, const Layer& l, const torch::Tensor& key_mask,
                                                  int64_t B, int64_t L) {
  auto recompute = c10::make_intrusive<LayerRecompute>();
  const uint64_t first_dropout = dropout_counter_;
  // The same dropout keys in the forward pass and in backward's second run of it.
  recompute->run = [this, &l, key_mask, B, L, first_dropout](const torch::Tensor& input) {
    dropout_counter_ = first_dropout;
    torch::Tensor key_mask_bh;
    return layer(input, l, key_mask, key_mask_bh, B, L);
  };
  recompute->params = {l.query.weight,     l.query.bias,     l.key.weight,          l.key.bias,
                       l.value.weight,     l.value.bias,     l.attn_out.weight,     l.attn_out.bias,
                       l.attn_norm.weight, l.attn_norm.bias, l.intermediate.weight, l.intermediate.bias,
                       l.output.weight,    l.output.bias,    l.out_norm.weight,     l.out_norm.bias};
  const auto params = recompute->params;
  return CheckpointedLayerFn::apply(x, at::TensorList(params), c10::IValue::make_capsule(std::move(recompute)));
}

torch::Tensor BertEncoderImpl::pool(const torch::Tensor& flat, int64_t batch, int64_t seq_len) {
  if (!w_->pooler) throw std::logic_error("BERT: this encoder was built without a pooler");
  const torch::Tensor first = flat.view({batch, seq_len, cfg_.hidden_size}).select(1, 0);
  return at::tanh(linear(first, *w_->pooler));
}

}  // namespace mpibert::model
