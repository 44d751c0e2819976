// HDF5 shards: round trip, reproducible bytes, and one precise UsageError for every way a shard
// directory can be broken (the reader validates everything before training starts).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <thread>

#include "common/data/hdf5_check.h"
#include "common/data/shard_format.h"
#include "common/data/shard_reader.h"
#include "common/data/shard_writer.h"
#include "common/error.h"
#include "common/io/atomic_file.h"
#include "common/io/json_file.h"
#include "common/io/sha256.h"

namespace mpibert::data {
namespace {

namespace fs = std::filesystem;

std::string fresh_dir(const std::string& name) {
  fs::path p = fs::path(::testing::TempDir()) / ("shard_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Deterministic ids for sequence `seq` of a fixture: distinct per sequence so mix-ups show.
int32_t fixture_id(int64_t seq, int64_t pos, int64_t vocab) {
  return int32_t((seq * 131 + pos * 7 + 5) % vocab);
}

// A shard directory: vocab.txt with `vocab` lines, train shards of the given sizes, one validation shard.
struct Fixture {
  std::string dir;
  int64_t vocab = 100, seq_len = 8;
  std::vector<int64_t> train_sizes{5, 3};
  int64_t validation_size = 2;
  Manifest manifest;
  ShardAttributes attrs;

  explicit Fixture(const std::string& name, int64_t vocab_size = 100) : dir(fresh_dir(name)), vocab(vocab_size) {
    std::string v;
    for (int64_t i = 0; i < vocab; ++i)
      v += (i < 5 ? std::string("[S") + char('0' + i) + "]" : "w" + std::to_string(i)) + "\n";
    write_text(dir + "/vocab.txt", v);
    attrs.seq_len = seq_len;
    attrs.vocab_size = vocab;
    attrs.vocab_sha256 = io::sha256_file(dir + "/vocab.txt");
    attrs.special_ids = SpecialIds{0, 1, 2, 3, 4};
    attrs.lowercase = true;
    attrs.source = "unit-test corpus";
    manifest.vocab_size = vocab;
    manifest.seq_len = seq_len;
    int64_t global = 0;
    for (size_t k = 0; k < train_sizes.size(); ++k) add("train", k, train_sizes[k], global);
    add("validation", 0, validation_size, global);
    write_manifest(dir, manifest);
  }
  ~Fixture() { fs::remove_all(dir); }

  void add(const std::string& split, size_t index, int64_t n, int64_t& global) {
    std::vector<int32_t> ids(size_t(n * seq_len));
    for (int64_t s = 0; s < n; ++s)
      for (int64_t p = 0; p < seq_len; ++p) ids[size_t(s * seq_len + p)] = fixture_id(global + s, p, vocab);
    global += n;
    const std::string file = shard_file_name(split, int64_t(index));
    const std::string sha = write_shard(dir + "/" + file, attrs, ids.data(), n);
    manifest.shards.push_back({file, split, n, sha});
  }
  std::string path(const std::string& file) const { return dir + "/" + file; }
  // After editing a shard on purpose, make the manifest agree so the deeper check is reached.
  void rehash(const std::string& file) {
    for (auto& s : manifest.shards)
      if (s.file == file) s.sha256 = io::sha256_file(path(file));
    write_manifest(dir, manifest);
  }
};

// Expects ShardDataset::open to throw a UsageError whose message contains every fragment.
void expect_open_error(const std::string& dir, const std::string& split, const std::vector<std::string>& fragments,
                       int64_t expected_vocab = -1) {
  try {
    ShardDataset::open(dir, split, expected_vocab);
    FAIL() << "expected a UsageError containing " << fragments.front();
  } catch (const UsageError& e) {
    for (const auto& f : fragments) EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what();
  }
}

// Opens a shard for in-place edits with raw HDF5 (the writer refuses to write bad shards).
struct RawShard {
  H5Id file;
  explicit RawShard(const std::string& path) {
    hdf5_quiet();
    file = H5Id(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT), "open " + path);
  }
  void set_int(const char* name, int64_t v) {
    hdf5_check(H5Adelete(file.get(), name), "delete attribute");
    H5Id space(H5Screate(H5S_SCALAR), "space");
    H5Id attr(H5Acreate2(file.get(), name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT), "create");
    hdf5_check(H5Awrite(attr.get(), H5T_NATIVE_INT64, &v), "write");
  }
};

TEST(ShardRoundTrip, ReadsBackEverySequenceAcrossShardsInManifestOrder) {
  Fixture fx("roundtrip");
  ShardDataset train = ShardDataset::open(fx.dir, "train", 100);
  EXPECT_EQ(train.num_sequences(), 8);
  EXPECT_EQ(train.seq_len(), 8);
  EXPECT_EQ(train.vocab_size(), 100);
  EXPECT_EQ(train.special_ids().mask, 4);
  EXPECT_EQ(train.special_ids().pad, 0);
  EXPECT_TRUE(train.lowercase());
  EXPECT_EQ(train.source(), "unit-test corpus");
  EXPECT_EQ(train.vocab_path(), fx.dir + "/vocab.txt");
  std::vector<int32_t> row(8);
  for (int64_t s = 0; s < 8; ++s) {
    train.read(s, row.data());
    for (int64_t p = 0; p < 8; ++p) ASSERT_EQ(row[p], fixture_id(s, p, 100)) << "sequence " << s;
  }
  // Any order, repeats, and consecutive runs that cross the shard boundary (4, 5, 6).
  std::vector<int64_t> order{7, 4, 5, 6, 0, 0, 3, 1, 2};
  std::vector<int32_t> many(order.size() * 8);
  train.read_many(order, many.data());
  for (size_t i = 0; i < order.size(); ++i)
    for (int64_t p = 0; p < 8; ++p) ASSERT_EQ(many[i * 8 + p], fixture_id(order[i], p, 100));
  // A training-sized random batch with repeats, as the sampler's indices look.
  std::vector<int64_t> random_order;
  for (int i = 0; i < 64; ++i) random_order.push_back((i * 37 + i / 5) % 8);
  std::vector<int32_t> batch(random_order.size() * 8);
  train.read_many(random_order, batch.data());
  for (size_t i = 0; i < random_order.size(); ++i)
    for (int64_t p = 0; p < 8; ++p) ASSERT_EQ(batch[i * 8 + p], fixture_id(random_order[i], p, 100)) << i;
  EXPECT_THROW(train.read(8, row.data()), std::out_of_range);
  EXPECT_THROW(train.read(-1, row.data()), std::out_of_range);

  ShardDataset validation = ShardDataset::open(fx.dir, "validation");
  ASSERT_EQ(validation.num_sequences(), 2);
  validation.read(1, row.data());
  EXPECT_EQ(row[3], fixture_id(9, 3, 100));  // global fixture sequence 8 + 1
}

TEST(ShardRoundTrip, LargeVocabularyIsStoredAsInt32AndSmallAsUint16) {
  Fixture big("int32", 70000);
  Fixture small("uint16", 100);
  auto dtype_size = [](const std::string& path) {
    hdf5_quiet();
    H5Id f(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), "open");
    H5Id d(H5Dopen2(f.get(), "input_ids", H5P_DEFAULT), "dataset");
    H5Id t(H5Dget_type(d.get()), "type");
    return std::make_pair(H5Tget_size(t.get()), H5Tget_sign(t.get()));
  };
  EXPECT_EQ(dtype_size(big.path("train-00000.h5")), std::make_pair(size_t(4), H5T_SGN_2));
  EXPECT_EQ(dtype_size(small.path("train-00000.h5")), std::make_pair(size_t(2), H5T_SGN_NONE));
  ShardDataset d = ShardDataset::open(big.dir, "train");
  std::vector<int32_t> row(8);
  d.read(6, row.data());
  for (int64_t p = 0; p < 8; ++p) EXPECT_EQ(row[p], fixture_id(6, p, 70000));
}

TEST(ShardWriter, SameInputGivesIdenticalBytesAtDifferentTimes) {
  Fixture fx("bytes");
  std::vector<int32_t> ids(64);
  for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t(i % 100);
  const std::string a = write_shard(fx.path("a.h5"), fx.attrs, ids.data(), 8);
  // Object timestamps have one-second resolution: make sure the clock has moved.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  const std::string b = write_shard(fx.path("b.h5"), fx.attrs, ids.data(), 8);
  EXPECT_EQ(a, b);
  EXPECT_EQ(read_bytes(fx.path("a.h5")), read_bytes(fx.path("b.h5")));
  EXPECT_EQ(a, io::sha256_file(fx.path("a.h5")));
  ids[17] = 99;
  EXPECT_NE(write_shard(fx.path("c.h5"), fx.attrs, ids.data(), 8), a);
}

TEST(ShardWriter, RefusesIdsOutsideTheVocabularyAndLeavesNoFile) {
  Fixture fx("writer_ids");
  std::vector<int32_t> ids(16, 3);
  ids[11] = 100;
  try {
    write_shard(fx.path("bad.h5"), fx.attrs, ids.data(), 2);
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("token id 100 at sequence 1, position 3"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(fx.path("bad.h5")));
  ids[11] = -1;
  EXPECT_THROW(write_shard(fx.path("bad.h5"), fx.attrs, ids.data(), 2), std::invalid_argument);
  EXPECT_THROW(write_shard(fx.path("bad.h5"), fx.attrs, ids.data(), 0), std::invalid_argument);
}

TEST(ShardWriter, WritesEveryDocumentedAttribute) {
  Fixture fx("attrs");
  hdf5_quiet();
  H5Id f(H5Fopen(fx.path("train-00000.h5").c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), "open");
  for (const char* name : {"format", "version", "seq_len", "vocab_size", "vocab_sha256", "pad_id", "cls_id", "sep_id",
                           "mask_id", "unk_id", "lowercase", "source"})
    EXPECT_GT(H5Aexists(f.get(), name), 0) << name;
}

TEST(ShardReader, MissingManifestSaysToRunPrepareData) {
  Fixture fx("no_manifest");
  fs::remove(fx.path("manifest.json"));
  expect_open_error(fx.dir, "train", {fx.dir + "/manifest.json", "missing", "prepare_data shards"});
  expect_open_error(fx.dir + "/nope", "train", {fx.dir + "/nope", "does not exist", "prepare_data all"});
}

TEST(ShardReader, MissingShardIsNamed) {
  Fixture fx("missing_shard");
  fs::remove(fx.path("train-00001.h5"));
  expect_open_error(fx.dir, "train", {fx.path("train-00001.h5"), "missing", "rerun prepare_data shards"});
}

TEST(ShardReader, TruncatedShardIsASha256Mismatch) {
  Fixture fx("truncated");
  const std::string p = fx.path("train-00001.h5");
  const std::string good = fx.manifest.shards[1].sha256;
  fs::resize_file(p, fs::file_size(p) / 2);
  expect_open_error(fx.dir, "train",
                    {p + ": sha256 mismatch (manifest says " + good + ", file has ",
                     "the shard is corrupt or was rewritten; rerun prepare_data shards"});
}

TEST(ShardReader, FlippedByteIsASha256Mismatch) {
  Fixture fx("corrupt");
  const std::string p = fx.path("train-00000.h5");
  std::string bytes = read_bytes(p);
  bytes[bytes.size() - 3] ^= 0x40;
  write_text(p, bytes);
  expect_open_error(fx.dir, "train", {p, "sha256 mismatch"});
}

TEST(ShardReader, TruncatedShardWithMatchingManifestIsNotReadableHdf5) {
  Fixture fx("truncated_rehashed");
  const std::string p = fx.path("train-00000.h5");
  fs::resize_file(p, 1000);
  fx.rehash("train-00000.h5");
  expect_open_error(fx.dir, "train", {p, "not a readable HDF5 file"});
}

TEST(ShardReader, AlteredAttributeIsNamedWithBothValues) {
  Fixture fx("attr_seq_len");
  { RawShard(fx.path("train-00001.h5")).set_int("seq_len", 16); }
  fx.rehash("train-00001.h5");
  expect_open_error(fx.dir, "train", {fx.path("train-00001.h5"), "seq_len 16 differs from manifest.json's 8"});
}

TEST(ShardReader, MissingAttributeIsNamed) {
  Fixture fx("attr_missing");
  {
    RawShard raw(fx.path("train-00000.h5"));
    hdf5_check(H5Adelete(raw.file.get(), "mask_id"), "delete");
  }
  fx.rehash("train-00000.h5");
  expect_open_error(fx.dir, "train", {fx.path("train-00000.h5"), "attribute \"mask_id\" is missing"});
}

TEST(ShardReader, SpecialIdOutsideVocabularyIsRejected) {
  Fixture fx("attr_special");
  { RawShard(fx.path("train-00000.h5")).set_int("pad_id", 100); }
  fx.rehash("train-00000.h5");
  expect_open_error(fx.dir, "train", {"pad_id = 100 is outside [0, vocab_size 100)"});
}

TEST(ShardReader, WrongFormatVersionIsRejected) {
  Fixture fx("attr_version");
  { RawShard(fx.path("train-00000.h5")).set_int("version", 2); }
  fx.rehash("train-00000.h5");
  expect_open_error(fx.dir, "train", {fx.path("train-00000.h5"), "format version 2 is not supported"});
}

TEST(ShardReader, ChangedVocabularyIsAMismatch) {
  Fixture fx("vocab_changed");
  std::ofstream(fx.path("vocab.txt"), std::ios::app) << "extra\n";
  expect_open_error(fx.dir, "train", {fx.path("train-00000.h5"), "vocabulary mismatch"});
  fs::remove(fx.path("vocab.txt"));
  expect_open_error(fx.dir, "train", {fx.path("vocab.txt"), "missing"});
}

TEST(ShardReader, ModelVocabSizeDifferentFromShardsIsAMismatch) {
  Fixture fx("vocab_size");
  expect_open_error(fx.dir, "train", {"vocab_size 100 but the model expects 30522"}, 30522);
}

// Rewrites a shard's input_ids with raw HDF5 (dtype and contents the writer would refuse).
void replace_input_ids(const std::string& path, hid_t file_type, const std::vector<int32_t>& ids, hsize_t rows,
                       hsize_t cols) {
  RawShard raw(path);
  hdf5_check(H5Ldelete(raw.file.get(), "input_ids", H5P_DEFAULT), "delete");
  const hsize_t dims[2] = {rows, cols};
  H5Id space(H5Screate_simple(2, dims, nullptr), "space");
  H5Id d(H5Dcreate2(raw.file.get(), "input_ids", file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
         "create");
  hdf5_check(H5Dwrite(d.get(), H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, ids.data()), "write");
}

TEST(ShardReader, IdOutsideVocabularyIsFoundWithItsPosition) {
  Fixture fx("id_range");
  std::vector<int32_t> ids(5 * 8, 7);
  ids[3 * 8 + 6] = 250;
  replace_input_ids(fx.path("train-00000.h5"), H5T_STD_U16LE, ids, 5, 8);
  fx.rehash("train-00000.h5");
  expect_open_error(fx.dir, "train", {"token id 250 at sequence 3, position 6 is outside the vocabulary [0, 100)"});
}

TEST(ShardReader, WrongDtypeIsRejected) {
  Fixture fx("dtype");
  replace_input_ids(fx.path("train-00000.h5"), H5T_STD_I32LE, std::vector<int32_t>(40, 1), 5, 8);
  fx.rehash("train-00000.h5");
  expect_open_error(fx.dir, "train", {"input_ids has dtype int32, expected uint16 for vocab_size 100"});
}

TEST(ShardReader, WrongShapeIsRejected) {
  Fixture fx("shape");
  replace_input_ids(fx.path("train-00000.h5"), H5T_STD_U16LE, std::vector<int32_t>(40, 1), 4, 10);
  fx.rehash("train-00000.h5");
  expect_open_error(fx.dir, "train", {"input_ids has shape [4, 10], expected [5, 8]"});
}

TEST(ShardReader, MalformedManifestsAreRejectedWithTheKey) {
  Fixture fx("manifest");
  const std::string mp = fx.path("manifest.json");
  write_text(mp, "{\"format\": \"mpibert-mlm\",\n \"version\": 1,,}");
  expect_open_error(fx.dir, "train", {mp + ": invalid JSON at line 2, column"});
  auto good = manifest_to_json(fx.manifest);
  auto edit = [&](const std::function<void(nlohmann::ordered_json&)>& f, const std::string& fragment) {
    auto j = good;
    f(j);
    write_text(mp, j.dump());
    expect_open_error(fx.dir, "train", {mp, fragment});
  };
  edit([](auto& j) { j["version"] = 7; }, "format version 7 is not supported");
  edit([](auto& j) { j["format"] = "other"; }, "format is \"other\"");
  edit([](auto& j) { j.erase("seq_len"); }, "missing key \"seq_len\"");
  edit([](auto& j) { j["seq_len"] = "8"; }, "\"seq_len\" must be an integer");
  edit([](auto& j) { j["shards"][0]["file"] = "../etc/passwd"; }, "must be a plain file name");
  edit([](auto& j) { j["shards"][1]["file"] = "train-00000.h5"; }, "listed twice");
  edit([](auto& j) { j["shards"][0]["sha256"] = "abc"; }, "not 64 lower-case hex digits");
  edit([](auto& j) { j["shards"][0]["split"] = "test"; }, "split \"test\" is not train or validation");
  edit(
      [&good](auto& j) {
        j["shards"] = nlohmann::ordered_json::array();
        j["shards"].push_back(good["shards"][2]);
      },
      "lists no train shards");
}

// Found by fuzzing (tests/fuzz/fuzz_manifest.cpp): a number beyond the range of a double is well-formed
// JSON that the parser refuses with out_of_range; that escaped as an internal error, not a UsageError.
TEST(ShardReader, NumberTooLargeForADoubleIsInvalidJson) {
  Fixture fx("huge_number");
  const std::string mp = fx.path("manifest.json");
  write_text(mp, "{\"format\": \"mpibert-mlm\", \"version\": 1, \"seq_len\": 1e400}");
  expect_open_error(fx.dir, "train", {mp + ": invalid JSON: number overflow parsing '1e400'"});
}

// Found by fuzzing (tests/fuzz/fuzz_manifest.cpp): per-shard counts that are each valid summed past
// INT64_MAX in Manifest::num_sequences (signed overflow, undefined behaviour).
TEST(ShardReader, SequenceCountsThatOverflowASplitAreRejected) {
  Fixture fx("count_overflow");
  const std::string mp = fx.path("manifest.json");
  auto j = manifest_to_json(fx.manifest);
  j["shards"][0]["num_sequences"] = std::numeric_limits<int64_t>::max() / 8;
  j["shards"][1]["num_sequences"] = 1;
  write_text(mp, j.dump());
  expect_open_error(fx.dir, "train", {mp + ": shards[1]: num_sequences 1 takes the train split past 2^63-1 tokens"});
  j["shards"][0]["num_sequences"] = std::numeric_limits<int64_t>::max() / 8 - 1;  // seq_len 8: just fits
  write_text(mp, j.dump());
  EXPECT_EQ(read_manifest(fx.dir).num_sequences("train"), std::numeric_limits<int64_t>::max() / 8);
}

TEST(ShardReader, NoValidationShardsHintsAtValidationFraction) {
  Fixture fx("no_validation");
  fx.manifest.shards.pop_back();
  write_manifest(fx.dir, fx.manifest);
  expect_open_error(fx.dir, "validation", {"lists no validation shards", "validation_fraction"});
  expect_open_error(fx.dir, "test", {"unknown split \"test\""});
}

TEST(ShardReader, ManifestNumSequencesDisagreeingWithTheFileIsAShapeError) {
  Fixture fx("count");
  fx.manifest.shards[0].num_sequences = 6;
  write_manifest(fx.dir, fx.manifest);
  expect_open_error(fx.dir, "train", {"train-00000.h5", "shape [5, 8], expected [6, 8]"});
}

TEST(Hdf5Check, ErrorIncludesHdf5sOwnText) {
  hdf5_quiet();
  try {
    hdf5_check_id(H5Fopen("/nonexistent/x.h5", H5F_ACC_RDONLY, H5P_DEFAULT), "opening /nonexistent/x.h5");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("opening /nonexistent/x.h5: "), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("unable to open file"), std::string::npos) << e.what();
  }
  EXPECT_EQ(hdf5_error_text(), "");  // the stack was consumed
}

TEST(AtomicFile, ReplacesContentAndLeavesNoTemporaryFiles) {
  const std::string dir = fresh_dir("atomic");
  io::write_file_atomic(dir + "/f.json", "first");
  io::write_file_atomic(dir + "/f.json", "second");
  EXPECT_EQ(read_bytes(dir + "/f.json"), "second");
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
  try {
    io::write_file_atomic(dir + "/missing/f.json", "x");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(dir + "/missing/f.json"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

TEST(JsonFile, RoundTripsAndNamesTheFileOnErrors) {
  const std::string dir = fresh_dir("json");
  io::write_json_file(dir + "/a.json", nlohmann::json{{"k", 1}});
  EXPECT_EQ(io::read_json_file(dir + "/a.json")["k"], 1);
  EXPECT_EQ(read_bytes(dir + "/a.json").back(), '\n');
  try {
    io::read_json_file(dir + "/none.json");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(dir + "/none.json: cannot read: No such file"), std::string::npos);
  }
  write_text(dir + "/b.json", "{\n  \"a\": 1,\n  \"b\": tru\n}");
  try {
    io::read_json_file(dir + "/b.json");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(dir + "/b.json: invalid JSON at line 3"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace mpibert::data
