// The seed notes' errors: each computes the seed's version and the corrected one against a truth.
#include <algorithm>
#include <cmath>
#include <vector>

#include "derivations/checks.h"
#include "ddpm/diffusion.h"
#include "ddpm/gaussian.h"

namespace dd::derivations {

using namespace dd::ddpm;

void check_seeds(Checker& c, const Schedule& s, const ForwardMC& f, const BoundMC& b) {
  c.header("seeds", "the seed notes' errors: the seed's version is off, the corrected one right");
  const int64_t t = 5;
  // 000: betatilde
  {
    const double fm = bayes_log(t, -1, 0.5, 0.3), f0 = bayes_log(t, 0, 0.5, 0.3), fp = bayes_log(t, 1, 0.5, 0.3);
    const double bayes_var = -1 / (fp + fm - 2 * f0);
    c.seed_error("seed.000.betatilde", Label::Independent, "betatilde_5: seed (1-abar_t)/(1-abar_1) beta_t vs (1-abar_{t-1})/(1-abar_t) beta_t",
           (1 - abar_hand(t)) / (1 - abar_hand(1)) * beta_hand(t), s.posterior_variance[t], bayes_var, 1e-9,
           "Bayes, completing the square");
  }
  // 000: log p1 / log p2 where log(p1/p2) is meant, inside the KL
  {
    Rng rng(13);
    const std::vector<double> z = rng.normal<double>({kMC}).to_vector();
    const double m1 = 0.2, v1 = 0.3, m2 = -0.1, v2 = 0.5;
    std::vector<double> right(kMC), wrong(kMC);
    for (int64_t m = 0; m < kMC; ++m) {
      const double x = m1 + std::sqrt(v1) * z[m];
      right[m] = log_normal(x, m1, v1) - log_normal(x, m2, v2);
      wrong[m] = log_normal(x, m1, v1) / log_normal(x, m2, v2);
    }
    const Stats sr = stats(right), sw = stats(wrong);
    c.seed_error("seed.000.kl_log_ratio", Label::Independent, "KL = E_q[log p1 / log p2] (seed) vs E_q[log(p1/p2)]", sw.mean, sr.mean,
           normal_kl(m1, std::log(v1), m2, std::log(v2)), kSE * std::max(sr.se_mean, sw.se_mean),
           "normal_kl closed form");
  }
  // 001 / 002: the forward-process marginal (truth: Monte Carlo of eq. 2, itself checked by eq4.monte_carlo_*)
  c.seed_error("seed.001.mean_abar", Label::Independent, "mean of x_5: seed abar_t x0 vs sqrt(abar_t) x0", abar_hand(t) * f.x0,
         s.sqrt_abar[t] * f.x0, f.mean5, kSE * f.se_mean5, "Monte Carlo of eq. (2)");
  {
    double v = 0;  // the seed's step x_t = alpha_t x_{t-1} + (1 - alpha_t) eps, its variance iterated
    for (int64_t k = 1; k <= t; ++k) v = alpha_hand(k) * alpha_hand(k) * v + beta_hand(k) * beta_hand(k);
    c.seed_error("seed.001.std_vs_var", Label::Independent, "Var(x_5): seed step alpha x + (1-alpha) eps vs sqrt(alpha) x + sqrt(1-alpha) eps",
           v, 1 - s.abar[t], f.var5, kSE * f.se_var5, "Monte Carlo of eq. (2)");
  }
  c.seed_error("seed.002.q_marginal_mean", Label::Independent, "q(x_5|x0) mean: seed sqrt(alpha_t) x0 (also in its L_simple) vs sqrt(abar_t) x0",
         std::sqrt(alpha_hand(t)) * f.x0, s.sqrt_abar[t] * f.x0, f.mean5, kSE * f.se_mean5, "Monte Carlo of eq. (2)");
  c.seed_error("seed.002.merged_var", Label::Independent, "merged Gaussian variance: seed 1 - alpha_t vs 1 - abar_t", 1 - alpha_hand(t),
         1 - s.abar[t], f.var5, kSE * f.se_var5, "Monte Carlo of eq. (2)");
  // 002: the third term of the posterior exponent needs a minus sign: only then does it integrate to 1
  {
    auto integral = [&](double sign) {
      const double x0 = 0.5, xt = 0.3, h = 0.001;
      double acc = 0;
      for (int k = -8000; k <= 8000; ++k) {
        const double xp = k * h;
        acc += std::exp(log_normal(xt, std::sqrt(alpha_hand(t)) * xp, beta_hand(t)) +
                        log_normal(xp, std::sqrt(abar_hand(t - 1)) * x0, 1 - abar_hand(t - 1)) +
                        sign * log_normal(xt, std::sqrt(abar_hand(t)) * x0, 1 - abar_hand(t))) *
               h;
      }
      return acc;
    };
    c.seed_error("seed.002.exponent_sign", Label::Independent, "integral over x_{t-1} of the Bayes posterior: seed + sign vs - sign",
           integral(+1), integral(-1), 1.0, 1e-6, "a density integrates to 1");
  }
  // 002 / 003: with the exact eps the sampling mean must equal mutilde_t(x_t, x0)
  {
    const double x0 = 0.5, eps = 0.7, xt = std::sqrt(abar_hand(t)) * x0 + std::sqrt(1 - abar_hand(t)) * eps;
    const double truth = q_posterior(s, image_of({x0}), image_of({xt}), {t}).mean.data()[0];
    const double right = p_mean_variance(s, VarianceType::Small, image_of({eps}), image_of({xt}), {t}, false).mean.data()[0];
    c.seed_error("seed.002.sampling_step", Label::Independent, "mean: seed (x_t - (1-alpha_t)/sqrt(1-alpha_t) eps)/sqrt(alpha_t) vs sqrt(1-abar_t)",
           (xt - (1 - alpha_hand(t)) / std::sqrt(1 - alpha_hand(t)) * eps) / std::sqrt(alpha_hand(t)), right, truth, 1e-12,
           "mutilde_t(x_t, x0), eq. (7)");
    c.seed_error("seed.002.sampling_noise", Label::Independent, "step noise variance: seed eps_theta^2 (eps_t z) vs sigma_t^2 (sigma_t z)",
           eps * eps, s.model_variance(VarianceType::Small, t), betatilde_hand(t), 1e-12, "betatilde_t, the posterior variance");
    c.seed_error("seed.002.x0_substitution", Label::Independent, "mutilde from x0(x_t, eps): seed 1/sqrt(abar_t) in front vs 1/sqrt(alpha_t)",
           (xt - beta_hand(t) / std::sqrt(1 - abar_hand(t)) * eps) / std::sqrt(abar_hand(t)),
           (xt - beta_hand(t) / std::sqrt(1 - abar_hand(t)) * eps) / std::sqrt(alpha_hand(t)), truth, 1e-12, "mutilde_t(x_t, x0), eq. (7)");
    c.seed_error("seed.003.eps_coefficient", Label::Independent, "mean: seed (x_t - beta_t/sqrt(abar_t) eps)/sqrt(1-beta_t) vs beta_t/sqrt(1-abar_t)",
           (xt - beta_hand(t) / std::sqrt(abar_hand(t)) * eps) / std::sqrt(1 - beta_hand(t)), right, truth, 1e-12,
           "mutilde_t(x_t, x0), eq. (7)");
    const double x1 = std::sqrt(abar_hand(1)) * x0 + std::sqrt(1 - abar_hand(1)) * eps;
    const double mu1 = p_mean_variance(s, VarianceType::Small, image_of({eps}), image_of({x1}), {1}, false).mean.data()[0];
    c.seed_error("seed.003.mu1_is_eps", Label::Independent, "last step: seed mu_1 = eps_theta(x_1, 1) vs eq. (11) at t = 1", eps, mu1, x0,
           1e-12, "x0 (mutilde_1 = x0)");
  }
  // 003: the eq. (12) weight without alpha_t
  {
    const double e2 = sq_err(kEps, kGuess);
    const double ratio = (kl_sum(s, t, VarianceType::Small, kGuess) - kl_sum(s, t, VarianceType::Small, kEps)) / e2;
    c.seed_error("seed.003.weight_alpha", Label::Independent, "eq. (12) weight: seed beta^2/(2 sigma^2 (1-abar)) vs beta^2/(2 sigma^2 alpha (1-abar))",
           beta_hand(t) * beta_hand(t) / (2 * betatilde_hand(t) * (1 - abar_hand(t))), s.eps_weight_small[t], ratio, 1e-12,
           "(KL(guess) - KL(exact)) / ||eps - guess||^2");
  }
  // 003 / 004: Jensen in the convex form, applied to log, fails
  {
    double se = 0;
    const double lme = log_mean_exp(b.log_ratio, &se);
    const Stats r = stats(b.log_ratio);
    const double tol = kSE * std::hypot(se, r.se_mean);
    // each claim as a truth value (1 holds, 0 fails) at 5 SE: convex form E[log X] >= log E[X], concave form <=
    const double convex = r.mean >= lme - tol ? 1.0 : 0.0, concave = r.mean <= lme + tol ? 1.0 : 0.0;
    c.note(format("E_q[log X] = %.6g, log E_q[X] = %.6g (X = p(x_{0:T}) / q(x_{1:T}|x0), 5 SE = %.3g)", r.mean, lme, tol));
    c.seed_error("seed.003.jensen_convex", Label::Independent, "claim holds (1) or not (0): seed E[log X] >= log E[X] vs E[log X] <= log E[X]",
           convex, concave, 1.0, 0.5, "log is concave");
  }
  // 004: the telescoping index in the T = 3 example: q(x_3|x_1) where q(x_3|x_0) is meant
  {
    Rng rng(14);
    const double x0 = 0.5;
    const auto x = forward_paths(x0, 2000, rng);
    double worst_seed = 0, worst_right = 0;
    for (int m = 0; m < 2000; ++m) {
      const double l =
          log_normal(x[2][m], std::sqrt(alpha_hand(2)) * x[1][m], beta_hand(2)) + log_normal(x[3][m], std::sqrt(alpha_hand(3)) * x[2][m], beta_hand(3));
      double post = 0;
      for (int64_t k = 2; k <= 3; ++k) {
        const Posterior<double> p = q_posterior(s, image_of({x0}), image_of({x[k][m]}), {k});
        post += log_normal(x[k - 1][m], p.mean.data()[0], p.variance[0]);
      }
      const double q1 = log_normal(x[1][m], std::sqrt(abar_hand(1)) * x0, 1 - abar_hand(1));
      const double r = post + log_normal(x[3][m], std::sqrt(abar_hand(3)) * x0, 1 - abar_hand(3)) - q1;
      const double sd = post + log_normal(x[3][m], std::sqrt(alpha_hand(2) * alpha_hand(3)) * x[1][m], 1 - alpha_hand(2) * alpha_hand(3)) - q1;
      if (std::abs(sd - l) > std::abs(worst_seed)) worst_seed = sd - l;
      if (std::abs(r - l) > std::abs(worst_right)) worst_right = r - l;
    }
    c.seed_error("seed.004.telescope_index", Label::Independent, "max over 2000 paths of (rhs - lhs): seed q(x_3|x_1) vs q(x_3|x_0)",
           worst_seed, worst_right, 0.0, 1e-10, "sum_{t=2,3} log q(x_t|x_{t-1}), telescoped");
  }
}

}  // namespace dd::derivations
