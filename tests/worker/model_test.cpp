// BertForMaskedLM: presets and HF config, parameter names and counts, initialisation, loss at init,
// sparse == dense head, padding, dropout determinism, bf16 autocast, overfitting one batch, state
// dict round trip, and equality with a PyTorch re-implementation of Hugging Face's modeling_bert.
#include <ATen/autocast_mode.h>
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

#include "common/config/run_config.h"
#include "common/error.h"
#include "worker/model/attention.h"
#include "worker/model/bert.h"
#include "worker/model/bert_config.h"
#include "worker/model/fused_ops.h"
#include "worker/model/precision.h"
#include "worker/optim/optimizer.h"

namespace mpibert::model {
namespace {

namespace fs = std::filesystem;

BertConfig tiny(int64_t vocab, double dropout = 0.0) {
  BertConfig c = preset("tiny");
  c.vocab_size = vocab;
  c.hidden_dropout_prob = dropout;
  c.attention_probs_dropout_prob = dropout;
  return c;
}

// A batch with ~15% of the non-special positions labelled (fixed generator).
struct Batch {
  torch::Tensor ids, mask, labels;
};
Batch make_batch(int64_t B, int64_t L, int64_t vocab, uint64_t seed, double p = 0.15) {
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  Batch b;
  b.ids = torch::randint(5, vocab, {B, L}, gen, torch::kLong);
  b.mask = torch::ones({B, L}, torch::kLong);
  auto pick = torch::rand({B, L}, gen) < p;
  b.labels = torch::where(pick, b.ids, torch::full({B, L}, -100, torch::kLong));
  b.labels.index_put_({0, 1}, b.ids.index({0, 1}));  // at least one label
  return b;
}

ModelConfig model_config(const std::string& preset_name) {
  ModelConfig m{};
  m.preset = preset_name;
  m.hidden_dropout_prob = -1;
  m.attention_probs_dropout_prob = -1;
  m.layer_norm_eps = -1;
  m.initializer_range = -1;
  return m;
}

TEST(BertConfig, PresetsHaveTheGoogleSizesAndAliases) {
  auto t = preset("tiny");
  EXPECT_EQ(t.num_hidden_layers, 2);
  EXPECT_EQ(t.hidden_size, 128);
  EXPECT_EQ(t.num_attention_heads, 2);
  EXPECT_EQ(t.intermediate_size, 512);
  auto s = preset("bert-small");
  EXPECT_EQ(s.num_hidden_layers, 4);
  EXPECT_EQ(s.hidden_size, 512);
  EXPECT_EQ(s.num_attention_heads, 8);
  auto m = preset("medium");
  EXPECT_EQ(m.num_hidden_layers, 8);
  auto b = preset("bert-base-uncased");
  EXPECT_EQ(b.hidden_size, 768);
  EXPECT_EQ(b.num_hidden_layers, 12);
  EXPECT_EQ(b.vocab_size, 30522);
  auto l = preset("bert-large-uncased");
  EXPECT_EQ(l.num_hidden_layers, 24);
  EXPECT_EQ(l.hidden_size, 1024);
  EXPECT_EQ(l.num_attention_heads, 16);
  EXPECT_EQ(l.intermediate_size, 4096);
  for (const auto& name : preset_names()) EXPECT_NO_THROW(preset(name)) << name;
}

TEST(BertConfig, UnknownPresetListsTheValidNames) {
  try {
    preset("bert-huge");
    FAIL();
  } catch (const UsageError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("bert-huge"), std::string::npos);
    EXPECT_NE(msg.find("mini"), std::string::npos);
    EXPECT_NE(msg.find("bert-large-uncased"), std::string::npos);
  }
}

TEST(BertConfig, HfJsonRoundTripsAndRejectsOtherArchitectures) {
  BertConfig c = preset("mini");
  c.vocab_size = 32000;
  c.hidden_dropout_prob = 0.05;
  auto j = to_hf_config_json(c);
  EXPECT_EQ(j["architectures"][0], "BertForMaskedLM");
  EXPECT_EQ(j["model_type"], "bert");
  EXPECT_EQ(j["num_hidden_layers"], 4);
  EXPECT_EQ(j["hidden_act"], "gelu");
  auto back = from_hf_config_json(j, "test");
  EXPECT_EQ(back.vocab_size, 32000);
  EXPECT_EQ(back.hidden_size, 256);
  EXPECT_DOUBLE_EQ(back.hidden_dropout_prob, 0.05);
  EXPECT_DOUBLE_EQ(back.layer_norm_eps, 1e-12);
  j["model_type"] = "roberta";
  EXPECT_THROW(from_hf_config_json(j, "test"), UsageError);
  j["model_type"] = "bert";
  j["position_embedding_type"] = "relative_key";
  EXPECT_THROW(from_hf_config_json(j, "test"), UsageError);
  j["position_embedding_type"] = "absolute";
  j["num_attention_heads"] = 5;  // 256 % 5 != 0
  EXPECT_THROW(from_hf_config_json(j, "test"), UsageError);
}

TEST(BertConfig, ResolveAppliesOverridesVocabAndChecksSeqLen) {
  ModelConfig m = model_config("small");
  m.num_hidden_layers = 2;
  m.hidden_dropout_prob = 0.0;
  auto c = resolve_model_config(m, 8000, 128);
  EXPECT_EQ(c.num_hidden_layers, 2);
  EXPECT_EQ(c.hidden_size, 512);
  EXPECT_EQ(c.vocab_size, 8000);
  EXPECT_DOUBLE_EQ(c.hidden_dropout_prob, 0.0);
  EXPECT_DOUBLE_EQ(c.attention_probs_dropout_prob, 0.1);
  EXPECT_THROW(resolve_model_config(m, 8000, 513), UsageError);
  m.max_position_embeddings = 1024;
  EXPECT_EQ(resolve_model_config(m, 8000, 1024).max_position_embeddings, 1024);
  EXPECT_THROW(resolve_model_config(model_config("nope"), 8000, 128), UsageError);
}

TEST(BertConfig, ResolveReadsAHuggingFaceConfigFileOrDirectory) {
  const fs::path dir = fs::temp_directory_path() / ("mpibert_cfg_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  BertConfig c = preset("medium");
  c.intermediate_size = 1000;
  std::ofstream(dir / "config.json") << to_hf_config_json(c).dump(2);
  EXPECT_EQ(resolve_model_config(model_config((dir / "config.json").string()), 0, 128).intermediate_size, 1000);
  EXPECT_EQ(resolve_model_config(model_config(dir.string()), 0, 128).num_hidden_layers, 8);
  std::ofstream(dir / "config.json") << "{ not json";
  EXPECT_THROW(resolve_model_config(model_config(dir.string()), 0, 128), UsageError);
  fs::remove_all(dir);
}

TEST(BertConfig, FlopsPerTokenCountsMatmulsTimesThree) {
  BertConfig c = preset("mini");
  const double H = 256, I = 1024, V = 30522, L = 128;
  const double layer = 2 * (4 * H * H + 2 * H * I + 2 * L * H);
  EXPECT_DOUBLE_EQ(flops_per_token(c, 128, 0.15, false), 3 * (4 * layer + 2 * (H * H + H * V)));
  EXPECT_DOUBLE_EQ(flops_per_token(c, 128, 0.15, true), 3 * (4 * layer + 0.15 * 2 * (H * H + H * V)));
}

TEST(BertModel, BertBaseHasTheHuggingFaceParameterCount) {
  // BertForMaskedLM (bert-base-uncased): 109,514,298 parameters, tied decoder counted once, no pooler.
  EXPECT_EQ(parameter_count(preset("bert-base-uncased")), 109514298);
  BertForMaskedLM m(preset("base"), 0);
  int64_t n = 0;
  for (const auto& p : m->parameters()) n += p.numel();
  EXPECT_EQ(n, 109514298);
  EXPECT_EQ(m->named_parameters().size(), 5u + 12u * 16u + 5u);
}

TEST(BertModel, ParametersUseHuggingFaceNamesAndTheDecoderIsTied) {
  BertForMaskedLM m(tiny(100), 0);
  std::vector<std::string> names;
  for (const auto& p : m->named_parameters()) names.push_back(p.key());
  const std::vector<std::string> expected_prefix = {"bert.embeddings.word_embeddings.weight",
                                                    "bert.embeddings.position_embeddings.weight",
                                                    "bert.embeddings.token_type_embeddings.weight",
                                                    "bert.embeddings.LayerNorm.weight",
                                                    "bert.embeddings.LayerNorm.bias",
                                                    "bert.encoder.layer.0.attention.self.query.weight",
                                                    "bert.encoder.layer.0.attention.self.query.bias",
                                                    "bert.encoder.layer.0.attention.self.key.weight",
                                                    "bert.encoder.layer.0.attention.self.key.bias",
                                                    "bert.encoder.layer.0.attention.self.value.weight",
                                                    "bert.encoder.layer.0.attention.self.value.bias",
                                                    "bert.encoder.layer.0.attention.output.dense.weight",
                                                    "bert.encoder.layer.0.attention.output.dense.bias",
                                                    "bert.encoder.layer.0.attention.output.LayerNorm.weight",
                                                    "bert.encoder.layer.0.attention.output.LayerNorm.bias",
                                                    "bert.encoder.layer.0.intermediate.dense.weight",
                                                    "bert.encoder.layer.0.intermediate.dense.bias",
                                                    "bert.encoder.layer.0.output.dense.weight",
                                                    "bert.encoder.layer.0.output.dense.bias",
                                                    "bert.encoder.layer.0.output.LayerNorm.weight",
                                                    "bert.encoder.layer.0.output.LayerNorm.bias"};
  ASSERT_EQ(names.size(), 5u + 2u * 16u + 5u);
  for (size_t i = 0; i < expected_prefix.size(); ++i) EXPECT_EQ(names[i], expected_prefix[i]);
  EXPECT_EQ(names[21], "bert.encoder.layer.1.attention.self.query.weight");
  const std::vector<std::string> tail = {
      "cls.predictions.bias", "cls.predictions.transform.dense.weight", "cls.predictions.transform.dense.bias",
      "cls.predictions.transform.LayerNorm.weight", "cls.predictions.transform.LayerNorm.bias"};
  for (size_t i = 0; i < tail.size(); ++i) EXPECT_EQ(names[names.size() - tail.size() + i], tail[i]);

  auto sd = m->hf_state_dict();
  ASSERT_EQ(sd.size(), names.size() + 2);
  EXPECT_EQ(sd[sd.size() - 2].first, "cls.predictions.decoder.weight");
  EXPECT_EQ(sd.back().first, "cls.predictions.decoder.bias");
  EXPECT_TRUE(sd[sd.size() - 2].second.is_same(sd[0].second));  // same tensor as the word embeddings
  EXPECT_TRUE(sd.back().second.is_same(m->named_parameters()["cls.predictions.bias"]));
  EXPECT_EQ(parameter_count(m->config()), [&] {
    int64_t n = 0;
    for (const auto& p : m->parameters()) n += p.numel();
    return n;
  }());
}

TEST(BertModel, InitialisesLikeHuggingFace) {
  BertConfig c = tiny(2000);
  c.pad_token_id = 3;
  BertForMaskedLM m(c, 1);
  auto params = m->named_parameters();
  const auto& word = params["bert.embeddings.word_embeddings.weight"];
  EXPECT_EQ(word[3].abs().max().item<float>(), 0.0f);  // padding row
  EXPECT_NEAR(word.std().item<float>(), 0.02, 0.001);
  EXPECT_NEAR(params["bert.encoder.layer.0.intermediate.dense.weight"].std().item<float>(), 0.02, 0.001);
  EXPECT_EQ(params["bert.encoder.layer.0.intermediate.dense.bias"].abs().max().item<float>(), 0.0f);
  EXPECT_TRUE(params["bert.embeddings.LayerNorm.weight"].eq(1).all().item<bool>());
  EXPECT_EQ(params["cls.predictions.bias"].abs().max().item<float>(), 0.0f);
  // The same seed gives the same weights; another seed other weights.
  BertForMaskedLM same(c, 1), other(c, 2);
  EXPECT_TRUE(torch::equal(word, same->named_parameters()["bert.embeddings.word_embeddings.weight"]));
  EXPECT_FALSE(torch::equal(word, other->named_parameters()["bert.embeddings.word_embeddings.weight"]));
}

TEST(BertModel, LossAtInitIsLogVocab) {
  const int64_t V = 1000;
  BertForMaskedLM m(tiny(V), 7);
  auto b = make_batch(8, 64, V, 1);
  auto out = m->forward_mlm(b.ids, b.mask, b.labels, true);
  const double loss = out.loss_sum.item<double>() / out.num_masked.item<int64_t>();
  EXPECT_NEAR(loss / std::log(static_cast<double>(V)), 1.0, 0.02) << loss;
  EXPECT_EQ(out.num_masked.item<int64_t>(), b.labels.ne(-100).sum().item<int64_t>());
  EXPECT_EQ(out.loss_sum.scalar_type(), torch::kFloat);
  EXPECT_EQ(out.num_masked.scalar_type(), torch::kLong);
}

// Max over parameters of ||g_a - g_b|| / ||g_b||. The floor (1e-3 of the whole gradient's norm)
// matters for the key biases: their true gradient is 0 (softmax ignores a per-row constant), so
// both sides hold rounding noise only.
double grad_floor(const std::vector<torch::Tensor>& g) {
  double s = 0;
  for (const auto& t : g) s += t.pow(2).sum().item<double>();
  return 1e-3 * std::sqrt(s);
}
double max_grad_rel_diff(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  double worst = 0;
  const double floor = grad_floor(b);
  for (size_t i = 0; i < a.size(); ++i) {
    const double denom = std::max(b[i].norm().item<double>(), floor);
    worst = std::max(worst, (a[i] - b[i]).norm().item<double>() / denom);
  }
  return worst;
}

std::vector<torch::Tensor> grads_of(BertForMaskedLM& m) {
  std::vector<torch::Tensor> g;
  for (const auto& p : m->parameters()) g.push_back(p.grad().defined() ? p.grad().clone() : torch::zeros_like(p));
  return g;
}

// One training forward (under bf16 autocast when asked) and backward with dropout seed 3 and `threads`
// intra-op threads (0 = as set): the loss and every parameter's gradient.
std::pair<double, std::vector<torch::Tensor>> loss_and_grads(BertForMaskedLM& m, const Batch& b, bool bf16,
                                                             int threads = 0) {
  m->zero_grad();
  m->set_dropout_seed(3);
  const int before = at::get_num_threads();
  if (threads > 0) at::set_num_threads(threads);
  torch::Tensor loss;
  {
    AutocastGuard autocast(bf16);
    loss = m->forward_mlm(b.ids, b.mask, b.labels, true).loss_sum;
  }
  loss.backward();
  at::set_num_threads(before);
  return {loss.item<double>(), grads_of(m)};
}

TEST(BertModel, SparseHeadGivesTheDenseHeadsLossAndGradients) {
  const int64_t V = 500;
  BertForMaskedLM m(tiny(V, 0.1), 3);  // with dropout: both passes use the same dropout seed
  auto b = make_batch(4, 32, V, 2);
  b.mask.index_put_({1, torch::indexing::Slice(20, torch::indexing::None)}, 0);
  m->zero_grad();
  m->set_dropout_seed(11);
  auto dense = m->forward_mlm(b.ids, b.mask, b.labels, false);
  dense.loss_sum.backward();
  auto g_dense = grads_of(m);
  m->zero_grad();
  m->set_dropout_seed(11);
  auto sparse = m->forward_mlm(b.ids, b.mask, b.labels, true);
  sparse.loss_sum.backward();
  auto g_sparse = grads_of(m);
  EXPECT_NEAR(sparse.loss_sum.item<double>() / dense.loss_sum.item<double>(), 1.0, 1e-5);
  EXPECT_EQ(sparse.num_masked.item<int64_t>(), dense.num_masked.item<int64_t>());
  EXPECT_EQ(sparse.num_correct.item<int64_t>(), dense.num_correct.item<int64_t>());
  EXPECT_LT(max_grad_rel_diff(g_sparse, g_dense), 1e-5);
}

TEST(BertModel, FusedQkvEqualsSeparateProjections) {
  const int64_t V = 300;
  BertForMaskedLM m(tiny(V), 4);
  auto b = make_batch(2, 16, V, 5);
  m->set_fused_qkv(false);
  auto ref = m->forward_mlm(b.ids, b.mask, b.labels, true);
  ref.loss_sum.backward();
  auto g_ref = grads_of(m);
  m->zero_grad();
  m->set_fused_qkv(true);
  auto fused = m->forward_mlm(b.ids, b.mask, b.labels, true);
  fused.loss_sum.backward();
  EXPECT_NEAR(fused.loss_sum.item<double>(), ref.loss_sum.item<double>(), 1e-5 * ref.loss_sum.item<double>());
  EXPECT_LT(max_grad_rel_diff(grads_of(m), g_ref), 1e-5);
}

// A 4-head tiny model with dropout, and a batch with a padded sequence and an all-padding one (uniform
// attention, as HF): what the attention kernels are compared on.
BertConfig four_head_config(int64_t V) {
  BertConfig c = tiny(V, 0.1);
  c.num_attention_heads = 4;
  return c;
}
Batch padded_batch(int64_t V) {
  auto b = make_batch(3, 24, V, 7);
  b.mask.index_put_({2, torch::indexing::Slice(10, torch::indexing::None)}, 0);
  b.mask.index_put_({1}, 0);
  return b;
}

TEST(BertModel, FusedAttentionKernelEqualsAtenAttentionWithMaskAndDropout) {
  ASSERT_TRUE(fused_attention_available());
  const int64_t V = 300;
  BertForMaskedLM m(four_head_config(V), 6);
  auto b = padded_batch(V);
  m->set_fused_attention(false);
  m->set_dropout_seed(3);
  auto ref = m->forward_mlm(b.ids, b.mask, b.labels, true);
  ref.loss_sum.backward();
  auto g_ref = grads_of(m);
  m->zero_grad();
  m->set_fused_attention(true);
  m->set_dropout_seed(3);
  auto fused = m->forward_mlm(b.ids, b.mask, b.labels, true);
  fused.loss_sum.backward();
  EXPECT_NEAR(fused.loss_sum.item<double>() / ref.loss_sum.item<double>(), 1.0, 1e-5);
  EXPECT_LT(max_grad_rel_diff(grads_of(m), g_ref), 1e-5);
  // Thread count does not change the result.
  const int before = at::get_num_threads();
  at::set_num_threads(1);
  m->set_dropout_seed(3);
  const float one = m->forward_mlm(b.ids, b.mask, b.labels, true).loss_sum.item<float>();
  at::set_num_threads(2);
  m->set_dropout_seed(3);
  const float two = m->forward_mlm(b.ids, b.mask, b.labels, true).loss_sum.item<float>();
  at::set_num_threads(before);
  EXPECT_EQ(one, two);
}

// bf16: the fused kernel (oneDNN bf16 products, fp32 softmax) against ATen's bf16 path under autocast,
// with the same dropout masks; both round to bf16 in different places, hence the tolerances.
TEST(BertModel, FusedBf16AttentionKernelTracksAtenAttentionUnderAutocast) {
  ASSERT_TRUE(fused_attention_available(at::kBFloat16));
  const int64_t V = 300;
  BertForMaskedLM m(four_head_config(V), 6);
  auto b = padded_batch(V);
  auto run = [&](bool fused, int threads) {
    m->set_fused_bf16_attention(fused);
    return loss_and_grads(m, b, true, threads);
  };
  const auto [ref_loss, ref_grads] = run(false, 2);
  const auto [loss, grads] = run(true, 2);
  EXPECT_NEAR(loss / ref_loss, 1.0, 1e-2);
  EXPECT_LT(max_grad_rel_diff(grads, ref_grads), 5e-2);
  for (const auto& g : grads) EXPECT_TRUE(g.defined() && std::isfinite(g.sum().item<double>()));
  EXPECT_EQ(run(true, 1).first, loss);  // the thread count does not change the result
}

// The bf16 kernel on its own: its context and gradient match the fp32 kernel run on the same
// bf16-representable inputs to bf16 rounding (the products accumulate in fp32 in both).
TEST(FusedAttention, Bf16KernelMatchesTheFp32KernelOnTheSameInputs) {
  ASSERT_TRUE(fused_attention_available(at::kBFloat16));
  torch::manual_seed(5);
  const int64_t B = 2, L = 20, heads = 2, H = 16;
  const torch::Tensor base = torch::randn({B * L, 3 * H}).to(at::kBFloat16);
  torch::Tensor mask = torch::zeros({B, L});
  mask.index_put_({1, torch::indexing::Slice(12, torch::indexing::None)}, -1e30);
  const torch::Tensor upstream = torch::randn({B * L, H}).to(at::kBFloat16);
  auto run = [&](at::ScalarType dtype) {
    torch::Tensor qkv = base.to(dtype).requires_grad_(true);
    torch::Tensor out = fused_attention(qkv, mask, B, L, heads, 0.25, 0.2, 99);
    EXPECT_EQ(out.scalar_type(), dtype);
    out.backward(upstream.to(dtype));
    return std::make_pair(out.detach().to(at::kFloat), qkv.grad().to(at::kFloat));
  };
  const auto [out32, grad32] = run(at::kFloat);
  const auto [out16, grad16] = run(at::kBFloat16);
  EXPECT_LT((out16 - out32).abs().max().item<double>(), 2e-2 * out32.abs().max().item<double>());
  EXPECT_LT((grad16 - grad32).norm().item<double>(), 2e-2 * grad32.norm().item<double>());
}

// dropout + residual + LayerNorm in one kernel: the same values and gradients (a, residual, gamma, beta)
// as the ATen composite with seeded_dropout's mask, through both outputs, and the same bits whatever
// the thread count (gamma/beta are summed over fixed row blocks).
TEST(FusedOps, DropoutAddLayerNormEqualsTheAtenComposite) {
  torch::manual_seed(3);
  const int64_t N = 150, H = 48;  // N spans three row blocks
  const double p = 0.1, eps = 1e-12;
  const uint64_t key = 1234;
  const torch::Tensor a0 = torch::randn({N, H}), r0 = torch::randn({N, H});
  const torch::Tensor g0 = 1 + 0.1 * torch::randn({H}), b0 = 0.1 * torch::randn({H});
  const torch::Tensor up = torch::randn({N, H}), up16 = torch::randn({N, H});
  auto leaves = [&] {
    return std::vector<torch::Tensor>{a0.clone().requires_grad_(true), r0.clone().requires_grad_(true),
                                      g0.clone().requires_grad_(true), b0.clone().requires_grad_(true)};
  };
  auto grads = [](const std::vector<torch::Tensor>& v) {
    std::vector<torch::Tensor> g;
    for (const auto& t : v) g.push_back(t.grad().clone());
    return g;
  };
  auto ref = leaves();
  const torch::Tensor y_ref = at::layer_norm(seeded_dropout(ref[0], p, key) + ref[1], {H}, ref[2], ref[3], eps);
  (y_ref * up).sum().backward();
  auto fused = leaves();
  const auto [y, y16] = fused_dropout_add_layer_norm(fused[0], fused[1], fused[2], fused[3], eps, p, key, false);
  EXPECT_FALSE(y16.defined());
  (y * up).sum().backward();
  EXPECT_LT((y - y_ref).abs().max().item<double>(), 1e-5);
  EXPECT_LT(max_grad_rel_diff(grads(fused), grads(ref)), 1e-5);

  // Both outputs used (the bf16 copy feeds a GEMM): the gradients add up. bf16 input a: its gradient is bf16.
  auto both = leaves();
  const torch::Tensor a16 = both[0].to(at::kBFloat16);
  const auto [y2, y2_16] = fused_dropout_add_layer_norm(a16, both[1], both[2], both[3], eps, p, key, true);
  ASSERT_TRUE(y2_16.defined());
  EXPECT_EQ(y2_16.scalar_type(), at::kBFloat16);
  EXPECT_TRUE(y2_16.to(at::kFloat).equal(y2.to(at::kBFloat16).to(at::kFloat)));
  ((y2 * up).sum() + (y2_16.to(at::kFloat) * up16).sum()).backward();
  auto ref2 = leaves();
  const torch::Tensor y_ref2 = at::layer_norm(
      seeded_dropout(ref2[0].to(at::kBFloat16), p, key).to(at::kFloat) + ref2[1], {H}, ref2[2], ref2[3], eps);
  ((y_ref2 * (up + up16))).sum().backward();
  EXPECT_LT((y2 - y_ref2).abs().max().item<double>(), 5e-2);
  EXPECT_LT(max_grad_rel_diff(grads(both), grads(ref2)), 2e-2);

  // The thread count does not change a bit.
  auto run = [&](int threads) {
    const int before = at::get_num_threads();
    at::set_num_threads(threads);
    auto v = leaves();
    const auto out = fused_dropout_add_layer_norm(v[0], v[1], v[2], v[3], eps, p, key, false).first;
    (out * up).sum().backward();
    at::set_num_threads(before);
    auto g = grads(v);
    g.push_back(out.detach());
    return g;
  };
  const auto one = run(1), two = run(2);
  for (size_t i = 0; i < one.size(); ++i) EXPECT_TRUE(one[i].equal(two[i])) << i;
}

// The FFN's bias + GELU in one kernel: ATen's exact GELU of (h + bias) and its gradients (h and bias) to the
// erf approximation's 1.5e-7, at fp32 and from bf16 h; the bias gradient's bits do not depend on threads.
TEST(FusedOps, BiasGeluEqualsAtenGeluOfTheBiasedInput) {
  torch::manual_seed(4);
  const int64_t N = 150, I = 96;
  const torch::Tensor h0 = 3 * torch::randn({N, I}), b0 = torch::randn({I}), up = torch::randn({N, I});
  for (const auto dtype : {at::kFloat, at::kBFloat16}) {
    torch::Tensor h = h0.to(dtype).clone().requires_grad_(true), b = b0.clone().requires_grad_(true);
    const torch::Tensor y = fused_bias_gelu(h, b);
    EXPECT_EQ(y.scalar_type(), dtype);
    (y.to(at::kFloat) * up).sum().backward();
    torch::Tensor hr = h0.to(dtype).to(at::kFloat).clone().requires_grad_(true);
    torch::Tensor br = b0.clone().requires_grad_(true);
    const torch::Tensor yr = at::gelu(hr + br);
    (yr * up).sum().backward();
    const double tol = dtype == at::kFloat ? 1e-6 : 1e-2;  // bf16: y and dh are rounded to bf16
    EXPECT_LT((y.to(at::kFloat) - yr).abs().max().item<double>(), tol * yr.abs().max().item<double>());
    EXPECT_LT((h.grad().to(at::kFloat) - hr.grad()).abs().max().item<double>(),
              tol * hr.grad().abs().max().item<double>());
    EXPECT_LT((b.grad() - br.grad()).abs().max().item<double>(), tol * br.grad().abs().max().item<double>());
  }
  auto bias_grad = [&](int threads) {
    const int before = at::get_num_threads();
    at::set_num_threads(threads);
    torch::Tensor h = h0.clone().requires_grad_(true), b = b0.clone().requires_grad_(true);
    (fused_bias_gelu(h, b) * up).sum().backward();
    at::set_num_threads(before);
    return b.grad();
  };
  EXPECT_TRUE(bias_grad(1).equal(bias_grad(2)));
}

// In the model: a fused kernel switched on gives the ATen path's loss and gradients (fp32 with dropout, to
// summation order) and, under autocast, tracks it to bf16 rounding.
void expect_fusion_matches_aten(const std::function<void(BertForMaskedLM&, bool)>& set_fused) {
  const int64_t V = 300;
  for (bool bf16 : {false, true}) {
    BertForMaskedLM m(tiny(V, 0.1), 6);
    auto b = make_batch(3, 24, V, 7);
    b.mask.index_put_({2, torch::indexing::Slice(10, torch::indexing::None)}, 0);
    auto run = [&](bool fused) {
      set_fused(m, fused);
      return loss_and_grads(m, b, bf16);
    };
    const auto [ref_loss, ref_grads] = run(false);
    const auto [loss, grads] = run(true);
    EXPECT_NEAR(loss / ref_loss, 1.0, bf16 ? 1e-2 : 1e-6) << "bf16 " << bf16;
    EXPECT_LT(max_grad_rel_diff(grads, ref_grads), bf16 ? 5e-2 : 1e-5) << "bf16 " << bf16;
  }
}

TEST(BertModel, FusedBiasGeluEqualsAtenOpsInTheModel) {
  expect_fusion_matches_aten([](BertForMaskedLM& m, bool on) { m->set_fused_bias_gelu(on); });
}

TEST(BertModel, FusedAddNormEqualsAtenOpsInTheModel) {
  expect_fusion_matches_aten([](BertForMaskedLM& m, bool on) { m->set_fused_add_norm(on); });
}

// Activation checkpointing recomputes each layer in backward with the same dropout masks and autocast:
// the loss and every gradient equal the plain pass (fp32 exactly up to summation order; bf16 too).
TEST(BertModel, GradientCheckpointingGivesTheSameLossAndGradients) {
  const int64_t V = 300;
  for (bool bf16 : {false, true}) {
    for (bool fused_attention : {true, false}) {
      BertConfig c = tiny(V, 0.1);
      c.num_attention_heads = 4;
      BertForMaskedLM m(c, 6);
      m->set_fused_attention(fused_attention);
      m->set_fused_bf16_attention(fused_attention);
      auto b = make_batch(3, 24, V, 7);
      b.mask.index_put_({2, torch::indexing::Slice(10, torch::indexing::None)}, 0);
      auto run = [&](bool checkpoint) {
        m->set_gradient_checkpointing(checkpoint);
        return loss_and_grads(m, b, bf16);
      };
      const auto [plain_loss, plain_grads] = run(false);
      const auto [ckpt_loss, ckpt_grads] = run(true);
      EXPECT_EQ(ckpt_loss, plain_loss) << "bf16 " << bf16 << " fused " << fused_attention;
      EXPECT_LT(max_grad_rel_diff(ckpt_grads, plain_grads), bf16 ? 1e-2 : 1e-6)
          << "bf16 " << bf16 << " fused " << fused_attention;
      for (const auto& g : ckpt_grads) EXPECT_TRUE(g.defined() && g.abs().sum().item<double>() > 0);
    }
  }
  // Not in eval mode or without gradients: nothing to recompute, the plain pass runs.
  BertForMaskedLM m(tiny(V), 1);
  m->set_gradient_checkpointing(true);
  m->eval();
  torch::NoGradGuard no_grad;
  auto b = make_batch(2, 8, V, 1);
  EXPECT_FALSE(m->forward_mlm(b.ids, b.mask, b.labels, true).loss_sum.requires_grad());
}

TEST(BertModel, NoMaskedTokenGivesZeroLossAndZeroGradients) {
  BertForMaskedLM m(tiny(100), 1);
  auto b = make_batch(2, 8, 100, 1);
  auto labels = torch::full({2, 8}, -100, torch::kLong);
  for (bool sparse : {true, false}) {
    m->zero_grad();
    auto out = m->forward_mlm(b.ids, b.mask, labels, sparse);
    EXPECT_EQ(out.loss_sum.item<float>(), 0.0f);
    EXPECT_EQ(out.num_masked.item<int64_t>(), 0);
    EXPECT_EQ(out.num_correct.item<int64_t>(), 0);
    out.loss_sum.backward();
    for (const auto& g : grads_of(m)) EXPECT_EQ(g.abs().max().item<float>(), 0.0f);
  }
}

TEST(BertModel, PaddingDoesNotChangeTheTokensOutputs) {
  const int64_t V = 200;
  BertForMaskedLM m(tiny(V), 5);
  m->eval();
  auto ids = torch::randint(5, V, {2, 12}, torch::kLong);
  auto h = m->encode(ids, torch::Tensor());
  auto padded = torch::cat({ids, torch::zeros({2, 5}, torch::kLong)}, 1);
  auto mask = torch::cat({torch::ones({2, 12}, torch::kLong), torch::zeros({2, 5}, torch::kLong)}, 1);
  auto hp = m->encode(padded, mask);
  EXPECT_TRUE(torch::allclose(hp.narrow(1, 0, 12), h, 1e-5, 1e-5)) << (hp.narrow(1, 0, 12) - h).abs().max();
  // Without the mask the padding is attended to and the outputs change.
  auto hu = m->encode(padded, torch::Tensor());
  EXPECT_FALSE(torch::allclose(hu.narrow(1, 0, 12), h, 1e-3, 1e-3));
  // An all-padding row stays finite (HF: uniform attention).
  auto all_pad = m->encode(padded, torch::zeros({2, 17}, torch::kBool));
  EXPECT_TRUE(torch::isfinite(all_pad).all().item<bool>());
  // A bool mask works as well as an integer one.
  EXPECT_TRUE(torch::equal(m->encode(padded, mask.to(torch::kBool)), hp));
}

TEST(BertModel, DropoutZeroIsDeterministicAndSeededDropoutRepeats) {
  const int64_t V = 200;
  auto b = make_batch(2, 16, V, 8);
  BertForMaskedLM m0(tiny(V, 0.0), 1);
  m0->train();
  auto a = m0->forward_mlm(b.ids, b.mask, b.labels, true).loss_sum.item<float>();
  EXPECT_EQ(a, m0->forward_mlm(b.ids, b.mask, b.labels, true).loss_sum.item<float>());

  BertForMaskedLM m(tiny(V, 0.1), 1);
  m->train();
  m->set_dropout_seed(5);
  const float s1 = m->forward_mlm(b.ids, b.mask, b.labels, true).loss_sum.item<float>();
  const float s1_next = m->forward_mlm(b.ids, b.mask, b.labels, true).loss_sum.item<float>();
  m->set_dropout_seed(5);
  EXPECT_EQ(s1, m->forward_mlm(b.ids, b.mask, b.labels, true).loss_sum.item<float>());
  EXPECT_NE(s1, s1_next);  // the next forward draws new masks
  m->set_dropout_seed(6);
  EXPECT_NE(s1, m->forward_mlm(b.ids, b.mask, b.labels, true).loss_sum.item<float>());
  // eval() turns dropout off: same as the dropout-free model with the same weights.
  m->eval();
  EXPECT_EQ(m->forward_mlm(b.ids, b.mask, b.labels, true).loss_sum.item<float>(), a);
}

TEST(SeededDropout, DropsPAndScalesAndBackwardUsesTheSameMask) {
  auto x = torch::ones({200000}, torch::kFloat).set_requires_grad(true);
  auto y = seeded_dropout(x, 0.1, 42);
  const double kept = y.ne(0).to(torch::kDouble).mean().item<double>();
  EXPECT_NEAR(kept, 0.9, 0.003);
  EXPECT_NEAR(y.max().item<float>(), 1.0f / 0.9f, 1e-6);
  y.sum().backward();
  EXPECT_TRUE(torch::equal(x.grad(), y.detach()));
  // Thread count and dtype do not change the mask.
  const int before = at::get_num_threads();
  at::set_num_threads(1);
  auto y1 = seeded_dropout(x.detach(), 0.1, 42);
  at::set_num_threads(before);
  EXPECT_TRUE(torch::equal(y1, y.detach()));
  auto yb = seeded_dropout(x.detach().to(torch::kBFloat16), 0.1, 42);
  EXPECT_TRUE(torch::equal(yb.ne(0), y1.ne(0)));
  EXPECT_FALSE(torch::equal(seeded_dropout(x.detach(), 0.1, 43), y1));
  EXPECT_TRUE(torch::equal(seeded_dropout(x.detach(), 0.0, 43), x.detach()));
}

TEST(FusedOps, CrossEntropySumMatchesAtenLossGradientAndArgmax) {
  torch::manual_seed(1);
  const int64_t rows = 37, V = 1003;
  auto logits = (torch::randn({rows, V}) * 3).set_requires_grad(true);
  auto targets = torch::randint(0, V, {rows}, torch::kLong);
  targets.index_put_({torch::indexing::Slice(0, 5)}, -100);  // ignored rows
  targets[7] = logits[7].argmax().item<int64_t>();           // a surely correct row
  auto [loss, correct] = fused_cross_entropy_sum(logits, targets);
  (loss * 0.5).backward();
  auto ref_logits = logits.detach().clone().set_requires_grad(true);
  auto ref = at::cross_entropy_loss(ref_logits, targets, {}, at::Reduction::Sum, -100);
  (ref * 0.5).backward();
  EXPECT_NEAR(loss.item<double>(), ref.item<double>(), 1e-5 * ref.item<double>());
  EXPECT_TRUE(torch::allclose(logits.grad(), ref_logits.grad(), 1e-5, 1e-7));
  auto valid = targets.ne(-100);
  EXPECT_EQ(correct.item<int64_t>(), (logits.detach().argmax(1).eq(targets) & valid).sum().item<int64_t>());
  EXPECT_GE(correct.item<int64_t>(), 1);
  // bf16 logits: fp32 math on the same values, gradient in bf16.
  auto lb = logits.detach().to(torch::kBFloat16).set_requires_grad(true);
  auto [loss_b, correct_b] = fused_cross_entropy_sum(lb, targets);
  loss_b.backward();
  auto lb32 = lb.detach().to(torch::kFloat).set_requires_grad(true);
  auto ref_b = at::cross_entropy_loss(lb32, targets, {}, at::Reduction::Sum, -100);
  ref_b.backward();
  EXPECT_EQ(loss_b.scalar_type(), torch::kFloat);
  EXPECT_NEAR(loss_b.item<double>(), ref_b.item<double>(), 1e-5 * ref_b.item<double>());
  EXPECT_EQ(lb.grad().scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::allclose(lb.grad().to(torch::kFloat), lb32.grad(), 1e-2, 1e-4));
  auto bad = targets.clone();
  bad[9] = V;
  EXPECT_THROW(fused_cross_entropy_sum(logits, bad), std::out_of_range);
  auto [empty_loss, empty_correct] = fused_cross_entropy_sum(torch::zeros({0, V}), torch::zeros({0}, torch::kLong));
  EXPECT_EQ(empty_loss.item<float>(), 0.0f);
}

TEST(BertModel, Bf16AutocastLossIsCloseToFp32AndGradientsStayFp32) {
  const int64_t V = 1000;
  BertForMaskedLM m(tiny(V), 9);
  auto b = make_batch(4, 32, V, 3);
  b.mask.index_put_({0, torch::indexing::Slice(24, torch::indexing::None)}, 0);
  const float fp32 = m->forward_mlm(b.ids, b.mask, b.labels, true).loss_sum.item<float>();
  MlmOutput out;
  {
    AutocastGuard guard(true);
    EXPECT_TRUE(at::autocast::is_cpu_enabled());
    out = m->forward_mlm(b.ids, b.mask, b.labels, true);
  }
  EXPECT_FALSE(at::autocast::is_cpu_enabled());
  EXPECT_EQ(out.loss_sum.scalar_type(), torch::kFloat);
  EXPECT_NEAR(out.loss_sum.item<float>() / fp32, 1.0, 0.01);
  out.loss_sum.backward();
  for (const auto& p : m->parameters()) {
    ASSERT_TRUE(p.grad().defined());
    EXPECT_EQ(p.grad().scalar_type(), torch::kFloat);
    EXPECT_TRUE(torch::isfinite(p.grad()).all().item<bool>());
  }
  // Logits under autocast come back as fp32.
  AutocastGuard guard(true);
  EXPECT_EQ(m->logits(b.ids, b.mask).scalar_type(), torch::kFloat);
}

TEST(Precision, ResolvesRequestsAndGuardRestoresState) {
  EXPECT_EQ(resolve_precision("fp32"), "fp32");
  EXPECT_EQ(resolve_precision("bf16"), "bf16");
  EXPECT_EQ(resolve_precision("auto"), cpu_supports_bf16_fast() ? "bf16" : "fp32");
  EXPECT_THROW(resolve_precision("fp16"), UsageError);
  const auto f = cpu_bf16_features();
  if (cpu_supports_bf16_fast()) {
    EXPECT_TRUE(f.avx512_bf16 || f.amx_bf16);
  }
  {
    AutocastGuard off(false);
    EXPECT_FALSE(at::autocast::is_cpu_enabled());
    AutocastGuard outer(true);
    {
      AutocastGuard inner(true);
      EXPECT_TRUE(at::autocast::is_cpu_enabled());
    }
    EXPECT_TRUE(at::autocast::is_cpu_enabled());  // the outer guard is still active
    EXPECT_EQ(at::autocast::get_autocast_cpu_dtype(), at::kBFloat16);
  }
  EXPECT_FALSE(at::autocast::is_cpu_enabled());
}

TEST(BertModel, TinyModelOverfitsOneBatch) {
  const int64_t V = 100;
  torch::manual_seed(0);
  BertForMaskedLM m(tiny(V), 12);
  auto b = make_batch(4, 16, V, 4, 0.3);
  optim::OptimizerOptions o;
  optim::Optimizer opt(
      [&] {
        std::vector<std::pair<std::string, torch::Tensor>> named;
        for (const auto& p : m->named_parameters()) named.emplace_back(p.key(), p.value());
        return named;
      }(),
      o);
  double loss = 0;
  int step = 0;
  for (; step < 300; ++step) {
    opt.zero_grad();
    auto out = m->forward_mlm(b.ids, b.mask, b.labels, true);
    loss = out.loss_sum.item<double>() / out.num_masked.item<int64_t>();
    if (loss < 0.1) break;
    (out.loss_sum / out.num_masked.to(torch::kFloat)).backward();
    opt.step(3e-3);
  }
  EXPECT_LT(loss, 0.1) << "after " << step << " steps";
  auto out = m->forward_mlm(b.ids, b.mask, b.labels, true);
  EXPECT_EQ(out.num_correct.item<int64_t>(), out.num_masked.item<int64_t>());
}

TEST(BertModel, HfStateDictRoundTripsAndLoadChecksNamesAndShapes) {
  const int64_t V = 150;
  BertForMaskedLM a(tiny(V), 1), b(tiny(V), 2);
  a->eval();
  b->eval();
  std::map<std::string, torch::Tensor> sd;
  for (auto& [k, t] : a->hf_state_dict()) sd[k] = t.detach().clone();
  sd["bert.embeddings.position_ids"] = torch::arange(512).unsqueeze(0);
  sd["bert.pooler.dense.weight"] = torch::zeros({128, 128});
  auto skipped = b->load_hf_state_dict(sd, "test");
  EXPECT_EQ(skipped.size(), 2u);
  auto ids = torch::randint(5, V, {2, 10}, torch::kLong);
  EXPECT_TRUE(torch::equal(a->logits(ids, {}), b->logits(ids, {})));

  // Safetensors files written by transformers may keep only the decoder alias of a tied weight.
  auto only_alias = sd;
  only_alias.erase("bert.embeddings.word_embeddings.weight");
  BertForMaskedLM c(tiny(V), 3);
  c->eval();
  c->load_hf_state_dict(only_alias, "test");
  EXPECT_TRUE(torch::equal(a->logits(ids, {}), c->logits(ids, {})));

  auto missing = sd;
  missing.erase("bert.encoder.layer.1.output.dense.bias");
  EXPECT_THROW(b->load_hf_state_dict(missing, "test"), std::runtime_error);
  auto wrong = sd;
  wrong["cls.predictions.bias"] = torch::zeros({V + 1});
  EXPECT_THROW(b->load_hf_state_dict(wrong, "test"), std::runtime_error);
  auto extra = sd;
  extra["bert.encoder.layer.9.output.dense.bias"] = torch::zeros({2});
  EXPECT_THROW(b->load_hf_state_dict(extra, "test"), std::runtime_error);
  EXPECT_NO_THROW(b->load_hf_state_dict(extra, "test", /*strict=*/false));
}

// --- Equality with a PyTorch re-implementation of HF modeling_bert (bench/baseline_step.py) ---

void write_raw(const fs::path& path, const torch::Tensor& t) {
  auto c = t.contiguous();
  std::ofstream out(path, std::ios::binary);
  out.write(static_cast<const char*>(c.data_ptr()), static_cast<std::streamsize>(c.nbytes()));
}

torch::Tensor read_raw(const fs::path& path, at::IntArrayRef shape) {
  auto t = torch::empty(shape, torch::kFloat);
  std::ifstream in(path, std::ios::binary);
  in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
  EXPECT_TRUE(in.good()) << path;
  return t;
}

bool python_torch_available() {
  return std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
}

TEST(BertModel, MatchesPyTorchHuggingFaceStyleReferenceLogitsLossAndGradients) {
  if (!python_torch_available())
    FAIL() << "/usr/bin/python3 with torch is missing: scripts/install-deps.sh installs python3-torch";
  const int64_t V = 120, B = 2, L = 10;
  BertConfig cfg = tiny(V);
  cfg.num_attention_heads = 4;  // head_dim 32 (scale not a power of two)
  BertForMaskedLM m(cfg, 21);
  m->eval();
  {  // non-trivial biases and LayerNorm parameters
    torch::NoGradGuard ng;
    for (auto& p : m->parameters())
      if (p.dim() == 1) p.add_(torch::randn_like(p) * 0.1);
  }
  auto b = make_batch(B, L, V, 9, 0.3);
  b.mask.index_put_({1, torch::indexing::Slice(7, torch::indexing::None)}, 0);

  const fs::path dir = fs::temp_directory_path() / ("mpibert_ref_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  nlohmann::json manifest;
  manifest["config"] = to_hf_config_json(cfg);
  for (auto& [name, t] : m->hf_state_dict()) {
    if (name.rfind("cls.predictions.decoder", 0) == 0) continue;
    write_raw(dir / (name + ".bin"), t.detach());
    manifest["tensors"][name] = t.sizes().vec();
  }
  write_raw(dir / "input_ids.bin", b.ids);
  write_raw(dir / "attention_mask.bin", b.mask);
  write_raw(dir / "labels.bin", b.labels);
  manifest["batch"] = {B, L};
  std::ofstream(dir / "manifest.json") << manifest.dump();

  const std::string cmd =
      "/usr/bin/python3 " MPIBERT_SOURCE_DIR "/bench/baseline_step.py reference --dir " + dir.string();
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;

  auto ref_logits = read_raw(dir / "logits.bin", {B, L, V});
  EXPECT_TRUE(torch::allclose(m->logits(b.ids, b.mask), ref_logits, 1e-4, 1e-4));
  m->zero_grad();
  auto out = m->forward_mlm(b.ids, b.mask, b.labels, true);
  out.loss_sum.backward();
  auto ref_loss = read_raw(dir / "loss_sum.bin", {1});
  EXPECT_NEAR(out.loss_sum.item<float>(), ref_loss.item<float>(), 1e-4 * ref_loss.item<float>());
  std::vector<torch::Tensor> ours, ref;
  for (auto& [name, t] : m->named_parameters().pairs()) {
    ours.push_back(t.grad());
    ref.push_back(read_raw(dir / ("grad." + name + ".bin"), t.sizes()));
  }
  const double floor = grad_floor(ref);
  size_t i = 0;
  for (auto& [name, t] : m->named_parameters().pairs()) {
    const double rel = (ours[i] - ref[i]).norm().item<double>() / std::max(ref[i].norm().item<double>(), floor);
    EXPECT_LT(rel, 1e-4) << name;
    ++i;
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace mpibert::model
