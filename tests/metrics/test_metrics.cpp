// Sample-quality metric math (tensor/linalg.h, nn/metrics.h) on small synthetic features whose
// answers are known in closed form, and the MNIST classifier (nn/classifier.h) on tiny inputs.
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "autograd/ops.h"
#include "nn/classifier.h"
#include "nn/metrics.h"
#include "nn/optim.h"
#include "tensor/blas.h"
#include "tensor/linalg.h"
#include "tensor/random.h"
#include "tensor/softmax.h"

using namespace dd;
using TensorD = Tensor<double>;

namespace {

double max_abs_diff(const TensorD& a, const TensorD& b) {
  REQUIRE(a.shape() == b.shape());
  const TensorD x = a.contiguous(), y = b.contiguous();
  double m = 0;
  for (int64_t i = 0; i < x.numel(); ++i) m = std::max(m, std::fabs(x.data()[i] - y.data()[i]));
  return m;
}

// B B^T for a random B [n, r]: symmetric PSD of rank min(n, r).
TensorD random_psd(Rng& rng, int64_t n, int64_t r) {
  TensorD b = rng.normal<double>({n, r});
  return matmul(b, b.transpose(0, 1).contiguous());
}

// A Gaussian given directly by its mean and covariance.
FeatureStats gaussian(std::vector<double> mean, std::vector<double> cov) {
  const int64_t d = static_cast<int64_t>(mean.size());
  return {TensorD::from({d}, mean), TensorD::from({d, d}, cov)};
}

}  // namespace

TEST_CASE("sym_eig: eigenvalues of a known matrix, and A = V diag(w) V^T with V orthonormal") {
  SymEig e = sym_eig(TensorD::from({2, 2}, {2, 1, 1, 2}));  // eigenvalues 1 and 3
  CHECK(e.values.data()[0] == doctest::Approx(1.0).epsilon(1e-14));
  CHECK(e.values.data()[1] == doctest::Approx(3.0).epsilon(1e-14));
  // the eigenvector of 3 is (1, 1)/sqrt(2) up to sign: column 1
  CHECK(std::fabs(e.vectors.at({0, 1})) == doctest::Approx(std::sqrt(0.5)).epsilon(1e-12));
  CHECK(e.vectors.at({0, 1}) * e.vectors.at({1, 1}) > 0);

  Rng rng(3);
  const TensorD a = random_psd(rng, 7, 4);
  e = sym_eig(a);
  TensorD vd({7, 7});
  for (int64_t i = 0; i < 7; ++i)
    for (int64_t j = 0; j < 7; ++j) vd.data()[i * 7 + j] = e.vectors.at({i, j}) * e.values.data()[j];
  CHECK(max_abs_diff(matmul(vd, e.vectors.transpose(0, 1).contiguous()), a) < 1e-12 * 50);
  CHECK(max_abs_diff(matmul(e.vectors.transpose(0, 1).contiguous(), e.vectors), TensorD::from({7, 7}, [] {
                       std::vector<double> id(49, 0.0);
                       for (int i = 0; i < 7; ++i) id[i * 8] = 1;
                       return id;
                     }())) < 1e-13);
  CHECK_THROWS_AS(sym_eig(TensorD({2, 3})), ShapeError);
}

TEST_CASE("sqrtm_psd: S S = A and S symmetric, full-rank and rank-deficient; not-PSD input is an error") {
  Rng rng(5);
  for (int64_t rank : {12, 5}) {
    const TensorD a = random_psd(rng, 12, rank);
    const TensorD s = sqrtm_psd(a);
    CHECK(max_abs_diff(s, s.transpose(0, 1).contiguous()) == 0.0);
    double scale = 0;
    for (int64_t i = 0; i < a.numel(); ++i) scale = std::max(scale, std::fabs(a.data()[i]));
    CHECK(max_abs_diff(matmul(s, s), a) < 1e-11 * scale);
  }
  // diag(4, 9) -> diag(2, 3)
  CHECK(max_abs_diff(sqrtm_psd(TensorD::from({2, 2}, {4, 0, 0, 9})), TensorD::from({2, 2}, {2, 0, 0, 3})) < 1e-14);
  CHECK_THROWS_WITH_AS(sqrtm_psd(TensorD::from({2, 2}, {1, 0, 0, -1})),
                       "sqrtm_psd: expected a positive semi-definite matrix, got eigenvalue -1.000000 (largest |eigenvalue| "
                       "1.000000)",
                       std::invalid_argument);
}

TEST_CASE("feature_stats: mean and unbiased covariance by hand") {
  // points (0,0), (2,0), (1,3): mean (1,1); deviations (-1,-1), (1,-1), (0,2)
  FeatureStats st = feature_stats(TensorD::from({3, 2}, {0, 0, 2, 0, 1, 3}));
  CHECK(max_abs_diff(st.mean, TensorD::from({2}, {1, 1})) < 1e-15);
  // sum of outer products = [[2, 0], [0, 6]], / (N - 1) = 2
  CHECK(max_abs_diff(st.cov, TensorD::from({2, 2}, {1, 0, 0, 3})) < 1e-15);
  CHECK_THROWS_AS(feature_stats(TensorD({1, 2})), ShapeError);
}

TEST_CASE("Frechet distance: 0 for identical sets, closed forms for known Gaussians") {
  Rng rng(7);
  const TensorD f = rng.normal<double>({300, 16});
  CHECK(frechet_distance(f, f) < 1e-9);

  // Commuting (diagonal) covariances: |mu1 - mu2|^2 + sum_i (sqrt(a_i) - sqrt(b_i))^2
  const double d1 = frechet_distance(gaussian({0, 0, 0}, {1, 0, 0, 0, 4, 0, 0, 0, 9}),
                                     gaussian({1, 2, 0}, {4, 0, 0, 0, 4, 0, 0, 0, 1}));
  CHECK(d1 == doctest::Approx(5.0 + 1.0 + 0.0 + 4.0).epsilon(1e-12));

  // Non-commuting 2x2 covariances: the eigenvalues l1, l2 of S1 S2 are >= 0 and
  // tr (S1 S2)^(1/2) = sqrt(l1) + sqrt(l2) = sqrt(tr(S1 S2) + 2 sqrt(det S1 det S2)).
  const std::vector<double> s1 = {2.0, 0.6, 0.6, 1.0}, s2 = {0.5, -0.3, -0.3, 3.0};
  const double tr12 = s1[0] * s2[0] + s1[1] * s2[2] + s1[2] * s2[1] + s1[3] * s2[3];
  const double det1 = s1[0] * s1[3] - s1[1] * s1[2], det2 = s2[0] * s2[3] - s2[1] * s2[2];
  const double cross = std::sqrt(tr12 + 2 * std::sqrt(det1 * det2));
  const double expect = (0.5 * 0.5 + 1.5 * 1.5) + (3.0 + 3.5) - 2 * cross;
  CHECK(frechet_distance(gaussian({0.5, -1}, s1), gaussian({0, 0.5}, s2)) == doctest::Approx(expect).epsilon(1e-12));

  // S1 = c I, S2 = Q diag(l) Q^T with a Householder Q: tr(S1 S2)^(1/2) = sqrt(c) sum sqrt(l).
  const int64_t d = 6;
  TensorD v = rng.normal<double>({d, 1});
  double vv = 0;
  for (int64_t i = 0; i < d; ++i) vv += v.data()[i] * v.data()[i];
  TensorD q({d, d}), lam({d, d}), s1i({d, d});
  const std::vector<double> l = {0.1, 0.5, 1, 2, 3, 7};
  const double c = 2.5;
  for (int64_t i = 0; i < d; ++i) {
    lam.data()[i * d + i] = l[i];
    s1i.data()[i * d + i] = c;
    for (int64_t j = 0; j < d; ++j) q.data()[i * d + j] = (i == j) - 2 * v.data()[i] * v.data()[j] / vv;
  }
  const TensorD s2q = matmul(matmul(q, lam), q.transpose(0, 1).contiguous());
  double sum_l = 0, sum_sqrt = 0;
  for (double x : l) sum_l += x, sum_sqrt += std::sqrt(x);
  CHECK(frechet_distance(FeatureStats{TensorD({d}), s1i}, FeatureStats{TensorD({d}), s2q}) ==
        doctest::Approx(c * d + sum_l - 2 * std::sqrt(c) * sum_sqrt).epsilon(1e-11));

  // A pure shift of a set moves only the mean term: FID = |t|^2.
  TensorD g = f.clone();
  for (int64_t i = 0; i < 300; ++i) g.data()[i * 16 + 3] += 2.0;
  CHECK(frechet_distance(f, g) == doctest::Approx(4.0).epsilon(1e-9));
  CHECK_THROWS_AS(frechet_distance(f, rng.normal<double>({10, 15})), ShapeError);
}

TEST_CASE("k-NN radii and precision/recall: identical sets 1, far-apart sets 0, a half-covered set 1/2") {
  // points on a line at 0, 1, 3, 7
  const TensorD line = TensorD::from({4, 1}, {0, 1, 3, 7});
  const std::vector<double> r1 = knn_radii(line, 1), r2 = knn_radii(line, 2);
  CHECK(r1 == std::vector<double>{1, 1, 2, 4});
  CHECK(r2 == std::vector<double>{3, 2, 3, 6});
  CHECK_THROWS_AS(knn_radii(line, 4), std::invalid_argument);

  Rng rng(11);
  const TensorD real = rng.normal<double>({200, 8});
  PrecisionRecall pr = precision_recall(real, real, 3);
  CHECK(pr.precision == 1.0);
  CHECK(pr.recall == 1.0);

  TensorD far = rng.normal<double>({150, 8});
  for (int64_t i = 0; i < far.numel(); i += 8) far.data()[i] += 1000.0;
  pr = precision_recall(real, far, 3);
  CHECK(pr.precision == 0.0);
  CHECK(pr.recall == 0.0);

  // generated = 100 copies of real points + 100 far points: exactly the copies are covered
  TensorD half({200, 8});
  for (int64_t i = 0; i < 100 * 8; ++i) half.data()[i] = real.data()[i];
  for (int64_t i = 100 * 8; i < 200 * 8; ++i) half.data()[i] = far.data()[i - 100 * 8];
  CHECK(precision_recall(real, half, 3).precision == 0.5);
}

TEST_CASE("Inception score, class histogram, KL to uniform and confidences") {
  const int64_t k = 10, n = 50;
  TensorD onehot({n, k}), same({n, k});
  for (int64_t i = 0; i < n; ++i) {
    onehot.data()[i * k + i % k] = 1.0;
    for (int64_t c = 0; c < k; ++c) same.data()[i * k + c] = c == 3 ? 0.55 : 0.05;
  }
  CHECK(inception_score(onehot) == doctest::Approx(10.0).epsilon(1e-12));
  CHECK(inception_score(same) == doctest::Approx(1.0).epsilon(1e-12));

  const std::vector<double> h = class_histogram(onehot);
  for (double v : h) CHECK(v == doctest::Approx(0.1).epsilon(1e-12));
  CHECK(kl_to_uniform(h) == doctest::Approx(0.0).scale(1.0).epsilon(1e-12));
  const std::vector<double> hs = class_histogram(same);
  CHECK(hs[3] == doctest::Approx(1.0).epsilon(1e-12));
  CHECK(kl_to_uniform(hs) == doctest::Approx(std::log(10.0)).epsilon(1e-12));
  CHECK(kl_to_uniform({0.5, 0.5, 0, 0}) == doctest::Approx(std::log(2.0)).epsilon(1e-12));

  CHECK(mean_max_confidence(onehot) == 1.0);
  CHECK(mean_max_confidence(same) == doctest::Approx(0.55).epsilon(1e-12));
  const TensorD mix = TensorD::from({4, 2}, {0.95, 0.05, 0.5, 0.5, 0.2, 0.8, 0.01, 0.99});
  CHECK(fraction_confident(mix, 0.9) == 0.5);
  CHECK(mean_max_confidence(mix) == doctest::Approx((0.95 + 0.5 + 0.8 + 0.99) / 4).epsilon(1e-12));

}

TEST_CASE("compute_sample_metrics: a set against itself, and the JSON line") {
  Rng rng(13);
  const TensorD f = rng.normal<double>({50, 6});
  TensorD onehot({50, 10});
  for (int64_t i = 0; i < 50; ++i) onehot.data()[i * 10 + i % 10] = 1.0;
  const SampleMetrics m = compute_sample_metrics(f, onehot, f);
  CHECK(m.n_samples == 50);
  CHECK(m.fid < 1e-9);
  CHECK(m.inception_score == doctest::Approx(10.0).epsilon(1e-12));
  CHECK(m.precision == 1.0);
  CHECK(m.recall == 1.0);
  CHECK(m.fraction_above_0_9 == 1.0);
  const nlohmann::json j = nlohmann::json::parse(m.to_json());
  CHECK(j["n_samples"] == 50);
  CHECK(j["inception_score"].get<double>() == doctest::Approx(10.0).epsilon(1e-5));
  CHECK(j["class_histogram"].size() == 10);
  CHECK(m.to_json().find('\n') == std::string::npos);
  CHECK_THROWS_AS(compute_sample_metrics(f, TensorD({49, 10}), f), ShapeError);
}

TEST_CASE("MnistClassifier: shapes, names, features >= 0, classify = softmax(forward) in any batch size") {
  Rng rng(17);
  MnistClassifier<float> model(rng);
  const auto params = model.named_parameters();
  REQUIRE(params.size() == 8);
  CHECK(params[0].name == "conv1.weight");
  CHECK(params[7].name == "fc2.bias");
  CHECK(model.num_parameters() == (16 * 9 + 16) + (32 * 16 * 9 + 32) + (1568 * 128 + 128) + (128 * 10 + 10));
  const Tensor<float> x = rng.uniform<float>({5, 1, 28, 28}, -1.f, 1.f);
  const Var<float> f = model.features(Var<float>(x));
  CHECK(f.shape() == Shape{5, 128});
  for (int64_t i = 0; i < f.value().numel(); ++i) CHECK(f.value().data()[i] >= 0.f);
  const Tensor<float> p = softmax(model.forward(Var<float>(x)).value(), 1);
  const ClassifierOutputs a = classify(model, x, 2), b = classify(model, x, 500);
  // float32 GEMMs of different sizes round differently: equal to float32 precision
  CHECK(max_abs_diff(a.probs, b.probs) < 1e-6);
  CHECK(max_abs_diff(a.features, b.features) < 1e-5);
  for (int64_t i = 0; i < p.numel(); ++i) CHECK(a.probs.data()[i] == doctest::Approx(p.data()[i]).epsilon(1e-6));
  CHECK_THROWS_AS(classify(model, Tensor<float>({2, 1, 14, 14})), ShapeError);
}

TEST_CASE("MnistClassifier learns two synthetic classes (bars) with Adam in a few steps") {
  // class 0: a horizontal bar, class 1: a vertical bar, at random positions, on [-1, 1] images
  Rng rng(19);
  const int64_t n = 32;
  Tensor<float> x = Tensor<float>::full({n, 1, 28, 28}, -1.f);
  std::vector<int64_t> y(n);
  for (int64_t i = 0; i < n; ++i) {
    y[i] = i % 2;
    const int64_t pos = 4 + (i * 7) % 20;
    for (int64_t t = 4; t < 24; ++t) x.data()[i * 784 + (y[i] ? t * 28 + pos : pos * 28 + t)] = 1.f;
  }
  MnistClassifier<float> model(rng);
  AdamConfig cfg;
  cfg.lr = 1e-3;
  Adam<float> adam(model, cfg);
  const double loss0 = cross_entropy(model.forward(Var<float>(x)), y).item();
  for (int step = 0; step < 40; ++step) {
    model.zero_grad();
    Var<float> loss = cross_entropy(model.forward(Var<float>(x)), y);
    loss.backward();
    adam.step();
  }
  const Var<float> logits = model.forward(Var<float>(x));
  CHECK(cross_entropy(logits, y).item() < 0.2 * loss0);
  CHECK(accuracy(logits.value(), y) == 1.0);
}
