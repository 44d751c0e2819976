// MLM masking: statistics, special tokens, determinism, whole-word masking, validation.
#include "worker/train/masking.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <set>
#include <vector>

#include "common/error.h"

namespace mpibert::train {
namespace {

constexpr int64_t kVocab = 1000;
constexpr int64_t kPad = 0, kUnk = 1, kCls = 2, kSep = 3, kMask = 4;

MaskingOptions base_options() {
  MaskingOptions o;
  o.vocab_size = kVocab;
  o.pad_id = kPad;
  o.mask_id = kMask;
  o.special_ids = {kPad, kUnk, kCls, kSep, kMask};
  return o;
}

// Deterministic pseudo-random sequence: [CLS] tokens... [SEP] then `pad` padding ids.
std::vector<int32_t> make_sequence(int64_t index, int64_t len, int64_t pad) {
  std::vector<int32_t> ids(static_cast<size_t>(len), static_cast<int32_t>(kPad));
  uint64_t s = 0x1234567ull + static_cast<uint64_t>(index) * 7919;
  ids[0] = kCls;
  for (int64_t j = 1; j < len - pad - 1; ++j) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    ids[static_cast<size_t>(j)] = static_cast<int32_t>(5 + (s >> 33) % (kVocab - 5));
  }
  ids[static_cast<size_t>(len - pad - 1)] = kSep;
  return ids;
}

bool special(int64_t id) {
  return id == kPad || id == kUnk || id == kCls || id == kSep || id == kMask;
}

TEST(Masking, SelectsFifteenPercentWithEightyTenTenSplitAndNeverSpecialTokens) {
  MlmMasker masker(base_options());
  const int64_t len = 128, n = 20000;
  int64_t maskable = 0, selected = 0, as_mask = 0, as_random = 0, kept = 0;
  std::vector<int64_t> in(len), labels(len);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t pad = i % 7 == 0 ? 30 : 0;
    auto ids = make_sequence(i, len, pad);
    const int64_t count = masker.mask_sequence(ids.data(), len, 42, 0, i, in.data(), labels.data());
    int64_t counted = 0;
    for (int64_t j = 0; j < len; ++j) {
      const int64_t id = ids[static_cast<size_t>(j)];
      if (special(id)) {
        ASSERT_EQ(labels[j], kIgnoreLabel) << "special token selected at " << j;
        ASSERT_EQ(in[j], id);
        continue;
      }
      ++maskable;
      if (labels[j] == kIgnoreLabel) {
        ASSERT_EQ(in[j], id) << "unselected token changed";
        continue;
      }
      ++counted;
      ASSERT_EQ(labels[j], id) << "label must be the original id";
      if (in[j] == kMask) {
        ++as_mask;
      } else if (in[j] == id) {
        ++kept;
      } else {
        ++as_random;
        ASSERT_FALSE(special(in[j])) << "random replacement drew a special token";
        ASSERT_GE(in[j], 0);
        ASSERT_LT(in[j], kVocab);
      }
    }
    ASSERT_EQ(count, counted);
    selected += counted;
  }
  const double frac = static_cast<double>(selected) / maskable;
  EXPECT_NEAR(frac, 0.15, 0.002);  // ~2.4M maskable tokens: sigma ~ 2.3e-4
  const double s = static_cast<double>(selected);
  EXPECT_NEAR(as_mask / s, 0.8, 0.004);
  // A random draw equals the original with probability 1/995, which counts as "kept".
  EXPECT_NEAR(as_random / s, 0.1 * (1.0 - 1.0 / 995), 0.003);
  EXPECT_NEAR(kept / s, 0.1 + 0.1 / 995, 0.003);
}

TEST(Masking, RandomReplacementsAreUniformOverNonSpecialIds) {
  MaskingOptions o = base_options();
  o.vocab_size = 20;  // 15 non-special ids
  o.mlm_probability = 1.0;
  o.mask_fraction = 0.0;
  o.random_fraction = 1.0;
  MlmMasker masker(o);
  std::vector<int32_t> ids(64, 10);
  std::vector<int64_t> in(64), labels(64), histogram(20, 0);
  for (int64_t i = 0; i < 3000; ++i) {
    masker.mask_sequence(ids.data(), 64, 7, 0, i, in.data(), labels.data());
    for (int64_t v : in) histogram[static_cast<size_t>(v)]++;
  }
  const double expected = 3000.0 * 64 / 15;
  for (int64_t id = 0; id < 20; ++id) {
    if (special(id)) {
      EXPECT_EQ(histogram[static_cast<size_t>(id)], 0) << id;
    } else {
      EXPECT_NEAR(histogram[static_cast<size_t>(id)] / expected, 1.0, 0.05) << id;
    }
  }
}

TEST(Masking, SameSeedEpochAndIndexGiveTheSameMaskWhateverTheBatch) {
  MlmMasker masker(base_options());
  const int64_t len = 64;
  // Batch A holds sequences 5, 9, 11; batch B holds 11, 3, 5 (other order, other neighbours).
  std::vector<int64_t> a_idx = {5, 9, 11}, b_idx = {11, 3, 5};
  auto stack = [&](const std::vector<int64_t>& idx) {
    std::vector<int32_t> ids;
    for (int64_t i : idx) {
      auto s = make_sequence(i, len, 0);
      ids.insert(ids.end(), s.begin(), s.end());
    }
    return ids;
  };
  auto a = stack(a_idx), b = stack(b_idx);
  std::vector<int64_t> a_in(a.size()), a_lab(a.size()), b_in(b.size()), b_lab(b.size());
  masker.mask_batch(a.data(), 3, len, a_idx.data(), 99, 2, a_in.data(), a_lab.data());
  masker.mask_batch(b.data(), 3, len, b_idx.data(), 99, 2, b_in.data(), b_lab.data());
  for (int64_t j = 0; j < len; ++j) {
    EXPECT_EQ(a_in[j], b_in[2 * len + j]);  // sequence 5
    EXPECT_EQ(a_lab[j], b_lab[2 * len + j]);
    EXPECT_EQ(a_in[2 * len + j], b_in[j]);  // sequence 11
    EXPECT_EQ(a_lab[2 * len + j], b_lab[j]);
  }
}

TEST(Masking, DifferentEpochIndexOrSeedGiveDifferentMasks) {
  MlmMasker masker(base_options());
  const int64_t len = 256;
  auto ids = make_sequence(1, len, 0);
  auto labels_for = [&](uint64_t seed, int64_t epoch, int64_t index) {
    std::vector<int64_t> in(len), lab(len);
    masker.mask_sequence(ids.data(), len, seed, epoch, index, in.data(), lab.data());
    return lab;
  };
  const auto ref = labels_for(1, 0, 1);
  EXPECT_EQ(ref, labels_for(1, 0, 1));
  EXPECT_NE(ref, labels_for(1, 1, 1));
  EXPECT_NE(ref, labels_for(1, 0, 2));
  EXPECT_NE(ref, labels_for(2, 0, 1));
}

TEST(Masking, StreamIsPinnedAcrossVersions) {
  // Resuming a run must see the same masks as the uninterrupted run: the RNG stream is part of the
  // format. Changing it must be deliberate (update this digest and note it in docs/model.md).
  MlmMasker masker(base_options());
  const int64_t len = 128;
  uint64_t digest = 1469598103934665603ull;  // FNV-1a over (input, label) of 100 sequences
  std::vector<int64_t> in(len), lab(len);
  for (int64_t i = 0; i < 100; ++i) {
    auto ids = make_sequence(i, len, 0);
    masker.mask_sequence(ids.data(), len, 34, 0, i, in.data(), lab.data());
    for (int64_t j = 0; j < len; ++j) {
      digest = (digest ^ static_cast<uint64_t>(in[j])) * 1099511628211ull;
      digest = (digest ^ static_cast<uint64_t>(lab[j] + 1000)) * 1099511628211ull;
    }
  }
  EXPECT_EQ(masking_key(34, 0, 0), 12280386443779630628ull) << "key";
  EXPECT_EQ(digest, 15986814737628477113ull) << "digest";
}

TEST(Masking, ProbabilityZeroSelectsNothingAndOneSelectsEveryMaskableToken) {
  MaskingOptions o = base_options();
  const int64_t len = 64;
  auto ids = make_sequence(3, len, 10);
  std::vector<int64_t> in(len), lab(len);
  o.mlm_probability = 0.0;
  EXPECT_EQ(MlmMasker(o).mask_sequence(ids.data(), len, 1, 0, 0, in.data(), lab.data()), 0);
  for (int64_t j = 0; j < len; ++j) EXPECT_EQ(in[j], ids[static_cast<size_t>(j)]);
  o.mlm_probability = 1.0;
  EXPECT_EQ(MlmMasker(o).mask_sequence(ids.data(), len, 1, 0, 0, in.data(), lab.data()), len - 10 - 2);
  for (int64_t j = 0; j < len; ++j) EXPECT_EQ(lab[j] != kIgnoreLabel, !special(ids[static_cast<size_t>(j)])) << j;
}

TEST(Masking, WholeWordMasksAllPiecesOfASelectedWordTogether) {
  // Ids >= 500 are continuation ("##") pieces.
  std::vector<uint8_t> cont(kVocab, 0);
  for (int64_t id = 500; id < kVocab; ++id) cont[static_cast<size_t>(id)] = 1;
  MaskingOptions o = base_options();
  o.whole_word = true;
  o.is_continuation = &cont;
  MlmMasker masker(o);
  const int64_t len = 128;
  int64_t words = 0, words_selected = 0;
  std::vector<int64_t> in(len), lab(len);
  for (int64_t i = 0; i < 5000; ++i) {
    auto ids = make_sequence(i, len, 0);
    masker.mask_sequence(ids.data(), len, 5, 0, i, in.data(), lab.data());
    // Walk the words: a word = a maskable token and the continuation pieces after it.
    int64_t j = 0;
    while (j < len) {
      if (special(ids[static_cast<size_t>(j)])) {
        EXPECT_EQ(lab[j], kIgnoreLabel);
        ++j;
        continue;
      }
      int64_t end = j + 1;
      while (end < len && !special(ids[static_cast<size_t>(end)]) &&
             cont[static_cast<size_t>(ids[static_cast<size_t>(end)])])
        ++end;
      const bool first = lab[j] != kIgnoreLabel;
      for (int64_t k = j; k < end; ++k) ASSERT_EQ(lab[k] != kIgnoreLabel, first) << "word split at " << k;
      ++words;
      words_selected += first;
      j = end;
    }
  }
  EXPECT_NEAR(static_cast<double>(words_selected) / words, 0.15, 0.003);
}

TEST(Masking, WholeWordStartsAWordAtALeadingContinuationPiece) {
  std::vector<uint8_t> cont(kVocab, 0);
  cont[600] = 1;
  MaskingOptions o = base_options();
  o.whole_word = true;
  o.is_continuation = &cont;
  o.mlm_probability = 1.0;
  std::vector<int32_t> ids = {600, 600, kSep, 600};
  std::vector<int64_t> in(4), lab(4);
  EXPECT_EQ(MlmMasker(o).mask_sequence(ids.data(), 4, 1, 0, 0, in.data(), lab.data()), 3);
}

TEST(Masking, AcceptsUint16AndInt64Ids) {
  MlmMasker masker(base_options());
  auto ids32 = make_sequence(8, 64, 4);
  std::vector<uint16_t> ids16(ids32.begin(), ids32.end());
  std::vector<int64_t> ids64(ids32.begin(), ids32.end());
  std::vector<int64_t> a(64), la(64), b(64), lb(64), c(64), lc(64);
  masker.mask_sequence(ids32.data(), 64, 3, 1, 8, a.data(), la.data());
  masker.mask_sequence(ids16.data(), 64, 3, 1, 8, b.data(), lb.data());
  masker.mask_sequence(ids64.data(), 64, 3, 1, 8, c.data(), lc.data());
  EXPECT_EQ(a, b);
  EXPECT_EQ(la, lb);
  EXPECT_EQ(a, c);
  EXPECT_EQ(la, lc);
}

TEST(Masking, RejectsBadOptionsAndOutOfVocabularyIds) {
  MaskingOptions o = base_options();
  o.mlm_probability = 1.5;
  EXPECT_THROW(MlmMasker{o}, UsageError);
  o = base_options();
  o.mask_id = kVocab;
  EXPECT_THROW(MlmMasker{o}, UsageError);
  o = base_options();
  o.whole_word = true;  // no continuation table
  EXPECT_THROW(MlmMasker{o}, UsageError);
  o = base_options();
  o.special_ids.push_back(-3);
  EXPECT_THROW(MlmMasker{o}, UsageError);
  MlmMasker masker(base_options());
  std::vector<int32_t> ids = {2, 5, static_cast<int32_t>(kVocab)};
  std::vector<int64_t> in(3), lab(3);
  EXPECT_THROW(masker.mask_sequence(ids.data(), 3, 0, 0, 0, in.data(), lab.data()), std::out_of_range);
}

TEST(Masking, FreeFunctionMatchesTheMasker) {
  auto ids = make_sequence(4, 64, 0);
  std::vector<int64_t> a(64), la(64), b(64), lb(64);
  MlmMasker(base_options()).mask_sequence(ids.data(), 64, 11, 3, 4, a.data(), la.data());
  mask_sequence(ids.data(), 64, base_options(), 11, 3, 4, b.data(), lb.data());
  EXPECT_EQ(a, b);
  EXPECT_EQ(la, lb);
}

}  // namespace
}  // namespace mpibert::train
