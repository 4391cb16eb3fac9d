#include "tensor/upsample.h"

namespace dd {

template <class T>
void upsample_nearest2x_forward(int64_t planes, int64_t H, int64_t W, const T* x, T* y) {
  const int64_t W2 = 2 * W;
#pragma omp parallel for schedule(static) if (planes * H * W > (1 << 14))
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t i = 0; i < H; ++i) {
      const T* xr = x + (p * H + i) * W;
      T* y0 = y + (p * 2 * H + 2 * i) * W2;
      T* y1 = y0 + W2;
      for (int64_t j = 0; j < W; ++j) y0[2 * j] = y0[2 * j + 1] = y1[2 * j] = y1[2 * j + 1] = xr[j];
    }
}

template <class T>
void upsample_nearest2x_backward(int64_t planes, int64_t H, int64_t W, const T* dy, T* dx) {
  const int64_t W2 = 2 * W;
#pragma omp parallel for schedule(static) if (planes * H * W > (1 << 14))
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t i = 0; i < H; ++i) {
      T* xr = dx + (p * H + i) * W;
      const T* y0 = dy + (p * 2 * H + 2 * i) * W2;
      const T* y1 = y0 + W2;
      for (int64_t j = 0; j < W; ++j) xr[j] = (y0[2 * j] + y0[2 * j + 1]) + (y1[2 * j] + y1[2 * j + 1]);
    }
}

template void upsample_nearest2x_forward(int64_t, int64_t, int64_t, const float*, float*);
template void upsample_nearest2x_forward(int64_t, int64_t, int64_t, const double*, double*);
template void upsample_nearest2x_backward(int64_t, int64_t, int64_t, const float*, float*);
template void upsample_nearest2x_backward(int64_t, int64_t, int64_t, const double*, double*);

}  // namespace dd
