// Numerically stable softmax and log-softmax along one axis (the max is subtracted first, so
// inputs around 1e4 do not overflow), and the backward kernels the autograd ops call.
#pragma once

#include "tensor/tensor.h"

namespace dd {

// y_i = exp(x_i - m) / sum_j exp(x_j - m), m = max_j x_j
template <class T>
Tensor<T> softmax(const Tensor<T>& x, int64_t axis);
// y_i = (x_i - m) - log sum_j exp(x_j - m)
template <class T>
Tensor<T> log_softmax(const Tensor<T>& x, int64_t axis);

// dx_i = y_i (g_i - sum_j g_j y_j), y = softmax(x)
template <class T>
Tensor<T> softmax_backward(const Tensor<T>& y, const Tensor<T>& g, int64_t axis);
// dx_i = g_i - exp(y_i) sum_j g_j, y = log_softmax(x)
template <class T>
Tensor<T> log_softmax_backward(const Tensor<T>& y, const Tensor<T>& g, int64_t axis);

}  // namespace dd
