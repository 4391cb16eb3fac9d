// Elementwise kernels: unary map and broadcasting binary zip over strided inputs, contiguous output.
// Header templates so each caller's lambda is inlined into the loop.
#pragma once

#include "tensor/tensor.h"

namespace dd {

// Visits every element of `shape` in row-major order with the matching offsets into up to three
// strided operands. The innermost dimension is a tight loop; rows are split over OpenMP threads when
// the tensor is large. f(out_index, off0, off1, off2).
template <class F>
void for_each_strided(const Shape& shape, const Shape* st0, const Shape* st1, const Shape* st2, F f) {
  const int64_t n = shape_numel(shape);
  if (n == 0) return;
  const int nd = static_cast<int>(shape.size());
  if (nd == 0) {
    f(0, 0, 0, 0);
    return;
  }
  const int64_t inner = shape[nd - 1];
  const int64_t outer = n / inner;
  const int64_t s0 = st0 ? (*st0)[nd - 1] : 0, s1 = st1 ? (*st1)[nd - 1] : 0, s2 = st2 ? (*st2)[nd - 1] : 0;
#pragma omp parallel for schedule(static) if (n > (1 << 15))
  for (int64_t o = 0; o < outer; ++o) {
    int64_t o0 = 0, o1 = 0, o2 = 0, r = o;
    for (int d = nd - 2; d >= 0; --d) {
      int64_t i = r % shape[d];
      r /= shape[d];
      if (st0) o0 += i * (*st0)[d];
      if (st1) o1 += i * (*st1)[d];
      if (st2) o2 += i * (*st2)[d];
    }
    const int64_t base = o * inner;
    for (int64_t i = 0; i < inner; ++i) f(base + i, o0 + i * s0, o1 + i * s1, o2 + i * s2);
  }
}

// out[i] = f(a[i])
template <class T, class F>
Tensor<T> map(const Tensor<T>& a, F f) {
  Tensor<T> out = Tensor<T>::uninitialized(a.shape());
  T* po = out.data();
  const T* pa = a.data();
  const int64_t n = a.numel();
  if (a.is_contiguous()) {
#pragma omp parallel for simd schedule(static) if (n > (1 << 15))
    for (int64_t i = 0; i < n; ++i) po[i] = f(pa[i]);
  } else {
    for_each_strided(a.shape(), &a.strides(), nullptr, nullptr,
                     [&](int64_t i, int64_t oa, int64_t, int64_t) { po[i] = f(pa[oa]); });
  }
  return out;
}

// out = f(a, b) with NumPy broadcasting; `op` names the operation in shape errors.
template <class T, class F>
Tensor<T> zip(const Tensor<T>& a, const Tensor<T>& b, F f, const char* op) {
  const Shape shape = a.shape() == b.shape() ? a.shape() : broadcast_shapes(a.shape(), b.shape(), op);
  Tensor<T> out = Tensor<T>::uninitialized(shape);
  T* po = out.data();
  const int64_t n = out.numel();
  if (a.shape() == shape && b.shape() == shape && a.is_contiguous() && b.is_contiguous()) {
    const T* pa = a.data();
    const T* pb = b.data();
#pragma omp parallel for simd schedule(static) if (n > (1 << 15))
    for (int64_t i = 0; i < n; ++i) po[i] = f(pa[i], pb[i]);
    return out;
  }
  const Tensor<T> ae = a.expand(shape), be = b.expand(shape);
  const T* pa = ae.data();
  const T* pb = be.data();
  for_each_strided(shape, &ae.strides(), &be.strides(), nullptr,
                   [&](int64_t i, int64_t oa, int64_t ob, int64_t) { po[i] = f(pa[oa], pb[ob]); });
  return out;
}

// out = f(a, b, c), all three broadcast to a common shape (used by backward rules such as
// d/dx of a*b where the upstream gradient also takes part).
template <class T, class F>
Tensor<T> zip3(const Tensor<T>& a, const Tensor<T>& b, const Tensor<T>& c, F f, const char* op) {
  const Shape shape = broadcast_shapes(broadcast_shapes(a.shape(), b.shape(), op), c.shape(), op);
  Tensor<T> out = Tensor<T>::uninitialized(shape);
  const int64_t n = out.numel();
  if (a.shape() == shape && b.shape() == shape && c.shape() == shape && a.is_contiguous() && b.is_contiguous() &&
      c.is_contiguous()) {
    T* po = out.data();
    const T *pa = a.data(), *pb = b.data(), *pc = c.data();
#pragma omp parallel for simd schedule(static) if (n > (1 << 15))
    for (int64_t i = 0; i < n; ++i) po[i] = f(pa[i], pb[i], pc[i]);
    return out;
  }
  const Tensor<T> ae = a.expand(shape), be = b.expand(shape), ce = c.expand(shape);
  T* po = out.data();
  const T *pa = ae.data(), *pb = be.data(), *pc = ce.data();
  for_each_strided(shape, &ae.strides(), &be.strides(), &ce.strides(),
                   [&](int64_t i, int64_t oa, int64_t ob, int64_t oc) { po[i] = f(pa[oa], pb[ob], pc[oc]); });
  return out;
}

// a += b in place (a contiguous, b broadcastable to a's shape).
template <class T>
void add_inplace(const Tensor<T>& a, const Tensor<T>& b) {
  if (!a.is_contiguous()) shape_error("add_inplace", "a contiguous destination", "a strided view");
  T* pa = a.data();
  const int64_t n = a.numel();
  if (a.shape() == b.shape() && b.is_contiguous()) {
    const T* pb = b.data();
#pragma omp parallel for simd schedule(static) if (n > (1 << 15))
    for (int64_t i = 0; i < n; ++i) pa[i] += pb[i];
    return;
  }
  const Tensor<T> be = b.expand(a.shape());
  const T* pb = be.data();
  for_each_strided(a.shape(), &be.strides(), nullptr, nullptr,
                   [&](int64_t i, int64_t ob, int64_t, int64_t) { pa[i] += pb[ob]; });
}

}  // namespace dd
