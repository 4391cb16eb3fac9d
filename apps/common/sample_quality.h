// Sample-quality metrics (docs/metrics.md) for programs that make digits: loads the classifier written
// by apps/classifier and the features of a fixed held-out reference of test digits once, then
// measures any set of images against it. Used by apps/eval; train_mnist can use it on its previews.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "nn/classifier.h"
#include "nn/metrics.h"

namespace dd::app {

// Test digits in one fixed random order (not the file order: MNIST's first and last 5,000 test
// digits come from different writers), so the first N of it are an unbiased N-digit reference.
std::vector<int64_t> reference_order(int64_t n_test);

class SampleQuality {
 public:
  static constexpr int kNeighbours = 3;  // k of the precision / recall balls (Kynkaanniemi et al. 2019)
  // classifier_path: weights from apps/classifier; test [n,1,28,28] in [-1,1]; n_real reference digits.
  SampleQuality(const std::string& classifier_path, const Tensor<float>& test, int64_t n_real);
  SampleMetrics measure(const Tensor<float>& images) const;  // images [N,1,28,28], N > 3
  const MnistClassifier<float>& model() const { return *model_; }
  int64_t n_real() const { return real_.size(0); }

 private:
  std::unique_ptr<MnistClassifier<float>> model_;
  Tensor<double> real_;  // reference features [n_real, 128]
};

}  // namespace dd::app
