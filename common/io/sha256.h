#pragma once
// SHA-256 (FIPS 180-4), used to fingerprint shards and vocabularies so that readers can tell a
// corrupt, truncated or rewritten file from a good one. Streaming: update() any number of times.
#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mpibert::io {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  void update(std::string_view bytes) { update(bytes.data(), bytes.size()); }
  // Finishes the hash; the object must not be updated afterwards.
  std::array<uint8_t, 32> digest();
  // Lower-case hexadecimal digest (64 characters).
  std::string hex_digest();

 private:
  void compress(const uint8_t* block);
  uint32_t state_[8];
  uint8_t buffer_[64];
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
  bool finished_ = false;
};

// Hex SHA-256 of a byte string.
std::string sha256_hex(std::string_view bytes);

// Hex SHA-256 of a file's bytes; throws std::runtime_error naming the file if it cannot be read.
std::string sha256_file(const std::string& path);

}  // namespace mpibert::io
