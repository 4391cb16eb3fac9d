// The vectorizable float exp / sigmoid / SiLU of tensor/fastmath.h against double precision.
#include <doctest/doctest.h>

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
