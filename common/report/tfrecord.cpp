#include "common/report/tfrecord.h"

#include <cstdint>

#include "common/report/crc32c.h"

namespace mpibert::report {
namespace {

// Little-endian whatever the host order is: the format fixes it.
void append_le(std::string* out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xFFu));
}

}  // namespace

std::string frame_tfrecord(std::string_view data) {
  std::string out;
  out.reserve(data.size() + 16);
  append_le(&out, data.size(), 8);
  append_le(&out, mask_crc32c(crc32c(out.data(), 8)), 4);
  out.append(data);
  append_le(&out, mask_crc32c(crc32c(data)), 4);
  return out;
}

}  // namespace mpibert::report
