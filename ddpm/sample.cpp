#include "ddpm/sample.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "autograd/var.h"
#include "tensor/shape.h"

namespace dd::ddpm {

SamplerType sampler_type_from_string(const std::string& s) {
  if (s == "ancestral") return SamplerType::Ancestral;
  if (s == "ddim") return SamplerType::Ddim;
  throw std::invalid_argument("sampler: expected one of ancestral, ddim, got '" + s + "'");
}

std::string to_string(SamplerType s) { return s == SamplerType::Ddim ? "ddim" : "ancestral"; }

DefaultSampler default_sampler(int64_t T, bool model_learns_variance) {
  if (T < 2) throw std::invalid_argument("default_sampler: expected T >= 2, got " + std::to_string(T));
  DefaultSampler d;
  d.steps = std::min(kDefaultSamplingSteps, T);
  d.options.sampler = SamplerType::Ancestral;
  d.options.variance = model_learns_variance ? VarianceType::Learned : VarianceType::Small;
  d.options.clip_x0 = true;
  return d;
}

Denoiser eps_only(Denoiser model) {
  return [model = std::move(model)](const Tensor<float>& x_t, const std::vector<int64_t>& t) {
    const Tensor<float> out = model(x_t, t);
    const int64_t C = x_t.dim() >= 2 ? x_t.size(1) : 0;
    if (out.dim() != x_t.dim() || out.dim() < 2 || out.size(1) != 2 * C)
      shape_error("eps_only", "a learned-variance output of 2C = " + std::to_string(2 * C) + " channels", shape_str(out.shape()));
    return out.slice(1, 0, C).contiguous();
  };
}

ReverseStep reverse_step(const Schedule& s, const Denoiser& model, const Tensor<float>& x_t_in, int64_t t, Rng& rng,
                         const SampleOptions& options) {
  s.check_t(t, "reverse_step");
  NoGradGuard no_grad;
  const Tensor<float> x_t = x_t_in.contiguous();
  const int64_t N = x_t.size(0);
  const std::vector<int64_t> tv(N, t);
  const int64_t n = x_t.numel();
  Tensor<float> next(x_t.shape());
  float* pn = next.data();
  if (options.sampler == SamplerType::Ancestral) {
    // Algorithm 2: x_{t-1} = mu_theta(x_t, t) + sigma_t z
    const Tensor<float> out = run_denoiser(s, model, x_t, tv, options.variance);
    ModelPrediction<float> p = p_mean_variance(s, options.variance, out, x_t, tv, options.clip_x0);
    if (t == 1) return {p.mean, p.x0_hat};  // the last step returns the decoder mean, noiselessly
    const Tensor<float> z = rng.normal<float>(x_t.shape());
    const float *pm = p.mean.data(), *plv = p.log_variance.data(), *pz = z.data();
#pragma omp parallel for simd schedule(static) if (n > (1 << 15))
    for (int64_t i = 0; i < n; ++i) pn[i] = pm[i] + std::exp(0.5f * plv[i]) * pz[i];
    return {next, p.x0_hat};
  }
  // DDIM, Song et al. 2021 eq. (12). Its own variance is set by eta; the network is asked for eps
  // only (C channels) unless it was trained with a learned variance.
  if (!(options.eta >= 0.0)) throw std::invalid_argument("ddim: expected eta >= 0, got " + std::to_string(options.eta));
  const VarianceType net_variance = options.variance == VarianceType::Learned ? VarianceType::Learned : VarianceType::Large;
  const Tensor<float> out = run_denoiser(s, model, x_t, tv, net_variance);
  const ModelPrediction<float> p = p_mean_variance(s, net_variance, out, x_t, tv, options.clip_x0);
  // eps consistent with the (possibly clipped) x0_hat
  const Tensor<float> eps = options.clip_x0 ? predict_eps_from_x0(s, x_t, tv, p.x0_hat) : p.eps;
  const double abar_t = s.abar[t], abar_prev = s.abar[t - 1];
  const double sigma = options.eta * std::sqrt((1.0 - abar_prev) / (1.0 - abar_t)) * std::sqrt(1.0 - abar_t / abar_prev);
  const double direction_coef = std::sqrt(std::max(0.0, 1.0 - abar_prev - sigma * sigma));
  const double x0_coef = std::sqrt(abar_prev);
  const float *px0 = p.x0_hat.data(), *pe = eps.data();
  Tensor<float> z;
  if (t > 1 && sigma > 0.0) z = rng.normal<float>(x_t.shape());
  const float* pz = z.defined() ? z.data() : nullptr;
  for (int64_t i = 0; i < n; ++i) {
    double v = x0_coef * px0[i] + direction_coef * pe[i];
    if (pz) v += sigma * pz[i];
    pn[i] = static_cast<float>(v);
  }
  return {next, p.x0_hat};
}

Tensor<float> sample_from(const Schedule& s, const Denoiser& model, Tensor<float> x_t, int64_t t_start, Rng& rng,
                          const SampleOptions& options) {
  s.check_t(t_start, options.sampler == SamplerType::Ddim ? "ddim_from" : "denoise_from");
  if (options.sampler == SamplerType::Ddim && !(options.eta >= 0.0))
    throw std::invalid_argument("ddim: expected eta >= 0, got " + std::to_string(options.eta));
  for (int64_t t = t_start; t >= 1; --t) {
    ReverseStep step = reverse_step(s, model, x_t, t, rng, options);
    if (options.on_step) options.on_step(s.timesteps[t], x_t, step.x0_hat);
    x_t = std::move(step.x_prev);
  }
  return x_t;
}

Tensor<float> sample(const Schedule& s, const Denoiser& model, const Shape& shape, Rng& rng, const SampleOptions& options) {
  return sample_from(s, model, rng.normal<float>(shape), s.T, rng, options);  // x_T ~ N(0, I), eq. (1)
}

Tensor<float> denoise_from(const Schedule& s, const Denoiser& model, Tensor<float> x_t, int64_t t_start, Rng& rng,
                           const SampleOptions& options) {
  SampleOptions o = options;
  o.sampler = SamplerType::Ancestral;
  return sample_from(s, model, std::move(x_t), t_start, rng, o);
}

Tensor<float> sample_ancestral(const Schedule& s, const Denoiser& model, const Shape& shape, Rng& rng,
                               const SampleOptions& options) {
  return denoise_from(s, model, rng.normal<float>(shape), s.T, rng, options);  // x_T ~ N(0, I), eq. (1)
}

Tensor<float> ddim_from(const Schedule& s, const Denoiser& model, Tensor<float> x_t, int64_t t_start, Rng& rng,
                        double eta, const SampleOptions& options) {
  SampleOptions o = options;
  o.sampler = SamplerType::Ddim;
  o.eta = eta;
  return sample_from(s, model, std::move(x_t), t_start, rng, o);
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
