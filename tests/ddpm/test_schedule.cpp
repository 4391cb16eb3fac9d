// Schedules: every derived array against its definition in docs/equations.md, the T-scaling rule and its error,
// the cosine endpoints, respacing. Tolerances: arrays are float64 built by the same few operations
// as the reference expression, so 1e-12 relative unless a comment says otherwise.
#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>

#include "ddpm/schedule.h"

using namespace dd::ddpm;

namespace {
double rel(double a, double b) { return std::abs(a - b) / std::max(std::abs(b), 1e-300); }
}  // namespace

TEST_CASE("linear T = 1000: betas 1e-4 .. 0.02, index 0 = no noise, abar is the cumulative product") {
  const Schedule s = linear_schedule(1000);
  REQUIRE(s.T == 1000);
  REQUIRE(s.betas.size() == 1001);
  CHECK(s.betas[0] == 0.0);
  CHECK(s.abar[0] == 1.0);
  CHECK(rel(s.betas[1], 1e-4) < 1e-12);
  CHECK(rel(s.betas[1000], 0.02) < 1e-12);
  // equally spaced
  CHECK(rel(s.betas[501] - s.betas[500], (0.02 - 1e-4) / 999.0) < 1e-9);
  double prod = 1.0;
  for (int64_t t = 1; t <= s.T; ++t) {
    prod *= 1.0 - s.betas[t];
    REQUIRE(rel(s.abar[t], prod) < 1e-12);
    REQUIRE(rel(s.alphas[t], 1.0 - s.betas[t]) < 1e-15);
    REQUIRE(rel(s.sqrt_abar[t] * s.sqrt_abar[t], s.abar[t]) < 1e-12);
    REQUIRE(rel(s.sqrt_one_minus_abar[t] * s.sqrt_one_minus_abar[t], 1.0 - s.abar[t]) < 1e-12);
  }
  // The DDPM paper's abar_T for this schedule is about 4e-5 (L_T ~ 1e-5 bits/dim): check the order.
  CHECK(s.abar[1000] > 1e-5);
  CHECK(s.abar[1000] < 1e-4);
  for (int64_t t = 1; t <= s.T; ++t) CHECK_MESSAGE(s.timesteps[t] == t, "t = " << t);
}

TEST_CASE("linear T = 100 and T = 4000 scale both ends by 1000/T and keep abar_T about the same") {
  const Schedule ref = linear_schedule(1000);
  for (int64_t T : {100, 4000}) {
    const Schedule s = linear_schedule(T);
    const double scale = 1000.0 / static_cast<double>(T);
    CHECK(rel(s.betas[1], 1e-4 * scale) < 1e-12);
    CHECK(rel(s.betas[T], 0.02 * scale) < 1e-12);
    // log abar_T ~ -sum beta = -(T/2)(beta_1 + beta_T) = -10.05 for every T; the products differ at
    // second order in beta: within 15% in log for T = 100 (beta up to 0.2), closer for T = 4000.
    CHECK(std::abs(std::log(s.abar[T]) / std::log(ref.abar[1000]) - 1.0) < 0.15);
  }
}

TEST_CASE("linear(T) with T <= 20 is an error naming T and beta_T; explicit ends work") {
  CHECK_THROWS_WITH_AS(linear_schedule(20), doctest::Contains("beta_T = 1"), std::invalid_argument);
  CHECK_THROWS_AS(linear_schedule(10), std::invalid_argument);
  CHECK_NOTHROW(linear_schedule(21));
  const Schedule s = linear_schedule(10, 0.05, 0.5);
  CHECK(rel(s.betas[1], 0.05) < 1e-12);
  CHECK(rel(s.betas[10], 0.5) < 1e-12);
  CHECK_THROWS_AS(linear_schedule(10, 0.05, 1.0), std::invalid_argument);
  CHECK_THROWS_AS(linear_schedule(1, 0.05, 0.5), std::invalid_argument);
}

TEST_CASE("posterior variance, mean coefficients and sigma_t^2 follow eq. (7) and the t = 1 convention") {
  const Schedule s = linear_schedule(1000);
  for (int64_t t : {1, 2, 3, 50, 500, 1000}) {
    const double bt = (1.0 - s.abar[t - 1]) / (1.0 - s.abar[t]) * s.betas[t];
    CHECK(rel(s.posterior_variance[t] + 1e-300, bt + 1e-300) < 1e-12);
    CHECK(rel(s.posterior_mean_coef1[t], std::sqrt(s.abar[t - 1]) * s.betas[t] / (1.0 - s.abar[t])) < 1e-12);
    if (t > 1) CHECK(rel(s.posterior_mean_coef2[t], std::sqrt(s.alphas[t]) * (1.0 - s.abar[t - 1]) / (1.0 - s.abar[t])) < 1e-12);
  }
  // betatilde_1 = 0: the reason for the convention
  CHECK(s.posterior_variance[1] == 0.0);
  // At t = 1 both fixed choices use betatilde_2 (docs/equations.md), elsewhere beta_t and betatilde_t.
  CHECK(s.model_variance(VarianceType::Large, 1) == s.posterior_variance[2]);
  CHECK(s.model_variance(VarianceType::Small, 1) == s.posterior_variance[2]);
  CHECK(s.model_variance(VarianceType::Large, 7) == s.betas[7]);
  CHECK(s.model_variance(VarianceType::Small, 7) == s.posterior_variance[7]);
  CHECK(rel(std::exp(s.posterior_log_variance_clipped[1]), s.posterior_variance[2]) < 1e-12);
  CHECK_THROWS_AS(s.model_variance(VarianceType::Learned, 3), std::invalid_argument);
  CHECK_THROWS_WITH(s.model_variance(VarianceType::Large, 0), doctest::Contains("[1, 1000]"));
  CHECK_THROWS_AS(s.model_variance(VarianceType::Large, 1001), std::invalid_argument);
  // betatilde_t < beta_t for t >= 2: "small" really is smaller
  for (int64_t t = 2; t <= s.T; ++t) REQUIRE(s.posterior_variance[t] < s.betas[t]);
}

TEST_CASE("seed typo 000: betatilde_t is (1 - abar_{t-1})/(1 - abar_t) beta_t, not (1 - abar_t)/(1 - abar_1) beta_t") {
  const Schedule s = linear_schedule(1000);
  const int64_t t = 300;
  const double typo = (1.0 - s.abar[t]) / (1.0 - s.abar[1]) * s.betas[t];
  CHECK(rel(typo, s.posterior_variance[t]) > 1.0);  // off by orders of magnitude: the numeric check catches it
}

TEST_CASE("eq. (12) weights: beta^2 / (2 sigma^2 alpha (1 - abar)) in both closed forms, t >= 2") {
  const Schedule s = linear_schedule(1000);
  for (int64_t t : {2, 3, 10, 999, 1000}) {
    const double general_small = s.betas[t] * s.betas[t] / (2.0 * s.posterior_variance[t] * s.alphas[t] * (1.0 - s.abar[t]));
    const double general_large = s.betas[t] * s.betas[t] / (2.0 * s.betas[t] * s.alphas[t] * (1.0 - s.abar[t]));
    CHECK(rel(s.eps_weight_small[t], general_small) < 1e-12);
    CHECK(rel(s.eps_weight_large[t], general_large) < 1e-12);
    // seed typo 003 drops alpha_t: that weight differs by the factor alpha_t (checkable at large t)
    if (t == 1000) CHECK(rel(general_small * s.alphas[t], s.eps_weight_small[t]) > 0.01);
  }
  CHECK(s.eps_weight_small[1] == 0.0);
}

TEST_CASE("cosine schedule: endpoints, clipping at 0.999, abar = product of the clipped betas") {
  const int64_t T = 1000;
  const double sf = 0.008, pi = 3.14159265358979323846;
  const Schedule s = cosine_schedule(T);
  auto f = [&](double t) { double c = std::cos((t / T + sf) / (1 + sf) * pi / 2); return c * c; };
  // abar_1 = f(1)/f(0) (beta_1 is not clipped)
  CHECK(rel(s.abar[1], f(1) / f(0)) < 1e-12);
  // f(T) = cos(pi/2)^2 = 0: the last beta would be 1, clipped to 0.999
  CHECK(s.betas[T] == 0.999);
  CHECK(s.abar[T] > 0.0);
  CHECK(s.abar[T] < 1e-6);
  // before the clipping region abar(t) matches f(t)/f(0)
  CHECK(rel(s.abar[500], f(500) / f(0)) < 1e-10);
  double prod = 1.0;
  for (int64_t t = 1; t <= T; ++t) {
    REQUIRE(s.betas[t] <= 0.999);
    prod *= 1.0 - s.betas[t];
    REQUIRE(rel(s.abar[t], prod) < 1e-12);
  }
  // the middle of the cosine schedule keeps more signal than the linear one (its design aim)
  CHECK(s.abar[500] > linear_schedule(1000).abar[500]);
}

TEST_CASE("respacing keeps abar at the kept steps and maps back to the base timesteps") {
  const Schedule base = linear_schedule(1000);
  const auto kept = strided_timesteps(1000, 50);
  REQUIRE(kept.size() == 50);
  CHECK(kept.front() == 1);
  CHECK(kept.back() == 1000);
  const Schedule r = respace(base, kept);
  REQUIRE(r.T == 50);
  for (int64_t j = 1; j <= 50; ++j) {
    REQUIRE(rel(r.abar[j], base.abar[kept[j - 1]]) < 1e-12);
    REQUIRE(r.timesteps[j] == kept[j - 1]);
  }
  // respacing a respaced schedule composes the maps
  const Schedule rr = respace(r, {1, 10, 50});
  CHECK(rr.timesteps[2] == kept[9]);
  CHECK(rel(rr.abar[2], base.abar[kept[9]]) < 1e-12);
  CHECK_THROWS_AS(respace(base, {5, 5}), std::invalid_argument);
  CHECK_THROWS_AS(respace(base, {1, 1001}), std::invalid_argument);
  CHECK_THROWS_AS(strided_timesteps(10, 11), std::invalid_argument);
}

TEST_CASE("schedule_from_betas rejects betas outside (0, 1), naming the step") {
  CHECK_THROWS_WITH(schedule_from_betas({0.1, 1.0}), doctest::Contains("beta_2"));
  CHECK_THROWS_AS(schedule_from_betas({0.0, 0.5}), std::invalid_argument);
  CHECK_THROWS_AS(schedule_from_betas({0.5}), std::invalid_argument);
  CHECK(variance_type_from_string("small") == VarianceType::Small);
  CHECK_THROWS_AS(variance_type_from_string("big"), std::invalid_argument);
}
