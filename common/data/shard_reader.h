#pragma once
// Reads the sequences of one split of a shard directory. Everything is validated when the dataset is
// opened, before any training step: the manifest, each shard's SHA-256, HDF5 structure, every
// attribute, the dtype and shape of input_ids, the vocabulary hash and that every id is below
// vocab_size. Any problem is one mpibert::UsageError naming the file and what is wrong.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/data/shard_format.h"

namespace mpibert::data {

class ShardDataset {
 public:
  // Opens DIR/manifest.json and validates every shard of `split` ("train" | "validation").
  // expected_vocab_size >= 0 must equal the shards' vocab_size (the model's vocabulary).
  static ShardDataset open(const std::string& dir, const std::string& split, int64_t expected_vocab_size = -1);

  const std::string& dir() const;
  const std::string& split() const;
  int64_t num_sequences() const;
  int64_t seq_len() const;
  int64_t vocab_size() const;
  SpecialIds special_ids() const;
  bool lowercase() const;
  const std::string& source() const;
  const std::string& vocab_sha256() const;
  // DIR/vocab.txt (validated against the shards' vocab_sha256).
  std::string vocab_path() const;
  const Manifest& manifest() const;

  // Reads global sequence `index` (shards in manifest order) into out[seq_len] as int32.
  // Throws std::out_of_range for a bad index, std::runtime_error if HDF5 fails.
  void read(int64_t index, int32_t* out) const;
  // Reads indices.size() sequences into out[indices.size() * seq_len], in the order given.
  void read_many(const std::vector<int64_t>& indices, int32_t* out) const;

  // Copies share the open files. Calls are serialised by an internal mutex (HDF5 is not reentrant).
  ShardDataset(const ShardDataset&) = default;
  ShardDataset& operator=(const ShardDataset&) = default;

  struct State;

 private:
  explicit ShardDataset(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

}  // namespace mpibert::data
