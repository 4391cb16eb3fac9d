#include "ddpm/diffusion.h"

#include <algorithm>
#include <cmath>

#include "tensor/shape.h"

namespace dd::ddpm {

template <class T>
void check_batch(const Schedule& s, const Tensor<T>& x, const std::vector<int64_t>& t, const char* op) {
  if (x.dim() < 2) shape_error(op, "a batch [N, C, ...]", shape_str(x.shape()));
  if (x.size(0) != static_cast<int64_t>(t.size()))
    shape_error(op, "one timestep per sample (" + std::to_string(x.size(0)) + ")", std::to_string(t.size()) + " timesteps");
  for (int64_t ti : t) s.check_t(ti, op);
}

namespace {
// out[n, i] = f(n, a[n, i], b[n, i]) over contiguous [N, inner] views of same-shape a and b.
template <class T, class F>
Tensor<T> per_sample_zip(const Tensor<T>& a, const Tensor<T>& b, const char* op, F f) {
  if (a.shape() != b.shape()) shape_error(op, "two tensors of shape " + shape_str(a.shape()), shape_str(b.shape()));
  const Tensor<T> ac = a.contiguous(), bc = b.contiguous();
  Tensor<T> out(a.shape());
  const int64_t N = a.size(0), inner = a.numel() / std::max<int64_t>(N, 1);
  const T *pa = ac.data(), *pb = bc.data();
  T* po = out.data();
#pragma omp parallel for schedule(static) if (a.numel() > (1 << 15))
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < inner; ++i) po[n * inner + i] = static_cast<T>(f(n, static_cast<double>(pa[n * inner + i]), static_cast<double>(pb[n * inner + i])));
  return out;
}
}  // namespace

Tensor<float> run_denoiser(const Schedule& s, const Denoiser& model, const Tensor<float>& x_t,
                           const std::vector<int64_t>& t, VarianceType variance) {
  check_batch(s, x_t, t, "run_denoiser");
  std::vector<int64_t> network_t(t.size());
  for (size_t i = 0; i < t.size(); ++i) network_t[i] = s.timesteps[t[i]];
  Tensor<float> out = model(x_t, network_t);
  Shape want = x_t.shape();
  if (variance == VarianceType::Learned) want[1] *= 2;
  if (out.shape() != want)
    shape_error("denoiser output", shape_str(want) + (variance == VarianceType::Learned ? " (eps and v: 2C channels)" : " (eps)"),
                shape_str(out.shape()));
  return out;
}

// DDPM eq. (4)
template <class T>
Tensor<T> q_sample(const Schedule& s, const Tensor<T>& x0, const std::vector<int64_t>& t, const Tensor<T>& noise) {
  check_batch(s, x0, t, "q_sample");
  return per_sample_zip(x0, noise, "q_sample (x0, noise)", [&](int64_t n, double x, double e) {
    return s.sqrt_abar[t[n]] * x + s.sqrt_one_minus_abar[t[n]] * e;
  });
}

// DDPM eqs. (6)-(7)
template <class T>
Posterior<T> q_posterior(const Schedule& s, const Tensor<T>& x0, const Tensor<T>& x_t, const std::vector<int64_t>& t) {
  check_batch(s, x0, t, "q_posterior");
  Posterior<T> p;
  p.mean = per_sample_zip(x0, x_t, "q_posterior (x0, x_t)", [&](int64_t n, double a, double b) {
    return s.posterior_mean_coef1[t[n]] * a + s.posterior_mean_coef2[t[n]] * b;
  });
  for (int64_t ti : t) {
    p.variance.push_back(s.posterior_variance[ti]);
    p.log_variance.push_back(s.posterior_log_variance_clipped[ti]);
  }
  return p;
}

// eq. (4) solved for x0
template <class T>
Tensor<T> predict_x0_from_eps(const Schedule& s, const Tensor<T>& x_t, const std::vector<int64_t>& t, const Tensor<T>& eps) {
  check_batch(s, x_t, t, "predict_x0_from_eps");
  return per_sample_zip(x_t, eps, "predict_x0_from_eps (x_t, eps)", [&](int64_t n, double x, double e) {
    return s.sqrt_recip_abar[t[n]] * x - s.sqrt_recipm1_abar[t[n]] * e;
  });
}

// eq. (4) solved for eps
template <class T>
Tensor<T> predict_eps_from_x0(const Schedule& s, const Tensor<T>& x_t, const std::vector<int64_t>& t, const Tensor<T>& x0) {
  check_batch(s, x_t, t, "predict_eps_from_x0");
  return per_sample_zip(x_t, x0, "predict_eps_from_x0 (x_t, x0)", [&](int64_t n, double x, double x0v) {
    return (x - s.sqrt_abar[t[n]] * x0v) / s.sqrt_one_minus_abar[t[n]];
  });
}

// DDPM eq. (11) (or eq. (7) with a clipped x0_hat) and the variance choice
template <class T>
ModelPrediction<T> p_mean_variance(const Schedule& s, VarianceType variance, const Tensor<T>& model_output,
                                   const Tensor<T>& x_t, const std::vector<int64_t>& t, bool clip_x0) {
  check_batch(s, x_t, t, "p_mean_variance");
  const int64_t N = x_t.size(0), C = x_t.size(1);
  Shape want = x_t.shape();
  if (variance == VarianceType::Learned) want[1] = 2 * C;
  if (model_output.shape() != want)
    shape_error("p_mean_variance", "model output " + shape_str(want), shape_str(model_output.shape()));

  ModelPrediction<T> p;
  const Tensor<T> out = model_output.contiguous();
  p.eps = (variance == VarianceType::Learned ? out.slice(1, 0, C) : out).contiguous();
  p.x0_hat = predict_x0_from_eps(s, x_t, t, p.eps);
  if (clip_x0) {
    T* px = p.x0_hat.data();
    for (int64_t i = 0, n = p.x0_hat.numel(); i < n; ++i) px[i] = std::min<T>(T(1), std::max<T>(T(-1), px[i]));
    p.mean = q_posterior(s, p.x0_hat, x_t, t).mean;  // DDPM eq. (7) at x0 = clip(x0_hat)
  } else {
    // DDPM eq. (11): mu = (x_t - beta_t / sqrt(1 - abar_t) eps) / sqrt(alpha_t)
    p.mean = per_sample_zip(x_t, p.eps, "p_mean_variance (x_t, eps)", [&](int64_t n, double x, double e) {
      const int64_t ti = t[n];
      return (x - s.betas[ti] / s.sqrt_one_minus_abar[ti] * e) / std::sqrt(s.alphas[ti]);
    });
  }
  if (variance == VarianceType::Learned) {
    // Nichol & Dhariwal 2021: log sigma^2 = frac log beta_t + (1 - frac) log betatilde_t, frac = (v + 1)/2
    const Tensor<T> v = out.slice(1, C, 2 * C).contiguous();
    p.log_variance = per_sample_zip(v, v, "p_mean_variance (v)", [&](int64_t n, double vv, double) {
      const double frac = (vv + 1.0) / 2.0;
      return frac * s.log_betas[t[n]] + (1.0 - frac) * s.learned_log_variance_min[t[n]];
    });
  } else {
    p.log_variance = Tensor<T>(x_t.shape());
    const int64_t inner = x_t.numel() / N;
    for (int64_t n = 0; n < N; ++n)
      std::fill(p.log_variance.data() + n * inner, p.log_variance.data() + (n + 1) * inner,
                static_cast<T>(s.model_log_variance(variance, t[n])));
  }
  return p;
}

#define DD_DDPM_DIFFUSION(T)                                                                                       \
  template void check_batch(const Schedule&, const Tensor<T>&, const std::vector<int64_t>&, const char*);         \
  template Tensor<T> q_sample(const Schedule&, const Tensor<T>&, const std::vector<int64_t>&, const Tensor<T>&);  \
  template Posterior<T> q_posterior(const Schedule&, const Tensor<T>&, const Tensor<T>&, const std::vector<int64_t>&); \
  template Tensor<T> predict_x0_from_eps(const Schedule&, const Tensor<T>&, const std::vector<int64_t>&, const Tensor<T>&); \
  template Tensor<T> predict_eps_from_x0(const Schedule&, const Tensor<T>&, const std::vector<int64_t>&, const Tensor<T>&); \
  template ModelPrediction<T> p_mean_variance(const Schedule&, VarianceType, const Tensor<T>&, const Tensor<T>&,   \
                                              const std::vector<int64_t>&, bool);
DD_DDPM_DIFFUSION(float)
DD_DDPM_DIFFUSION(double)

}  // namespace dd::ddpm
