// ddpm::reverse_step, the one reverse step every sampler loops over: each update against the
// paper's formulas written out independently here (Algorithm 2 with the eq. (7) posterior mean of a
// clipped x0_hat; DDIM eq. (12)), and the samplers as loops over it.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>

#include "ddpm/sample.h"
#include "tensor/random.h"

using namespace dd;
using namespace dd::ddpm;

namespace {
// A fixed "network": eps = 0.7 tanh(x_t) + 0.01 t, so x0_hat leaves [-1, 1] for some pixels and
// the clipping matters.
Denoiser toy_denoiser() {
  return [](const TensorF& x, const std::vector<int64_t>& t) {
    TensorF out(x.shape());
    const int64_t per = x.numel() / x.size(0);
    for (int64_t i = 0; i < x.numel(); ++i)
      out.data()[i] = static_cast<float>(0.7 * std::tanh(x.data()[i]) + 0.01 * static_cast<double>(t[i / per]));
    return out;
  };
}
double clip1(double v) { return std::min(1.0, std::max(-1.0, v)); }
}  // namespace

TEST_CASE("reverse_step, ancestral: x_{t-1} = coef1 clip(x0_hat) + coef2 x_t + sqrt(beta_t) z, noiseless at t = 1") {
  const Schedule s = linear_schedule(50);
  Rng data(1);
  const TensorF x_t = data.normal<float>({3, 1, 4, 4}, 0.0f, 1.5f);
  for (int64_t t : {50, 17, 2, 1}) {
    CAPTURE(t);
    Rng rng(7), twin(7);
    const ReverseStep step = reverse_step(s, toy_denoiser(), x_t, t, rng);
    const TensorF z = twin.normal<float>(x_t.shape());  // the draw the step makes (none at t = 1)
    const double abar = s.abar[t], abar_prev = s.abar[t - 1], beta = s.betas[t];
    // sigma_t^2 = beta_t ("large"); at t = 1 the step returns the mean itself.
    double worst = 0, worst_x0 = 0;
    for (int64_t i = 0; i < x_t.numel(); ++i) {
      const double x = x_t.data()[i];
      const double eps = 0.7 * std::tanh(x) + 0.01 * static_cast<double>(t);
      const double x0_hat = clip1((x - std::sqrt(1 - abar) * eps) / std::sqrt(abar));  // eq. (4) solved for x0
      const double mean = std::sqrt(abar_prev) * beta / (1 - abar) * x0_hat +
                          std::sqrt(1 - beta) * (1 - abar_prev) / (1 - abar) * x;  // eq. (7)
      const double want = t == 1 ? mean : mean + std::sqrt(beta) * z.data()[i];
      worst = std::max(worst, std::abs(step.x_prev.data()[i] - want));
      worst_x0 = std::max(worst_x0, std::abs(step.x0_hat.data()[i] - x0_hat));
    }
    CHECK(worst < 2e-5);
    CHECK(worst_x0 < 2e-5);
  }
}

TEST_CASE("reverse_step, DDIM: x_{t-1} = sqrt(abar_{t-1}) x0_hat + sqrt(1 - abar_{t-1} - sigma^2) eps(x0_hat) + sigma z") {
  const Schedule s = linear_schedule(50);
  Rng data(2);
  const TensorF x_t = data.normal<float>({2, 1, 3, 3});
  for (double eta : {0.0, 1.0}) {
    for (int64_t t : {40, 5}) {
      CAPTURE(eta);
      CAPTURE(t);
      SampleOptions o;
      o.sampler = SamplerType::Ddim;
      o.eta = eta;
      Rng rng(9), twin(9);
      const ReverseStep step = reverse_step(s, toy_denoiser(), x_t, t, rng, o);
      const TensorF z = twin.normal<float>(x_t.shape());
      const double abar = s.abar[t], abar_prev = s.abar[t - 1];
      const double sigma = eta * std::sqrt((1 - abar_prev) / (1 - abar) * (1 - abar / abar_prev));
      double worst = 0;
      for (int64_t i = 0; i < x_t.numel(); ++i) {
        const double x = x_t.data()[i];
        const double eps = 0.7 * std::tanh(x) + 0.01 * static_cast<double>(t);
        const double x0_hat = clip1((x - std::sqrt(1 - abar) * eps) / std::sqrt(abar));
        const double eps_of_x0 = (x - std::sqrt(abar) * x0_hat) / std::sqrt(1 - abar);  // consistent with the clip
        const double want = std::sqrt(abar_prev) * x0_hat + std::sqrt(1 - abar_prev - sigma * sigma) * eps_of_x0 +
                            (eta > 0 ? sigma * z.data()[i] : 0.0);
        worst = std::max(worst, std::abs(step.x_prev.data()[i] - want));
      }
      CHECK(worst < 2e-5);
    }
  }
}

TEST_CASE("the samplers are loops over reverse_step: the same numbers step by step, and sample() dispatches on the sampler") {
  const Schedule s = respace(linear_schedule(100), strided_timesteps(100, 10));
  for (SamplerType kind : {SamplerType::Ancestral, SamplerType::Ddim}) {
    SampleOptions o;
    o.sampler = kind;
    o.eta = 0.5;
    Rng a(3), b(3), c(3);
    const TensorF whole = sample(s, toy_denoiser(), {2, 1, 4, 4}, a, o);
    TensorF x = b.normal<float>({2, 1, 4, 4});
    for (int64_t t = s.T; t >= 1; --t) x = reverse_step(s, toy_denoiser(), x, t, b, o).x_prev;
    CHECK(whole.to_vector() == x.to_vector());
    const TensorF fixed = kind == SamplerType::Ddim ? sample_ddim(s, toy_denoiser(), {2, 1, 4, 4}, c, 0.5)
                                                    : sample_ancestral(s, toy_denoiser(), {2, 1, 4, 4}, c);
    CHECK(whole.to_vector() == fixed.to_vector());
  }
}

TEST_CASE("reverse_step rejects a step outside 1..T and a negative eta; sampler names round-trip") {
  const Schedule s = linear_schedule(40);
  Rng rng(0);
  const TensorF x = rng.normal<float>({1, 1, 2, 2});
  CHECK_THROWS(reverse_step(s, toy_denoiser(), x, 0, rng));
  CHECK_THROWS(reverse_step(s, toy_denoiser(), x, 41, rng));
  SampleOptions o;
  o.sampler = SamplerType::Ddim;
  o.eta = -1;
  CHECK_THROWS_WITH(reverse_step(s, toy_denoiser(), x, 5, rng, o), doctest::Contains("eta >= 0"));
  CHECK(sampler_type_from_string(to_string(SamplerType::Ddim)) == SamplerType::Ddim);
  CHECK(sampler_type_from_string(to_string(SamplerType::Ancestral)) == SamplerType::Ancestral);
  CHECK_THROWS_WITH(sampler_type_from_string("euler"), doctest::Contains("ancestral, ddim"));
}

TEST_CASE("default_sampler: 100 strided ancestral steps (at most T) with the posterior variance, or the learned one") {
  const DefaultSampler d = default_sampler(1000, false);
  CHECK(d.steps == 100);
  CHECK(d.options.sampler == SamplerType::Ancestral);
  CHECK(d.options.variance == VarianceType::Small);
  CHECK(d.options.clip_x0);
  CHECK(default_sampler(50, false).steps == 50);
  CHECK(default_sampler(1000, true).options.variance == VarianceType::Learned);
  CHECK_THROWS_AS(default_sampler(1, false), std::invalid_argument);
  // On the respaced schedule, the default step's sigma_t^2 is betatilde_t of that schedule, which is
  // below its beta_t ("large") at every t >= 2.
  const Schedule s = respace(linear_schedule(1000), strided_timesteps(1000, d.steps));
  for (int64_t t : {2, 50, 100}) CHECK(s.model_variance(d.options.variance, t) < s.betas[t]);
}

TEST_CASE("eps_only: the first C channels of a learned-variance output; a C-channel output is an error") {
  const Denoiser two_c = [](const TensorF& x, const std::vector<int64_t>&) {
    Shape shape = x.shape();
    shape[1] *= 2;
    TensorF out(shape);
    for (int64_t i = 0; i < out.numel(); ++i) out.data()[i] = static_cast<float>(i);
    return out;
  };
  Rng data(3);
  const TensorF x = data.normal<float>({2, 1, 2, 2});
  const TensorF eps = eps_only(two_c)(x, {1, 1});
  REQUIRE(eps.shape() == Shape{2, 1, 2, 2});
  // sample n's eps channel is elements n*8 .. n*8+3 of the [2, 2, 2, 2] output
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t k = 0; k < 4; ++k) CHECK(eps.data()[n * 4 + k] == static_cast<float>(n * 8 + k));
  CHECK_THROWS(eps_only(toy_denoiser())(x, {1, 1}));
}
