#include "common/data/shard_reader.h"

#include <sys/stat.h>

#include <algorithm>
#include <mutex>
#include <stdexcept>

#include "common/data/hdf5_check.h"
#include "common/error.h"
#include "common/io/sha256.h"

namespace mpibert::data {
namespace {

struct OpenShard {
  std::string path;
  int64_t first = 0;  // global index of its first sequence
  int64_t count = 0;
  H5Id file, dataset, file_space;
};

[[noreturn]] void bad(const std::string& path, const std::string& what) {
  throw UsageError(path + ": " + what + "; " + kRerunHint);
}

bool file_exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// Opens attribute `name` of `loc` after checking that it exists and is a scalar of `cls`.
H5Id open_attribute(hid_t loc, const char* name, H5T_class_t cls, const std::string& path) {
  htri_t exists = H5Aexists(loc, name);
  if (exists < 0) bad(path, std::string("cannot look up attribute \"") + name + "\": " + hdf5_error_text());
  if (exists == 0) bad(path, std::string("attribute \"") + name + "\" is missing");
  H5Id attr(H5Aopen(loc, name, H5P_DEFAULT));
  if (!attr.valid()) bad(path, std::string("cannot open attribute \"") + name + "\": " + hdf5_error_text());
  H5Id type(H5Aget_type(attr.get()));
  H5Id space(H5Aget_space(attr.get()));
  if (!type.valid() || !space.valid()) bad(path, std::string("attribute \"") + name + "\": " + hdf5_error_text());
  const bool scalar = H5Sget_simple_extent_type(space.get()) == H5S_SCALAR ||
                      (H5Sget_simple_extent_ndims(space.get()) == 1 && H5Sget_simple_extent_npoints(space.get()) == 1);
  if (H5Tget_class(type.get()) != cls || !scalar)
    bad(path,
        std::string("attribute \"") + name + "\" must be a scalar " + (cls == H5T_INTEGER ? "integer" : "string"));
  return attr;
}

int64_t read_int_attribute(hid_t loc, const char* name, const std::string& path) {
  H5Id attr = open_attribute(loc, name, H5T_INTEGER, path);
  int64_t value = 0;
  if (H5Aread(attr.get(), H5T_NATIVE_INT64, &value) < 0)
    bad(path, std::string("cannot read attribute \"") + name + "\": " + hdf5_error_text());
  return value;
}

std::string read_string_attribute(hid_t loc, const char* name, const std::string& path) {
  H5Id attr = open_attribute(loc, name, H5T_STRING, path);
  H5Id type(H5Aget_type(attr.get()), path + ": H5Aget_type");
  std::string out;
  if (H5Tis_variable_str(type.get()) > 0) {
    // h5py writes variable-length strings by default; accept them too.
    char* text = nullptr;
    H5Id mem(H5Tcopy(H5T_C_S1), path + ": H5Tcopy");
    hdf5_check(H5Tset_size(mem.get(), H5T_VARIABLE), path + ": H5Tset_size");
    if (H5Aread(attr.get(), mem.get(), &text) < 0)
      bad(path, std::string("cannot read attribute \"") + name + "\": " + hdf5_error_text());
    out = text ? text : "";
    H5free_memory(text);
  } else {
    size_t size = H5Tget_size(type.get());
    std::string buf(size + 1, '\0');
    if (H5Aread(attr.get(), type.get(), buf.data()) < 0)
      bad(path, std::string("cannot read attribute \"") + name + "\": " + hdf5_error_text());
    out = buf.c_str();
  }
  return out;
}

// The file exists and its SHA-256 is the one manifest.json lists.
void check_file_sha256(const std::string& path, const ManifestShard& entry) {
  if (!file_exists(path)) bad(path, "missing (listed in manifest.json)");
  const std::string sha = io::sha256_file(path);
  if (sha != entry.sha256)
    bad(path, "sha256 mismatch (manifest says " + entry.sha256 + ", file has " + sha +
                  "): the shard is corrupt or was rewritten");
}

// The five special token ids, each inside [0, vocab_size).
void read_special_ids(hid_t root, const std::string& path, ShardAttributes* attrs) {
  struct {
    const char* name;
    int32_t* slot;
  } ids[] = {{"pad_id", &attrs->special_ids.pad},
             {"cls_id", &attrs->special_ids.cls},
             {"sep_id", &attrs->special_ids.sep},
             {"mask_id", &attrs->special_ids.mask},
             {"unk_id", &attrs->special_ids.unk}};
  for (auto& id : ids) {
    int64_t v = read_int_attribute(root, id.name, path);
    if (v < 0 || v >= attrs->vocab_size)
      bad(path, std::string("attribute ") + id.name + " = " + std::to_string(v) + " is outside [0, vocab_size " +
                    std::to_string(attrs->vocab_size) + ")");
    *id.slot = static_cast<int32_t>(v);
  }
}

// The root attributes, checked against the format, manifest.json and the vocab.txt beside the shard.
void read_shard_attributes(hid_t root, const std::string& path, const Manifest& manifest, const std::string& vocab_sha,
                           ShardAttributes* attrs) {
  const std::string format = read_string_attribute(root, "format", path);
  if (format != kShardFormat) bad(path, "attribute format is \"" + format + "\", expected \"" + kShardFormat + "\"");
  const int64_t version = read_int_attribute(root, "version", path);
  if (version != kShardFormatVersion)
    bad(path, "format version " + std::to_string(version) + " is not supported (expected " +
                  std::to_string(kShardFormatVersion) + ")");
  attrs->seq_len = read_int_attribute(root, "seq_len", path);
  if (attrs->seq_len != manifest.seq_len)
    bad(path, "seq_len " + std::to_string(attrs->seq_len) + " differs from manifest.json's " +
                  std::to_string(manifest.seq_len));
  attrs->vocab_size = read_int_attribute(root, "vocab_size", path);
  if (attrs->vocab_size != manifest.vocab_size)
    bad(path, "vocab_size " + std::to_string(attrs->vocab_size) + " differs from manifest.json's " +
                  std::to_string(manifest.vocab_size));
  attrs->vocab_sha256 = read_string_attribute(root, "vocab_sha256", path);
  if (attrs->vocab_sha256 != vocab_sha)
    bad(path, "vocabulary mismatch: the shard was tokenised with a vocab.txt of sha256 " + attrs->vocab_sha256 +
                  " but the vocab.txt beside it has sha256 " + vocab_sha);
  read_special_ids(root, path, attrs);
  const int64_t lowercase = read_int_attribute(root, "lowercase", path);
  if (lowercase != 0 && lowercase != 1)
    bad(path, "attribute lowercase = " + std::to_string(lowercase) + ", expected 0 or 1");
  attrs->lowercase = lowercase == 1;
  attrs->source = read_string_attribute(root, "source", path);
}

// input_ids must be uint16 for vocabularies that fit (shard_ids_are_uint16), int32 otherwise.
void check_input_ids_dtype(hid_t dataset, const std::string& path, int64_t vocab_size) {
  H5Id type(H5Dget_type(dataset), path + ": H5Dget_type");
  const bool want_u16 = shard_ids_are_uint16(vocab_size);
  const bool is_int = H5Tget_class(type.get()) == H5T_INTEGER;
  const size_t size = H5Tget_size(type.get());
  const H5T_sign_t sign = H5Tget_sign(type.get());
  const bool ok = is_int && (want_u16 ? (size == 2 && sign == H5T_SGN_NONE) : (size == 4 && sign == H5T_SGN_2));
  if (!ok) {
    std::string got =
        is_int ? std::string(sign == H5T_SGN_NONE ? "uint" : "int") + std::to_string(size * 8) : "a non-integer type";
    bad(path, std::string("input_ids has dtype ") + got + ", expected " + (want_u16 ? "uint16" : "int32") +
                  " for vocab_size " + std::to_string(vocab_size));
  }
}

// Opens the input_ids dataset into s.dataset and s.file_space after checking its dtype and shape.
void open_input_ids(OpenShard& s, const ManifestShard& entry, const Manifest& manifest) {
  const std::string& path = s.path;
  const hid_t root = s.file.get();
  htri_t has = H5Lexists(root, kInputIdsDataset, H5P_DEFAULT);
  if (has <= 0) bad(path, std::string("dataset \"") + kInputIdsDataset + "\" is missing");
  // No chunk cache: training reads single rows at random, and for uncompressed chunks HDF5 then reads
  // just the selected row from the file instead of a whole chunk (about 64 KiB) per row.
  H5Id dapl(H5Pcreate(H5P_DATASET_ACCESS), path + ": H5Pcreate(dataset access)");
  hdf5_check(H5Pset_chunk_cache(dapl.get(), 0, 0, 1.0), path + ": H5Pset_chunk_cache");
  s.dataset = H5Id(H5Dopen2(root, kInputIdsDataset, dapl.get()));
  if (!s.dataset.valid()) bad(path, "cannot open dataset input_ids (" + hdf5_error_text() + ")");
  check_input_ids_dtype(s.dataset.get(), path, manifest.vocab_size);
  s.file_space = H5Id(H5Dget_space(s.dataset.get()), path + ": H5Dget_space");
  hsize_t dims[2] = {0, 0};
  const int rank = H5Sget_simple_extent_ndims(s.file_space.get());
  if (rank != 2)
    bad(path, "input_ids has " + std::to_string(rank) + " dimensions, expected 2 [num_sequences, seq_len]");
  H5Sget_simple_extent_dims(s.file_space.get(), dims, nullptr);
  if (int64_t(dims[0]) != entry.num_sequences || int64_t(dims[1]) != manifest.seq_len)
    bad(path, "input_ids has shape [" + std::to_string(dims[0]) + ", " + std::to_string(dims[1]) + "], expected [" +
                  std::to_string(entry.num_sequences) + ", " + std::to_string(manifest.seq_len) +
                  "] (num_sequences from manifest.json, seq_len)");
}

// Every id must index the vocabulary: a bad id would otherwise fail deep inside the embedding.
void check_token_ids(const OpenShard& s, const ManifestShard& entry, const Manifest& manifest) {
  const std::string& path = s.path;
  const int64_t L = manifest.seq_len;
  const int64_t rows_per_read = std::max<int64_t>(1, (int64_t(4) << 20) / (L * 4));
  std::vector<int32_t> buf;
  for (int64_t r0 = 0; r0 < entry.num_sequences; r0 += rows_per_read) {
    const int64_t rows = std::min(rows_per_read, entry.num_sequences - r0);
    buf.resize(size_t(rows * L));
    const hsize_t start[2] = {hsize_t(r0), 0}, count[2] = {hsize_t(rows), hsize_t(L)};
    hdf5_check(H5Sselect_hyperslab(s.file_space.get(), H5S_SELECT_SET, start, nullptr, count, nullptr),
               path + ": select rows");
    H5Id mem(H5Screate_simple(2, count, nullptr), path + ": H5Screate_simple");
    if (H5Dread(s.dataset.get(), H5T_NATIVE_INT32, mem.get(), s.file_space.get(), H5P_DEFAULT, buf.data()) < 0)
      bad(path, "cannot read input_ids rows " + std::to_string(r0) + ".." + std::to_string(r0 + rows - 1) + " (" +
                    hdf5_error_text() + ")");
    for (size_t i = 0; i < buf.size(); ++i)
      if (buf[i] < 0 || buf[i] >= manifest.vocab_size)
        bad(path, "token id " + std::to_string(buf[i]) + " at sequence " + std::to_string(r0 + int64_t(i) / L) +
                      ", position " + std::to_string(int64_t(i) % L) + " is outside the vocabulary [0, " +
                      std::to_string(manifest.vocab_size) + ")");
  }
}

// Checks one shard completely and leaves it open for reading.
void validate_shard(OpenShard& s, const ManifestShard& entry, const Manifest& manifest, const std::string& vocab_sha,
                    ShardAttributes* attrs) {
  check_file_sha256(s.path, entry);
  s.file = H5Id(H5Fopen(s.path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT));
  if (!s.file.valid()) bad(s.path, "not a readable HDF5 file (" + hdf5_error_text() + ")");
  read_shard_attributes(s.file.get(), s.path, manifest, vocab_sha, attrs);
  open_input_ids(s, entry, manifest);
  check_token_ids(s, entry, manifest);
}

}  // namespace

struct ShardDataset::State {
  std::string dir, split;
  Manifest manifest;
  ShardAttributes attrs;
  std::vector<OpenShard> shards;
  int64_t num_sequences = 0;
  std::mutex mutex;
};

ShardDataset ShardDataset::open(const std::string& dir, const std::string& split, int64_t expected_vocab_size) {
  hdf5_quiet();
  check_split_name(split, "ShardDataset::open(" + dir + ")");
  auto st = std::make_shared<State>();
  st->dir = dir;
  st->split = split;
  st->manifest = read_manifest(dir);
  const std::string manifest_path = join_path(dir, kManifestFileName);
  if (expected_vocab_size >= 0 && expected_vocab_size != st->manifest.vocab_size)
    throw UsageError(manifest_path + ": the shards use vocab_size " + std::to_string(st->manifest.vocab_size) +
                     " but the model expects " + std::to_string(expected_vocab_size) +
                     ": use the model's vocab.txt (data.vocab_file) and rerun prepare_data shards, or train a model "
                     "with this vocabulary");
  const auto entries = st->manifest.shards_of(split);
  if (entries.empty())
    throw UsageError(manifest_path + ": lists no " + split + " shards" +
                     (split == kValidationSplit ? " (was data.validation_fraction 0?)" : "") + "; " + kRerunHint);

  const std::string vocab = join_path(dir, kVocabFileName);
  if (!file_exists(vocab)) throw UsageError(vocab + ": missing (the shards' vocabulary); " + kRerunHint);
  const std::string vocab_sha = io::sha256_file(vocab);

  for (const auto& entry : entries) {
    OpenShard s;
    s.path = join_path(dir, entry.file);
    s.first = st->num_sequences;
    s.count = entry.num_sequences;
    ShardAttributes a;
    validate_shard(s, entry, st->manifest, vocab_sha, &a);
    if (st->shards.empty()) {
      st->attrs = a;
    } else {
      const auto& f = st->attrs.special_ids;
      const auto& g = a.special_ids;
      if (f.pad != g.pad || f.cls != g.cls || f.sep != g.sep || f.mask != g.mask || f.unk != g.unk ||
          a.lowercase != st->attrs.lowercase)
        bad(s.path, "special token ids or lowercase differ from " + st->shards.front().path +
                        " (shards from different runs mixed in one directory)");
    }
    st->num_sequences += entry.num_sequences;
    st->shards.push_back(std::move(s));
  }
  return ShardDataset(std::move(st));
}

const std::string& ShardDataset::dir() const {
  return state_->dir;
}
const std::string& ShardDataset::split() const {
  return state_->split;
}
int64_t ShardDataset::num_sequences() const {
  return state_->num_sequences;
}
int64_t ShardDataset::seq_len() const {
  return state_->manifest.seq_len;
}
int64_t ShardDataset::vocab_size() const {
  return state_->manifest.vocab_size;
}
SpecialIds ShardDataset::special_ids() const {
  return state_->attrs.special_ids;
}
bool ShardDataset::lowercase() const {
  return state_->attrs.lowercase;
}
const std::string& ShardDataset::source() const {
  return state_->attrs.source;
}
const std::string& ShardDataset::vocab_sha256() const {
  return state_->attrs.vocab_sha256;
}
std::string ShardDataset::vocab_path() const {
  return join_path(state_->dir, kVocabFileName);
}
const Manifest& ShardDataset::manifest() const {
  return state_->manifest;
}

void ShardDataset::read(int64_t index, int32_t* out) const {
  read_many({index}, out);
}

void ShardDataset::read_many(const std::vector<int64_t>& indices, int32_t* out) const {
  State& st = *state_;
  const int64_t L = st.manifest.seq_len;
  for (int64_t index : indices)
    if (index < 0 || index >= st.num_sequences)
      throw std::out_of_range("ShardDataset(" + st.dir + ", " + st.split + "): sequence " + std::to_string(index) +
                              " outside [0, " + std::to_string(st.num_sequences) + ")");
  // Group the requests by shard; per shard, one H5Dread of the union of the wanted rows (in file
  // order, consecutive rows merged into one block) into a scratch buffer, then scatter to `out`.
  struct Want {
    int64_t row;
    size_t slot;  // position in `indices`
  };
  std::vector<std::vector<Want>> per_shard(st.shards.size());
  for (size_t i = 0; i < indices.size(); ++i) {
    auto it = std::upper_bound(st.shards.begin(), st.shards.end(), indices[i],
                               [](int64_t v, const OpenShard& s) { return v < s.first; });
    const size_t k = size_t(it - st.shards.begin()) - 1;
    per_shard[k].push_back({indices[i] - st.shards[k].first, i});
  }
  std::lock_guard<std::mutex> lock(st.mutex);
  hdf5_quiet();
  std::vector<int32_t> rows;
  for (size_t k = 0; k < per_shard.size(); ++k) {
    auto& wants = per_shard[k];
    if (wants.empty()) continue;
    OpenShard& s = st.shards[k];
    std::sort(wants.begin(), wants.end(), [](const Want& a, const Want& b) { return a.row < b.row; });
    H5S_seloper_t op = H5S_SELECT_SET;
    int64_t unique = 0;
    for (size_t j = 0; j < wants.size();) {
      // A block of consecutive rows (repeats of a row are read once).
      size_t e = j + 1;
      int64_t last = wants[j].row;
      while (e < wants.size() && wants[e].row <= last + 1) last = wants[e++].row;
      const hsize_t start[2] = {hsize_t(wants[j].row), 0}, count[2] = {hsize_t(last - wants[j].row + 1), hsize_t(L)};
      hdf5_check(H5Sselect_hyperslab(s.file_space.get(), op, start, nullptr, count, nullptr), s.path + ": select rows");
      op = H5S_SELECT_OR;
      unique += last - wants[j].row + 1;
      j = e;
    }
    rows.resize(size_t(unique * L));
    const hsize_t mem_dims[2] = {hsize_t(unique), hsize_t(L)};
    H5Id mem(H5Screate_simple(2, mem_dims, nullptr), s.path + ": H5Screate_simple");
    hdf5_check(H5Dread(s.dataset.get(), H5T_NATIVE_INT32, mem.get(), s.file_space.get(), H5P_DEFAULT, rows.data()),
               s.path + ": read " + std::to_string(wants.size()) + " sequences");
    int64_t r = -1, prev = -1;
    for (const Want& w : wants) {
      if (w.row != prev) {
        ++r;
        prev = w.row;
      }
      std::copy(rows.begin() + r * L, rows.begin() + (r + 1) * L, out + int64_t(w.slot) * L);
    }
  }
}

}  // namespace mpibert::data
