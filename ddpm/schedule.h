// Noise schedules (docs/equations.md "Schedule"): every per-timestep constant of the forward and reverse
// processes, in float64, as arrays of length T+1 indexed by the paper's 1-based t (index 0 = "no
// noise": beta_0 = 0, abar_0 = 1), so code reads like the equations.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace dd::ddpm {

// The reverse-process variance sigma_t^2 (docs/equations.md "Reverse process"): fixed `Large` (beta_t) or
// `Small` (betatilde_t), both with sigma_1^2 = betatilde_2; or `Learned` (Nichol & Dhariwal 2021:
// the network outputs 2C channels, the second C give v in [-1, 1] and
// log sigma_t^2 = frac log beta_t + (1 - frac) log betatilde_t, frac = (v + 1) / 2).
enum class VarianceType { Large, Small, Learned };
std::string to_string(VarianceType v);
VarianceType variance_type_from_string(const std::string& s);  // "large", "small", "learned"

struct Schedule {
  int64_t T = 0;
  // timesteps[t]: the timestep of the schedule this one was respaced from (what the network is told),
  // 1-based; timesteps[t] = t for a schedule that was not respaced. timesteps[0] = 0.
  std::vector<int64_t> timesteps;

  std::vector<double> betas;                 // beta_t; betas[0] = 0
  std::vector<double> alphas;                // alpha_t = 1 - beta_t
  std::vector<double> abar;                  // abar_t = prod_{s<=t} alpha_s, abar_0 = 1
  std::vector<double> sqrt_abar;             // sqrt(abar_t)                      (eq. 4 mean)
  std::vector<double> sqrt_one_minus_abar;   // sqrt(1 - abar_t)                  (eq. 4 std)
  std::vector<double> log_one_minus_abar;    // log(1 - abar_t); index 0 = -inf
  std::vector<double> sqrt_recip_abar;       // 1 / sqrt(abar_t)                  (x0 from eps)
  std::vector<double> sqrt_recipm1_abar;     // sqrt(1 / abar_t - 1)              (x0 from eps)
  std::vector<double> log_betas;             // log beta_t; index 0 = -inf

  std::vector<double> posterior_variance;              // betatilde_t (eq. 7); betatilde_1 = 0
  std::vector<double> posterior_log_variance_clipped;  // log betatilde_t, with betatilde_2 at t = 1
  // The lower end of a learned variance's range, log sigma^2 in [learned_log_variance_min, log beta_t]
  // (Nichol & Dhariwal 2021): posterior_log_variance_clipped, except at t = 1 after
  // set_decoder_floor (the decoder p(x0 | x1) may then be sharper than betatilde_2).
  std::vector<double> learned_log_variance_min;
  std::vector<double> posterior_mean_coef1;            // sqrt(abar_{t-1}) beta_t / (1 - abar_t)    (x0)
  std::vector<double> posterior_mean_coef2;            // sqrt(alpha_t) (1 - abar_{t-1}) / (1 - abar_t) (x_t)

  // Fixed model variances sigma_t^2 (t = 1 uses betatilde_2 for both, docs/equations.md) and their logs.
  std::vector<double> model_variance_large, model_log_variance_large;
  std::vector<double> model_variance_small, model_log_variance_small;

  // eq. (12) weight beta_t^2 / (2 sigma_t^2 alpha_t (1 - abar_t)), t >= 2 (index 0, 1 = 0: at t = 1
  // the decoder L_0 takes the place of this term).
  std::vector<double> eps_weight_large;  // sigma_t^2 = beta_t:      beta_t / (2 alpha_t (1 - abar_t))
  std::vector<double> eps_weight_small;  // sigma_t^2 = betatilde_t: beta_t / (2 alpha_t (1 - abar_{t-1}))

  // sigma_t^2 and its log for a fixed variance type (throws for Learned, which depends on the network).
  double model_variance(VarianceType v, int64_t t) const;
  double model_log_variance(VarianceType v, int64_t t) const;
  // Throws naming `op` unless 1 <= t <= T.
  void check_t(int64_t t, const char* op) const;
  // A learned variance's lowest sigma_1 (the decoder's standard deviation at t = 1, in the [-1, 1]
  // units of x0): learned_log_variance_min[1] = log(std^2). Why: with the range [betatilde_2, beta_1]
  // the decoder of a pixel the network knows exactly (MNIST's background) still spreads over
  // sigma_1 ~ 0.007-0.01, wider than the pixel's bin (2/255), so L_0 stays near 1 bit/dim however
  // good the mean is (docs/recipe.md). Throws unless 0 < std^2 < beta_1.
  void set_decoder_floor(double std);
};

// Builds every derived array from beta_1..beta_T (given without the leading 0). Each beta must lie
// in (0, 1) and T >= 2; `timesteps` (1-based, length T) defaults to 1..T.
Schedule schedule_from_betas(const std::vector<double>& betas_1_to_T, std::vector<int64_t> timesteps = {});

// Linear betas from 1e-4 to 0.02 at T = 1000 (DDPM); for another T both ends are scaled by 1000/T
// (improved-diffusion), which keeps abar_T about the same. Throws when that makes beta_T >= 1 (T <= 20).
Schedule linear_schedule(int64_t T);
// The (beta_1, beta_T) linear_schedule(T) uses: 1e-4 and 0.02, times 1000/T.
std::pair<double, double> linear_schedule_default_ends(int64_t T);
// Linear betas with explicit ends (small teaching schedules, e.g. T = 10, 0.05 .. 0.5).
Schedule linear_schedule(int64_t T, double beta_1, double beta_T);
// Cosine (Nichol & Dhariwal 2021): abar(t) = f(t)/f(0), f(t) = cos(((t/T + s)/(1 + s)) pi/2)^2,
// beta_t = min(1 - abar(t)/abar(t-1), max_beta); abar is then the product of the clipped betas.
Schedule cosine_schedule(int64_t T, double s = 0.008, double max_beta = 0.999);

// A schedule on a subsequence of timesteps (improved-diffusion's respacing): kept 1-based steps
// k_1 < ... < k_K of `base`; the new betas 1 - abar[k_j] / abar[k_{j-1}] (abar[k_0] = 1) keep
// abar at every kept step. The result's timesteps[j] = base.timesteps[k_j].
Schedule respace(const Schedule& base, const std::vector<int64_t>& kept);
// `count` timesteps evenly spread over 1..T, always including 1 and T (count >= 2, <= T).
std::vector<int64_t> strided_timesteps(int64_t T, int64_t count);

}  // namespace dd::ddpm
