// eqs. (11), (12), (14) and Algorithms 1 and 2: the eps-parameterization, the losses, training, sampling.
#include <algorithm>
#include <cmath>
#include <vector>

#include "derivations/checks.h"
#include "autograd/ops.h"
#include "ddpm/diffusion.h"
#include "ddpm/gaussian.h"
#include "ddpm/losses.h"
#include "ddpm/sample.h"

namespace dd::derivations {

using namespace dd::ddpm;

void check_eq11(Checker& c, const Schedule& s) {
  c.header("11", "eq. (11): mu_theta(x_t, t) = (x_t - beta_t / sqrt(1 - abar_t) eps_theta(x_t, t)) / sqrt(alpha_t)");
  std::vector<double> lib, hand, route7;
  const std::vector<double> x0 = {-0.6, -0.2, 0.3, 0.7};
  for (int64_t t = 1; t <= kT; ++t) {
    const TensorD xt = q_sample(s, image_of(x0), {t}, image_of(kEps));
    std::vector<double> guess(4);
    for (int i = 0; i < 4; ++i) guess[i] = kEps[i] + 0.02 * kGuess[i];  // nearly right: x0_hat stays in [-1, 1]
    const auto a = p_mean_variance(s, VarianceType::Large, image_of(guess), xt, {t}, false).mean.to_vector();
    // the same mean by the other route: eq. (7) at x0_hat (the clip_x0 path; nothing is clipped here)
    const auto b = p_mean_variance(s, VarianceType::Large, image_of(guess), xt, {t}, true).mean.to_vector();
    lib.insert(lib.end(), a.begin(), a.end());
    route7.insert(route7.end(), b.begin(), b.end());
    for (int i = 0; i < 4; ++i)
      hand.push_back((xt.data()[i] - beta_hand(t) / std::sqrt(1 - abar_hand(t)) * guess[i]) / std::sqrt(alpha_hand(t)));
  }
  c.equal("eq11.by_hand", Label::Independent, "p_mean_variance (eq. 11 route) vs the formula by hand, t = 1..10", lib, hand, 1e-12, "", {{"t", 1, 10}, {"pixel", 0, 4}});
  c.equal("eq11.vs_eq7_route", Label::Consistency, "eq. (11) route vs eq. (7) at x0_hat (clip route), t = 1..10", lib, route7, 1e-12, "", {{"t", 1, 10}, {"pixel", 0, 4}});
}

void check_eq12(Checker& c, const Schedule& s) {
  c.header("12", "eq. (12): L_{t-1} - C = beta_t^2 / (2 sigma_t^2 alpha_t (1 - abar_t)) ||eps - eps_theta||^2");
  c.say("mutilde - mu_theta = beta_t / (sqrt(alpha_t) sqrt(1 - abar_t)) (eps_theta - eps) by eqs. (10) and (11);");
  c.say("square, divide by 2 sigma_t^2 (eq. 8). With sigma_t^2 = betatilde_t: beta_t / (2 alpha_t (1 - abar_{t-1})).");
  std::vector<double> ratio_s, lib_s, hand_s, ratio_l, lib_l;
  const double e2 = sq_err(kEps, kGuess);
  for (int64_t t = 2; t <= kT; ++t) {
    ratio_s.push_back((kl_sum(s, t, VarianceType::Small, kGuess) - kl_sum(s, t, VarianceType::Small, kEps)) / e2);
    lib_s.push_back(s.eps_weight_small[t]);
    hand_s.push_back(beta_hand(t) / (2 * alpha_hand(t) * (1 - abar_hand(t - 1))));
    ratio_l.push_back((kl_sum(s, t, VarianceType::Large, kGuess) - kl_sum(s, t, VarianceType::Large, kEps)) / e2);
    lib_l.push_back(s.eps_weight_large[t]);
  }
  c.equal("eq12.weight_small", Label::Consistency, "(KL(guess) - KL(exact eps)) / ||eps - guess||^2 vs eps_weight_small, t = 2..10",
          ratio_s, lib_s, 1e-12, "", {{"t", 2, 9}});
  c.equal("eq12.weight_small_hand", Label::Independent, "eps_weight_small vs beta_t / (2 alpha_t (1 - abar_{t-1})) by hand", lib_s,
          hand_s, 1e-13, "", {{"t", 2, 9}});
  c.equal("eq12.weight_large", Label::Consistency, "the same KL ratio with sigma^2 = beta_t vs eps_weight_large", ratio_l, lib_l, 1e-12, "", {{"t", 2, 9}});
  // the training loss's KL path (losses.cpp, in bits/dim) against the weighted squared error
  std::vector<double> vb, want;
  const TensorD guess = image_of(kGuess);
  TrainDenoiserT<double> model = [&](const VarD&, const std::vector<int64_t>&) { return VarD(guess, false); };
  LossOptions o;
  o.type = LossType::Vlb;
  o.variance = VarianceType::Small;
  for (int64_t t = 2; t <= kT; ++t) {
    const TrainingLossT<double> l = training_loss(s, model, image_of(kX0), {t}, image_of(kEps), {}, o);
    vb.push_back(l.vb[0] * 4 * std::log(2.0));   // bits/dim -> nats summed over the 4 pixels
    want.push_back(s.eps_weight_small[t] * e2);  // C = 0 for sigma^2 = betatilde
  }
  c.equal("eq12.training_loss_kl", Label::Consistency, "training_loss(kl, small) vb_t in nats vs weight * ||eps - guess||^2", vb, want,
          1e-12, "", {{"t", 2, 9}});
}

void check_eq14(Checker& c, const Schedule& s) {
  c.header("14", "eq. (14): L_simple = E ||eps - eps_theta(sqrt(abar_t) x0 + sqrt(1 - abar_t) eps, t)||^2 (mean over pixels)");
  const TensorD guess = image_of(kGuess);
  TrainDenoiserT<double> fixed = [&](const VarD&, const std::vector<int64_t>&) { return VarD(guess, false); };
  const TrainingLossT<double> l = training_loss(s, fixed, image_of(kX0), {4}, image_of(kEps));
  c.equal("eq14.mean_over_pixels", Label::Independent, "training_loss(simple) vs mean_i (eps_i - eps_theta_i)^2 by hand", l.loss.item(),
          sq_err(kEps, kGuess) / 4, 1e-15);
  // the network is handed the x_t of eq. (4): a network that returns its input exposes it
  TrainDenoiserT<double> echo = [](const VarD& x, const std::vector<int64_t>&) { return x; };
  const TrainingLossT<double> le = training_loss(s, echo, image_of(kX0), {4}, image_of(kEps));
  double want = 0;
  for (int i = 0; i < 4; ++i) {
    const double xt = std::sqrt(abar_hand(4)) * kX0[i] + std::sqrt(1 - abar_hand(4)) * kEps[i];
    want += (kEps[i] - xt) * (kEps[i] - xt) / 4;
  }
  c.equal("eq14.network_input", Label::Independent, "L_simple with eps_theta(x_t) = x_t vs by hand (checks the x_t of eq. 4)",
          le.loss.item(), want, 1e-15);
}

void check_alg1(Checker& c, const Schedule& s) {
  c.header("alg1", "Algorithm 1: x0 ~ data, t ~ U{1..T}, eps ~ N(0, I), gradient step on eq. (14)");
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
    best.push_back(linear_net_coef(t));
  }
  c.equal("alg1.sgd_reaches_minimizer", Label::Independent, "w_t after 1500 SGD steps (mean of the last half) vs closed form, t = 1..10",
          got, best, 0.02, "SGD noise ~0.005", {{"t", 1, 10}});
}

void check_alg2(Checker& c, const Schedule& s) {
  c.header("alg2", "Algorithm 2: x_T ~ N(0, I); x_{t-1} = mu_theta(x_t, t) + sigma_t z (z = 0 at t = 1)");
  // one-point data: with the exact eps_theta the last step returns x0
  const std::vector<double> x0 = {-0.9, -0.1, 0.4, 0.8};
  Denoiser exact = [&](const TensorF& x_t, const std::vector<int64_t>& t) {
    TensorF out(x_t.shape());
    for (int64_t n = 0; n < x_t.size(0); ++n)
      for (int i = 0; i < 4; ++i)
        out.data()[n * 4 + i] = static_cast<float>((x_t.data()[n * 4 + i] - std::sqrt(abar_hand(t[n])) * x0[i]) /
                                                   std::sqrt(1 - abar_hand(t[n])));
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
  c.equal("alg2.exact_eps_returns_x0", Label::Independent, "samples with the exact eps of one-point data vs x0", got, want, 1e-5,
          "float32", {{"sample", 0, 3}, {"pixel", 0, 4}});
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
  for (int64_t t = kT; t >= 2; --t) v = linear_mean_coef(t) * linear_mean_coef(t) * v + sigma2_large_hand(t);
  const Stats s1 = stats(x1);
  c.equal("alg2.var_x1", Label::Independent, "Var(x_1) over 20000 chains vs the recursion", s1.var, v, kSE * s1.se_var, "5 SE");
  const Stats s0 = stats(std::vector<double>(samples.data(), samples.data() + samples.numel()));
  c.equal("alg2.var_x0", Label::Independent, "Var(output) vs A_1^2 Var(x_1) (no noise at t = 1)", s0.var, linear_mean_coef(1) * linear_mean_coef(1) * v,
          kSE * s0.se_var, "5 SE");
}

}  // namespace dd::derivations
