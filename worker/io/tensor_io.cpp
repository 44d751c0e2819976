#include "worker/io/tensor_io.h"

#include <fstream>
#include <stdexcept>

#include "common/error.h"

// safetensors stores little-endian bytes; we hand torch's memory over as is.
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "tensor_io assumes a little-endian host"
#endif

namespace mpibert::io {

StDtype st_dtype_of(torch::ScalarType type) {
  switch (type) {
    case torch::kFloat64:
      return StDtype::F64;
    case torch::kFloat32:
      return StDtype::F32;
    case torch::kFloat16:
      return StDtype::F16;
    case torch::kBFloat16:
      return StDtype::BF16;
    case torch::kInt64:
      return StDtype::I64;
    case torch::kInt32:
      return StDtype::I32;
    case torch::kInt16:
      return StDtype::I16;
    case torch::kInt8:
      return StDtype::I8;
    case torch::kUInt8:
      return StDtype::U8;
    case torch::kBool:
      return StDtype::BOOL;
    default:
      throw UsageError(std::string("safetensors cannot store torch dtype ") + c10::toString(type));
  }
}

torch::ScalarType scalar_type_of(StDtype dtype) {
  switch (dtype) {
    case StDtype::F64:
      return torch::kFloat64;
    case StDtype::F32:
      return torch::kFloat32;
    case StDtype::F16:
      return torch::kFloat16;
    case StDtype::BF16:
      return torch::kBFloat16;
    case StDtype::I64:
      return torch::kInt64;
    case StDtype::I32:
      return torch::kInt32;
    case StDtype::I16:
      return torch::kInt16;
    case StDtype::I8:
      return torch::kInt8;
    case StDtype::U8:
      return torch::kUInt8;
    case StDtype::BOOL:
      return torch::kBool;
  }
  throw std::logic_error("scalar_type_of: unknown StDtype");
}

void save_tensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                  const std::map<std::string, std::string>& metadata, std::optional<torch::ScalarType> cast_to) {
  if (cast_to && !c10::isFloatingType(*cast_to)) {
    throw UsageError(std::string("save_tensors: cast_to must be a floating type, got ") + c10::toString(*cast_to));
  }
  std::vector<std::pair<std::string, StTensorSource>> sources;
  sources.reserve(tensors.size());
  for (const auto& [name, tensor] : tensors) {
    if (!tensor.defined()) throw std::invalid_argument("save_tensors: tensor '" + name + "' is undefined");
    const bool cast = cast_to && c10::isFloatingType(tensor.scalar_type());
    const torch::ScalarType stored = cast ? *cast_to : tensor.scalar_type();
    StTensorSource source;
    source.dtype = st_dtype_of(stored);
    source.shape = tensor.sizes().vec();
    const torch::Tensor* t = &tensor;
    source.write = [t, stored](const StByteSink& sink) {
      // Converted only now, so at most one converted copy exists at a time.
      torch::NoGradGuard no_grad;
      torch::Tensor cpu = t->detach().to(torch::kCPU, stored).contiguous();
      if (cpu.numel() > 0) sink(cpu.data_ptr(), cpu.nbytes());
    };
    sources.emplace_back(name, std::move(source));
  }
  write_safetensors(path, metadata, sources);
}

std::map<std::string, torch::Tensor> load_tensors(const std::string& path,
                                                  std::map<std::string, std::string>* metadata) {
  const SafetensorsHeader header = read_safetensors_header(path);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("safetensors file " + path + ": cannot open it");
  std::map<std::string, torch::Tensor> out;
  const std::uint64_t base = 8 + header.header_bytes;
  for (const auto& [name, info] : header.tensors) {
    torch::Tensor t = torch::empty(info.shape, torch::TensorOptions().dtype(scalar_type_of(info.dtype)));
    const std::uint64_t bytes = info.end - info.begin;
    if (bytes != t.nbytes()) throw std::logic_error("load_tensors: byte count mismatch for '" + name + "'");
    if (bytes > 0) {
      in.seekg(static_cast<std::streamoff>(base + info.begin));
      if (!in.read(static_cast<char*>(t.data_ptr()), static_cast<std::streamsize>(bytes))) {
        throw std::runtime_error("safetensors file " + path + ": reading tensor '" + name + "' failed (file changed?)");
      }
    }
    out.emplace(name, std::move(t));
  }
  if (metadata) *metadata = header.metadata;
  return out;
}

std::map<std::string, torch::Tensor> load_tensors(const std::string& path) {
  return load_tensors(path, nullptr);
}

}  // namespace mpibert::io
