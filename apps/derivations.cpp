// derivations: every equation of docs/derivations.md checked with small numbers a reader can follow.
// The teaching schedule is T = 10 with betas 0.05, 0.10, ..., 0.50 (beta_t = 0.05 t); images are a
// few pixels. Each check compares two sides computed independently (the library's closed form
// against Bayes' rule evaluated pointwise, against iterating the one-step process, against Monte
// Carlo with a stated tolerance, against a hand formula written out here), prints the left side,
// the right side, the difference and PASS/FAIL, and the program exits non-zero on any failure.
// Each typo of the seed notes (../shared/MATH.md) gets a check that the seed's version is off and
// the corrected one is right. --plots DIR also draws the schedules, q(x_t | x0) on a real digit,
// the eq. (12) weights and betatilde_t against beta_t.
//
//   ./apps/derivations [--eq N] [--verbose] [--plots DIR] [--data DIR]
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "ddpm/bound.h"
#include "ddpm/diffusion.h"
#include "ddpm/gaussian.h"
#include "ddpm/losses.h"
#include "ddpm/sample.h"
#include "ddpm/schedule.h"
#include "tensor/io/idx.h"
#include "tensor/io/png.h"
#include "tensor/random.h"

namespace fs = std::filesystem;
using namespace dd;
using namespace dd::ddpm;

namespace {

constexpr double kPi = 3.14159265358979323846;
constexpr int64_t kT = 10;
constexpr int64_t kMC = 20000;  // Monte Carlo sample size
constexpr double kSE = 5.0;     // Monte Carlo tolerance: 5 standard errors (a false alarm ~1 in 1.7 million)

// ---- the teaching numbers, written out by hand (independent of ddpm/schedule.cpp) --------------
double hb(int64_t t) { return 0.05 * static_cast<double>(t); }  // beta_t
double ha(int64_t t) { return 1.0 - hb(t); }                      // alpha_t
double hab(int64_t t) {                                           // abar_t, abar_0 = 1
  double p = 1.0;
  for (int64_t s = 1; s <= t; ++s) p *= ha(s);
  return p;
}
double hbt(int64_t t) { return (1.0 - hab(t - 1)) / (1.0 - hab(t)) * hb(t); }  // betatilde_t (eq. 7)
// log N(x; m, v), written out (the library's gaussian_log_density is not used by the checks)
double logN(double x, double m, double v) { return -0.5 * (std::log(2.0 * kPi * v) + (x - m) * (x - m) / v); }

// The four pixels of the teaching image, a noisy x_t to go with them, a noise draw and a network's guess.
const std::vector<double> kX0 = {-1.0, -0.2, 0.5, 1.0};
const std::vector<double> kXt = {0.3, -1.2, 0.8, 0.1};
const std::vector<double> kEps = {0.7, -0.3, 1.4, -0.9};
const std::vector<double> kGuess = {0.1, -0.4, 0.9, -1.3};

TensorD img(const std::vector<double>& v) { return TensorD::from({1, 1, 1, static_cast<int64_t>(v.size())}, v); }
TensorD col(const std::vector<double>& v) { return TensorD::from({static_cast<int64_t>(v.size()), 1}, v); }

struct Stats {
  double mean = 0, var = 0, se_mean = 0, se_var = 0;
};
Stats stats(const std::vector<double>& v) {
  Stats s;
  const double n = static_cast<double>(v.size());
  for (double a : v) s.mean += a;
  s.mean /= n;
  double m4 = 0;
  for (double a : v) {
    const double d = (a - s.mean) * (a - s.mean);
    s.var += d;
    m4 += d * d;
  }
  s.var /= (n - 1);
  m4 /= n;
  s.se_mean = std::sqrt(s.var / n);
  s.se_var = std::sqrt(std::max(m4 - s.var * s.var, 0.0) / n);
  return s;
}
double sq_err(const std::vector<double>& a, const std::vector<double>& b) {
  double e = 0;
  for (size_t i = 0; i < a.size(); ++i) e += (a[i] - b[i]) * (a[i] - b[i]);
  return e;
}

// ---- the checker ------------------------------------------------------------------------------
class Checker {
 public:
  Checker(std::string only, bool verbose) : only_(std::move(only)), verbose_(verbose) {}
  bool wants(const std::string& group) const { return only_.empty() || only_ == group; }
  void header(const std::string& title) const { std::printf("\n== %s\n", title.c_str()); }
  void say(const std::string& text) const {
    if (verbose_) std::printf("     %s\n", text.c_str());
  }
  // |lhs - rhs| <= tol at every element; prints the worst element (every element with --verbose).
  void equal(const std::string& name, const std::string& what, const std::vector<double>& lhs,
             const std::vector<double>& rhs, double tol, const std::string& tol_note = "") {
    if (lhs.size() != rhs.size() || lhs.empty()) {
      report(name, what, NAN, NAN, NAN, tol, false, tol_note + " (sizes differ)");
      return;
    }
    size_t worst = 0;
    double worst_d = -1;
    bool ok = true;
    for (size_t i = 0; i < lhs.size(); ++i) {
      const double d = std::abs(lhs[i] - rhs[i]);
      if (!(d <= tol)) ok = false;  // NaN fails
      if (!(d <= worst_d)) worst_d = d, worst = i;
    }
    if (verbose_ && lhs.size() > 1)
      for (size_t i = 0; i < lhs.size(); ++i)
        std::printf("       [%zu] lhs %.12g  rhs %.12g  diff %.3g\n", i, lhs[i], rhs[i], lhs[i] - rhs[i]);
    report(name, what, lhs[worst], rhs[worst], lhs[worst] - rhs[worst], tol, ok, tol_note);
  }
  void equal(const std::string& name, const std::string& what, double lhs, double rhs, double tol,
             const std::string& tol_note = "") {
    equal(name, what, std::vector<double>{lhs}, std::vector<double>{rhs}, tol, tol_note);
  }
  // An inequality: lhs <= rhs.
  void at_most(const std::string& name, const std::string& what, double lhs, double rhs) {
    ++run_;
    const bool ok = lhs <= rhs;
    if (!ok) ++failed_;
    std::printf("  %-5s %-30s %s\n        lhs % .10g <= rhs % .10g   (rhs - lhs = %.3g)\n", ok ? "PASS" : "FAIL",
                name.c_str(), what.c_str(), lhs, rhs, rhs - lhs);
  }
  // A seed typo: the seed's value must miss the truth by more than tol and the corrected one hit it.
  void typo(const std::string& name, const std::string& what, double seed, double corrected, double truth,
            double tol, const std::string& truth_note) {
    ++run_;
    const double ds = std::abs(seed - truth), dc = std::abs(corrected - truth);
    const bool ok = ds > tol && dc <= tol;
    if (!ok) ++failed_;
    std::printf("  %-5s %-30s %s\n", ok ? "PASS" : "FAIL", name.c_str(), what.c_str());
    std::printf("        truth (%s) % .10g\n", truth_note.c_str(), truth);
    std::printf("        seed's version % .10g  diff % .3g  %s tol %.3g  -> seed is %s\n", seed, seed - truth,
                ds > tol ? ">" : "<=", tol, ds > tol ? "wrong" : "NOT caught");
    std::printf("        corrected      % .10g  diff % .3g  %s tol %.3g  -> corrected %s\n", corrected,
                corrected - truth, dc <= tol ? "<=" : ">", tol, dc <= tol ? "holds" : "FAILS");
  }
  int run() const { return run_; }
  int failed() const { return failed_; }

 private:
  void report(const std::string& name, const std::string& what, double lhs, double rhs, double diff, double tol,
              bool ok, const std::string& tol_note) {
    ++run_;
    if (!ok) ++failed_;
    std::printf("  %-5s %-30s %s\n        lhs % .12g  rhs % .12g  diff % .3g  (tol %.3g%s%s)\n", ok ? "PASS" : "FAIL",
                name.c_str(), what.c_str(), lhs, rhs, diff, tol, tol_note.empty() ? "" : ", ", tol_note.c_str());
  }
  std::string only_;
  bool verbose_;
  int run_ = 0, failed_ = 0;
};

// ---- a small linear "network" whose reverse process is Gaussian in closed form -----------------
// eps_theta(x_t, t) = c_t x_t, the exact E[eps | x_t] when the data are x0 ~ N(0, s^2) per pixel:
// c_t = sqrt(1 - abar_t) / (abar_t s^2 + 1 - abar_t). Used for eqs. (3), (5), Algorithms 1 and 2.
constexpr double kDataStd = 0.5;
double c_lin(int64_t t) { return std::sqrt(1 - hab(t)) / (hab(t) * kDataStd * kDataStd + 1 - hab(t)); }
// With it eq. (11) gives mu_theta(x_t, t) = A_t x_t, A_t = (1 - beta_t c_t / sqrt(1 - abar_t)) / sqrt(alpha_t).
double A_lin(int64_t t) { return (1 - hb(t) * c_lin(t) / std::sqrt(1 - hab(t))) / std::sqrt(ha(t)); }
// sigma_t^2 of the fixed "large" choice, by hand: beta_t for t >= 2, betatilde_2 at t = 1.
double sig2_large(int64_t t) { return t == 1 ? hbt(2) : hb(t); }

Denoiser linear_denoiser() {
  return [](const TensorF& x_t, const std::vector<int64_t>& t) {
    TensorF out(x_t.shape());
    const int64_t inner = x_t.numel() / x_t.size(0);
    for (int64_t n = 0; n < x_t.size(0); ++n)
      for (int64_t i = 0; i < inner; ++i)
        out.data()[n * inner + i] = static_cast<float>(c_lin(t[n]) * x_t.data()[n * inner + i]);
    return out;
  };
}

// M forward paths from x0 by iterating eq. (2) by hand: paths[t][m], t = 0..T.
std::vector<std::vector<double>> forward_paths(double x0, int64_t M, Rng& rng) {
  std::vector<std::vector<double>> x(kT + 1, std::vector<double>(M, x0));
  for (int64_t t = 1; t <= kT; ++t) {
    const std::vector<double> z = rng.normal<double>({M}).to_vector();
    for (int64_t m = 0; m < M; ++m) x[t][m] = std::sqrt(ha(t)) * x[t - 1][m] + std::sqrt(hb(t)) * z[m];
  }
  return x;
}

// The library's mean and variance of p_theta(x_{t-1} | x_t) for the linear network, on a column of x_t.
struct Reverse {
  std::vector<double> mean;
  double var;
};
Reverse reverse_step(const Schedule& s, const std::vector<double>& x_t, int64_t t, VarianceType v) {
  const int64_t M = static_cast<int64_t>(x_t.size());
  std::vector<double> eps(M);
  for (int64_t m = 0; m < M; ++m) eps[m] = c_lin(t) * x_t[m];
  const ModelPrediction<double> p = p_mean_variance(s, v, col(eps), col(x_t), std::vector<int64_t>(M, t), false);
  return {p.mean.to_vector(), std::exp(p.log_variance.data()[0])};
}

// ================================================================================================
void check_eq1(Checker& c, const Schedule& s) {
  c.header("eq. (1): p(x_T) = N(0, I), p_theta(x_{t-1} | x_t) = N(mu_theta(x_t, t), sigma_t^2)");
  c.say("sigma_t^2 is fixed: 'large' = beta_t, 'small' = betatilde_t; both use betatilde_2 at t = 1.");
  std::vector<double> lib_l, hand_l, lib_s, hand_s, ratio;
  for (int64_t t = 1; t <= kT; ++t) {
    lib_l.push_back(s.model_variance(VarianceType::Large, t));
    hand_l.push_back(sig2_large(t));
    lib_s.push_back(s.model_variance(VarianceType::Small, t));
    hand_s.push_back(t == 1 ? hbt(2) : hbt(t));
    if (t >= 2) ratio.push_back(hbt(t) / hb(t));
  }
  c.equal("eq1.sigma_large", "sigma_t^2 'large' vs 0.05 t by hand (t = 1..10)", lib_l, hand_l, 1e-14);
  c.equal("eq1.sigma_small", "sigma_t^2 'small' vs betatilde_t by hand (t = 1..10)", lib_s, hand_s, 1e-14);
  c.at_most("eq1.entropy_bounds", "max_t betatilde_t / beta_t <= 1 (small <= large)",
            *std::max_element(ratio.begin(), ratio.end()), 1.0);
  const ModelPrediction<double> p = p_mean_variance(s, VarianceType::Large, img(kGuess), img(kXt), {7}, false);
  c.equal("eq1.p_mean_variance_var", "p_mean_variance log sigma_7^2 vs log(0.35)", p.log_variance.to_vector(),
          std::vector<double>(4, std::log(0.35)), 1e-14);
}

void check_eq2(Checker& c, const Schedule& s) {
  c.header("eq. (2): q(x_t | x_{t-1}) = N(sqrt(alpha_t) x_{t-1}, beta_t)");
  c.say("At t = 1 eq. (4) is one step of eq. (2): x_1 = sqrt(0.95) x0 + sqrt(0.05) eps.");
  const TensorD x1 = q_sample(s, img(kX0), {1}, img(kEps));
  std::vector<double> hand;
  for (size_t i = 0; i < kX0.size(); ++i) hand.push_back(std::sqrt(0.95) * kX0[i] + std::sqrt(0.05) * kEps[i]);
  c.equal("eq2.one_step", "q_sample at t = 1 vs sqrt(0.95) x0 + sqrt(0.05) eps", x1.to_vector(), hand, 1e-15);
  std::vector<double> ab;
  for (int64_t t = 1; t <= kT; ++t) ab.push_back(s.alphas[t] + s.betas[t]);
  c.equal("eq2.alpha_plus_beta", "alpha_t + beta_t = 1 (keeps unit variance)", ab, std::vector<double>(kT, 1.0),
          1e-15);
}

// Monte Carlo of the forward chain from x0 = 0.5 up to t = 5, shared by eq. (4) and the seed-typo checks.
struct ForwardMC {
  Stats x5;
  double x0 = 0.5;
};
ForwardMC forward_mc() {
  Rng rng(4);
  ForwardMC f;
  f.x5 = stats(forward_paths(f.x0, kMC, rng)[5]);
  return f;
}

void check_eq4(Checker& c, const Schedule& s, const ForwardMC& f) {
  c.header("eq. (4): q(x_t | x0) = N(sqrt(abar_t) x0, 1 - abar_t)");
  c.say("Iterate eq. (2): mean m_t = sqrt(alpha_t) m_{t-1}, variance v_t = alpha_t v_{t-1} + beta_t,");
  c.say("from m_0 = x0, v_0 = 0. The variances telescope: 1 - v_t = alpha_t (1 - v_{t-1}) = abar_t.");
  std::vector<double> lib_m, it_m, lib_v, it_v;
  std::vector<double> m(kX0);
  double v = 0;
  for (int64_t t = 1; t <= kT; ++t) {
    for (double& a : m) a *= std::sqrt(ha(t));
    v = ha(t) * v + hb(t);
    const std::vector<double> mean = q_sample(s, img(kX0), {t}, img({0, 0, 0, 0})).to_vector();
    const double sd = q_sample(s, img({0}), {t}, img({1})).data()[0];
    lib_m.insert(lib_m.end(), mean.begin(), mean.end());
    it_m.insert(it_m.end(), m.begin(), m.end());
    lib_v.push_back(sd * sd);
    it_v.push_back(v);
  }
  c.equal("eq4.iterate_mean", "q_sample(x0, t, eps=0) vs eq. (2) mean iterated t times", lib_m, it_m, 1e-14);
  c.equal("eq4.iterate_var", "q_sample(0, t, eps=1)^2 vs eq. (2) variance iterated", lib_v, it_v, 1e-14);
  c.equal("eq4.monte_carlo_mean", "mean of x_5 over 20000 runs of eq. (2) vs sqrt(abar_5) x0", f.x5.mean,
          s.sqrt_abar[5] * f.x0, kSE * f.x5.se_mean, "5 SE");
  c.equal("eq4.monte_carlo_var", "variance of x_5 over 20000 runs vs 1 - abar_5", f.x5.var, 1 - s.abar[5],
          kSE * f.x5.se_var, "5 SE");
  const TensorD xt = q_sample(s, img(kX0), {6}, img(kEps));
  c.equal("eq4.x0_from_eps", "predict_x0_from_eps(q_sample(x0, eps), eps) vs x0 (t = 6)",
          predict_x0_from_eps(s, xt, {6}, img(kEps)).to_vector(), kX0, 1e-14);
}

// Bayes' rule for the posterior as a function of x' = x_{t-1}: log q(x_t|x') + log q(x'|x0) - log q(x_t|x0).
double bayes_log(int64_t t, double xprev, double x0, double xt) {
  return logN(xt, std::sqrt(ha(t)) * xprev, hb(t)) + logN(xprev, std::sqrt(hab(t - 1)) * x0, 1 - hab(t - 1)) -
         logN(xt, std::sqrt(hab(t)) * x0, 1 - hab(t));
}

void check_eq6(Checker& c, const Schedule& s) {
  c.header("eq. (6): q(x_{t-1} | x_t, x0) = N(mutilde_t, betatilde_t)  (Bayes' rule, pointwise)");
  c.say("Bayes: q(x_{t-1}|x_t,x0) = q(x_t|x_{t-1}) q(x_{t-1}|x0) / q(x_t|x0), using q(x_t|x_{t-1},x0) = q(x_t|x_{t-1}).");
  std::vector<double> bayes, closed;
  for (int64_t t = 2; t <= kT; ++t) {
    const Posterior<double> p = q_posterior(s, img(kX0), img(kXt), {t});
    for (size_t i = 0; i < kX0.size(); ++i)
      for (int k = -6; k <= 6; ++k) {
        const double xp = 0.5 * k;
        bayes.push_back(bayes_log(t, xp, kX0[i], kXt[i]));
        closed.push_back(logN(xp, p.mean.data()[i], p.variance[0]));
      }
  }
  c.equal("eq6.bayes_pointwise", "log q(x_{t-1}|x_t,x0) by Bayes vs log N(mutilde, betatilde), 13x4x9 points", bayes,
          closed, 1e-10);
}

void check_eq7(Checker& c, const Schedule& s) {
  c.header("eq. (7): mutilde_t and betatilde_t (completing the square)");
  c.say("The log posterior is a quadratic a x^2 + b x + const in x = x_{t-1}; read a, b off Bayes at x = -1, 0, 1:");
  c.say("a = (f(1) + f(-1) - 2 f(0)) / 2, b = (f(1) - f(-1)) / 2; variance = -1/(2a), mean = -b/(2a).");
  std::vector<double> sq_m, lib_m, sq_v, lib_v, marg_m, want_m, marg_v, want_v;
  for (int64_t t = 2; t <= kT; ++t) {
    const Posterior<double> p = q_posterior(s, img(kX0), img(kXt), {t});
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
      marg_m.push_back(s.posterior_mean_coef1[t] * kX0[i] + s.posterior_mean_coef2[t] * std::sqrt(hab(t)) * kX0[i]);
      want_m.push_back(std::sqrt(hab(t - 1)) * kX0[i]);
    }
    marg_v.push_back(s.posterior_mean_coef2[t] * s.posterior_mean_coef2[t] * (1 - hab(t)) + s.posterior_variance[t]);
    want_v.push_back(1 - hab(t - 1));
  }
  c.equal("eq7.mean_square", "mutilde_t (q_posterior) vs -b/(2a) from Bayes, t = 2..10", lib_m, sq_m, 1e-9);
  c.equal("eq7.var_square", "betatilde_t (q_posterior) vs -1/(2a) from Bayes, t = 2..10", lib_v, sq_v, 1e-9);
  c.equal("eq7.marginal_mean", "E[mutilde] under q(x_t|x0) vs sqrt(abar_{t-1}) x0", marg_m, want_m, 1e-14);
  c.equal("eq7.marginal_var", "coef2^2 (1 - abar_t) + betatilde_t vs 1 - abar_{t-1}", marg_v, want_v, 1e-14);
}

// The Monte Carlo of the bound, shared by eq. (3), eq. (5) and the Jensen typos: paths from q (by
// hand), densities of p (library reverse step) and q (by hand), for x0 = 0.5 and the linear network.
struct BoundMC {
  double x0 = 0.5;
  std::vector<double> log_ratio;  // log p(x_{0:T}) - log q(x_{1:T}|x0) per path
  std::vector<double> prior_bracket, decoder_bracket, kl_sum_bracket, kl_closed_sum;
  double log_px0 = 0;  // exact log p_theta(x0) by the Gaussian recursion
};
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
    b.log_ratio[m] = logN(x[kT][m], 0, 1);  // log p(x_T)
    b.prior_bracket[m] = logN(x[kT][m], std::sqrt(hab(kT)) * b.x0, 1 - hab(kT)) - logN(x[kT][m], 0, 1);
  }
  for (int64_t t = 1; t <= kT; ++t) {
    const Reverse r = reverse_step(s, x[t], t, VarianceType::Large);
    const Posterior<double> post = q_posterior(s, TensorD::full({M, 1}, b.x0), col(x[t]), std::vector<int64_t>(M, t));
    for (int64_t m = 0; m < M; ++m) {
      const double lp = logN(x[t - 1][m], r.mean[m], r.var);
      b.log_ratio[m] += lp - logN(x[t][m], std::sqrt(ha(t)) * x[t - 1][m], hb(t));
      if (t == 1) {
        b.decoder_bracket[m] = -lp;
      } else {
        b.kl_sum_bracket[m] += logN(x[t - 1][m], post.mean.data()[m], post.variance[0]) - lp;
        b.kl_closed_sum[m] += normal_kl(post.mean.data()[m], std::log(post.variance[0]), r.mean[m], std::log(r.var));
      }
    }
  }
  // the exact marginal of x0 under p_theta: x_T ~ N(0, 1), x_{t-1} = A_t x_t + sigma_t z
  double v = 1;
  for (int64_t t = kT; t >= 1; --t) v = A_lin(t) * A_lin(t) * v + sig2_large(t);
  b.log_px0 = logN(b.x0, 0, v);
  return b;
}

double log_mean_exp(const std::vector<double>& r, double* se_log) {
  const double mx = *std::max_element(r.begin(), r.end());
  std::vector<double> w(r.size());
  for (size_t i = 0; i < r.size(); ++i) w[i] = std::exp(r[i] - mx);
  const Stats st = stats(w);
  *se_log = st.se_mean / st.mean;  // delta method: the standard error of log(mean)
  return mx + std::log(st.mean);
}

void check_eq3(Checker& c, const BoundMC& b) {
  c.header("eq. (3): E[-log p_theta(x0)] <= E_q[-log p(x_T) - sum_t log p_theta(x_{t-1}|x_t)/q(x_t|x_{t-1})] (Jensen)");
  c.say("log p(x0) = log E_q[ p(x_{0:T}) / q(x_{1:T}|x0) ]; log is concave, so E[log X] <= log E[X].");
  c.say("x0 = 0.5, the linear network eps_theta = c_t x_t, sigma 'large', 20000 paths from q.");
  double se = 0;
  const double lme = log_mean_exp(b.log_ratio, &se);
  c.equal("eq3.importance", "log mean of p/q over paths vs exact log p_theta(x0) (Gaussian recursion)", lme,
          b.log_px0, kSE * se, "5 SE");
  const Stats r = stats(b.log_ratio);
  c.at_most("eq3.jensen", "E_q[log p/q] (= -L) <= log p_theta(x0) - 5 SE", r.mean, b.log_px0 - kSE * r.se_mean);
}

void check_eq5(Checker& c, const Schedule& s, const BoundMC& b) {
  c.header("eq. (5): L = L_T + sum_{t>1} L_{t-1} + L_0 (telescoping)");
  c.say("For t >= 2 write q(x_t|x_{t-1}) = q(x_{t-1}|x_t,x0) q(x_t|x0) / q(x_{t-1}|x0) (Bayes); the ratios");
  c.say("q(x_t|x0)/q(x_{t-1}|x0) telescope to q(x_T|x0)/q(x_1|x0), and q(x_1|x0) cancels the t = 1 term.");
  std::vector<double> lhs(kMC), rhs(kMC);
  for (int64_t m = 0; m < kMC; ++m) {
    lhs[m] = -b.log_ratio[m];
    rhs[m] = b.prior_bracket[m] + b.kl_sum_bracket[m] + b.decoder_bracket[m];
  }
  c.equal("eq5.telescope_pointwise", "eq. (3) integrand vs L_T + sum L_{t-1} + L_0 brackets, every path", lhs, rhs,
          1e-9);
  // each bracket's expectation is a KL
  std::vector<double> d(kMC);
  for (int64_t m = 0; m < kMC; ++m) d[m] = b.kl_sum_bracket[m] - b.kl_closed_sum[m];
  const Stats sd = stats(d), sk = stats(b.kl_sum_bracket), sc = stats(b.kl_closed_sum);
  c.equal("eq5.kl_terms", "Monte Carlo sum_t E[log q/p] vs E[sum_t normal_kl] (same x_t)", sk.mean, sc.mean,
          kSE * sd.se_mean, "5 SE of the difference");
  const Stats sp = stats(b.prior_bracket);
  const double lt = prior_kl(s, TensorF::full({1, 1, 1, 1}, static_cast<float>(b.x0)))[0];
  c.equal("eq5.prior_kl", "Monte Carlo E[log q(x_T|x0)/p(x_T)] vs prior_kl (L_T)", sp.mean, lt, kSE * sp.se_mean,
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
  c.equal("eq5.bound_vs_library", "variational_bound (bound.cpp) mean vs Monte Carlo of eq. (3)", sl.mean, sm.mean,
          kSE * std::hypot(sl.se_mean, sm.se_mean), "5 SE, float32 model");
}

void check_eq8(Checker& c, const Schedule& s) {
  c.header("eq. (8): L_{t-1} = ||mutilde_t - mu_theta||^2 / (2 sigma_t^2) + C");
  c.say("KL of two Gaussians per dimension: 0.5 (log v2/v1 + v1/v2 + (m1 - m2)^2 / v2 - 1); only the");
  c.say("(m1 - m2)^2 term depends on mu_theta, and C = 0.5 (log v2/v1 + v1/v2 - 1) (zero when v2 = v1).");
  const int64_t t = 5;
  const double mt = q_posterior(s, img({kX0[2]}), img({kXt[2]}), {t}).mean.data()[0];
  const double bt = hbt(t), s2 = hb(t);
  std::vector<double> kl_diff, sq;
  for (double mu : {mt + 0.3, mt - 0.7, mt + 2.0}) {
    kl_diff.push_back(normal_kl(mt, std::log(bt), mu, std::log(s2)) - normal_kl(mt, std::log(bt), mt, std::log(s2)));
    sq.push_back((mt - mu) * (mt - mu) / (2 * s2));
  }
  c.equal("eq8.quadratic", "KL(mu) - KL(mutilde) vs (mutilde - mu)^2 / (2 sigma^2), sigma^2 = beta_5", kl_diff, sq,
          1e-14);
  c.equal("eq8.constant", "C = KL at mu = mutilde vs 0.5 (log(beta/betatilde) + betatilde/beta - 1)",
          normal_kl(mt, std::log(bt), mt, std::log(s2)), 0.5 * (std::log(s2 / bt) + bt / s2 - 1), 1e-15);
  // the KL formula itself, by Monte Carlo: E_q[log q - log p]
  Rng rng(8);
  const std::vector<double> z = rng.normal<double>({kMC}).to_vector();
  const double mu = mt + 0.3;
  std::vector<double> lr(kMC);
  for (int64_t m = 0; m < kMC; ++m) {
    const double xx = mt + std::sqrt(bt) * z[m];
    lr[m] = logN(xx, mt, bt) - logN(xx, mu, s2);
  }
  const Stats st = stats(lr);
  c.equal("eq8.kl_monte_carlo", "normal_kl vs Monte Carlo E_q[log q - log p]",
          normal_kl(mt, std::log(bt), mu, std::log(s2)), st.mean, kSE * st.se_mean, "5 SE");
}

void check_eq9(Checker& c, const Schedule& s) {
  c.header("eq. (9): reparameterize x_t(x0, eps) = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps inside mutilde_t");
  c.say("x0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t), so mutilde_t(x_t, x0) can be written with eps.");
  std::vector<double> via_eps, via_x0;
  for (int64_t t = 1; t <= kT; ++t) {
    const TensorD xt = q_sample(s, img(kX0), {t}, img(kEps));
    const auto a = q_posterior(s, predict_x0_from_eps(s, xt, {t}, img(kEps)), xt, {t}).mean.to_vector();
    const auto b = q_posterior(s, img(kX0), xt, {t}).mean.to_vector();
    via_eps.insert(via_eps.end(), a.begin(), a.end());
    via_x0.insert(via_x0.end(), b.begin(), b.end());
  }
  c.equal("eq9.reparameterize", "mutilde(x_t, x0 recovered from eps) vs mutilde(x_t, x0), t = 1..10", via_eps,
          via_x0, 1e-13);
}

void check_eq10(Checker& c, const Schedule& s) {
  c.header("eq. (10): mutilde_t(x_t, x0(x_t, eps)) = (x_t - beta_t / sqrt(1 - abar_t) eps) / sqrt(alpha_t)");
  c.say("Substitute x0 = (x_t - sqrt(1 - abar_t) eps)/sqrt(abar_t) into eq. (7); with abar_t = alpha_t abar_{t-1}:");
  c.say("coef of x_t: [beta_t + alpha_t (1 - abar_{t-1})] / (sqrt(alpha_t)(1 - abar_t)) = 1/sqrt(alpha_t);");
  c.say("coef of eps: -beta_t sqrt(1 - abar_t) / (sqrt(alpha_t)(1 - abar_t)) = -beta_t / (sqrt(alpha_t) sqrt(1 - abar_t)).");
  std::vector<double> lib, hand;
  for (int64_t t = 1; t <= kT; ++t) {
    const TensorD xt = img(kXt);
    const auto a = q_posterior(s, predict_x0_from_eps(s, xt, {t}, img(kEps)), xt, {t}).mean.to_vector();
    lib.insert(lib.end(), a.begin(), a.end());
    for (size_t i = 0; i < kXt.size(); ++i)
      hand.push_back((kXt[i] - hb(t) / std::sqrt(1 - hab(t)) * kEps[i]) / std::sqrt(ha(t)));
  }
  c.equal("eq10.eps_form", "q_posterior mean at x0(x_t, eps) vs the eq. (10) form by hand, t = 1..10", lib, hand,
          1e-12);
}

void check_eq11(Checker& c, const Schedule& s) {
  c.header("eq. (11): mu_theta(x_t, t) = (x_t - beta_t / sqrt(1 - abar_t) eps_theta(x_t, t)) / sqrt(alpha_t)");
  std::vector<double> lib, hand, route7;
  const std::vector<double> x0 = {-0.6, -0.2, 0.3, 0.7};
  for (int64_t t = 1; t <= kT; ++t) {
    const TensorD xt = q_sample(s, img(x0), {t}, img(kEps));
    std::vector<double> guess(4);
    for (int i = 0; i < 4; ++i) guess[i] = kEps[i] + 0.02 * kGuess[i];  // nearly right: x0_hat stays in [-1, 1]
    const auto a = p_mean_variance(s, VarianceType::Large, img(guess), xt, {t}, false).mean.to_vector();
    // the same mean by the other route: eq. (7) at x0_hat (the clip_x0 path; nothing is clipped here)
    const auto b = p_mean_variance(s, VarianceType::Large, img(guess), xt, {t}, true).mean.to_vector();
    lib.insert(lib.end(), a.begin(), a.end());
    route7.insert(route7.end(), b.begin(), b.end());
    for (int i = 0; i < 4; ++i)
      hand.push_back((xt.data()[i] - hb(t) / std::sqrt(1 - hab(t)) * guess[i]) / std::sqrt(ha(t)));
  }
  c.equal("eq11.by_hand", "p_mean_variance (eq. 11 route) vs the formula by hand, t = 1..10", lib, hand, 1e-12);
  c.equal("eq11.vs_eq7_route", "eq. (11) route vs eq. (7) at x0_hat (clip route), t = 1..10", lib, route7, 1e-12);
}

// The sum over pixels of KL(q(x_{t-1}|x_t,x0) || p_theta(x_{t-1}|x_t)) for eps_theta = guess, x_t = x_t(x0, eps).
double kl_sum(const Schedule& s, int64_t t, VarianceType v, const std::vector<double>& guess) {
  const TensorD xt = q_sample(s, img(kX0), {t}, img(kEps));
  const Posterior<double> q = q_posterior(s, img(kX0), xt, {t});
  const ModelPrediction<double> p = p_mean_variance(s, v, img(guess), xt, {t}, false);
  double k = 0;
  for (int i = 0; i < 4; ++i)
    k += normal_kl(q.mean.data()[i], std::log(q.variance[0]), p.mean.data()[i], p.log_variance.data()[i]);
  return k;
}

void check_eq12(Checker& c, const Schedule& s) {
  c.header("eq. (12): L_{t-1} - C = beta_t^2 / (2 sigma_t^2 alpha_t (1 - abar_t)) ||eps - eps_theta||^2");
  c.say("mutilde - mu_theta = beta_t / (sqrt(alpha_t) sqrt(1 - abar_t)) (eps_theta - eps) by eqs. (10) and (11);");
  c.say("square, divide by 2 sigma_t^2 (eq. 8). With sigma_t^2 = betatilde_t: beta_t / (2 alpha_t (1 - abar_{t-1})).");
  std::vector<double> ratio_s, lib_s, hand_s, ratio_l, lib_l;
  const double e2 = sq_err(kEps, kGuess);
  for (int64_t t = 2; t <= kT; ++t) {
    ratio_s.push_back((kl_sum(s, t, VarianceType::Small, kGuess) - kl_sum(s, t, VarianceType::Small, kEps)) / e2);
    lib_s.push_back(s.eps_weight_small[t]);
    hand_s.push_back(hb(t) / (2 * ha(t) * (1 - hab(t - 1))));
    ratio_l.push_back((kl_sum(s, t, VarianceType::Large, kGuess) - kl_sum(s, t, VarianceType::Large, kEps)) / e2);
    lib_l.push_back(s.eps_weight_large[t]);
  }
  c.equal("eq12.weight_small", "(KL(guess) - KL(exact eps)) / ||eps - guess||^2 vs eps_weight_small, t = 2..10",
          ratio_s, lib_s, 1e-12);
  c.equal("eq12.weight_small_hand", "eps_weight_small vs beta_t / (2 alpha_t (1 - abar_{t-1})) by hand", lib_s,
          hand_s, 1e-13);
  c.equal("eq12.weight_large", "the same KL ratio with sigma^2 = beta_t vs eps_weight_large", ratio_l, lib_l, 1e-12);
  // the training loss's KL path (losses.cpp, in bits/dim) against the weighted squared error
  std::vector<double> vb, want;
  const TensorD guess = img(kGuess);
  TrainDenoiserT<double> model = [&](const VarD&, const std::vector<int64_t>&) { return VarD(guess, false); };
  LossOptions o;
  o.type = LossType::Kl;
  o.variance = VarianceType::Small;
  for (int64_t t = 2; t <= kT; ++t) {
    const TrainingLossT<double> l = training_loss(s, model, img(kX0), {t}, img(kEps), {}, o);
    vb.push_back(l.vb[0] * 4 * std::log(2.0));   // bits/dim -> nats summed over the 4 pixels
    want.push_back(s.eps_weight_small[t] * e2);  // C = 0 for sigma^2 = betatilde
  }
  c.equal("eq12.training_loss_kl", "training_loss(kl, small) vb_t in nats vs weight * ||eps - guess||^2", vb, want,
          1e-12);
}

void check_eq13(Checker& c) {
  c.header("eq. (13): the discretized decoder p_theta(x0 | x1): bins of width 2/255, the edge bins take the tails");
  c.say("Each pixel's probability is the Gaussian mass of its bin; compare with Simpson's rule on the density.");
  const double mean = 0.1, sd = 0.3;
  auto simpson = [&](double a, double b) {
    const int n = 2000;
    const double h = (b - a) / n;
    double acc = 0;
    for (int i = 0; i <= n; ++i) acc += ((i == 0 || i == n) ? 1 : (i % 2 ? 4 : 2)) * std::exp(logN(a + i * h, mean, sd * sd));
    return acc * h / 3;
  };
  std::vector<double> lib, num;
  for (int k : {0, 37, 128, 200, 255}) {
    const double x = 2.0 * k / 255 - 1;
    const double lo = k == 0 ? mean - 12 * sd : x - 1.0 / 255, hi = k == 255 ? mean + 12 * sd : x + 1.0 / 255;
    lib.push_back(discretized_gaussian_log_likelihood(x, mean, std::log(sd)));
    num.push_back(std::log(simpson(lo, hi)));
  }
  c.equal("eq13.bin_mass", "log bin mass (library) vs log Simpson integral, k = 0, 37, 128, 200, 255", lib, num, 1e-9);
  double total = 0;
  for (int k = 0; k <= 255; ++k)
    total += std::exp(discretized_gaussian_log_likelihood(2.0 * k / 255 - 1, mean, std::log(sd)));
  c.equal("eq13.sums_to_one", "sum of the 256 bin probabilities vs 1", total, 1.0, 1e-12);
  std::vector<double> ln, ref;
  for (double z : {-35.0, -25.0, -5.0, 0.0, 3.0}) {
    ln.push_back(log_ndtr(z));
    ref.push_back(std::log(0.5 * std::erfc(-z / std::sqrt(2.0))));
  }
  c.equal("eq13.log_ndtr", "log_ndtr(z) vs log(erfc(-z/sqrt 2)/2), z = -35 .. 3", ln, ref, 1e-12);
  // tiny sigma, a far bin: erfc underflows; the asymptotic series of log Phi is the other side
  const double sig = 1e-3, x = 0.0, mu = 0.06;
  const double b = (x + 1.0 / 255 - mu) / sig;
  const double asym =
      -b * b / 2 - std::log(-b) - 0.5 * std::log(2 * kPi) + std::log1p(-1 / (b * b) + 3 / std::pow(b, 4));
  c.equal("eq13.tiny_sigma", "log bin mass at z ~ -56 (erfc underflows) vs asymptotic log Phi(b)",
          discretized_gaussian_log_likelihood(x, mu, std::log(sig)), asym, 1e-6, "series error ~15/b^6");
}

void check_bpd(Checker& c, const Schedule& s) {
  c.header("bits per dimension: (L_T + sum L_{t-1} + L_0) / (D ln 2), L_0 the discretized decoder");
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
  c.equal("bpd.formula", "bits_per_dim vs (sum of the T+1 terms) / (4 ln 2), 2 images", lib, hand, 1e-9);
  // the unbiased estimate L_T + L_0 + (T - 1) L_{t-1} at t ~ U{2..T}, averaged over images, against the full bound
  std::vector<float> many(kMC * 4);
  for (int64_t m = 0; m < kMC; ++m) std::copy(px.begin(), px.begin() + 4, many.begin() + m * 4);
  const TensorF xm = TensorF::from({kMC, 1, 1, 4}, many);
  Rng r1(10), r2(11);
  const BoundResult full = variational_bound(s, linear_denoiser(), xm, r1, o);
  const BoundEstimate est = variational_bound_estimate(s, linear_denoiser(), xm, r2, o);
  const Stats sf = stats(full.bits_per_dim), se = stats(est.bits_per_dim);
  c.equal("bpd.one_t_estimate", "mean of L_T + L_0 + (T-1) L_{t-1}, t ~ U{2..T}, vs the full bound (bits/dim)", se.mean, sf.mean,
          kSE * std::hypot(sf.se_mean, se.se_mean), "5 SE");
}

void check_eq14(Checker& c, const Schedule& s) {
  c.header("eq. (14): L_simple = E ||eps - eps_theta(sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, t)||^2 (mean over pixels)");
  const TensorD guess = img(kGuess);
  TrainDenoiserT<double> fixed = [&](const VarD&, const std::vector<int64_t>&) { return VarD(guess, false); };
  const TrainingLossT<double> l = training_loss(s, fixed, img(kX0), {4}, img(kEps));
  c.equal("eq14.mean_over_pixels", "training_loss(simple) vs mean_i (eps_i - eps_theta_i)^2 by hand", l.loss.item(),
          sq_err(kEps, kGuess) / 4, 1e-15);
  // the network is handed the x_t of eq. (4): a network that returns its input exposes it
  TrainDenoiserT<double> echo = [](const VarD& x, const std::vector<int64_t>&) { return x; };
  const TrainingLossT<double> le = training_loss(s, echo, img(kX0), {4}, img(kEps));
  double want = 0;
  for (int i = 0; i < 4; ++i) {
    const double xt = std::sqrt(hab(4)) * kX0[i] + std::sqrt(1 - hab(4)) * kEps[i];
    want += (kEps[i] - xt) * (kEps[i] - xt) / 4;
  }
  c.equal("eq14.network_input", "L_simple with eps_theta(x_t) = x_t vs by hand (checks the x_t of eq. 4)",
          le.loss.item(), want, 1e-15);
}

void check_alg1(Checker& c, const Schedule& s) {
  c.header("Algorithm 1: x0 ~ data, t ~ U{1..T}, eps ~ N(0, I), gradient step on eq. (14)");
  c.say("Data x0 ~ N(0, 0.5^2); network eps_theta = w_t x_t (one weight per t), plain SGD, lr 0.3, batch 64x4.");
  c.say("The minimizer of eq. (14) is w_t = E[eps x_t] / E[x_t^2] = sqrt(1 - abar_t) / (abar_t 0.25 + 1 - abar_t).");
  std::vector<VarD> w;
  for (int64_t t = 0; t <= kT; ++t) w.emplace_back(TensorD::scalar(0.0), true);
  std::vector<double> avg(kT + 1, 0.0);
  std::vector<int> cnt(kT + 1, 0);
  Rng rng(1);
  UniformTimesteps sampler(kT);
  const int steps = 1500;
  for (int step = 0; step < steps; ++step) {
    const int64_t t = sampler.sample(1, rng).t[0];  // one t per batch keeps the toy network simple
    const TensorD x0 = rng.normal<double>({64, 1, 1, 4}, 0.0, kDataStd);
    const TensorD eps = rng.normal<double>(x0.shape());
    TrainDenoiserT<double> model = [&](const VarD& x, const std::vector<int64_t>&) {
      return mul(x, expand(w[t], x.shape()));
    };
    const TrainingLossT<double> l = training_loss(s, model, x0, std::vector<int64_t>(64, t), eps);
    w[t].zero_grad();
    l.loss.backward();
    w[t].assign(TensorD::scalar(w[t].item() - 0.3 * w[t].grad().item()));
    if (step >= steps / 2) avg[t] += w[t].item(), ++cnt[t];
  }
  std::vector<double> got, best;
  for (int64_t t = 1; t <= kT; ++t) {
    got.push_back(cnt[t] ? avg[t] / cnt[t] : NAN);
    best.push_back(c_lin(t));
  }
  c.equal("alg1.sgd_reaches_minimizer", "w_t after 1500 SGD steps (mean of the last half) vs closed form, t = 1..10",
          got, best, 0.02, "SGD noise ~0.005");
}

void check_alg2(Checker& c, const Schedule& s) {
  c.header("Algorithm 2: x_T ~ N(0, I); x_{t-1} = mu_theta(x_t, t) + sigma_t z (z = 0 at t = 1)");
  // one-point data: with the exact eps_theta the last step returns x0
  const std::vector<double> x0 = {-0.9, -0.1, 0.4, 0.8};
  Denoiser exact = [&](const TensorF& x_t, const std::vector<int64_t>& t) {
    TensorF out(x_t.shape());
    for (int64_t n = 0; n < x_t.size(0); ++n)
      for (int i = 0; i < 4; ++i)
        out.data()[n * 4 + i] = static_cast<float>((x_t.data()[n * 4 + i] - std::sqrt(hab(t[n])) * x0[i]) /
                                                   std::sqrt(1 - hab(t[n])));
    return out;
  };
  Rng rng(2);
  SampleOptions so;
  so.variance = VarianceType::Small;
  so.clip_x0 = false;
  const TensorF out = sample_ancestral(s, exact, {3, 1, 1, 4}, rng, so);
  std::vector<double> got, want;
  for (int n = 0; n < 3; ++n)
    for (int i = 0; i < 4; ++i) got.push_back(out.data()[n * 4 + i]), want.push_back(x0[i]);
  c.equal("alg2.exact_eps_returns_x0", "samples with the exact eps of one-point data vs x0", got, want, 1e-5,
          "float32");
  // the chain's marginals against the Gaussian recursion Var(x_{t-1}) = A_t^2 Var(x_t) + sigma_t^2
  c.say("Linear network eps_theta = c_t x_t: x_{t-1} = A_t x_t + sigma_t z, so Var(x_{t-1}) = A_t^2 Var(x_t) + sigma_t^2.");
  std::vector<double> x1;
  SampleOptions sl;
  sl.variance = VarianceType::Large;
  sl.clip_x0 = false;
  sl.on_step = [&](int64_t t, const TensorF& x_t, const TensorF&) {
    if (t == 1) x1.assign(x_t.data(), x_t.data() + x_t.numel());
  };
  Rng rng2(12);
  const TensorF samples = sample_ancestral(s, linear_denoiser(), {kMC, 1, 1, 1}, rng2, sl);
  double v = 1;
  for (int64_t t = kT; t >= 2; --t) v = A_lin(t) * A_lin(t) * v + sig2_large(t);
  const Stats s1 = stats(x1);
  c.equal("alg2.var_x1", "Var(x_1) over 20000 chains vs the recursion", s1.var, v, kSE * s1.se_var, "5 SE");
  const Stats s0 = stats(std::vector<double>(samples.data(), samples.data() + samples.numel()));
  c.equal("alg2.var_x0", "Var(output) vs A_1^2 Var(x_1) (no noise at t = 1)", s0.var, A_lin(1) * A_lin(1) * v,
          kSE * s0.se_var, "5 SE");
}

// ================================================================================================
void check_typos(Checker& c, const Schedule& s, const ForwardMC& f, const BoundMC& b) {
  c.header("the seed notes' typos (../shared/MATH.md): the seed's version is off, the corrected one right");
  const int64_t t = 5;
  // 000: betatilde
  {
    const double fm = bayes_log(t, -1, 0.5, 0.3), f0 = bayes_log(t, 0, 0.5, 0.3), fp = bayes_log(t, 1, 0.5, 0.3);
    const double bayes_var = -1 / (fp + fm - 2 * f0);
    c.typo("typo.000.betatilde", "betatilde_5: seed (1-abar_t)/(1-abar_1) beta_t vs (1-abar_{t-1})/(1-abar_t) beta_t",
           (1 - hab(t)) / (1 - hab(1)) * hb(t), s.posterior_variance[t], bayes_var, 1e-9,
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
      right[m] = logN(x, m1, v1) - logN(x, m2, v2);
      wrong[m] = logN(x, m1, v1) / logN(x, m2, v2);
    }
    const Stats sr = stats(right), sw = stats(wrong);
    c.typo("typo.000.kl_log_ratio", "KL = E_q[log p1 / log p2] (seed) vs E_q[log(p1/p2)]", sw.mean, sr.mean,
           normal_kl(m1, std::log(v1), m2, std::log(v2)), kSE * std::max(sr.se_mean, sw.se_mean),
           "normal_kl closed form");
  }
  // 001 / 002: the forward-process marginal (truth: Monte Carlo of eq. 2, itself checked by eq4.monte_carlo_*)
  c.typo("typo.001.mean_abar", "mean of x_5: seed abar_t x0 vs sqrt(abar_t) x0", hab(t) * f.x0,
         s.sqrt_abar[t] * f.x0, f.x5.mean, kSE * f.x5.se_mean, "Monte Carlo of eq. (2)");
  {
    double v = 0;  // the seed's step x_t = alpha_t x_{t-1} + (1 - alpha_t) eps, its variance iterated
    for (int64_t k = 1; k <= t; ++k) v = ha(k) * ha(k) * v + hb(k) * hb(k);
    c.typo("typo.001.std_vs_var", "Var(x_5): seed step alpha x + (1-alpha) eps vs sqrt(alpha) x + sqrt(1-alpha) eps",
           v, 1 - s.abar[t], f.x5.var, kSE * f.x5.se_var, "Monte Carlo of eq. (2)");
  }
  c.typo("typo.002.q_marginal_mean", "q(x_5|x0) mean: seed sqrt(alpha_t) x0 (also in its L_simple) vs sqrt(abar_t) x0",
         std::sqrt(ha(t)) * f.x0, s.sqrt_abar[t] * f.x0, f.x5.mean, kSE * f.x5.se_mean, "Monte Carlo of eq. (2)");
  c.typo("typo.002.merged_var", "merged Gaussian variance: seed 1 - alpha_t vs 1 - abar_t", 1 - ha(t),
         1 - s.abar[t], f.x5.var, kSE * f.x5.se_var, "Monte Carlo of eq. (2)");
  // 002: the third term of the posterior exponent needs a minus sign: only then does it integrate to 1
  {
    auto integral = [&](double sign) {
      const double x0 = 0.5, xt = 0.3, h = 0.001;
      double acc = 0;
      for (int k = -8000; k <= 8000; ++k) {
        const double xp = k * h;
        acc += std::exp(logN(xt, std::sqrt(ha(t)) * xp, hb(t)) +
                        logN(xp, std::sqrt(hab(t - 1)) * x0, 1 - hab(t - 1)) +
                        sign * logN(xt, std::sqrt(hab(t)) * x0, 1 - hab(t))) *
               h;
      }
      return acc;
    };
    c.typo("typo.002.exponent_sign", "integral over x_{t-1} of the Bayes posterior: seed + sign vs - sign",
           integral(+1), integral(-1), 1.0, 1e-6, "a density integrates to 1");
  }
  // 002 / 003: with the exact eps the sampling mean must equal mutilde_t(x_t, x0)
  {
    const double x0 = 0.5, eps = 0.7, xt = std::sqrt(hab(t)) * x0 + std::sqrt(1 - hab(t)) * eps;
    const double truth = q_posterior(s, img({x0}), img({xt}), {t}).mean.data()[0];
    const double right = p_mean_variance(s, VarianceType::Small, img({eps}), img({xt}), {t}, false).mean.data()[0];
    c.typo("typo.002.sampling_step", "mean: seed (x_t - (1-alpha_t)/sqrt(1-alpha_t) eps)/sqrt(alpha_t) vs sqrt(1-abar_t)",
           (xt - (1 - ha(t)) / std::sqrt(1 - ha(t)) * eps) / std::sqrt(ha(t)), right, truth, 1e-12,
           "mutilde_t(x_t, x0), eq. (7)");
    c.typo("typo.002.sampling_noise", "step noise variance: seed eps_theta^2 (eps_t z) vs sigma_t^2 (sigma_t z)",
           eps * eps, s.model_variance(VarianceType::Small, t), hbt(t), 1e-12, "betatilde_t, the posterior variance");
    c.typo("typo.002.x0_substitution", "mutilde from x0(x_t, eps): seed 1/sqrt(abar_t) in front vs 1/sqrt(alpha_t)",
           (xt - hb(t) / std::sqrt(1 - hab(t)) * eps) / std::sqrt(hab(t)),
           (xt - hb(t) / std::sqrt(1 - hab(t)) * eps) / std::sqrt(ha(t)), truth, 1e-12, "mutilde_t(x_t, x0), eq. (7)");
    c.typo("typo.003.eps_coefficient", "mean: seed (x_t - beta_t/sqrt(abar_t) eps)/sqrt(1-beta_t) vs beta_t/sqrt(1-abar_t)",
           (xt - hb(t) / std::sqrt(hab(t)) * eps) / std::sqrt(1 - hb(t)), right, truth, 1e-12,
           "mutilde_t(x_t, x0), eq. (7)");
    const double x1 = std::sqrt(hab(1)) * x0 + std::sqrt(1 - hab(1)) * eps;
    const double mu1 = p_mean_variance(s, VarianceType::Small, img({eps}), img({x1}), {1}, false).mean.data()[0];
    c.typo("typo.003.mu1_is_eps", "last step: seed mu_1 = eps_theta(x_1, 1) vs eq. (11) at t = 1", eps, mu1, x0,
           1e-12, "x0 (mutilde_1 = x0)");
  }
  // 003: the eq. (12) weight without alpha_t
  {
    const double e2 = sq_err(kEps, kGuess);
    const double ratio = (kl_sum(s, t, VarianceType::Small, kGuess) - kl_sum(s, t, VarianceType::Small, kEps)) / e2;
    c.typo("typo.003.weight_alpha", "eq. (12) weight: seed beta^2/(2 sigma^2 (1-abar)) vs beta^2/(2 sigma^2 alpha (1-abar))",
           hb(t) * hb(t) / (2 * hbt(t) * (1 - hab(t))), s.eps_weight_small[t], ratio, 1e-12,
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
    std::printf("        E_q[log X] = %.6g, log E_q[X] = %.6g (X = p(x_{0:T}) / q(x_{1:T}|x0), 5 SE = %.3g)\n", r.mean,
                lme, tol);
    c.typo("typo.003.jensen_convex", "claim holds (1) or not (0): seed E[log X] >= log E[X] vs E[log X] <= log E[X]",
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
          logN(x[2][m], std::sqrt(ha(2)) * x[1][m], hb(2)) + logN(x[3][m], std::sqrt(ha(3)) * x[2][m], hb(3));
      double post = 0;
      for (int64_t k = 2; k <= 3; ++k) {
        const Posterior<double> p = q_posterior(s, img({x0}), img({x[k][m]}), {k});
        post += logN(x[k - 1][m], p.mean.data()[0], p.variance[0]);
      }
      const double q1 = logN(x[1][m], std::sqrt(hab(1)) * x0, 1 - hab(1));
      const double r = post + logN(x[3][m], std::sqrt(hab(3)) * x0, 1 - hab(3)) - q1;
      const double sd = post + logN(x[3][m], std::sqrt(ha(2) * ha(3)) * x[1][m], 1 - ha(2) * ha(3)) - q1;
      if (std::abs(sd - l) > std::abs(worst_seed)) worst_seed = sd - l;
      if (std::abs(r - l) > std::abs(worst_right)) worst_right = r - l;
    }
    c.typo("typo.004.telescope_index", "max over 2000 paths of (rhs - lhs): seed q(x_3|x_1) vs q(x_3|x_0)",
           worst_seed, worst_right, 0.0, 1e-10, "sum_{t=2,3} log q(x_t|x_{t-1}), telescoped");
  }
}

// ================================================================================================
void write_plots(const std::string& dir, const std::string& data_dir) {
  fs::create_directories(dir);
  const Schedule lin = linear_schedule(1000), cos = cosine_schedule(1000);
  auto series = [](const std::string& name, const std::vector<double>& v, Rgb color, size_t from = 1) {
    PlotSeries p;
    p.name = name;
    p.color = color;
    for (size_t t = from; t < v.size(); ++t) p.xs.push_back(static_cast<double>(t)), p.ys.push_back(v[t]);
    return p;
  };
  const Rgb blue{31, 119, 180}, orange{255, 127, 14}, green{44, 160, 44}, red{214, 39, 40};
  auto snr = [](const Schedule& s) {
    std::vector<double> r(s.abar.size());
    for (size_t t = 0; t < r.size(); ++t) r[t] = s.abar[t] / (1 - s.abar[t]);
    return r;
  };
  PlotOptions o;
  o.x_label = "t";
  o.log_y = true;
  o.title = "beta_t (T = 1000)";
  write_line_plot_png(dir + "/schedule_beta.png", {series("linear", lin.betas, blue), series("cosine", cos.betas, orange)},
                      o);
  o.log_y = false;
  o.title = "abar_t (T = 1000)";
  write_line_plot_png(dir + "/schedule_abar.png", {series("linear", lin.abar, blue), series("cosine", cos.abar, orange)},
                      o);
  o.log_y = true;
  o.title = "signal to noise abar_t / (1 - abar_t) (T = 1000)";
  write_line_plot_png(dir + "/schedule_snr.png", {series("linear", snr(lin), blue), series("cosine", snr(cos), orange)},
                      o);

  // eq. (12) weights, divided by their mean over t = 2..T, against L_simple's weight 1
  auto normalized = [](std::vector<double> w) {
    double m = 0;
    for (size_t t = 2; t < w.size(); ++t) m += w[t];
    m /= static_cast<double>(w.size() - 2);
    for (double& a : w) a /= m;
    return w;
  };
  o.title = "eq. 12 weights / their mean vs L_simple (uniform), linear T = 1000";
  write_line_plot_png(dir + "/eq12_weights.png",
                      {series("sigma2 = betatilde_t", normalized(lin.eps_weight_small), blue, 2),
                       series("sigma2 = beta_t", normalized(lin.eps_weight_large), orange, 2),
                       series("L_simple: 1 for every t", std::vector<double>(lin.T + 1, 1.0), green, 2)},
                      o);
  // betatilde_t and beta_t differ only while abar_{t-1} is near 1: the first steps; then the ratio over all t
  auto head = [](const std::vector<double>& v) { return std::vector<double>(v.begin(), v.begin() + 101); };
  o.title = "betatilde_t vs beta_t, the first 100 steps (T = 1000)";
  write_line_plot_png(dir + "/betatilde_vs_beta.png",
                      {series("beta_t linear", head(lin.betas), blue, 2),
                       series("betatilde_t linear", head(lin.posterior_variance), orange, 2),
                       series("beta_t cosine", head(cos.betas), green, 2),
                       series("betatilde_t cosine", head(cos.posterior_variance), red, 2)},
                      o);
  auto ratio = [](const Schedule& s) {
    std::vector<double> r(s.betas.size(), 0.0);
    for (size_t t = 2; t < r.size(); ++t) r[t] = s.posterior_variance[t] / s.betas[t];
    return r;
  };
  o.log_y = false;
  o.title = "betatilde_t / beta_t = (1 - abar_t-1) / (1 - abar_t) (T = 1000)";
  write_line_plot_png(dir + "/betatilde_over_beta.png",
                      {series("linear", ratio(lin), blue, 2), series("cosine", ratio(cos), orange, 2)}, o);
  std::printf("wrote %s/: schedule_beta.png schedule_abar.png schedule_snr.png eq12_weights.png\n", dir.c_str());
  std::printf("      betatilde_vs_beta.png betatilde_over_beta.png\n");

  // q(x_t | x0) on a real digit: row 1 linear, row 2 cosine, the same noise
  std::string path;
  for (const char* name : {"t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz", "train-images-idx3-ubyte",
                           "train-images-idx3-ubyte.gz"})
    if (fs::exists(fs::path(data_dir) / name)) {
      path = (fs::path(data_dir) / name).string();
      break;
    }
  if (path.empty()) {
    std::printf("skipped q_xt_digit.png: no MNIST images in %s/ (give --data DIR holding t10k-images-idx3-ubyte)\n",
                data_dir.c_str());
    return;
  }
  const TensorF digit = idx_images_to_tensor(read_idx_images(path), 0, 1);  // [1, 1, 28, 28] in [-1, 1]
  const std::vector<int64_t> ts = {0, 10, 50, 100, 200, 300, 500, 700, 1000};
  Rng rng(7);
  const TensorF noise = rng.normal<float>(digit.shape());
  const int64_t P = digit.numel(), K = static_cast<int64_t>(ts.size());
  TensorF grid({2 * K, 1, 28, 28});
  for (int row = 0; row < 2; ++row)
    for (int64_t k = 0; k < K; ++k) {
      const TensorF xt = ts[k] == 0 ? digit : q_sample(row == 0 ? lin : cos, digit, {ts[k]}, noise);
      std::copy(xt.data(), xt.data() + P, grid.data() + (row * K + k) * P);
    }
  write_png_grid(dir + "/q_xt_digit.png", grid, static_cast<int>(K), 2, 128);
  std::printf("wrote %s/q_xt_digit.png: %s, columns t = 0 10 50 100 200 300 500 700 1000; row 1 linear, 2 cosine\n",
              dir.c_str(), path.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"derivations: every DDPM equation (docs/derivations.md) checked with small numbers"};
  std::string eq, plots, data = "data";
  bool verbose = false;
  app.add_option("--eq", eq, "only this group: 1..14, bpd, alg1, alg2, typos (default: all)");
  app.add_flag("--verbose", verbose, "print the derivation steps and every element compared");
  app.add_option("--plots", plots, "write the schedule, q(x_t|x0), eq. (12) weight and betatilde plots (PNG) to DIR");
  app.add_option("--data", data, "folder with the MNIST IDX files for the q(x_t|x0) picture (default data/)");
  CLI11_PARSE(app, argc, argv);

  const std::vector<std::string> groups = {"1",  "2",  "3",  "4",  "5",   "6",    "7",    "8",    "9",
                                           "10", "11", "12", "13", "14", "bpd", "alg1", "alg2", "typos"};
  if (eq == "typo") eq = "typos";
  if (!eq.empty() && std::find(groups.begin(), groups.end(), eq) == groups.end()) {
    std::fprintf(stderr, "--eq: expected one of 1..14, bpd, alg1, alg2, typos, got '%s'\n", eq.c_str());
    return 2;
  }
  try {
    const Schedule s = linear_schedule(kT, 0.05, 0.5);
    std::printf("teaching schedule: T = %lld, beta_t = 0.05 t:", static_cast<long long>(kT));
    for (int64_t t = 1; t <= kT; ++t) std::printf(" %.2f", s.betas[t]);
    std::printf("\n  abar_t:");
    for (int64_t t = 1; t <= kT; ++t) std::printf(" %.4f", s.abar[t]);
    std::printf("\n");
    Checker c(eq, verbose);
    const bool any_forward = c.wants("4") || c.wants("typos");
    const bool any_bound = c.wants("3") || c.wants("5") || c.wants("typos");
    const ForwardMC f = any_forward ? forward_mc() : ForwardMC{};
    const BoundMC b = any_bound ? bound_mc(s) : BoundMC{};
    if (c.wants("1")) check_eq1(c, s);
    if (c.wants("2")) check_eq2(c, s);
    if (c.wants("3")) check_eq3(c, b);
    if (c.wants("4")) check_eq4(c, s, f);
    if (c.wants("5")) check_eq5(c, s, b);
    if (c.wants("6")) check_eq6(c, s);
    if (c.wants("7")) check_eq7(c, s);
    if (c.wants("8")) check_eq8(c, s);
    if (c.wants("9")) check_eq9(c, s);
    if (c.wants("10")) check_eq10(c, s);
    if (c.wants("11")) check_eq11(c, s);
    if (c.wants("12")) check_eq12(c, s);
    if (c.wants("13")) check_eq13(c);
    if (c.wants("bpd")) check_bpd(c, s);
    if (c.wants("14")) check_eq14(c, s);
    if (c.wants("alg1")) check_alg1(c, s);
    if (c.wants("alg2")) check_alg2(c, s);
    if (c.wants("typos")) check_typos(c, s, f, b);
    if (!plots.empty()) write_plots(plots, data);
    std::printf("\nderivations: %d checks, %d passed, %d failed\n", c.run(), c.run() - c.failed(), c.failed());
    return c.failed() == 0 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "derivations: %s\n", e.what());
    return 1;
  }
}
