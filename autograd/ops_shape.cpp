// Shape ops move elements without changing them; their derivatives move the gradient back.
#include "autograd/ops.h"
#include "tensor/elementwise.h"
#include "tensor/reduce.h"

namespace dd {

// y = x viewed as shape s       dL/dx = g viewed as x's shape
template <class T>
Var<T> reshape(const Var<T>& x, const Shape& s) {
  Shape in = x.shape();
  return make_result<T>("reshape", x.value().reshape(s), {x}, [in](const Tensor<T>& g, const std::vector<bool>&) {
    return std::vector<Tensor<T>>{g.reshape(in)};
  });
}

// y = x with axes reordered: y.axis[i] = x.axis[order[i]]     dL/dx = g permuted by the inverse order
template <class T>
Var<T> permute(const Var<T>& x, const std::vector<int>& order) {
  Tensor<T> y = x.value().permute(order);
  std::vector<int> inverse(order.size());
  for (size_t i = 0; i < order.size(); ++i) inverse[wrap_dim(order[i], x.dim(), "permute")] = static_cast<int>(i);
  return make_result<T>("permute", y, {x}, [inverse](const Tensor<T>& g, const std::vector<bool>&) {
    return std::vector<Tensor<T>>{g.permute(inverse).contiguous()};
  });
}

template <class T>
Var<T> transpose(const Var<T>& x, int a, int b) {
  std::vector<int> order(x.dim());
  for (int i = 0; i < x.dim(); ++i) order[i] = i;
  std::swap(order[wrap_dim(a, x.dim(), "transpose")], order[wrap_dim(b, x.dim(), "transpose")]);
  return permute(x, order);
}

// y = x[start:end:step] along dim     dL/dx = zeros with g scattered into the same positions
template <class T>
Var<T> slice(const Var<T>& x, int dim, int64_t start, int64_t end, int64_t step) {
  Shape in = x.shape();
  return make_result<T>("slice", x.value().slice(dim, start, end, step), {x},
                        [in, dim, start, end, step](const Tensor<T>& g, const std::vector<bool>&) {
                          Tensor<T> gx(in);
                          gx.slice(dim, start, end, step).copy_from(g);
                          return std::vector<Tensor<T>>{gx};
                        });
}

// y = x broadcast to s (a view)       dL/dx = sum_to(g, x)
template <class T>
Var<T> expand(const Var<T>& x, const Shape& s) {
  Shape in = x.shape();
  return make_result<T>("expand", x.value().expand(s), {x}, [in](const Tensor<T>& g, const std::vector<bool>&) {
    return std::vector<Tensor<T>>{sum_to(g, in)};
  });
}

// y = [x_0, x_1, ...] joined along dim      dL/dx_k = the slice of g that x_k occupies
template <class T>
Var<T> concat(const std::vector<Var<T>>& xs, int dim) {
  if (xs.empty()) shape_error("concat", "at least one tensor", "none");
  const int d = wrap_dim(dim, xs[0].dim(), "concat");
  Shape out_shape = xs[0].shape();
  std::vector<int64_t> starts{0};
  for (size_t k = 0; k < xs.size(); ++k) {
    const Shape& s = xs[k].shape();
    bool ok = s.size() == out_shape.size();
    for (size_t i = 0; ok && i < s.size(); ++i) ok = static_cast<int>(i) == d || s[i] == out_shape[i];
    if (!ok) shape_error("concat", "shapes equal except along dim " + std::to_string(d),
                         shape_str(xs[0].shape()) + " and " + shape_str(s));
    if (k > 0) out_shape[d] += s[d];
    starts.push_back(starts.back() + s[d]);
  }
  Tensor<T> y = Tensor<T>::uninitialized(out_shape);  // every element is copied from an input
  for (size_t k = 0; k < xs.size(); ++k) y.slice(d, starts[k], starts[k + 1]).copy_from(xs[k].value());
  return make_result<T>("concat", y, xs, [d, starts](const Tensor<T>& g, const std::vector<bool>& needs) {
    std::vector<Tensor<T>> grads(needs.size());
    for (size_t k = 0; k < needs.size(); ++k)
      if (needs[k]) grads[k] = g.slice(d, starts[k], starts[k + 1]).contiguous();
    return grads;
  });
}

#define DD_INSTANTIATE(T)                                                       \
  template Var<T> reshape(const Var<T>&, const Shape&);                        \
  template Var<T> permute(const Var<T>&, const std::vector<int>&);             \
  template Var<T> transpose(const Var<T>&, int, int);                          \
  template Var<T> slice(const Var<T>&, int, int64_t, int64_t, int64_t);        \
  template Var<T> expand(const Var<T>&, const Shape&);                         \
  template Var<T> concat(const std::vector<Var<T>>&, int);
DD_INSTANTIATE(float)
DD_INSTANTIATE(double)
#undef DD_INSTANTIATE

}  // namespace dd
