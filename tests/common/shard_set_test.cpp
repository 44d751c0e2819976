// Publishing a shard set (shard_set.h): content-hash names, the manifest as the switch, the old set
// removed after it, an interrupted publish that leaves the old set loadable and its leftovers for the
// next run to remove, and the check of every listed shard's SHA-256.
#include "common/data/shard_set.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "common/data/shard_reader.h"
#include "common/data/shard_writer.h"
#include "common/io/sha256.h"
#include "unique_temp_dir.h"

namespace mpibert::data {
namespace {

namespace fs = std::filesystem;
using mpibert::testing::UniqueTempDir;

constexpr int64_t kVocab = 50, kSeqLen = 8;

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A shard directory with a vocab.txt, and shard contents that differ by `variant`.
struct SetFixture {
  UniqueTempDir tmp{"shard_set"};
  std::string dir = tmp.dir() + "shards";
  ShardAttributes attrs;

  SetFixture() {
    fs::create_directories(dir);
    std::string vocab;
    for (int64_t i = 0; i < kVocab; ++i)
      vocab += (i < 5 ? "[S" + std::to_string(i) + "]" : "w" + std::to_string(i)) + "\n";
    std::ofstream(dir + "/vocab.txt") << vocab;
    attrs.seq_len = kSeqLen;
    attrs.vocab_size = kVocab;
    attrs.vocab_sha256 = io::sha256_file(dir + "/vocab.txt");
    attrs.special_ids = SpecialIds{0, 1, 2, 3, 4};
    attrs.source = "shard_set_test";
  }

  static std::vector<int32_t> ids(int variant, int64_t shard, int64_t n) {
    std::vector<int32_t> out(size_t(n * kSeqLen));
    for (size_t i = 0; i < out.size(); ++i) out[i] = int32_t((variant * 7 + shard * 13 + int64_t(i) * 3) % kVocab);
    return out;
  }

  // Writes train shards 0, 1 and validation shard 0 of `variant` (not yet published).
  void write_set(ShardSetWriter& writer, int variant) const {
    for (int64_t k = 0; k < 2; ++k) writer.write("train", k, attrs, ids(variant, k, 3).data(), 3);
    writer.write("validation", 0, attrs, ids(variant, 9, 2).data(), 2);
  }

  Manifest publish_set(int variant) const {
    ShardSetWriter writer(dir, kVocab, kSeqLen);
    write_set(writer, variant);
    return writer.publish();
  }

  // The first train sequence as the reader sees it.
  std::vector<int32_t> first_train_row() const {
    std::vector<int32_t> row(kSeqLen);
    ShardDataset::open(dir, "train", kVocab).read(0, row.data());
    return row;
  }
};

std::vector<int32_t> first_row(int variant) {
  const auto all = SetFixture::ids(variant, 0, 3);
  return std::vector<int32_t>(all.begin(), all.begin() + kSeqLen);
}

TEST(ShardFileKind, TellsPublishedLegacyAndUnfinishedShardFilesFromOthers) {
  EXPECT_EQ(shard_file_kind("train-00000-0123456789abcdef.h5"), ShardFileKind::Published);
  EXPECT_EQ(shard_file_kind("validation-00012-0123456789abcdef.h5"), ShardFileKind::Published);
  EXPECT_EQ(shard_file_kind("train-00000.h5"), ShardFileKind::Legacy);
  EXPECT_EQ(shard_file_kind("train-123456.h5"), ShardFileKind::Legacy);
  EXPECT_EQ(shard_file_kind("train-00000.h5.new"), ShardFileKind::Unfinished);
  EXPECT_EQ(shard_file_kind("train-00000.h5.new.tmp.123.0"), ShardFileKind::Unfinished);
  EXPECT_EQ(shard_file_kind("validation-00001.h5.tmp.77.3"), ShardFileKind::Unfinished);
  for (const char* other :
       {"manifest.json", "vocab.txt", ".mpibert.lock", "test-00000.h5", "train-0000.h5",
        "train-00000-0123456789ABCDEF.h5", "train-00000-0123.h5", "train-00000.h5.bak", "train-00000.h5.new.new"})
    EXPECT_EQ(shard_file_kind(other), ShardFileKind::Other) << other;
  EXPECT_EQ(shard_file_name("train", 3, std::string(64, 'a')), "train-00003-aaaaaaaaaaaaaaaa.h5");
  EXPECT_THROW(shard_file_name("train", 3, "abc"), std::invalid_argument);
}

TEST(ShardSetWriter, PublishesShardsUnderTheirContentHashWithTheManifestLast) {
  SetFixture fx;
  ShardSetWriter writer(fx.dir, kVocab, kSeqLen);
  fx.write_set(writer, 1);
  EXPECT_FALSE(fs::exists(fx.dir + "/manifest.json"));
  const Manifest m = writer.publish();
  ASSERT_EQ(m.shards.size(), 3u);
  for (const ManifestShard& s : m.shards) {
    EXPECT_EQ(s.sha256, io::sha256_file(fx.dir + "/" + s.file));
    EXPECT_EQ(shard_file_kind(s.file), ShardFileKind::Published) << s.file;
  }
  EXPECT_EQ(m.shards[0].file, shard_file_name("train", 0, m.shards[0].sha256));
  EXPECT_EQ(m.shards[2].file, shard_file_name("validation", 0, m.shards[2].sha256));
  EXPECT_EQ(read_manifest(fx.dir).shards.size(), 3u);
  EXPECT_EQ(list_shard_files(fx.dir).size(), 3u);  // no staging file left
  EXPECT_EQ(fx.first_train_row(), first_row(1));
  EXPECT_EQ(verify_shard_files(fx.dir, m), "");
}

TEST(ShardSetWriter, PublishingRemovesThePreviousSetAndLeftoversButNoOtherFile) {
  SetFixture fx;
  // A set of the older naming, plus what interrupted runs and other tools leave.
  Manifest legacy;
  legacy.vocab_size = kVocab;
  legacy.seq_len = kSeqLen;
  const std::string sha = write_shard(fx.dir + "/train-00000.h5", fx.attrs, SetFixture::ids(0, 0, 3).data(), 3);
  legacy.shards.push_back({"train-00000.h5", "train", 3, sha});
  write_manifest(fx.dir, legacy);
  EXPECT_EQ(fx.first_train_row(), first_row(0));
  for (const char* f : {"train-00004.h5.tmp.1.2", "validation-00000.h5.new", "notes.txt", "train-00000.h5.bak"})
    std::ofstream(fx.dir + "/" + f) << "x";

  const Manifest m = fx.publish_set(2);
  const std::set<std::string> listed = listed_files(m);
  const std::vector<std::string> left = list_shard_files(fx.dir);
  EXPECT_EQ(std::set<std::string>(left.begin(), left.end()), listed);
  for (const char* kept : {"notes.txt", "train-00000.h5.bak", "vocab.txt"})
    EXPECT_TRUE(fs::exists(fx.dir + "/" + kept)) << kept;
  EXPECT_EQ(fx.first_train_row(), first_row(2));
}

TEST(ShardSetWriter, AnInterruptedPublishLeavesTheOldSetLoadableAndItsLeftoversRemovable) {
  SetFixture fx;
  const Manifest old_set = fx.publish_set(1);
  const std::string old_manifest = read_bytes(fx.dir + "/manifest.json");
  ShardSetWriter writer(fx.dir, kVocab, kSeqLen);
  fx.write_set(writer, 2);
  EXPECT_THROW(writer.publish([] { throw std::runtime_error("killed before the switch"); }), std::runtime_error);

  EXPECT_EQ(read_bytes(fx.dir + "/manifest.json"), old_manifest);
  EXPECT_EQ(verify_shard_files(fx.dir, read_manifest(fx.dir)), "");
  EXPECT_EQ(fx.first_train_row(), first_row(1));
  EXPECT_EQ(list_shard_files(fx.dir).size(), 6u);  // both sets: the new one is not listed
  const auto removed = remove_shard_files_except(fx.dir, listed_files(read_manifest(fx.dir)));
  EXPECT_EQ(std::set<std::string>(removed.begin(), removed.end()), listed_files(writer.manifest()));
  EXPECT_EQ(list_shard_files(fx.dir).size(), 3u);
  EXPECT_EQ(fx.first_train_row(), first_row(1));

  fx.publish_set(2);  // the rerun completes
  EXPECT_EQ(fx.first_train_row(), first_row(2));
  EXPECT_EQ(list_shard_files(fx.dir).size(), 3u);
}

TEST(ShardSetWriter, TheSameDataGetsTheSameNamesSoARebuildRepairsADamagedShardInPlace) {
  SetFixture fx;
  const Manifest first = fx.publish_set(3);
  const std::string manifest = read_bytes(fx.dir + "/manifest.json");
  const std::string damaged = fx.dir + "/" + first.shards[1].file;
  const std::string good = read_bytes(damaged);
  fs::resize_file(damaged, good.size() / 2);
  const std::string problem = verify_shard_files(fx.dir, first);
  EXPECT_NE(problem.find(damaged + ": sha256 "), std::string::npos) << problem;
  EXPECT_NE(problem.find("manifest.json says " + first.shards[1].sha256), std::string::npos) << problem;

  fx.publish_set(3);
  EXPECT_EQ(read_bytes(fx.dir + "/manifest.json"), manifest);
  EXPECT_EQ(read_bytes(damaged), good);
  EXPECT_EQ(verify_shard_files(fx.dir, first), "");
  fs::remove(damaged);
  EXPECT_EQ(verify_shard_files(fx.dir, first), damaged + ": missing (listed in manifest.json)");
}

}  // namespace
}  // namespace mpibert::data
