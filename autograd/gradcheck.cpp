#include "autograd/gradcheck.h"

#include <cmath>
#include <sstream>

#include "tensor/random.h"

namespace dd {

namespace {
double weighted_sum(const Tensor<double>& y, const Tensor<double>& u) {
  double s = 0;
  for (int64_t i = 0, n = y.numel(); i < n; ++i) s += y.flat(i) * u.flat(i);
  return s;
}
}  // namespace

GradcheckResult gradcheck(const GradFn& f, const std::vector<Tensor<double>>& inputs, GradcheckTolerance tol,
                          uint64_t seed) {
  std::vector<Var<double>> vars;
  for (const auto& x : inputs) vars.emplace_back(x, true);
  Var<double> y = f(vars);
  Rng rng(seed);
  Tensor<double> u = rng.normal<double>(y.shape());
  y.backward(u);

  GradcheckResult res;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor<double>& x = inputs[k];
    const Tensor<double>& analytic = vars[k].grad();
    double worst_excess = 0;
    int64_t worst = -1;
    double worst_a = 0, worst_n = 0;
    for (int64_t i = 0, n = x.numel(); i < n; ++i) {
      double& xi = x.flat(i);
      const double orig = xi;
      double plus, minus;
      {
        NoGradGuard ng;
        xi = orig + tol.eps;
        plus = weighted_sum(f(vars).value(), u);
        xi = orig - tol.eps;
        minus = weighted_sum(f(vars).value(), u);
      }
      xi = orig;
      const double numeric = (plus - minus) / (2 * tol.eps);
      const double a = analytic.defined() ? analytic.flat(i) : 0.0;
      const double excess = std::fabs(a - numeric) - (tol.atol + tol.rtol * std::fabs(numeric));
      if (!(excess <= 0) && (worst < 0 || excess > worst_excess || std::isnan(excess))) {
        worst_excess = excess;
        worst = i;
        worst_a = a;
        worst_n = numeric;
      }
    }
    if (worst >= 0 && res.ok) {
      std::ostringstream msg;
      msg.precision(10);
      msg << "gradcheck: input " << k << " " << shape_str(x.shape()) << ", element " << worst << ": analytic "
          << worst_a << " vs numeric " << worst_n << " (|diff| " << std::fabs(worst_a - worst_n) << " > atol "
          << tol.atol << " + rtol " << tol.rtol << " * |numeric|)";
      res.ok = false;
      res.message = msg.str();
    }
  }
  return res;
}

}  // namespace dd
