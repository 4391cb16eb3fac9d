#include "derivations/bound_by_hand.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "derivations/toy.h"

namespace dd::derivations {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNetSlope = 0.3;  // eps_theta(x_t, t) = 0.3 x_t
const std::vector<int> kPixelLevels[2] = {{0, 90, 170, 255}, {255, 3, 128, 0}};

// Phi(z), the standard normal CDF, from erfc (accurate for the toy's moderate z)
double normal_cdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

// KL(N(m1, v1) || N(m2, v2)) as cross-entropy minus entropy:
// E_{N(m1,v1)}[-log N(x; m2, v2)] = 0.5 log(2 pi v2) + (v1 + (m1 - m2)^2) / (2 v2),  H = 0.5 log(2 pi e v1)
double kl_by_hand(double m1, double v1, double m2, double v2) {
  const double cross = 0.5 * std::log(2 * kPi * v2) + (v1 + (m1 - m2) * (m1 - m2)) / (2 * v2);
  const double entropy = 0.5 * std::log(2 * kPi * std::exp(1.0) * v1);
  return cross - entropy;
}

struct Config {
  ddpm::VarianceType variance;
  bool clip;
};

// sigma_t^2 by hand: 'large' beta_t, 'small' betatilde_t, both betatilde_2 at t = 1 (the decoder's)
double sigma2_hand(ddpm::VarianceType v, int64_t t) {
  if (t == 1) return betatilde_hand(2);
  return v == ddpm::VarianceType::Large ? beta_hand(t) : betatilde_hand(t);
}

// mu_theta(x_t, t) by hand: eq. (11), or with clipping eq. (7) at x0_hat clipped to [-1, 1]
double model_mean_hand(int64_t t, double xt, double eps_theta, bool clip) {
  if (!clip) return (xt - beta_hand(t) / std::sqrt(1 - abar_hand(t)) * eps_theta) / std::sqrt(alpha_hand(t));
  const double x0_hat = (xt - std::sqrt(1 - abar_hand(t)) * eps_theta) / std::sqrt(abar_hand(t));
  return mutilde_hand(t, std::clamp(x0_hat, -1.0, 1.0), xt);
}

// eq. (13) for one pixel by hand: the Gaussian mass of the bin [x - 1/255, x + 1/255], the edge
// bins x = -1 and x = 1 reaching to -inf and +inf
double decoder_nats_hand(int level, double x, double mean, double var) {
  const double sd = std::sqrt(var);
  const double lo = level == 0 ? -kInf : (x - 1.0 / 255 - mean) / sd;
  const double hi = level == 255 ? kInf : (x + 1.0 / 255 - mean) / sd;
  return -std::log(normal_cdf(hi) - normal_cdf(lo));
}

}  // namespace

void check_bound_by_hand(Checker& c, const ddpm::Schedule& s, const BoundFunction& bound) {
  c.header("bound", "the whole bound by hand: L_T + sum_t L_{t-1} + L_0 (discretized), bits/dim, against the library");
  c.say("Replay the bound's noise, form x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps (eq. 4), then by hand:");
  c.say("L_T = KL(N(sqrt(abar_T) x0, 1 - abar_T) || N(0, 1)), L_{t-1} = KL(N(mutilde_t, betatilde_t) || N(mu_theta, sigma_t^2)),");
  c.say("L_0 = -log of the bin mass of N(mu_theta(x_1, 1), sigma_1^2) (eq. 13); bits/dim = sum / (4 ln 2).");
  const int64_t N = 2, D = 4;
  std::vector<float> pixels;
  std::vector<int> levels;
  for (const auto& image : kPixelLevels)
    for (int k : image) {
      levels.push_back(k);
      pixels.push_back(static_cast<float>(2.0 * k / 255 - 1));  // the float32 the bound is given
    }
  const Tensor<float> x0 = Tensor<float>::from({N, 1, 1, D}, pixels);
  std::vector<double> xt_lib, xt_hand, prior_lib, prior_hand, kl_lib, kl_hand, dec_lib, dec_hand, bpd_lib, bpd_hand;
  const Config configs[2] = {{ddpm::VarianceType::Large, true}, {ddpm::VarianceType::Small, false}};
  for (const Config& cfg : configs) {
    // the network, recording what it was given and what it answered, per t
    std::vector<std::vector<float>> seen_xt(kT + 1), answered(kT + 1);
    ddpm::Denoiser net = [&](const Tensor<float>& x_t, const std::vector<int64_t>& t) {
      Tensor<float> out(x_t.shape());
      for (int64_t i = 0; i < x_t.numel(); ++i) out.data()[i] = static_cast<float>(kNetSlope * x_t.data()[i]);
      seen_xt[t[0]].assign(x_t.data(), x_t.data() + x_t.numel());
      answered[t[0]].assign(out.data(), out.data() + out.numel());
      return out;
    };
    ddpm::BoundOptions o;
    o.variance = cfg.variance;
    o.clip_x0 = cfg.clip;
    o.decoder = ddpm::DecoderType::Discretized;
    Rng rng(21), replay(21);
    const ddpm::BoundResult r = bound(s, net, x0, rng, o);
    std::vector<std::vector<double>> eps(kT + 1);
    for (int64_t t = kT; t >= 1; --t) {
      const Tensor<float> e = replay.normal<float>(x0.shape());
      eps[t].assign(e.data(), e.data() + e.numel());
    }
    for (int64_t n = 0; n < N; ++n) {
      double prior = 0, total = 0;
      for (int64_t i = 0; i < D; ++i) {
        const double x = pixels[n * D + i];
        prior += kl_by_hand(std::sqrt(abar_hand(kT)) * x, 1 - abar_hand(kT), 0.0, 1.0);
      }
      prior_hand.push_back(prior);
      prior_lib.push_back(r.terms.data()[n * (kT + 1) + 0]);
      total += prior;
      for (int64_t t = 1; t <= kT; ++t) {
        double term = 0;
        for (int64_t i = 0; i < D; ++i) {
          const int64_t k = n * D + i;
          const double x = pixels[k];
          xt_hand.push_back(std::sqrt(abar_hand(t)) * x + std::sqrt(1 - abar_hand(t)) * eps[t][k]);
          xt_lib.push_back(seen_xt[t].empty() ? NAN : seen_xt[t][k]);
          // the rest from the x_t the network saw (float32) and its answer
          const double xt = seen_xt[t].empty() ? NAN : seen_xt[t][k], out = answered[t].empty() ? NAN : answered[t][k];
          const double mu = model_mean_hand(t, xt, out, cfg.clip), var = sigma2_hand(cfg.variance, t);
          term += t == 1 ? decoder_nats_hand(levels[k], x, mu, var)
                         : kl_by_hand(mutilde_hand(t, x, xt), betatilde_hand(t), mu, var);
        }
        total += term;
        (t == 1 ? dec_hand : kl_hand).push_back(term);
        (t == 1 ? dec_lib : kl_lib).push_back(r.terms.data()[n * (kT + 1) + t]);
      }
      bpd_hand.push_back(total / (D * std::log(2.0)));
      bpd_lib.push_back(n < static_cast<int64_t>(r.bits_per_dim.size()) ? r.bits_per_dim[n] : NAN);
    }
  }
  const Axis cfg_axis{"config (0 = large clipped, 1 = small)", 0, 2}, img_axis{"image", 0, N};
  // float32: x_t is formed in float (|x_t| < 5, rounding 3e-7); the model's mean and log-variance are
  // float32 too, which moves a term by at most ~1e-6 nats here (measured worst 7e-7): tolerance 1e-5,
  // while a wrong variance, scale, sign or factor of 2 moves a term by 1e-2 nats or more.
  c.equal("bound.x_t", Label::Independent, "x_t the network saw vs sqrt(abar_t) x0 + sqrt(1 - abar_t) eps by hand",
          xt_lib, xt_hand, 1e-6, "float32 x_t", {cfg_axis, img_axis, {"t", 1, kT}, {"pixel", 0, D}});
  c.equal("bound.prior", Label::Independent, "L_T per image vs KL(N(sqrt(abar_T) x0, 1 - abar_T) || N(0, 1)) by hand",
          prior_lib, prior_hand, 1e-12, "float64", {cfg_axis, img_axis});
  c.equal("bound.kl_terms", Label::Independent, "L_{t-1} per image vs the Gaussian KL by hand, t = 2..10", kl_lib,
          kl_hand, 1e-5, "float32 model mean", {cfg_axis, img_axis, {"t", 2, kT - 1}});
  c.equal("bound.decoder", Label::Independent, "L_0 per image vs -log of the eq. (13) bin masses by hand (erfc)",
          dec_lib, dec_hand, 1e-5, "float32 model mean", {cfg_axis, img_axis});
  c.equal("bound.bits_per_dim", Label::Independent, "bits/dim per image vs (L_T + sum L_{t-1} + L_0) / (4 ln 2) by hand",
          bpd_lib, bpd_hand, 1e-5, "float32 model mean", {cfg_axis, img_axis});
  if (c.verbose()) {
    c.note(format("bits/dim by hand: large clipped %.6f %.6f, small unclipped %.6f %.6f", bpd_hand[0], bpd_hand[1],
                  bpd_hand[2], bpd_hand[3]));
  }
}

}  // namespace dd::derivations
