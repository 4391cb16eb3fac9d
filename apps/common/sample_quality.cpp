#include "apps/common/sample_quality.h"

#include <numeric>
#include <stdexcept>

#include "tensor/image_filter.h"
#include "nn/checkpoint.h"

namespace dd::app {

std::vector<int64_t> reference_order(int64_t n_test) {
  std::vector<int64_t> order(static_cast<size_t>(n_test));
  std::iota(order.begin(), order.end(), 0);
  Rng rng(0x5EED);
  for (int64_t i = n_test - 1; i > 0; --i) std::swap(order[i], order[static_cast<int64_t>(rng.uniform1() * (i + 1))]);
  return order;
}

SampleQuality::SampleQuality(const std::string& classifier_path, const Tensor<float>& test, int64_t n_real) {
  Rng rng(0);
  model_ = std::make_unique<MnistClassifier<float>>(rng);
  load_weights(classifier_path, *model_);
  model_->eval();
  if (n_real < kNeighbours + 1 || n_real > test.size(0))
    throw std::invalid_argument("--n-real: expected " + std::to_string(kNeighbours + 1) + ".." + std::to_string(test.size(0)) +
                                ", got " + std::to_string(n_real));
  const std::vector<int64_t> order = reference_order(test.size(0));
  real_ = classify(*model_, take(test, std::vector<int64_t>(order.begin(), order.begin() + n_real))).features;
}

SampleMetrics SampleQuality::measure(const Tensor<float>& images) const {
  if (images.dim() == 4 && images.size(0) < kNeighbours + 1)
    throw std::invalid_argument("sample quality: expected at least " + std::to_string(kNeighbours + 1) + " images, got " +
                                std::to_string(images.size(0)));
  const ClassifierOutputs s = classify(*model_, images);
  return compute_sample_metrics(s.features, s.probs, real_, kNeighbours);
}

}  // namespace dd::app
