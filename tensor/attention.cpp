#include "tensor/attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "tensor/blas.h"
#include "tensor/fastmath.h"

namespace dd {

namespace {
// Batch items go to OpenMP threads (each with a one-thread GEMM) when there are enough of them.
bool split_batch(int64_t B) { return B > 1 && omp_get_max_threads() > 1 && !omp_in_parallel(); }

// Row softmax in place over an [N, N] block: p = exp(s - max) / sum exp(s - max). exp_fast: a
// vectorizable float exp (relative error < 2e-7; std::exp for double), where std::exp kept the
// loop scalar and took most of the attention forward's time.
template <class T>
void softmax_rows(int64_t N, T* s) {
  for (int64_t i = 0; i < N; ++i) {
    T* row = s + i * N;
    const T m = *std::max_element(row, row + N);
    double z = 0;
#pragma omp simd reduction(+ : z)
    for (int64_t j = 0; j < N; ++j) {
      row[j] = exp_fast(row[j] - m);
      z += row[j];
    }
    const double inv = 1.0 / z;
    for (int64_t j = 0; j < N; ++j) row[j] = static_cast<T>(row[j] * inv);
  }
}
}  // namespace

template <class T>
void attention_forward(int64_t B, int64_t C, int64_t N, T scale, const T* q, const T* k, const T* v, T* probs,
                       T* out) {
  auto item = [&](int64_t b) {
    const int64_t o = b * C * N;
    T* p = probs + b * N * N;
    gemm(true, false, N, N, C, scale, q + o, N, k + o, N, T(0), p, N);  // S = scale Q^T K
    softmax_rows(N, p);
    gemm(false, true, C, N, N, T(1), v + o, N, p, N, T(0), out + o, N);  // out = V P^T
  };
  if (split_batch(B)) {
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t b = 0; b < B; ++b) item(b);
  } else {
    for (int64_t b = 0; b < B; ++b) item(b);
  }
}

template <class T>
void attention_backward(int64_t B, int64_t C, int64_t N, T scale, const T* q, const T* k, const T* v,
                        const T* probs, const T* dout, T* dq, T* dk, T* dv, Workspace<T>& ws) {
  const bool split = split_batch(B);
  const int nth = split ? omp_get_max_threads() : 1;
  T* scratch = (dq || dk) ? ws.get(static_cast<size_t>(nth * N * N)) : nullptr;
  auto item = [&](int64_t b, T* ds) {
    const int64_t o = b * C * N;
    const T* p = probs + b * N * N;
    const T* g = dout + o;
    if (dv) gemm(false, false, C, N, N, T(1), g, N, p, N, T(0), dv + o, N);  // dV = dout P
    if (!dq && !dk) return;
    gemm(true, false, N, N, C, T(1), g, N, v + o, N, T(0), ds, N);  // dP = dout^T V
    for (int64_t i = 0; i < N; ++i) {                               // dS = P (dP - rowsum(dP P))
      T* r = ds + i * N;
      const T* pr = p + i * N;
      double dot = 0;
      for (int64_t j = 0; j < N; ++j) dot += static_cast<double>(r[j]) * pr[j];
      for (int64_t j = 0; j < N; ++j) r[j] = static_cast<T>(pr[j] * (r[j] - dot));
    }
    if (dq) gemm(false, true, C, N, N, scale, k + o, N, ds, N, T(0), dq + o, N);   // dQ = scale K dS^T
    if (dk) gemm(false, false, C, N, N, scale, q + o, N, ds, N, T(0), dk + o, N);  // dK = scale Q dS
  };
  if (split) {
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t b = 0; b < B; ++b) item(b, scratch ? scratch + omp_get_thread_num() * N * N : nullptr);
  } else {
    for (int64_t b = 0; b < B; ++b) item(b, scratch);
  }
}

#define DD_INSTANTIATE(T)                                                                                       \
  template void attention_forward(int64_t, int64_t, int64_t, T, const T*, const T*, const T*, T*, T*);         \
  template void attention_backward(int64_t, int64_t, int64_t, T, const T*, const T*, const T*, const T*,       \
                                   const T*, T*, T*, T*, Workspace<T>&);
DD_INSTANTIATE(float)
DD_INSTANTIATE(double)
#undef DD_INSTANTIATE

}  // namespace dd
