// The global data order: a fixed PRNG, one permutation per epoch, the same order for any split of
// the global batch across ranks and micro-steps, and exact resumption.
#include "common/data/batch_sampler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "common/error.h"

namespace mpibert::data {
namespace {

TEST(Xoshiro256, MatchesIndependentReferenceOutputs) {
  // Values from a separate Python transcription of splitmix64 seeding + xoshiro256** (checked
  // against the published xoshiro256** outputs for state {1,2,3,4}: 11520, 0, 1509978240, ...).
  Xoshiro256 rng(34, 0);
  EXPECT_EQ(rng.next(), 0xb933d615cdd6569bULL);
  EXPECT_EQ(rng.next(), 0x73e9b4db18d1609bULL);
  EXPECT_EQ(rng.next(), 0x7e46e4e7443df8deULL);
}

TEST(ShuffledRange, IsPinnedSoTheOrderNeverChangesSilently) {
  EXPECT_EQ(shuffled_range(10, 34, 0), (std::vector<int64_t>{1, 9, 6, 0, 2, 8, 5, 3, 4, 7}));
  EXPECT_EQ(shuffled_range(10, 34, 1), (std::vector<int64_t>{3, 5, 9, 8, 2, 7, 1, 0, 4, 6}));
  EXPECT_EQ(shuffled_range(20, 42, 7),
            (std::vector<int64_t>{9, 7, 0, 3, 16, 10, 17, 2, 6, 14, 11, 18, 4, 12, 13, 19, 5, 8, 15, 1}));
  EXPECT_TRUE(shuffled_range(0, 1, 2).empty());
  EXPECT_EQ(shuffled_range(1, 1, 2), std::vector<int64_t>{0});
}

TEST(Xoshiro256, UniformStaysBelowItsBoundAndCoversIt) {
  Xoshiro256 rng(7, 3);
  std::vector<int> seen(6, 0);
  for (int i = 0; i < 6000; ++i) {
    uint64_t v = rng.uniform(6);
    ASSERT_LT(v, 6u);
    ++seen[v];
  }
  for (int c : seen) EXPECT_GT(c, 800);  // each value ~1000 times; a broken reduction would starve some
  EXPECT_THROW(rng.uniform(0), std::invalid_argument);
}

TEST(GlobalBatchSampler, EverySequenceExactlyOncePerEpochWithoutDropLast) {
  GlobalBatchSampler s(103, 10, 5, /*drop_last=*/false);
  EXPECT_EQ(s.steps_per_epoch(), 11);
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    std::vector<int64_t> all;
    for (int64_t step = epoch * 11; step < (epoch + 1) * 11; ++step) {
      auto b = s.global_batch(step);
      EXPECT_EQ(int64_t(b.size()), step % 11 == 10 ? 3 : 10);
      all.insert(all.end(), b.begin(), b.end());
    }
    std::sort(all.begin(), all.end());
    for (int64_t i = 0; i < 103; ++i) ASSERT_EQ(all[i], i);
  }
}

TEST(GlobalBatchSampler, DropLastGivesFullDistinctBatchesAndNewOrderEachEpoch) {
  GlobalBatchSampler s(103, 10, 5);
  EXPECT_EQ(s.steps_per_epoch(), 10);
  EXPECT_EQ(s.epoch_length(), 100);
  std::vector<std::vector<int64_t>> epochs(2);
  for (int64_t step = 0; step < 20; ++step) {
    auto b = s.global_batch(step);
    ASSERT_EQ(b.size(), 10u);
    EXPECT_EQ(s.epoch_of_step(step), step / 10);
    epochs[step / 10].insert(epochs[step / 10].end(), b.begin(), b.end());
  }
  for (auto& e : epochs) EXPECT_EQ(std::set<int64_t>(e.begin(), e.end()).size(), 100u);
  EXPECT_NE(epochs[0], epochs[1]);
  const auto permutation = shuffled_range(103, 5, 0);  // epoch 0 = stream 0, first 100 kept
  EXPECT_EQ(epochs[0], std::vector<int64_t>(permutation.begin(), permutation.begin() + 100));
}

TEST(GlobalBatchSampler, SameGlobalOrderForWorldSizesOneTwoAndThree) {
  GlobalBatchSampler s(500, 12, 34);
  struct Split {
    int world, accumulation;
  } splits[] = {{1, 1}, {2, 1}, {3, 1}, {1, 12}, {2, 3}, {3, 2}, {3, 4}, {2, 6}};
  for (int64_t step : {0, 1, 40, 41, 97}) {
    const auto expected = s.global_batch(step);
    for (const auto& sp : splits) {
      std::vector<int64_t> joined;
      for (int m = 0; m < sp.accumulation; ++m)
        for (int r = 0; r < sp.world; ++r) {
          auto part = s.slice(step, r, sp.world, m, sp.accumulation);
          EXPECT_EQ(int64_t(part.size()), 12 / (sp.world * sp.accumulation));
          const int64_t offset = s.slice_offset(r, sp.world, m, sp.accumulation);
          for (size_t k = 0; k < part.size(); ++k)
            EXPECT_EQ(s.index_at(s.position(step, offset + int64_t(k))), part[k]);
          joined.insert(joined.end(), part.begin(), part.end());
        }
      EXPECT_EQ(joined, expected) << "world " << sp.world << " x accumulation " << sp.accumulation << ", step " << step;
    }
  }
}

TEST(GlobalBatchSampler, ResumesAtAnExactNumberOfConsumedSequences) {
  GlobalBatchSampler full(257, 16, 99);
  std::vector<int64_t> stream;
  for (int64_t step = 0; step < 50; ++step) {
    auto b = full.global_batch(step);
    stream.insert(stream.end(), b.begin(), b.end());
  }
  // A fresh sampler (as after a restart) continuing at consumed = step * G sees the same batches,
  // including across the epoch boundary (16 steps per epoch).
  for (int64_t resume_step : {0, 7, 15, 16, 17, 33}) {
    GlobalBatchSampler resumed(257, 16, 99);
    for (int64_t step = resume_step; step < 50; ++step) {
      const int64_t consumed = step * 16;
      EXPECT_EQ(full.position(step, 0), consumed);
      EXPECT_EQ(resumed.sequences(consumed, 16),
                std::vector<int64_t>(stream.begin() + consumed, stream.begin() + consumed + 16));
    }
  }
  // A range that crosses epochs is the two epochs' pieces back to back.
  EXPECT_EQ(full.sequences(250, 20), std::vector<int64_t>(stream.begin() + 250, stream.begin() + 270));
}

TEST(GlobalBatchSampler, OrderDependsOnlyOnSeedAndEpoch) {
  GlobalBatchSampler a(1000, 8, 1), b(1000, 8, 1), c(1000, 8, 2);
  // Visit b out of order: the cache must not leak into the answer.
  auto b9 = b.global_batch(9 + 125);
  auto b0 = b.global_batch(0);
  EXPECT_EQ(a.global_batch(0), b0);
  EXPECT_EQ(a.global_batch(9 + 125), b9);
  EXPECT_NE(a.global_batch(0), c.global_batch(0));
}

TEST(GlobalBatchSampler, TooFewSequencesForOneBatchIsAUsageError) {
  EXPECT_THROW(GlobalBatchSampler(7, 8, 0), UsageError);
  EXPECT_THROW(GlobalBatchSampler(0, 8, 0, false), UsageError);
  EXPECT_THROW(GlobalBatchSampler(10, 0, 0), UsageError);
  GlobalBatchSampler partial(7, 8, 0, /*drop_last=*/false);
  EXPECT_EQ(partial.steps_per_epoch(), 1);
  EXPECT_EQ(partial.global_batch(0).size(), 7u);
}

TEST(GlobalBatchSampler, SliceRejectsUnevenSplitsAndBadRanks) {
  GlobalBatchSampler s(100, 12, 0);
  EXPECT_THROW(s.slice(0, 0, 5, 0, 1), std::invalid_argument);  // 12 % 5 != 0
  EXPECT_THROW(s.slice(0, 2, 2, 0, 1), std::invalid_argument);  // rank >= world
  EXPECT_THROW(s.slice(0, 0, 2, 3, 3), std::invalid_argument);  // micro-step >= accumulation
  EXPECT_THROW(s.position(0, 12), std::out_of_range);
}

TEST(GlobalBatchSampler, ShortLastBatchIsCutTheSameWayAndTruncated) {
  GlobalBatchSampler s(10, 4, 3, /*drop_last=*/false);  // batches of 4, 4, 2
  std::vector<int64_t> joined;
  for (int r = 0; r < 2; ++r) {
    auto part = s.slice(2, r, 2, 0, 1);
    EXPECT_EQ(part.size(), r == 0 ? 2u : 0u);
    joined.insert(joined.end(), part.begin(), part.end());
  }
  EXPECT_EQ(joined, s.global_batch(2));
}

}  // namespace
}  // namespace mpibert::data
