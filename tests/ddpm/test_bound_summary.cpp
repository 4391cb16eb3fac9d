// ddpm::BoundAccumulator: the bound's summary over a test set evaluated in batches (what apps/nll
// prints), against the per-image results it summarises, computed again here.
#include <doctest/doctest.h>

#include <cmath>

#include "ddpm/bound.h"
#include "tensor/random.h"

using namespace dd;
using namespace dd::ddpm;

namespace {
Denoiser shrinking_denoiser() {  // eps = 0.5 x_t: a poor but fixed model, so every term is non-trivial
  return [](const TensorF& x, const std::vector<int64_t>&) {
    TensorF out(x.shape());
    for (int64_t i = 0; i < x.numel(); ++i) out.data()[i] = 0.5f * x.data()[i];
    return out;
  };
}
TensorF digits(int64_t n, uint64_t seed) {  // on the 8-bit grid, as the discretized decoder expects
  Rng rng(seed);
  TensorF x = rng.uniform<float>({n, 1, 2, 3}, 0.0f, 255.0f);
  for (int64_t i = 0; i < x.numel(); ++i) x.data()[i] = std::round(x.data()[i]) * 2.0f / 255.0f - 1.0f;
  return x;
}
}  // namespace

TEST_CASE("BoundAccumulator: mean, standard error and parts over batches equal the per-image results") {
  const Schedule s = linear_schedule(40);
  Rng r1(5), r2(6);
  const BoundResult a = variational_bound(s, shrinking_denoiser(), digits(3, 1), r1);
  const BoundResult b = variational_bound(s, shrinking_denoiser(), digits(2, 2), r2);
  BoundAccumulator acc;
  acc.add(a);
  acc.add(b);
  const BoundSummary sum = acc.summary();
  CHECK(sum.n == 5);
  CHECK(sum.T == 40);
  const double D = 6, to_bpd = 1.0 / (D * std::log(2.0));
  std::vector<double> bpd;
  double prior = 0, decoder = 0;
  for (const BoundResult* r : {&a, &b})
    for (size_t i = 0; i < r->total_nats.size(); ++i) {
      bpd.push_back(r->total_nats[i] * to_bpd);
      prior += r->prior_nats[i] * to_bpd / 5;
      decoder += r->decoder_nats[i] * to_bpd / 5;
    }
  double mean = 0;
  for (double v : bpd) mean += v / 5;
  double ss = 0;
  for (double v : bpd) ss += (v - mean) * (v - mean);
  CHECK(sum.bits_per_dim == doctest::Approx(mean).epsilon(1e-12));
  CHECK(sum.stderr_bits_per_dim == doctest::Approx(std::sqrt(ss / 4) / std::sqrt(5.0)).epsilon(1e-12));
  CHECK(sum.prior_bits_per_dim == doctest::Approx(prior).epsilon(1e-12));
  CHECK(sum.decoder_bits_per_dim == doctest::Approx(decoder).epsilon(1e-12));
  CHECK(sum.diffusion_bits_per_dim == doctest::Approx(mean - prior - decoder).epsilon(1e-12));
  // Paper indexing: k = 0 the decoder, k = T the prior, and the k's sum to the bound.
  REQUIRE(sum.mean_term_bits_per_dim.size() == 41);
  CHECK(sum.mean_term_bits_per_dim[0] == doctest::Approx(decoder).epsilon(1e-12));
  CHECK(sum.mean_term_bits_per_dim[40] == doctest::Approx(prior).epsilon(1e-12));
  double total = 0;
  for (double v : sum.mean_term_bits_per_dim) total += v;
  CHECK(total == doctest::Approx(mean).epsilon(1e-12));
  // L_k (1 <= k < T) is the KL at step k + 1: for one image it is bound_terms_at(t = k + 1) with the same x_t.
  const BoundResult one = [&] {
    Rng r(11);
    return variational_bound(s, shrinking_denoiser(), digits(2, 3), r);
  }();
  BoundAccumulator single;
  single.add(one);
  const BoundSummary s1 = single.summary();
  for (int64_t k = 1; k < 40; ++k)
    CHECK(s1.mean_term_bits_per_dim[k] ==
          doctest::Approx((one.terms.at({0, k + 1}) + one.terms.at({1, k + 1})) / 2 * to_bpd).epsilon(1e-12));
}

TEST_CASE("BoundAccumulator refuses one image (no standard error) and batches of another T") {
  const Schedule s10 = linear_schedule(40), s5 = linear_schedule(30);
  Rng r(1);
  BoundAccumulator acc;
  acc.add(variational_bound(s10, shrinking_denoiser(), digits(1, 1), r));
  CHECK_THROWS_WITH(acc.summary(), doctest::Contains("at least 2 images"));
  CHECK_THROWS_WITH(acc.add(variational_bound(s5, shrinking_denoiser(), digits(1, 1), r)), doctest::Contains("T = 40"));
}
