#include "common/data/shard_writer.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "common/data/hdf5_check.h"
#include "common/io/atomic_file.h"
#include "common/io/sha256.h"

namespace mpibert::data {
namespace {

void write_int_attribute(hid_t loc, const char* name, int64_t value, const std::string& path) {
  H5Id space(H5Screate(H5S_SCALAR), path + ": H5Screate");
  H5Id attr(H5Acreate2(loc, name, H5T_STD_I64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT),
            path + ": create attribute " + name);
  hdf5_check(H5Awrite(attr.get(), H5T_NATIVE_INT64, &value), path + ": write attribute " + name);
  attr.close(path + ": close attribute " + name);
}

void write_string_attribute(hid_t loc, const char* name, const std::string& value, const std::string& path) {
  H5Id type(H5Tcopy(H5T_C_S1), path + ": H5Tcopy");
  // Fixed length (content + terminator): no global heap, so the bytes are reproducible.
  hdf5_check(H5Tset_size(type.get(), value.size() + 1), path + ": H5Tset_size");
  hdf5_check(H5Tset_strpad(type.get(), H5T_STR_NULLTERM), path + ": H5Tset_strpad");
  hdf5_check(H5Tset_cset(type.get(), H5T_CSET_UTF8), path + ": H5Tset_cset");
  H5Id space(H5Screate(H5S_SCALAR), path + ": H5Screate");
  H5Id attr(H5Acreate2(loc, name, type.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT),
            path + ": create attribute " + name);
  hdf5_check(H5Awrite(attr.get(), type.get(), value.c_str()), path + ": write attribute " + name);
  attr.close(path + ": close attribute " + name);
}

void fsync_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(path + ": cannot open to sync: " + std::strerror(errno));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) throw std::runtime_error(path + ": fsync failed: " + std::strerror(err));
}

void write_file(const std::string& tmp, const std::string& path, const ShardAttributes& a, const int32_t* ids,
                int64_t n) {
  const int64_t L = a.seq_len;
  H5Id fcpl(H5Pcreate(H5P_FILE_CREATE), path + ": H5Pcreate(file create)");
  // The root group is created with the file: no timestamps on it either.
  hdf5_check(H5Pset_obj_track_times(fcpl.get(), false), path + ": H5Pset_obj_track_times");
  H5Id file(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, fcpl.get(), H5P_DEFAULT), path + ": cannot create " + tmp);

  const hsize_t dims[2] = {static_cast<hsize_t>(n), static_cast<hsize_t>(L)};
  H5Id space(H5Screate_simple(2, dims, nullptr), path + ": H5Screate_simple");
  H5Id dcpl(H5Pcreate(H5P_DATASET_CREATE), path + ": H5Pcreate(dataset create)");
  const hsize_t chunk[2] = {static_cast<hsize_t>(shard_chunk_rows(n, L, a.vocab_size)), static_cast<hsize_t>(L)};
  hdf5_check(H5Pset_chunk(dcpl.get(), 2, chunk), path + ": H5Pset_chunk");
  hdf5_check(H5Pset_obj_track_times(dcpl.get(), false), path + ": H5Pset_obj_track_times");
  // Every element is written, so a fill value would only cost time.
  hdf5_check(H5Pset_fill_time(dcpl.get(), H5D_FILL_TIME_NEVER), path + ": H5Pset_fill_time");
  hdf5_check(H5Pset_alloc_time(dcpl.get(), H5D_ALLOC_TIME_EARLY), path + ": H5Pset_alloc_time");

  const size_t count = static_cast<size_t>(n * L);
  if (shard_ids_are_uint16(a.vocab_size)) {
    std::vector<uint16_t> narrow(count);
    for (size_t i = 0; i < count; ++i) narrow[i] = static_cast<uint16_t>(ids[i]);
    H5Id dset(
        H5Dcreate2(file.get(), kInputIdsDataset, H5T_STD_U16LE, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
        path + ": create dataset input_ids");
    hdf5_check(H5Dwrite(dset.get(), H5T_NATIVE_UINT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, narrow.data()),
               path + ": write input_ids");
    dset.close(path + ": close input_ids");
  } else {
    H5Id dset(
        H5Dcreate2(file.get(), kInputIdsDataset, H5T_STD_I32LE, space.get(), H5P_DEFAULT, dcpl.get(), H5P_DEFAULT),
        path + ": create dataset input_ids");
    hdf5_check(H5Dwrite(dset.get(), H5T_NATIVE_INT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, ids), path + ": write input_ids");
    dset.close(path + ": close input_ids");
  }

  const hid_t root = file.get();
  write_string_attribute(root, "format", kShardFormat, path);
  write_int_attribute(root, "version", kShardFormatVersion, path);
  write_int_attribute(root, "seq_len", L, path);
  write_int_attribute(root, "vocab_size", a.vocab_size, path);
  write_string_attribute(root, "vocab_sha256", a.vocab_sha256, path);
  write_int_attribute(root, "pad_id", a.special_ids.pad, path);
  write_int_attribute(root, "cls_id", a.special_ids.cls, path);
  write_int_attribute(root, "sep_id", a.special_ids.sep, path);
  write_int_attribute(root, "mask_id", a.special_ids.mask, path);
  write_int_attribute(root, "unk_id", a.special_ids.unk, path);
  write_int_attribute(root, "lowercase", a.lowercase ? 1 : 0, path);
  write_string_attribute(root, "source", a.source, path);
  file.close(path + ": closing (flush) failed");
}

}  // namespace

int64_t shard_chunk_rows(int64_t num_sequences, int64_t seq_len, int64_t vocab_size) {
  const int64_t row_bytes = seq_len * (shard_ids_are_uint16(vocab_size) ? 2 : 4);
  return std::clamp<int64_t>((64 << 10) / std::max<int64_t>(row_bytes, 1), 1, std::max<int64_t>(num_sequences, 1));
}

std::string write_shard(const std::string& path, const ShardAttributes& a, const int32_t* ids, int64_t n) {
  if (n < 1) throw std::invalid_argument(path + ": a shard needs at least one sequence, got " + std::to_string(n));
  if (a.seq_len < kMinSeqLen)
    throw std::invalid_argument(path + ": seq_len " + std::to_string(a.seq_len) + " < " + std::to_string(kMinSeqLen));
  if (a.vocab_size < 1 || a.vocab_size > (int64_t(1) << 31) - 1)
    throw std::invalid_argument(path + ": vocab_size " + std::to_string(a.vocab_size) + " out of range");
  const int32_t specials[] = {a.special_ids.pad, a.special_ids.unk, a.special_ids.cls, a.special_ids.sep,
                              a.special_ids.mask};
  for (int32_t id : specials)
    if (id < 0 || id >= a.vocab_size)
      throw std::invalid_argument(path + ": special token id " + std::to_string(id) + " outside [0, " +
                                  std::to_string(a.vocab_size) + ")");
  const int64_t count = n * a.seq_len;
  for (int64_t i = 0; i < count; ++i)
    if (ids[i] < 0 || ids[i] >= a.vocab_size)
      throw std::invalid_argument(path + ": token id " + std::to_string(ids[i]) + " at sequence " +
                                  std::to_string(i / a.seq_len) + ", position " + std::to_string(i % a.seq_len) +
                                  " is outside [0, " + std::to_string(a.vocab_size) + ")");
  hdf5_quiet();
  const std::string tmp = io::temporary_path_for(path);
  try {
    write_file(tmp, path, a, ids, n);
    fsync_file(tmp);
    const std::string sha = io::sha256_file(tmp);
    io::rename_durably(tmp, path);
    return sha;
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
}

}  // namespace mpibert::data
