// GradientReducer under mpirun: the reduced gradients equal the gradient of the whole global batch
// computed on one rank (with accumulation, a tied weight, several buckets), buckets are the same on
// every rank and launch during backward.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "common/comm/mpi_backend.h"
#include "worker/train/gradient_reducer.h"

namespace mpibert {
namespace {

HcclLike& comm() {
  static std::unique_ptr<HcclLike> c = make_mpi_backend();
  return *c;
}

// A tiny tied-embedding model: embedding E used again (transposed) as the output projection.
struct TinyParams {
  at::Tensor emb, w1, b1, w2, b2;
  std::vector<at::Tensor> list() const { return {emb, w1, b1, w2, b2}; }
};

TinyParams make_params() {
  torch::manual_seed(11);
  TinyParams p;
  p.emb = (torch::randn({50, 64}) * 0.1).requires_grad_();
  p.w1 = (torch::randn({256, 64}) * 0.1).requires_grad_();
  p.b1 = torch::zeros({256}).requires_grad_();
  p.w2 = (torch::randn({64, 256}) * 0.1).requires_grad_();
  p.b2 = torch::zeros({64}).requires_grad_();
  return p;
}

// Sum of a cross-entropy over a batch derived from (rank, micro-step): differs on every rank.
at::Tensor loss_sum(const TinyParams& p, int rank, int micro) {
  auto gen = at::detail::createCPUGenerator(1000 + rank * 17 + micro);
  auto ids = torch::randint(50, {8, 6}, gen);
  auto h = torch::embedding(p.emb, ids);
  h = torch::tanh(torch::linear(h, p.w1, p.b1));
  h = torch::linear(h, p.w2, p.b2);
  auto logits = torch::matmul(h, p.emb.t());  // tied
  return torch::nn::functional::cross_entropy(logits.reshape({-1, 50}), ids.reshape({-1}),
                                              torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kSum));
}

void check_reduced_gradients(bool overlap, int accumulation) {
  const int W = comm().size(), R = comm().rank();
  TinyParams p = make_params();
  ReducerOptions o;
  o.first_bucket_mb = 0.01;  // several buckets: the first small, then ~64 KiB
  o.bucket_cap_mb = 0.06;
  o.overlap = overlap;
  GradientReducer reducer(comm(), p.list(), o);
  ASSERT_GE(reducer.buckets().size(), 3u);
  const double total = 8.0 * 6 * W * accumulation;
  reducer.zero_grad();
  for (int m = 0; m < accumulation; ++m) {
    reducer.prepare_for_backward(m == accumulation - 1);
    (loss_sum(p, R, m) / total).backward();
  }
  reducer.finish();
  if (overlap && W > 1) {
    EXPECT_GT(reducer.launched_in_backward(), 0u);
  }

  // Reference: this rank computes every rank's micro-batches itself, with plain autograd.
  TinyParams q = make_params();
  at::Tensor ref = torch::zeros({});
  for (int r = 0; r < W; ++r)
    for (int m = 0; m < accumulation; ++m) ref = ref + loss_sum(q, r, m);
  (ref / total).backward();
  auto got = p.list(), want = q.list();
  for (size_t k = 0; k < got.size(); ++k)
    EXPECT_TRUE(torch::allclose(got[k].grad(), want[k].grad(), 1e-5, 1e-7)) << "parameter " << k;
  // The gradient is a view of its bucket (no copies), and the tied weight lives in exactly one bucket.
  int emb_buckets = 0;
  for (const auto& b : reducer.buckets())
    for (size_t k : b.params) emb_buckets += k == 0;
  EXPECT_EQ(emb_buckets, 1);
}

TEST(GradientReducer, MatchesSingleRankGradientWithOverlap) {
  check_reduced_gradients(true, 1);
}
TEST(GradientReducer, MatchesSingleRankGradientWithAccumulation) {
  check_reduced_gradients(true, 3);
}
TEST(GradientReducer, MatchesSingleRankGradientWithoutOverlap) {
  check_reduced_gradients(false, 2);
}

TEST(GradientReducer, BucketsAreTheSameOnEveryRankInReverseParameterOrder) {
  TinyParams p = make_params();
  ReducerOptions o;
  o.first_bucket_mb = 0.01;
  o.bucket_cap_mb = 0.06;
  GradientReducer reducer(comm(), p.list(), o);
  std::vector<int64_t> layout;
  for (const auto& b : reducer.buckets()) {
    layout.push_back(-1);
    for (size_t k : b.params) layout.push_back(static_cast<int64_t>(k));
  }
  // Reverse registration order: the last parameter is in the first bucket.
  EXPECT_EQ(reducer.buckets().front().params.front(), 4u);
  std::vector<int64_t> all(layout.size() * comm().size());
  comm().allGather(layout.data(), all.data(), layout.size(), DataType::I64)->wait();
  for (int r = 0; r < comm().size(); ++r)
    EXPECT_TRUE(std::equal(layout.begin(), layout.end(), all.begin() + r * layout.size())) << "rank " << r;
}

}  // namespace
}  // namespace mpibert
