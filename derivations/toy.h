// The toy model every check of docs/derivations.md runs on: the teaching schedule T = 10 with
// beta_t = 0.05 t, written out by hand here (independent of ddpm/schedule.cpp), a few pixels, and a
// linear "network" eps_theta(x_t, t) = c_t x_t whose reverse chain is Gaussian in closed form.
#pragma once

#include <cstdint>
#include <vector>

#include "ddpm/diffusion.h"
#include "ddpm/schedule.h"
#include "tensor/random.h"
#include "tensor/tensor.h"

namespace dd::derivations {

constexpr double kPi = 3.14159265358979323846;
constexpr int64_t kT = 10;
constexpr int64_t kMC = 20000;  // Monte Carlo sample size
constexpr double kSE = 5.0;     // Monte Carlo tolerance: 5 standard errors (a false alarm ~1 in 1.7 million)

// ---- the teaching numbers by hand -----------------------------------------------------------------
inline double beta_hand(int64_t t) { return 0.05 * static_cast<double>(t); }  // beta_t
inline double alpha_hand(int64_t t) { return 1.0 - beta_hand(t); }             // alpha_t
double abar_hand(int64_t t);                                                    // abar_t, abar_0 = 1
double betatilde_hand(int64_t t);                                               // eq. (7)
// log N(x; m, v) written out (the library's gaussian_log_density is not used by the checks)
double log_normal(double x, double m, double v);
// eq. (7)'s mean by hand
double mutilde_hand(int64_t t, double x0, double xt);

// The four pixels of the teaching image, a noisy x_t to go with them, a noise draw and a network's guess.
extern const std::vector<double> kX0, kXt, kEps, kGuess;

// [1, 1, 1, n] and [n, 1] tensors of the values
Tensor<double> image_of(const std::vector<double>& v);
Tensor<double> column_of(const std::vector<double>& v);

// ---- the linear network ---------------------------------------------------------------------------
// eps_theta(x_t, t) = c_t x_t is the exact E[eps | x_t] when the data are x0 ~ N(0, s^2) per pixel:
// c_t = sqrt(1 - abar_t) / (abar_t s^2 + 1 - abar_t).
constexpr double kDataStd = 0.5;
double linear_net_coef(int64_t t);
// With it eq. (11) gives mu_theta(x_t, t) = A_t x_t, A_t = (1 - beta_t c_t / sqrt(1 - abar_t)) / sqrt(alpha_t).
double linear_mean_coef(int64_t t);
// sigma_t^2 of the fixed "large" choice by hand: beta_t for t >= 2, betatilde_2 at t = 1.
double sigma2_large_hand(int64_t t);
ddpm::Denoiser linear_denoiser();

// M forward paths from x0 by iterating eq. (2) by hand: paths[t][m], t = 0..T.
std::vector<std::vector<double>> forward_paths(double x0, int64_t M, Rng& rng);

// The library's mean and variance of p_theta(x_{t-1} | x_t) for the linear network, on a column of x_t.
struct Reverse {
  std::vector<double> mean;
  double var;
};
Reverse reverse_step(const ddpm::Schedule& s, const std::vector<double>& x_t, int64_t t, ddpm::VarianceType v);

// Bayes' rule for the posterior as a function of x' = x_{t-1}: log q(x_t|x') + log q(x'|x0) - log q(x_t|x0).
double bayes_log(int64_t t, double xprev, double x0, double xt);

// Monte Carlo of the forward chain from x0 = 0.5 up to t = 5, shared by eq. (4) and the seed checks.
struct ForwardMC {
  double x0 = 0.5;
  double mean5 = 0, var5 = 0, se_mean5 = 0, se_var5 = 0;
};
ForwardMC forward_mc();

// The Monte Carlo of the bound, shared by eq. (3), eq. (5) and the Jensen checks: paths from q (by
// hand), densities of p (library reverse step) and q (by hand), for x0 = 0.5 and the linear network.
struct BoundMC {
  double x0 = 0.5;
  std::vector<double> log_ratio;  // log p(x_{0:T}) - log q(x_{1:T}|x0) per path
  std::vector<double> prior_bracket, decoder_bracket, kl_sum_bracket, kl_closed_sum;
  double log_px0 = 0;  // exact log p_theta(x0) by the Gaussian recursion
};
BoundMC bound_mc(const ddpm::Schedule& s);

// The sum over pixels of KL(q(x_{t-1}|x_t,x0) || p_theta(x_{t-1}|x_t)) for eps_theta = guess,
// x_t = x_t(kX0, kEps), from the library.
double kl_sum(const ddpm::Schedule& s, int64_t t, ddpm::VarianceType v, const std::vector<double>& guess);

}  // namespace dd::derivations
