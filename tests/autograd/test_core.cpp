// The tape itself: backward order, accumulation of reused Vars, freeing, no-grad, long chains.
#include <doctest/doctest.h>

#include <cmath>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "tensor/elementwise.h"
#include "tensor/random.h"

using namespace dd;

TEST_CASE("x*x accumulates both paths: d(x^2)/dx = 2x") {
  VarD x(TensorD::from({3}, {1.0, -2.0, 0.5}), true);
  sum(x * x).backward();
  CHECK(x.grad().at({0}) == doctest::Approx(2.0));
  CHECK(x.grad().at({1}) == doctest::Approx(-4.0));
  CHECK(x.grad().at({2}) == doctest::Approx(1.0));
}

TEST_CASE("a chain of 100,000 ops runs backward and is destroyed without recursion") {
  VarD x(TensorD::scalar(1.0), true);
  VarD y = x;
  for (int i = 0; i < 100000; ++i) y = add_scalar(y, 1e-5);
  y.backward();
  CHECK(x.grad().item() == doctest::Approx(1.0));
  CHECK(y.item() == doctest::Approx(2.0));
  // and a chain that is never run backward is torn down iteratively too
  VarD z = x;
  for (int i = 0; i < 100000; ++i) z = mul_scalar(z, 1.0);
  z = VarD();
}

TEST_CASE("backward frees the graph") {
  VarD x(TensorD::from({2}, {1.0, 2.0}), true);
  VarD y = exp(x);
  VarD l = sum(y);
  CHECK_FALSE(l.is_leaf());
  l.backward();
  CHECK(l.is_leaf());
  CHECK(y.is_leaf());
}

TEST_CASE("no-grad guard records nothing") {
  VarD x(TensorD::from({2}, {1.0, 2.0}), true);
  {
    NoGradGuard ng;
    VarD y = x * x;
    CHECK_FALSE(y.requires_grad());
    CHECK(y.is_leaf());
  }
  CHECK((x * x).requires_grad());
}

TEST_CASE("gradcheck passes a right derivative and catches a wrong one") {
  Rng rng(7);
  TensorD x = rng.normal<double>({4, 3});
  auto ok = gradcheck([](const std::vector<VarD>& v) { return tanh(v[0]); }, {x});
  CHECK_MESSAGE(ok.ok, ok.message);
  // d/dx tanh written without the square: 1 - y instead of 1 - y^2
  auto wrong_tanh = [](const std::vector<VarD>& v) {
    TensorD y = map(v[0].value(), [](double a) { return std::tanh(a); });
    return make_result<double>("wrong_tanh", y, {v[0]}, [y](const TensorD& g, const std::vector<bool>&) {
      return std::vector<TensorD>{zip(g, y, [](double gi, double yi) { return gi * (1 - yi); }, "w")};
    });
  };
  auto bad = gradcheck(wrong_tanh, {x});
  CHECK_FALSE(bad.ok);
  CHECK(bad.message.find("analytic") != std::string::npos);
}
