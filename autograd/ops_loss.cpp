// Losses.
#include "autograd/ops.h"
#include "tensor/elementwise.h"
#include "tensor/parallel.h"

namespace dd {

// L = (1/n) sum_i (a_i - b_i)^2, n = numel     dL/da_i = 2 g (a_i - b_i) / n,  dL/db_i = -dL/da_i
// (DDPM eq. (14) with the mean over pixels, as F.mse_loss; docs/equations.md "Training and sampling".)
template <class T>
Var<T> mse_loss(const Var<T>& a, const Var<T>& b) {
  if (a.shape() != b.shape()) shape_error("mse_loss", "equal shapes", shape_str(a.shape()) + " and " + shape_str(b.shape()));
  Tensor<T> diff = zip(a.value(), b.value(), [](T x, T y) { return x - y; }, "mse_loss");
  const T* d = diff.data();
  const int64_t n = diff.numel();
  // in fixed chunks combined in order: the same loss for every thread count (tensor/parallel.h)
  const double acc = ordered_sum(n, [d](int64_t i) { return static_cast<double>(d[i]) * d[i]; });
  Tensor<T> loss = Tensor<T>::scalar(static_cast<T>(acc / static_cast<double>(n)));
  return make_result<T>("mse_loss", loss, {a, b}, [diff, n](const Tensor<T>& g, const std::vector<bool>& needs) {
    const T scale = T(2) * g.item() / static_cast<T>(n);
    std::vector<Tensor<T>> grads(2);
    if (needs[0]) grads[0] = map(diff, [scale](T v) { return scale * v; });
    if (needs[1]) grads[1] = map(diff, [scale](T v) { return -scale * v; });
    return grads;
  });
}

template Var<float> mse_loss(const Var<float>&, const Var<float>&);
template Var<double> mse_loss(const Var<double>&, const Var<double>&);

}  // namespace dd
