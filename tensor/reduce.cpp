#include "tensor/reduce.h"

#include <algorithm>
#include <limits>

namespace dd {

std::vector<int> normalize_axes(std::vector<int> axes, int64_t ndim, const char* op) {
  if (axes.empty()) {
    for (int i = 0; i < ndim; ++i) axes.push_back(i);
    return axes;
  }
  for (int& a : axes) a = wrap_dim(a, ndim, op);
  std::sort(axes.begin(), axes.end());
  if (std::adjacent_find(axes.begin(), axes.end()) != axes.end())
    shape_error(op, "distinct axes", "a repeated axis");
  return axes;
}

Shape reduced_shape(const Shape& s, const std::vector<int>& axes, bool keepdim) {
  Shape out;
  for (int i = 0; i < static_cast<int>(s.size()); ++i) {
    bool reduced = std::find(axes.begin(), axes.end(), i) != axes.end();
    if (!reduced) out.push_back(s[i]);
    else if (keepdim) out.push_back(1);
  }
  return out;
}

namespace {

// Moves the kept axes to the front and the reduced ones to the back, so each output element is
// a contiguous row of `inner` inputs. combine(acc, x) folds; finish(acc, count) ends.
template <class T, class Combine, class Finish>
Tensor<T> reduce(const Tensor<T>& a, std::vector<int> axes, bool keepdim, const char* op, double init,
                 Combine combine, Finish finish) {
  axes = normalize_axes(std::move(axes), a.dim(), op);
  std::vector<int> order;
  for (int i = 0; i < a.dim(); ++i)
    if (std::find(axes.begin(), axes.end(), i) == axes.end()) order.push_back(i);
  int64_t inner = 1;
  for (int ax : axes) {
    order.push_back(ax);
    inner *= a.shape()[ax];
  }
  const Tensor<T> rows = a.permute(order).contiguous();
  Tensor<T> out(reduced_shape(a.shape(), axes, keepdim));
  const int64_t outer = out.numel();
  const T* src = rows.data();
  T* dst = out.data();
#pragma omp parallel for schedule(static) if (outer * inner > (1 << 15) && outer > 1)
  for (int64_t o = 0; o < outer; ++o) {
    double acc = init;
    const T* row = src + o * inner;
    for (int64_t i = 0; i < inner; ++i) acc = combine(acc, static_cast<double>(row[i]));
    dst[o] = static_cast<T>(finish(acc, inner));
  }
  return out;
}

}  // namespace

template <class T>
Tensor<T> sum(const Tensor<T>& a, std::vector<int> axes, bool keepdim) {
  return reduce(a, std::move(axes), keepdim, "sum", 0.0, [](double s, double x) { return s + x; },
                [](double s, int64_t) { return s; });
}

template <class T>
Tensor<T> mean(const Tensor<T>& a, std::vector<int> axes, bool keepdim) {
  return reduce(a, std::move(axes), keepdim, "mean", 0.0, [](double s, double x) { return s + x; },
                [](double s, int64_t n) { return s / static_cast<double>(n); });
}

template <class T>
Tensor<T> max(const Tensor<T>& a, std::vector<int> axes, bool keepdim) {
  if (a.numel() == 0) shape_error("max", "a non-empty tensor", shape_str(a.shape()));
  return reduce(a, std::move(axes), keepdim, "max", -std::numeric_limits<double>::infinity(),
                [](double m, double x) { return x > m || x != x ? x : m; }, [](double m, int64_t) { return m; });
}

template <class T>
Tensor<T> sum_to(const Tensor<T>& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const int64_t lead = g.dim() - static_cast<int64_t>(shape.size());
  bool broadcasts = lead >= 0;
  for (int64_t i = 0; broadcasts && i < static_cast<int64_t>(shape.size()); ++i)
    broadcasts = shape[i] == 1 || shape[i] == g.shape()[i + lead];
  if (!broadcasts)
    shape_error("sum_to", "a gradient whose shape " + shape_str(shape) + " broadcasts to", shape_str(g.shape()));
  std::vector<int> axes;
  for (int i = 0; i < g.dim(); ++i)
    if (i < lead || (shape[i - lead] == 1 && g.shape()[i] != 1)) axes.push_back(i);
  Tensor<T> s = axes.empty() ? g : sum(g, axes, true);
  return s.reshape(shape);
}

#define DD_INSTANTIATE(T)                                                        \
  template Tensor<T> sum(const Tensor<T>&, std::vector<int>, bool);             \
  template Tensor<T> mean(const Tensor<T>&, std::vector<int>, bool);            \
  template Tensor<T> max(const Tensor<T>&, std::vector<int>, bool);             \
  template Tensor<T> sum_to(const Tensor<T>&, const Shape&);
DD_INSTANTIATE(float)
DD_INSTANTIATE(double)
#undef DD_INSTANTIATE

}  // namespace dd
