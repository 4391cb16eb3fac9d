// The numeric identities of docs/equations.md, each able to fail: eq. (4) against iterating eq. (2), eq. (7)
// against Bayes' rule, eq. (11), the eq. (12) weight, the Gaussian KL against Monte Carlo, the
// discretized decoder (eq. 13) and log-ndtr, the exact-posterior model, the training losses and the
// timestep samplers. Monte Carlo checks use 5 standard errors (a false alarm about once in 1.7 million
// runs; the seeds are fixed, so a run is reproducible).
#include <doctest/doctest.h>

#include <cmath>
#include <limits>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "ddpm/bound.h"
#include "ddpm/diffusion.h"
#include "ddpm/gaussian.h"
#include "ddpm/losses.h"
#include "tensor/random.h"

using namespace dd;
using namespace dd::ddpm;

namespace {
double rel(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-300); }
struct Moments {
  double mean = 0, var = 0;
  int64_t n = 0;
};
template <class T>
Moments moments(const Tensor<T>& x) {
  Moments m;
  const auto v = x.to_vector();
  m.n = static_cast<int64_t>(v.size());
  for (T a : v) m.mean += a;
  m.mean /= m.n;
  for (T a : v) m.var += (a - m.mean) * (a - m.mean);
  m.var /= (m.n - 1);
  return m;
}
double log_normal(double x, double mean, double var) { return gaussian_log_density(x, mean, std::log(var)); }
}  // namespace

TEST_CASE("eq. (4) agrees with iterating eq. (2) t times (Monte Carlo mean and variance)") {
  const Schedule s = linear_schedule(1000);
  const int64_t M = 40000;
  const double x0 = 0.7;
  Rng rng(11);
  for (int64_t t : {1, 40, 120}) {
    TensorD x = TensorD::full({M, 1}, x0);
    for (int64_t k = 1; k <= t; ++k) {  // eq. (2): x_k = sqrt(alpha_k) x_{k-1} + sqrt(beta_k) z
      const TensorD z = rng.normal<double>({M, 1});
      for (int64_t i = 0; i < M; ++i) x.data()[i] = std::sqrt(s.alphas[k]) * x.data()[i] + std::sqrt(s.betas[k]) * z.data()[i];
    }
    const Moments iter = moments(x);
    const Moments q = moments(q_sample(s, TensorD::full({M, 1}, x0), std::vector<int64_t>(M, t), rng.normal<double>({M, 1})));
    const double mean4 = s.sqrt_abar[t] * x0, var4 = 1.0 - s.abar[t];
    const double se_mean = std::sqrt(var4 / M), se_var = var4 * std::sqrt(2.0 / (M - 1));
    CHECK_MESSAGE(std::abs(iter.mean - mean4) < 5 * se_mean, "t=" << t << " iterated mean " << iter.mean << " vs eq.(4) " << mean4);
    CHECK_MESSAGE(std::abs(iter.var - var4) < 5 * se_var, "t=" << t << " iterated var " << iter.var << " vs eq.(4) " << var4);
    CHECK_MESSAGE(std::abs(q.mean - mean4) < 5 * se_mean, "t=" << t << " q_sample mean " << q.mean);
    CHECK_MESSAGE(std::abs(q.var - var4) < 5 * se_var, "t=" << t << " q_sample var " << q.var);
    if (t == 120) {
      // seed typo 001 (x_t = alpha x + (1 - alpha) eps, mean abar x0) is far outside these tolerances
      CHECK(std::abs(s.abar[t] * x0 - mean4) > 20 * se_mean);
    }
  }
}

TEST_CASE("eq. (7) equals Bayes' rule q(x_t|x_{t-1}) q(x_{t-1}|x0) / q(x_t|x0), pointwise") {
  const Schedule s = linear_schedule(1000);
  Rng rng(5);
  for (int64_t t : {2, 3, 100, 999, 1000}) {
    const int64_t n = 64;
    const TensorD x0 = rng.uniform<double>({n, 1}, -1.0, 1.0);
    const TensorD xt = rng.normal<double>({n, 1});
    const TensorD xprev = rng.normal<double>({n, 1}, 0.0, 1.0);
    const Posterior<double> post = q_posterior(s, x0, xt, std::vector<int64_t>(n, t));
    for (int64_t i = 0; i < n; ++i) {
      const double a = x0.data()[i], b = xt.data()[i], c = xprev.data()[i];
      const double bayes = log_normal(b, std::sqrt(s.alphas[t]) * c, s.betas[t])        // eq. (2)
                           + log_normal(c, s.sqrt_abar[t - 1] * a, 1.0 - s.abar[t - 1])  // eq. (4) at t-1
                           - log_normal(b, s.sqrt_abar[t] * a, 1.0 - s.abar[t]);         // eq. (4) at t
      const double eq7 = log_normal(c, post.mean.data()[i], post.variance[i]);
      // log densities of size up to ~1e4 at t = 2 (betatilde tiny); 1e-9 relative + 1e-9 absolute
      REQUIRE_MESSAGE(std::abs(bayes - eq7) < 1e-9 * (1 + std::abs(bayes)), "t=" << t << " i=" << i << ": " << bayes << " vs " << eq7);
    }
  }
}

TEST_CASE("eq. (11): mutilde_t(x_t, x0(x_t, eps)) = (x_t - beta_t / sqrt(1 - abar_t) eps) / sqrt(alpha_t)") {
  const Schedule s = linear_schedule(1000);
  Rng rng(3);
  const int64_t n = 5;
  const std::vector<int64_t> t = {1, 2, 10, 500, 1000};
  const TensorD xt = rng.normal<double>({n, 2, 3, 3});
  const TensorD eps = rng.normal<double>({n, 2, 3, 3});
  const ModelPrediction<double> p = p_mean_variance(s, VarianceType::Large, eps, xt, t, false);  // eq. (11)
  const TensorD x0 = predict_x0_from_eps(s, xt, t, eps);
  const TensorD via_posterior = q_posterior(s, x0, xt, t).mean;  // eq. (7) at x0_hat
  for (int64_t i = 0; i < xt.numel(); ++i)
    REQUIRE(std::abs(p.mean.data()[i] - via_posterior.data()[i]) < 1e-9 * (1 + std::abs(via_posterior.data()[i])));
  // x0 -> eps -> x0 round trip, and q_sample(x0_hat, eps) gives back x_t
  const TensorD eps_back = predict_eps_from_x0(s, xt, t, x0);
  const TensorD xt_back = q_sample(s, x0, t, eps);
  for (int64_t i = 0; i < xt.numel(); ++i) {
    REQUIRE(std::abs(eps_back.data()[i] - eps.data()[i]) < 1e-8);
    REQUIRE(std::abs(xt_back.data()[i] - xt.data()[i]) < 1e-9);
  }
  // seed typo 003: beta_t / sqrt(abar_t) as eps's coefficient gives a different mean
  const int64_t ti = 500;
  const double x = 0.3, e = 1.1;
  const double right = (x - s.betas[ti] / s.sqrt_one_minus_abar[ti] * e) / std::sqrt(s.alphas[ti]);
  const double typo = (x - s.betas[ti] / s.sqrt_abar[ti] * e) / std::sqrt(s.alphas[ti]);
  CHECK(std::abs(right - typo) > 1e-2);
}

TEST_CASE("eq. (12): KL(posterior || model) / ||eps - eps_theta||^2 is the eq. (12) weight") {
  const Schedule s = linear_schedule(1000);
  Rng rng(21);
  const int64_t D = 50;
  for (int64_t t : {2, 5, 100, 700, 1000}) {
    const TensorD x0 = rng.uniform<double>({1, D}, -1, 1);
    const TensorD eps = rng.normal<double>({1, D});
    const TensorD eps_theta = rng.normal<double>({1, D});
    const std::vector<int64_t> tv = {t};
    const TensorD xt = q_sample(s, x0, tv, eps);
    const Posterior<double> post = q_posterior(s, x0, xt, tv);
    double mse_sum = 0;
    for (int64_t i = 0; i < D; ++i) mse_sum += std::pow(eps.data()[i] - eps_theta.data()[i], 2);
    for (VarianceType v : {VarianceType::Small, VarianceType::Large}) {
      const ModelPrediction<double> p = p_mean_variance(s, v, eps_theta, xt, tv, false);
      double kl = 0, kl_const = 0;
      for (int64_t i = 0; i < D; ++i) {
        kl += normal_kl(post.mean.data()[i], std::log(post.variance[0]), p.mean.data()[i], p.log_variance.data()[i]);
        kl_const += normal_kl(0, std::log(post.variance[0]), 0, p.log_variance.data()[i]);  // C: the variance mismatch
      }
      const double weight = v == VarianceType::Small ? s.eps_weight_small[t] : s.eps_weight_large[t];
      CHECK_MESSAGE(rel((kl - kl_const) / mse_sum, weight) < 1e-7, "t=" << t << " " << to_string(v));
      if (v == VarianceType::Small) CHECK(std::abs(kl_const) < 1e-12);  // sigma = betatilde: C = 0
    }
  }
}

TEST_CASE("the Gaussian KL agrees with Monte Carlo E_p1[log p1 - log p2]") {
  Rng rng(8);
  const int64_t M = 200000;
  const double cases[][4] = {{0.0, 0.0, 0.0, 0.0}, {0.3, -1.0, -0.2, 0.5}, {1.5, 0.7, 0.0, -0.3}, {-0.4, -4.0, -0.35, -3.0}};
  for (const auto& c : cases) {
    const double m1 = c[0], lv1 = c[1], m2 = c[2], lv2 = c[3];
    const TensorD x = rng.normal<double>({M}, m1, std::exp(0.5 * lv1));
    double sum = 0, sum2 = 0;
    for (int64_t i = 0; i < M; ++i) {
      const double r = gaussian_log_density(x.data()[i], m1, lv1) - gaussian_log_density(x.data()[i], m2, lv2);
      sum += r;
      sum2 += r * r;
    }
    const double mc = sum / M, se = std::sqrt(std::max(sum2 / M - mc * mc, 0.0) / M);
    const double kl = normal_kl(m1, lv1, m2, lv2);
    CHECK_MESSAGE(std::abs(mc - kl) <= 5 * se + 1e-12, "KL " << kl << " vs MC " << mc << " +- " << se);
  }
  CHECK(normal_kl(0.2, -1.0, 0.2, -1.0) == doctest::Approx(0.0).epsilon(1e-15));
}

TEST_CASE("log_ndtr: matches erfc where erfc is accurate, continuous at the series switch, finite to z = -1e5") {
  for (double z = -37.0; z <= 5.0; z += 0.37) {
    const double ref = std::log(0.5 * std::erfc(-z / std::sqrt(2.0)));
    REQUIRE_MESSAGE(rel(log_ndtr(z), ref) < 1e-11, "z=" << z);
  }
  // the right tail: log Phi(z) = log1p(-Phi(-z)) ~ -Phi(-z)
  for (double z : {6.5, 8.0, 12.0}) CHECK(rel(log_ndtr(z), -0.5 * std::erfc(z / std::sqrt(2.0))) < 1e-9);
  // no jump where the series takes over: across z = -20 +- h the change is 2h (phi/Phi)(-20) (~ 40 h);
  // the truncated series is accurate to ~3e-12 in log Phi, so 1e-11
  const double h = 1e-7, mills = std::exp(-200.0 - 0.5 * std::log(2 * M_PI) - log_ndtr(-20.0));
  CHECK(std::abs(log_ndtr(-20.0 + h) - log_ndtr(-20.0 - h) - 2 * h * mills) < 1e-11);
  const double z = -1e5;
  const double leading = -0.5 * z * z - std::log(-z) - 0.5 * std::log(2 * M_PI);
  CHECK(std::isfinite(log_ndtr(z)));
  CHECK(std::abs(log_ndtr(z) - leading) < 1e-9);  // the series' correction log(1 - 1/z^2 ...) ~ -1e-10
  CHECK(log_ndtr(std::numeric_limits<double>::infinity()) == 0.0);
}

TEST_CASE("eq. (13): the 256 bin probabilities sum to 1 per pixel, edges take the tails, finite for sigma >= 1e-4") {
  for (double mean : {-1.3, -1.0, -0.5, 0.0, 0.0039, 0.999, 1.0, 2.0}) {
    for (double sigma : {1e-4, 1e-3, 0.01, 0.1, 1.0, 5.0}) {
      double total = 0.0;
      for (int k = 0; k < 256; ++k) {
        const double x = 2.0 * k / 255.0 - 1.0;
        const double ll = discretized_gaussian_log_likelihood(x, mean, std::log(sigma));
        REQUIRE_MESSAGE(std::isfinite(ll), "k=" << k << " mean=" << mean << " sigma=" << sigma);
        REQUIRE(ll <= 1e-12);
        total += std::exp(ll);
      }
      // the bins partition the real line: only rounding remains (256 terms of at most 1)
      CHECK_MESSAGE(std::abs(total - 1.0) < 1e-12, "mean=" << mean << " sigma=" << sigma << " total=" << total);
    }
  }
  // a bin 1e4 standard deviations away is finite and about -z^2/2
  const double far = discretized_gaussian_log_likelihood(-1.0, 1.0, std::log(1e-4));
  CHECK(std::isfinite(far));
  CHECK(rel(far, -0.5 * std::pow((-1.0 + 1.0 / 255 - 1.0) / 1e-4, 2)) < 1e-3);
  CHECK(std::isfinite(discretized_gaussian_log_likelihood(1.0, -1.0, std::log(1e-4))));
  // a middle bin against the direct difference of CDFs (accurate here)
  const double x = 2.0 * 100 / 255 - 1, m = -0.2, sg = 0.05;
  auto Phi = [](double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); };
  CHECK(rel(discretized_gaussian_log_likelihood(x, m, std::log(sg)),
            std::log(Phi((x + 1.0 / 255 - m) / sg) - Phi((x - 1.0 / 255 - m) / sg))) < 1e-10);
  // the edge bin x = 1 takes the whole upper tail: log Phi((mean - (1 - 1/255)) / sigma)
  CHECK(rel(discretized_gaussian_log_likelihood(1.0, 0.9, std::log(0.1)), log_ndtr((0.9 - (1.0 - 1.0 / 255)) / 0.1)) < 1e-12);
}

TEST_CASE("the differentiable decoder's gradients (mean, log scale) pass gradcheck, edges included") {
  Rng rng(4);
  const int64_t n = 12;
  TensorD x({n});
  const int ks[n] = {0, 1, 17, 100, 127, 128, 200, 254, 255, 0, 255, 60};
  for (int64_t i = 0; i < n; ++i) x.data()[i] = 2.0 * ks[i] / 255.0 - 1.0;
  const TensorD mean = rng.uniform<double>({n}, -1.1, 1.1);
  const TensorD log_scale = rng.uniform<double>({n}, -4.0, 0.0);
  auto r = gradcheck([&](const std::vector<VarD>& v) { return discretized_gaussian_log_likelihood(x, v[0], v[1]); },
                     {mean, log_scale});
  CHECK_MESSAGE(r.ok, r.message);
  // far tails (sigma = 1e-4, 1e4 standard deviations away): the gradient stays finite
  VarD m(TensorD::from({2}, {1.0, -1.0}), true), ls(TensorD::from({2}, {std::log(1e-4), std::log(1e-4)}), true);
  sum(discretized_gaussian_log_likelihood(TensorD::from({2}, {-1.0, 1.0}), m, ls)).backward();
  for (int i = 0; i < 2; ++i) {
    CHECK(std::isfinite(m.grad().data()[i]));
    CHECK(std::isfinite(ls.grad().data()[i]));
  }
}

TEST_CASE("an exact-posterior model (eps_theta = the true eps) gives L_{t-1} = 0 with sigma_t^2 = betatilde_t") {
  const Schedule s = linear_schedule(1000);
  Rng rng(9);
  const int64_t N = 4;
  const TensorD x0 = rng.uniform<double>({N, 1, 4, 4}, -1, 1);
  const TensorD noise = rng.normal<double>({N, 1, 4, 4});
  const std::vector<int64_t> t = {2, 30, 600, 1000};
  // float64 loss path: the model returns the noise that made x_t
  TrainDenoiserT<double> exact = [&](const VarD&, const std::vector<int64_t>&) { return VarD(noise, true); };
  const auto r = training_loss(s, exact, x0, t, noise, {}, {LossType::Vlb, VarianceType::Small});
  for (int64_t n = 0; n < N; ++n) CHECK_MESSAGE(std::abs(r.vb[n]) < 1e-10, "t=" << t[n] << " vb=" << r.vb[n]);
  // with "large" the same model pays only the variance mismatch C = 0.5 (log(beta/betatilde) + betatilde/beta - 1)
  const auto rl = training_loss(s, exact, x0, t, noise, {}, {LossType::Vlb, VarianceType::Large});
  for (int64_t n = 0; n < N; ++n) {
    const int64_t ti = t[n];
    const double c = 0.5 * (std::log(s.betas[ti] / s.posterior_variance[ti]) + s.posterior_variance[ti] / s.betas[ti] - 1.0);
    // c ~ 1e-12 at t = 1000 where beta ~ betatilde: both sides cancel to ~1e-16 absolute, hence 1e-14 + 1e-8 relative
    CHECK_MESSAGE(std::abs(rl.vb[n] - c / std::log(2.0)) < 1e-14 + 1e-8 * c, "t=" << ti << " vb=" << rl.vb[n] << " C=" << c / std::log(2.0));
  }
  // float32 bound path: the denoiser recovers eps from x_t and the known x0 (rounded to float);
  // per pixel the KL is (coef1 * x0 rounding error)^2 / (2 betatilde), tolerance 1e-6 nats per pixel.
  const TensorF x0f = x0.to<float>();
  Denoiser exact_f = [&](const TensorF& xt, const std::vector<int64_t>& tt) { return predict_eps_from_x0(s, xt, tt, x0f); };
  BoundOptions opt;
  opt.variance = VarianceType::Small;
  opt.clip_x0 = false;
  const auto terms = bound_terms_at(s, exact_f, x0f, t, rng, opt);
  for (int64_t n = 0; n < N; ++n) CHECK_MESSAGE(std::abs(terms[n]) < 16 * 1e-6, "t=" << t[n] << " L=" << terms[n]);
}

TEST_CASE("p_mean_variance, learned variance: v = 1 gives log beta_t, v = -1 gives log betatilde_t (clipped)") {
  const Schedule s = linear_schedule(1000);
  const int64_t C = 2;
  const std::vector<int64_t> t = {1, 500};
  TensorD out({2, 2 * C, 1, 1});
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t c = 0; c < 2 * C; ++c) out.at({n, c, 0, 0}) = c < C ? 0.1 : (c == C ? 1.0 : -1.0);
  const TensorD xt = TensorD::zeros({2, C, 1, 1});
  const auto p = p_mean_variance(s, VarianceType::Learned, out, xt, t, false);
  for (int64_t n = 0; n < 2; ++n) {
    CHECK(rel(p.log_variance.at({n, 0, 0, 0}), s.log_betas[t[n]]) < 1e-12);
    CHECK(rel(p.log_variance.at({n, 1, 0, 0}), s.posterior_log_variance_clipped[t[n]]) < 1e-12);
    CHECK(p.eps.at({n, 0, 0, 0}) == doctest::Approx(0.1));
  }
  CHECK_THROWS_WITH(p_mean_variance(s, VarianceType::Learned, xt, xt, t, false), doctest::Contains("[2, 4, 1, 1]"));
  CHECK_THROWS_WITH(p_mean_variance(s, VarianceType::Large, xt, xt, {1, 1001}, false), doctest::Contains("1001"));
}

TEST_CASE("set_decoder_floor: a learned sigma_1 ranges down to the floor (v = -1) at t = 1 only; the decoder term uses it") {
  Schedule s = linear_schedule(1000);
  const Schedule plain = s;
  CHECK_THROWS_WITH(s.set_decoder_floor(0.0), doctest::Contains("0 < floor"));
  CHECK_THROWS_WITH(s.set_decoder_floor(0.02), doctest::Contains("beta_1"));  // 0.02^2 > beta_1 = 1e-4
  s.set_decoder_floor(0.001);
  CHECK(rel(s.learned_log_variance_min[1], std::log(1e-6)) < 1e-12);
  for (int64_t t = 2; t <= s.T; ++t) REQUIRE(s.learned_log_variance_min[t] == plain.posterior_log_variance_clipped[t]);
  CHECK(s.posterior_log_variance_clipped[1] == plain.posterior_log_variance_clipped[1]);  // the fixed choices keep betatilde_2
  const int64_t C = 1;
  TensorD out({2, 2 * C, 1, 1});
  out.at({0, 1, 0, 0}) = -1.0;  // sample 0: v = -1
  out.at({1, 1, 0, 0}) = 1.0;   // sample 1: v = 1
  const TensorD xt = TensorD::zeros({2, C, 1, 1});
  for (int64_t t : {1, 2}) {
    CAPTURE(t);
    const auto p = p_mean_variance(s, VarianceType::Learned, out, xt, {t, t}, false);
    CHECK(rel(p.log_variance.at({0, 0, 0, 0}), t == 1 ? std::log(1e-6) : s.posterior_log_variance_clipped[2]) < 1e-12);
    CHECK(rel(p.log_variance.at({1, 0, 0, 0}), s.log_betas[t]) < 1e-12);
  }
  // L_0 of a background pixel (x0 = -1, an edge bin) whose mean is exact: with sigma_1 = 0.001 its
  // bin holds all the decoder's mass; with the old floor sqrt(betatilde_2) ~ 0.007 about a third
  // of it lies outside.
  const TensorD x0 = TensorD::full({1, 1, 1, 1}, -1.0);
  TrainDenoiserT<double> exact_mean = [&](const VarD& x_t, const std::vector<int64_t>& tt) {
    // eps such that the eq. (11) mean at t = 1 is exactly -1, and v = -1
    REQUIRE(tt[0] == 1);
    TensorD o({1, 2, 1, 1});
    const double xt1 = x_t.value().at({0, 0, 0, 0});
    o.at({0, 0, 0, 0}) = (xt1 - s.sqrt_abar[1] * -1.0) / s.sqrt_one_minus_abar[1];
    o.at({0, 1, 0, 0}) = -1.0;
    return VarD(o, true);
  };
  Rng rng(5);
  const TensorD noise = rng.normal<double>({1, 1, 1, 1});
  const auto sharp = training_loss(s, exact_mean, x0, {1}, noise, {}, {LossType::Hybrid, VarianceType::Learned});
  const auto wide = training_loss(plain, exact_mean, x0, {1}, noise, {}, {LossType::Hybrid, VarianceType::Learned});
  CHECK(sharp.vb[0] < 1e-4);  // -log2 Phi((1/255) / 0.001) = 6.3e-5 bits
  CHECK(wide.vb[0] > 0.5);    // -log2 Phi((1/255) / 0.0074) = 0.6 bits
}

TEST_CASE("training losses: L_simple by hand, KL = T x eq. (12) term, hybrid stops the mean's gradient in vb") {
  const Schedule s = linear_schedule(100);  // T = 100: the hybrid weight T/1000 = 0.1
  Rng rng(31);
  const int64_t N = 4, C = 1;
  const Shape shape = {N, C, 3, 3};
  const int64_t D = 9;
  TensorD x0 = rng.uniform<double>(shape, -1, 1);
  for (int64_t i = 0; i < x0.numel(); ++i) x0.data()[i] = std::round((x0.data()[i] + 1) * 127.5) / 127.5 - 1;  // on the 8-bit grid
  const TensorD noise = rng.normal<double>(shape);
  const TensorD eps_theta = rng.normal<double>(shape);
  const std::vector<int64_t> t = {1, 2, 50, 100};
  const std::vector<double> w = {0.5, 1.0, 2.0, 1.5};

  TrainDenoiserT<double> fixed = [&](const VarD&, const std::vector<int64_t>&) { return VarD(eps_theta, true); };
  const auto simple = training_loss(s, fixed, x0, t, noise, w, {LossType::Simple, VarianceType::Large});
  double expect = 0;
  for (int64_t n = 0; n < N; ++n) {
    double m = 0;
    for (int64_t i = 0; i < D; ++i) m += std::pow(noise.data()[n * D + i] - eps_theta.data()[n * D + i], 2);
    CHECK(rel(simple.mse[n], m / D) < 1e-12);
    expect += w[n] * m / D / N;
  }
  CHECK(rel(simple.loss.item(), expect) < 1e-12);
  CHECK(std::isnan(simple.vb[0]));

  const auto kl = training_loss(s, fixed, x0, t, noise, {}, {LossType::Vlb, VarianceType::Small});
  for (int64_t n = 1; n < N; ++n) {  // t >= 2: vb = eq. (12) weight x sum of squares / (D ln 2)
    const double eq12 = s.eps_weight_small[t[n]] * simple.mse[n] * D;
    CHECK(rel(kl.vb[n], eq12 / (D * std::log(2.0))) < 1e-9);
    CHECK(rel(kl.per_sample[n], s.T * kl.vb[n]) < 1e-12);
  }
  // t = 1: vb is the decoder -log p(x0|x1) (eq. 13) at mu from eq. (11) and sigma_1^2 = betatilde_2
  {
    const auto p = p_mean_variance(s, VarianceType::Small, eps_theta, q_sample(s, x0, t, noise), t, false);
    double nll = 0;
    for (int64_t i = 0; i < D; ++i)
      nll -= discretized_gaussian_log_likelihood(x0.data()[i], p.mean.data()[i], 0.5 * std::log(s.posterior_variance[2]));
    CHECK(rel(kl.vb[0], nll / (D * std::log(2.0))) < 1e-9);
  }

  // learned variance: model output [eps, v] as one leaf
  TensorD out({N, 2 * C, 3, 3});
  out.slice(1, 0, C).copy_from(eps_theta);
  out.slice(1, C, 2 * C).copy_from(rng.uniform<double>(shape, -0.9, 0.9));
  VarD leaf_h(out, true), leaf_s(out, true);
  const auto hybrid = training_loss<double>(s, [&](const VarD&, const std::vector<int64_t>&) { return leaf_h; }, x0, t, noise, {},
                                            {LossType::Hybrid, VarianceType::Learned});
  const auto simple_l = training_loss<double>(s, [&](const VarD&, const std::vector<int64_t>&) { return leaf_s; }, x0, t, noise, {},
                                              {LossType::Simple, VarianceType::Learned});
  for (int64_t n = 0; n < N; ++n) CHECK(rel(hybrid.per_sample[n], hybrid.mse[n] + 0.1 * hybrid.vb[n]) < 1e-12);
  hybrid.loss.backward();
  simple_l.loss.backward();
  double max_eps_diff = 0, max_v_grad = 0;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < 2 * C; ++c)
      for (int64_t i = 0; i < 9; ++i) {
        const double gh = leaf_h.grad().at({n, c, i / 3, i % 3}), gs = leaf_s.grad().at({n, c, i / 3, i % 3});
        if (c < C) max_eps_diff = std::max(max_eps_diff, std::abs(gh - gs));
        else max_v_grad = std::max(max_v_grad, std::abs(gh));
      }
  CHECK(max_eps_diff < 1e-14);  // the vb term sends nothing to eps (stop-gradient)
  CHECK(max_v_grad > 1e-4);     // ... but trains v

  // the KL loss with a learned variance, t = 1 (decoder) and t >= 2 (KL) in one batch: gradcheck
  auto g = gradcheck(
      [&](const std::vector<VarD>& v) {
        return training_loss<double>(s, [&](const VarD&, const std::vector<int64_t>&) { return v[0]; }, x0, t, noise, w,
                                     {LossType::Vlb, VarianceType::Learned})
            .loss;
      },
      {out});
  CHECK_MESSAGE(g.ok, g.message);
  CHECK_THROWS_WITH(training_loss(s, fixed, x0, t, noise, {}, {LossType::Hybrid, VarianceType::Learned}),
                    doctest::Contains("2C channels"));
}

TEST_CASE("timestep samplers: uniform; loss-second-moment is uniform until warm, then p_t ~ sqrt(E[L_t^2])") {
  const int64_t T = 20;
  Rng rng(77);
  UniformTimesteps uni(T);
  const auto d = uni.sample(1000, rng);
  for (size_t i = 0; i < d.t.size(); ++i) {
    REQUIRE(d.t[i] >= 1);
    REQUIRE(d.t[i] <= T);
    REQUIRE(d.weights[i] == doctest::Approx(1.0));
  }
  LossSecondMomentTimesteps ls(T, 10, 0.001);
  CHECK_FALSE(ls.warmed_up());
  for (int rep = 0; rep < 10; ++rep) {
    std::vector<int64_t> ts;
    std::vector<double> losses;
    for (int64_t t = 1; t <= T; ++t) {
      ts.push_back(t);
      losses.push_back(static_cast<double>(t) * (rep % 2 ? 1.2 : 0.8));  // E[L_t^2] = t^2 * (0.64 + 1.44)/2
    }
    if (rep == 9) CHECK_FALSE(ls.warmed_up());
    ls.update(ts, losses);
  }
  REQUIRE(ls.warmed_up());
  const auto p = ls.probabilities();
  const double z = T * (T + 1) / 2.0;
  for (int64_t t = 1; t <= T; ++t) CHECK(rel(p[t], 0.999 * t / z + 0.001 / T) < 1e-12);
  // the weights 1/(T p_t) make the weighted mean unbiased: E[w f(t)] = mean_t f(t)
  const int64_t M = 200000;
  const auto draw = ls.sample(M, rng);
  auto f = [](int64_t t) { return std::sin(0.3 * t) + 2.0; };
  double mean_f = 0, est = 0, est2 = 0;
  for (int64_t t = 1; t <= T; ++t) mean_f += f(t) / T;
  for (int64_t i = 0; i < M; ++i) {
    const double v = draw.weights[i] * f(draw.t[i]);
    est += v / M;
    est2 += v * v / M;
  }
  const double se = std::sqrt((est2 - est * est) / M);
  CHECK_MESSAGE(std::abs(est - mean_f) < 5 * se, est << " vs " << mean_f << " +- " << se);
  CHECK_THROWS_AS(ls.update({0}, {1.0}), std::invalid_argument);
}
