#pragma once
// Writes one HDF5 shard (format in shard_format.h). The same ids and attributes always give the same
// bytes (no object timestamps, fixed layout), so a shard's SHA-256 identifies its content.
#include <cstdint>
#include <string>

#include "common/data/shard_format.h"

namespace mpibert::data {

// Rows per chunk of input_ids: about 64 KiB per chunk, so reading one random sequence touches
// little more than itself, at least 1 row and at most num_sequences.
int64_t shard_chunk_rows(int64_t num_sequences, int64_t seq_len, int64_t vocab_size);

// Writes `num_sequences` x attrs.seq_len ids (row-major, each in [0, attrs.vocab_size)) to `path`
// through a temporary file that is fsynced and renamed into place. The file-level attributes are
// format, version, seq_len, vocab_size, vocab_sha256, pad_id, cls_id, sep_id, mask_id, unk_id,
// lowercase, source. Returns the SHA-256 of the written file. Throws std::invalid_argument for ids
// out of range or bad sizes, std::runtime_error (with HDF5's error text) if writing fails.
std::string write_shard(const std::string& path, const ShardAttributes& attrs, const int32_t* ids,
                        int64_t num_sequences);

}  // namespace mpibert::data
