// Reductions over any set of axes: sum, mean, max (keepdim or not), and sum_to, which folds a
// broadcast gradient back to an input's shape. Accumulation is in double for both dtypes.
#pragma once

#include <vector>

#include "tensor/tensor.h"

namespace dd {

// Axes may be negative; an empty list means every axis.
template <class T>
Tensor<T> sum(const Tensor<T>& a, std::vector<int> axes = {}, bool keepdim = false);
template <class T>
Tensor<T> mean(const Tensor<T>& a, std::vector<int> axes = {}, bool keepdim = false);
template <class T>
Tensor<T> max(const Tensor<T>& a, std::vector<int> axes = {}, bool keepdim = false);

// Sums `g` (shape broadcast from `shape`) down to `shape`: the backward of broadcasting.
template <class T>
Tensor<T> sum_to(const Tensor<T>& g, const Shape& shape);

// The shape a reduction over `axes` leaves, with the reduced axes kept as 1 (for broadcasting back).
Shape reduced_shape(const Shape& s, const std::vector<int>& axes, bool keepdim);
// Normalises axes (wraps negatives, sorts, rejects repeats); empty means all.
std::vector<int> normalize_axes(std::vector<int> axes, int64_t ndim, const char* op);

}  // namespace dd
