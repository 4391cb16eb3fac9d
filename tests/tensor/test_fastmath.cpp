// The vectorizable float exp / sigmoid / SiLU of tensor/fastmath.h against double precision.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "tensor/fastmath.h"

using namespace dd;

TEST_CASE("exp_fast(float): relative error below 2e-7 over [-87, 88]; saturates instead of overflowing") {
  double worst = 0, worst_x = 0;
  for (int i = 0; i <= 2000000; ++i) {
    const float x = -87.0f + 175.0f * static_cast<float>(i) / 2000000.0f;
    const double want = std::exp(static_cast<double>(x));
    const double err = std::abs(exp_fast(x) - want) / want;
    if (err > worst) worst = err, worst_x = x;
  }
  CAPTURE(worst_x);
  CHECK(worst < 2e-7);
  CHECK(std::isfinite(exp_fast(1000.0f)));
  CHECK(exp_fast(-1000.0f) >= 0.0f);
  CHECK(exp_fast(-1000.0f) < 1e-37f);
  CHECK(exp_fast(0.0f) == 1.0f);
  CHECK(std::isnan(exp_fast(std::numeric_limits<float>::quiet_NaN())));
}

TEST_CASE("silu_fast and silu_grad_fast (float) agree with the double formulas within 1e-6 absolute + relative") {
  for (int i = 0; i <= 200000; ++i) {
    const double x = -30.0 + 60.0 * i / 200000.0;
    const double s = 1.0 / (1.0 + std::exp(-x));
    const double silu = x * s, grad = s * (1.0 + x * (1.0 - s));
    REQUIRE(std::abs(silu_fast(static_cast<float>(x)) - silu) <= 1e-6 * (1.0 + std::abs(silu)));
    REQUIRE(std::abs(silu_grad_fast(static_cast<float>(x)) - grad) <= 1e-6 * (1.0 + std::abs(grad)));
  }
  // far tails: silu -> 0 from below for x -> -inf, -> x for x -> +inf
  CHECK(std::abs(silu_fast(-200.0f)) < 1e-30f);
  CHECK(silu_fast(200.0f) == 200.0f);
  CHECK(silu_fast(1.0) == doctest::Approx(1.0 / (1.0 + std::exp(-1.0))).epsilon(1e-15));  // double: std::exp
}

#if defined(__AVX2__) && defined(__FMA__)
TEST_CASE("8-lane exp_fast / silu_fast / silu_grad_fast: the scalar versions' accuracy against double; NaN stays NaN") {
  // The same bounds as the scalar tests above: exp relative error below 2e-7 over [-87, 88], silu
  // and silu' within 1e-6 absolute + relative of the double formulas. (Comparing the lanes with
  // the scalar versions bit for bit would test the compiler: at -O1, as in make test-asan, it
  // contracts the scalar formulas into FMAs differently.)
  double worst_exp = 0, worst_silu = 0, worst_grad = 0;
  for (int i = 0; i < 2000000; i += 8) {
    alignas(32) float x[8], e[8];
    for (int l = 0; l < 8; ++l) x[l] = -87.0f + 175.0f * static_cast<float>(i + l) / 2000000.0f;
    _mm256_store_ps(e, exp_fast(_mm256_load_ps(x)));
    for (int l = 0; l < 8; ++l) {
      const double want = std::exp(static_cast<double>(x[l]));
      worst_exp = std::max(worst_exp, std::abs(e[l] - want) / want);
    }
  }
  for (int i = 0; i <= 200000; i += 8) {
    alignas(32) float x[8], s[8], g[8];
    for (int l = 0; l < 8; ++l) x[l] = static_cast<float>(-30.0 + 60.0 * (i + l) / 200000.0);
    const __m256 v = _mm256_load_ps(x);
    _mm256_store_ps(s, silu_fast(v));
    _mm256_store_ps(g, silu_grad_fast(v));
    for (int l = 0; l < 8; ++l) {
      const double xd = x[l], sg = 1.0 / (1.0 + std::exp(-xd));
      const double silu = xd * sg, grad = sg * (1.0 + xd * (1.0 - sg));
      worst_silu = std::max(worst_silu, std::abs(s[l] - silu) / (1.0 + std::abs(silu)));
      worst_grad = std::max(worst_grad, std::abs(g[l] - grad) / (1.0 + std::abs(grad)));
    }
  }
  CHECK(worst_exp < 2e-7);
  CHECK(worst_silu < 1e-6);
  CHECK(worst_grad < 1e-6);
  alignas(32) float out[8];
  _mm256_store_ps(out, silu_fast(_mm256_set1_ps(std::numeric_limits<float>::quiet_NaN())));
  CHECK(std::isnan(out[0]));
  _mm256_store_ps(out, exp_fast(_mm256_set1_ps(std::numeric_limits<float>::quiet_NaN())));
  CHECK(std::isnan(out[0]));
  _mm256_store_ps(out, exp_fast(_mm256_set1_ps(1000.0f)));
  CHECK(std::isfinite(out[0]));
  _mm256_store_ps(out, exp_fast(_mm256_set1_ps(-1000.0f)));
  CHECK(out[0] >= 0.0f);
  CHECK(out[0] < 1e-37f);
  // Far tails, where 1 + e^-x reaches the clamp of exp (the reciprocal estimate of a number near
  // the float maximum): silu -> 0 and silu' -> 0 below, silu -> x and silu' -> 1 above.
  for (float x : {-1000.0f, -200.0f, -88.0f, -60.0f}) {
    _mm256_store_ps(out, silu_fast(_mm256_set1_ps(x)));
    CHECK(std::abs(out[0]) < 1e-20f);
    _mm256_store_ps(out, silu_grad_fast(_mm256_set1_ps(x)));
    CHECK(std::abs(out[0]) < 1e-20f);
  }
  for (float x : {60.0f, 200.0f, 1000.0f}) {
    _mm256_store_ps(out, silu_fast(_mm256_set1_ps(x)));
    CHECK(out[0] == doctest::Approx(x).epsilon(1e-6));
    _mm256_store_ps(out, silu_grad_fast(_mm256_set1_ps(x)));
    CHECK(out[0] == doctest::Approx(1.0f).epsilon(1e-6));
  }
}
#endif
