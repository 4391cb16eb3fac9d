// The variational bound, DDPM eq. (5), per image and in bits per dimension:
//   L = L_T + sum_{t=2}^T L_{t-1} + L_0,
//   L_T     = KL(q(x_T|x0) || N(0, I))                        (no parameters)
//   L_{t-1} = KL(q(x_{t-1}|x_t, x0) || p_theta(x_{t-1}|x_t))  (Gaussian KL; eqs. 6-7 and 11)
//   L_0     = -log p_theta(x0|x1)                             (discretized decoder, eq. 13)
// each with one x_t ~ q(x_t|x0) per t (eq. 4). bits/dim = L / (D ln 2), D the dimensions of one image.
#pragma once

#include <vector>

#include "ddpm/diffusion.h"
#include "tensor/random.h"

namespace dd::ddpm {

enum class DecoderType {
  Discretized,        // eq. (13): a bound on the codelength of 8-bit data (the reported bits/dim)
  ContinuousGaussian  // -log N(x0; mu_theta(x1, 1), sigma_1^2): a bound on the continuous NLL (analytic tests)
};

struct BoundOptions {
  VarianceType variance = VarianceType::Large;
  // Clip x0_hat to [-1, 1] before forming the model mean (eq. 7), as the reference implementations
  // do when evaluating; reported in the result. Turn off to evaluate the plain eq. (11) model.
  bool clip_x0 = true;
  DecoderType decoder = DecoderType::Discretized;
};

struct BoundResult {
  int64_t T = 0, dims = 0;  // dims = D per image
  bool clip_x0 = true;      // whether x0_hat was clipped (report it with the bits/dim)
  DecoderType decoder = DecoderType::Discretized;
  // [N, T+1] nats per image: terms[n, 0] = L_T, terms[n, 1] = L_0, terms[n, t] = L_{t-1} for t >= 2.
  Tensor<double> terms;
  std::vector<double> prior_nats;    // L_T per image
  std::vector<double> decoder_nats;  // L_0 per image
  std::vector<double> total_nats;    // the bound per image
  std::vector<double> bits_per_dim;  // total / (D ln 2) per image
  double mean_bits_per_dim = 0.0;
};

// Every term for a batch of images x0 [N, C, H, W]: T calls of `model` on the whole batch, no gradients.
BoundResult variational_bound(const Schedule& s, const Denoiser& model, const Tensor<float>& x0, Rng& rng,
                              const BoundOptions& options = {});

// The bound over a test set evaluated in batches: add() each batch's BoundResult, summary() reports
// the mean in bits/dim, its standard error over images and its parts. The term layout of
// BoundResult::terms stays inside the library; mean_term_bits_per_dim uses the paper's indexing.
struct BoundSummary {
  int64_t n = 0, T = 0, dims = 0;
  bool clip_x0 = true;
  double bits_per_dim = 0.0;         // mean over images of the whole bound, eq. (5)
  double stderr_bits_per_dim = 0.0;  // standard error of that mean (sample std / sqrt(n))
  double prior_bits_per_dim = 0.0;      // L_T
  double diffusion_bits_per_dim = 0.0;  // sum_{t=2}^T L_{t-1}
  double decoder_bits_per_dim = 0.0;    // L_0
  // Index k = 0..T: k = 0 is L_0 (the decoder), 1 <= k < T is L_k (the KL at step k + 1), k = T is L_T.
  std::vector<double> mean_term_bits_per_dim;
};

class BoundAccumulator {
 public:
  void add(const BoundResult& batch);  // throws if T or the image size differs from earlier batches
  BoundSummary summary() const;        // needs at least two images for the standard error
  int64_t images() const { return static_cast<int64_t>(total_nats_.size()); }

 private:
  int64_t T_ = -1, dims_ = 0;
  bool clip_x0_ = true;
  std::vector<double> total_nats_;
  double prior_sum_ = 0, decoder_sum_ = 0;
  std::vector<double> column_sum_;  // per column of BoundResult::terms, summed over images
};

// An unbiased estimate of the bound from two network calls instead of T: L_T and L_0 exactly, and
// the sum of the L_{t-1} as (T - 1) L_{t-1} at one t ~ U{2..T} per image.
struct BoundEstimate {
  std::vector<int64_t> t;  // the t drawn per image (2..T; 1 when T = 1)
  std::vector<double> bits_per_dim;  // per image
  double mean_bits_per_dim = 0.0;
};
BoundEstimate variational_bound_estimate(const Schedule& s, const Denoiser& model, const Tensor<float>& x0, Rng& rng,
                                         const BoundOptions& options = {});

// L_T per image in nats: sum over pixels of KL(N(sqrt(abar_T) x0, 1 - abar_T) || N(0, 1)).
std::vector<double> prior_kl(const Schedule& s, const Tensor<float>& x0);

// The term at step t of each image (L_{t-1} for t >= 2, L_0 for t = 1) in nats, summed over pixels,
// with a fresh x_t ~ q(x_t|x0): one network call.
std::vector<double> bound_terms_at(const Schedule& s, const Denoiser& model, const Tensor<float>& x0,
                                   const std::vector<int64_t>& t, Rng& rng, const BoundOptions& options);

}  // namespace dd::ddpm
