// Softmax and log-softmax along any axis: stable for large inputs, equal to the shifted formula.
#include <doctest/doctest.h>

#include <cmath>

#include "tensor/random.h"
#include "tensor/softmax.h"

using namespace dd;

namespace {
// The textbook formula on inputs shifted by their line maximum, in double: y_i = exp(x_i - m) / z.
template <class T>
void shifted_reference(const Tensor<T>& x, int axis, Tensor<double>* soft, Tensor<double>* logsoft) {
  const Shape& s = x.shape();
  *soft = Tensor<double>(s);
  *logsoft = Tensor<double>(s);
  Tensor<T> xm = x.transpose(axis, -1).contiguous();  // lines along the last axis
  Tensor<double> sm(xm.shape()), lsm(xm.shape());
  const int64_t n = xm.shape().back(), lines = xm.numel() / n;
  for (int64_t l = 0; l < lines; ++l) {
    const T* p = xm.data() + l * n;
    double m = p[0];
    for (int64_t j = 1; j < n; ++j) m = std::max(m, static_cast<double>(p[j]));
    double z = 0;
    for (int64_t j = 0; j < n; ++j) z += std::exp(static_cast<double>(p[j]) - m);
    for (int64_t j = 0; j < n; ++j) {
      sm.data()[l * n + j] = std::exp(static_cast<double>(p[j]) - m) / z;
      lsm.data()[l * n + j] = (static_cast<double>(p[j]) - m) - std::log(z);
    }
  }
  soft->copy_from(sm.transpose(axis, -1));
  logsoft->copy_from(lsm.transpose(axis, -1));
}
}  // namespace

TEST_CASE_TEMPLATE("softmax and log_softmax around 1e4 are finite, sum to 1, and match the shifted formula", T,
                   float, double) {
  Rng rng(21);
  const Shape shape{3, 5, 4};
  // 1e4 + N(0, 3): exp(x) alone would overflow in both float and double
  Tensor<T> x = rng.normal<T>(shape, T(1e4), T(3));
  // float: x itself carries an ulp of ~1e-3 at 1e4, but x - max is exact, so only the rounding of
  // the result remains
  const double tol = std::is_same<T, float>::value ? 2e-6 : 1e-13;
  for (int axis : {0, 1, 2, -1}) {
    CAPTURE(axis);
    Tensor<T> y = softmax(x, axis), ly = log_softmax(x, axis);
    Tensor<double> ref, lref;
    shifted_reference(x, axis, &ref, &lref);
    for (int64_t i = 0; i < x.numel(); ++i) {
      REQUIRE(std::isfinite(y.data()[i]));
      REQUIRE(std::isfinite(ly.data()[i]));
      CHECK(std::fabs(y.data()[i] - ref.data()[i]) <= tol);
      CHECK(std::fabs(ly.data()[i] - lref.data()[i]) <= tol * (1 + std::fabs(lref.data()[i])));
    }
    Tensor<double> yd = y.template to<double>();
    const int a = axis < 0 ? axis + 3 : axis;
    for (int64_t i = 0; i < x.numel(); ++i) {
      Shape idx(3);
      int64_t r = i;
      for (int d = 2; d >= 0; --d) idx[d] = r % shape[d], r /= shape[d];
      if (idx[a] != 0) continue;  // one line per start position
      double s = 0;
      for (int64_t j = 0; j < shape[a]; ++j) {
        idx[a] = j;
        s += yd.at(idx);
      }
      CHECK(std::fabs(s - 1) <= 10 * tol);
    }
  }
}

TEST_CASE("softmax of a non-contiguous view equals softmax of its copy; -inf entries get 0") {
  Rng rng(22);
  TensorD x = rng.normal<double>({4, 6}).transpose(0, 1);  // [6, 4]
  CHECK(softmax(x, 1).to_vector() == softmax(x.contiguous(), 1).to_vector());
  CHECK(log_softmax(x, 0).to_vector() == log_softmax(x.contiguous(), 0).to_vector());
  TensorD m = TensorD::from({1, 3}, {0.0, -INFINITY, 0.0});
  TensorD y = softmax(m, 1);
  CHECK(y.at({0, 0}) == doctest::Approx(0.5));
  CHECK(y.at({0, 1}) == 0.0);
  CHECK_THROWS_AS(softmax(m, 2), ShapeError);
}

TEST_CASE("softmax backward kernels equal the Jacobian-vector products written out") {
  Rng rng(23);
  TensorD x = rng.normal<double>({2, 5}), g = rng.normal<double>({2, 5});
  TensorD y = softmax(x, 1), ly = log_softmax(x, 1);
  TensorD dx = softmax_backward(y, g, 1), dlx = log_softmax_backward(ly, g, 1);
  for (int64_t r = 0; r < 2; ++r)
    for (int64_t i = 0; i < 5; ++i) {
      // dy_j/dx_i = y_j ([i == j] - y_i);  d log y_j / dx_i = [i == j] - y_i
      double want = 0, want_log = 0;
      for (int64_t j = 0; j < 5; ++j) {
        want += g.at({r, j}) * y.at({r, j}) * ((i == j) - y.at({r, i}));
        want_log += g.at({r, j}) * ((i == j) - y.at({r, i}));
      }
      CHECK(dx.at({r, i}) == doctest::Approx(want).epsilon(1e-12));
      CHECK(dlx.at({r, i}) == doctest::Approx(want_log).epsilon(1e-12));
    }
}
