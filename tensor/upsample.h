// Nearest-neighbour upsampling by 2 (F.interpolate(scale_factor=2, mode="nearest")) over planes:
// x [P, H, W] -> y [P, 2H, 2W] with y[p, i, j] = x[p, i/2, j/2]; P = N*C for NCHW.
#pragma once

#include <cstdint>

namespace dd {

// y is overwritten.
template <class T>
void upsample_nearest2x_forward(int64_t planes, int64_t H, int64_t W, const T* x, T* y);
// The adjoint: dx[p, i, j] = sum of dy over the 2x2 block it was copied to. dx is overwritten.
template <class T>
void upsample_nearest2x_backward(int64_t planes, int64_t H, int64_t W, const T* dy, T* dx);

}  // namespace dd
