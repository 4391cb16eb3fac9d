#include "derivations/toy.h"

#include <algorithm>
#include <cmath>

#include "ddpm/gaussian.h"
#include "derivations/checker.h"

namespace dd::derivations {

using namespace dd::ddpm;

double abar_hand(int64_t t) {
  double p = 1.0;
  for (int64_t s = 1; s <= t; ++s) p *= alpha_hand(s);
  return p;
}
double betatilde_hand(int64_t t) { return (1.0 - abar_hand(t - 1)) / (1.0 - abar_hand(t)) * beta_hand(t); }
double log_normal(double x, double m, double v) { return -0.5 * (std::log(2.0 * kPi * v) + (x - m) * (x - m) / v); }
double mutilde_hand(int64_t t, double x0, double xt) {
  return (std::sqrt(abar_hand(t - 1)) * beta_hand(t) * x0 + std::sqrt(alpha_hand(t)) * (1 - abar_hand(t - 1)) * xt) /
         (1 - abar_hand(t));
}

const std::vector<double> kX0 = {-1.0, -0.2, 0.5, 1.0};
const std::vector<double> kXt = {0.3, -1.2, 0.8, 0.1};
const std::vector<double> kEps = {0.7, -0.3, 1.4, -0.9};
const std::vector<double> kGuess = {0.1, -0.4, 0.9, -1.3};

Tensor<double> image_of(const std::vector<double>& v) {
  return Tensor<double>::from({1, 1, 1, static_cast<int64_t>(v.size())}, v);
}
Tensor<double> column_of(const std::vector<double>& v) { return Tensor<double>::from({static_cast<int64_t>(v.size()), 1}, v); }

double linear_net_coef(int64_t t) { return std::sqrt(1 - abar_hand(t)) / (abar_hand(t) * kDataStd * kDataStd + 1 - abar_hand(t)); }
// With it eq. (11) gives mu_theta(x_t, t) = A_t x_t, A_t = (1 - beta_t c_t / sqrt(1 - abar_t)) / sqrt(alpha_t).
double linear_mean_coef(int64_t t) { return (1 - beta_hand(t) * linear_net_coef(t) / std::sqrt(1 - abar_hand(t))) / std::sqrt(alpha_hand(t)); }
// sigma_t^2 of the fixed "large" choice, by hand: beta_t for t >= 2, betatilde_2 at t = 1.
double sigma2_large_hand(int64_t t) { return t == 1 ? betatilde_hand(2) : beta_hand(t); }

Denoiser linear_denoiser() {
  return [](const TensorF& x_t, const std::vector<int64_t>& t) {
    TensorF out(x_t.shape());
    const int64_t inner = x_t.numel() / x_t.size(0);
    for (int64_t n = 0; n < x_t.size(0); ++n)
      for (int64_t i = 0; i < inner; ++i)
        out.data()[n * inner + i] = static_cast<float>(linear_net_coef(t[n]) * x_t.data()[n * inner + i]);
    return out;
  };
}

// M forward paths from x0 by iterating eq. (2) by hand: paths[t][m], t = 0..T.
std::vector<std::vector<double>> forward_paths(double x0, int64_t M, Rng& rng) {
  std::vector<std::vector<double>> x(kT + 1, std::vector<double>(M, x0));
  for (int64_t t = 1; t <= kT; ++t) {
    const std::vector<double> z = rng.normal<double>({M}).to_vector();
    for (int64_t m = 0; m < M; ++m) x[t][m] = std::sqrt(alpha_hand(t)) * x[t - 1][m] + std::sqrt(beta_hand(t)) * z[m];
  }
  return x;
}


Reverse reverse_step(const Schedule& s, const std::vector<double>& x_t, int64_t t, VarianceType v) {
  const int64_t M = static_cast<int64_t>(x_t.size());
  std::vector<double> eps(M);
  for (int64_t m = 0; m < M; ++m) eps[m] = linear_net_coef(t) * x_t[m];
  const ModelPrediction<double> p = p_mean_variance(s, v, column_of(eps), column_of(x_t), std::vector<int64_t>(M, t), false);
  return {p.mean.to_vector(), std::exp(p.log_variance.data()[0])};
}

double bayes_log(int64_t t, double xprev, double x0, double xt) {
  return log_normal(xt, std::sqrt(alpha_hand(t)) * xprev, beta_hand(t)) + log_normal(xprev, std::sqrt(abar_hand(t - 1)) * x0, 1 - abar_hand(t - 1)) -
         log_normal(xt, std::sqrt(abar_hand(t)) * x0, 1 - abar_hand(t));
}

ForwardMC forward_mc() {
  Rng rng(4);
  ForwardMC f;
  const Stats st = stats(forward_paths(f.x0, kMC, rng)[5]);
  f.mean5 = st.mean, f.var5 = st.var, f.se_mean5 = st.se_mean, f.se_var5 = st.se_var;
  return f;
}

BoundMC bound_mc(const Schedule& s) {
  BoundMC b;
  Rng rng(3);
  const auto x = forward_paths(b.x0, kMC, rng);
  const int64_t M = kMC;
  b.log_ratio.assign(M, 0);
  b.prior_bracket.assign(M, 0);
  b.decoder_bracket.assign(M, 0);
  b.kl_sum_bracket.assign(M, 0);
  b.kl_closed_sum.assign(M, 0);
  for (int64_t m = 0; m < M; ++m) {
    b.log_ratio[m] = log_normal(x[kT][m], 0, 1);  // log p(x_T)
    b.prior_bracket[m] = log_normal(x[kT][m], std::sqrt(abar_hand(kT)) * b.x0, 1 - abar_hand(kT)) - log_normal(x[kT][m], 0, 1);
  }
  for (int64_t t = 1; t <= kT; ++t) {
    const Reverse r = reverse_step(s, x[t], t, VarianceType::Large);
    const Posterior<double> post = q_posterior(s, TensorD::full({M, 1}, b.x0), column_of(x[t]), std::vector<int64_t>(M, t));
    for (int64_t m = 0; m < M; ++m) {
      const double lp = log_normal(x[t - 1][m], r.mean[m], r.var);
      b.log_ratio[m] += lp - log_normal(x[t][m], std::sqrt(alpha_hand(t)) * x[t - 1][m], beta_hand(t));
      if (t == 1) {
        b.decoder_bracket[m] = -lp;
      } else {
        b.kl_sum_bracket[m] += log_normal(x[t - 1][m], post.mean.data()[m], post.variance[0]) - lp;
        b.kl_closed_sum[m] += normal_kl(post.mean.data()[m], std::log(post.variance[0]), r.mean[m], std::log(r.var));
      }
    }
  }
  // the exact marginal of x0 under p_theta: x_T ~ N(0, 1), x_{t-1} = A_t x_t + sigma_t z
  double v = 1;
  for (int64_t t = kT; t >= 1; --t) v = linear_mean_coef(t) * linear_mean_coef(t) * v + sigma2_large_hand(t);
  b.log_px0 = log_normal(b.x0, 0, v);
  return b;
}

double kl_sum(const Schedule& s, int64_t t, VarianceType v, const std::vector<double>& guess) {
  const TensorD xt = q_sample(s, image_of(kX0), {t}, image_of(kEps));
  const Posterior<double> q = q_posterior(s, image_of(kX0), xt, {t});
  const ModelPrediction<double> p = p_mean_variance(s, v, image_of(guess), xt, {t}, false);
  double k = 0;
  for (int i = 0; i < 4; ++i)
    k += normal_kl(q.mean.data()[i], std::log(q.variance[0]), p.mean.data()[i], p.log_variance.data()[i]);
  return k;
}

}  // namespace dd::derivations
