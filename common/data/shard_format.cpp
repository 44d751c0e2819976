#include "common/data/shard_format.h"

#include <sys/stat.h>

#include <cstdio>
#include <limits>
#include <map>
#include <set>
#include <stdexcept>

#include "common/error.h"
#include "common/io/atomic_file.h"
#include "common/io/json_file.h"

namespace mpibert::data {
namespace {

bool is_hex_sha256(const std::string& s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

[[noreturn]] void bad(const std::string& path, const std::string& what) {
  throw UsageError(path + ": " + what + "; " + kRerunHint);
}

int64_t get_int(const nlohmann::json& obj, const std::string& key, const std::string& path, const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end()) bad(path, where + "missing key \"" + key + "\"");
  if (!it->is_number_integer()) bad(path, where + "\"" + key + "\" must be an integer, got " + it->dump());
  return it->get<int64_t>();
}

std::string get_string(const nlohmann::json& obj, const std::string& key, const std::string& path,
                       const std::string& where) {
  auto it = obj.find(key);
  if (it == obj.end()) bad(path, where + "missing key \"" + key + "\"");
  if (!it->is_string()) bad(path, where + "\"" + key + "\" must be a string, got " + it->dump());
  return it->get<std::string>();
}

}  // namespace

std::string shard_file_name(const std::string& split, int64_t index) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "-%05lld.h5", static_cast<long long>(index));
  return split + buf;
}

std::string shard_file_name(const std::string& split, int64_t index, const std::string& sha256) {
  if (sha256.size() < kShardNameHashDigits)
    throw std::invalid_argument("shard_file_name: '" + sha256 + "' is not a SHA-256 digest");
  char buf[32];
  std::snprintf(buf, sizeof(buf), "-%05lld-", static_cast<long long>(index));
  return split + buf + sha256.substr(0, kShardNameHashDigits) + ".h5";
}

void check_split_name(const std::string& split, const std::string& where) {
  if (split != kTrainSplit && split != kValidationSplit)
    throw UsageError(where + ": unknown split \"" + split + "\" (valid: train, validation)");
}

std::string join_path(const std::string& dir, const std::string& name) {
  if (dir.empty()) return name;
  if (dir.back() == '/') return dir + name;
  return dir + "/" + name;
}

int64_t Manifest::num_sequences(const std::string& split) const {
  int64_t n = 0;
  for (const auto& s : shards)
    if (s.split == split) n += s.num_sequences;
  return n;
}

std::vector<ManifestShard> Manifest::shards_of(const std::string& split) const {
  std::vector<ManifestShard> out;
  for (const auto& s : shards)
    if (s.split == split) out.push_back(s);
  return out;
}

nlohmann::ordered_json manifest_to_json(const Manifest& manifest) {
  nlohmann::ordered_json j;
  j["format"] = kShardFormat;
  j["version"] = kShardFormatVersion;
  j["vocab_size"] = manifest.vocab_size;
  j["seq_len"] = manifest.seq_len;
  j["shards"] = nlohmann::ordered_json::array();
  for (const auto& s : manifest.shards) {
    nlohmann::ordered_json e;
    e["file"] = s.file;
    e["split"] = s.split;
    e["num_sequences"] = s.num_sequences;
    e["sha256"] = s.sha256;
    j["shards"].push_back(std::move(e));
  }
  return j;
}

Manifest manifest_from_json(const nlohmann::json& j, const std::string& path) {
  if (!j.is_object()) bad(path, "expected a JSON object");
  const std::string format = get_string(j, "format", path, "");
  if (format != kShardFormat)
    bad(path, "format is \"" + format + "\", expected \"" + kShardFormat + "\" (not an mpibert shard directory?)");
  const int64_t version = get_int(j, "version", path, "");
  if (version != kShardFormatVersion)
    bad(path, "format version " + std::to_string(version) + " is not supported (this build reads version " +
                  std::to_string(kShardFormatVersion) + ")");
  Manifest m;
  m.vocab_size = get_int(j, "vocab_size", path, "");
  if (m.vocab_size < 5 || m.vocab_size > (int64_t(1) << 31) - 1)
    bad(path, "vocab_size " + std::to_string(m.vocab_size) + " is out of range [5, 2^31-1]");
  m.seq_len = get_int(j, "seq_len", path, "");
  if (m.seq_len < kMinSeqLen || m.seq_len > (int64_t(1) << 24))
    bad(path, "seq_len " + std::to_string(m.seq_len) + " is out of range [" + std::to_string(kMinSeqLen) + ", 2^24]");
  auto it = j.find("shards");
  if (it == j.end() || !it->is_array()) bad(path, "\"shards\" must be an array");
  std::set<std::string> files;
  const int64_t max_sequences = std::numeric_limits<int64_t>::max() / m.seq_len;  // a split's tokens fit int64
  std::map<std::string, int64_t> split_sequences;
  for (size_t i = 0; i < it->size(); ++i) {
    const auto& e = (*it)[i];
    const std::string where = "shards[" + std::to_string(i) + "]: ";
    if (!e.is_object()) bad(path, where + "expected an object");
    ManifestShard s;
    s.file = get_string(e, "file", path, where);
    // Plain names only: a manifest must not point outside its directory.
    if (s.file.empty() || s.file.find('/') != std::string::npos || s.file == "." || s.file == "..")
      bad(path, where + "file \"" + s.file + "\" must be a plain file name inside the shard directory");
    if (!files.insert(s.file).second) bad(path, where + "file \"" + s.file + "\" is listed twice");
    s.split = get_string(e, "split", path, where);
    if (s.split != kTrainSplit && s.split != kValidationSplit)
      bad(path, where + "split \"" + s.split + "\" is not train or validation");
    s.num_sequences = get_int(e, "num_sequences", path, where);
    if (s.num_sequences < 1) bad(path, where + "num_sequences must be >= 1, got " + std::to_string(s.num_sequences));
    if (s.num_sequences > max_sequences - split_sequences[s.split])
      bad(path, where + "num_sequences " + std::to_string(s.num_sequences) + " takes the " + s.split +
                    " split past 2^63-1 tokens");
    split_sequences[s.split] += s.num_sequences;
    s.sha256 = get_string(e, "sha256", path, where);
    if (!is_hex_sha256(s.sha256)) bad(path, where + "sha256 \"" + s.sha256 + "\" is not 64 lower-case hex digits");
    m.shards.push_back(std::move(s));
  }
  return m;
}

Manifest read_manifest(const std::string& dir) {
  const std::string path = join_path(dir, kManifestFileName);
  struct stat st;
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    throw UsageError(dir +
                     ": shard directory does not exist; run `prepare_data all` (or train-tokenizer, then "
                     "shards) with data.shards_dir=" +
                     dir + " first");
  if (::stat(path.c_str(), &st) != 0)
    throw UsageError(path + ": missing: " + dir + " holds no finished shards; run `prepare_data shards` first");
  return manifest_from_json(io::read_json_file(path), path);
}

void write_manifest(const std::string& dir, const Manifest& manifest) {
  io::write_file_atomic(join_path(dir, kManifestFileName), manifest_to_json(manifest).dump(2) + "\n");
}

}  // namespace mpibert::data
