// eqs. (1), (2), (4): the reverse and forward processes and q(x_t | x0).
#include <algorithm>
#include <cmath>
#include <vector>

#include "derivations/checks.h"
#include "ddpm/diffusion.h"

namespace dd::derivations {

using namespace dd::ddpm;

void check_eq1(Checker& c, const Schedule& s) {
  c.header("1", "eq. (1): p(x_T) = N(0, I), p_theta(x_{t-1} | x_t) = N(mu_theta(x_t, t), sigma_t^2)");
  c.say("sigma_t^2 is fixed: 'large' = beta_t, 'small' = betatilde_t; both use betatilde_2 at t = 1.");
  std::vector<double> lib_l, hand_l, lib_s, hand_s, ratio;
  for (int64_t t = 1; t <= kT; ++t) {
    lib_l.push_back(s.model_variance(VarianceType::Large, t));
    hand_l.push_back(sigma2_large_hand(t));
    lib_s.push_back(s.model_variance(VarianceType::Small, t));
    hand_s.push_back(t == 1 ? betatilde_hand(2) : betatilde_hand(t));
    if (t >= 2) ratio.push_back(betatilde_hand(t) / beta_hand(t));
  }
  c.equal("eq1.sigma_large", Label::Independent, "sigma_t^2 'large' vs 0.05 t by hand (t = 1..10)", lib_l, hand_l, 1e-14, "", {{"t", 1, 10}});
  c.equal("eq1.sigma_small", Label::Independent, "sigma_t^2 'small' vs betatilde_t by hand (t = 1..10)", lib_s, hand_s, 1e-14, "", {{"t", 1, 10}});
  c.at_most("eq1.entropy_bounds", Label::Independent, "max_t betatilde_t / beta_t <= 1 (small <= large)",
            *std::max_element(ratio.begin(), ratio.end()), 1.0);
  const ModelPrediction<double> p = p_mean_variance(s, VarianceType::Large, image_of(kGuess), image_of(kXt), {7}, false);
  c.equal("eq1.p_mean_variance_var", Label::Independent, "p_mean_variance log sigma_7^2 vs log(0.35)", p.log_variance.to_vector(),
          std::vector<double>(4, std::log(0.35)), 1e-14, "", {{"pixel", 0, 4}});
}

void check_eq2(Checker& c, const Schedule& s) {
  c.header("2", "eq. (2): q(x_t | x_{t-1}) = N(sqrt(alpha_t) x_{t-1}, beta_t)");
  c.say("At t = 1 eq. (4) is one step of eq. (2): x_1 = sqrt(0.95) x0 + sqrt(0.05) eps.");
  const TensorD x1 = q_sample(s, image_of(kX0), {1}, image_of(kEps));
  std::vector<double> hand;
  for (size_t i = 0; i < kX0.size(); ++i) hand.push_back(std::sqrt(0.95) * kX0[i] + std::sqrt(0.05) * kEps[i]);
  c.equal("eq2.one_step", Label::Independent, "q_sample at t = 1 vs sqrt(0.95) x0 + sqrt(0.05) eps", x1.to_vector(), hand, 1e-15, "", {{"pixel", 0, 4}});
  std::vector<double> ab;
  for (int64_t t = 1; t <= kT; ++t) ab.push_back(s.alphas[t] + s.betas[t]);
  c.equal("eq2.alpha_plus_beta", Label::Consistency, "alpha_t + beta_t = 1 (keeps unit variance)", ab, std::vector<double>(kT, 1.0),
          1e-15, "", {{"t", 1, 10}});
}

void check_eq4(Checker& c, const Schedule& s, const ForwardMC& f) {
  c.header("4", "eq. (4): q(x_t | x0) = N(sqrt(abar_t) x0, 1 - abar_t)");
  c.say("Iterate eq. (2): mean m_t = sqrt(alpha_t) m_{t-1}, variance v_t = alpha_t v_{t-1} + beta_t,");
  c.say("from m_0 = x0, v_0 = 0. The variances telescope: 1 - v_t = alpha_t (1 - v_{t-1}) = abar_t.");
  std::vector<double> lib_m, it_m, lib_v, it_v;
  std::vector<double> m(kX0);
  double v = 0;
  for (int64_t t = 1; t <= kT; ++t) {
    for (double& a : m) a *= std::sqrt(alpha_hand(t));
    v = alpha_hand(t) * v + beta_hand(t);
    const std::vector<double> mean = q_sample(s, image_of(kX0), {t}, image_of({0, 0, 0, 0})).to_vector();
    const double sd = q_sample(s, image_of({0}), {t}, image_of({1})).data()[0];
    lib_m.insert(lib_m.end(), mean.begin(), mean.end());
    it_m.insert(it_m.end(), m.begin(), m.end());
    lib_v.push_back(sd * sd);
    it_v.push_back(v);
  }
  c.equal("eq4.iterate_mean", Label::Independent, "q_sample(x0, t, eps=0) vs eq. (2) mean iterated t times", lib_m, it_m, 1e-14, "", {{"t", 1, 10}, {"pixel", 0, 4}});
  c.equal("eq4.iterate_var", Label::Independent, "q_sample(0, t, eps=1)^2 vs eq. (2) variance iterated", lib_v, it_v, 1e-14, "", {{"t", 1, 10}});
  c.equal("eq4.monte_carlo_mean", Label::Independent, "mean of x_5 over 20000 runs of eq. (2) vs sqrt(abar_5) x0", f.mean5,
          s.sqrt_abar[5] * f.x0, kSE * f.se_mean5, "5 SE");
  c.equal("eq4.monte_carlo_var", Label::Independent, "variance of x_5 over 20000 runs vs 1 - abar_5", f.var5, 1 - s.abar[5],
          kSE * f.se_var5, "5 SE");
  const TensorD xt = q_sample(s, image_of(kX0), {6}, image_of(kEps));
  c.equal("eq4.x0_from_eps", Label::Consistency, "predict_x0_from_eps(q_sample(x0, eps), eps) vs x0 (t = 6)",
          predict_x0_from_eps(s, xt, {6}, image_of(kEps)).to_vector(), kX0, 1e-14, "", {{"pixel", 0, 4}});
}

}  // namespace dd::derivations
