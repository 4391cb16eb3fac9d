// exp and sigmoid that the compiler can vectorize inside `omp simd` loops. float uses a
// branch-free Cody-Waite range reduction and a degree-6 polynomial (the Cephes expf coefficients;
// relative error below 2e-7 on [-87, 88], measured in tests/tensor); double calls std::exp, so float64
// gradient checks see the exact function.
#pragma once

#include <cmath>
#include <cstdint>

namespace dd {

// e^x = 2^k e^r with k = round(x / ln 2), r = x - k ln 2 in [-ln2/2, ln2/2]; ln 2 is split in two
// parts (0.693359375 is exact in float) so r keeps its precision.
inline float exp_fast(float x) {
  x = x < -87.3f ? -87.3f : (x > 88.3f ? 88.3f : x);  // keeps 2^k a normal float (NaN stays NaN)
  // round to nearest by adding and subtracting 1.5 * 2^23 (vectorizes; std::floor does not here)
  const float k = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  const float r = x - k * 0.693359375f + k * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float er = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(k) + 127) << 23;
  return er * __builtin_bit_cast(float, bits);
}
inline double exp_fast(double x) { return std::exp(x); }

template <class T>
inline T sigmoid_fast(T x) {
  return T(1) / (T(1) + exp_fast(-x));
}

// silu(x) = x sigmoid(x);  silu'(x) = s (1 + x (1 - s)) with s = sigmoid(x)
template <class T>
inline T silu_fast(T x) {
  return x * sigmoid_fast(x);
}
template <class T>
inline T silu_grad_fast(T x) {
  const T s = sigmoid_fast(x);
  return s * (T(1) + x * (T(1) - s));
}

}  // namespace dd
