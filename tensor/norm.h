// Group normalization kernels (Wu & He 2018), PyTorch semantics: x [N, C, S] (S = the product of
// the spatial sizes), C split into G groups of C/G consecutive channels. For each (n, g), over its
// M = (C/G) S elements:
//   mu = mean(x),  var = mean((x - mu)^2)  (biased),  rstd = 1 / sqrt(var + eps)
//   xhat = (x - mu) rstd,  z[n,c,s] = xhat gamma[c] + beta[c]
//   y = z, or y = silu(z) = z sigmoid(z) when the activation is fused (every GroupNorm of the UNet's
//   ResBlocks and its output is followed by SiLU; fused, z is never stored: backward recomputes it)
// Statistics are accumulated in double for both dtypes (one pass over x shifted by its first
// element, so a large common offset does not cancel catastrophically) and returned in double.
#pragma once

#include <cstdint>

#include "tensor/shape.h"

namespace dd {

struct GroupNormGeometry {
  int64_t N, C, S, G;
  bool silu = false;  // y = silu(z) instead of z
  int64_t channels_per_group() const { return C / G; }
};

// Validates x [N, C, ...] (rank >= 2), a group count dividing C, gamma and beta [C] (nullptr: none)
// and eps > 0; throws ShapeError (std::invalid_argument for eps) naming `op` and what it found.
GroupNormGeometry group_norm_geometry(const Shape& x, int64_t groups, const Shape* gamma, const Shape* beta,
                                      double eps, bool silu, const char* op);

// y, mean [N*G], rstd [N*G] are overwritten. gamma and beta may be nullptr (no affine: 1 and 0).
template <class T>
void group_norm_forward(const GroupNormGeometry& g, const T* x, const T* gamma, const T* beta, double eps, T* y,
                        double* mean, double* rstd);

// Given dy, x and the saved statistics, with dz = dy (or dz = dy silu'(z), z recomputed, when fused):
//   dxhat = dz gamma[c]
//   dx = rstd (dxhat - mean_group(dxhat) - xhat mean_group(dxhat xhat))
//   dgamma[c] = sum_{n,s} dz xhat,  dbeta[c] = sum_{n,s} dz
// Each output pointer may be nullptr (not needed); the others are overwritten. beta is only read
// when fused; fused, dx may be dy (each element is read before it is overwritten).
template <class T>
void group_norm_backward(const GroupNormGeometry& g, const T* dy, const T* x, const T* gamma, const T* beta,
                         const double* mean, const double* rstd, T* dx, T* dgamma, T* dbeta);

// ---- GroupNorm (+ SiLU) as a per-(sample, channel) map, for fusing it into the next op ----
// With the statistics known, the normalization is an affine map per (n, c):
//   y[n,c,s] = act((x[n,c,s] - shift[n,c]) scale[n,c] + offset[n,c]),  act = silu or the identity
// with shift = mu[n, group(c)], scale = rstd[n, group(c)] gamma[c], offset = beta[c] (the same
// float values and the same expression group_norm_forward evaluates). A convolution can apply it to
// its input as it reads it (tensor/conv.h), so the normalized activation is never stored.
template <class T>
struct ChannelMap {
  const T* shift = nullptr;   // [N, C]; all three set, or all nullptr (no map)
  const T* scale = nullptr;   // [N, C]
  const T* offset = nullptr;  // [N, C]
  bool silu = false;
  bool defined() const { return shift != nullptr; }
};

// mean [N*G], rstd [N*G] of x, as group_norm_forward computes them (overwritten).
template <class T>
void group_norm_stats(const GroupNormGeometry& g, const T* x, double eps, double* mean, double* rstd);

// shift, scale, offset [N*C] (overwritten) for the map above; gamma, beta may be nullptr (1 and 0).
template <class T>
void group_norm_channel_map(const GroupNormGeometry& g, const T* gamma, const T* beta, const double* mean,
                            const double* rstd, T* shift, T* scale, T* offset);

// y [N, C, S] = the map applied to x [N, C, S] (y overwritten; y may equal x).
template <class T>
void apply_channel_map(const ChannelMap<T>& map, int64_t N, int64_t C, int64_t S, const T* x, T* y);

}  // namespace dd
