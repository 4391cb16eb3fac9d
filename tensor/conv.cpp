#include "tensor/conv.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <type_traits>
#include <string>

#include "tensor/blas.h"
#include "tensor/kernels.h"
#include "tensor/winograd.h"

namespace dd {

Conv2dGeometry conv2d_geometry(const Shape& x, const Shape& w, const Shape* bias, int64_t stride, int64_t padding,
                               const char* op) {
  if (x.size() != 4) shape_error(op, "input [N, C, H, W]", shape_str(x));
  if (w.size() != 4 || w[1] != x[1])
    shape_error(op, "weight [O, " + std::to_string(x[1]) + ", kh, kw] for input " + shape_str(x),
                "weight " + shape_str(w));
  if (bias && (bias->size() != 1 || (*bias)[0] != w[0]))
    shape_error(op, "bias [" + std::to_string(w[0]) + "] for weight " + shape_str(w), "bias " + shape_str(*bias));
  if (stride < 1 || padding < 0)
    shape_error(op, "stride >= 1 and padding >= 0",
                "stride " + std::to_string(stride) + ", padding " + std::to_string(padding));
  Conv2dGeometry g{x[0], x[1], x[2], x[3], w[0], w[2], w[3], stride, padding, 0, 0};
  const int64_t hp = g.H + 2 * padding - g.kh, wp = g.W + 2 * padding - g.kw;
  if (hp < 0 || wp < 0 || g.kh < 1 || g.kw < 1)
    shape_error(op, "a kernel no larger than the padded input " + shape_str(x) + " (padding " + std::to_string(padding) + ")",
                "weight " + shape_str(w));
  g.Ho = hp / stride + 1;
  g.Wo = wp / stride + 1;
  return g;
}

namespace {

// Output columns j whose input column j*s - pad + q lies inside [0, W): j in [lo, hi).
void valid_columns(const Conv2dGeometry& g, int64_t q, int64_t* lo, int64_t* hi) {
  const int64_t s = g.stride;
  const int64_t a = g.pad - q;               // need j*s >= a
  const int64_t b = g.W + g.pad - q;         // need j*s < b
  *lo = a <= 0 ? 0 : std::min<int64_t>((a + s - 1) / s, g.Wo);
  *hi = b <= 0 ? 0 : std::min<int64_t>((b + s - 1) / s, g.Wo);
  *hi = std::max(*hi, *lo);
}

// Images are split over threads when that keeps every thread busy; otherwise BLAS threads instead.
bool split_images(const Conv2dGeometry& g) { return g.N > 1 && omp_get_max_threads() > 1 && !omp_in_parallel(); }

// C [M x N] = op(A) B (+ C when accumulate) for one image, op(A) = A [M x K] or A^T (A stored
// [K x M]); lda = A's row stride, B and C row-major with N columns. float: the small kernel of
// tensor/microkernel.h on the active vector path (tensor/kernels.h; OpenBLAS on the generic path)
// while images run one per thread (no packing copies or call overhead, which dominate these
// per-image products; apps/bench --mode conv, interleaved with the OpenBLAS build: input gradients
// 1.2-1.4x faster, forwards within this machine's noise), OpenBLAS when a single image gets all
// threads. double: OpenBLAS.
void image_gemm(bool parallel_images, bool trans_a, bool accumulate, int64_t M, int64_t N, int64_t K, const float* A,
                int64_t lda, const float* B, float* C) {
  if (parallel_images || omp_get_max_threads() == 1)
    small_gemm(trans_a, accumulate, M, N, K, A, lda, B, N, C, N);
  else
    gemm(trans_a, false, M, N, K, 1.0f, A, lda, B, N, accumulate ? 1.0f : 0.0f, C, N);
}
void image_gemm(bool, bool trans_a, bool accumulate, int64_t M, int64_t N, int64_t K, const double* A, int64_t lda,
                const double* B, double* C) {
  gemm(trans_a, false, M, N, K, 1.0, A, lda, B, N, accumulate ? 1.0 : 0.0, C, N);
}

}  // namespace

template <class T>
void im2col(const Conv2dGeometry& g, const T* x, T* cols) {
  const int64_t P = g.out_pixels(), s = g.stride;
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t p = 0; p < g.kh; ++p)
      for (int64_t q = 0; q < g.kw; ++q) {
        T* out = cols + ((c * g.kh + p) * g.kw + q) * P;
        int64_t lo, hi;
        valid_columns(g, q, &lo, &hi);
        for (int64_t i = 0; i < g.Ho; ++i) {
          T* orow = out + i * g.Wo;
          const int64_t ih = i * s - g.pad + p;
          if (ih < 0 || ih >= g.H) {
            std::fill(orow, orow + g.Wo, T(0));
            continue;
          }
          const T* xrow = x + (c * g.H + ih) * g.W - g.pad + q;  // xrow[j*s] = x[c, ih, j*s - pad + q]
          std::fill(orow, orow + lo, T(0));
          for (int64_t j = lo; j < hi; ++j) orow[j] = xrow[j * s];
          std::fill(orow + hi, orow + g.Wo, T(0));
        }
      }
}

template <class T>
void col2im(const Conv2dGeometry& g, const T* cols, T* dx) {
  const int64_t P = g.out_pixels(), s = g.stride;
  for (int64_t c = 0; c < g.C; ++c)
    for (int64_t p = 0; p < g.kh; ++p)
      for (int64_t q = 0; q < g.kw; ++q) {
        const T* in = cols + ((c * g.kh + p) * g.kw + q) * P;
        int64_t lo, hi;
        valid_columns(g, q, &lo, &hi);
        for (int64_t i = 0; i < g.Ho; ++i) {
          const int64_t ih = i * s - g.pad + p;
          if (ih < 0 || ih >= g.H) continue;
          const T* irow = in + i * g.Wo;
          T* xrow = dx + (c * g.H + ih) * g.W - g.pad + q;
          for (int64_t j = lo; j < hi; ++j) xrow[j * s] += irow[j];
        }
      }
}

template <class T>
void conv2d_forward_generic(const Conv2dGeometry& g, const T* x, const T* w, const T* b, T* y, ConvWorkspace<T>& ws,
                            const ConvAddend<T>& add) {
  const int64_t K = g.patch(), P = g.out_pixels(), in_size = g.C * g.H * g.W;
  const int64_t cols_size = g.is_pointwise() ? 0 : K * P;
  const bool split = split_images(g);
  const int nth = split ? omp_get_max_threads() : 1;
  T* cols_all = ws.get(static_cast<size_t>(nth * cols_size));
  // y_n = W cols_n (+ b, image_bias and residual: y is prefilled with their sum and GEMM adds with
  // beta = 1)
  const bool prefill = b || add.image_bias || add.residual;
  auto image = [&](int64_t n, T* cols) {
    const T* xn = x + n * in_size;
    T* yn = y + n * g.O * P;
    const T* B = xn;
    if (!g.is_pointwise()) {
      im2col(g, xn, cols);
      B = cols;
    }
    if (prefill)
      for (int64_t o = 0; o < g.O; ++o) {
        const T c = (b ? b[o] : T(0)) + (add.image_bias ? add.image_bias[n * g.O + o] : T(0));
        T* row = yn + o * P;
        if (add.residual) {
          const T* res = add.residual + (n * g.O + o) * P;
          for (int64_t k = 0; k < P; ++k) row[k] = c + res[k];
        } else {
          std::fill(row, row + P, c);
        }
      }
    image_gemm(split, false, prefill, g.O, P, K, w, K, B, yn);
  };
  if (split) {
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t n = 0; n < g.N; ++n) image(n, cols_all + omp_get_thread_num() * cols_size);
  } else {
    for (int64_t n = 0; n < g.N; ++n) image(n, cols_all);
  }
}

template <class T>
void conv2d_backward_input_generic(const Conv2dGeometry& g, const T* gy, const T* w, T* dx, ConvWorkspace<T>& ws) {
  const int64_t K = g.patch(), P = g.out_pixels(), in_size = g.C * g.H * g.W;
  const int64_t cols_size = g.is_pointwise() ? 0 : K * P;
  const bool split = split_images(g);
  const int nth = split ? omp_get_max_threads() : 1;
  T* cols_all = ws.get(static_cast<size_t>(nth * cols_size));
  // dcols_n = W^T gy_n, then dx_n = col2im(dcols_n) (pointwise: dx_n = W^T gy_n directly)
  auto image = [&](int64_t n, T* cols) {
    const T* gyn = gy + n * g.O * P;
    T* dxn = dx + n * in_size;
    // dcols_n [K x P] = W^T [K x O] gy_n [O x P]
    T* dcols = g.is_pointwise() ? dxn : cols;
    image_gemm(split, true, false, K, P, g.O, w, K, gyn, dcols);
    if (g.is_pointwise()) return;
    std::fill(dxn, dxn + in_size, T(0));
    col2im(g, cols, dxn);
  };
  if (split) {
#pragma omp parallel for schedule(dynamic, 1)
    for (int64_t n = 0; n < g.N; ++n) image(n, cols_all + omp_get_thread_num() * cols_size);
  } else {
    for (int64_t n = 0; n < g.N; ++n) image(n, cols_all);
  }
}

namespace {

// dw [O x K] = sum_n gy_n [O x P] cols_n^T [P x K] for float32 while images run one per thread (or
// there is one thread), computed transposed, dw^T [K x O] = sum_n cols_n gy_n^T: the small GEMM
// of tensor/kernels.h wants both operands row-major, and gy_n^T (O x P) is the smaller matrix to
// transpose (cols_n has K = C kh kw rows; a 1x1 convolution's cols_n is x_n itself, no copy). N = O
// columns fill the register block. apps/bench --mode conv (1 thread, batch 64): the 1x1 and
// stride-2 weight gradients, which called OpenBLAS with a transposed operand per image, ran at
// 20-25 GFLOP/s. Each thread sums a fixed range of images into its own dw^T, and the partials are
// added in thread order: bit-identical for a fixed thread count.
void backward_weight_small_gemm(const Conv2dGeometry& g, bool split, const float* gy, const float* x, float* dw,
                                Workspace<float>& ws) {
  const int64_t K = g.patch(), P = g.out_pixels(), in_size = g.C * g.H * g.W, wsize = g.O * K;
  const int64_t cols_size = g.is_pointwise() ? 0 : K * P, per_thread = cols_size + P * g.O + wsize;
  const int nth = split ? omp_get_max_threads() : 1;
  float* buf = ws.get(static_cast<size_t>(nth * per_thread));
  int used = 1;
#pragma omp parallel num_threads(nth) if (nth > 1)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
#pragma omp single
    used = nt;
    float* cols = buf + t * per_thread;
    float* gyT = cols + cols_size;
    float* accT = gyT + P * g.O;
    const int64_t n0 = g.N * t / nt, n1 = g.N * (t + 1) / nt;
    if (n0 == n1) std::fill(accT, accT + wsize, 0.0f);
    for (int64_t n = n0; n < n1; ++n) {
      const float* xn = x + n * in_size;
      const float* B = xn;
      if (!g.is_pointwise()) {
        im2col(g, xn, cols);
        B = cols;
      }
      small_transpose(g.O, P, gy + n * g.O * P, gyT);
      // dw^T [K x O] (+)= cols_n [K x P] gy_n^T [P x O]
      small_gemm(false, n > n0, K, g.O, P, B, P, gyT, g.O, accT, g.O);
    }
  }
#pragma omp parallel for schedule(static) if (wsize > (1 << 14) && nth > 1)
  for (int64_t o = 0; o < g.O; ++o)
    for (int64_t k = 0; k < K; ++k) {
      float s = buf[cols_size + P * g.O + k * g.O + o];
      for (int t = 1; t < used; ++t) s += buf[t * per_thread + cols_size + P * g.O + k * g.O + o];
      dw[o * K + k] = s;
    }
}

}  // namespace

template <class T>
void conv2d_backward_bias(const Conv2dGeometry& g, const T* gy, T* db) {
  const int64_t P = g.out_pixels();
#pragma omp parallel for schedule(static) if (g.N * g.O * P > (1 << 15))
  for (int64_t o = 0; o < g.O; ++o) {
    double s = 0;
    for (int64_t n = 0; n < g.N; ++n) {
      const T* r = gy + (n * g.O + o) * P;
      T acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int64_t k = 0;
      for (; k + 8 <= P; k += 8)
        for (int l = 0; l < 8; ++l) acc[l] += r[k + l];
      T t = 0;
      for (; k < P; ++k) t += r[k];
      s += static_cast<double>(t) + acc[0] + acc[1] + acc[2] + acc[3] + acc[4] + acc[5] + acc[6] + acc[7];
    }
    db[o] = static_cast<T>(s);
  }
}

template <class T>
void conv2d_backward_weight_generic(const Conv2dGeometry& g, const T* gy, const T* x, T* dw, T* db, ConvWorkspace<T>& ws) {
  const int64_t K = g.patch(), P = g.out_pixels(), in_size = g.C * g.H * g.W, wsize = g.O * K;
  if (db) conv2d_backward_bias(g, gy, db);
  if (!dw) return;
  const int64_t cols_size = g.is_pointwise() ? 0 : K * P;
  const bool split = split_images(g);
  if constexpr (std::is_same_v<T, float>)
    // (K < O, as conv_in's 9 x 32: transposing gy would cost more than OpenBLAS's own packing)
    if ((split || omp_get_max_threads() == 1) && g.N > 0 && K >= g.O)
      return backward_weight_small_gemm(g, split, gy, x, dw, ws);
  const int nth = split ? omp_get_max_threads() : 1;
  // Per thread: im2col columns, then (split only) a partial dw summed in thread order afterwards,
  // so a fixed thread count gives bit-identical gradients.
  T* buf = ws.get(static_cast<size_t>(nth * cols_size + (split ? nth * wsize : 0)));
  // dw += gy_n cols_n^T   ([O,P] x [P,K])
  auto image = [&](int64_t n, T* cols, T* acc, bool first) {
    const T* xn = x + n * in_size;
    const T* B = xn;
    if (!g.is_pointwise()) {
      im2col(g, xn, cols);
      B = cols;
    }
    gemm(false, true, g.O, K, P, T(1), gy + n * g.O * P, P, B, P, first ? T(0) : T(1), acc, K);
  };
  if (!split) {
    if (g.N == 0) std::fill(dw, dw + wsize, T(0));
    for (int64_t n = 0; n < g.N; ++n) image(n, buf, dw, n == 0);
    return;
  }
  T* partials = buf + nth * cols_size;
  int used = 1;
#pragma omp parallel num_threads(nth)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
#pragma omp single
    used = nt;
    const int64_t n0 = g.N * t / nt, n1 = g.N * (t + 1) / nt;
    T* acc = partials + t * wsize;
    if (n0 == n1) std::fill(acc, acc + wsize, T(0));
    for (int64_t n = n0; n < n1; ++n) image(n, buf + t * cols_size, acc, n == n0);
  }
#pragma omp parallel for schedule(static) if (wsize > (1 << 14))
  for (int64_t i = 0; i < wsize; ++i) {
    T s = partials[i];
    for (int t = 1; t < used; ++t) s += partials[t * wsize + i];
    dw[i] = s;
  }
}

// ---- dispatch: float32 3x3 stride-1 convolutions go to the Winograd kernels (tensor/winograd),
// everything else (float64, 1x1, strided, fewer than 8 input channels) to the generic kernels above.
// DD_CONV=generic in the environment forces the generic kernels (for A/B timing), and so does the
// generic kernel path (DD_KERNELS=generic, or a CPU without AVX2: tensor/kernels.h).
bool use_winograd(const Conv2dGeometry& g) {
  static const bool disabled = [] {
    const char* e = std::getenv("DD_CONV");
    return e && std::string(e) == "generic";
  }();
  // C < 8: a 1-channel input (conv_in) leaves the transforms with almost no GEMM work to amortise
  // them; apps/bench --mode conv measures the generic kernels 2-3x faster there.
  return !disabled && winograd_supported(g) && g.C >= 8 && kernel_table() != nullptr;
}

template <class T>
void conv2d_forward(const Conv2dGeometry& g, const T* x, const T* w, const T* b, T* y, ConvWorkspace<T>& ws,
                    const ConvAddend<T>& add) {
  if constexpr (std::is_same_v<T, float>)
    if (use_winograd(g)) return winograd_conv2d_forward(g, x, w, b, y, ws, 0, add);
  conv2d_forward_generic(g, x, w, b, y, ws, add);
}

template <class T>
void conv2d_backward_input(const Conv2dGeometry& g, const T* gy, const T* w, T* dx, ConvWorkspace<T>& ws) {
  if constexpr (std::is_same_v<T, float>)
    if (use_winograd(g)) return winograd_conv2d_backward_input(g, gy, w, dx, ws);
  conv2d_backward_input_generic(g, gy, w, dx, ws);
}

template <class T>
void conv2d_backward_weight(const Conv2dGeometry& g, const T* gy, const T* x, T* dw, T* db, ConvWorkspace<T>& ws) {
  if constexpr (std::is_same_v<T, float>)
    if (use_winograd(g)) return winograd_conv2d_backward_weight(g, gy, x, dw, db, ws);
  conv2d_backward_weight_generic(g, gy, x, dw, db, ws);
}

#define DD_INSTANTIATE(T)                                                                                     \
  template void im2col(const Conv2dGeometry&, const T*, T*);                                                  \
  template void col2im(const Conv2dGeometry&, const T*, T*);                                                  \
  template void conv2d_backward_bias(const Conv2dGeometry&, const T*, T*);                                    \
  template void conv2d_forward(const Conv2dGeometry&, const T*, const T*, const T*, T*, ConvWorkspace<T>&,    \
                               const ConvAddend<T>&);                                                         \
  template void conv2d_backward_input(const Conv2dGeometry&, const T*, const T*, T*, ConvWorkspace<T>&);      \
  template void conv2d_backward_weight(const Conv2dGeometry&, const T*, const T*, T*, T*, ConvWorkspace<T>&);  \
  template void conv2d_forward_generic(const Conv2dGeometry&, const T*, const T*, const T*, T*, ConvWorkspace<T>&, \
                                       const ConvAddend<T>&);                                                 \
  template void conv2d_backward_input_generic(const Conv2dGeometry&, const T*, const T*, T*, ConvWorkspace<T>&); \
  template void conv2d_backward_weight_generic(const Conv2dGeometry&, const T*, const T*, T*, T*, ConvWorkspace<T>&);
DD_INSTANTIATE(float)
DD_INSTANTIATE(double)
#undef DD_INSTANTIATE

}  // namespace dd
