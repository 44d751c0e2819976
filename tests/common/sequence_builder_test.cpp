// Documents -> sequences: packing with [CLS]/[SEP], line-by-line truncation and padding, the layout
// of the token stream over ranks, and the shuffle/split/shard plan.
#include "common/data/sequence_builder.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "common/data/batch_sampler.h"
#include "common/error.h"

namespace mpibert::data {
namespace {

constexpr int32_t kPad = 0, kUnk = 1, kCls = 2, kSep = 3, kMask = 4;

SequenceOptions options(int64_t seq_len, bool line_by_line) {
  SequenceOptions o;
  o.seq_len = seq_len;
  o.line_by_line = line_by_line;
  o.special_ids = SpecialIds{kPad, kUnk, kCls, kSep, kMask};
  return o;
}

TEST(AppendDocument, PackedDocumentIsClsIdsSep) {
  std::vector<int32_t> out{99};
  EXPECT_EQ(append_document({10, 11, 12}, options(8, false), out), 5);
  EXPECT_EQ(out, (std::vector<int32_t>{99, kCls, 10, 11, 12, kSep}));
  // Long documents are not cut when packing: blocks are cut later.
  std::vector<int32_t> long_doc(20, 7), packed;
  EXPECT_EQ(append_document(long_doc, options(8, false), packed), 22);
}

TEST(AppendDocument, DocumentWithoutIdsIsSkipped) {
  std::vector<int32_t> out;
  EXPECT_EQ(append_document({}, options(8, false), out), 0);
  EXPECT_EQ(append_document({}, options(8, true), out), 0);
  EXPECT_TRUE(out.empty());
}

TEST(AppendDocument, LineByLineTruncatesKeepingSepLastAndPadsRight) {
  std::vector<int32_t> out;
  bool truncated = true;
  EXPECT_EQ(append_document({10, 11}, options(8, true), out, &truncated), 8);
  EXPECT_FALSE(truncated);
  EXPECT_EQ(out, (std::vector<int32_t>{kCls, 10, 11, kSep, kPad, kPad, kPad, kPad}));
  out.clear();
  EXPECT_EQ(append_document({10, 11, 12, 13, 14, 15, 16, 17, 18}, options(8, true), out, &truncated), 8);
  EXPECT_TRUE(truncated);
  EXPECT_EQ(out, (std::vector<int32_t>{kCls, 10, 11, 12, 13, 14, 15, kSep}));
  out.clear();  // exactly seq_len - 2 ids fit without truncation or padding
  EXPECT_EQ(append_document({10, 11, 12, 13, 14, 15}, options(8, true), out, &truncated), 8);
  EXPECT_FALSE(truncated);
  EXPECT_EQ(out.back(), kSep);
}

TEST(CheckSequenceOptions, RejectsShortSequencesAndVocabulariesWithoutSpecialTokens) {
  EXPECT_NO_THROW(check_sequence_options(options(8, true), "v.txt"));
  try {
    check_sequence_options(options(7, false), "v.txt");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("data.seq_len = 7 is too short: it must be at least 8"), std::string::npos);
  }
  SequenceOptions o = options(16, false);
  o.special_ids.sep = -1;
  try {
    check_sequence_options(o, "my/vocab.txt");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("my/vocab.txt: the vocabulary has no [SEP] token"), std::string::npos);
  }
  o = options(16, true);
  o.special_ids.pad = -1;
  EXPECT_THROW(check_sequence_options(o, "v.txt"), UsageError);
  o.line_by_line = false;  // packing never pads
  EXPECT_NO_THROW(check_sequence_options(o, "v.txt"));
}

// Reference: concatenate all pieces and cut. Layout: rebuild each sequence from per-rank buffers.
void expect_layout_matches_concatenation(const std::vector<std::vector<int32_t>>& pieces, int world, int64_t seq_len) {
  std::vector<int32_t> all;
  std::vector<std::vector<int32_t>> local(static_cast<size_t>(world));
  std::vector<int64_t> lengths;
  for (size_t d = 0; d < pieces.size(); ++d) {
    all.insert(all.end(), pieces[d].begin(), pieces[d].end());
    auto& buf = local[d % size_t(world)];
    buf.insert(buf.end(), pieces[d].begin(), pieces[d].end());
    lengths.push_back(int64_t(pieces[d].size()));
  }
  StreamLayout layout(lengths, world, seq_len);
  ASSERT_EQ(layout.total_tokens(), int64_t(all.size()));
  ASSERT_EQ(layout.num_sequences(), int64_t(all.size()) / seq_len);
  EXPECT_EQ(layout.dropped_tokens(), int64_t(all.size()) % seq_len);
  std::vector<StreamLayout::Segment> segs;
  for (int64_t s = 0; s < layout.num_sequences(); ++s) {
    layout.segments(s, segs);
    std::vector<int32_t> rebuilt;
    for (const auto& g : segs) {
      ASSERT_GT(g.length, 0);
      const auto& buf = local[size_t(g.rank)];
      ASSERT_LE(g.offset + g.length, int64_t(buf.size()));
      rebuilt.insert(rebuilt.end(), buf.begin() + g.offset, buf.begin() + g.offset + g.length);
    }
    ASSERT_EQ(rebuilt, std::vector<int32_t>(all.begin() + s * seq_len, all.begin() + (s + 1) * seq_len))
        << "sequence " << s << ", world " << world;
  }
  EXPECT_THROW(layout.segments(layout.num_sequences(), segs), std::out_of_range);
}

TEST(StreamLayout, SequencesFromRankBuffersEqualCuttingTheConcatenation) {
  Xoshiro256 rng(1, 2);
  std::vector<std::vector<int32_t>> pieces;
  int32_t next = 0;
  for (int d = 0; d < 200; ++d) {
    // Mostly short pieces (a sequence spans many documents and ranks), some empty, some long.
    const uint64_t kind = rng.uniform(10);
    const size_t len = kind == 0 ? 0 : kind == 1 ? 40 + rng.uniform(60) : 1 + rng.uniform(6);
    std::vector<int32_t> p(len);
    for (auto& v : p) v = next++;
    pieces.push_back(std::move(p));
  }
  for (int world : {1, 2, 3, 4, 7})
    for (int64_t seq_len : {8, 13, 64}) expect_layout_matches_concatenation(pieces, world, seq_len);
}

TEST(StreamLayout, LeadingAndTrailingEmptyDocumentsAndMoreRanksThanDocuments) {
  expect_layout_matches_concatenation({{}, {}, {1, 2, 3, 4, 5, 6, 7, 8, 9}, {}, {10, 11, 12, 13, 14, 15, 16}, {}}, 4,
                                      8);
  expect_layout_matches_concatenation({{1, 2, 3, 4, 5, 6, 7, 8}}, 3, 8);
  StreamLayout empty({}, 2, 8);
  EXPECT_EQ(empty.num_sequences(), 0);
}

TEST(PlanShards, SplitsTheShuffledOrderIntoTrainThenValidationShards) {
  const auto plans = plan_shards(10, 0.2, 34, 3);
  ASSERT_EQ(plans.size(), 4u);
  const auto order = shuffled_range(10, 34, kShardShuffleStream);
  std::vector<int64_t> joined;
  std::vector<std::string> files;
  for (const auto& p : plans) {
    joined.insert(joined.end(), p.sequences.begin(), p.sequences.end());
    files.push_back(p.split + ":" + p.file + ":" + std::to_string(p.sequences.size()));
  }
  EXPECT_EQ(joined, order);
  EXPECT_EQ(files, (std::vector<std::string>{"train:train-00000.h5:3", "train:train-00001.h5:3",
                                             "train:train-00002.h5:2", "validation:validation-00000.h5:2"}));
}

TEST(PlanShards, ValidationIsTheCeilingOfTheFractionWithoutRoundingNoise) {
  auto count = [](int64_t n, double f) {
    int64_t v = 0;
    for (const auto& p : plan_shards(n, f, 1, 1000))
      if (p.split == "validation") v += int64_t(p.sequences.size());
    return v;
  };
  EXPECT_EQ(count(100, 0.07), 7);  // 0.07 * 100 = 7.000000000000001 in floating point
  EXPECT_EQ(count(100, 0.05), 5);
  EXPECT_EQ(count(101, 0.05), 6);
  EXPECT_EQ(count(3, 0.01), 1);
  EXPECT_EQ(count(100, 0.0), 0);
}

TEST(PlanShards, NoTrainingSequenceLeftIsAUsageError) {
  try {
    plan_shards(1, 0.5, 1, 10);
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("only 1 sequence(s), none left for training"), std::string::npos) << e.what();
  }
  EXPECT_THROW(plan_shards(10, 1.0, 1, 10), UsageError);
  EXPECT_THROW(plan_shards(10, 0.1, 1, 0), UsageError);
}

TEST(PlanShards, EverySequenceInExactlyOneShard) {
  const auto plans = plan_shards(1000, 0.05, 7, 64);
  std::set<int64_t> seen;
  int64_t n = 0;
  for (const auto& p : plans) {
    EXPECT_LE(p.sequences.size(), 64u);
    for (int64_t s : p.sequences) seen.insert(s);
    n += int64_t(p.sequences.size());
  }
  EXPECT_EQ(n, 1000);
  EXPECT_EQ(seen.size(), 1000u);
  EXPECT_EQ(*seen.rbegin(), 999);
}

}  // namespace
}  // namespace mpibert::data
