#include "common/io/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <stdexcept>
#include <tuple>

#include "common/error.h"
#include "common/io/atomic_file.h"

namespace mpibert::io {
namespace {

using json = nlohmann::json;

struct DtypeRow {
  StDtype dtype;
  const char* name;
  std::size_t size;
  int alignment_rank;  // position in the reference implementation's Dtype enum (increasing alignment)
};

// alignment_rank follows huggingface/safetensors' `enum Dtype` (BOOL, U8, I8, F8_E5M2, F8_E4M3, I16,
// U16, F16, BF16, I32, U32, F32, F64, I64, U64): its writer orders tensors by descending rank.
constexpr DtypeRow kDtypes[] = {
    {StDtype::F64, "F64", 8, 12},  {StDtype::F32, "F32", 4, 11}, {StDtype::F16, "F16", 2, 7},
    {StDtype::BF16, "BF16", 2, 8}, {StDtype::I64, "I64", 8, 13}, {StDtype::I32, "I32", 4, 9},
    {StDtype::I16, "I16", 2, 5},   {StDtype::I8, "I8", 1, 2},    {StDtype::U8, "U8", 1, 1},
    {StDtype::BOOL, "BOOL", 1, 0},
};

// Valid in the format, but libtorch 1.13 has no matching scalar type.
const std::set<std::string> kUnsupportedDtypes = {"U16", "U32", "U64", "F8_E5M2", "F8_E4M3"};

const DtypeRow& row(StDtype dtype) {
  for (const auto& r : kDtypes) {
    if (r.dtype == dtype) return r;
  }
  throw std::logic_error("safetensors: unknown StDtype value");
}

std::string supported_dtype_list() {
  std::string out;
  for (const auto& r : kDtypes) {
    if (!out.empty()) out += ", ";
    out += r.name;
  }
  return out;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) out += ", ";
    out += std::to_string(shape[i]);
  }
  return out + "]";
}

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw UsageError("safetensors file " + path + ": " + what);
}

[[noreturn]] void fail_tensor(const std::string& path, const std::string& name, const std::string& what) {
  fail(path, "tensor '" + name + "': " + what);
}

// numel * dtype size, or false on overflow (a hostile header must not wrap around).
bool byte_size(const std::vector<int64_t>& shape, std::size_t elem, std::uint64_t* out) {
  std::uint64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return false;
    if (__builtin_mul_overflow(n, static_cast<std::uint64_t>(d), &n)) return false;
  }
  return !__builtin_mul_overflow(n, static_cast<std::uint64_t>(elem), out);
}

std::string json_kind(const json& v) {
  if (v.is_number_float()) return "a float";
  if (v.is_number()) return "an integer";
  return std::string("a ") + v.type_name();
}

// Parses the header JSON, rejecting duplicate keys at any depth (nlohmann would keep the last one).
json parse_header_json(const std::string& path, const std::string& text) {
  std::vector<std::set<std::string>> keys_at_depth;
  std::vector<std::string> last_key;  // the key whose value is being parsed, per depth
  std::string duplicate, duplicate_parent;
  auto callback = [&](int /*depth*/, json::parse_event_t event, json& parsed) {
    switch (event) {
      case json::parse_event_t::object_start:
        keys_at_depth.emplace_back();
        break;
      case json::parse_event_t::object_end:
        if (!keys_at_depth.empty()) keys_at_depth.pop_back();
        if (last_key.size() > keys_at_depth.size()) last_key.resize(keys_at_depth.size());
        break;
      case json::parse_event_t::key: {
        const std::string key = parsed.get<std::string>();
        if (!keys_at_depth.empty()) {
          if (!keys_at_depth.back().insert(key).second && duplicate.empty()) {
            duplicate = key;
            duplicate_parent = keys_at_depth.size() >= 2 && last_key.size() >= keys_at_depth.size() - 1
                                   ? last_key[keys_at_depth.size() - 2]
                                   : "";
          }
          last_key.resize(keys_at_depth.size());
          last_key.back() = key;
        }
        break;
      }
      default:
        break;
    }
    return true;
  };
  json header;
  try {
    header = json::parse(text, callback, /*allow_exceptions=*/true);
  } catch (const json::exception& e) {
    fail(path, std::string("header is not valid UTF-8 JSON: ") + e.what());
  }
  if (!duplicate.empty()) {
    if (duplicate_parent.empty()) fail(path, "duplicate tensor name '" + duplicate + "' in the header");
    fail(path, "duplicate key '" + duplicate + "' inside '" + duplicate_parent + "'");
  }
  return header;
}

StTensorInfo parse_entry(const std::string& path, const std::string& name, const json& entry) {
  if (!entry.is_object()) {
    fail_tensor(path, name, "entry must be an object with dtype, shape and data_offsets, found " + json_kind(entry));
  }
  for (const auto& item : entry.items()) {
    if (item.key() != "dtype" && item.key() != "shape" && item.key() != "data_offsets") {
      fail_tensor(path, name, "unknown key '" + item.key() + "' (expected exactly dtype, shape, data_offsets)");
    }
  }
  for (const char* key : {"dtype", "shape", "data_offsets"}) {
    if (!entry.contains(key)) fail_tensor(path, name, std::string("missing key '") + key + "'");
  }
  StTensorInfo info;
  const json& dtype = entry.at("dtype");
  if (!dtype.is_string()) fail_tensor(path, name, "dtype must be a string, found " + json_kind(dtype));
  const std::string dtype_name = dtype.get<std::string>();
  if (!parse_st_dtype(dtype_name, &info.dtype)) {
    if (kUnsupportedDtypes.count(dtype_name)) {
      fail_tensor(path, name,
                  "dtype " + dtype_name +
                      " is valid safetensors but not supported by mpibert (supported: " + supported_dtype_list() + ")");
    }
    fail_tensor(path, name, "unknown dtype '" + dtype_name + "' (supported: " + supported_dtype_list() + ")");
  }
  const json& shape = entry.at("shape");
  if (!shape.is_array()) fail_tensor(path, name, "shape must be an array of integers, found " + json_kind(shape));
  for (const json& d : shape) {
    if (!d.is_number_integer())
      fail_tensor(path, name, "shape holds " + json_kind(d) + "; dimensions must be integers");
    if (d.is_number_unsigned()
            ? d.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<int64_t>::max())
            : d.get<int64_t>() < 0) {
      fail_tensor(path, name, "shape dimension " + d.dump() + " is out of range (must be 0..2^63-1)");
    }
    info.shape.push_back(d.get<int64_t>());
  }
  const json& offsets = entry.at("data_offsets");
  if (!offsets.is_array() || offsets.size() != 2) {
    fail_tensor(path, name, "data_offsets must be an array [begin, end], found " + offsets.dump());
  }
  for (const json& o : offsets) {
    if (!o.is_number_integer() || (!o.is_number_unsigned() && o.get<int64_t>() < 0)) {
      fail_tensor(path, name, "data_offsets " + offsets.dump() + " must be two non-negative integers");
    }
  }
  info.begin = offsets[0].get<std::uint64_t>();
  info.end = offsets[1].get<std::uint64_t>();
  if (info.end < info.begin) fail_tensor(path, name, "data_offsets " + offsets.dump() + " end before they begin");
  std::uint64_t need = 0;
  if (!byte_size(info.shape, row(info.dtype).size, &need)) {
    fail_tensor(path, name, "shape " + shape_text(info.shape) + " overflows the byte count");
  }
  if (info.end - info.begin != need) {
    fail_tensor(path, name,
                "data_offsets " + offsets.dump() + " span " + std::to_string(info.end - info.begin) + " bytes but " +
                    dtype_name + " x shape " + shape_text(info.shape) + " needs " + std::to_string(need));
  }
  return info;
}

std::uint64_t read_le_u64(const unsigned char* b) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | b[i];
  return v;
}

void write_le_u64(std::uint64_t v, char* out) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

std::ifstream open_for_read(const std::string& path, std::uint64_t* size) {
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) throw UsageError("safetensors file " + path + ": no such file");
  if (!std::filesystem::is_regular_file(status)) throw UsageError("safetensors file " + path + ": not a regular file");
  *size = std::filesystem::file_size(path, ec);
  if (ec) throw std::runtime_error("safetensors file " + path + ": cannot get its size: " + ec.message());
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("safetensors file " + path + ": cannot open: " + std::strerror(errno));
  return in;
}

SafetensorsHeader read_header_from(std::ifstream& in, std::uint64_t file_size, const std::string& path) {
  if (file_size < 8)
    fail(path, "file is " + std::to_string(file_size) + " bytes, shorter than the 8-byte header length");
  unsigned char len_bytes[8];
  if (!in.read(reinterpret_cast<char*>(len_bytes), 8))
    throw std::runtime_error("safetensors file " + path + ": read failed");
  SafetensorsHeader header;
  header.header_bytes = read_le_u64(len_bytes);
  if (header.header_bytes > kMaxSafetensorsHeaderBytes) {
    fail(path, "header length " + std::to_string(header.header_bytes) + " exceeds the limit of " +
                   std::to_string(kMaxSafetensorsHeaderBytes) + " bytes");
  }
  if (header.header_bytes > file_size - 8) {
    fail(path, "header length " + std::to_string(header.header_bytes) + " exceeds the " +
                   std::to_string(file_size - 8) + " bytes that follow it (truncated file?)");
  }
  header.buffer_bytes = file_size - 8 - header.header_bytes;
  std::string text(header.header_bytes, '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(text.size()))) {
    throw std::runtime_error("safetensors file " + path + ": read of the header failed");
  }
  if (text.empty() || text[0] != '{') fail(path, "header does not start with '{'");
  const json root = parse_header_json(path, text);
  if (!root.is_object()) fail(path, "header must be a JSON object, found " + json_kind(root));

  for (const auto& item : root.items()) {
    if (item.key() == "__metadata__") {
      if (!item.value().is_object())
        fail(path, "__metadata__ must be an object of strings, found " + json_kind(item.value()));
      for (const auto& m : item.value().items()) {
        if (!m.value().is_string()) {
          fail(path, "__metadata__ key '" + m.key() + "' holds " + json_kind(m.value()) + "; values must be strings");
        }
        header.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    header.tensors[item.key()] = parse_entry(path, item.key(), item.value());
  }

  // Every offset within the buffer, then the tensors in offset order must tile it exactly.
  std::vector<std::pair<std::string, const StTensorInfo*>> order;
  for (const auto& [name, info] : header.tensors) {
    if (info.end > header.buffer_bytes) {
      fail_tensor(path, name,
                  "data_offsets [" + std::to_string(info.begin) + ", " + std::to_string(info.end) +
                      "] run past the end of the " + std::to_string(header.buffer_bytes) + "-byte buffer");
    }
    order.emplace_back(name, &info);
  }
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
    return std::tie(a.second->begin, a.second->end, a.first) < std::tie(b.second->begin, b.second->end, b.first);
  });
  std::uint64_t expected = 0;
  std::string previous;
  for (const auto& [name, info] : order) {
    if (info->begin < expected) {
      fail_tensor(path, name,
                  "data_offsets [" + std::to_string(info->begin) + ", " + std::to_string(info->end) +
                      "] overlap tensor '" + previous + "' which ends at " + std::to_string(expected));
    }
    if (info->begin > expected) {
      fail_tensor(path, name,
                  "data_offsets begin at " + std::to_string(info->begin) + " but the previous tensor" +
                      (previous.empty() ? std::string() : " '" + previous + "'") + " ends at " +
                      std::to_string(expected) + ": bytes " + std::to_string(expected) + ".." +
                      std::to_string(info->begin) + " of the buffer belong to no tensor");
    }
    expected = info->end;
    previous = name;
  }
  if (expected != header.buffer_bytes) {
    fail(path, "the tensors cover " + std::to_string(expected) + " bytes but the buffer holds " +
                   std::to_string(header.buffer_bytes) + " (file size - 8 - header length): " +
                   std::to_string(header.buffer_bytes - expected) + " trailing bytes belong to no tensor");
  }
  return header;
}

// A temporary file beside the target, written through a buffer; commit() fsyncs and renames it over
// the target. Destroyed without commit (an exception), it removes the temporary file.
class StreamingFile {
 public:
  explicit StreamingFile(const std::string& path) : path_(path), tmp_(temporary_path_for(path)) {
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) throw std::runtime_error(path_ + ": cannot create " + tmp_ + ": " + std::strerror(errno));
    buffer_.reserve(kBufferBytes);
  }
  StreamingFile(const StreamingFile&) = delete;
  StreamingFile& operator=(const StreamingFile&) = delete;
  ~StreamingFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!committed_) ::unlink(tmp_.c_str());
  }

  void write(const char* data, std::size_t bytes) {
    if (buffer_.size() + bytes > kBufferBytes) flush();
    if (bytes >= kBufferBytes) {
      write_all(data, bytes);
    } else {
      buffer_.insert(buffer_.end(), data, data + bytes);
    }
  }

  void commit() {
    flush();
    if (::fsync(fd_) != 0) throw std::runtime_error(path_ + ": fsync failed: " + std::strerror(errno));
    const int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) throw std::runtime_error(path_ + ": close failed: " + std::strerror(errno));
    rename_durably(tmp_, path_);
    committed_ = true;
  }

 private:
  static constexpr std::size_t kBufferBytes = 4 << 20;

  void flush() {
    write_all(buffer_.data(), buffer_.size());
    buffer_.clear();
  }

  void write_all(const char* p, std::size_t left) {
    while (left > 0) {
      const ssize_t n = ::write(fd_, p, left);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw std::runtime_error(path_ + ": write to " + tmp_ + " failed: " + std::strerror(errno));
      }
      p += n;
      left -= static_cast<std::size_t>(n);
    }
  }

  std::string path_, tmp_;
  int fd_ = -1;
  bool committed_ = false;
  std::vector<char> buffer_;
};

}  // namespace

const char* st_dtype_name(StDtype dtype) {
  return row(dtype).name;
}
std::size_t st_dtype_size(StDtype dtype) {
  return row(dtype).size;
}

bool parse_st_dtype(const std::string& name, StDtype* out) {
  for (const auto& r : kDtypes) {
    if (name == r.name) {
      *out = r.dtype;
      return true;
    }
  }
  return false;
}

int64_t StTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

SafetensorsHeader read_safetensors_header(const std::string& path) {
  std::uint64_t size = 0;
  std::ifstream in = open_for_read(path, &size);
  return read_header_from(in, size, path);
}

SafetensorsFile read_safetensors(const std::string& path) {
  std::uint64_t size = 0;
  std::ifstream in = open_for_read(path, &size);
  const SafetensorsHeader header = read_header_from(in, size, path);
  SafetensorsFile file;
  file.metadata = header.metadata;
  const std::uint64_t base = 8 + header.header_bytes;
  for (const auto& [name, info] : header.tensors) {
    StTensor& t = file.tensors[name];
    t.dtype = info.dtype;
    t.shape = info.shape;
    t.data.resize(info.end - info.begin);
    in.seekg(static_cast<std::streamoff>(base + info.begin));
    if (!t.data.empty() && !in.read(t.data.data(), static_cast<std::streamsize>(t.data.size()))) {
      throw std::runtime_error("safetensors file " + path + ": reading tensor '" + name + "' failed (file changed?)");
    }
  }
  return file;
}

void write_safetensors(const std::string& path, const std::map<std::string, std::string>& metadata,
                       const std::vector<std::pair<std::string, StTensorSource>>& tensors) {
  struct Planned {
    const std::string* name;
    const StTensorSource* source;
    std::uint64_t bytes;
  };
  std::vector<Planned> plan;
  std::set<std::string> seen;
  for (const auto& [name, source] : tensors) {
    if (name == "__metadata__") throw UsageError("safetensors file " + path + ": '__metadata__' cannot name a tensor");
    if (!seen.insert(name).second) throw UsageError("safetensors file " + path + ": tensor '" + name + "' given twice");
    std::uint64_t bytes = 0;
    if (!byte_size(source.shape, st_dtype_size(source.dtype), &bytes)) {
      throw UsageError("safetensors file " + path + ": tensor '" + name + "' has an invalid shape " +
                       shape_text(source.shape));
    }
    if (!source.write) throw std::logic_error("safetensors writer: tensor '" + name + "' has no data source");
    plan.push_back({&name, &source, bytes});
  }
  // The reference writer's order: descending dtype alignment, then name.
  std::sort(plan.begin(), plan.end(), [](const Planned& a, const Planned& b) {
    const int ra = row(a.source->dtype).alignment_rank, rb = row(b.source->dtype).alignment_rank;
    if (ra != rb) return ra > rb;
    return *a.name < *b.name;
  });

  // Compact JSON in the reference key order: __metadata__ first, then dtype, shape, data_offsets.
  std::string header = "{";
  try {
    if (!metadata.empty()) header += "\"__metadata__\":" + json(metadata).dump();
    std::uint64_t offset = 0;
    for (const Planned& p : plan) {
      if (header.size() > 1) header += ",";
      header += json(*p.name).dump() + ":{\"dtype\":\"" + st_dtype_name(p.source->dtype) + "\",\"shape\":[";
      for (std::size_t i = 0; i < p.source->shape.size(); ++i) {
        if (i) header += ",";
        header += std::to_string(p.source->shape[i]);
      }
      header += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + p.bytes) + "]}";
      offset += p.bytes;
    }
  } catch (const json::exception& e) {
    throw UsageError("safetensors file " + path + ": a tensor name or metadata string is not valid UTF-8: " + e.what());
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');  // the buffer starts 8-byte aligned

  // Streams tensor by tensor into a temporary file beside `path`, then fsync + rename (atomic_file.h):
  // a 1.3 GB model never has to sit in memory twice.
  StreamingFile out(path);
  char len[8];
  write_le_u64(header.size(), len);
  out.write(len, 8);
  out.write(header.data(), header.size());
  for (const Planned& p : plan) {
    std::uint64_t written = 0;
    const StByteSink sink = [&](const void* data, std::size_t bytes) {
      if (written + bytes > p.bytes) {
        throw std::logic_error("safetensors writer: tensor '" + *p.name + "' produced more than its " +
                               std::to_string(p.bytes) + " bytes");
      }
      out.write(static_cast<const char*>(data), bytes);
      written += bytes;
    };
    p.source->write(sink);
    if (written != p.bytes) {
      throw std::logic_error("safetensors writer: tensor '" + *p.name + "' produced " + std::to_string(written) +
                             " bytes, expected " + std::to_string(p.bytes));
    }
  }
  out.commit();
}

void write_safetensors(const std::string& path, const SafetensorsFile& file) {
  std::vector<std::pair<std::string, StTensorSource>> sources;
  sources.reserve(file.tensors.size());
  for (const auto& [name, tensor] : file.tensors) {
    StTensorSource source;
    source.dtype = tensor.dtype;
    source.shape = tensor.shape;
    const std::string* data = &tensor.data;
    source.write = [data](const StByteSink& sink) { sink(data->data(), data->size()); };
    sources.emplace_back(name, std::move(source));
  }
  write_safetensors(path, file.metadata, sources);
}

}  // namespace mpibert::io
