#pragma once
// Elementwise math written so that GCC vectorises the loops that call it (the build has no -ffast-math
// and no -march, so libm's expf would stay scalar). Used inside target_clones kernels.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace mpibert::model::fast_math {

// exp as Cephes' expf (range reduction by ln 2, degree-5 polynomial; about 1 ulp) for x <= 88 (the
// callers pass x - max or -x^2, i.e. x <= 0); inputs below -87.3 give exactly 0 (masked keys).
inline float exp(float x) {
  // Written for GCC 12's if-conversion: a one-sided clamp, rint by the 1.5 * 2^23 trick instead of
  // std::floor, and the selects where they are (other forms leave branches and no vectorisation).
  const bool under = x < -87.3365447504f;
  x = x < -87.3365447504f ? -87.3365447504f : x;
  const float fx = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // n = rint(x / ln 2)
  x = x - fx * 0.693359375f;
  x = x - fx * -2.12194440e-4f;
  const float z = x * x;
  float y = 1.9875691500e-4f;
  y = y * x + 1.3981999507e-3f;
  y = y * x + 8.3334519073e-3f;
  y = y * x + 4.1665795894e-2f;
  y = y * x + 1.6666665459e-1f;
  y = y * x + 5.0000001201e-1f;
  y = y * z + x + 1.0f;
  const int32_t bits = (static_cast<int32_t>(fx) + 127) << 23;
  float pow2;
  std::memcpy(&pow2, &bits, sizeof pow2);
  return under ? 0.0f : y * pow2;
}

// 1 + erf(x), from Abramowitz and Stegun 7.1.26 (absolute error <= 1.5e-7): the form GELU needs,
// 0.5 * x * (1 + erf(x / sqrt 2)), where the 1 dominates; branch-free so that its loops vectorise.
inline float one_plus_erf(float x) {
  const float a = x < 0.0f ? -x : x;
  const float t = 1.0f / (1.0f + 0.3275911f * a);
  const float poly =
      t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
  const float erfc_a = poly * exp(-a * a);  // erfc(|x|)
  return x < 0.0f ? erfc_a : 2.0f - erfc_a;
}

// Reductions over 16 independent lanes (combined at the end): GCC vectorises these without
// -ffast-math, which a single running float max/sum would need. The order is fixed by n alone.
constexpr int kLanes = 16;

inline float max_lanes(const float* x, int64_t n) {
  if (n < kLanes) {
    float m = x[0];
    for (int64_t j = 1; j < n; ++j) m = m < x[j] ? x[j] : m;
    return m;
  }
  float acc[kLanes];
  for (int l = 0; l < kLanes; ++l) acc[l] = x[l];
  int64_t j = kLanes;
  for (; j + kLanes <= n; j += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] = acc[l] < x[j + l] ? x[j + l] : acc[l];
  float m = acc[0];
  for (int l = 1; l < kLanes; ++l) m = m < acc[l] ? acc[l] : m;
  for (; j < n; ++j) m = m < x[j] ? x[j] : m;
  return m;
}

inline float sum_lanes(const float* x, int64_t n) {
  float acc[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += x[j + l];
  float s = 0.0f;
  for (int l = 0; l < kLanes; ++l) s += acc[l];
  for (; j < n; ++j) s += x[j];
  return s;
}

inline float dot_lanes(const float* a, const float* b, int64_t n) {
  float acc[kLanes] = {};
  int64_t j = 0;
  for (; j + kLanes <= n; j += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += a[j + l] * b[j + l];
  float s = 0.0f;
  for (int l = 0; l < kLanes; ++l) s += acc[l];
  for (; j < n; ++j) s += a[j] * b[j];
  return s;
}

inline float bf16_to_float(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// Round to nearest even, as c10::BFloat16 (finite inputs).
inline uint16_t float_to_bf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  bits += 0x7FFFu + ((bits >> 16) & 1u);
  return static_cast<uint16_t>(bits >> 16);
}

}  // namespace mpibert::model::fast_math
