// The image filters of the metric's calibration (tensor/image_filter.h) against values by hand.
#include <doctest/doctest.h>

#include <cmath>

#include "tensor/image_filter.h"

using namespace dd;

TEST_CASE("take, shift: rows picked in order; content moved dy down, dx right, background -1 behind it") {
  Tensor<float> imgs({3, 1, 2, 2});
  for (int64_t i = 0; i < imgs.numel(); ++i) imgs.data()[i] = 0.1f * static_cast<float>(i);
  const Tensor<float> picked = take(imgs, {2, 0});
  REQUIRE(picked.size(0) == 2);
  CHECK(picked.data()[0] == doctest::Approx(0.8));
  CHECK(picked.data()[4] == doctest::Approx(0.0));
  Tensor<float> one = Tensor<float>::full({1, 1, 3, 3}, -1.f);
  one.data()[0] = 0.5f;  // (y 0, x 0)
  const Tensor<float> moved = shift(one, 1, 2);
  for (int64_t i = 0; i < 9; ++i) CHECK(moved.data()[i] == (i == 1 * 3 + 2 ? 0.5f : -1.f));
}

TEST_CASE("gaussian_blur: a constant image stays constant, a point spreads as the normalized kernel") {
  const Tensor<float> flat = Tensor<float>::full({1, 1, 9, 9}, 0.25f);
  const Tensor<float> b = gaussian_blur(flat, 1.0);
  for (int64_t i = 0; i < b.numel(); ++i) CHECK(b.data()[i] == doctest::Approx(0.25).epsilon(1e-6));
  Tensor<float> dot = Tensor<float>::full({1, 1, 9, 9}, 0.f);
  dot.data()[4 * 9 + 4] = 1.f;
  const Tensor<float> s = gaussian_blur(dot, 1.0);
  // separable kernel exp(-i^2/2) / sum over i = -3..3: the centre gets k0^2, a neighbour k0 k1
  double total = 0;
  for (int i = -3; i <= 3; ++i) total += std::exp(-0.5 * i * i);
  const double k0 = 1 / total, k1 = std::exp(-0.5) / total;
  CHECK(s.data()[4 * 9 + 4] == doctest::Approx(k0 * k0).epsilon(1e-6));
  CHECK(s.data()[4 * 9 + 5] == doctest::Approx(k0 * k1).epsilon(1e-6));
  CHECK(s.data()[0] == doctest::Approx(0.0));  // 4 pixels away: beyond the radius ceil(3 sigma) = 3
}

TEST_CASE("add_noise and the noise images stay in [-1, 1]") {
  Rng rng(5);
  const Tensor<float> x = add_noise(Tensor<float>::full({2, 1, 28, 28}, 0.9f), 0.5, rng);
  const Tensor<float> g = gaussian_noise_images(2, rng), u = uniform_noise_images(2, rng);
  int moved = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    CHECK((x.data()[i] >= -1.f && x.data()[i] <= 1.f));
    CHECK((g.data()[i] >= -1.f && g.data()[i] <= 1.f));
    CHECK((u.data()[i] >= -1.f && u.data()[i] <= 1.f));
    moved += x.data()[i] != 0.9f;
  }
  CHECK(moved > x.numel() / 2);
}
