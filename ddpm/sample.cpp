#include "ddpm/sample.h"

#include <cmath>
#include <stdexcept>

#include "autograd/var.h"
#include "tensor/shape.h"

namespace dd::ddpm {

namespace {
void check_start(const Schedule& s, int64_t t_start, const char* op) { s.check_t(t_start, op); }
}  // namespace

// Algorithm 2 (DDPM), from step t_start
Tensor<float> denoise_from(const Schedule& s, const Denoiser& model, Tensor<float> x_t, int64_t t_start, Rng& rng,
                           const SampleOptions& options) {
  check_start(s, t_start, "denoise_from");
  NoGradGuard no_grad;
  x_t = x_t.contiguous();
  const int64_t N = x_t.size(0);
  for (int64_t t = t_start; t >= 1; --t) {
    const std::vector<int64_t> tv(N, t);
    const Tensor<float> out = run_denoiser(s, model, x_t, tv, options.variance);
    const ModelPrediction<float> p = p_mean_variance(s, options.variance, out, x_t, tv, options.clip_x0);
    if (options.on_step) options.on_step(s.timesteps[t], x_t, p.x0_hat);
    if (t == 1) {  // the last step returns the decoder mean, noiselessly
      x_t = p.mean;
      break;
    }
    // x_{t-1} = mu_theta(x_t, t) + sigma_t z
    const Tensor<float> z = rng.normal<float>(x_t.shape());
    Tensor<float> next(x_t.shape());
    const float *pm = p.mean.data(), *plv = p.log_variance.data(), *pz = z.data();
    float* pn = next.data();
    const int64_t n = next.numel();
#pragma omp parallel for simd schedule(static) if (n > (1 << 15))
    for (int64_t i = 0; i < n; ++i) pn[i] = pm[i] + std::exp(0.5f * plv[i]) * pz[i];
    x_t = next;
  }
  return x_t;
}

Tensor<float> sample_ancestral(const Schedule& s, const Denoiser& model, const Shape& shape, Rng& rng,
                               const SampleOptions& options) {
  return denoise_from(s, model, rng.normal<float>(shape), s.T, rng, options);  // x_T ~ N(0, I), eq. (1)
}

// DDIM, Song et al. 2021 eq. (12), from step t_start
Tensor<float> ddim_from(const Schedule& s, const Denoiser& model, Tensor<float> x_t, int64_t t_start, Rng& rng,
                        double eta, const SampleOptions& options) {
  check_start(s, t_start, "ddim_from");
  if (!(eta >= 0.0)) throw std::invalid_argument("ddim: expected eta >= 0, got " + std::to_string(eta));
  NoGradGuard no_grad;
  x_t = x_t.contiguous();
  const int64_t N = x_t.size(0);
  // DDIM's own variance is set by eta; the network is asked for eps only (C channels) unless learned.
  const VarianceType net_variance = options.variance == VarianceType::Learned ? VarianceType::Learned : VarianceType::Large;
  for (int64_t t = t_start; t >= 1; --t) {
    const std::vector<int64_t> tv(N, t);
    const Tensor<float> out = run_denoiser(s, model, x_t, tv, net_variance);
    const ModelPrediction<float> p = p_mean_variance(s, net_variance, out, x_t, tv, options.clip_x0);
    if (options.on_step) options.on_step(s.timesteps[t], x_t, p.x0_hat);
    // eps consistent with the (possibly clipped) x0_hat
    const Tensor<float> eps = options.clip_x0 ? predict_eps_from_x0(s, x_t, tv, p.x0_hat) : p.eps;
    const double abar_t = s.abar[t], abar_prev = s.abar[t - 1];
    const double sigma = eta * std::sqrt((1.0 - abar_prev) / (1.0 - abar_t)) * std::sqrt(1.0 - abar_t / abar_prev);
    const double dir_coef = std::sqrt(std::max(0.0, 1.0 - abar_prev - sigma * sigma));
    const double x0_coef = std::sqrt(abar_prev);
    Tensor<float> next(x_t.shape());
    const int64_t n = next.numel();
    const float *px0 = p.x0_hat.data(), *pe = eps.data();
    float* pn = next.data();
    Tensor<float> z;
    if (t > 1 && sigma > 0.0) z = rng.normal<float>(x_t.shape());
    for (int64_t i = 0; i < n; ++i) {
      double v = x0_coef * px0[i] + dir_coef * pe[i];
      if (z.defined()) v += sigma * z.data()[i];
      pn[i] = static_cast<float>(v);
    }
    x_t = next;
  }
  return x_t;
}

Tensor<float> sample_ddim(const Schedule& s, const Denoiser& model, const Shape& shape, Rng& rng, double eta,
                          const SampleOptions& options) {
  return ddim_from(s, model, rng.normal<float>(shape), s.T, rng, eta, options);
}

// DDPM fig. 8: mix two encodings, then Algorithm 2 from t
Tensor<float> interpolate(const Schedule& s, const Denoiser& model, const Tensor<float>& x0_a,
                          const Tensor<float>& x0_b, int64_t t, double lambda, Rng rng, const SampleOptions& options) {
  if (x0_a.shape() != x0_b.shape())
    shape_error("interpolate", "two images of shape " + shape_str(x0_a.shape()), shape_str(x0_b.shape()));
  s.check_t(t, "interpolate");
  const int64_t N = x0_a.size(0);
  const std::vector<int64_t> tv(N, t);
  const Tensor<float> noise_a = rng.normal<float>(x0_a.shape());
  const Tensor<float> noise_b = rng.normal<float>(x0_a.shape());
  const Tensor<float> xa = q_sample(s, x0_a.contiguous(), tv, noise_a), xb = q_sample(s, x0_b.contiguous(), tv, noise_b);
  Tensor<float> mixed(xa.shape());
  for (int64_t i = 0, n = mixed.numel(); i < n; ++i)
    mixed.data()[i] = static_cast<float>((1.0 - lambda) * xa.data()[i] + lambda * xb.data()[i]);
  return denoise_from(s, model, mixed, t, rng, options);
}

}  // namespace dd::ddpm
