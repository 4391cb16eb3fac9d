// Group normalization as one fused op (Wu & He 2018; PyTorch's nn.GroupNorm). Kernels in tensor/norm.
#include <string>

#include "autograd/ops.h"
#include "tensor/norm.h"

namespace dd {

// For each sample n and group G of C/groups channels, over its M = (C/groups) * spatial elements:
//   mu = (1/M) sum x,  var = (1/M) sum (x - mu)^2,  r = 1/sqrt(var + eps),  xhat = (x - mu) r
//   y = gamma[c] xhat + beta[c]
// Backward, with dxhat = g gamma[c] and means over the group's M elements:
//   dL/dx     = r (dxhat - mean(dxhat) - xhat mean(dxhat xhat))
//   dL/dgamma[c] = sum_{n, spatial} g xhat,   dL/dbeta[c] = sum_{n, spatial} g
// (from dxhat/dx through mu and var: d mu/dx_i = 1/M, d var/dx_i = 2 (x_i - mu)/M).
namespace {

template <class T>
Var<T> group_norm_impl(const char* op, const Var<T>& x, int groups, const Var<T>& gamma, const Var<T>& beta,
                       double eps, bool silu) {
  const Shape& s = x.shape();
  if (s.size() < 2) shape_error(op, "input [N, C, ...]", shape_str(s));
  const int64_t C = s[1];
  if (groups < 1 || C % groups != 0)
    shape_error(op, "a group count dividing the " + std::to_string(C) + " channels of input " + shape_str(s),
                std::to_string(groups) + " groups");
  for (const Var<T>* p : {&gamma, &beta})
    if (p->defined() && p->shape() != Shape{C})
      shape_error(op, std::string(p == &gamma ? "gamma" : "beta") + " [" + std::to_string(C) + "] for input " + shape_str(s),
                  shape_str(p->shape()));
  if (!(eps > 0)) throw std::invalid_argument(std::string(op) + ": expected eps > 0, got " + std::to_string(eps));
  const GroupNormGeometry geo{s[0], C, s[0] * C > 0 ? x.numel() / (s[0] * C) : 0, groups, silu};
  Tensor<T> xv = x.value().contiguous();
  Tensor<T> gv = gamma.defined() ? gamma.value().contiguous() : Tensor<T>();
  Tensor<T> bv = beta.defined() ? beta.value().contiguous() : Tensor<T>();
  Tensor<T> y = Tensor<T>::uninitialized(s);
  Tensor<double> mean({geo.N * geo.G}), rstd({geo.N * geo.G});
  group_norm_forward(geo, xv.data(), gv.defined() ? gv.data() : nullptr, bv.defined() ? bv.data() : nullptr, eps,
                     y.data(), mean.data(), rstd.data());
  return make_result<T>(
      op, y, {x, gamma, beta},
      [geo, xv, gv, bv, mean, rstd](const Tensor<T>& g, const std::vector<bool>& needs) {
        const Tensor<T> gc = g.contiguous();
        Tensor<T> dx = needs[0] ? Tensor<T>::uninitialized(xv.shape()) : Tensor<T>();
        Tensor<T> dgamma = needs[1] ? Tensor<T>({geo.C}) : Tensor<T>();
        Tensor<T> dbeta = needs[2] ? Tensor<T>({geo.C}) : Tensor<T>();
        group_norm_backward(geo, gc.data(), xv.data(), gv.defined() ? gv.data() : nullptr,
                            bv.defined() ? bv.data() : nullptr, mean.data(), rstd.data(),
                            needs[0] ? dx.data() : nullptr, needs[1] ? dgamma.data() : nullptr,
                            needs[2] ? dbeta.data() : nullptr);
        return std::vector<Tensor<T>>{dx, dgamma, dbeta};
      });
}

}  // namespace

template <class T>
Var<T> group_norm(const Var<T>& x, int groups, const Var<T>& gamma, const Var<T>& beta, double eps) {
  return group_norm_impl("group_norm", x, groups, gamma, beta, eps, false);
}

// y = silu(z), z = group_norm(x) as above: one op, so z is neither stored nor read back.
// Backward: dL/dz = g silu'(z) = g s(z) (1 + z (1 - s(z))), z recomputed from x and the saved
// statistics, then the group_norm rules above with dL/dz in place of g.
template <class T>
Var<T> group_norm_silu(const Var<T>& x, int groups, const Var<T>& gamma, const Var<T>& beta, double eps) {
  return group_norm_impl("group_norm_silu", x, groups, gamma, beta, eps, true);
}

#define DD_INSTANTIATE(T)                                                                  \
  template Var<T> group_norm(const Var<T>&, int, const Var<T>&, const Var<T>&, double); \
  template Var<T> group_norm_silu(const Var<T>&, int, const Var<T>&, const Var<T>&, double);
DD_INSTANTIATE(float)
DD_INSTANTIATE(double)
#undef DD_INSTANTIATE

}  // namespace dd
