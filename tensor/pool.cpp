#include "tensor/pool.h"

#include <algorithm>

namespace dd {

template <class T>
void max_pool2x2_forward(int64_t planes, int64_t H, int64_t W, const T* x, T* y, int64_t* argmax) {
  const int64_t Ho = H / 2, Wo = W / 2;
#pragma omp parallel for schedule(static) if (planes * H * W > (1 << 14))
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t i = 0; i < Ho; ++i)
      for (int64_t j = 0; j < Wo; ++j) {
        const int64_t k = (p * Ho + i) * Wo + j;
        int64_t best = (p * H + 2 * i) * W + 2 * j;
        for (int64_t a = 0; a < 2; ++a)
          for (int64_t b = 0; b < 2; ++b) {
            const int64_t idx = (p * H + 2 * i + a) * W + 2 * j + b;
            if (x[idx] > x[best]) best = idx;
          }
        y[k] = x[best];
        argmax[k] = best;
      }
}

template <class T>
void max_pool2x2_backward(int64_t planes, int64_t H, int64_t W, const T* dy, const int64_t* argmax, T* dx) {
  std::fill(dx, dx + planes * H * W, T(0));
  const int64_t n = planes * (H / 2) * (W / 2);
  // the windows do not overlap, so each x element receives at most one dy: no write conflicts
#pragma omp parallel for schedule(static) if (n > (1 << 14))
  for (int64_t k = 0; k < n; ++k) dx[argmax[k]] += dy[k];
}

template <class T>
void avg_pool2x2_forward(int64_t planes, int64_t H, int64_t W, const T* x, T* y) {
  const int64_t Ho = H / 2, Wo = W / 2;
#pragma omp parallel for schedule(static) if (planes * H * W > (1 << 14))
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t i = 0; i < Ho; ++i) {
      const T* r0 = x + (p * H + 2 * i) * W;
      const T* r1 = r0 + W;
      for (int64_t j = 0; j < Wo; ++j)
        y[(p * Ho + i) * Wo + j] = ((r0[2 * j] + r0[2 * j + 1]) + (r1[2 * j] + r1[2 * j + 1])) * T(0.25);
    }
}

template <class T>
void avg_pool2x2_backward(int64_t planes, int64_t H, int64_t W, const T* dy, T* dx) {
  const int64_t Ho = H / 2, Wo = W / 2;
  std::fill(dx, dx + planes * H * W, T(0));
#pragma omp parallel for schedule(static) if (planes * H * W > (1 << 14))
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t i = 0; i < Ho; ++i) {
      T* r0 = dx + (p * H + 2 * i) * W;
      T* r1 = r0 + W;
      for (int64_t j = 0; j < Wo; ++j) {
        const T g = dy[(p * Ho + i) * Wo + j] * T(0.25);
        r0[2 * j] = r0[2 * j + 1] = r1[2 * j] = r1[2 * j + 1] = g;
      }
    }
}

#define DD_INSTANTIATE(T)                                                                                  \
  template void max_pool2x2_forward(int64_t, int64_t, int64_t, const T*, T*, int64_t*);                    \
  template void max_pool2x2_backward(int64_t, int64_t, int64_t, const T*, const int64_t*, T*);             \
  template void avg_pool2x2_forward(int64_t, int64_t, int64_t, const T*, T*);                              \
  template void avg_pool2x2_backward(int64_t, int64_t, int64_t, const T*, T*);
DD_INSTANTIATE(float)
DD_INSTANTIATE(double)
#undef DD_INSTANTIATE

}  // namespace dd
