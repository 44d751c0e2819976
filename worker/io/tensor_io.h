#pragma once
// at::Tensor <-> safetensors files, on top of the torch-free reader/writer (common/io/safetensors.h).
#include <torch/torch.h>

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/io/safetensors.h"

namespace mpibert::io {

// torch <-> safetensors dtypes. Unsupported torch types (complex, quantized, ...) -> UsageError.
StDtype st_dtype_of(torch::ScalarType type);
torch::ScalarType scalar_type_of(StDtype dtype);

// Writes the tensors (any device, any strides) atomically. Each tensor is moved to the CPU, made
// contiguous and, when cast_to is set and the tensor is floating point, converted to cast_to, one
// tensor at a time while the file is written (integer and bool tensors keep their type).
void save_tensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                  const std::map<std::string, std::string>& metadata = {},
                  std::optional<torch::ScalarType> cast_to = std::nullopt);

// Reads and validates a file; each tensor is read straight into its own CPU tensor of the stored
// dtype (no second copy of the file in memory).
std::map<std::string, torch::Tensor> load_tensors(const std::string& path);

// Same, also returning the header's __metadata__.
std::map<std::string, torch::Tensor> load_tensors(const std::string& path,
                                                  std::map<std::string, std::string>* metadata);

}  // namespace mpibert::io
