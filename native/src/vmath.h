// Branch-free float32 exp and erf that GCC vectorises (no libm calls in the loops).
//  exp: Cephes-style range reduction + degree-6 polynomial, about 1 ulp; flushes results below
//       FLT_MIN to 0, overflows to +inf, passes NaN through.
//  erf: odd Taylor polynomial for |x| < 0.5, 1 − erfc(|x|) from the Chebyshev fit of Numerical
//       Recipes (fractional error < 1.2e-7) above; about 2 ulp.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

namespace hn {

static inline float bits_to_float(int32_t b) {
  float f;
  std::memcpy(&f, &b, sizeof f);
  return f;
}

static inline float fast_exp(float x) {
  const float hi = 88.3762626647949f, lo = -87.3365447505531f;
  float xc = x > hi ? hi : (x < lo ? lo : x);
  float n = std::floor(xc * 1.44269504088896341f + 0.5f);
  float r = xc - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  float y = p * (r * r) + r + 1.0f;
  float y2 = y * bits_to_float((static_cast<int32_t>(n) + 127) << 23);
  y2 = x < lo ? 0.0f : y2;
  y2 = x > hi ? INFINITY : y2;
  return x != x ? x : y2;
}

static inline float fast_erf(float x) {
  float z = std::fabs(x);
  // |x| < 0.5: erf(x) = 2/√π · Σ (−1)ⁿ x^(2n+1) / (n!(2n+1)).
  float z2 = x * x;
  float s = -1.0f / 75600.0f;
  s = s * z2 + 1.0f / 9360.0f;
  s = s * z2 - 1.0f / 1320.0f;
  s = s * z2 + 1.0f / 216.0f;
  s = s * z2 - 1.0f / 42.0f;
  s = s * z2 + 1.0f / 10.0f;
  s = s * z2 - 1.0f / 3.0f;
  s = s * z2 + 1.0f;
  float small = 1.12837916709551257f * x * s;
  // |x| ≥ 0.5: erfc(z) = t·exp(−z² + P(t)), t = 1/(1 + z/2).
  float t = 1.0f / (1.0f + 0.5f * z);
  float p = 0.17087277f;
  p = p * t - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  float erfc = t * fast_exp(p - z * z);
  float large = 1.0f - erfc;
  large = x < 0 ? -large : large;
  float r = z < 0.5f ? small : large;
  return x != x ? x : r;
}

static inline float fast_sigmoid(float x) { return 1.0f / (1.0f + fast_exp(-x)); }

constexpr float kSqrtHalf = 0.70710678118654752f;
constexpr float kInvSqrt2Pi = 0.39894228040143268f;

/** Exact GELU, x·½(1 + erf(x/√2)), evaluated as the composed ops do. */
static inline float gelu(float x) { return x * 0.5f * (1.0f + fast_erf(x * kSqrtHalf)); }

/** d GELU/dx = Φ(x) + x·φ(x). */
static inline float gelu_grad(float x) {
  float cdf = (1.0f + fast_erf(x * kSqrtHalf)) * 0.5f;
  float pdf = fast_exp(x * x * -0.5f) * kInvSqrt2Pi;
  return cdf + x * pdf;
}

}  // namespace hn
