// Broadcasting elementwise kernels and reductions over any set of axes, against naive loops.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "tensor/elementwise.h"
#include "tensor/random.h"
#include "tensor/reduce.h"

using namespace dd;

// Whether two tensors are views of one buffer.
static bool shares(const TensorD& a, const TensorD& b) { return a.storage() == b.storage(); }

namespace {
// Row-major position -> full index.
Shape unravel(int64_t i, const Shape& s) {
  Shape idx(s.size());
  for (int d = static_cast<int>(s.size()) - 1; d >= 0; --d) {
    idx[d] = i % s[d];
    i /= s[d];
  }
  return idx;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const ShapeError& e) {
    return e.what();
  }
  return "(no ShapeError)";
}
}  // namespace

TEST_CASE("zip broadcasts [3,1,5] with [4,5] to [3,4,5]") {
  Rng rng(1);
  TensorD a = rng.normal<double>({3, 1, 5}), b = rng.normal<double>({4, 5});
  // x * 4 is exact, so the kernel and the check round the same way with or without FMA
  TensorD c = zip(a, b, [](double x, double y) { return x * 4 + y; }, "test");
  REQUIRE(c.shape() == Shape{3, 4, 5});
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 4; ++j)
      for (int64_t k = 0; k < 5; ++k) CHECK(c.at({i, j, k}) == a.at({i, 0, k}) * 4 + b.at({j, k}));
  // symmetric in the order of operands
  TensorD d = zip(b, a, [](double y, double x) { return x * 4 + y; }, "test");
  CHECK(d.to_vector() == c.to_vector());
  // a 0-d scalar broadcasts against anything
  TensorD s = zip(a, TensorD::scalar(2.0), [](double x, double y) { return x * y; }, "test");
  CHECK(s.shape() == a.shape());
  CHECK(s.at({2, 0, 4}) == 2 * a.at({2, 0, 4}));
}

TEST_CASE("zip of non-contiguous inputs equals zip of their copies") {
  Rng rng(2);
  TensorD a = rng.normal<double>({6, 5}), b = rng.normal<double>({5, 6});
  TensorD at = a.slice(0, 1, 6, 2);       // [3, 5], stride 12 rows
  TensorD x = b.transpose(0, 1).slice(0, 0, 6, 2);  // [3, 5], transposed strides
  auto f = [](double p, double q) { return p - 2 * q; };
  TensorD strided = zip(at, x, f, "test");
  TensorD copied = zip(at.contiguous(), x.contiguous(), f, "test");
  CHECK(strided.to_vector() == copied.to_vector());
  TensorD m = map(x, [](double v) { return v * v; });
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 5; ++j) CHECK(m.at({i, j}) == x.at({i, j}) * x.at({i, j}));
  TensorD z3 = zip3(at, x, TensorD::scalar(3.0), [](double p, double q, double r) { return (p - q) / r; }, "test");
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 5; ++j) CHECK(z3.at({i, j}) == (at.at({i, j}) - x.at({i, j})) / 3.0);
}

TEST_CASE("shapes that do not broadcast throw a ShapeError naming the op and both shapes") {
  TensorD a({3, 1, 5}), b({4, 6});
  const std::string msg = error_of([&] { zip(a, b, [](double x, double y) { return x + y; }, "my_add"); });
  CHECK(msg.find("my_add") != std::string::npos);
  CHECK(msg.find("[3, 1, 5]") != std::string::npos);
  CHECK(msg.find("[4, 6]") != std::string::npos);
  CHECK(msg.find("expected") != std::string::npos);
  CHECK_THROWS_AS(broadcast_shapes({2, 3}, {3, 2}, "x"), ShapeError);
  CHECK(broadcast_shapes({1}, {}, "x") == Shape{1});
  CHECK(broadcast_shapes({5, 1, 3}, {4, 1}, "x") == Shape{5, 4, 3});
}

TEST_CASE("add_inplace adds a broadcast operand into a contiguous destination") {
  TensorD a = TensorD::ones({2, 3});
  add_inplace(a, TensorD::from({3}, {1, 2, 3}));
  CHECK(a.to_vector() == std::vector<double>{2, 3, 4, 2, 3, 4});
  CHECK_THROWS_AS(add_inplace(a.transpose(0, 1), TensorD::ones({3, 2})), ShapeError);
  CHECK_THROWS_AS(add_inplace(a, TensorD::ones({2})), ShapeError);
}

TEST_CASE_TEMPLATE("sum, mean, max over every set of axes, keepdim or not, match naive loops", T, float, double) {
  const Shape shape{2, 3, 4, 5};
  Rng rng(3);
  Tensor<T> a = rng.normal<T>(shape);
  // also reduce a non-contiguous view of the same values
  Tensor<T> a_perm = a.permute({3, 1, 0, 2}).contiguous().permute({2, 1, 3, 0});
  REQUIRE(a_perm.shape() == shape);
  REQUIRE_FALSE(a_perm.is_contiguous());
  const double tol = std::is_same<T, float>::value ? 1e-5 : 1e-12;
  for (int mask = 0; mask < 16; ++mask) {
    std::vector<int> axes;
    for (int d = 0; d < 4; ++d)
      if (mask & (1 << d)) axes.push_back(d);
    for (bool keepdim : {false, true}) {
      CAPTURE(mask);
      CAPTURE(keepdim);
      // naive: every input element adds into the output element its kept coordinates name
      std::vector<int> all = axes.empty() ? std::vector<int>{0, 1, 2, 3} : axes;
      Shape kept_shape = shape;
      for (int d : all) kept_shape[d] = 1;
      const int64_t n_out = shape_numel(kept_shape), count = a.numel() / n_out;
      std::vector<double> s(n_out, 0.0), m(n_out, -std::numeric_limits<double>::infinity());
      for (int64_t i = 0; i < a.numel(); ++i) {
        Shape idx = unravel(i, shape);
        for (int d : all) idx[d] = 0;
        int64_t o = 0;
        for (int d = 0; d < 4; ++d) o = o * kept_shape[d] + idx[d];
        s[o] += a.data()[i];
        m[o] = std::max(m[o], static_cast<double>(a.data()[i]));
      }
      Shape expect_shape;
      for (int d = 0; d < 4; ++d) {
        bool reduced = std::find(all.begin(), all.end(), d) != all.end();
        if (!reduced) expect_shape.push_back(shape[d]);
        else if (keepdim) expect_shape.push_back(1);
      }
      for (const Tensor<T>* src : {&a, &a_perm}) {
        Tensor<T> su = sum(*src, axes, keepdim), me = mean(*src, axes, keepdim), mx = max(*src, axes, keepdim);
        REQUIRE(su.shape() == expect_shape);
        REQUIRE(me.shape() == expect_shape);
        REQUIRE(mx.shape() == expect_shape);
        for (int64_t o = 0; o < n_out; ++o) {
          CHECK(std::fabs(su.data()[o] - s[o]) <= tol * (1 + std::fabs(s[o])));
          CHECK(std::fabs(me.data()[o] - s[o] / count) <= tol * (1 + std::fabs(s[o] / count)));
          CHECK(mx.data()[o] == static_cast<T>(m[o]));  // max is exact
        }
      }
    }
  }
}

TEST_CASE("negative axes name the same axes; repeated or out-of-range axes throw") {
  Rng rng(4);
  TensorD a = rng.normal<double>({2, 3, 4});
  CHECK(sum(a, {-1, -3}).to_vector() == sum(a, {0, 2}).to_vector());
  CHECK(mean(a, {-2}, true).to_vector() == mean(a, {1}, true).to_vector());
  CHECK(max(a, {2, 0}).to_vector() == max(a, {0, 2}).to_vector());
  CHECK(sum(a).shape() == Shape{});
  CHECK(sum(a, {}, true).shape() == Shape{1, 1, 1});
  CHECK_THROWS_AS(sum(a, {1, -2}), ShapeError);
  CHECK_THROWS_AS(sum(a, {3}), ShapeError);
  CHECK_THROWS_AS(max(TensorD({0, 3})), ShapeError);
}

TEST_CASE("sum_to folds a broadcast gradient back to the operand's shape") {
  Rng rng(5);
  TensorD g = rng.normal<double>({3, 4, 5});
  TensorD s = sum_to(g, {4, 1});
  REQUIRE(s.shape() == Shape{4, 1});
  for (int64_t j = 0; j < 4; ++j) {
    double acc = 0;
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t k = 0; k < 5; ++k) acc += g.at({i, j, k});
    CHECK(s.at({j, 0}) == doctest::Approx(acc).epsilon(1e-12));
  }
  TensorD t = sum_to(g, {3, 1, 5});
  REQUIRE(t.shape() == Shape{3, 1, 5});
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t k = 0; k < 5; ++k) {
      double acc = 0;
      for (int64_t j = 0; j < 4; ++j) acc += g.at({i, j, k});
      CHECK(t.at({i, 0, k}) == doctest::Approx(acc).epsilon(1e-12));
    }
  CHECK(sum_to(g, {}).item() == doctest::Approx(sum(g).item()).epsilon(1e-12));
  CHECK(shares(sum_to(g, {3, 4, 5}), g));  // nothing to fold: no copy
  const std::string msg = error_of([&] { sum_to(g, {2, 5}); });  // [3,4,5] is not a broadcast of [2,5]
  CHECK(msg.find("sum_to") != std::string::npos);
  CHECK(msg.find("[2, 5]") != std::string::npos);
  CHECK(msg.find("[3, 4, 5]") != std::string::npos);
}
