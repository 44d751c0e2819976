#include "common/data/shard_set.h"

#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <regex>
#include <stdexcept>
#include <system_error>

#include "common/data/shard_writer.h"
#include "common/io/atomic_file.h"
#include "common/io/sha256.h"

namespace mpibert::data {
namespace {

namespace fs = std::filesystem;

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

}  // namespace

ShardFileKind shard_file_kind(const std::string& name) {
  static const std::regex legacy(R"((train|validation)-\d{5,}\.h5)");
  static const std::regex published(R"((train|validation)-\d{5,}-[0-9a-f]{16}\.h5)");
  static const std::regex unfinished(
      R"((train|validation)-\d{5,}(-[0-9a-f]{16})?\.h5(\.new|\.tmp\..+|\.new\.tmp\..+))");
  if (std::regex_match(name, published)) return ShardFileKind::Published;
  if (std::regex_match(name, legacy)) return ShardFileKind::Legacy;
  if (std::regex_match(name, unfinished)) return ShardFileKind::Unfinished;
  return ShardFileKind::Other;
}

std::vector<std::string> list_shard_files(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return names;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::string name = entry.path().filename().string();
    if (shard_file_kind(name) != ShardFileKind::Other) names.push_back(std::move(name));
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> remove_shard_files_except(const std::string& dir, const std::set<std::string>& keep) {
  std::vector<std::string> removed;
  for (const std::string& name : list_shard_files(dir)) {
    if (keep.count(name)) continue;
    std::error_code ec;
    fs::remove(join_path(dir, name), ec);
    if (ec) throw std::runtime_error(join_path(dir, name) + ": cannot remove: " + ec.message());
    removed.push_back(name);
  }
  return removed;
}

std::set<std::string> listed_files(const Manifest& manifest) {
  std::set<std::string> names;
  for (const ManifestShard& s : manifest.shards) names.insert(s.file);
  return names;
}

std::string verify_shard_files(const std::string& dir, const Manifest& manifest) {
  for (const ManifestShard& s : manifest.shards) {
    const std::string path = join_path(dir, s.file);
    if (!file_exists(path)) return path + ": missing (listed in " + kManifestFileName + ")";
    const std::string sha = io::sha256_file(path);
    if (sha != s.sha256) return path + ": sha256 " + sha + ", " + kManifestFileName + " says " + s.sha256;
  }
  return "";
}

ShardSetWriter::ShardSetWriter(std::string dir, int64_t vocab_size, int64_t seq_len) : dir_(std::move(dir)) {
  manifest_.vocab_size = vocab_size;
  manifest_.seq_len = seq_len;
}

const ManifestShard& ShardSetWriter::write(const std::string& split, int64_t index, const ShardAttributes& attrs,
                                           const int32_t* ids, int64_t num_sequences) {
  const std::string staging = join_path(dir_, shard_file_name(split, index) + ".new");
  const std::string sha = write_shard(staging, attrs, ids, num_sequences);
  const std::string name = shard_file_name(split, index, sha);
  io::rename_durably(staging, join_path(dir_, name));
  manifest_.shards.push_back({name, split, num_sequences, sha});
  return manifest_.shards.back();
}

const Manifest& ShardSetWriter::publish(const std::function<void()>& before_switch) {
  if (before_switch) before_switch();
  write_manifest(dir_, manifest_);
  remove_shard_files_except(dir_, listed_files(manifest_));
  return manifest_;
}

}  // namespace mpibert::data
