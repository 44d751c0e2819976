// Fuzz target: the safetensors reader (common/io/safetensors.h), which treats model files as untrusted.
// The input is the whole file. Properties: bad files are a UsageError naming the file; an accepted
// file's tensors hold exactly numel * dtype-size bytes, and our writer writes it back to a file that
// reads as the same tensors and metadata.
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/io/safetensors.h"
#include "fuzz_support.h"

namespace {

using namespace mpibert;

void check_sizes(const io::SafetensorsFile& file) {
  for (const auto& [name, tensor] : file.tensors) {
    uint64_t bytes = io::st_dtype_size(tensor.dtype);
    for (int64_t d : tensor.shape) bytes *= static_cast<uint64_t>(d);  // the reader checked for overflow
    if (bytes != tensor.data.size()) fuzz::property_failed("tensor '" + name + "' holds the wrong byte count");
  }
}

bool same(const io::SafetensorsFile& a, const io::SafetensorsFile& b) {
  if (a.metadata != b.metadata || a.tensors.size() != b.tensors.size()) return false;
  for (const auto& [name, t] : a.tensors) {
    auto it = b.tensors.find(name);
    if (it == b.tensors.end()) return false;
    const io::StTensor& u = it->second;
    if (t.dtype != u.dtype || t.shape != u.shape || t.data != u.data) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = fuzz::scratch().write("input.safetensors", data, size);
  io::SafetensorsHeader header;
  if (!fuzz::accepts_or_usage_error([&] { header = io::read_safetensors_header(path); })) return 0;
  io::SafetensorsFile file;
  if (!fuzz::accepts_or_usage_error([&] { file = io::read_safetensors(path); }))
    fuzz::property_failed("the header was accepted but the whole file was not");
  if (file.tensors.size() != header.tensors.size()) fuzz::property_failed("the header and the file disagree");
  check_sizes(file);

  const std::string copy = fuzz::scratch().path() + "/rewritten.safetensors";
  io::write_safetensors(copy, file);
  if (!same(file, io::read_safetensors(copy))) fuzz::property_failed("write_safetensors did not round-trip");
  return 0;
}
