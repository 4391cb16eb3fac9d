// eqs. (6), (7), (9), (10): the forward-process posterior q(x_{t-1} | x_t, x0) and its eps form.
#include <algorithm>
#include <cmath>
#include <vector>

#include "derivations/checks.h"
#include "ddpm/diffusion.h"

namespace dd::derivations {

using namespace dd::ddpm;

void check_eq6(Checker& c, const Schedule& s) {
  c.header("6", "eq. (6): q(x_{t-1} | x_t, x0) = N(mutilde_t, betatilde_t)  (Bayes' rule, pointwise)");
  c.say("Bayes: q(x_{t-1}|x_t,x0) = q(x_t|x_{t-1}) q(x_{t-1}|x0) / q(x_t|x0), using q(x_t|x_{t-1},x0) = q(x_t|x_{t-1}).");
  std::vector<double> bayes, closed;
  for (int64_t t = 2; t <= kT; ++t) {
    const Posterior<double> p = q_posterior(s, image_of(kX0), image_of(kXt), {t});
    for (size_t i = 0; i < kX0.size(); ++i)
      for (int k = -6; k <= 6; ++k) {
        const double xp = 0.5 * k;
        bayes.push_back(bayes_log(t, xp, kX0[i], kXt[i]));
        closed.push_back(log_normal(xp, p.mean.data()[i], p.variance[0]));
      }
  }
  c.equal("eq6.bayes_pointwise", Label::Independent, "log q(x_{t-1}|x_t,x0) by Bayes vs log N(mutilde, betatilde), 13x4x9 points", bayes,
          closed, 1e-10, "", {{"t", 2, 9}, {"pixel", 0, 4}, {"x_{t-1} = k/2, k", -6, 13}});
}

void check_eq7(Checker& c, const Schedule& s) {
  c.header("7", "eq. (7): mutilde_t and betatilde_t (completing the square)");
  c.say("The log posterior is a quadratic a x^2 + b x + const in x = x_{t-1}; read a, b off Bayes at x = -1, 0, 1:");
  c.say("a = (f(1) + f(-1) - 2 f(0)) / 2, b = (f(1) - f(-1)) / 2; variance = -1/(2a), mean = -b/(2a).");
  std::vector<double> sq_m, lib_m, sq_v, lib_v, marg_m, want_m, marg_v, want_v;
  for (int64_t t = 2; t <= kT; ++t) {
    const Posterior<double> p = q_posterior(s, image_of(kX0), image_of(kXt), {t});
    for (size_t i = 0; i < kX0.size(); ++i) {
      const double fm = bayes_log(t, -1, kX0[i], kXt[i]), f0 = bayes_log(t, 0, kX0[i], kXt[i]),
                   fp = bayes_log(t, 1, kX0[i], kXt[i]);
      const double a = (fp + fm - 2 * f0) / 2, b = (fp - fm) / 2;
      sq_m.push_back(-b / (2 * a));
      lib_m.push_back(p.mean.data()[i]);
      if (i == 0) {
        sq_v.push_back(-1 / (2 * a));
        lib_v.push_back(p.variance[0]);
      }
      // averaging the posterior over q(x_t|x0) must give back q(x_{t-1}|x0)
      marg_m.push_back(s.posterior_mean_coef1[t] * kX0[i] + s.posterior_mean_coef2[t] * std::sqrt(abar_hand(t)) * kX0[i]);
      want_m.push_back(std::sqrt(abar_hand(t - 1)) * kX0[i]);
    }
    marg_v.push_back(s.posterior_mean_coef2[t] * s.posterior_mean_coef2[t] * (1 - abar_hand(t)) + s.posterior_variance[t]);
    want_v.push_back(1 - abar_hand(t - 1));
  }
  c.equal("eq7.mean_square", Label::Independent, "mutilde_t (q_posterior) vs -b/(2a) from Bayes, t = 2..10", lib_m, sq_m, 1e-9, "", {{"t", 2, 9}, {"pixel", 0, 4}});
  c.equal("eq7.var_square", Label::Independent, "betatilde_t (q_posterior) vs -1/(2a) from Bayes, t = 2..10", lib_v, sq_v, 1e-9, "", {{"t", 2, 9}});
  c.equal("eq7.marginal_mean", Label::Independent, "E[mutilde] under q(x_t|x0) vs sqrt(abar_{t-1}) x0", marg_m, want_m, 1e-14, "", {{"t", 2, 9}, {"pixel", 0, 4}});
  c.equal("eq7.marginal_var", Label::Independent, "coef2^2 (1 - abar_t) + betatilde_t vs 1 - abar_{t-1}", marg_v, want_v, 1e-14, "", {{"t", 2, 9}});
}

void check_eq9(Checker& c, const Schedule& s) {
  c.header("9", "eq. (9): reparameterize x_t(x0, eps) = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps inside mutilde_t");
  c.say("x0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t), so mutilde_t(x_t, x0) can be written with eps.");
  std::vector<double> via_eps, via_x0;
  for (int64_t t = 1; t <= kT; ++t) {
    const TensorD xt = q_sample(s, image_of(kX0), {t}, image_of(kEps));
    const auto a = q_posterior(s, predict_x0_from_eps(s, xt, {t}, image_of(kEps)), xt, {t}).mean.to_vector();
    const auto b = q_posterior(s, image_of(kX0), xt, {t}).mean.to_vector();
    via_eps.insert(via_eps.end(), a.begin(), a.end());
    via_x0.insert(via_x0.end(), b.begin(), b.end());
  }
  c.equal("eq9.reparameterize", Label::Consistency, "mutilde(x_t, x0 recovered from eps) vs mutilde(x_t, x0), t = 1..10", via_eps,
          via_x0, 1e-13, "", {{"t", 1, 10}, {"pixel", 0, 4}});
}

void check_eq10(Checker& c, const Schedule& s) {
  c.header("10", "eq. (10): mutilde_t(x_t, x0(x_t, eps)) = (x_t - beta_t / sqrt(1 - abar_t) eps) / sqrt(alpha_t)");
  c.say("Substitute x0 = (x_t - sqrt(1 - abar_t) eps)/sqrt(abar_t) into eq. (7); with abar_t = alpha_t abar_{t-1}:");
  c.say("coef of x_t: [beta_t + alpha_t (1 - abar_{t-1})] / (sqrt(alpha_t)(1 - abar_t)) = 1/sqrt(alpha_t);");
  c.say("coef of eps: -beta_t sqrt(1 - abar_t) / (sqrt(alpha_t)(1 - abar_t)) = -beta_t / (sqrt(alpha_t) sqrt(1 - abar_t)).");
  std::vector<double> lib, hand;
  for (int64_t t = 1; t <= kT; ++t) {
    const TensorD xt = image_of(kXt);
    const auto a = q_posterior(s, predict_x0_from_eps(s, xt, {t}, image_of(kEps)), xt, {t}).mean.to_vector();
    lib.insert(lib.end(), a.begin(), a.end());
    for (size_t i = 0; i < kXt.size(); ++i)
      hand.push_back((kXt[i] - beta_hand(t) / std::sqrt(1 - abar_hand(t)) * kEps[i]) / std::sqrt(alpha_hand(t)));
  }
  c.equal("eq10.eps_form", Label::Independent, "q_posterior mean at x0(x_t, eps) vs the eq. (10) form by hand, t = 1..10", lib, hand,
          1e-12, "", {{"t", 1, 10}, {"pixel", 0, 4}});
}

}  // namespace dd::derivations
