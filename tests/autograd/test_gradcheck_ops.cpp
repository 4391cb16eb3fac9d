// A float64 gradient check for every op in autograd/ops.h up to mse_loss, one line per case, plus
// broadcast and non-contiguous inputs, reused Vars, a long chain, and float32 spot checks.
// Tolerances are gradcheck's defaults (atol 1e-7, rtol 1e-5, eps 1e-6) unless a line says why not.
#include <doctest/doctest.h>

#include <cmath>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "tensor/elementwise.h"

using namespace dd;

namespace {

using Vars = std::vector<VarD>;

// Gradchecks f at `inputs` and reports the op's name with gradcheck's message on failure.
void check(const char* name, const GradFn& f, const std::vector<TensorD>& inputs, GradcheckTolerance tol = {}) {
  CAPTURE(name);
  GradcheckResult r = gradcheck(f, inputs, tol);
  CHECK_MESSAGE(r.ok, name << ": " << r.message);
}

Rng& rng() {
  static Rng r(2024);
  return r;
}
TensorD normal(const Shape& s) { return rng().normal<double>(s); }
// In [0.5, 2]: away from 0 for log, sqrt, division and non-integer powers.
TensorD positive(const Shape& s) { return rng().uniform<double>(s, 0.5, 2.0); }
// |x| in [0.1, 2] with random sign: relu's kink at 0 is > 1e5 eps away.
TensorD away_from_zero(const Shape& s) {
  TensorD m = rng().uniform<double>(s, 0.1, 2.0), sign = rng().uniform<double>(s, -1.0, 1.0);
  return zip(m, sign, [](double a, double b) { return b < 0 ? -a : a; }, "away_from_zero");
}
// Non-contiguous views holding the same kind of values: a transpose, and a stepped slice.
TensorD transposed(const TensorD& t) { return t.transpose(0, 1).contiguous().transpose(0, 1); }
TensorD stepped(const TensorD& t) {
  Shape wide = t.shape();
  wide.back() = 2 * wide.back();
  TensorD store(wide);
  TensorD view = store.slice(-1, 1, wide.back(), 2);
  view.copy_from(t);
  return view;
}

}  // namespace

TEST_CASE("gradcheck: binary elementwise ops, same shape, broadcast [3,1,5] with [4,5], and a 0-d operand") {
  const Shape s{3, 4};
  check("add", [](const Vars& v) { return v[0] + v[1]; }, {normal(s), normal(s)});
  check("sub", [](const Vars& v) { return v[0] - v[1]; }, {normal(s), normal(s)});
  check("mul", [](const Vars& v) { return v[0] * v[1]; }, {normal(s), normal(s)});
  check("div", [](const Vars& v) { return v[0] / v[1]; }, {normal(s), positive(s)});

  const Shape a{3, 1, 5}, b{4, 5};
  check("add bcast", [](const Vars& v) { return v[0] + v[1]; }, {normal(a), normal(b)});
  check("sub bcast", [](const Vars& v) { return v[0] - v[1]; }, {normal(a), normal(b)});
  check("sub bcast reversed", [](const Vars& v) { return v[0] - v[1]; }, {normal(b), normal(a)});
  check("mul bcast", [](const Vars& v) { return v[0] * v[1]; }, {normal(a), normal(b)});
  check("div bcast", [](const Vars& v) { return v[0] / v[1]; }, {normal(a), positive(b)});
  check("div bcast reversed", [](const Vars& v) { return v[0] / v[1]; }, {normal(b), positive(a)});
  check("mul by 0-d", [](const Vars& v) { return v[0] * v[1]; }, {normal(a), normal({})});
  check("div by [5]", [](const Vars& v) { return v[0] / v[1]; }, {normal(a), positive({5})});
}

TEST_CASE("gradcheck: unary elementwise ops") {
  const Shape s{2, 3, 4};
  check("neg", [](const Vars& v) { return -v[0]; }, {normal(s)});
  check("add_scalar", [](const Vars& v) { return add_scalar(v[0], 0.7); }, {normal(s)});
  check("mul_scalar", [](const Vars& v) { return mul_scalar(v[0], -1.3); }, {normal(s)});
  check("pow 3", [](const Vars& v) { return pow(v[0], 3.0); }, {normal(s)});
  check("pow 2.5", [](const Vars& v) { return pow(v[0], 2.5); }, {positive(s)});
  check("pow -1.5", [](const Vars& v) { return pow(v[0], -1.5); }, {positive(s)});
  check("exp", [](const Vars& v) { return exp(v[0]); }, {normal(s)});
  check("log", [](const Vars& v) { return log(v[0]); }, {positive(s)});
  check("sqrt", [](const Vars& v) { return sqrt(v[0]); }, {positive(s)});
  check("square", [](const Vars& v) { return square(v[0]); }, {normal(s)});
  check("tanh", [](const Vars& v) { return tanh(v[0]); }, {normal(s)});
  check("sigmoid", [](const Vars& v) { return sigmoid(v[0]); }, {normal(s)});
  check("silu", [](const Vars& v) { return silu(v[0]); }, {mul_scalar(VarD(normal(s)), 3.0).value()});
  check("relu", [](const Vars& v) { return relu(v[0]); }, {away_from_zero(s)});
}

TEST_CASE("gradcheck: elementwise ops and matmul on permuted and sliced (non-contiguous) inputs") {
  const Shape s{4, 5};
  for (auto make : {transposed, stepped}) {
    TensorD x = make(normal(s)), y = make(normal(s)), p = make(positive(s)), r = make(away_from_zero(s));
    REQUIRE_FALSE(x.is_contiguous());
    check("add nc", [](const Vars& v) { return v[0] + v[1]; }, {x, y});
    check("sub nc", [](const Vars& v) { return v[0] - v[1]; }, {x, y});
    check("mul nc", [](const Vars& v) { return v[0] * v[1]; }, {x, y});
    check("div nc", [](const Vars& v) { return v[0] / v[1]; }, {x, p});
    check("mul nc bcast", [](const Vars& v) { return v[0] * v[1]; }, {x, normal({5})});
    check("neg nc", [](const Vars& v) { return -v[0]; }, {x});
    check("pow nc", [](const Vars& v) { return pow(v[0], 1.7); }, {p});
    check("exp nc", [](const Vars& v) { return exp(v[0]); }, {x});
    check("log nc", [](const Vars& v) { return log(v[0]); }, {p});
    check("sqrt nc", [](const Vars& v) { return sqrt(v[0]); }, {p});
    check("square nc", [](const Vars& v) { return square(v[0]); }, {x});
    check("tanh nc", [](const Vars& v) { return tanh(v[0]); }, {x});
    check("sigmoid nc", [](const Vars& v) { return sigmoid(v[0]); }, {x});
    check("silu nc", [](const Vars& v) { return silu(v[0]); }, {x});
    check("relu nc", [](const Vars& v) { return relu(v[0]); }, {r});
    check("sum nc", [](const Vars& v) { return sum(v[0], {0}); }, {x});
    check("matmul nc left", [](const Vars& v) { return matmul(v[0], v[1]); }, {x, normal({5, 3})});
    check("matmul nc right", [](const Vars& v) { return matmul(v[0], v[1]); }, {normal({2, 4}), x});
    check("matmul nc both", [](const Vars& v) { return matmul(v[0], v[1]); },
          {make(normal({3, 4})), x});
    check("softmax nc", [](const Vars& v) { return softmax(v[0], 1); }, {x});
  }
}

TEST_CASE("gradcheck: sum and mean over several axis sets, keepdim or not") {
  const Shape s{2, 3, 4};
  const std::vector<std::vector<int>> axis_sets{{}, {0}, {1}, {2}, {-1}, {0, 2}, {1, -1}, {0, 1, 2}};
  for (const auto& axes : axis_sets)
    for (bool keep : {false, true}) {
      CAPTURE(axes.size());
      CAPTURE(keep);
      check("sum", [axes, keep](const Vars& v) { return sum(v[0], axes, keep); }, {normal(s)});
      check("mean", [axes, keep](const Vars& v) { return mean(v[0], axes, keep); }, {normal(s)});
    }
}

TEST_CASE("gradcheck: shape ops") {
  check("reshape", [](const Vars& v) { return reshape(v[0], {4, -1}); }, {normal({2, 3, 4})});
  check("reshape of a transposed view", [](const Vars& v) { return reshape(v[0], {20}); },
        {transposed(normal({4, 5}))});
  check("permute", [](const Vars& v) { return permute(v[0], {2, 0, 1}); }, {normal({2, 3, 4})});
  check("permute, negative axes", [](const Vars& v) { return permute(v[0], {-1, 0, -2}); }, {normal({2, 3, 4})});
  check("transpose", [](const Vars& v) { return transpose(v[0], 0, -1); }, {normal({2, 3, 4})});
  check("slice", [](const Vars& v) { return slice(v[0], 1, 1, 3); }, {normal({2, 4, 3})});
  check("slice with step", [](const Vars& v) { return slice(v[0], -1, 0, 7, 3); }, {normal({2, 3, 7})});
  check("expand", [](const Vars& v) { return expand(v[0], {2, 3, 4}); }, {normal({3, 1})});
  check("concat dim 1", [](const Vars& v) { return concat<double>({v[0], v[1], v[2]}, 1); },
        {normal({2, 1, 3}), normal({2, 4, 3}), normal({2, 2, 3})});
  check("concat dim -1", [](const Vars& v) { return concat<double>({v[0], v[1]}, -1); },
        {normal({3, 2}), transposed(normal({3, 4}))});
  check("concat of one Var twice", [](const Vars& v) { return concat<double>({v[0], v[0]}, 0); },
        {normal({2, 3})});
  // a view op followed by an elementwise op, so the upstream gradient is not the identity
  check("permute then mul", [](const Vars& v) { return permute(v[0], {1, 0}) * v[1]; },
        {normal({3, 4}), normal({4, 3})});
}

TEST_CASE("gradcheck: matmul, bmm, softmax, log_softmax, mse_loss") {
  check("matmul", [](const Vars& v) { return matmul(v[0], v[1]); }, {normal({4, 6}), normal({6, 5})});
  check("matmul via transpose op", [](const Vars& v) { return matmul(transpose(v[0], 0, 1), v[1]); },
        {normal({6, 4}), normal({6, 5})});
  check("matmul of x with itself", [](const Vars& v) { return matmul(v[0], transpose(v[0], 0, 1)); },
        {normal({3, 4})});
  check("bmm", [](const Vars& v) { return bmm(v[0], v[1]); }, {normal({2, 3, 4}), normal({2, 4, 5})});
  check("bmm via transpose op", [](const Vars& v) { return bmm(v[0], transpose(v[1], 1, 2)); },
        {normal({2, 3, 4}), normal({2, 5, 4})});
  for (int axis : {0, 1, -1}) {
    CAPTURE(axis);
    check("softmax", [axis](const Vars& v) { return softmax(v[0], axis); }, {normal({3, 4, 5})});
    check("log_softmax", [axis](const Vars& v) { return log_softmax(v[0], axis); }, {normal({3, 4, 5})});
  }
  check("mse_loss", [](const Vars& v) { return mse_loss(v[0], v[1]); }, {normal({2, 3, 4}), normal({2, 3, 4})});
  check("mse_loss of views", [](const Vars& v) { return mse_loss(v[0], v[1]); },
        {transposed(normal({4, 5})), stepped(normal({4, 5}))});
}

TEST_CASE("gradcheck: 0-d inputs and outputs") {
  check("0-d exp times 0-d", [](const Vars& v) { return exp(v[0]) * v[1]; }, {normal({}), normal({})});
  check("sum of 0-d", [](const Vars& v) { return sum(v[0]); }, {normal({})});
  check("mean to 0-d", [](const Vars& v) { return mean(v[0]); }, {normal({3, 2})});
  check("reshape 0-d to [1, 1]", [](const Vars& v) { return reshape(v[0], {1, 1}); }, {normal({})});
}

TEST_CASE("gradcheck: reused inputs and a shared intermediate") {
  check("x * x", [](const Vars& v) { return v[0] * v[0]; }, {normal({3, 4})});
  check("x / x + x", [](const Vars& v) { return v[0] / v[0] + v[0]; }, {positive({3})});
  // h is used by two branches, and x again at the end
  check("two branches", [](const Vars& v) {
    VarD h = tanh(v[0]);
    return sum(exp(h) * h, {1}) + sum(mul_scalar(v[0], 2.0) - h * v[1], {1});
  }, {normal({3, 4}), normal({3, 4})});
  check("broadcast reuse", [](const Vars& v) { return v[0] * v[1] + v[1]; }, {normal({3, 1, 5}), normal({4, 5})});
}

TEST_CASE("gradcheck: a long chain of mixed ops") {
  check("chain", [](const Vars& v) {
    VarD y = v[0];
    for (int i = 0; i < 40; ++i) {
      // each step keeps values in a moderate range, so the chain neither explodes nor vanishes
      y = tanh(mul_scalar(y, 1.1) + v[1]);
      y = add_scalar(mul_scalar(sigmoid(y), 2.0), -1.0) * v[2] + y;
    }
    return y;
  }, {normal({2, 3}), mul_scalar(VarD(normal({3})), 0.1).value(), mul_scalar(VarD(normal({2, 3})), 0.3).value()});
}

TEST_CASE("mse_loss against a constant target: only the prediction gets a gradient") {
  VarD pred(TensorD::from({2}, {1.0, 3.0}), true), target(TensorD::from({2}, {0.0, 1.0}), false);
  VarD l = mse_loss(pred, target);
  CHECK(l.item() == doctest::Approx((1.0 + 4.0) / 2));
  l.backward();
  CHECK(pred.grad().at({0}) == doctest::Approx(1.0));  // 2 (1 - 0) / 2
  CHECK(pred.grad().at({1}) == doctest::Approx(2.0));  // 2 (3 - 1) / 2
  CHECK_FALSE(target.grad().defined());
  CHECK_THROWS_AS(mse_loss(pred, VarD(TensorD({3}))), ShapeError);
}

namespace {
// max |a - b| / max |b|
double rel_err(const TensorF& a, const TensorD& b) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < b.numel(); ++i) {
    num = std::max(num, std::fabs(static_cast<double>(a.flat(i)) - b.flat(i)));
    den = std::max(den, std::fabs(b.flat(i)));
  }
  return num / den;
}

// The gradients of f at `inputs` in float32 and float64 with the same upstream gradient agree to
// within 1e-5 of their size (float32 keeps ~7 digits; these small graphs lose at most one or two).
template <class F>
void float_matches_double(const char* name, F f, const std::vector<TensorD>& inputs) {
  CAPTURE(name);
  std::vector<VarD> vd;
  std::vector<VarF> vf;
  for (const auto& x : inputs) {
    vd.emplace_back(x.clone(), true);
    vf.emplace_back(x.to<float>(), true);
  }
  VarD yd = f(vd);
  VarF yf = f(vf);
  TensorD u = normal(yd.shape());
  yd.backward(u);
  yf.backward(u.to<float>());
  CHECK(rel_err(yf.value(), yd.value()) <= 1e-5);
  for (size_t k = 0; k < inputs.size(); ++k) {
    CAPTURE(k);
    CHECK(rel_err(vf[k].grad(), vd[k].grad()) <= 1e-5);
  }
}
}  // namespace

TEST_CASE("float32 gradients equal float64 ones within 1e-5 relative") {
  auto mul_bcast = [](const auto& v) { return v[0] * v[1]; };
  float_matches_double("mul bcast", mul_bcast, {normal({3, 1, 5}), normal({4, 5})});
  float_matches_double("div", [](const auto& v) { return v[0] / v[1]; }, {normal({4, 5}), positive({4, 5})});
  float_matches_double("tanh", [](const auto& v) { return tanh(v[0]); }, {normal({4, 5})});
  float_matches_double("silu", [](const auto& v) { return silu(v[0]); }, {normal({4, 5})});
  float_matches_double("mean", [](const auto& v) { return mean(v[0], {0, 2}, true); }, {normal({3, 4, 5})});
  float_matches_double("matmul", [](const auto& v) { return matmul(v[0], v[1]); }, {normal({4, 6}), normal({6, 5})});
  float_matches_double("bmm", [](const auto& v) { return bmm(v[0], v[1]); }, {normal({2, 3, 4}), normal({2, 4, 5})});
  float_matches_double("softmax", [](const auto& v) { return softmax(v[0], -1); }, {normal({3, 7})});
  float_matches_double("log_softmax", [](const auto& v) { return log_softmax(v[0], 0); }, {normal({3, 7})});
  float_matches_double("mse_loss", [](const auto& v) { return mse_loss(v[0], v[1]); }, {normal({4, 5}), normal({4, 5})});
}
