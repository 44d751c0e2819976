#pragma once
// The HDF5 shard format, version 1 (docs/data.md "HDF5 shard format"): names, constants and the
// manifest. A shard directory holds
//   manifest.json          {"format": "mpibert-mlm", "version": 1, "vocab_size": V, "seq_len": L,
//                           "shards": [{"file", "split", "num_sequences", "sha256"}, ...]}
//   vocab.txt, tokenizer_config.json
//   train-00000-<h>.h5 ... dataset input_ids [n, L] (uint16 if V <= 65536 else int32), chunked,
//   validation-00000-<h>.h5  with the attributes listed in ShardAttributes; <h> = the first 16 hex
//                          digits of the file's SHA-256 (shard_set.h: why). Readers open the files
//                          manifest.json lists, whatever their names (older sets: train-00000.h5).
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "common/data/wordpiece.h"

namespace mpibert::data {

inline constexpr const char* kShardFormat = "mpibert-mlm";
inline constexpr int64_t kShardFormatVersion = 1;
inline constexpr const char* kManifestFileName = "manifest.json";
inline constexpr const char* kVocabFileName = "vocab.txt";
inline constexpr const char* kTokenizerConfigFileName = "tokenizer_config.json";
inline constexpr const char* kInputIdsDataset = "input_ids";
inline constexpr const char* kTrainSplit = "train";
inline constexpr const char* kValidationSplit = "validation";
// Shorter sequences leave no room for text between [CLS] and [SEP] worth training on.
inline constexpr int64_t kMinSeqLen = 8;
// Largest vocabulary whose ids fit uint16.
inline constexpr int64_t kMaxUint16VocabSize = 65536;

// What a reader tells the user to do when shards are unusable.
inline constexpr const char* kRerunHint = "rerun prepare_data shards";

// "train-00003.h5" for ("train", 3): the base name of a shard (and the whole name in shard sets
// written before names carried the content hash).
std::string shard_file_name(const std::string& split, int64_t index);
// Hex digits of the SHA-256 in a published shard's name.
inline constexpr size_t kShardNameHashDigits = 16;
// "train-00003-9f86d081884c7d65.h5" for ("train", 3, "9f86d081884c7d65..."): the name prepare_data
// publishes a shard under, unique to its content.
std::string shard_file_name(const std::string& split, int64_t index, const std::string& sha256);
// True when ids are stored as uint16 (vocab_size <= 65536), else int32.
inline bool shard_ids_are_uint16(int64_t vocab_size) {
  return vocab_size <= kMaxUint16VocabSize;
}
// Throws UsageError unless split is "train" or "validation".
void check_split_name(const std::string& split, const std::string& where);

// Attributes stored on every shard file (format and version are implied). Integers are stored as
// 64-bit signed scalars (lowercase as 0/1), strings as fixed-length null-terminated ASCII/UTF-8.
struct ShardAttributes {
  int64_t seq_len = 0;
  int64_t vocab_size = 0;
  std::string vocab_sha256;  // SHA-256 of the vocab.txt the ids refer to
  SpecialIds special_ids{};
  bool lowercase = true;
  std::string source;  // where the text came from (data.input)
};

struct ManifestShard {
  std::string file;   // name relative to the shard directory
  std::string split;  // "train" | "validation"
  int64_t num_sequences = 0;
  std::string sha256;  // of the file's bytes
};

struct Manifest {
  int64_t vocab_size = 0;
  int64_t seq_len = 0;
  std::vector<ManifestShard> shards;  // train shards in order, then validation shards

  int64_t num_sequences(const std::string& split) const;
  std::vector<ManifestShard> shards_of(const std::string& split) const;
};

// Keys in the documented order.
nlohmann::ordered_json manifest_to_json(const Manifest& manifest);
// Checks every key, type and value; throws UsageError "PATH: <what is wrong>; rerun prepare_data shards".
Manifest manifest_from_json(const nlohmann::json& json, const std::string& path);
// DIR/manifest.json; a missing file is a UsageError that says to run prepare_data.
Manifest read_manifest(const std::string& dir);
// Writes DIR/manifest.json atomically.
void write_manifest(const std::string& dir, const Manifest& manifest);

// "DIR/NAME" (DIR may be "" or end in '/').
std::string join_path(const std::string& dir, const std::string& name);

}  // namespace mpibert::data
