// Sample-quality metrics computed from a classifier's outputs (the classifier is nn/classifier.h;
// these functions only see its features and class probabilities, as float64 tensors):
//   - Frechet distance between Gaussians fitted to two feature sets (classifier-FID; Heusel et al.
//     2017 with the MNIST classifier's penultimate layer in place of Inception's pool3),
//   - an Inception-score analogue exp(E_x KL(p(y|x) || p(y))) (Salimans et al. 2016),
//   - the histogram of predicted classes and its KL divergence to the uniform histogram,
//   - mean max-confidence and the fraction of samples whose max-confidence exceeds a threshold,
//   - precision and recall in feature space with k-nearest-neighbour balls (Kynkaanniemi et al. 2019).
// docs/metrics.md says what the values of real, degraded and noise images are.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace dd {

struct FeatureStats {
  Tensor<double> mean;  // [D]
  Tensor<double> cov;   // [D, D], unbiased (divides by N - 1, as numpy.cov)
};

// features [N, D], N >= 2.
FeatureStats feature_stats(const Tensor<double>& features);

// d^2 = |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)), with tr (S1 S2)^(1/2) computed as
// tr (S1^(1/2) S2 S1^(1/2))^(1/2): the same eigenvalues, but a symmetric PSD matrix, so both square
// roots go through a symmetric eigendecomposition (tensor/linalg.h).
double frechet_distance(const FeatureStats& a, const FeatureStats& b);
double frechet_distance(const Tensor<double>& features_a, const Tensor<double>& features_b);

// probs [N, K] (rows sum to 1): exp(mean_n sum_k p_nk log(p_nk / pbar_k)), pbar = mean_n p_n; 0 log 0 = 0.
// Between 1 (every prediction equal) and K (confident predictions spread evenly over the classes).
double inception_score(const Tensor<double>& probs);

// Fraction of the N rows whose argmax is class k (first maximum on ties), k = 0..K-1.
std::vector<double> class_histogram(const Tensor<double>& probs);
// KL(h || uniform) = sum_k h_k log(K h_k), in nats: 0 for a uniform histogram, log K for one class.
double kl_to_uniform(const std::vector<double>& histogram);

double mean_max_confidence(const Tensor<double>& probs);
double fraction_confident(const Tensor<double>& probs, double threshold);  // max_k p_nk > threshold

// Distance from each row of `features` [N, D] to its k-th nearest other row (Euclidean); k < N.
std::vector<double> knn_radii(const Tensor<double>& features, int k);

struct PrecisionRecall {
  double precision = 0;  // fraction of generated points inside some real point's k-NN ball
  double recall = 0;     // fraction of real points inside some generated point's k-NN ball
};
// Kynkaanniemi et al. 2019 ("Improved precision and recall metric", eqs. 1-3), balls closed (<=).
PrecisionRecall precision_recall(const Tensor<double>& real, const Tensor<double>& generated, int k = 3);

struct SampleMetrics {
  int64_t n_samples = 0, n_real = 0;
  double fid = 0, inception_score = 0, kl_uniform = 0, mean_max_confidence = 0, fraction_above_0_9 = 0;
  double precision = 0, recall = 0;
  std::vector<double> class_histogram;
  std::string to_json() const;   // one line
  std::string to_table() const;  // a few readable lines
};

// Everything above: samples' features [N, D] and probabilities [N, K], real features [M, D].
SampleMetrics compute_sample_metrics(const Tensor<double>& sample_features, const Tensor<double>& sample_probs,
                                     const Tensor<double>& real_features, int k = 3);

}  // namespace dd
