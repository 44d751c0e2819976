#pragma once
// Our own reader/writer of Hugging Face's safetensors format (torch-free).
//
// Layout: 8-byte little-endian u64 N, then N bytes of UTF-8 JSON header (padded with spaces), then the
// byte buffer. Header: {"__metadata__": {str: str}, NAME: {"dtype": D, "shape": [..],
// "data_offsets": [begin, end]}, ...}; offsets are relative to the buffer start.
// The reader treats the file as untrusted and checks every rule (see docs/model-files.md); each violation
// is one UsageError naming the file and the tensor or key. The writer produces the bytes the reference
// implementation (huggingface/safetensors) writes for the same input: compact JSON with "__metadata__"
// first, tensors ordered by descending dtype alignment then by name, header padded to 8 bytes.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace mpibert::io {

// The dtypes mpibert reads and writes (the safetensors dtypes libtorch 1.13 can hold).
enum class StDtype { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

const char* st_dtype_name(StDtype dtype);                    // "F32", ...
std::size_t st_dtype_size(StDtype dtype);                    // bytes per element
bool parse_st_dtype(const std::string& name, StDtype* out);  // false when unknown

// Hard limit on the JSON header, as in the reference implementation (guards against huge headers).
constexpr std::uint64_t kMaxSafetensorsHeaderBytes = 100'000'000;

struct StTensor {
  StDtype dtype = StDtype::F32;
  std::vector<int64_t> shape;
  std::string data;  // raw little-endian bytes, row-major, exactly numel * dtype size
  int64_t numel() const;
};

struct SafetensorsFile {
  std::map<std::string, std::string> metadata;
  std::map<std::string, StTensor> tensors;
};

// What the header says about one tensor; offsets are relative to the buffer start.
struct StTensorInfo {
  StDtype dtype = StDtype::F32;
  std::vector<int64_t> shape;
  std::uint64_t begin = 0, end = 0;
};

struct SafetensorsHeader {
  std::map<std::string, std::string> metadata;
  std::map<std::string, StTensorInfo> tensors;
  std::uint64_t header_bytes = 0;  // N
  std::uint64_t buffer_bytes = 0;  // file size - 8 - N
};

// Reads and validates the header only (cheap: no tensor data is read).
SafetensorsHeader read_safetensors_header(const std::string& path);

// Reads and validates the whole file; each tensor's bytes land in their own string.
SafetensorsFile read_safetensors(const std::string& path);

// Streaming writer input: the writer calls `write` once per tensor, in file order, with a sink that
// must receive exactly numel * dtype-size bytes in total (a mismatch is a std::logic_error).
using StByteSink = std::function<void(const void* data, std::size_t bytes)>;
struct StTensorSource {
  StDtype dtype = StDtype::F32;
  std::vector<int64_t> shape;
  std::function<void(const StByteSink& sink)> write;
};

// Writes atomically (temporary file, fsync, rename): readers see the old file or the whole new one.
// Names must be unique, non-empty and not "__metadata__" (UsageError otherwise).
void write_safetensors(const std::string& path, const std::map<std::string, std::string>& metadata,
                       const std::vector<std::pair<std::string, StTensorSource>>& tensors);
void write_safetensors(const std::string& path, const SafetensorsFile& file);

}  // namespace mpibert::io
