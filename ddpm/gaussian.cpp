#include "ddpm/gaussian.h"

#include <cmath>
#include <limits>

#include "tensor/shape.h"

namespace dd::ddpm {

namespace {
constexpr double kLog2Pi = 1.8378770664093454836;  // log(2 pi)
constexpr double kBinHalfWidth = 1.0 / 255.0;        // half of the bin width 2/255 (eq. 13)
constexpr double kEdgeTol = 1e-6;                    // x this close to +-1 is an edge bin

// log(1 - exp(x)) for x <= 0, accurate for x near 0 and for x very negative.
double log1mexp(double x) {
  if (x > -0.6931471805599453) return std::log(-std::expm1(x));
  return std::log1p(-std::exp(x));
}

// log phi(z), the standard normal density; -inf at +-inf.
double log_phi(double z) { return std::isinf(z) ? -std::numeric_limits<double>::infinity() : -0.5 * z * z - 0.5 * kLog2Pi; }

struct Bin {
  double a, b;      // standardized edges
  double log_mass;  // log(Phi(b) - Phi(a))
};
Bin bin_of(double x, double mean, double log_scale) {
  const double inv_sigma = std::exp(-log_scale);
  const double inf = std::numeric_limits<double>::infinity();
  const double lo = x < -1.0 + kEdgeTol ? -inf : (x - kBinHalfWidth - mean) * inv_sigma;  // delta_-(x)
  const double hi = x > 1.0 - kEdgeTol ? inf : (x + kBinHalfWidth - mean) * inv_sigma;    // delta_+(x)
  return {lo, hi, log_normal_cdf_diff(lo, hi)};
}
}  // namespace

// Gaussian KL per dimension (docs/equations.md "The variational bound")
double normal_kl(double mean1, double logvar1, double mean2, double logvar2) {
  const double d = mean1 - mean2;
  return 0.5 * (logvar2 - logvar1 + std::exp(logvar1 - logvar2) + d * d * std::exp(-logvar2) - 1.0);
}

// log Phi(z) in log space (docs/equations.md "Discretized decoder", numerics)
double log_ndtr(double z) {
  if (std::isinf(z)) return z > 0 ? 0.0 : -std::numeric_limits<double>::infinity();
  if (z > 6.0) return std::log1p(-0.5 * std::erfc(z / std::sqrt(2.0)));  // Phi(-z) < 1e-9: log1p keeps it
  if (z > -20.0) return std::log(0.5 * std::erfc(-z / std::sqrt(2.0)));  // erfc(14.1) ~ 1e-88: no underflow
  // Asymptotic (Mills ratio) series, relative error of the truncation < 10395/z^12 < 3e-12 at z = -20.
  const double r = 1.0 / (z * z);
  const double series = 1.0 - r * (1.0 - 3.0 * r * (1.0 - 5.0 * r * (1.0 - 7.0 * r * (1.0 - 9.0 * r))));
  return -0.5 * z * z - std::log(-z) - 0.5 * kLog2Pi + std::log(series);
}

double log_normal_cdf_diff(double a, double b) {
  if (!(a < b)) return -std::numeric_limits<double>::infinity();
  if (a > 0.0) {  // right tail: Phi(b) - Phi(a) = Phi(-a) - Phi(-b), both small
    const double la = log_ndtr(-a), lb = log_ndtr(-b);
    return la + log1mexp(lb - la);
  }
  const double lb = log_ndtr(b), la = log_ndtr(a);
  return lb + log1mexp(la - lb);
}

// DDPM eq. (13), one pixel
double discretized_gaussian_log_likelihood(double x, double mean, double log_scale) {
  return bin_of(x, mean, log_scale).log_mass;
}

double gaussian_log_density(double x, double mean, double logvar) {
  const double d = x - mean;
  return -0.5 * (kLog2Pi + logvar + d * d * std::exp(-logvar));
}

// DDPM eq. (13) as a differentiable op. With P = Phi(b) - Phi(a), a = (lo - mean)/sigma,
// b = (hi - mean)/sigma, sigma = exp(log_scale):
//   d log P / d mean      = (phi(a) - phi(b)) / (sigma P)      (da/dmean = db/dmean = -1/sigma)
//   d log P / d log_scale = (a phi(a) - b phi(b)) / P          (da/dlog_scale = -a)
// Each ratio phi(z)/P is exp(log phi(z) - log P), finite even where P underflows; an infinite edge
// contributes 0.
template <class T>
Var<T> discretized_gaussian_log_likelihood(const Tensor<T>& x, const Var<T>& mean, const Var<T>& log_scale) {
  if (x.shape() != mean.shape() || x.shape() != log_scale.shape())
    shape_error("discretized_gaussian_log_likelihood", "x, mean and log_scale of one shape " + shape_str(x.shape()),
                "mean " + shape_str(mean.shape()) + ", log_scale " + shape_str(log_scale.shape()));
  const Tensor<T> xc = x.contiguous(), mc = mean.value().contiguous(), sc = log_scale.value().contiguous();
  const int64_t n = xc.numel();
  Tensor<T> out(x.shape()), dmean(x.shape()), dlogscale(x.shape());
  const T *px = xc.data(), *pm = mc.data(), *ps = sc.data();
  T *po = out.data(), *pdm = dmean.data(), *pds = dlogscale.data();
#pragma omp parallel for schedule(static) if (n > 4096)
  for (int64_t i = 0; i < n; ++i) {
    const Bin bin = bin_of(px[i], pm[i], ps[i]);
    po[i] = static_cast<T>(bin.log_mass);
    const double ra = std::isinf(bin.a) ? 0.0 : std::exp(log_phi(bin.a) - bin.log_mass);  // phi(a)/P
    const double rb = std::isinf(bin.b) ? 0.0 : std::exp(log_phi(bin.b) - bin.log_mass);  // phi(b)/P
    pdm[i] = static_cast<T>((ra - rb) * std::exp(-static_cast<double>(ps[i])));
    pds[i] = static_cast<T>((std::isinf(bin.a) ? 0.0 : bin.a * ra) - (std::isinf(bin.b) ? 0.0 : bin.b * rb));
  }
  return make_result<T>("discretized_gaussian_log_likelihood", out, {mean, log_scale},
                        [dmean, dlogscale](const Tensor<T>& g, const std::vector<bool>& needs) {
                          std::vector<Tensor<T>> grads(2);
                          const Tensor<T> gc = g.contiguous();
                          const int64_t m = gc.numel();
                          for (int k = 0; k < 2; ++k) {
                            if (!needs[k]) continue;
                            const Tensor<T>& local = k == 0 ? dmean : dlogscale;
                            Tensor<T> r(gc.shape());
                            for (int64_t i = 0; i < m; ++i) r.data()[i] = gc.data()[i] * local.data()[i];
                            grads[k] = r;
                          }
                          return grads;
                        });
}

template Var<float> discretized_gaussian_log_likelihood(const Tensor<float>&, const Var<float>&, const Var<float>&);
template Var<double> discretized_gaussian_log_likelihood(const Tensor<double>&, const Var<double>&, const Var<double>&);

}  // namespace dd::ddpm
