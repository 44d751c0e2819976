#pragma once
// Counter-based random bits shared by the model's dropout kernels: element i of a stream `key` is
// kept when the high 32 bits of splitmix64(key + (i + 1) * golden) are >= p * 2^32. Pure function of
// (key, i): the same masks whatever the thread count or the kernel that applies them.
#include <algorithm>
#include <cstdint>

namespace mpibert::model::rng {

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;

inline uint64_t splitmix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

inline uint32_t bits32(uint64_t key, int64_t index) {
  return static_cast<uint32_t>(splitmix64(key + static_cast<uint64_t>(index + 1) * kGolden) >> 32);
}

inline uint32_t drop_threshold(double p) {
  return static_cast<uint32_t>(std::min(p * 4294967296.0, 4294967295.0));
}

}  // namespace mpibert::model::rng
