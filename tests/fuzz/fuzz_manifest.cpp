// Fuzz target: the shard manifest reader (common/data/shard_format.h). The input is the bytes of
// manifest.json in a shard directory, read with read_manifest as run_mlm reads it.
// Properties: bad manifests are a UsageError naming the file; an accepted manifest's per-split sequence
// counts can be summed (run_mlm sizes its batch sampler from them), and manifest_to_json reads back
// to the same manifest.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/data/shard_format.h"
#include "fuzz_support.h"

namespace {

using namespace mpibert;

bool same(const data::Manifest& a, const data::Manifest& b) {
  if (a.vocab_size != b.vocab_size || a.seq_len != b.seq_len || a.shards.size() != b.shards.size()) return false;
  for (size_t i = 0; i < a.shards.size(); ++i) {
    const data::ManifestShard &s = a.shards[i], &t = b.shards[i];
    if (s.file != t.file || s.split != t.split || s.num_sequences != t.num_sequences || s.sha256 != t.sha256)
      return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::scratch().write(data::kManifestFileName, data, size);
  data::Manifest manifest;
  if (!fuzz::accepts_or_usage_error([&] { manifest = data::read_manifest(fuzz::scratch().path()); })) return 0;
  for (const char* split : {data::kTrainSplit, data::kValidationSplit}) {
    if (manifest.num_sequences(split) < 0) fuzz::property_failed("a split holds a negative number of sequences");
    for (const auto& shard : manifest.shards_of(split))
      if (shard.split != split) fuzz::property_failed("shards_of returned a shard of another split");
  }
  const std::string text = data::manifest_to_json(manifest).dump(2);
  if (!same(manifest, data::manifest_from_json(nlohmann::json::parse(text), "dump")))
    fuzz::property_failed("manifest_to_json does not round-trip:\n" + text);
  return 0;
}
