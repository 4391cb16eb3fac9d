// Sampling (docs/equations.md "Training and sampling"): Algorithm 2 (ancestral), strided sampling on a
// respaced schedule (pass respace(base, strided_timesteps(T, K)) as the schedule), DDIM with eta
// (Song, Meng & Ermon 2021), progressive decoding through a callback, and interpolation (DDPM fig. 8).
// Every random draw comes from the given dd::Rng, so the same seed gives the same samples.
#pragma once

#include <functional>
#include <string>

#include "ddpm/diffusion.h"
#include "tensor/random.h"

namespace dd::ddpm {

// Called at each step before x_{t-1} is drawn: the network's timestep (schedule.timesteps[t]), x_t,
// and x0_hat(x_t), the current guess of the final image (DDPM fig. 6).
using StepCallback = std::function<void(int64_t t, const Tensor<float>& x_t, const Tensor<float>& x0_hat)>;

enum class SamplerType {
  Ancestral,  // Algorithm 2: x_{t-1} ~ p_theta(x_{t-1} | x_t) with the model variance sigma_t^2
  Ddim        // Song et al. 2021 eq. (12); its variance is set by eta, not by `variance`
};
SamplerType sampler_type_from_string(const std::string& s);  // "ancestral", "ddim"
std::string to_string(SamplerType s);

struct SampleOptions {
  SamplerType sampler = SamplerType::Ancestral;
  double eta = 0.0;                             // DDIM only: 0 deterministic, 1 the posterior variance
  VarianceType variance = VarianceType::Large;  // Learned: the network outputs 2C channels
  bool clip_x0 = true;                          // clip x0_hat to [-1, 1] and use the eq. (7) mean
  StepCallback on_step;                         // optional (progressive decoding)
};

// One reverse step of the sampler in `options`, x_t -> x_{t-1}, at step t (1-based) of schedule `s`
// (a respaced schedule for strided sampling): one network call on the whole batch, then the update.
// At t = 1 it returns the noiseless decoder mean. Every sampler below is a loop over this function,
// and apps/bench times exactly it. z is drawn from `rng` only when the step adds noise.
struct ReverseStep {
  Tensor<float> x_prev;  // x_{t-1}
  Tensor<float> x0_hat;  // the network's guess of x0 at this step (clipped when options.clip_x0)
};
ReverseStep reverse_step(const Schedule& s, const Denoiser& model, const Tensor<float>& x_t, int64_t t, Rng& rng,
                         const SampleOptions& options = {});

// The project's default sampler (apps/sample without flags, train_mnist's previews): ancestral steps
// on a strided schedule of kDefaultSamplingSteps steps (respace(base, strided_timesteps(T, steps)),
// Nichol & Dhariwal 2021 sec. 4), with the posterior variance betatilde_t of the respaced schedule
// ("small", DDPM sec. 3.2; the same steps as DDIM with eta = 1), or the model's own variance when it
// learned one. Why: all 1,000 steps take ~28 min for 1,000 digits on 2 cores, 100 take ~3; at 100
// steps betatilde samples measure better than beta ("large"), which only suits the full chain
// (docs/recipe.md).
constexpr int64_t kDefaultSamplingSteps = 100;
struct DefaultSampler {
  int64_t steps = kDefaultSamplingSteps;  // min(kDefaultSamplingSteps, T)
  SampleOptions options;
};
DefaultSampler default_sampler(int64_t T, bool model_learns_variance);

// A model with a learned variance ([N, 2C, H, W]: eps, then v) seen as an eps-only one ([N, C, H, W]),
// to sample it with a fixed variance.
Denoiser eps_only(Denoiser model);

// x_T ~ N(0, I), then reverse_step for t = T..1 (the sampler of `options`).
Tensor<float> sample(const Schedule& s, const Denoiser& model, const Shape& shape, Rng& rng, const SampleOptions& options = {});
// The same loop from a given x_t at step t_start.
Tensor<float> sample_from(const Schedule& s, const Denoiser& model, Tensor<float> x_t, int64_t t_start, Rng& rng,
                          const SampleOptions& options = {});

// The same with the sampler fixed (options.sampler is ignored).
// Algorithm 2: x_T ~ N(0, I); for t = T..1: x_{t-1} = mu_theta(x_t, t) + sigma_t z, z = 0 at t = 1.
Tensor<float> sample_ancestral(const Schedule& s, const Denoiser& model, const Shape& shape, Rng& rng,
                               const SampleOptions& options = {});
// Algorithm 2 from a given x_t at step t_start (t_start = T and x_T ~ N(0, I) is sample_ancestral).
Tensor<float> denoise_from(const Schedule& s, const Denoiser& model, Tensor<float> x_t, int64_t t_start, Rng& rng,
                           const SampleOptions& options = {});

// DDIM (Song et al. 2021, eq. 12): x_{t-1} = sqrt(abar_{t-1}) x0_hat + sqrt(1 - abar_{t-1} - sigma_t^2) eps
// + sigma_t z, sigma_t = eta sqrt((1 - abar_{t-1}) / (1 - abar_t)) sqrt(1 - abar_t / abar_{t-1}).
// eta = 0 is deterministic given x_T; eta = 1 has the posterior variance betatilde_t.
// (options.variance is ignored: the DDIM variance is set by eta.)
Tensor<float> sample_ddim(const Schedule& s, const Denoiser& model, const Shape& shape, Rng& rng, double eta,
                          const SampleOptions& options = {});
Tensor<float> ddim_from(const Schedule& s, const Denoiser& model, Tensor<float> x_t, int64_t t_start, Rng& rng,
                        double eta, const SampleOptions& options = {});

// DDPM fig. 8: encode x0_a and x0_b (same shape) to x_t and x'_t with q (eq. 4), mix
// xbar_t = (1 - lambda) x_t + lambda x'_t, denoise with Algorithm 2 from step t. `rng` is taken by
// value: calls with the same rng state and different lambdas use the same noise (as in the paper).
Tensor<float> interpolate(const Schedule& s, const Denoiser& model, const Tensor<float>& x0_a,
                          const Tensor<float>& x0_b, int64_t t, double lambda, Rng rng,
                          const SampleOptions& options = {});

}  // namespace dd::ddpm
