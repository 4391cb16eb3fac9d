// The steps the seed notes spend pages on, each with numbers: the Gaussian lemmas, why the reverse
// step is nearly Gaussian for small beta, the expectation over q(x_t|x0), the bound with H(x0)
// (eqs. 23-26), maximum likelihood as KL(p_data || p_theta), the VAE view, L_simple as denoising
// score matching, the score / Tweedie and SNR views, progressive lossy decoding.
#include <algorithm>
#include <cmath>
#include <vector>

#include "autograd/var.h"
#include "ddpm/bound.h"
#include "ddpm/diffusion.h"
#include "ddpm/gaussian.h"
#include "ddpm/losses.h"
#include "derivations/checks.h"

namespace dd::derivations {

using namespace dd::ddpm;

namespace {
// Var(x_t) when x0 ~ N(0, s^2): abar_t s^2 + 1 - abar_t
double marginal_var(int64_t t) { return abar_hand(t) * kDataStd * kDataStd + 1 - abar_hand(t); }
}  // namespace

void check_lemmas(Checker& c) {
  c.header("lemmas", "Gaussian lemmas: linear maps and sums of Gaussians, products of densities (completing the square)");
  c.say("x ~ N(m, v) => a x + b ~ N(a m + b, a^2 v); x, y independent Gaussians => x + y ~ N(mx + my, vx + vy);");
  c.say("N(x; m1, v1) N(x; m2, v2) = N(m1; m2, v1 + v2) N(x; m, v), 1/v = 1/v1 + 1/v2, m = v (m1/v1 + m2/v2).");
  Rng rng(30);
  const std::vector<double> z1 = rng.normal<double>({kMC}).to_vector(), z2 = rng.normal<double>({kMC}).to_vector();
  const double a = 0.8, b = 0.3, m1 = 0.5, v1 = 0.2, m2 = -1.0, v2 = 0.7;
  std::vector<double> sum(kMC);
  for (int64_t m = 0; m < kMC; ++m) sum[m] = a * (m1 + std::sqrt(v1) * z1[m]) + b + (m2 + std::sqrt(v2) * z2[m]);
  const Stats st = stats(sum);
  c.equal("lemma.sum_mean", Label::Independent, "mean of a x + b + y over 20000 draws vs a m1 + b + m2", st.mean,
          a * m1 + b + m2, kSE * st.se_mean, "5 SE");
  c.equal("lemma.sum_var", Label::Independent, "variance of a x + b + y vs a^2 v1 + v2", st.var, a * a * v1 + v2,
          kSE * st.se_var, "5 SE");
  std::vector<double> lhs, rhs;
  const double v = 1 / (1 / v1 + 1 / v2), m = v * (m1 / v1 + m2 / v2);
  for (int k = -6; k <= 6; ++k) {
    const double x = 0.5 * k;
    lhs.push_back(log_normal(x, m1, v1) + log_normal(x, m2, v2));
    rhs.push_back(log_normal(m1, m2, v1 + v2) + log_normal(x, m, v));
  }
  c.equal("lemma.product_of_densities", Label::Independent, "log N(x; m1, v1) + log N(x; m2, v2) vs the product formula",
          lhs, rhs, 1e-12, "", {{"x = k/2, k", -6, 13}});
}

void check_views(Checker& c, const Schedule& s) {
  c.header("views", "the reverse step for small beta, the bound with H(x0), ML as KL, VAE, score, SNR, progressive decoding");

  // ---- q(x_{t-1}|x_t) is nearly Gaussian when beta_t is small ----
  // Binary data x0 = -1 or 1 (equally likely), so q(x_{t-1}) is a two-Gaussian mixture; at a fixed
  // abar_{t-1} = 0.5 and x_t = 0.4, q(x_{t-1}|x_t) ~ q(x_t|x_{t-1}) q(x_{t-1}) on a grid, against the
  // Gaussian with its mean and variance: the KL shrinks like beta^2.
  c.say("Binary data; abar_{t-1} = 0.5; q(x_{t-1}|x_t = 0.4) on a grid vs its moment-matched Gaussian, beta = 0.5, 0.05, 0.005.");
  std::vector<double> kls;
  for (double beta : {0.5, 0.05, 0.005}) {
    const double ab = 0.5, xt = 0.4, h = 1e-4;
    std::vector<double> xs, logw;
    for (double x = -6; x <= 6; x += h) {
      const double prior = std::log(0.5 * std::exp(log_normal(x, -std::sqrt(ab), 1 - ab)) +
                                    0.5 * std::exp(log_normal(x, std::sqrt(ab), 1 - ab)));
      xs.push_back(x);
      logw.push_back(log_normal(xt, std::sqrt(1 - beta) * x, beta) + prior);
    }
    const double mx = *std::max_element(logw.begin(), logw.end());
    double z = 0, mean = 0, var = 0;
    for (size_t i = 0; i < xs.size(); ++i) z += std::exp(logw[i] - mx) * h;
    for (size_t i = 0; i < xs.size(); ++i) mean += xs[i] * std::exp(logw[i] - mx) * h / z;
    for (size_t i = 0; i < xs.size(); ++i) var += (xs[i] - mean) * (xs[i] - mean) * std::exp(logw[i] - mx) * h / z;
    double kl = 0;
    for (size_t i = 0; i < xs.size(); ++i) {
      const double lp = logw[i] - mx - std::log(z);
      kl += std::exp(lp) * (lp - log_normal(xs[i], mean, var)) * h;
    }
    kls.push_back(kl);
    c.say(format("beta = %g: mean %.5f, variance %.6f, KL to the Gaussian %.3g", beta, mean, var, kl));
  }
  c.at_most("view.small_beta_gaussian", Label::Independent, "KL(q(x_{t-1}|x_t) || Gaussian) at beta = 0.005 <= 1/100 of it at 0.05",
            kls[2], kls[1] / 100);
  c.at_most("view.large_beta_not_gaussian", Label::Independent, "100 x the KL at beta = 0.05 <= the KL at beta = 0.5", 100 * kls[1],
            kls[0]);

  // ---- the expectation over q(x_{1:T}|x0) of a term of x_t is one over q(x_t|x0) ----
  // The eq. (3) paths' L_{t-1} bracket at t = 5 (a function of x_{t-1}, x_t) averaged over the paths,
  // against the KL at x_t integrated over q(x_t|x0) by quadrature.
  {
    Rng rng(31);
    const double x0 = 0.5;
    const int64_t t = 5;
    const auto x = forward_paths(x0, kMC, rng);
    std::vector<double> bracket(kMC);
    for (int64_t m = 0; m < kMC; ++m)
      bracket[m] = log_normal(x[t - 1][m], mutilde_hand(t, x0, x[t][m]), betatilde_hand(t)) -
                   log_normal(x[t - 1][m], linear_mean_coef(t) * x[t][m], sigma2_large_hand(t));
    const Stats st = stats(bracket);
    double quad = 0;
    const double mt = std::sqrt(abar_hand(t)) * x0, vt = 1 - abar_hand(t), h = 1e-3;
    for (double u = -10; u <= 10; u += h) {
      const double xt = mt + std::sqrt(vt) * u, d = mutilde_hand(t, x0, xt) - linear_mean_coef(t) * xt;
      const double kl = 0.5 * (std::log(sigma2_large_hand(t) / betatilde_hand(t)) + betatilde_hand(t) / sigma2_large_hand(t) +
                               d * d / sigma2_large_hand(t) - 1);
      quad += kl * std::exp(log_normal(u, 0, 1)) * h;
    }
    c.equal("view.marginal_expectation", Label::Independent,
            "E over 20000 paths of log q(x_4|x_5,x0)/p(x_4|x_5) vs the KL integrated over q(x_5|x0) alone", st.mean, quad,
            kSE * st.se_mean, "5 SE");
  }

  // ---- the bound with H(x0), paper eqs. (23)-(26), for Gaussian data ----
  // x0 ~ N(0, s^2), the linear network (exact E[eps|x_t]), sigma 'large', continuous decoder:
  // L = KL(q(x_T) || p(x_T)) + sum_t E KL(q(x_{t-1}|x_t) || p_theta(x_{t-1}|x_t)) + H(x0), every q Gaussian.
  {
    double l26 = 0.5 * (marginal_var(kT) - 1 - std::log(marginal_var(kT)));  // KL(N(0, v_T) || N(0, 1))
    for (int64_t t = 1; t <= kT; ++t) {
      const double vprev = t == 1 ? kDataStd * kDataStd : marginal_var(t - 1), vt = marginal_var(t);
      const double w = vprev - alpha_hand(t) * vprev * vprev / vt;  // Var(x_{t-1} | x_t); its mean is the model's
      l26 += 0.5 * (std::log(sigma2_large_hand(t) / w) + w / sigma2_large_hand(t) - 1);
    }
    l26 += 0.5 * std::log(2 * kPi * std::exp(1.0) * kDataStd * kDataStd);  // H(x0)
    Rng rng(32), data(33);
    const TensorF x0 = data.normal<float>({kMC, 1, 1, 1}, 0.f, static_cast<float>(kDataStd));
    BoundOptions o;
    o.variance = VarianceType::Large;
    o.clip_x0 = false;
    o.decoder = DecoderType::ContinuousGaussian;
    const BoundResult r = variational_bound(s, linear_denoiser(), x0, rng, o);
    const Stats st = stats(r.total_nats);
    c.equal("view.bound_with_entropy", Label::Independent,
            "mean of variational_bound over x0 ~ N(0, 0.25) vs eq. (26) by hand: KL_T + sum E KL_t + H(x0)", st.mean, l26,
            kSE * st.se_mean, "5 SE");
  }

  // ---- maximum likelihood is minimising KL(p_data || p_theta) ----
  {
    Rng rng(34);
    const double md = 0.3, vd = 0.25, mt = -0.2, vt = 0.6;  // p_data, p_theta
    const std::vector<double> z = rng.normal<double>({kMC}).to_vector();
    std::vector<double> nll(kMC);
    for (int64_t m = 0; m < kMC; ++m) nll[m] = -log_normal(md + std::sqrt(vd) * z[m], mt, vt);
    const Stats st = stats(nll);
    const double entropy = 0.5 * std::log(2 * kPi * std::exp(1.0) * vd);
    c.equal("view.ml_is_kl", Label::Independent, "E_data[-log p_theta] over 20000 draws vs H(p_data) + normal_kl(p_data, p_theta)",
            st.mean, entropy + normal_kl(md, std::log(vd), mt, std::log(vt)), kSE * st.se_mean, "5 SE");
  }

  // ---- the VAE view: log p(x) - ELBO = KL(q(z|x) || p(z|x)) ----
  // z ~ N(0, 1), x | z ~ N(a z, n2); an encoder q(z|x) = N(mq, vq) that is not the posterior.
  {
    const double a = 1.5, n2 = 0.3, x = 0.8, mq = 0.2, vq = 0.5;
    const double log_px = log_normal(x, 0, a * a + n2);
    // ELBO = E_q[log p(x|z)] - KL(q || N(0, 1)), by hand
    const double recon = -0.5 * std::log(2 * kPi * n2) - ((x - a * mq) * (x - a * mq) + a * a * vq) / (2 * n2);
    const double elbo = recon - 0.5 * (vq + mq * mq - 1 - std::log(vq));
    const double post_m = a * x / (a * a + n2), post_v = n2 / (a * a + n2);
    c.equal("view.vae_gap", Label::Independent, "log p(x) - ELBO vs normal_kl(q(z|x), p(z|x)) for a linear-Gaussian VAE",
            log_px - elbo, normal_kl(mq, std::log(vq), post_m, std::log(post_v)), 1e-12);
  }

  // ---- L_simple as denoising score matching ----
  // grad_x log q(x_t|x0) = -(x_t - sqrt(abar) x0)/(1 - abar) = -eps/sqrt(1 - abar); with
  // s_theta = -eps_theta/sqrt(1 - abar): ||eps - eps_theta||^2 = (1 - abar) ||s_theta - grad log q||^2.
  {
    const int64_t t = 4;
    const TensorD guess = image_of(kGuess);
    TrainDenoiserT<double> fixed = [&](const VarD&, const std::vector<int64_t>&) { return VarD(guess, false); };
    const TrainingLossT<double> l = training_loss(s, fixed, image_of(kX0), {t}, image_of(kEps));
    double dsm = 0;
    for (size_t i = 0; i < kX0.size(); ++i) {
      const double xt = std::sqrt(abar_hand(t)) * kX0[i] + std::sqrt(1 - abar_hand(t)) * kEps[i], h = 1e-5;
      const double score = (log_normal(xt + h, std::sqrt(abar_hand(t)) * kX0[i], 1 - abar_hand(t)) -
                            log_normal(xt - h, std::sqrt(abar_hand(t)) * kX0[i], 1 - abar_hand(t))) / (2 * h);
      const double s_theta = -kGuess[i] / std::sqrt(1 - abar_hand(t));
      dsm += (1 - abar_hand(t)) * (s_theta - score) * (s_theta - score) / 4;
    }
    c.equal("view.dsm_identity", Label::Independent,
            "L_simple (training_loss) vs (1 - abar_t) mean ||s_theta - grad log q(x_t|x0)||^2, gradient by differences", l.loss.item(),
            dsm, 1e-8, "central differences");
  }

  // ---- the score of q(x_t) is -E[eps | x_t] / sqrt(1 - abar_t) (Tweedie) ----
  // Gaussian data: q(x_t) = N(0, v_t). The slope of E[eps | x_t] in x_t by regression over draws,
  // times -1/sqrt(1 - abar_t), against the slope of grad log q(x_t) by differences.
  {
    std::vector<double> got, want, tw_lib, tw_hand;
    double worst_se = 0;
    Rng rng(35);
    for (int64_t t = 1; t <= kT; ++t) {
      const std::vector<double> x0 = rng.normal<double>({kMC}, 0.0, kDataStd).to_vector(), e = rng.normal<double>({kMC}).to_vector();
      double sxe = 0, sxx = 0;
      for (int64_t m = 0; m < kMC; ++m) {
        const double xt = std::sqrt(abar_hand(t)) * x0[m] + std::sqrt(1 - abar_hand(t)) * e[m];
        sxe += xt * e[m], sxx += xt * xt;
      }
      const double slope = sxe / sxx;
      double rss = 0;
      for (int64_t m = 0; m < kMC; ++m) {
        const double xt = std::sqrt(abar_hand(t)) * x0[m] + std::sqrt(1 - abar_hand(t)) * e[m];
        rss += (e[m] - slope * xt) * (e[m] - slope * xt);
      }
      worst_se = std::max(worst_se, std::sqrt(rss / (kMC - 1) / sxx) / std::sqrt(1 - abar_hand(t)));
      got.push_back(-slope / std::sqrt(1 - abar_hand(t)));
      const double h = 1e-4;
      want.push_back((log_normal(h, 0, marginal_var(t)) - 2 * log_normal(0, 0, marginal_var(t)) + log_normal(-h, 0, marginal_var(t))) /
                     (h * h));  // d/dx of the score = d2/dx2 log q
      // Tweedie: E[x0 | x_t] = (x_t + (1 - abar_t) grad log q(x_t)) / sqrt(abar_t); the library's
      // predict_x0_from_eps at eps = E[eps | x_t] = c_t x_t must give it
      const double xt = 0.9;
      tw_lib.push_back(predict_x0_from_eps(s, image_of({xt}), {t}, image_of({linear_net_coef(t) * xt})).data()[0]);
      tw_hand.push_back((xt + (1 - abar_hand(t)) * (-xt / marginal_var(t))) / std::sqrt(abar_hand(t)));
    }
    c.equal("view.score_is_minus_eps", Label::Independent,
            "-slope of E[eps|x_t] / sqrt(1 - abar_t) (20000 draws) vs slope of grad log q(x_t), t = 1..10", got, want, kSE * worst_se,
            "5 SE of the regression at the noisiest t", {{"t", 1, kT}});
    c.equal("view.tweedie_x0", Label::Independent,
            "predict_x0_from_eps at eps = E[eps|x_t] vs Tweedie (x_t + (1 - abar) score) / sqrt(abar), x_t = 0.9", tw_lib, tw_hand,
            1e-12, "", {{"t", 1, kT}});
  }

  // ---- the SNR view of eq. (12) ----
  // SNR(t) = abar_t / (1 - abar_t). With sigma^2 = betatilde_t the eq. (12) weight is
  // (SNR(t-1) / SNR(t) - 1) / 2, and L_{t-1} = (SNR(t-1) - SNR(t)) / 2 ||x0 - x0_hat||^2.
  {
    auto snr = [](int64_t t) { return abar_hand(t) / (1 - abar_hand(t)); };
    std::vector<double> lib, hand, kl, x0form;
    for (int64_t t = 2; t <= kT; ++t) {
      lib.push_back(s.eps_weight_small[t]);
      hand.push_back(0.5 * (snr(t - 1) / snr(t) - 1));
      kl.push_back(kl_sum(s, t, VarianceType::Small, kGuess));
      double e = 0;
      for (size_t i = 0; i < kX0.size(); ++i) {
        const double xt = std::sqrt(abar_hand(t)) * kX0[i] + std::sqrt(1 - abar_hand(t)) * kEps[i];
        const double x0_hat = (xt - std::sqrt(1 - abar_hand(t)) * kGuess[i]) / std::sqrt(abar_hand(t));
        e += (kX0[i] - x0_hat) * (kX0[i] - x0_hat);
      }
      x0form.push_back(0.5 * (snr(t - 1) - snr(t)) * e);
    }
    c.equal("view.snr_weight", Label::Independent, "eps_weight_small vs (SNR(t-1)/SNR(t) - 1) / 2 by hand, t = 2..10", lib, hand,
            1e-12, "", {{"t", 2, kT - 1}});
    c.equal("view.snr_x0_form", Label::Independent, "L_{t-1} (normal_kl, sigma^2 = betatilde) vs (SNR(t-1) - SNR(t))/2 ||x0 - x0_hat||^2",
            kl, x0form, 1e-12, "", {{"t", 2, kT - 1}});
  }

  // ---- progressive lossy decoding: the distortion of x0_hat(x_t) ----
  // Gaussian data and the exact E[eps|x_t]: x0_hat = E[x0|x_t], so E(x0 - x0_hat)^2 = Var(x0|x_t) =
  // s^2 (1 - abar_t) / v_t, growing with t from 0: the early steps of sampling fix the coarse content.
  {
    Rng rng(36);
    std::vector<double> mse, want;
    double worst_se = 0;
    for (int64_t t = 1; t <= kT; ++t) {
      const TensorD x0 = rng.normal<double>({kMC, 1, 1, 1}, 0.0, kDataStd), e = rng.normal<double>({kMC, 1, 1, 1});
      const TensorD xt = q_sample(s, x0, std::vector<int64_t>(kMC, t), e);
      TensorD eps_hat(xt.shape());
      for (int64_t m = 0; m < kMC; ++m) eps_hat.data()[m] = linear_net_coef(t) * xt.data()[m];
      const TensorD x0_hat = predict_x0_from_eps(s, xt, std::vector<int64_t>(kMC, t), eps_hat);
      std::vector<double> err(kMC);
      for (int64_t m = 0; m < kMC; ++m) err[m] = (x0.data()[m] - x0_hat.data()[m]) * (x0.data()[m] - x0_hat.data()[m]);
      const Stats st = stats(err);
      mse.push_back(st.mean);
      worst_se = std::max(worst_se, st.se_mean);
      want.push_back(kDataStd * kDataStd * (1 - abar_hand(t)) / marginal_var(t));
    }
    c.equal("view.progressive_distortion", Label::Independent,
            "E(x0 - x0_hat(x_t))^2 over 20000 draws vs Var(x0|x_t) = s^2 (1 - abar_t) / v_t, t = 1..10", mse, want, kSE * worst_se,
            "5 SE at the noisiest t", {{"t", 1, kT}});
  }
}

}  // namespace dd::derivations
