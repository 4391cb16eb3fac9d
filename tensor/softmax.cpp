#include "tensor/softmax.h"

#include <cmath>

namespace dd {

namespace {

// Views a contiguous tensor as [outer, n, inner] around `axis` and calls row(ptr, n, stride) for
// every one of the outer*inner lines along the axis.
template <class T, class Row>
void for_each_line(const Tensor<T>& t, int64_t axis, const char* op, Row row) {
  int ax = wrap_dim(axis, t.dim(), op);
  int64_t outer = 1, inner = 1, n = t.shape()[ax];
  for (int i = 0; i < ax; ++i) outer *= t.shape()[i];
  for (int i = ax + 1; i < t.dim(); ++i) inner *= t.shape()[i];
#pragma omp parallel for collapse(2) schedule(static) if (t.numel() > (1 << 14))
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) row(o * n * inner + i, n, inner);
}

}  // namespace

template <class T>
Tensor<T> softmax(const Tensor<T>& x_in, int64_t axis) {
  Tensor<T> x = x_in.contiguous(), y(x.shape());
  const T* px = x.data();
  T* py = y.data();
  for_each_line(x, axis, "softmax", [&](int64_t base, int64_t n, int64_t s) {
    T m = px[base];
    for (int64_t j = 1; j < n; ++j) m = std::max(m, px[base + j * s]);
    double z = 0;
    for (int64_t j = 0; j < n; ++j) {
      T e = std::exp(px[base + j * s] - m);
      py[base + j * s] = e;
      z += e;
    }
    const T inv = static_cast<T>(1.0 / z);
    for (int64_t j = 0; j < n; ++j) py[base + j * s] *= inv;
  });
  return y;
}

template <class T>
Tensor<T> log_softmax(const Tensor<T>& x_in, int64_t axis) {
  Tensor<T> x = x_in.contiguous(), y(x.shape());
  const T* px = x.data();
  T* py = y.data();
  for_each_line(x, axis, "log_softmax", [&](int64_t base, int64_t n, int64_t s) {
    T m = px[base];
    for (int64_t j = 1; j < n; ++j) m = std::max(m, px[base + j * s]);
    double z = 0;
    for (int64_t j = 0; j < n; ++j) z += std::exp(static_cast<double>(px[base + j * s] - m));
    // (x - m) - log z, not x - (m + log z): for x ~ 1e4 in float, m + log z would round to the
    // ulp of 1e4 (~1e-3), while x - m is exact and log z is small.
    const double log_z = std::log(z);
    for (int64_t j = 0; j < n; ++j)
      py[base + j * s] = static_cast<T>(static_cast<double>(px[base + j * s] - m) - log_z);
  });
  return y;
}

template <class T>
Tensor<T> softmax_backward(const Tensor<T>& y_in, const Tensor<T>& g_in, int64_t axis) {
  Tensor<T> y = y_in.contiguous(), g = g_in.contiguous(), dx(y.shape());
  const T *py = y.data(), *pg = g.data();
  T* pd = dx.data();
  for_each_line(y, axis, "softmax_backward", [&](int64_t base, int64_t n, int64_t s) {
    double dot = 0;
    for (int64_t j = 0; j < n; ++j) dot += static_cast<double>(pg[base + j * s]) * py[base + j * s];
    for (int64_t j = 0; j < n; ++j) pd[base + j * s] = py[base + j * s] * (pg[base + j * s] - static_cast<T>(dot));
  });
  return dx;
}

template <class T>
Tensor<T> log_softmax_backward(const Tensor<T>& y_in, const Tensor<T>& g_in, int64_t axis) {
  Tensor<T> y = y_in.contiguous(), g = g_in.contiguous(), dx(y.shape());
  const T *py = y.data(), *pg = g.data();
  T* pd = dx.data();
  for_each_line(y, axis, "log_softmax_backward", [&](int64_t base, int64_t n, int64_t s) {
    double gsum = 0;
    for (int64_t j = 0; j < n; ++j) gsum += pg[base + j * s];
    for (int64_t j = 0; j < n; ++j)
      pd[base + j * s] = pg[base + j * s] - std::exp(py[base + j * s]) * static_cast<T>(gsum);
  });
  return dx;
}

#define DD_INSTANTIATE(T)                                                              \
  template Tensor<T> softmax(const Tensor<T>&, int64_t);                              \
  template Tensor<T> log_softmax(const Tensor<T>&, int64_t);                          \
  template Tensor<T> softmax_backward(const Tensor<T>&, const Tensor<T>&, int64_t);   \
  template Tensor<T> log_softmax_backward(const Tensor<T>&, const Tensor<T>&, int64_t);
DD_INSTANTIATE(float)
DD_INSTANTIATE(double)
#undef DD_INSTANTIATE

}  // namespace dd
