#pragma once
// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum TFRecord framing uses.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace mpibert::report {

// CRC-32C of `size` bytes, continuing from `crc` (the result for the bytes before; 0 to start), so
// crc32c(a + b) == crc32c(b.data(), b.size(), crc32c(a)).
uint32_t crc32c(const void* data, std::size_t size, uint32_t crc = 0);
inline uint32_t crc32c(std::string_view bytes) {
  return crc32c(bytes.data(), bytes.size());
}

// TFRecord's masked form: a CRC stored next to the data it covers must not look like a CRC of that
// data again, so it is rotated right by 15 bits and offset by a constant.
inline uint32_t mask_crc32c(uint32_t crc) {
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

}  // namespace mpibert::report
