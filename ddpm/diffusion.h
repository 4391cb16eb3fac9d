// The forward process, its posterior and the model's reverse step (docs/equations.md "Forward process",
// "Forward-process posterior", "Reverse process"), on batches: x [N, C, ...] with one 1-based
// timestep per sample (t.size() == N). Schedule constants are float64; tensors are float (training,
// sampling) or double (checks). Each function is one equation.
#pragma once

#include <functional>
#include <vector>

#include "ddpm/schedule.h"
#include "tensor/tensor.h"

namespace dd::ddpm {

// The denoiser eps_theta(x_t, t) for sampling and evaluation: x_t [N, C, H, W] and the 1-based
// timestep of each sample *of the schedule the network was trained on* (for a respaced schedule the
// functions here pass schedule.timesteps[t], so the network always sees its own timesteps; a UNet
// that embeds 0-based steps is called with t - 1 by its adapter). Returns [N, C, H, W] (eps), or
// [N, 2C, H, W] for a learned variance (eps, then v in [-1, 1]).
using Denoiser = std::function<Tensor<float>(const Tensor<float>& x_t, const std::vector<int64_t>& t)>;

// Calls `model` on x_t at schedule steps t (translated to the network's timesteps) and checks that it
// returns C channels (2C when `variance` is Learned).
Tensor<float> run_denoiser(const Schedule& s, const Denoiser& model, const Tensor<float>& x_t,
                           const std::vector<int64_t>& t, VarianceType variance);

// DDPM eq. (4): x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps.
template <class T>
Tensor<T> q_sample(const Schedule& s, const Tensor<T>& x0, const std::vector<int64_t>& t, const Tensor<T>& noise);

// DDPM eqs. (6)-(7): q(x_{t-1} | x_t, x0) = N(mutilde_t, betatilde_t).
template <class T>
struct Posterior {
  Tensor<T> mean;                     // mutilde_t(x_t, x0), shape of x_t
  std::vector<double> variance;       // betatilde_t per sample
  std::vector<double> log_variance;   // log betatilde_t per sample, clipped (betatilde_2 at t = 1)
};
template <class T>
Posterior<T> q_posterior(const Schedule& s, const Tensor<T>& x0, const Tensor<T>& x_t, const std::vector<int64_t>& t);

// x0_hat = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t)  (eq. 4 solved for x0; docs/equations.md).
template <class T>
Tensor<T> predict_x0_from_eps(const Schedule& s, const Tensor<T>& x_t, const std::vector<int64_t>& t, const Tensor<T>& eps);
// eps = (x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t): the inverse (DDIM re-derives eps from a clipped x0_hat).
template <class T>
Tensor<T> predict_eps_from_x0(const Schedule& s, const Tensor<T>& x_t, const std::vector<int64_t>& t, const Tensor<T>& x0);

// p_theta(x_{t-1} | x_t) = N(mean, exp(log_variance)) from the network output (eps-parameterization).
template <class T>
struct ModelPrediction {
  Tensor<T> eps;           // eps_theta(x_t, t), [N, C, ...]
  Tensor<T> x0_hat;        // x0 predicted from eps, clipped to [-1, 1] when asked
  Tensor<T> mean;          // mu_theta(x_t, t)
  Tensor<T> log_variance;  // log sigma_t^2, full shape (per-sample constant for fixed variances)
};
// Without clipping the mean is eq. (11), mu = (x_t - beta_t / sqrt(1 - abar_t) eps) / sqrt(alpha_t);
// with clipping it is eq. (7)'s mutilde_t(x_t, clip(x0_hat)) (the reference implementations' choice).
// Fixed variances: sigma_t^2 of the schedule. Learned: model_output has 2C channels, the second C are
// v, and log sigma_t^2 = frac log beta_t + (1 - frac) log betatilde_t (clipped), frac = (v + 1) / 2.
template <class T>
ModelPrediction<T> p_mean_variance(const Schedule& s, VarianceType variance, const Tensor<T>& model_output,
                                   const Tensor<T>& x_t, const std::vector<int64_t>& t, bool clip_x0);

// Checks x is [N, ...] with N == t.size() and every t in [1, T]; names `op` in the error.
template <class T>
void check_batch(const Schedule& s, const Tensor<T>& x, const std::vector<int64_t>& t, const char* op);

}  // namespace dd::ddpm
