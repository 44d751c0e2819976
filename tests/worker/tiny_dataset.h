#pragma once
// Writes a small but real shard directory (vocab.txt, HDF5 shards, manifest.json in the docs/data.md
// format) of random "sentences" for trainer tests: [CLS] w w ... [SEP] packed into seq_len blocks.
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "common/data/batch_sampler.h"
#include "common/data/shard_format.h"
#include "common/data/shard_writer.h"
#include "common/io/sha256.h"

namespace mpibert::testing {

struct TinyDataset {
  std::string dir;
  int64_t vocab_size = 0, seq_len = 0;
};

inline TinyDataset make_tiny_dataset(const std::string& dir, int64_t train_sequences = 64, int64_t valid_sequences = 16,
                                     int64_t seq_len = 32, uint64_t seed = 7) {
  namespace fs = std::filesystem;
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::vector<std::string> vocab = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  for (int i = 0; i < 40; ++i) vocab.push_back("w" + std::to_string(i));
  for (int i = 0; i < 20; ++i) vocab.push_back("##s" + std::to_string(i));
  {
    std::ofstream v(dir + "/vocab.txt");
    for (auto& t : vocab) v << t << "\n";
  }
  data::ShardAttributes a;
  a.seq_len = seq_len;
  a.vocab_size = static_cast<int64_t>(vocab.size());
  a.vocab_sha256 = io::sha256_file(dir + "/vocab.txt");
  a.special_ids = {0, 1, 2, 3, 4};
  a.lowercase = true;
  a.source = "tiny_dataset";
  data::Manifest m;
  m.vocab_size = a.vocab_size;
  m.seq_len = seq_len;
  data::Xoshiro256 rng(seed, 1);
  // A learnable pattern: a word is often followed by its successor, sometimes by a continuation piece.
  auto make = [&](int64_t n) {
    std::vector<int32_t> ids(static_cast<size_t>(n * seq_len));
    int32_t prev = 5;
    for (int64_t i = 0; i < n * seq_len; ++i) {
      int64_t pos = i % seq_len;
      int32_t id;
      if (pos == 0)
        id = 2;
      else if (pos == seq_len - 1)
        id = 3;
      else if (rng.uniform(4) == 0)
        id = static_cast<int32_t>(45 + rng.uniform(20));
      else
        id = prev = static_cast<int32_t>(5 + (prev - 5 + 1 + rng.uniform(2)) % 40);
      ids[static_cast<size_t>(i)] = id;
    }
    return ids;
  };
  for (auto [split, n] : {std::pair<std::string, int64_t>{"train", train_sequences}, {"validation", valid_sequences}}) {
    if (n == 0) continue;
    auto ids = make(n);
    std::string file = data::shard_file_name(split, 0);
    std::string sha = data::write_shard(dir + "/" + file, a, ids.data(), n);
    m.shards.push_back({file, split, n, sha});
  }
  data::write_manifest(dir, m);
  return {dir, a.vocab_size, seq_len};
}

}  // namespace mpibert::testing
