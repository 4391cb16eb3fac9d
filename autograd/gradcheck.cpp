#include "autograd/gradcheck.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

#include "tensor/random.h"

namespace dd {

namespace {
double weighted_sum(const Tensor<double>& y, const Tensor<double>& u) {
  double s = 0;
  for (int64_t i = 0, n = y.numel(); i < n; ++i) s += y.flat(i) * u.flat(i);
  return s;
}

// Whether two positions of the view can name one storage element (an expanded view: stride 0).
// Perturbing such an element moves several inputs at once, so the numeric derivative would be the
// sum of several analytic ones. Sufficient test: with the dimensions sorted by stride, each stride
// must reach past everything the smaller ones span.
bool overlaps(const Tensor<double>& x) {
  std::vector<std::pair<int64_t, int64_t>> dims;  // (stride, size) of the dimensions that move
  for (int64_t d = 0; d < x.dim(); ++d)
    if (x.shape()[d] > 1) dims.emplace_back(std::abs(x.strides()[d]), x.shape()[d]);
  std::sort(dims.begin(), dims.end());
  int64_t span = 0;  // the largest offset the smaller-stride dimensions reach
  for (const auto& [stride, size] : dims) {
    if (stride <= span) return true;
    span += (size - 1) * stride;
  }
  return false;
}
}  // namespace

GradcheckResult gradcheck(const GradFn& f, const std::vector<Tensor<double>>& inputs, GradcheckTolerance tol,
                          uint64_t seed) {
  for (size_t k = 0; k < inputs.size(); ++k)
    if (overlaps(inputs[k]))
      throw std::invalid_argument("gradcheck: expected inputs whose elements are distinct (expand inside f instead), "
                                  "got input " + std::to_string(k) + " of shape " + shape_str(inputs[k].shape()) +
                                  " with strides " + shape_str(inputs[k].strides()));
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
