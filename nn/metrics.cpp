#include "nn/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "tensor/blas.h"
#include "tensor/linalg.h"

namespace dd {

namespace {

void require_matrix(const Tensor<double>& t, const char* op, const char* what, int64_t min_rows) {
  if (t.dim() != 2 || t.size(0) < min_rows || t.size(1) < 1)
    shape_error(op, std::string(what) + " [N, D] with N >= " + std::to_string(min_rows), shape_str(t.shape()));
}

// Squared distances between rows [r0, r1) of a [n, D] and every row of b [m, D] -> out [(r1 - r0), m].
void sq_dists_block(const Tensor<double>& a, const std::vector<double>& a_norm, int64_t r0, int64_t r1,
                    const Tensor<double>& b, const std::vector<double>& b_norm, std::vector<double>& out) {
  const int64_t d = a.size(1), m = b.size(0), rows = r1 - r0;
  out.assign(static_cast<size_t>(rows * m), 0.0);
  gemm(false, true, rows, m, d, -2.0, a.data() + r0 * d, d, b.data(), d, 0.0, out.data(), m);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < m; ++j) out[i * m + j] = std::max(0.0, out[i * m + j] + a_norm[r0 + i] + b_norm[j]);
}

std::vector<double> row_sq_norms(const Tensor<double>& f) {
  const int64_t n = f.size(0), d = f.size(1);
  std::vector<double> r(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    double s = 0;
    for (int64_t c = 0; c < d; ++c) s += f.data()[i * d + c] * f.data()[i * d + c];
    r[i] = s;
  }
  return r;
}

constexpr int64_t kBlockRows = 256;

// Fraction of rows of `query` within radius[j] of some row j of `ref` (squared distances compared).
double fraction_covered(const Tensor<double>& query, const Tensor<double>& ref, const std::vector<double>& radius) {
  const auto qn = row_sq_norms(query), rn = row_sq_norms(ref);
  const int64_t n = query.size(0), m = ref.size(0);
  std::vector<double> r2(radius.size());
  for (size_t j = 0; j < radius.size(); ++j) r2[j] = radius[j] * radius[j];
  int64_t covered = 0;
  std::vector<double> block;
  for (int64_t r0 = 0; r0 < n; r0 += kBlockRows) {
    const int64_t r1 = std::min(n, r0 + kBlockRows);
    sq_dists_block(query, qn, r0, r1, ref, rn, block);
    for (int64_t i = 0; i < r1 - r0; ++i)
      for (int64_t j = 0; j < m; ++j)
        if (block[i * m + j] <= r2[j]) {
          ++covered;
          break;
        }
  }
  return static_cast<double>(covered) / static_cast<double>(n);
}

}  // namespace

FeatureStats feature_stats(const Tensor<double>& features) {
  require_matrix(features, "feature_stats", "features", 2);
  const Tensor<double> f = features.contiguous();
  const int64_t n = f.size(0), d = f.size(1);
  Tensor<double> mean({d});
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < d; ++c) mean.data()[c] += f.data()[i * d + c];
  for (int64_t c = 0; c < d; ++c) mean.data()[c] /= static_cast<double>(n);
  Tensor<double> centred({n, d});
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < d; ++c) centred.data()[i * d + c] = f.data()[i * d + c] - mean.data()[c];
  Tensor<double> cov({d, d});
  gemm(true, false, d, d, n, 1.0 / static_cast<double>(n - 1), centred.data(), d, centred.data(), d, 0.0, cov.data(), d);
  return {mean, cov};
}

double frechet_distance(const FeatureStats& a, const FeatureStats& b) {
  const int64_t d = a.mean.numel();
  if (b.mean.numel() != d || a.cov.dim() != 2 || a.cov.size(0) != d || b.cov.dim() != 2 || b.cov.size(0) != d)
    shape_error("frechet_distance", "two Gaussians of dimension " + std::to_string(d),
                "means [" + std::to_string(d) + "], [" + std::to_string(b.mean.numel()) + "] and covariances " +
                    shape_str(a.cov.shape()) + ", " + shape_str(b.cov.shape()));
  double mean_term = 0;
  for (int64_t c = 0; c < d; ++c) {
    const double diff = a.mean.data()[c] - b.mean.data()[c];
    mean_term += diff * diff;
  }
  const Tensor<double> s1 = sqrtm_psd(a.cov);
  Tensor<double> tmp({d, d}), m({d, d});
  const Tensor<double> c2 = b.cov.contiguous();
  gemm(false, false, d, d, d, 1.0, s1.data(), d, c2.data(), d, 0.0, tmp.data(), d);
  gemm(false, false, d, d, d, 1.0, tmp.data(), d, s1.data(), d, 0.0, m.data(), d);
  for (int64_t i = 0; i < d; ++i)  // symmetrise the rounding of the product before the eigensolver
    for (int64_t j = i + 1; j < d; ++j) m.data()[i * d + j] = m.data()[j * d + i] = 0.5 * (m.data()[i * d + j] + m.data()[j * d + i]);
  const double cross = trace(sqrtm_psd(m));
  // Rounding can push a distance of 0 slightly below it.
  return std::max(0.0, mean_term + trace(a.cov) + trace(b.cov) - 2.0 * cross);
}

double frechet_distance(const Tensor<double>& features_a, const Tensor<double>& features_b) {
  require_matrix(features_a, "frechet_distance", "features", 2);
  require_matrix(features_b, "frechet_distance", "features", 2);
  if (features_a.size(1) != features_b.size(1))
    shape_error("frechet_distance", "feature sets of equal width", shape_str(features_a.shape()) + " and " + shape_str(features_b.shape()));
  return frechet_distance(feature_stats(features_a), feature_stats(features_b));
}

double inception_score(const Tensor<double>& probs) {
  require_matrix(probs, "inception_score", "probabilities", 1);
  const Tensor<double> p = probs.contiguous();
  const int64_t n = p.size(0), k = p.size(1);
  std::vector<double> pbar(static_cast<size_t>(k), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < k; ++c) pbar[c] += p.data()[i * k + c] / static_cast<double>(n);
  double kl = 0;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < k; ++c) {
      const double v = p.data()[i * k + c];
      if (v > 0) kl += v * std::log(v / pbar[c]);
    }
  return std::exp(kl / static_cast<double>(n));
}

std::vector<double> class_histogram(const Tensor<double>& probs) {
  require_matrix(probs, "class_histogram", "probabilities", 1);
  const Tensor<double> p = probs.contiguous();
  const int64_t n = p.size(0), k = p.size(1);
  std::vector<double> h(static_cast<size_t>(k), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    const double* row = p.data() + i * k;
    h[std::max_element(row, row + k) - row] += 1.0 / static_cast<double>(n);
  }
  return h;
}

double kl_to_uniform(const std::vector<double>& histogram) {
  const double k = static_cast<double>(histogram.size());
  double kl = 0;
  for (double h : histogram)
    if (h > 0) kl += h * std::log(k * h);
  return kl;
}

double mean_max_confidence(const Tensor<double>& probs) {
  require_matrix(probs, "mean_max_confidence", "probabilities", 1);
  const Tensor<double> p = probs.contiguous();
  const int64_t n = p.size(0), k = p.size(1);
  double s = 0;
  for (int64_t i = 0; i < n; ++i) s += *std::max_element(p.data() + i * k, p.data() + (i + 1) * k);
  return s / static_cast<double>(n);
}

double fraction_confident(const Tensor<double>& probs, double threshold) {
  require_matrix(probs, "fraction_confident", "probabilities", 1);
  const Tensor<double> p = probs.contiguous();
  const int64_t n = p.size(0), k = p.size(1);
  int64_t c = 0;
  for (int64_t i = 0; i < n; ++i) c += *std::max_element(p.data() + i * k, p.data() + (i + 1) * k) > threshold;
  return static_cast<double>(c) / static_cast<double>(n);
}

std::vector<double> knn_radii(const Tensor<double>& features, int k) {
  require_matrix(features, "knn_radii", "features", 2);
  const Tensor<double> f = features.contiguous();
  const int64_t n = f.size(0);
  if (k < 1 || k >= n)
    throw std::invalid_argument("knn_radii: expected 1 <= k < N = " + std::to_string(n) + ", got k = " + std::to_string(k));
  const auto norms = row_sq_norms(f);
  std::vector<double> radii(static_cast<size_t>(n)), block, row;
  for (int64_t r0 = 0; r0 < n; r0 += kBlockRows) {
    const int64_t r1 = std::min(n, r0 + kBlockRows);
    sq_dists_block(f, norms, r0, r1, f, norms, block);
    for (int64_t i = 0; i < r1 - r0; ++i) {
      row.clear();
      for (int64_t j = 0; j < n; ++j)
        if (j != r0 + i) row.push_back(block[i * n + j]);
      std::nth_element(row.begin(), row.begin() + (k - 1), row.end());
      radii[r0 + i] = std::sqrt(row[k - 1]);
    }
  }
  return radii;
}

PrecisionRecall precision_recall(const Tensor<double>& real, const Tensor<double>& generated, int k) {
  require_matrix(real, "precision_recall", "real features", 2);
  require_matrix(generated, "precision_recall", "generated features", 2);
  if (real.size(1) != generated.size(1))
    shape_error("precision_recall", "feature sets of equal width", shape_str(real.shape()) + " and " + shape_str(generated.shape()));
  const Tensor<double> r = real.contiguous(), g = generated.contiguous();
  PrecisionRecall out;
  out.precision = fraction_covered(g, r, knn_radii(r, k));
  out.recall = fraction_covered(r, g, knn_radii(g, k));
  return out;
}

SampleMetrics compute_sample_metrics(const Tensor<double>& sample_features, const Tensor<double>& sample_probs,
                                     const Tensor<double>& real_features, int k) {
  if (sample_probs.dim() != 2 || sample_features.dim() != 2 || sample_probs.size(0) != sample_features.size(0))
    shape_error("compute_sample_metrics", "features [N, D] and probabilities [N, K] for the same N",
                shape_str(sample_features.shape()) + " and " + shape_str(sample_probs.shape()));
  SampleMetrics m;
  m.n_samples = sample_features.size(0);
  m.n_real = real_features.size(0);
  m.fid = frechet_distance(sample_features, real_features);
  m.inception_score = inception_score(sample_probs);
  m.class_histogram = class_histogram(sample_probs);
  m.kl_uniform = kl_to_uniform(m.class_histogram);
  m.mean_max_confidence = mean_max_confidence(sample_probs);
  m.fraction_above_0_9 = fraction_confident(sample_probs, 0.9);
  const PrecisionRecall pr = precision_recall(real_features, sample_features, k);
  m.precision = pr.precision;
  m.recall = pr.recall;
  return m;
}

namespace {
std::string num(double v, const char* f = "%.6g") {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}
}  // namespace

std::string SampleMetrics::to_json() const {
  std::string s = "{\"n_samples\":" + std::to_string(n_samples) + ",\"n_real\":" + std::to_string(n_real) +
                  ",\"fid\":" + num(fid) + ",\"inception_score\":" + num(inception_score) +
                  ",\"kl_uniform\":" + num(kl_uniform) + ",\"mean_max_confidence\":" + num(mean_max_confidence) +
                  ",\"fraction_above_0.9\":" + num(fraction_above_0_9) + ",\"precision\":" + num(precision) +
                  ",\"recall\":" + num(recall) + ",\"class_histogram\":[";
  for (size_t i = 0; i < class_histogram.size(); ++i) s += (i ? "," : "") + num(class_histogram[i], "%.4f");
  return s + "]}";
}

std::string SampleMetrics::to_table() const {
  std::string s;
  s += "samples " + std::to_string(n_samples) + ", real reference " + std::to_string(n_real) + "\n";
  s += "  classifier-FID        " + num(fid, "%.3f") + "   (0 = same feature statistics as the real digits)\n";
  s += "  inception score       " + num(inception_score, "%.3f") + "   (1..10; real held-out digits ~9.6, docs/metrics.md)\n";
  s += "  KL(classes||uniform)  " + num(kl_uniform, "%.4f") + "   (0 = balanced classes, 2.303 = one class)\n";
  s += "  mean max-confidence   " + num(mean_max_confidence, "%.4f") + "\n";
  s += "  fraction conf > 0.9   " + num(fraction_above_0_9, "%.4f") + "\n";
  s += "  precision (k=3)       " + num(precision, "%.4f") + "\n";
  s += "  recall (k=3)          " + num(recall, "%.4f") + "\n";
  s += "  class histogram      ";
  for (size_t i = 0; i < class_histogram.size(); ++i) s += " " + std::to_string(i) + ":" + num(class_histogram[i], "%.3f");
  return s + "\n";
}

}  // namespace dd
