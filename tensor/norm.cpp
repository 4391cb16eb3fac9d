#include "tensor/norm.h"

#include <cmath>

namespace dd {

template <class T>
void group_norm_forward(const GroupNormGeometry& g, const T* x, const T* gamma, const T* beta, double eps, T* y,
                        double* mean, double* rstd) {
  const int64_t cpg = g.channels_per_group(), M = cpg * g.S;
  // One (sample, group) per iteration: its M elements are contiguous in NCHW.
#pragma omp parallel for schedule(static) if (g.N * g.C * g.S > (1 << 14))
  for (int64_t ng = 0; ng < g.N * g.G; ++ng) {
    const T* xg = x + ng * M;
    T* yg = y + ng * M;
    // omp simd: the double sums are split over vector lanes (a fixed order, so still deterministic)
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < M; ++i) s += xg[i];
    const double mu = M > 0 ? s / M : 0.0;
    double ss = 0;
#pragma omp simd reduction(+ : ss)
    for (int64_t i = 0; i < M; ++i) {
      const double d = xg[i] - mu;
      ss += d * d;
    }
    const double r = 1.0 / std::sqrt((M > 0 ? ss / M : 0.0) + eps);
    mean[ng] = mu;
    rstd[ng] = r;
    const int64_t c0 = (ng % g.G) * cpg;
    for (int64_t cc = 0; cc < cpg; ++cc) {
      // y = (x - mu) r gamma + beta = x a + b with a = r gamma, b = beta - mu a
      const double a = r * (gamma ? gamma[c0 + cc] : T(1));
      const double b = (beta ? beta[c0 + cc] : T(0)) - mu * a;
      const T* xc = xg + cc * g.S;
      T* yc = yg + cc * g.S;
      for (int64_t i = 0; i < g.S; ++i) yc[i] = static_cast<T>(xc[i] * a + b);
    }
  }
}

template <class T>
void group_norm_backward(const GroupNormGeometry& g, const T* dy, const T* x, const T* gamma, const double* mean,
                         const double* rstd, T* dx, T* dgamma, T* dbeta) {
  const int64_t cpg = g.channels_per_group(), M = cpg * g.S;
  const bool big = g.N * g.C * g.S > (1 << 14);
  if (dx) {
#pragma omp parallel for schedule(static) if (big)
    for (int64_t ng = 0; ng < g.N * g.G; ++ng) {
      const T* xg = x + ng * M;
      const T* dyg = dy + ng * M;
      T* dxg = dx + ng * M;
      const double mu = mean[ng], r = rstd[ng];
      const int64_t c0 = (ng % g.G) * cpg;
      // sums over the group of dxhat and dxhat * xhat
      double s1 = 0, s2 = 0;
      for (int64_t cc = 0; cc < cpg; ++cc) {
        const double gm = gamma ? gamma[c0 + cc] : T(1);
        const T* xc = xg + cc * g.S;
        const T* dyc = dyg + cc * g.S;
        double a1 = 0, a2 = 0;
#pragma omp simd reduction(+ : a1, a2)
        for (int64_t i = 0; i < g.S; ++i) {
          a1 += dyc[i];
          a2 += dyc[i] * (xc[i] - mu);
        }
        s1 += gm * a1;
        s2 += gm * a2 * r;
      }
      const double m1 = M > 0 ? s1 / M : 0.0, m2 = M > 0 ? s2 / M : 0.0;
      for (int64_t cc = 0; cc < cpg; ++cc) {
        const double gm = gamma ? gamma[c0 + cc] : T(1);
        const T* xc = xg + cc * g.S;
        const T* dyc = dyg + cc * g.S;
        T* dxc = dxg + cc * g.S;
        for (int64_t i = 0; i < g.S; ++i) {
          const double xhat = (xc[i] - mu) * r;
          dxc[i] = static_cast<T>(r * (dyc[i] * gm - m1 - xhat * m2));
        }
      }
    }
  }
  if (dgamma || dbeta) {
    // per channel, summed over samples in a fixed order (deterministic for any thread count)
#pragma omp parallel for schedule(static) if (big)
    for (int64_t c = 0; c < g.C; ++c) {
      const int64_t grp = c / cpg;
      double sg = 0, sb = 0;
      for (int64_t n = 0; n < g.N; ++n) {
        const double mu = mean[n * g.G + grp], r = rstd[n * g.G + grp];
        const T* xc = x + (n * g.C + c) * g.S;
        const T* dyc = dy + (n * g.C + c) * g.S;
        double a = 0;
#pragma omp simd reduction(+ : a, sb)
        for (int64_t i = 0; i < g.S; ++i) {
          sb += dyc[i];
          a += dyc[i] * (xc[i] - mu);
        }
        sg += a * r;
      }
      if (dgamma) dgamma[c] = static_cast<T>(sg);
      if (dbeta) dbeta[c] = static_cast<T>(sb);
    }
  }
}

#define DD_INSTANTIATE(T)                                                                                        \
  template void group_norm_forward(const GroupNormGeometry&, const T*, const T*, const T*, double, T*, double*, \
                                   double*);                                                                     \
  template void group_norm_backward(const GroupNormGeometry&, const T*, const T*, const T*, const double*,      \
                                    const double*, T*, T*, T*);
DD_INSTANTIATE(float)
DD_INSTANTIATE(double)
#undef DD_INSTANTIATE

}  // namespace dd
