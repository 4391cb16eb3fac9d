// Softmax and log-softmax along an axis; the kernels live in tensor/softmax.
#include "autograd/ops.h"
#include "tensor/softmax.h"

namespace dd {

// y_i = exp(x_i) / sum_j exp(x_j)          dL/dx_i = y_i (g_i - sum_j g_j y_j)
template <class T>
Var<T> softmax(const Var<T>& x, int axis) {
  Tensor<T> y = dd::softmax(x.value(), axis);
  return make_result<T>("softmax", y, {x}, [y, axis](const Tensor<T>& g, const std::vector<bool>&) {
    return std::vector<Tensor<T>>{softmax_backward(y, g, axis)};
  });
}

// y_i = x_i - log sum_j exp(x_j)           dL/dx_i = g_i - exp(y_i) sum_j g_j
template <class T>
Var<T> log_softmax(const Var<T>& x, int axis) {
  Tensor<T> y = dd::log_softmax(x.value(), axis);
  return make_result<T>("log_softmax", y, {x}, [y, axis](const Tensor<T>& g, const std::vector<bool>&) {
    return std::vector<Tensor<T>>{log_softmax_backward(y, g, axis)};
  });
}

#define DD_INSTANTIATE(T)                             \
  template Var<T> softmax(const Var<T>&, int);        \
  template Var<T> log_softmax(const Var<T>&, int);
DD_INSTANTIATE(float)
DD_INSTANTIATE(double)
#undef DD_INSTANTIATE

}  // namespace dd
