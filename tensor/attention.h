// Fused single-head attention over the positions of a feature map, for q, k, v [B, C, N]
// (C channels, N = H*W positions), as in the DDPM AttnBlock:
//   S[i,j] = scale <q[:,i], k[:,j]>,   P[i,:] = softmax(S[i,:]),   out[:,i] = sum_j P[i,j] v[:,j]
// In matrix form per batch item: S = scale Q^T K, out = V P^T. Two GEMMs and a row softmax
// (max subtracted first, sums in double); P [B, N, N] is kept for the backward.
#pragma once

#include <cstdint>

#include "tensor/workspace.h"

namespace dd {

// out [B,C,N] and probs [B,N,N] are overwritten.
template <class T>
void attention_forward(int64_t B, int64_t C, int64_t N, T scale, const T* q, const T* k, const T* v, T* probs,
                       T* out);

// Given dout = dL/dout and the saved P:
//   dV = dout P,   dP = dout^T V,   dS[i,j] = P[i,j] (dP[i,j] - sum_l dP[i,l] P[i,l]),
//   dQ = scale K dS^T,   dK = scale Q dS.
// dq, dk, dv may each be nullptr (not needed); the others are overwritten. ws holds dP/dS.
template <class T>
void attention_backward(int64_t B, int64_t C, int64_t N, T scale, const T* q, const T* k, const T* v,
                        const T* probs, const T* dout, T* dq, T* dk, T* dv, Workspace<T>& ws);

}  // namespace dd
