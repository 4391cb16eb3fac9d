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

namespace dd {

struct GroupNormGeometry {
  int64_t N, C, S, G;
  bool silu = false;  // y = silu(z) instead of z
  int64_t channels_per_group() const { return C / G; }
};

// y, mean [N*G], rstd [N*G] are overwritten. gamma and beta may be nullptr (no affine: 1 and 0).
template <class T>
void group_norm_forward(const GroupNormGeometry& g, const T* x, const T* gamma, const T* beta, double eps, T* y,
                        double* mean, double* rstd);

// Given dy, x and the saved statistics, with dz = dy (or dz = dy silu'(z), z recomputed, when fused):
//   dxhat = dz gamma[c]
//   dx = rstd (dxhat - mean_group(dxhat) - xhat mean_group(dxhat xhat))
//   dgamma[c] = sum_{n,s} dz xhat,  dbeta[c] = sum_{n,s} dz
// Each output pointer may be nullptr (not needed); the others are overwritten. beta is only read
// when fused.
template <class T>
void group_norm_backward(const GroupNormGeometry& g, const T* dy, const T* x, const T* gamma, const T* beta,
                         const double* mean, const double* rstd, T* dx, T* dgamma, T* dbeta);

}  // namespace dd
