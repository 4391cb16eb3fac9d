// The seed notes' errors: each computes the seed's version and the corrected one against a truth.
#include <algorithm>
#include <cmath>
#include <vector>

#include "derivations/checks.h"
#include "ddpm/diffusion.h"
#include "ddpm/gaussian.h"
#include "ddpm/losses.h"
#include "ddpm/sample.h"

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
    c.seed_error("seed.001.step_coefficients", Label::Independent, "Var(x_5): seed step alpha x + (1-alpha) eps vs sqrt(alpha) x + sqrt(1-alpha) eps",
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
    const double truth = mutilde_hand(t, x0, xt);  // eq. (7) by hand
    const double right = p_mean_variance(s, VarianceType::Small, image_of({eps}), image_of({xt}), {t}, false).mean.data()[0];
    c.seed_error("seed.002.sampling_step", Label::Independent, "mean: seed (x_t - (1-alpha_t)/sqrt(1-alpha_t) eps)/sqrt(alpha_t) vs sqrt(1-abar_t)",
           (xt - (1 - alpha_hand(t)) / std::sqrt(1 - alpha_hand(t)) * eps) / std::sqrt(alpha_hand(t)), right, truth, 1e-12,
           "mutilde_t(x_t, x0), eq. (7) by hand");
    c.seed_error("seed.002.sampling_noise", Label::Independent, "step noise variance: seed eps_theta^2 (eps_t z) vs sigma_t^2 (sigma_t z)",
           eps * eps, s.model_variance(VarianceType::Small, t), betatilde_hand(t), 1e-12, "betatilde_t, the posterior variance");
    c.seed_error("seed.002.x0_substitution", Label::Independent, "mutilde from x0(x_t, eps): seed 1/sqrt(abar_t) in front vs 1/sqrt(alpha_t)",
           (xt - beta_hand(t) / std::sqrt(1 - abar_hand(t)) * eps) / std::sqrt(abar_hand(t)),
           (xt - beta_hand(t) / std::sqrt(1 - abar_hand(t)) * eps) / std::sqrt(alpha_hand(t)), truth, 1e-12, "mutilde_t(x_t, x0), eq. (7) by hand");
    c.seed_error("seed.003.eps_coefficient", Label::Independent, "mean: seed (x_t - beta_t/sqrt(abar_t) eps)/sqrt(1-beta_t) vs beta_t/sqrt(1-abar_t)",
           (xt - beta_hand(t) / std::sqrt(abar_hand(t)) * eps) / std::sqrt(1 - beta_hand(t)), right, truth, 1e-12,
           "mutilde_t(x_t, x0), eq. (7) by hand");
    const double x1 = std::sqrt(abar_hand(1)) * x0 + std::sqrt(1 - abar_hand(1)) * eps;
    const double mu1 = p_mean_variance(s, VarianceType::Small, image_of({eps}), image_of({x1}), {1}, false).mean.data()[0];
    c.seed_error("seed.003.mu1_is_eps", Label::Independent, "last step: seed mu_1 = eps_theta(x_1, 1) vs eq. (11) at t = 1", eps, mu1, x0,
           1e-12, "x0 (mutilde_1 = x0)");
  }
  // 003: the eq. (12) weight without alpha_t; truth: the KL difference by hand, eq. (11) means
  {
    const double e2 = sq_err(kEps, kGuess);
    double kl_diff = 0;
    for (size_t i = 0; i < kX0.size(); ++i) {
      const double xt = std::sqrt(abar_hand(t)) * kX0[i] + std::sqrt(1 - abar_hand(t)) * kEps[i];
      auto mu = [&](double e) { return (xt - beta_hand(t) / std::sqrt(1 - abar_hand(t)) * e) / std::sqrt(alpha_hand(t)); };
      kl_diff += (mu(kEps[i]) - mu(kGuess[i])) * (mu(kEps[i]) - mu(kGuess[i])) / (2 * betatilde_hand(t));
    }
    c.seed_error("seed.003.weight_alpha", Label::Independent, "eq. (12) weight: seed beta^2/(2 sigma^2 (1-abar)) vs beta^2/(2 sigma^2 alpha (1-abar))",
           beta_hand(t) * beta_hand(t) / (2 * betatilde_hand(t) * (1 - abar_hand(t))), s.eps_weight_small[t], kl_diff / e2, 1e-12,
           "(KL(guess) - KL(exact)) / ||eps - guess||^2 by hand");
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

  // ---- the errors found on a second reading ----------------------------------------------------
  // On 2000 paths of eq. (2) from x0 = 0.5 with the linear network: the pieces of the appendix
  // derivations, by hand. integrand = -log p(x_{0:T}) + log q(x_{1:T}|x0), eq. (3)'s.
  {
    Rng rng(15);
    const double x0 = 0.5;
    const int64_t M = 2000;
    const auto x = forward_paths(x0, M, rng);
    double worst_001_seed = 0, worst_001_right = 0, worst_003_seed = 0, worst_003_right = 0;
    for (int64_t m = 0; m < M; ++m) {
      const double log_prior = log_normal(x[kT][m], 0, 1);
      double log_p = log_prior, log_q = 0, reverse_vs_post = 0, marginal_ratio = 0, log_p_over_q = 0;
      double decoder = 0;
      for (int64_t t = 1; t <= kT; ++t) {
        const double lp = log_normal(x[t - 1][m], linear_mean_coef(t) * x[t][m], sigma2_large_hand(t));
        const double lq = log_normal(x[t][m], std::sqrt(alpha_hand(t)) * x[t - 1][m], beta_hand(t));
        log_p += lp;
        log_q += lq;
        log_p_over_q += lp - lq;
        if (t == 1) {
          decoder = lp - log_normal(x[1][m], std::sqrt(abar_hand(1)) * x0, 1 - abar_hand(1));  // log p(x0|x1)/q(x1|x0)
        } else {
          reverse_vs_post += lp - log_normal(x[t - 1][m], mutilde_hand(t, x0, x[t][m]), betatilde_hand(t));
          marginal_ratio += log_normal(x[t][m], std::sqrt(abar_hand(t)) * x0, 1 - abar_hand(t)) -
                            log_normal(x[t - 1][m], std::sqrt(abar_hand(t - 1)) * x0, 1 - abar_hand(t - 1));
        }
      }
      const double integrand = -(log_p - log_q);
      // 001 appendix A: -log p(x_T) - sum log p/q_post + sum log q(x_{t-1}|x0)/q(x_t|x0) - log p(x0|x1)/q(x1|x0)
      const double seed001 = -log_prior - reverse_vs_post - marginal_ratio - decoder;
      const double right001 = -log_prior - reverse_vs_post + marginal_ratio - decoder;
      // 003 appendix: log p(x_{0:T}) - log q(x_{1:T}|x0) = -log p(x_T) - sum log p/q (seed) vs + and +
      const double seed003 = -log_prior - log_p_over_q, right003 = log_prior + log_p_over_q;
      auto keep = [](double& worst, double d) {
        if (std::abs(d) > std::abs(worst)) worst = d;
      };
      keep(worst_001_seed, seed001 - integrand);
      keep(worst_001_right, right001 - integrand);
      keep(worst_003_seed, seed003 + integrand);
      keep(worst_003_right, right003 + integrand);
    }
    c.seed_error("seed.001.appendix_sign", Label::Independent,
                 "max over 2000 paths of (rhs - eq. 3 integrand): seed + sum log q(x_{t-1}|x0)/q(x_t|x0) vs -", worst_001_seed,
                 worst_001_right, 0.0, 1e-9, "the eq. (3) integrand, path by path");
    c.seed_error("seed.003.appendix_sign", Label::Independent,
                 "max over 2000 paths of (rhs - (log p - log q)): seed -log p(x_T) - sum log p/q vs +", worst_003_seed,
                 worst_003_right, 0.0, 1e-9, "log p(x_{0:T}) - log q(x_{1:T}|x0), path by path");
  }
  // 001: the ratio of two Gaussian densities, simplified to an exponential linear in x: it is quadratic
  {
    const double m1 = 0.2, v1 = 0.3, m2 = -0.1, v2 = 0.5, x = 0.7, s1 = std::sqrt(v1), s2 = std::sqrt(v2);
    const double k = 1 / v1 - 1 / v2;
    const double seed = s2 / s1 * std::exp(-(m1 - m2) * (m1 - m2) / 2 * k) * std::exp((m1 - m2) * x / (s1 * s2) * k);
    const double first_form = s2 / s1 * std::exp(-(x - m1) * (x - m1) / (2 * v1) + (x - m2) * (x - m2) / (2 * v2));
    c.seed_error("seed.001.gaussian_ratio", Label::Independent, "N(0.7; 0.2, 0.3) / N(0.7; -0.1, 0.5): seed's simplified form vs its first form",
                 seed, first_form, std::exp(log_normal(x, m1, v1) - log_normal(x, m2, v2)), 1e-12, "the two densities divided");
  }
  // 001: the aside's variance 1 - abar_t is right (its coefficients and mean are not)
  c.equal("seed.001.variance_is_right", Label::Independent, "Var(x_5): the aside's 1 - abar_t vs 20000 runs of eq. (2)",
          1 - abar_hand(t), f.var5, kSE * f.se_var5, "5 SE; not an error");
  // 000: "t = T is not optimised, so it does not appear" in L_simple: t ~ U{1..T} draws T as often as any t
  {
    Rng rng(16);
    UniformTimesteps sampler(kT);
    const int64_t n = 200000;
    const std::vector<int64_t> ts = sampler.sample(n, rng).t;
    const double freq = static_cast<double>(std::count(ts.begin(), ts.end(), kT)) / static_cast<double>(n);
    const double se = std::sqrt(0.1 * 0.9 / static_cast<double>(n));
    c.seed_error("seed.000.t_T_in_L_simple", Label::Independent, "share of t = T in L_simple's draws: seed 0 (missing) vs 1/T",
                 0.0, 1.0 / kT, freq, kSE * se, "UniformTimesteps, 200000 draws");
  }
  // 000: its sampling step x_{t-1} = mutilde_t + sigma_t z: mutilde_t needs x0; the sampler uses mu_theta
  {
    const double x0 = 0.5, eps = 0.7, guess = 0.4, xt = std::sqrt(abar_hand(t)) * x0 + std::sqrt(1 - abar_hand(t)) * eps;
    const double mu_theta = (xt - beta_hand(t) / std::sqrt(1 - abar_hand(t)) * guess) / std::sqrt(alpha_hand(t));
    const double sampler = p_mean_variance(s, VarianceType::Small, image_of({guess}), image_of({xt}), {t}, false).mean.data()[0];
    c.seed_error("seed.000.sampling_mean", Label::Independent, "the sampler's mean at t = 5: seed mutilde_t(x_t, x0) vs mu_theta (eq. 11)",
                 mutilde_hand(t, x0, xt), mu_theta, sampler, 1e-12, "p_mean_variance, eps_theta = 0.4, true eps 0.7");
  }
  // 003: decoder bins written around the integer k, [k - 1/255, k + 1/255]: they are around 2k/255 - 1
  {
    const int k = 128;
    const double x = 2.0 * k / 255 - 1, mean = 0.0, sd = 0.05;
    auto mass = [&](double lo, double hi) {
      return 0.5 * std::erfc(-(hi - mean) / (sd * std::sqrt(2.0))) - 0.5 * std::erfc(-(lo - mean) / (sd * std::sqrt(2.0)));
    };
    c.seed_error("seed.003.decoder_bins_integer", Label::Independent, "bin mass of pixel 128 under N(0, 0.05^2): seed [k -+ 1/255] vs [x -+ 1/255]",
                 mass(k - 1.0 / 255, k + 1.0 / 255), mass(x - 1.0 / 255, x + 1.0 / 255),
                 std::exp(discretized_gaussian_log_likelihood(x, mean, std::log(sd))), 1e-12, "discretized_gaussian_log_likelihood");
  }
  // 003: its sampler ends by sampling the decoder (noise sigma_1 = sqrt(beta_1)); Algorithm 2 returns the mean
  {
    Rng rng(17);
    SampleOptions so;
    so.variance = VarianceType::Large;
    so.clip_x0 = false;
    const TensorF out = sample_ancestral(s, linear_denoiser(), {kMC, 1, 1, 1}, rng, so);
    const Stats st = stats(std::vector<double>(out.data(), out.data() + out.numel()));
    double v = 1;  // Var(x_1) by the Gaussian recursion of the linear network
    for (int64_t k = kT; k >= 2; --k) v = linear_mean_coef(k) * linear_mean_coef(k) * v + sigma2_large_hand(k);
    const double mean_only = linear_mean_coef(1) * linear_mean_coef(1) * v;
    c.seed_error("seed.003.sampler_decoder_noise", Label::Independent, "Var(sample): seed + beta_1 (decoder noise at t = 1) vs none",
                 mean_only + beta_hand(1), mean_only, st.var, kSE * st.se_var, "sample_ancestral, 20000 chains");
  }
  // 004: the consistency term factorises q(x_{t-1}, x_t, x_{t+1}|x0) = q(x_{t+1}, x_{t-1}|x0) q(x_t|x_{t-1}):
  // that makes x_t and x_{t+1} independent given x_{t-1}; the chain gives Cov = sqrt(alpha_{t+1}) beta_t
  {
    Rng rng(18);
    const auto x = forward_paths(0.5, kMC, rng);
    const int64_t k = 5;
    std::vector<double> prod(kMC);
    for (int64_t m = 0; m < kMC; ++m) {
      const double a = x[k][m] - std::sqrt(alpha_hand(k)) * x[k - 1][m];
      const double b = x[k + 1][m] - std::sqrt(alpha_hand(k + 1) * alpha_hand(k)) * x[k - 1][m];
      prod[m] = a * b;
    }
    const Stats st = stats(prod);
    c.seed_error("seed.004.consistency_factorisation", Label::Independent,
                 "Cov(x_5, x_6 | x_4): seed's factorisation 0 vs the chain's sqrt(alpha_6) beta_5", 0.0,
                 std::sqrt(alpha_hand(k + 1)) * beta_hand(k), st.mean, kSE * st.se_mean, "20000 runs of eq. (2)");
  }
  // 004: "the reverse process is not Markov": given x_t, x_{t-1} does not depend on x_{t+1}
  {
    Rng rng(19);
    const int64_t k = 5;
    std::vector<double> a(kMC), b(kMC), cc(kMC);
    for (int64_t m = 0; m < kMC; ++m) {
      const auto x = forward_paths(kDataStd * rng.normal<double>({1}).data()[0], 1, rng);  // x0 ~ N(0, 0.25)
      a[m] = x[k - 1][0], b[m] = x[k][0], cc[m] = x[k + 1][0];
    }
    // the least-squares coefficient of x_{k+1} in x_{k-1} ~ x_k + x_{k+1} (all means are 0)
    double saa = 0, sbb = 0, scc = 0, sab = 0, sac = 0, sbc = 0;
    for (int64_t m = 0; m < kMC; ++m)
      saa += a[m] * a[m], sbb += b[m] * b[m], scc += cc[m] * cc[m], sab += a[m] * b[m], sac += a[m] * cc[m], sbc += b[m] * cc[m];
    const double det = sbb * scc - sbc * sbc;
    const double coef = (sbb * sac - sbc * sab) / det;
    const double coef_b = (scc * sab - sbc * sac) / det;
    double rss = 0;
    for (int64_t m = 0; m < kMC; ++m) rss += (a[m] - coef_b * b[m] - coef * cc[m]) * (a[m] - coef_b * b[m] - coef * cc[m]);
    const double se = std::sqrt(rss / (kMC - 2) * sbb / det);
    c.equal("seed.004.reverse_is_markov", Label::Independent,
            "coefficient of x_6 in E[x_4 | x_5, x_6] (data N(0, 0.25)) vs 0: the reverse chain is Markov", coef, 0.0, kSE * se,
            "5 SE of the regression");
  }
  // 004: the VAE's KL written 0.5 (1 + log sigma^2 - mu^2 - sigma^2): that is minus the KL
  {
    Rng rng(20);
    const double mu = 0.6, var = 0.4;
    const std::vector<double> z = rng.normal<double>({kMC}).to_vector();
    std::vector<double> lr(kMC);
    for (int64_t m = 0; m < kMC; ++m) {
      const double zz = mu + std::sqrt(var) * z[m];
      lr[m] = log_normal(zz, mu, var) - log_normal(zz, 0, 1);
    }
    const Stats st = stats(lr);
    const double seed = 0.5 * (1 + std::log(var) - mu * mu - var);
    c.seed_error("seed.004.vae_kl_sign", Label::Independent, "KL(N(0.6, 0.4) || N(0, 1)): seed 0.5 (1 + log s2 - m^2 - s2) vs minus that",
                 seed, -seed, st.mean, kSE * st.se_mean, "Monte Carlo E_q[log q - log p]");
  }
  // 004: "for a 凸 function (log x1 + log x2)/2 <= log((x1 + x2)/2)": right, with 凸 meaning concave
  c.at_most("seed.004.log_concave_convention", Label::Independent, "(log 1 + log 4) / 2 <= log 2.5 (log is concave: 凸 in the seed's convention)",
            0.5 * (std::log(1.0) + std::log(4.0)), std::log(2.5));
}

}  // namespace dd::derivations
