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

TEST_CASE("gradcheck refuses an input whose elements overlap (an expanded view), naming it") {
  TensorD x = TensorD::from({3, 1}, {0.5, -1.0, 2.0}).expand({3, 4});
  try {
    gradcheck([](const std::vector<VarD>& v) { return tanh(v[0]); }, {TensorD({2}), x});
    FAIL("accepted an expanded input");
  } catch (const std::invalid_argument& e) {
    const std::string m = e.what();
    CHECK(m.find("input 1") != std::string::npos);
    CHECK(m.find("[3, 4]") != std::string::npos);
    CHECK(m.find("[1, 0]") != std::string::npos);
  }
}

TEST_CASE("gradients of leaves accumulate over backward calls; grad buffers add in place") {
  VarD x(TensorD::from({2}, {1.0, 2.0}), true);
  sum(x * x).backward();
  TensorD first = x.grad();  // the caller holds the first gradient: the second call must not change it
  sum(mul_scalar(x, 3.0)).backward();
  CHECK(first.to_vector() == std::vector<double>{2.0, 4.0});
  CHECK(x.grad().to_vector() == std::vector<double>{5.0, 7.0});
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());

  // a buffer view: gradients land in the flat buffer, accumulate, and zero_grad zeroes in place
  TensorD flat = TensorD::zeros({5});
  VarD w(TensorD::from({2}, {1.0, -1.0}), true);
  w.set_grad_buffer(flat.slice(0, 1, 3));
  sum(w * w).backward();
  sum(w * w).backward();
  CHECK(flat.to_vector() == std::vector<double>{0.0, 4.0, -4.0, 0.0, 0.0});
  w.zero_grad();
  CHECK(flat.to_vector() == std::vector<double>(5, 0.0));
  CHECK_THROWS_AS(w.set_grad_buffer(flat.slice(0, 0, 3)), ShapeError);
}

TEST_CASE("two leaves that receive the same upstream tensor keep separate gradients") {
  // add passes g unchanged to both inputs; accumulating into one must not change the other
  VarD a(TensorD::from({2}, {1.0, 2.0}), true), b(TensorD::from({2}, {3.0, 4.0}), true);
  (a + b).backward(TensorD::from({2}, {1.0, 1.0}));
  sum(mul_scalar(a, 5.0)).backward();
  CHECK(a.grad().to_vector() == std::vector<double>{6.0, 6.0});
  CHECK(b.grad().to_vector() == std::vector<double>{1.0, 1.0});
}

TEST_CASE("backward reports a non-scalar output without a gradient, and a gradient of the wrong shape") {
  VarD x(TensorD::from({2}, {1.0, 2.0}), true);
  CHECK_THROWS_AS(exp(x).backward(), ShapeError);
  CHECK_THROWS_AS(exp(x).backward(TensorD({3})), ShapeError);
  CHECK_THROWS_AS(VarD(TensorD({2}), false).backward(TensorD({2})), std::logic_error);
}

TEST_CASE("an op may take an undefined Var (an absent bias): it is skipped in backward") {
  VarD x(TensorD::from({2}, {1.0, 2.0}), true);
  VarD none;
  VarD y = make_result<double>("scale_with_optional", map(x.value(), [](double v) { return 3 * v; }), {x, none},
                               [](const TensorD& g, const std::vector<bool>& needs) {
                                 CHECK(needs == std::vector<bool>{true, false});
                                 return std::vector<TensorD>{map(g, [](double v) { return 3 * v; }), TensorD()};
                               });
  sum(y).backward();
  CHECK(x.grad().to_vector() == std::vector<double>{3.0, 3.0});
}
