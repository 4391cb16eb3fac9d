// 2-d convolution kernels (NCHW, zero padding, square stride and padding, any kernel size), as
// used by PyTorch's nn.Conv2d (a cross-correlation: no kernel flip).
//
//   y[n,o,i,j] = b[o] + sum_{c,p,q} w[o,c,p,q] x[n,c, i*s - pad + p, j*s - pad + q]
//
// Generic path: im2col + GEMM. For each image the patches are unrolled into
// cols[(c,p,q), (i,j)] (rows C*kh*kw, columns Ho*Wo), so that y_n = W cols_n with W viewed as
// [O, C*kh*kw]. A 1x1 stride-1 pad-0 convolution needs no unrolling: cols_n is x_n itself.
//
// The three conv2d_* kernels below are the seam where faster float32 kernels slot in beside this
// generic one (same geometry, same raw contiguous row-major pointers); Winograd is the first.
//
// Parallelism: when there are at least two images and two threads, images are spread over OpenMP
// threads and each calls a single-threaded GEMM (OpenBLAS inside a parallel region runs on one
// thread); otherwise the images run one after the other and OpenBLAS uses the threads itself.
#pragma once

#include <cstdint>

#include "tensor/shape.h"
#include "tensor/workspace.h"

namespace dd {

struct Conv2dGeometry {
  int64_t N, C, H, W;  // input
  int64_t O, kh, kw;   // weight [O, C, kh, kw]
  int64_t stride, pad;
  int64_t Ho, Wo;  // output: (H + 2 pad - kh) / stride + 1, likewise Wo
  int64_t patch() const { return C * kh * kw; }  // rows of the im2col matrix
  int64_t out_pixels() const { return Ho * Wo; }  // its columns
  bool is_pointwise() const { return kh == 1 && kw == 1 && stride == 1 && pad == 0; }
};

// Validates x [N,C,H,W], w [O,C,kh,kw], bias [O] (pass nullptr for no bias), stride >= 1,
// padding >= 0 and a kernel that fits the padded input; throws ShapeError naming `op` and the
// shapes otherwise.
Conv2dGeometry conv2d_geometry(const Shape& x, const Shape& w, const Shape* bias, int64_t stride, int64_t padding,
                               const char* op = "conv2d");

// The im2col columns (one set per thread) and per-thread partial weight gradients live in a
// Workspace the caller keeps and passes to every call.
template <class T>
using ConvWorkspace = Workspace<T>;

// cols[(c,p,q), (i,j)] = x[c, i*s - pad + p, j*s - pad + q] (0 outside), for one image x [C,H,W].
template <class T>
void im2col(const Conv2dGeometry& g, const T* x, T* cols);
// The adjoint of im2col: dx[c, i*s - pad + p, j*s - pad + q] += cols[(c,p,q), (i,j)], one image.
template <class T>
void col2im(const Conv2dGeometry& g, const T* cols, T* dx);

// db [O] = sum_{n,i,j} gy[n,o,i,j] for gy [N,O,Ho,Wo] (overwritten): each image's plane in 8
// interleaved partial sums of T (one serial chain of double adds was latency-bound: 2 ms of
// conv_in's 3 ms weight gradient at batch 64), the planes accumulated in double. Every
// convolution's bias gradient, on every kernel path.
template <class T>
void conv2d_backward_bias(const Conv2dGeometry& g, const T* gy, T* db);

// Terms added to a convolution's output in the same pass over y (a fused epilogue: the sum costs
// no separate sweep over the activation), after the bias:
//   y[n,o,i,j] = ((conv + b[o]) + image_bias[n,o]) + residual[n,o,i,j]
// image_bias [N,O] is the DDPM ResBlock's time embedding, residual [N,O,Ho,Wo] its skip
// connection; either may be nullptr.
template <class T>
struct ConvAddend {
  const T* image_bias = nullptr;
  const T* residual = nullptr;
};

// y [N,O,Ho,Wo] = conv(x [N,C,H,W], w [O,C,kh,kw]) + b [O] (b may be nullptr), plus `add`.
// Overwrites y.
template <class T>
void conv2d_forward(const Conv2dGeometry& g, const T* x, const T* w, const T* b, T* y, ConvWorkspace<T>& ws,
                    const ConvAddend<T>& add = {});
// dx [N,C,H,W] = conv^T(gy [N,O,Ho,Wo], w): dcols_n = W^T gy_n, dx_n = col2im(dcols_n). Overwrites dx.
template <class T>
void conv2d_backward_input(const Conv2dGeometry& g, const T* gy, const T* w, T* dx, ConvWorkspace<T>& ws);
// dw [O,C,kh,kw] = sum_n gy_n cols_n^T (overwritten, skipped when dw is nullptr) and
// db [O] = sum_{n,i,j} gy[n,o,i,j] (overwritten, skipped when db is nullptr).
template <class T>
void conv2d_backward_weight(const Conv2dGeometry& g, const T* gy, const T* x, T* dw, T* db, ConvWorkspace<T>& ws);

// The three functions above dispatch: float32 3x3 stride-1 convolutions with at least 8 input
// channels run the Winograd kernels of tensor/winograd.h (within a documented rounding bound of
// these, see tests/tensor/test_conv_fast.cpp); everything else, and everything when the
// environment has DD_CONV=generic, runs the generic im2col + GEMM kernels below, which stay
// callable directly as the reference the fast paths are tested against.
template <class T>
void conv2d_forward_generic(const Conv2dGeometry& g, const T* x, const T* w, const T* b, T* y, ConvWorkspace<T>& ws,
                            const ConvAddend<T>& add = {});
template <class T>
void conv2d_backward_input_generic(const Conv2dGeometry& g, const T* gy, const T* w, T* dx, ConvWorkspace<T>& ws);
template <class T>
void conv2d_backward_weight_generic(const Conv2dGeometry& g, const T* gy, const T* x, T* dw, T* db,
                                    ConvWorkspace<T>& ws);

}  // namespace dd
