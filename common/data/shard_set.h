#pragma once
// The set of shards a shard directory publishes, replaced as a whole so that an interrupted run
// never leaves a mixed set:
//   1. every new shard is written as SPLIT-NNNNN.h5.new (through write_shard's fsynced temporary)
//      and renamed to its published name SPLIT-NNNNN-<first 16 hex digits of its SHA-256>.h5. A name
//      stands for one content, so the files the live manifest lists are never changed (a new shard
//      that takes a live name has the same bytes), and rebuilding the same data gives the same names;
//   2. manifest.json is replaced atomically: the switch from the old set to the new one;
//   3. every other shard file (the previous set, leftovers of interrupted runs) is removed.
// A crash before 2 leaves the old set intact and loadable plus unlisted files that the next run
// removes. Writers hold the directory's exclusive lock (io::DirLock) meanwhile.
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "common/data/shard_format.h"

namespace mpibert::data {

enum class ShardFileKind {
  Other,       // not a shard file (vocab.txt, manifest.json, anything else)
  Legacy,      // train-00000.h5: a set written before names carried the content hash
  Published,   // train-00000-9f86d081884c7d65.h5
  Unfinished,  // train-00000.h5.new, *.h5.tmp.*, *.h5.new.tmp.*: an interrupted write
};
ShardFileKind shard_file_kind(const std::string& name);

// Names of DIR's shard files (every kind but Other), sorted; empty when DIR does not exist.
std::vector<std::string> list_shard_files(const std::string& dir);

// Removes DIR's shard files that `keep` does not name and returns their names. Throws
// std::runtime_error naming the file when one cannot be removed.
std::vector<std::string> remove_shard_files_except(const std::string& dir, const std::set<std::string>& keep);

// The file names a manifest lists.
std::set<std::string> listed_files(const Manifest& manifest);

// "" when every shard the manifest lists is in DIR with the listed SHA-256 (each file is hashed);
// otherwise the first problem, e.g. "DIR/F: sha256 ab12..., manifest.json says 7df5...".
std::string verify_shard_files(const std::string& dir, const Manifest& manifest);

// Steps 1-3 above on one process (rank 0 of prepare_data).
class ShardSetWriter {
 public:
  ShardSetWriter(std::string dir, int64_t vocab_size, int64_t seq_len);

  // Step 1 for shard `index` of `split`: returns its manifest entry (kept for publish()).
  const ManifestShard& write(const std::string& split, int64_t index, const ShardAttributes& attrs, const int32_t* ids,
                             int64_t num_sequences);
  // Runs `before_switch` (if any), then steps 2 and 3. Returns the published manifest.
  const Manifest& publish(const std::function<void()>& before_switch = {});

  const Manifest& manifest() const { return manifest_; }

 private:
  std::string dir_;
  Manifest manifest_;
};

}  // namespace mpibert::data
