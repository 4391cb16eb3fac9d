// 2x2 pooling with stride 2 over planes (F.max_pool2d(x, 2) and F.avg_pool2d(x, 2)): x [P, H, W]
// -> y [P, H/2, W/2] (floor: an odd last row or column is dropped, as PyTorch does by default).
#pragma once

#include <cstdint>

namespace dd {

// y[p,i,j] = max of x[p, 2i..2i+1, 2j..2j+1]; argmax[p,i,j] = the flat index into x of the first
// maximum in row-major order of the window (PyTorch's choice on ties). Both are overwritten.
template <class T>
void max_pool2x2_forward(int64_t planes, int64_t H, int64_t W, const T* x, T* y, int64_t* argmax);
// dx = 0 everywhere, then dx[argmax[k]] += dy[k]. dx has planes * H * W elements.
template <class T>
void max_pool2x2_backward(int64_t planes, int64_t H, int64_t W, const T* dy, const int64_t* argmax, T* dx);

// y[p,i,j] = mean of the 2x2 window; the backward spreads dy / 4 over it (zero in dropped rows/columns).
template <class T>
void avg_pool2x2_forward(int64_t planes, int64_t H, int64_t W, const T* x, T* y);
template <class T>
void avg_pool2x2_backward(int64_t planes, int64_t H, int64_t W, const T* dy, T* dx);

}  // namespace dd
