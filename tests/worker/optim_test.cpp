// AdamW / LAMB against hand-computed updates, torch.optim.AdamW's op sequence, state round trips,
// weight-decay grouping and gradient clipping.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <map>
#include <vector>

#include "common/error.h"
#include "worker/model/bf16_weights.h"
#include "worker/model/precision.h"
#include "worker/optim/optimizer.h"

namespace mpibert::optim {
namespace {

using Named = std::vector<std::pair<std::string, torch::Tensor>>;

torch::Tensor leaf(std::vector<float> v) {
  return torch::tensor(v).set_requires_grad(true);
}

void set_grad(torch::Tensor& p, std::vector<float> g) {
  p.mutable_grad() = torch::tensor(g);
}

// Reference AdamW (torch.optim.AdamW semantics) in double, one element.
struct AdamRef {
  double p, m = 0, v = 0;
  void step(double g, int t, double lr, double wd, double b1 = 0.9, double b2 = 0.999, double eps = 1e-8) {
    p *= 1 - lr * wd;
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    const double denom = std::sqrt(v) / std::sqrt(1 - std::pow(b2, t)) + eps;
    p -= lr / (1 - std::pow(b1, t)) * m / denom;
  }
};

TEST(Optimizer, AdamWMatchesHandComputedUpdatesWithDecoupledDecayOnWeightsOnly) {
  auto w = leaf({1.0f, -2.0f, 0.5f});
  auto b = leaf({0.25f, 0.0f});
  OptimizerOptions o;
  o.weight_decay = 0.01;
  Optimizer opt({{"layer.dense.weight", w}, {"layer.dense.bias", b}}, o);
  EXPECT_TRUE(opt.decays(0));
  EXPECT_FALSE(opt.decays(1));
  std::vector<AdamRef> rw = {{1.0}, {-2.0}, {0.5}}, rb = {{0.25}, {0.0}};
  const std::vector<std::vector<float>> gw = {{0.5f, -0.1f, 0.0f}, {0.2f, 0.3f, -0.4f}, {-0.6f, 0.05f, 0.1f}};
  const std::vector<std::vector<float>> gb = {{1.0f, -1.0f}, {0.5f, 0.25f}, {-0.125f, 2.0f}};
  const double lrs[] = {0.1, 0.05, 0.02};
  for (int t = 1; t <= 3; ++t) {
    set_grad(w, gw[t - 1]);
    set_grad(b, gb[t - 1]);
    opt.step(lrs[t - 1]);
    for (int i = 0; i < 3; ++i) rw[i].step(gw[t - 1][i], t, lrs[t - 1], 0.01);
    for (int i = 0; i < 2; ++i) rb[i].step(gb[t - 1][i], t, lrs[t - 1], 0.0);
    for (int i = 0; i < 3; ++i) EXPECT_NEAR(w[i].item<float>(), rw[i].p, 2e-7) << "step " << t << " w" << i;
    for (int i = 0; i < 2; ++i) EXPECT_NEAR(b[i].item<float>(), rb[i].p, 2e-7) << "step " << t << " b" << i;
    if (t == 1) {
      // By hand: m_hat = g, v_hat = g^2, so the first update is lr * g / (|g| + eps) after decay.
      EXPECT_NEAR(w[0].item<float>(), 1.0 * (1 - 0.1 * 0.01) - 0.1 * 0.5 / (0.5 + 1e-8), 1e-7);
      EXPECT_NEAR(w[2].item<float>(), 0.5 * (1 - 0.1 * 0.01), 1e-7);  // zero gradient: decay only
      EXPECT_NEAR(b[1].item<float>(), 0.0 + 0.1, 1e-7);
    }
  }
  EXPECT_EQ(opt.step_count(), 3);
}

TEST(Optimizer, AdamWEqualsTorchAdamWOpSequenceOnLargeTensors) {
  torch::manual_seed(3);
  const int64_t n = 100003;  // odd size: vector body and scalar tail
  auto p = torch::randn({n}).set_requires_grad(true);
  torch::Tensor ref_p = p.detach().clone(), m = torch::zeros({n}), v = torch::zeros({n});
  OptimizerOptions o;
  o.weight_decay = 0.1;
  o.eps = 1e-6;
  Optimizer opt({{"w", p}}, o);
  for (int t = 1; t <= 4; ++t) {
    auto g = torch::randn({n}) * (t * 0.3);
    p.mutable_grad() = g.clone();
    const double lr = 1e-2 / t;
    opt.step(lr);
    // torch/optim/adamw.py (1.13, single tensor):
    ref_p.mul_(1 - lr * 0.1);
    m.mul_(0.9).add_(g, 1 - 0.9);
    v.mul_(0.999).addcmul_(g, g, 1 - 0.999);
    auto denom = (v.sqrt() / std::sqrt(1 - std::pow(0.999, t))).add_(1e-6);
    ref_p.addcdiv_(m, denom, -(lr / (1 - std::pow(0.9, t))));
  }
  EXPECT_TRUE(torch::allclose(p.detach(), ref_p, 1e-6, 1e-8)) << (p.detach() - ref_p).abs().max().item<float>();
  // m = 0.9 m + 0.1 g rounds once or twice depending on whether the compiler contracts it into a fused
  // multiply-add (our kernel differs between -O3 and the -O0 sanitizer build; torch's kernels choose for
  // themselves): up to an ulp of the terms (|0.9 m| + |0.1 g| < 2, ulp 2.4e-7), far more than rtol x m
  // where the two terms cancel. A wrong update is off by orders of magnitude more.
  const auto m_ours = opt.state_tensors()[0].second;
  EXPECT_TRUE(torch::allclose(m_ours, m, 1e-6, 2.5e-7)) << (m_ours - m).abs().max().item<float>();
  EXPECT_TRUE(torch::allclose(opt.state_tensors()[1].second, v, 1e-6, 1e-12));
}

// Reference LAMB for one tensor in double.
void lamb_ref(std::vector<double>& p, std::vector<double>& m, std::vector<double>& v, const std::vector<double>& g,
              int t, double lr, double wd, bool trust, double b1 = 0.9, double b2 = 0.999, double eps = 1e-8) {
  std::vector<double> u(p.size());
  double pn = 0, un = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    m[i] = b1 * m[i] + (1 - b1) * g[i];
    v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
    u[i] = (m[i] / (1 - std::pow(b1, t))) / (std::sqrt(v[i] / (1 - std::pow(b2, t))) + eps) + wd * p[i];
    pn += p[i] * p[i];
    un += u[i] * u[i];
  }
  pn = std::sqrt(pn);
  un = std::sqrt(un);
  const double r = (trust && pn > 0 && un > 0) ? pn / un : 1.0;
  for (size_t i = 0; i < p.size(); ++i) p[i] -= lr * r * u[i];
}

TEST(Optimizer, LambMatchesHandComputedTrustRatioUpdates) {
  auto w = leaf({1.0f, 2.0f});
  auto b = leaf({0.0f, 0.0f});  // zero norm: trust ratio 1
  OptimizerOptions o;
  o.type = "lamb";
  o.weight_decay = 0.01;
  Optimizer opt({{"encoder.weight", w}, {"encoder.bias", b}}, o);
  // Step 1 by hand: u = g/|g| + wd*p = [1.01, -0.98]; r = sqrt(5) / sqrt(1.01^2 + 0.98^2).
  set_grad(w, {0.1f, -0.2f});
  set_grad(b, {0.3f, -0.3f});
  opt.step(0.1);
  const double r = std::sqrt(5.0) / std::sqrt(1.01 * 1.01 + 0.98 * 0.98);
  EXPECT_NEAR(w[0].item<float>(), 1.0 - 0.1 * r * 1.01, 1e-6);
  EXPECT_NEAR(w[1].item<float>(), 2.0 + 0.1 * r * 0.98, 1e-6);
  EXPECT_NEAR(b[0].item<float>(), -0.1, 1e-6);  // ||p|| = 0 -> ratio 1, u = sign(g)
  EXPECT_NEAR(b[1].item<float>(), 0.1, 1e-6);

  std::vector<double> pw = {1.0, 2.0}, mw = {0, 0}, vw = {0, 0};
  std::vector<double> pb = {0.0, 0.0}, mb = {0, 0}, vb = {0, 0};
  lamb_ref(pw, mw, vw, {0.1, -0.2}, 1, 0.1, 0.01, true);
  lamb_ref(pb, mb, vb, {0.3, -0.3}, 1, 0.1, 0.0, true);
  const std::vector<std::vector<double>> gws = {{0.05, 0.4}, {-0.3, 0.1}}, gbs = {{0.2, 0.1}, {-0.1, -0.5}};
  for (int t = 2; t <= 3; ++t) {
    set_grad(w, {static_cast<float>(gws[t - 2][0]), static_cast<float>(gws[t - 2][1])});
    set_grad(b, {static_cast<float>(gbs[t - 2][0]), static_cast<float>(gbs[t - 2][1])});
    opt.step(0.05);
    lamb_ref(pw, mw, vw, gws[t - 2], t, 0.05, 0.01, true);
    lamb_ref(pb, mb, vb, gbs[t - 2], t, 0.05, 0.0, true);
    for (int i = 0; i < 2; ++i) {
      EXPECT_NEAR(w[i].item<float>(), pw[i], 2e-6) << "step " << t;
      EXPECT_NEAR(b[i].item<float>(), pb[i], 2e-6) << "step " << t;
    }
  }
}

TEST(Optimizer, LambApexModeSkipsTrustRatioWithoutWeightDecay) {
  auto b = leaf({1.0f, 1.0f});
  OptimizerOptions o;
  o.type = "lamb";
  o.weight_decay = 0.01;
  o.lamb_trust_ratio_without_decay = false;
  Optimizer opt({{"LayerNorm.bias", b}}, o);
  set_grad(b, {0.5f, -0.5f});
  opt.step(0.1);
  EXPECT_NEAR(b[0].item<float>(), 0.9, 1e-6);  // u = sign(g), ratio 1
  EXPECT_NEAR(b[1].item<float>(), 1.1, 1e-6);
}

TEST(Optimizer, FollowsHuggingFaceNoDecayNames) {
  EXPECT_TRUE(hf_applies_weight_decay("bert.encoder.layer.0.attention.self.query.weight"));
  EXPECT_TRUE(hf_applies_weight_decay("bert.embeddings.word_embeddings.weight"));
  EXPECT_FALSE(hf_applies_weight_decay("bert.encoder.layer.0.attention.self.query.bias"));
  EXPECT_FALSE(hf_applies_weight_decay("bert.embeddings.LayerNorm.weight"));
  EXPECT_FALSE(hf_applies_weight_decay("cls.predictions.transform.LayerNorm.bias"));
  EXPECT_FALSE(hf_applies_weight_decay("cls.predictions.bias"));
}

TEST(Optimizer, SkipsParametersWithoutGradientAndZeroGradDropsOrZeroes) {
  auto a = leaf({1.0f}), b = leaf({2.0f});
  Optimizer opt({{"a", a}, {"b", b}}, OptimizerOptions{});
  set_grad(a, {1.0f});
  opt.step(0.1);
  EXPECT_NEAR(a.item<float>(), 0.9, 1e-6);
  EXPECT_EQ(b.item<float>(), 2.0f);
  EXPECT_EQ(opt.state_tensors()[3].second.item<float>(), 0.0f);  // b.exp_avg_sq untouched
  opt.zero_grad(false);
  ASSERT_TRUE(a.grad().defined());
  EXPECT_EQ(a.grad().item<float>(), 0.0f);
  opt.zero_grad();
  EXPECT_FALSE(a.grad().defined());
}

TEST(Optimizer, StateRoundTripResumesBitIdentically) {
  torch::manual_seed(5);
  auto init = torch::randn({1000});
  std::vector<torch::Tensor> grads;
  for (int i = 0; i < 5; ++i) grads.push_back(torch::randn({1000}));
  for (std::string type : {"adamw", "lamb"}) {
    OptimizerOptions o;
    o.type = type;
    o.weight_decay = 0.01;
    auto p = init.clone().set_requires_grad(true);
    Optimizer opt({{"w", p}}, o);
    std::map<std::string, torch::Tensor> saved;
    torch::Tensor saved_p;
    for (int i = 0; i < 5; ++i) {
      if (i == 3) {
        for (auto& [k, t] : opt.state_tensors()) saved[k] = t.clone();
        saved_p = p.detach().clone();
      }
      p.mutable_grad() = grads[i].clone();
      opt.step(1e-2);
    }
    auto q = saved_p.clone().set_requires_grad(true);
    Optimizer resumed({{"w", q}}, o);
    resumed.load_state(saved, 3);
    for (int i = 3; i < 5; ++i) {
      q.mutable_grad() = grads[i].clone();
      resumed.step(1e-2);
    }
    EXPECT_TRUE(torch::equal(p.detach(), q.detach())) << type;
    EXPECT_EQ(resumed.step_count(), 5);
    std::map<std::string, torch::Tensor> missing = saved;
    missing.erase("w.exp_avg");
    EXPECT_THROW(resumed.load_state(missing, 3), std::runtime_error);
    saved["x.exp_avg"] = torch::zeros({1});
    EXPECT_THROW(resumed.load_state(saved, 3), std::runtime_error);
  }
}

TEST(Optimizer, RejectsDuplicateTensorsAndUnknownType) {
  auto a = leaf({1.0f});
  EXPECT_THROW(Optimizer({{"a", a}, {"alias", a}}, OptimizerOptions{}), std::invalid_argument);
  OptimizerOptions o;
  o.type = "sgd";
  EXPECT_THROW(Optimizer({{"a", a}}, o), UsageError);
  EXPECT_THROW(Optimizer({{"h", torch::zeros({2}, torch::kBFloat16)}}, OptimizerOptions{}), std::invalid_argument);
}

// The bf16 copies of weights under autocast (model/bf16_weights.h): made once, reused while the weight is
// unchanged, rewritten by the optimizer in its update pass (AdamW and LAMB) to exactly the cast autocast
// would make, and refreshed after any other in-place change; the gradient reaches the fp32 weight.
TEST(Optimizer, KeepsTheBf16CopiesOfWeightsCurrent) {
  for (const std::string type : {"adamw", "lamb"}) {
    torch::manual_seed(2);
    torch::Tensor w = torch::randn({40, 1000}).requires_grad_(true);  // over one parallel chunk
    const torch::Tensor x = torch::randn({3, 1000});
    auto forward = [&] {
      model::AutocastGuard autocast(true);
      return at::mm(x, model::bf16_weight(w).t());
    };
    EXPECT_EQ(model::kept_bf16_copy(w), nullptr);
    torch::Tensor y = forward();
    const auto kept = model::kept_bf16_copy(w);
    ASSERT_NE(kept, nullptr);
    EXPECT_TRUE(kept->copy.equal(w.detach().to(at::kBFloat16)));
    const void* storage = kept->copy.data_ptr();
    y.sum().backward();
    ASSERT_TRUE(w.grad().defined());
    EXPECT_EQ(w.grad().scalar_type(), at::kFloat);
    const torch::Tensor expected_grad = x.to(at::kBFloat16).sum(0).to(at::kFloat).expand({40, 1000});
    EXPECT_TRUE(w.grad().equal(expected_grad));

    OptimizerOptions o;
    o.type = type;
    o.weight_decay = 0.01;
    Optimizer opt({{"w", w}}, o);
    opt.step(1e-2);
    EXPECT_EQ(kept->version, w._version());
    EXPECT_TRUE(kept->copy.equal(w.detach().to(at::kBFloat16)));
    const torch::Tensor after_step = forward();  // uses the optimizer's copy: no new cast
    EXPECT_EQ(model::kept_bf16_copy(w)->copy.data_ptr(), storage);
    EXPECT_TRUE(after_step.equal(at::mm(x.to(at::kBFloat16), w.detach().to(at::kBFloat16).t())));

    {
      torch::NoGradGuard no_grad;
      w.mul_(2);  // any other in-place change: the next forward casts again
    }
    EXPECT_NE(kept->version, w._version());
    forward();
    EXPECT_EQ(kept->version, w._version());
    EXPECT_TRUE(kept->copy.equal(w.detach().to(at::kBFloat16)));
  }
}

TEST(GradClip, ReturnsNormBeforeClippingAndScalesToMaxNorm) {
  auto a = leaf({0.0f, 0.0f}), b = leaf({0.0f}), c = leaf({0.0f});
  set_grad(a, {3.0f, 0.0f});
  set_grad(b, {4.0f});  // c has no gradient
  EXPECT_NEAR(clip_grad_norm({a, b, c}, 1.0), 5.0, 1e-12);
  EXPECT_NEAR(grad_norm({a, b, c}), 1.0, 1e-6);
  EXPECT_NEAR(a.grad()[0].item<float>(), 0.6, 1e-6);
  // Below the limit (or max_norm 0): untouched.
  EXPECT_NEAR(clip_grad_norm({a, b}, 10.0), 1.0, 1e-6);
  EXPECT_NEAR(clip_grad_norm({a, b}, 0.0), 1.0, 1e-6);
  EXPECT_NEAR(a.grad()[0].item<float>(), 0.6, 1e-6);
}

TEST(GradClip, NonFiniteNormLeavesGradientsUntouched) {
  auto a = leaf({0.0f, 0.0f});
  set_grad(a, {INFINITY, 1.0f});
  EXPECT_TRUE(std::isinf(clip_grad_norm({a}, 1.0)));
  EXPECT_EQ(a.grad()[1].item<float>(), 1.0f);
}

TEST(GradClip, ClipAndStepEqualsClipGradNormThenStep) {
  torch::manual_seed(4);
  for (std::string type : {"adamw", "lamb"}) {
    OptimizerOptions o;
    o.type = type;
    o.weight_decay = 0.01;
    auto init = torch::randn({5000});
    auto p = init.clone().set_requires_grad(true), q = init.clone().set_requires_grad(true);
    Optimizer a({{"w", p}}, o), b({{"w", q}}, o);
    for (int i = 0; i < 3; ++i) {
      auto g = torch::randn({5000}) * 0.1;  // norm ~7: clipped to 1
      p.mutable_grad() = g.clone();
      q.mutable_grad() = g.clone();
      const double n1 = clip_grad_norm({p}, 1.0);
      a.step(1e-3);
      const double n2 = b.clip_and_step(1e-3, 1.0);
      EXPECT_EQ(n1, n2);
      EXPECT_TRUE(torch::equal(q.grad(), g)) << "clip_and_step must not modify the gradients";
    }
    EXPECT_TRUE(torch::allclose(p.detach(), q.detach(), 1e-6, 1e-9)) << type;
    q.mutable_grad() = torch::full({5000}, NAN);
    EXPECT_TRUE(std::isnan(b.clip_and_step(1e-3, 1.0)));
    EXPECT_EQ(b.step_count(), 3);  // non-finite norm: no update
    EXPECT_FALSE(torch::isnan(q.detach()).any().item<bool>());
  }
}

TEST(GradClip, NormDoesNotDependOnThreadCount) {
  torch::manual_seed(9);
  auto a = torch::zeros({3000001}).set_requires_grad(true);
  a.mutable_grad() = torch::randn({3000001});
  const int before = at::get_num_threads();
  at::set_num_threads(1);
  const double one = grad_norm({a});
  at::set_num_threads(2);
  const double two = grad_norm({a});
  at::set_num_threads(before);
  EXPECT_EQ(one, two);
  EXPECT_NEAR(one, a.grad().to(torch::kDouble).norm().item<double>(), 1e-9 * one);
}

}  // namespace
}  // namespace mpibert::optim
