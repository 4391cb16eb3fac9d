// gradcheck: compares the tape's gradients with float64 central differences.
//   numeric dL/dx_i = (L(x + eps e_i) - L(x - eps e_i)) / (2 eps),  L = sum(u * f(x)),
// u a random upstream gradient, so every output element and every input element is checked.
// Each element must satisfy |analytic - numeric| <= atol + rtol |numeric|.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "autograd/var.h"

namespace dd {

struct GradcheckTolerance {
  double atol = 1e-7;  // defaults tight enough to catch a forgotten eps; a looser one says why
  double rtol = 1e-5;
  double eps = 1e-6;
};

struct GradcheckResult {
  bool ok = true;
  std::string message;  // on failure: the input, the worst element, both values
};

using GradFn = std::function<Var<double>(const std::vector<Var<double>>&)>;

// Inputs may be non-contiguous views (permuted, sliced); each element of the view is perturbed in
// place. A view whose elements overlap (expanded, stride 0) is refused with std::invalid_argument:
// perturbing one storage element would move several inputs at once. `seed` picks the upstream gradient.
GradcheckResult gradcheck(const GradFn& f, const std::vector<Tensor<double>>& inputs,
                          GradcheckTolerance tol = {}, uint64_t seed = 1234);

}  // namespace dd
