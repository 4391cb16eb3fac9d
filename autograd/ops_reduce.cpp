// Reductions and their derivatives: the gradient of a reduced element flows back to every input
// element that took part.
#include "autograd/ops.h"
#include "tensor/elementwise.h"
#include "tensor/reduce.h"

namespace dd {

namespace {
// g has the reduced shape; put the reduced axes back as size 1 and broadcast to the input shape.
template <class T>
Tensor<T> spread(const Tensor<T>& g, const Shape& in_shape, const std::vector<int>& axes, T scale) {
  Tensor<T> kept = g.reshape(reduced_shape(in_shape, axes, true));
  return map(kept.expand(in_shape), [scale](T v) { return v * scale; });
}
}  // namespace

// y = sum_{i in axes} x_i          dL/dx_i = g (broadcast over the summed axes)
template <class T>
Var<T> sum(const Var<T>& x, std::vector<int> axes, bool keepdim) {
  Shape in = x.shape();
  axes = normalize_axes(std::move(axes), x.dim(), "sum");
  return make_result<T>("sum", dd::sum(x.value(), axes, keepdim), {x},
                        [in, axes](const Tensor<T>& g, const std::vector<bool>&) {
                          return std::vector<Tensor<T>>{spread(g, in, axes, T(1))};
                        });
}

// y = (1/n) sum_{i in axes} x_i    dL/dx_i = g / n
template <class T>
Var<T> mean(const Var<T>& x, std::vector<int> axes, bool keepdim) {
  Shape in = x.shape();
  axes = normalize_axes(std::move(axes), x.dim(), "mean");
  int64_t n = 1;
  for (int a : axes) n *= in[a];
  return make_result<T>("mean", dd::mean(x.value(), axes, keepdim), {x},
                        [in, axes, n](const Tensor<T>& g, const std::vector<bool>&) {
                          return std::vector<Tensor<T>>{spread(g, in, axes, T(1) / static_cast<T>(n))};
                        });
}

#define DD_INSTANTIATE(T)                                          \
  template Var<T> sum(const Var<T>&, std::vector<int>, bool);      \
  template Var<T> mean(const Var<T>&, std::vector<int>, bool);
DD_INSTANTIATE(float)
DD_INSTANTIATE(double)
#undef DD_INSTANTIATE

}  // namespace dd
