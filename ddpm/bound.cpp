#include "ddpm/bound.h"

#include <stdexcept>
#include <string>

#include <cmath>

#include "autograd/var.h"
#include "ddpm/gaussian.h"

namespace dd::ddpm {

namespace {
constexpr double kLn2 = 0.69314718055994530942;
}

// DDPM eq. (5), L_T = KL(q(x_T|x0) || N(0, I)), q(x_T|x0) from eq. (4)
std::vector<double> prior_kl(const Schedule& s, const Tensor<float>& x0) {
  const Tensor<float> xc = x0.contiguous();
  const int64_t N = x0.size(0), D = x0.numel() / N;
  const double mean_coef = s.sqrt_abar[s.T], logvar = s.log_one_minus_abar[s.T];
  std::vector<double> out(N, 0.0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < D; ++i) out[n] += normal_kl(mean_coef * xc.data()[n * D + i], logvar, 0.0, 0.0);
  return out;
}

// DDPM eq. (5): L_{t-1} (Gaussian KL of eqs. 6-7 against the model) or L_0 (eq. 13) at each sample's t
std::vector<double> bound_terms_at(const Schedule& s, const Denoiser& model, const Tensor<float>& x0,
                                   const std::vector<int64_t>& t, Rng& rng, const BoundOptions& options) {
  check_batch(s, x0, t, "bound_terms_at");
  NoGradGuard no_grad;
  const Tensor<float> x0c = x0.contiguous();
  const Tensor<float> noise = rng.normal<float>(x0.shape());
  const Tensor<float> x_t = q_sample(s, x0c, t, noise);                        // eq. (4)
  const Tensor<float> out = run_denoiser(s, model, x_t, t, options.variance);
  const ModelPrediction<float> p = p_mean_variance(s, options.variance, out, x_t, t, options.clip_x0);
  const int64_t N = x0.size(0), D = x0.numel() / N;
  const float *px0 = x0c.data(), *pxt = x_t.data(), *pm = p.mean.data(), *plv = p.log_variance.data();
  std::vector<double> terms(N, 0.0);
#pragma omp parallel for schedule(static) if (N * D > 4096)
  for (int64_t n = 0; n < N; ++n) {
    const int64_t ti = t[n];
    double acc = 0.0;
    if (ti == 1) {
      for (int64_t i = n * D; i < (n + 1) * D; ++i)  // L_0 = -log p_theta(x0 | x1)
        acc -= options.decoder == DecoderType::Discretized
                   ? discretized_gaussian_log_likelihood(px0[i], pm[i], 0.5 * plv[i])  // eq. (13)
                   : gaussian_log_density(px0[i], pm[i], plv[i]);
    } else {
      const double c1 = s.posterior_mean_coef1[ti], c2 = s.posterior_mean_coef2[ti];
      const double true_logvar = std::log(s.posterior_variance[ti]);
      for (int64_t i = n * D; i < (n + 1) * D; ++i)  // eq. (7) mean in double, KL against the model
        acc += normal_kl(c1 * px0[i] + c2 * pxt[i], true_logvar, pm[i], plv[i]);
    }
    terms[n] = acc;
  }
  return terms;
}

BoundResult variational_bound(const Schedule& s, const Denoiser& model, const Tensor<float>& x0, Rng& rng,
                              const BoundOptions& options) {
  check_batch(s, x0, std::vector<int64_t>(x0.dim() >= 1 ? x0.size(0) : 0, 1), "variational_bound");
  const int64_t N = x0.size(0), D = x0.numel() / N;
  BoundResult r;
  r.T = s.T;
  r.dims = D;
  r.clip_x0 = options.clip_x0;
  r.decoder = options.decoder;
  r.terms = Tensor<double>({N, s.T + 1});
  r.prior_nats = prior_kl(s, x0);
  for (int64_t n = 0; n < N; ++n) r.terms.at({n, 0}) = r.prior_nats[n];
  for (int64_t t = s.T; t >= 1; --t) {
    const std::vector<double> term = bound_terms_at(s, model, x0, std::vector<int64_t>(N, t), rng, options);
    for (int64_t n = 0; n < N; ++n) r.terms.at({n, t}) = term[n];
  }
  r.decoder_nats.resize(N);
  r.total_nats.assign(N, 0.0);
  r.bits_per_dim.resize(N);
  for (int64_t n = 0; n < N; ++n) {
    r.decoder_nats[n] = r.terms.at({n, 1});
    for (int64_t t = 0; t <= s.T; ++t) r.total_nats[n] += r.terms.at({n, t});
    r.bits_per_dim[n] = r.total_nats[n] / (static_cast<double>(D) * kLn2);
    r.mean_bits_per_dim += r.bits_per_dim[n] / static_cast<double>(N);
  }
  return r;
}

BoundEstimate variational_bound_estimate(const Schedule& s, const Denoiser& model, const Tensor<float>& x0, Rng& rng,
                                         const BoundOptions& options) {
  check_batch(s, x0, std::vector<int64_t>(x0.dim() >= 1 ? x0.size(0) : 0, 1), "variational_bound_estimate");
  const int64_t N = x0.size(0), D = x0.numel() / N;
  BoundEstimate e;
  const std::vector<double> prior = prior_kl(s, x0);
  // L_0 exactly: it is the largest single term, and a uniform t over 1..T would hit it once in T
  // draws and then multiply it by T (estimates jumping between ~0.4 and ~6 bits/dim on MNIST).
  const std::vector<double> decoder = bound_terms_at(s, model, x0, std::vector<int64_t>(N, 1), rng, options);
  std::vector<double> term(N, 0.0);
  if (s.T >= 2) {
    e.t = rng.integers(N, 2, s.T + 1);  // t ~ U{2..T}
    term = bound_terms_at(s, model, x0, e.t, rng, options);
  } else {
    e.t.assign(N, 1);
  }
  for (int64_t n = 0; n < N; ++n) {
    // E_t[(T - 1) L_{t-1}] = sum_{t=2}^T L_{t-1}: unbiased for the sum in eq. (5)
    const double sum_estimate = static_cast<double>(s.T - 1) * term[n];
    e.bits_per_dim.push_back((prior[n] + sum_estimate + decoder[n]) / (static_cast<double>(D) * kLn2));
    e.mean_bits_per_dim += e.bits_per_dim.back() / static_cast<double>(N);
  }
  return e;
}

void BoundAccumulator::add(const BoundResult& r) {
  const int64_t N = static_cast<int64_t>(r.total_nats.size());
  if (T_ < 0) {
    T_ = r.T;
    dims_ = r.dims;
    clip_x0_ = r.clip_x0;
    column_sum_.assign(T_ + 1, 0.0);
  } else if (r.T != T_ || r.dims != dims_) {
    throw std::invalid_argument("BoundAccumulator: expected batches with T = " + std::to_string(T_) + " and " +
                                std::to_string(dims_) + " dims per image, got T = " + std::to_string(r.T) + " and " +
                                std::to_string(r.dims));
  }
  const Tensor<double> terms = r.terms.contiguous();
  for (int64_t n = 0; n < N; ++n) {
    total_nats_.push_back(r.total_nats[n]);
    prior_sum_ += r.prior_nats[n];
    decoder_sum_ += r.decoder_nats[n];
    for (int64_t c = 0; c <= T_; ++c) column_sum_[c] += terms.data()[n * (T_ + 1) + c];
  }
}

BoundSummary BoundAccumulator::summary() const {
  const int64_t n = images();
  if (n < 2) throw std::invalid_argument("BoundAccumulator: expected at least 2 images for a standard error, got " + std::to_string(n));
  BoundSummary b;
  b.n = n;
  b.T = T_;
  b.dims = dims_;
  b.clip_x0 = clip_x0_;
  const double to_bpd = 1.0 / (static_cast<double>(dims_) * kLn2), count = static_cast<double>(n);
  double total = 0;
  for (double x : total_nats_) total += x;
  b.bits_per_dim = total / count * to_bpd;
  double var = 0;
  for (double x : total_nats_) var += (x * to_bpd - b.bits_per_dim) * (x * to_bpd - b.bits_per_dim);
  b.stderr_bits_per_dim = std::sqrt(var / (count - 1) / count);
  b.prior_bits_per_dim = prior_sum_ / count * to_bpd;
  b.decoder_bits_per_dim = decoder_sum_ / count * to_bpd;
  b.diffusion_bits_per_dim = b.bits_per_dim - b.prior_bits_per_dim - b.decoder_bits_per_dim;
  // terms column 0 = L_T, column 1 = L_0, column t >= 2 = L_{t-1}: paper index k sits in column
  // k + 1 for 1 <= k < T.
  b.mean_term_bits_per_dim.resize(T_ + 1);
  for (int64_t k = 0; k <= T_; ++k) {
    const int64_t column = k == 0 ? 1 : k == T_ ? 0 : k + 1;
    b.mean_term_bits_per_dim[k] = column_sum_[column] / count * to_bpd;
  }
  return b;
}

}  // namespace dd::ddpm
