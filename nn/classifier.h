// The MNIST classifier behind the sample-quality metrics (nn/metrics.h, apps/eval): a small CNN
// trained with this framework by apps/classifier.
//   x [N,1,28,28] -> conv1 3x3 (16) -> ReLU -> max-pool 2 -> conv2 3x3 (32) -> ReLU -> max-pool 2
//     -> flatten [N, 1568] -> fc1 (128) -> ReLU = the features (penultimate layer) -> fc2 (10) = logits
// Parameter names: conv1.weight, conv1.bias, conv2.*, fc1.*, fc2.*.
#pragma once

#include <cstdint>
#include <vector>

#include "autograd/ops.h"
#include "nn/layers.h"
#include "nn/module.h"

namespace dd {

template <class T>
class MnistClassifier : public Module<T> {
 public:
  static constexpr int kClasses = 10;
  static constexpr int kFeatures = 128;
  explicit MnistClassifier(Rng& rng);
  Var<T> features(const Var<T>& x) const;          // [N, 128], after the ReLU
  Var<T> logits_from(const Var<T>& features) const;  // [N, 10]
  Var<T> forward(const Var<T>& x) const { return logits_from(features(x)); }
  Conv2d<T> conv1, conv2;
  Linear<T> fc1, fc2;
};

// The classifier's view of a set of images, in float64 for the metrics.
struct ClassifierOutputs {
  Tensor<double> features;  // [N, 128]
  Tensor<double> probs;     // [N, 10], softmax of the logits
};

// Runs the model without recording gradients, `batch` images at a time. images [N,1,28,28] in [-1,1].
ClassifierOutputs classify(const MnistClassifier<float>& model, const Tensor<float>& images, int64_t batch = 500);

}  // namespace dd
