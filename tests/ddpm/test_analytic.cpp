// Sampling and the bound with an analytic denoiser. For data x0 ~ N(m, s^2) per pixel (independent),
// x_t ~ N(sqrt(abar) m, abar s^2 + 1 - abar) and the optimal eps_theta is closed form:
//   E[eps | x_t] = sqrt(1 - abar) (x_t - sqrt(abar) m) / (abar s^2 + 1 - abar).
// Every sampler step is then affine in x_t, so the exact mean and variance of the samples follow from
// a scalar recursion (M' = A M + B, V' = A^2 V + sigma^2, starting at M = 0, V = 1): the tests check the
// Monte Carlo samples against it (5 standard errors) and report how far it is from the data (the
// bias of the fixed variances). Likewise every bound term has a closed-form expectation, so the Monte
// Carlo bound is checked against it and the gap to the exact NLL 0.5 log(2 pi e s^2) is exact.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <functional>
#include <string>

#include "ddpm/bound.h"
#include "ddpm/gaussian.h"
#include "ddpm/sample.h"
#include "tensor/parallel.h"

using namespace dd;
using namespace dd::ddpm;

namespace {
constexpr double kDataMean = 0.25, kDataStd = 0.4;
constexpr double kPi = 3.14159265358979323846;

// Var(x0 | x_t) for x0 ~ N(m, s^2): s^2 (1 - abar) / (abar s^2 + 1 - abar).
double posterior_var_x0(double abar, double sd) { return sd * sd * (1.0 - abar) / (abar * sd * sd + 1.0 - abar); }
// The exact reverse variance of Gaussian data, Var(x_{t-1} | x_t) = betatilde_t + coef1_t^2 Var(x0 | x_t)
// (t >= 2), and Var(x0 | x_1) at t = 1; and the v in [-1, 1]-units that makes the learned
// parameterization produce it (frac = (log sigma^2 - log betatilde_clipped) / (log beta - log betatilde_clipped)).
double optimal_variance(const Schedule& s, int64_t t, double sd) {
  const double pv = posterior_var_x0(s.abar[t], sd);
  return t == 1 ? pv : s.posterior_variance[t] + s.posterior_mean_coef1[t] * s.posterior_mean_coef1[t] * pv;
}
double optimal_v(const Schedule& s, int64_t t, double sd) {
  const double lo = s.posterior_log_variance_clipped[t], hi = s.log_betas[t];
  return 2.0 * (std::log(optimal_variance(s, t, sd)) - lo) / (hi - lo) - 1.0;
}

// E[eps | x_t] for x0 ~ N(m, s^2) per pixel; `base` is the schedule the (network) timesteps index.
// learned: 2C channels, the second C hold v (or the optimal v when optimal_var).
Denoiser gaussian_data_denoiser(const Schedule& base, double m, double sd, bool learned = false, float v = 0.f,
                                bool optimal_var = false) {
  return [&base, m, sd, learned, v, optimal_var](const TensorF& x, const std::vector<int64_t>& t) {
    const int64_t N = x.size(0), D = x.numel() / N, C = x.size(1);
    Shape out_shape = x.shape();
    if (learned) out_shape[1] = 2 * C;
    TensorF out(out_shape);
    const TensorF xc = x.contiguous();
    for (int64_t n = 0; n < N; ++n) {
      const double abar = base.abar[t[n]];
      const double c = std::sqrt(1.0 - abar) / (abar * sd * sd + 1.0 - abar);
      float* o = out.data() + n * (learned ? 2 * D : D);
      for (int64_t i = 0; i < D; ++i) o[i] = static_cast<float>(c * (xc.data()[n * D + i] - std::sqrt(abar) * m));
      if (learned)
        for (int64_t i = 0; i < D; ++i) o[D + i] = optimal_var ? static_cast<float>(optimal_v(base, t[n], sd)) : v;
    }
    return out;
  };
}

struct Moments {
  double mean = 0, var = 0;
  int64_t n = 0;
};
Moments moments(const TensorF& x) {
  Moments r;
  const auto v = x.to_vector();
  r.n = static_cast<int64_t>(v.size());
  for (float a : v) r.mean += a;
  r.mean /= r.n;
  for (float a : v) r.var += (a - r.mean) * (a - r.mean);
  r.var /= (r.n - 1);
  return r;
}

// Exact moments of Algorithm 2 (eq. 11 mean, fixed sigma_t^2) with the analytic denoiser.
Moments predicted_ancestral(const Schedule& s, VarianceType v, double m, double sd) {
  double M = 0, V = 1;
  for (int64_t t = s.T; t >= 1; --t) {
    const double abar = s.abar[t], c = std::sqrt(1.0 - abar) / (abar * sd * sd + 1.0 - abar);
    const double k = s.betas[t] / s.sqrt_one_minus_abar[t] * c;  // eps coefficient times c
    const double A = (1.0 - k) / std::sqrt(s.alphas[t]);
    const double B = k * std::sqrt(abar) * m / std::sqrt(s.alphas[t]);
    M = A * M + B;
    V = A * A * V + (t > 1 ? s.model_variance(v, t) : 0.0);
  }
  return {M, V, 0};
}

// Exact moments of DDIM with eta = 0 with the analytic denoiser.
Moments predicted_ddim0(const Schedule& s, double m, double sd) {
  double M = 0, V = 1;
  for (int64_t t = s.T; t >= 1; --t) {
    const double abar = s.abar[t], prev = s.abar[t - 1], c = std::sqrt(1.0 - abar) / (abar * sd * sd + 1.0 - abar);
    const double A = std::sqrt(prev) * (1.0 - std::sqrt(1.0 - abar) * c) / std::sqrt(abar) + std::sqrt(1.0 - prev) * c;
    const double B = std::sqrt(prev) * std::sqrt(1.0 - abar) * c * m - std::sqrt(1.0 - prev) * c * std::sqrt(abar) * m;
    M = A * M + B;
    V = A * A * V;
  }
  return {M, V, 0};
}

// Checks samples against the predicted moments (5 standard errors) and returns the bias of the
// prediction against the data, (mean - m, var / s^2 - 1).
void check_moments(const TensorF& x, const Moments& pred, const std::string& what) {
  const Moments got = moments(x);
  const double se_mean = std::sqrt(pred.var / got.n), se_var = pred.var * std::sqrt(2.0 / (got.n - 1));
  MESSAGE(what << ": samples mean " << got.mean << " var " << got.var << " | exact for this sampler mean " << pred.mean
               << " var " << pred.var << " | data mean " << kDataMean << " var " << kDataStd * kDataStd
               << " | bias of the sampler: mean " << pred.mean - kDataMean << ", var "
               << 100.0 * (pred.var / (kDataStd * kDataStd) - 1.0) << "%");
  CHECK_MESSAGE(std::abs(got.mean - pred.mean) < 5 * se_mean, what << ": mean " << got.mean << " vs " << pred.mean);
  CHECK_MESSAGE(std::abs(got.var - pred.var) < 5 * se_var, what << ": var " << got.var << " vs " << pred.var);
}

// E over x0 and x_t of the bound terms, per dimension, in nats (continuous Gaussian decoder L_0, no clipping).
struct ExpectedBound {
  double prior = 0, kl_sum = 0, decoder = 0, total = 0;
};
ExpectedBound expected_bound(const Schedule& s, const std::function<double(int64_t)>& model_variance, double m, double sd) {
  ExpectedBound e;
  const double s2 = sd * sd, aT = s.abar[s.T];
  e.prior = 0.5 * (-std::log(1.0 - aT) + (1.0 - aT) + aT * (m * m + s2) - 1.0);  // E KL(q(x_T|x0) || N(0,1))
  auto post_var_x0 = [&](int64_t t) { return posterior_var_x0(s.abar[t], sd); };
  for (int64_t t = 2; t <= s.T; ++t) {
    const double sigma2 = model_variance(t), bt = s.posterior_variance[t], c1 = s.posterior_mean_coef1[t];
    e.kl_sum += 0.5 * (std::log(sigma2 / bt) + bt / sigma2 - 1.0 + c1 * c1 * post_var_x0(t) / sigma2);
  }
  const double sigma2_1 = model_variance(1);
  e.decoder = 0.5 * std::log(2 * kPi * sigma2_1) + post_var_x0(1) / (2 * sigma2_1);
  e.total = e.prior + e.kl_sum + e.decoder;
  return e;
}
}  // namespace

TEST_CASE("Algorithm 2, T = 1000, analytic denoiser: samples have the exact moments; the fixed variances' bias is small") {
  const Schedule s = linear_schedule(1000);
  const Denoiser model = gaussian_data_denoiser(s, kDataMean, kDataStd);
  for (VarianceType v : {VarianceType::Large, VarianceType::Small}) {
    Rng rng(2024);
    SampleOptions opt;
    opt.variance = v;
    opt.clip_x0 = false;  // the Gaussian data has tails beyond [-1, 1]
    // 16,384 pixels: SE of the variance 1.1% (the counter-based normals dominate the run time)
    const TensorF x = sample_ancestral(s, model, {64, 1, 16, 16}, rng, opt);
    const Moments pred = predicted_ancestral(s, v, kDataMean, kDataStd);
    check_moments(x, pred, v == VarianceType::Large ? "ancestral, sigma^2 = beta" : "ancestral, sigma^2 = betatilde");
    // The bias of the exact sampler against the data (m = 0.25, s = 0.4; measured: mean -1.6e-6,
    // variance +0.43% for beta and -1.90% for betatilde). "large" overshoots and "small" undershoots
    // the data variance (upper and lower entropy bounds, docs/equations.md); both within 3%.
    const double var_bias = pred.var / (kDataStd * kDataStd) - 1.0;
    CHECK(std::abs(pred.mean - kDataMean) < 1e-4);
    CHECK(std::abs(var_bias) < 0.03);
    CHECK((v == VarianceType::Large ? var_bias > 0 : var_bias < 0));
    // and the samples against the data: 5 standard errors plus that bias
    const Moments got = moments(x);
    CHECK(std::abs(got.mean - kDataMean) < 5 * std::sqrt(pred.var / got.n) + 1e-4);
    CHECK(std::abs(got.var - kDataStd * kDataStd) < 5 * pred.var * std::sqrt(2.0 / got.n) + std::abs(pred.var - kDataStd * kDataStd));
  }
}

TEST_CASE("strided sampling on 100 respaced steps and DDIM (eta = 0) have their exact moments") {
  const Schedule base = linear_schedule(1000);
  const Schedule s = respace(base, strided_timesteps(1000, 100));
  const Denoiser model = gaussian_data_denoiser(base, kDataMean, kDataStd);  // sees base timesteps
  SampleOptions opt;
  opt.clip_x0 = false;
  Rng rng(7);
  const TensorF x = sample_ancestral(s, model, {64, 1, 16, 16}, rng, opt);
  check_moments(x, predicted_ancestral(s, VarianceType::Large, kDataMean, kDataStd), "ancestral on 100 respaced steps, large");
  Rng rng2(8);
  const TensorF y = sample_ddim(s, model, {64, 1, 16, 16}, rng2, 0.0, opt);
  const Moments pd = predicted_ddim0(s, kDataMean, kDataStd);
  check_moments(y, pd, "DDIM eta = 0 on 100 respaced steps");
  // DDIM's deterministic map is a discretization: its variance bias shrinks with more steps
  const Moments pd_all = predicted_ddim0(base, kDataMean, kDataStd);
  const Moments pd_20 = predicted_ddim0(respace(base, strided_timesteps(1000, 20)), kDataMean, kDataStd);
  const double s2 = kDataStd * kDataStd;
  MESSAGE("DDIM eta = 0 variance bias: 20 steps " << 100 * (pd_20.var / s2 - 1) << "%, 100 steps " << 100 * (pd.var / s2 - 1)
                                                  << "%, 1000 steps " << 100 * (pd_all.var / s2 - 1) << "%");
  // first order in the step: 10x the steps, about 10x less bias (measured -30%, -6.6%, -0.73%)
  CHECK(std::abs(pd_all.var / s2 - 1) < std::abs(pd.var / s2 - 1) / 5);
  CHECK(std::abs(pd.var / s2 - 1) < std::abs(pd_20.var / s2 - 1) / 3);
}

TEST_CASE("same seed, same samples (also across thread counts); DDIM with eta = 0 is deterministic given x_T") {
  const Schedule base = linear_schedule(1000);
  const Schedule s = respace(base, strided_timesteps(1000, 50));
  const Denoiser model = gaussian_data_denoiser(base, kDataMean, kDataStd);
  const int threads = get_num_threads();
  Rng a(99), b(99), c(100);
  const TensorF xa = sample_ancestral(s, model, {4, 1, 64, 64}, a);
  set_num_threads(1);
  const TensorF xb = sample_ancestral(s, model, {4, 1, 64, 64}, b);
  set_num_threads(threads);
  const TensorF xc = sample_ancestral(s, model, {4, 1, 64, 64}, c);
  CHECK(xa.to_vector() == xb.to_vector());
  CHECK(xa.to_vector() != xc.to_vector());
  CHECK(a.state() == b.state());

  Rng r0(1);
  const TensorF x_T = r0.normal<float>({4, 1, 8, 8});
  Rng r1(5), r2(6);
  const TensorF d1 = ddim_from(s, model, x_T, s.T, r1, 0.0);
  const TensorF d2 = ddim_from(s, model, x_T, s.T, r2, 0.0);
  CHECK(d1.to_vector() == d2.to_vector());
  // with eta = 1 the noise matters
  Rng r3(5), r4(6);
  CHECK(ddim_from(s, model, x_T, s.T, r3, 1.0).to_vector() != ddim_from(s, model, x_T, s.T, r4, 1.0).to_vector());
  CHECK_THROWS_AS(ddim_from(s, model, x_T, s.T, r3, -0.5), std::invalid_argument);
}

TEST_CASE("a learned variance at v = 1 / v = -1 samples exactly as large / small") {
  const Schedule s = respace(linear_schedule(1000), strided_timesteps(1000, 40));
  const Schedule full = linear_schedule(1000);
  for (float v : {1.f, -1.f}) {
    SampleOptions fixed, learned;
    fixed.variance = v > 0 ? VarianceType::Large : VarianceType::Small;
    learned.variance = VarianceType::Learned;
    fixed.clip_x0 = learned.clip_x0 = true;
    Rng r1(3), r2(3);
    const TensorF a = sample_ancestral(s, gaussian_data_denoiser(full, kDataMean, kDataStd), {2, 1, 8, 8}, r1, fixed);
    const TensorF b = sample_ancestral(s, gaussian_data_denoiser(full, kDataMean, kDataStd, true, v), {2, 1, 8, 8}, r2, learned);
    CHECK(a.to_vector() == b.to_vector());
  }
  // a C-channel output where 2C are expected is an error naming both shapes
  Rng r(1);
  SampleOptions learned;
  learned.variance = VarianceType::Learned;
  CHECK_THROWS_WITH(sample_ancestral(s, gaussian_data_denoiser(full, 0, 1), {2, 1, 4, 4}, r, learned),
                    doctest::Contains("[2, 2, 4, 4]"));
}

TEST_CASE("progressive decoding: the callback sees every step from T down to 1 and the last x0_hat is the sample") {
  const Schedule base = linear_schedule(1000);
  const auto kept = strided_timesteps(1000, 25);
  const Schedule s = respace(base, kept);
  std::vector<int64_t> seen;
  TensorF last_x0;
  SampleOptions opt;
  opt.clip_x0 = false;
  opt.on_step = [&](int64_t t, const TensorF& x_t, const TensorF& x0_hat) {
    seen.push_back(t);
    CHECK(x_t.shape() == x0_hat.shape());
    last_x0 = x0_hat.clone();
  };
  Rng rng(12);
  const TensorF x = sample_ancestral(s, gaussian_data_denoiser(base, kDataMean, kDataStd), {3, 1, 5, 5}, rng, opt);
  REQUIRE(seen.size() == 25);
  for (size_t i = 0; i < seen.size(); ++i) CHECK(seen[i] == kept[kept.size() - 1 - i]);  // base timesteps, descending
  // at t = 1, eq. (11)'s mean equals x0_hat (abar_1 = alpha_1): float rounding only
  for (int64_t i = 0; i < x.numel(); ++i) REQUIRE(std::abs(x.data()[i] - last_x0.data()[i]) < 1e-5);
}

TEST_CASE("interpolation mixes the two encodings (1 - lambda) x_t + lambda x'_t, then denoises from t") {
  const Schedule s = linear_schedule(1000);
  const Denoiser model = gaussian_data_denoiser(s, kDataMean, kDataStd);
  Rng data(1);
  const TensorF a = data.uniform<float>({2, 1, 4, 4}, -1, 1), b = data.uniform<float>({2, 1, 4, 4}, -1, 1);
  const int64_t t = 200;
  const double lambda = 0.3;
  Rng rng(50);
  const TensorF got = interpolate(s, model, a, b, t, lambda, rng);
  // by hand, drawing from a copy of the same generator in the same order
  Rng r = rng;
  const std::vector<int64_t> tv(2, t);
  const TensorF xa = q_sample(s, a, tv, r.normal<float>(a.shape()));
  const TensorF xb = q_sample(s, b, tv, r.normal<float>(a.shape()));
  TensorF mixed(a.shape());
  for (int64_t i = 0; i < mixed.numel(); ++i) mixed.data()[i] = static_cast<float>((1 - lambda) * xa.data()[i] + lambda * xb.data()[i]);
  const TensorF want = denoise_from(s, model, mixed, t, r);
  CHECK(got.to_vector() == want.to_vector());
  // the same generator state with another lambda uses the same noise: lambda = 0 and 1 give the
  // denoised encodings of a and of b
  CHECK(interpolate(s, model, a, b, t, 0.0, rng).to_vector() != interpolate(s, model, a, b, t, 1.0, rng).to_vector());
}

TEST_CASE("the bound with a continuous decoder is >= the exact NLL of N(m, s^2) data, and close (T = 1000)") {
  const Schedule s = linear_schedule(1000);
  const double nll = 0.5 * std::log(2 * kPi * std::exp(1.0) * kDataStd * kDataStd);  // nats per dimension
  const double prior_kl_exact = normal_kl(s.sqrt_abar[s.T] * kDataMean, std::log(s.abar[s.T] * kDataStd * kDataStd + 1 - s.abar[s.T]), 0.0, 0.0);
  for (VarianceType v : {VarianceType::Large, VarianceType::Small, VarianceType::Learned}) {
    // Learned: the network outputs the v that gives the exact reverse variance of Gaussian data, so
    // every reverse conditional is exact and the bound exceeds the NLL only by KL(q(x_T) || N(0, I)).
    const bool learned = v == VarianceType::Learned;
    const Denoiser model = gaussian_data_denoiser(s, kDataMean, kDataStd, learned, 0.f, learned);
    const ExpectedBound e = expected_bound(
        s, [&](int64_t t) { return learned ? optimal_variance(s, t, kDataStd) : s.model_variance(v, t); }, kDataMean, kDataStd);
    const double gap = e.total - nll;
    MESSAGE(to_string(v) << ": exact NLL " << nll << " nats/dim, expected bound " << e.total << " (L_T " << e.prior
                         << ", sum L_{t-1} " << e.kl_sum << ", L_0 " << e.decoder << "), gap " << gap << " nats/dim = "
                         << gap / std::log(2.0) << " bits/dim");
    CHECK(gap > 0);  // Jensen: a variational bound is never below the NLL
    if (learned) {
      // the gap is exactly KL(q(x_T) || p(x_T)) (~4.5e-6 nats/dim): float64 sums of 1000 terms, 1e-9
      CHECK(std::abs(gap - prior_kl_exact) < 1e-9);
    } else {
      // measured: 0.167 bits/dim for sigma^2 = beta, 0.816 for betatilde (the fixed variances' cost;
      // at small t the true reverse variance is close to beta_t for data this wide)
      CHECK(gap / std::log(2.0) < 1.0);
    }
    if (v == VarianceType::Large) CHECK(gap < expected_bound(s, [&](int64_t t) { return s.model_variance(VarianceType::Small, t); }, kDataMean, kDataStd).total - nll);

    // Monte Carlo: one x_t per t per image, 32 images of 16 x 16 (T = 1000 calls of the batch)
    Rng rng(404);
    const TensorF x0 = rng.normal<float>({32, 1, 16, 16}, static_cast<float>(kDataMean), static_cast<float>(kDataStd));
    BoundOptions opt;
    opt.variance = v;
    opt.clip_x0 = false;
    opt.decoder = DecoderType::ContinuousGaussian;
    const BoundResult r = variational_bound(s, model, x0, rng, opt);
    CHECK_FALSE(r.clip_x0);
    const double D = static_cast<double>(r.dims);
    double mean = 0, m2 = 0;
    for (double tot : r.total_nats) mean += tot / D / r.total_nats.size();
    for (double tot : r.total_nats) m2 += std::pow(tot / D - mean, 2);
    const double se = std::sqrt(m2 / (r.total_nats.size() - 1) / r.total_nats.size());
    MESSAGE(to_string(v) << ": Monte Carlo bound " << mean << " +- " << se << " nats/dim (expected " << e.total << ")");
    CHECK(std::abs(mean - e.total) < 5 * se);
    // the pieces are where they belong: L_T and L_0 per image match their expectations too
    double prior = 0, dec = 0;
    for (size_t n = 0; n < r.prior_nats.size(); ++n) {
      prior += r.prior_nats[n] / D / r.prior_nats.size();
      dec += r.decoder_nats[n] / D / r.prior_nats.size();
      CHECK(r.terms.at({static_cast<int64_t>(n), 0}) == r.prior_nats[n]);
      CHECK(r.terms.at({static_cast<int64_t>(n), 1}) == r.decoder_nats[n]);
    }
    CHECK(std::abs(prior - e.prior) < 1e-5);  // L_T ~ 4.5e-6 nats/dim, its spread over 8192 pixels is far smaller
    CHECK(std::abs(dec - e.decoder) < 0.1);   // L_0 per pixel has sd <= 0.7 nats: 5 SE of 8192 pixels ~ 0.04
    CHECK(std::abs(r.mean_bits_per_dim - mean / std::log(2.0)) < 1e-9);  // bits/dim = nats / ln 2
  }
}

TEST_CASE("the one-t estimate is unbiased for the full bound; evaluation clips x0_hat by default and says so") {
  // 20 respaced steps so that every t is drawn often. "small" on 20 steps is a loose bound (~200
  // bits/dim: betatilde_t is far below the true reverse variance there), which keeps the relative
  // spread of the estimate small enough for the check to have teeth.
  const Schedule base = linear_schedule(1000);
  const Schedule s = respace(base, strided_timesteps(1000, 20));
  const Denoiser model = gaussian_data_denoiser(base, kDataMean, kDataStd);
  const ExpectedBound e = expected_bound(s, [&](int64_t t) { return s.model_variance(VarianceType::Small, t); }, kDataMean, kDataStd);
  Rng rng(606);
  const TensorF x0 = rng.normal<float>({20000, 1, 2, 2}, static_cast<float>(kDataMean), static_cast<float>(kDataStd));
  BoundOptions opt;
  opt.variance = VarianceType::Small;
  opt.clip_x0 = false;
  opt.decoder = DecoderType::ContinuousGaussian;
  const BoundEstimate est = variational_bound_estimate(s, model, x0, rng, opt);
  double mean = 0, m2 = 0;
  const double N = static_cast<double>(est.bits_per_dim.size());
  for (double b : est.bits_per_dim) mean += b / N;
  for (double b : est.bits_per_dim) m2 += (b - mean) * (b - mean);
  const double se = std::sqrt(m2 / (N - 1) / N);
  MESSAGE("one-t estimate " << mean << " +- " << se << " bits/dim, full bound (exact expectation) " << e.total / std::log(2.0));
  CHECK(std::abs(mean - e.total / std::log(2.0)) < 5 * se);
  CHECK(se < 0.05 * std::abs(e.total / std::log(2.0)));  // the check above has teeth
  CHECK(std::abs(est.mean_bits_per_dim - mean) < 1e-9);
  std::vector<int> hits(s.T + 1, 0);
  for (int64_t t : est.t) ++hits[t];
  CHECK(hits[1] == 0);  // L_0 is exact, not drawn
  for (int64_t t = 2; t <= s.T; ++t) CHECK(hits[t] > 850);  // 20000 / 19 = 1053 expected per t

  // default options: discretized decoder, x0_hat clipped, both reported; 8-bit data gives a finite bound
  TensorF img = rng.uniform<float>({2, 1, 4, 4}, -1, 1);
  for (int64_t i = 0; i < img.numel(); ++i) img.data()[i] = std::round((img.data()[i] + 1) * 127.5f) / 127.5f - 1;
  const BoundResult r = variational_bound(s, model, img, rng);
  CHECK(r.clip_x0);
  CHECK(r.decoder == DecoderType::Discretized);
  CHECK(std::isfinite(r.mean_bits_per_dim));
  CHECK(r.mean_bits_per_dim > 0);  // a discrete codelength is positive
}
