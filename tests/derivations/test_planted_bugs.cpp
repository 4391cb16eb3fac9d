// The checks of derivations/ must catch a wrong bound: a copy of ddpm/bound.cpp's variational_bound
// with one bug planted at a time (a wrong log-scale in the decoder, a sqrt dropped, a swapped
// coefficient, a factor of 2, a wrong variance, the clipping ignored) must make at least one check of
// the by-hand bound fail, by orders of magnitude; the faithful copy and the library itself pass.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "autograd/var.h"
#include "ddpm/bound.h"
#include "ddpm/gaussian.h"
#include "derivations/bound_by_hand.h"
#include "derivations/derivations.h"

using namespace dd;
using namespace dd::ddpm;
using dd::derivations::CheckRecord;

namespace {

enum class Bug { None, DecoderLogScale, SqrtDroppedInQSample, SqrtDroppedInPrior, SwappedPosteriorCoefs,
                 PriorTwice, DecoderVarianceBeta1, ClipIgnored, EpsSignInMean };

// ddpm/bound.cpp's variational_bound and bound_terms_at, copied, with `bug` planted.
BoundResult bound_copy(Bug bug, const Schedule& s0, const Denoiser& model, const Tensor<float>& x0, Rng& rng,
                       const BoundOptions& options0) {
  Schedule s = s0;
  BoundOptions options = options0;
  if (bug == Bug::SqrtDroppedInQSample) s.sqrt_abar = s.abar;  // x_t = abar_t x0 + ... (eq. 4 without its sqrt)
  if (bug == Bug::DecoderVarianceBeta1) {
    s.model_log_variance_large[1] = std::log(s.betas[1]);
    s.model_log_variance_small[1] = std::log(s.betas[1]);
  }
  if (bug == Bug::ClipIgnored) options.clip_x0 = false;
  const int64_t N = x0.size(0), D = x0.numel() / N;
  BoundResult r;
  r.T = s.T;
  r.dims = D;
  r.terms = Tensor<double>({N, s.T + 1});
  const Tensor<float> x0c = x0.contiguous();
  for (int64_t n = 0; n < N; ++n) {
    const double mean_coef = bug == Bug::SqrtDroppedInPrior ? s.abar[s.T] : s.sqrt_abar[s.T];
    double acc = 0;
    for (int64_t i = 0; i < D; ++i) acc += normal_kl(mean_coef * x0c.data()[n * D + i], s.log_one_minus_abar[s.T], 0.0, 0.0);
    r.terms.at({n, 0}) = bug == Bug::PriorTwice ? 2 * acc : acc;
  }
  NoGradGuard no_grad;
  for (int64_t t = s.T; t >= 1; --t) {
    const std::vector<int64_t> ts(N, t);
    const Tensor<float> noise = rng.normal<float>(x0.shape());
    const Tensor<float> x_t = q_sample(s, x0c, ts, noise);
    Tensor<float> out = run_denoiser(s, model, x_t, ts, options.variance);
    if (bug == Bug::EpsSignInMean)
      for (int64_t i = 0; i < out.numel(); ++i) out.data()[i] = -out.data()[i];
    const ModelPrediction<float> p = p_mean_variance(s, options.variance, out, x_t, ts, options.clip_x0);
    for (int64_t n = 0; n < N; ++n) {
      double acc = 0;
      for (int64_t i = n * D; i < (n + 1) * D; ++i) {
        if (t == 1) {
          const double log_scale = bug == Bug::DecoderLogScale ? p.log_variance.data()[i] : 0.5 * p.log_variance.data()[i];
          acc -= discretized_gaussian_log_likelihood(x0c.data()[i], p.mean.data()[i], log_scale);
        } else {
          double c1 = s.posterior_mean_coef1[t], c2 = s.posterior_mean_coef2[t];
          if (bug == Bug::SwappedPosteriorCoefs) std::swap(c1, c2);
          acc += normal_kl(c1 * x0c.data()[i] + c2 * x_t.data()[i], std::log(s.posterior_variance[t]), p.mean.data()[i],
                           p.log_variance.data()[i]);
        }
      }
      r.terms.at({n, t}) = acc;
    }
  }
  for (int64_t n = 0; n < N; ++n) {
    double total = 0;
    for (int64_t t = 0; t <= s.T; ++t) total += r.terms.at({n, t});
    r.total_nats.push_back(total);
    r.bits_per_dim.push_back(total / (static_cast<double>(D) * std::log(2.0)));
  }
  return r;
}

std::vector<CheckRecord> run_bound_checks(const derivations::BoundFunction& f) {
  derivations::Checker c("bound", false, nullptr);
  derivations::check_bound_by_hand(c, linear_schedule(10, 0.05, 0.5), f);
  return c.records();
}

derivations::BoundFunction with_bug(Bug bug) {
  return [bug](const Schedule& s, const Denoiser& m, const Tensor<float>& x0, Rng& rng, const BoundOptions& o) {
    return bound_copy(bug, s, m, x0, rng, o);
  };
}

}  // namespace

TEST_CASE("the by-hand bound passes for the library's variational_bound and for the faithful copy") {
  for (const auto& records : {run_bound_checks(variational_bound), run_bound_checks(with_bug(Bug::None))}) {
    REQUIRE(records.size() == 5);
    for (const CheckRecord& r : records) {
      CHECK_MESSAGE(r.ok, r.name << " fails (excess " << r.excess << ")");
      CHECK(r.label == derivations::Label::Independent);
    }
  }
}

TEST_CASE("each planted bug in the bound makes a by-hand check fail by more than 100 times its tolerance") {
  const std::pair<Bug, std::string> bugs[] = {
      {Bug::DecoderLogScale, "decoder given log sigma^2 as its log-scale"},
      {Bug::SqrtDroppedInQSample, "x_t = abar_t x0 + ... (sqrt dropped)"},
      {Bug::SqrtDroppedInPrior, "L_T with mean abar_T x0 (sqrt dropped)"},
      {Bug::SwappedPosteriorCoefs, "posterior_mean_coef1 and coef2 swapped"},
      {Bug::PriorTwice, "L_T counted twice (a factor of 2)"},
      {Bug::DecoderVarianceBeta1, "decoder variance beta_1 instead of betatilde_2"},
      {Bug::ClipIgnored, "x0_hat not clipped when asked to"},
      {Bug::EpsSignInMean, "eps_theta with the wrong sign in the mean"},
  };
  for (const auto& [bug, what] : bugs) {
    const std::vector<CheckRecord> records = run_bound_checks(with_bug(bug));
    double worst = 0;
    std::string failing;
    for (const CheckRecord& r : records)
      if (!r.ok) {
        worst = std::max(worst, r.excess);
        failing += " " + r.name;
      }
    MESSAGE(what << ": fails" << failing << ", worst " << worst << "x its tolerance");
    CHECK_MESSAGE(!failing.empty(), what << ": no check failed");
    CHECK_MESSAGE(worst > 100, what << ": fails only by " << worst << "x its tolerance");
  }
}

TEST_CASE("every check of derivations/ passes and carries a label") {
  const std::vector<CheckRecord> records = derivations::run_checks("", false, nullptr);
  CHECK(records.size() >= 60);
  int independent = 0;
  for (const CheckRecord& r : records) {
    CHECK_MESSAGE(r.ok, r.name << " fails");
    independent += r.label == derivations::Label::Independent;
  }
  CHECK(independent > static_cast<int>(records.size()) / 2);
}
