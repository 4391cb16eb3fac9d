// eqs. (3), (5), (8), (13) and bits/dim: the variational bound, its KL terms and the decoder.
#include <algorithm>
#include <cmath>
#include <vector>

#include "derivations/checks.h"
#include "ddpm/bound.h"
#include "ddpm/diffusion.h"
#include "ddpm/gaussian.h"

namespace dd::derivations {

using namespace dd::ddpm;

void check_eq3(Checker& c, const BoundMC& b) {
  c.header("3", "eq. (3): E[-log p_theta(x0)] <= E_q[-log p(x_T) - sum_t log p_theta(x_{t-1}|x_t)/q(x_t|x_{t-1})] (Jensen)");
  c.say("log p(x0) = log E_q[ p(x_{0:T}) / q(x_{1:T}|x0) ]; log is concave, so E[log X] <= log E[X].");
  c.say("x0 = 0.5, the linear network eps_theta = c_t x_t, sigma 'large', 20000 paths from q.");
  double se = 0;
  const double lme = log_mean_exp(b.log_ratio, &se);
  c.equal("eq3.importance", Label::Independent, "log mean of p/q over paths vs exact log p_theta(x0) (Gaussian recursion)", lme,
          b.log_px0, kSE * se, "5 SE");
  const Stats r = stats(b.log_ratio);
  c.at_most("eq3.jensen", Label::Independent, "E_q[log p/q] (= -L) <= log p_theta(x0) - 5 SE", r.mean, b.log_px0 - kSE * r.se_mean);
}

void check_eq5(Checker& c, const Schedule& s, const BoundMC& b) {
  c.header("5", "eq. (5): L = L_T + sum_{t>1} L_{t-1} + L_0 (telescoping)");
  c.say("For t >= 2 write q(x_t|x_{t-1}) = q(x_{t-1}|x_t,x0) q(x_t|x0) / q(x_{t-1}|x0) (Bayes); the ratios");
  c.say("q(x_t|x0)/q(x_{t-1}|x0) telescope to q(x_T|x0)/q(x_1|x0), and q(x_1|x0) cancels the t = 1 term.");
  std::vector<double> lhs(kMC), rhs(kMC);
  for (int64_t m = 0; m < kMC; ++m) {
    lhs[m] = -b.log_ratio[m];
    rhs[m] = b.prior_bracket[m] + b.kl_sum_bracket[m] + b.decoder_bracket[m];
  }
  c.equal("eq5.telescope_pointwise", Label::Consistency, "eq. (3) integrand vs L_T + sum L_{t-1} + L_0 brackets, every path", lhs, rhs,
          1e-9, "", {{"path", 0, kMC}});
  // each bracket's expectation is a KL
  std::vector<double> d(kMC);
  for (int64_t m = 0; m < kMC; ++m) d[m] = b.kl_sum_bracket[m] - b.kl_closed_sum[m];
  const Stats sd = stats(d), sk = stats(b.kl_sum_bracket), sc = stats(b.kl_closed_sum);
  c.equal("eq5.kl_terms", Label::Independent, "Monte Carlo sum_t E[log q/p] vs E[sum_t normal_kl] (same x_t)", sk.mean, sc.mean,
          kSE * sd.se_mean, "5 SE of the difference");
  const Stats sp = stats(b.prior_bracket);
  const double lt = prior_kl(s, TensorF::full({1, 1, 1, 1}, static_cast<float>(b.x0)))[0];
  c.equal("eq5.prior_kl", Label::Independent, "Monte Carlo E[log q(x_T|x0)/p(x_T)] vs prior_kl (L_T)", sp.mean, lt, kSE * sp.se_mean,
          "5 SE");
  // the library's bound (bound.cpp) against the Monte Carlo of the eq. (3) integrand
  Rng rng(55);
  BoundOptions o;
  o.variance = VarianceType::Large;
  o.clip_x0 = false;
  o.decoder = DecoderType::ContinuousGaussian;
  const TensorF x0 = TensorF::full({kMC, 1, 1, 1}, static_cast<float>(b.x0));
  const BoundResult br = variational_bound(s, linear_denoiser(), x0, rng, o);
  const Stats sl = stats(br.total_nats), sm = stats(lhs);
  c.equal("eq5.bound_vs_library", Label::Independent, "variational_bound (bound.cpp) mean vs Monte Carlo of eq. (3)", sl.mean, sm.mean,
          kSE * std::hypot(sl.se_mean, sm.se_mean), "5 SE, float32 model");
}

void check_eq8(Checker& c, const Schedule& s) {
  c.header("8", "eq. (8): L_{t-1} = ||mutilde_t - mu_theta||^2 / (2 sigma_t^2) + C");
  c.say("KL of two Gaussians per dimension: 0.5 (log v2/v1 + v1/v2 + (m1 - m2)^2 / v2 - 1); only the");
  c.say("(m1 - m2)^2 term depends on mu_theta, and C = 0.5 (log v2/v1 + v1/v2 - 1) (zero when v2 = v1).");
  const int64_t t = 5;
  const double mt = q_posterior(s, image_of({kX0[2]}), image_of({kXt[2]}), {t}).mean.data()[0];
  const double bt = betatilde_hand(t), s2 = beta_hand(t);
  std::vector<double> kl_diff, sq;
  for (double mu : {mt + 0.3, mt - 0.7, mt + 2.0}) {
    kl_diff.push_back(normal_kl(mt, std::log(bt), mu, std::log(s2)) - normal_kl(mt, std::log(bt), mt, std::log(s2)));
    sq.push_back((mt - mu) * (mt - mu) / (2 * s2));
  }
  c.equal("eq8.quadratic", Label::Independent, "KL(mu) - KL(mutilde) vs (mutilde - mu)^2 / (2 sigma^2), sigma^2 = beta_5", kl_diff, sq,
          1e-14, "", {{"mu = mutilde + 0.3, - 0.7, + 2.0", 0, 3}});
  c.equal("eq8.constant", Label::Independent, "C = KL at mu = mutilde vs 0.5 (log(beta/betatilde) + betatilde/beta - 1)",
          normal_kl(mt, std::log(bt), mt, std::log(s2)), 0.5 * (std::log(s2 / bt) + bt / s2 - 1), 1e-15);
  // the KL formula itself, by Monte Carlo: E_q[log q - log p]
  Rng rng(8);
  const std::vector<double> z = rng.normal<double>({kMC}).to_vector();
  const double mu = mt + 0.3;
  std::vector<double> lr(kMC);
  for (int64_t m = 0; m < kMC; ++m) {
    const double xx = mt + std::sqrt(bt) * z[m];
    lr[m] = log_normal(xx, mt, bt) - log_normal(xx, mu, s2);
  }
  const Stats st = stats(lr);
  c.equal("eq8.kl_monte_carlo", Label::Independent, "normal_kl vs Monte Carlo E_q[log q - log p]",
          normal_kl(mt, std::log(bt), mu, std::log(s2)), st.mean, kSE * st.se_mean, "5 SE");
}

void check_eq13(Checker& c) {
  c.header("13", "eq. (13): the discretized decoder p_theta(x0 | x1): bins of width 2/255, the edge bins take the tails");
  c.say("Each pixel's probability is the Gaussian mass of its bin; compare with Simpson's rule on the density.");
  const double mean = 0.1, sd = 0.3;
  auto simpson = [&](double a, double b) {
    const int n = 2000;
    const double h = (b - a) / n;
    double acc = 0;
    for (int i = 0; i <= n; ++i) acc += ((i == 0 || i == n) ? 1 : (i % 2 ? 4 : 2)) * std::exp(log_normal(a + i * h, mean, sd * sd));
    return acc * h / 3;
  };
  std::vector<double> lib, num;
  for (int k : {0, 37, 128, 200, 255}) {
    const double x = 2.0 * k / 255 - 1;
    const double lo = k == 0 ? mean - 12 * sd : x - 1.0 / 255, hi = k == 255 ? mean + 12 * sd : x + 1.0 / 255;
    lib.push_back(discretized_gaussian_log_likelihood(x, mean, std::log(sd)));
    num.push_back(std::log(simpson(lo, hi)));
  }
  c.equal("eq13.bin_mass", Label::Independent, "log bin mass (library) vs log Simpson integral, k = 0, 37, 128, 200, 255", lib, num, 1e-9, "", {{"bin of k = 0, 37, 128, 200, 255", 0, 5}});
  double total = 0;
  for (int k = 0; k <= 255; ++k)
    total += std::exp(discretized_gaussian_log_likelihood(2.0 * k / 255 - 1, mean, std::log(sd)));
  c.equal("eq13.sums_to_one", Label::Independent, "sum of the 256 bin probabilities vs 1", total, 1.0, 1e-12);
  std::vector<double> ln, ref;
  for (double z : {-35.0, -25.0, -5.0, 0.0, 3.0}) {
    ln.push_back(log_ndtr(z));
    ref.push_back(std::log(0.5 * std::erfc(-z / std::sqrt(2.0))));
  }
  c.equal("eq13.log_ndtr", Label::Independent, "log_ndtr(z) vs log(erfc(-z/sqrt 2)/2), z = -35 .. 3", ln, ref, 1e-12, "", {{"z = -35, -25, -5, 0, 3", 0, 5}});
  // tiny sigma, a far bin: erfc underflows; the asymptotic series of log Phi is the other side
  const double sig = 1e-3, x = 0.0, mu = 0.06;
  const double b = (x + 1.0 / 255 - mu) / sig;
  const double asym =
      -b * b / 2 - std::log(-b) - 0.5 * std::log(2 * kPi) + std::log1p(-1 / (b * b) + 3 / std::pow(b, 4));
  c.equal("eq13.tiny_sigma", Label::Independent, "log bin mass at z ~ -56 (erfc underflows) vs asymptotic log Phi(b)",
          discretized_gaussian_log_likelihood(x, mu, std::log(sig)), asym, 1e-6, "series error ~15/b^6");
}

void check_bpd(Checker& c, const Schedule& s) {
  c.header("bpd", "bits per dimension: (L_T + sum L_{t-1} + L_0) / (D ln 2), L_0 the discretized decoder");
  std::vector<float> px;
  for (int k : {0, 64, 128, 191, 255, 10, 100, 245}) px.push_back(static_cast<float>(2.0 * k / 255 - 1));
  BoundOptions o;
  o.clip_x0 = false;
  Rng rng(9);
  const BoundResult r = variational_bound(s, linear_denoiser(), TensorF::from({2, 1, 1, 4}, px), rng, o);
  std::vector<double> lib, hand;
  for (int n = 0; n < 2; ++n) {
    double sum = 0;
    for (int64_t t = 0; t <= kT; ++t) sum += r.terms.data()[n * (kT + 1) + t];
    lib.push_back(r.bits_per_dim[n]);
    hand.push_back(sum / (4 * std::log(2.0)));
  }
  c.equal("bpd.formula", Label::Consistency, "bits_per_dim vs (sum of the T+1 terms) / (4 ln 2), 2 images", lib, hand, 1e-9, "", {{"image", 0, 2}});
  // the unbiased estimate L_T + L_0 + (T - 1) L_{t-1} at t ~ U{2..T}, averaged over images, against the full bound
  std::vector<float> many(kMC * 4);
  for (int64_t m = 0; m < kMC; ++m) std::copy(px.begin(), px.begin() + 4, many.begin() + m * 4);
  const TensorF xm = TensorF::from({kMC, 1, 1, 4}, many);
  Rng r1(10), r2(11);
  const BoundResult full = variational_bound(s, linear_denoiser(), xm, r1, o);
  const BoundEstimate est = variational_bound_estimate(s, linear_denoiser(), xm, r2, o);
  const Stats sf = stats(full.bits_per_dim), se = stats(est.bits_per_dim);
  c.equal("bpd.one_t_estimate", Label::Consistency, "mean of L_T + L_0 + (T-1) L_{t-1}, t ~ U{2..T}, vs the full bound (bits/dim)", se.mean, sf.mean,
          kSE * std::hypot(sf.se_mean, se.se_mean), "5 SE");
}

}  // namespace dd::derivations
