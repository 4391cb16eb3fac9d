// Winograd minimal-filtering convolution for 3x3 stride-1 float32 convolutions (NCHW), forward,
// input gradient and weight gradient: the fast path beside the generic im2col + GEMM kernels of
// tensor/conv.h (same geometry, same raw pointers, same results up to a documented rounding bound).
//
// Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016): an m x m output
// tile of a 3x3 correlation is
//     Y = A^T [ (G g G^T) (.) (B^T d B) ] A          (.) = elementwise, d = (m+2) x (m+2) input tile
// F(2x2,3x3) (alpha = 4) needs 16 multiplies per 4 outputs instead of 36 (2.25x fewer);
// F(4x4,3x3) (alpha = 6) needs 36 per 16 outputs instead of 144 (4x fewer), at the price of larger
// transform constants and so larger rounding error (about 1e-4 .. 1e-3 relative in float32).
//
// As in the paper (section 4) and in oneDNN / NNPACK, the elementwise products are summed over
// channels, so for each of the alpha^2 transform positions xi the work is one GEMM over tiles:
//     M[xi] [tiles x O] = V[xi] [tiles x C] * U[xi] [C x O]
// Tiles are processed in chunks of about 32 (L2-sized buffers), handed to the OpenMP threads one at
// a time; the weight gradient sums fixed groups of chunks in order, so a fixed thread count gives
// bit-identical results whichever thread ran which chunk. The products
// run on an own AVX2/FMA register-blocked kernel (winograd.cpp says why not sgemm).
// All scratch lives in the caller's Workspace: nothing is allocated once it has grown.
//
//   forward         : U = G g G^T,  V = B^T d B,  M = U V (per xi),  y = A^T M A (+ bias)
//   backward-input  : a forward convolution of gy with the kernel rotated 180 degrees and the
//                     channel axes swapped, padding 2 - pad (so the output has the input's size)
//   backward-weight : the adjoint of the forward in the Winograd domain (exact in exact arithmetic,
//                     since forward Winograd is): dU[xi] = sum_tiles (A gy_tile A^T)[xi] V[xi]^T,
//                     i.e. per xi one GEMM [O x tiles] x [tiles x C], then dw = G^T dU G.
#pragma once

#include "tensor/conv.h"

namespace dd {

// 3x3 kernel, stride 1, padding 0..2 (the UNet's 3x3 pad-1 convolutions; the stride-2
// downsample and the 1x1 convolutions stay on the generic path).
bool winograd_supported(const Conv2dGeometry& g);

// Output tile size m (2 or 4) chosen for a geometry: F(4x4,3x3) unless the map is so small that
// the padding of the last tile row/column wastes more than F(4x4)'s extra savings.
int winograd_tile(const Conv2dGeometry& g);

// Same contracts as conv2d_forward / conv2d_backward_input / conv2d_backward_weight (outputs are
// overwritten; b, dw, db may be nullptr). tile = 0 picks winograd_tile(g); 2 or 4 forces it.
// Throws std::invalid_argument when !winograd_supported(g) or the tile is not 0, 2 or 4.
void winograd_conv2d_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* b, float* y,
                             Workspace<float>& ws, int tile = 0, const ConvAddend<float>& add = {});
void winograd_conv2d_backward_input(const Conv2dGeometry& g, const float* gy, const float* w, float* dx,
                                    Workspace<float>& ws, int tile = 0);
void winograd_conv2d_backward_weight(const Conv2dGeometry& g, const float* gy, const float* x, float* dw, float* db,
                                     Workspace<float>& ws, int tile = 0);

}  // namespace dd
