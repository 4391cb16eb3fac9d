#include "train/classifier_training.h"

#include <cmath>
#include <stdexcept>
#include <string>

#include "autograd/ops.h"
#include "tensor/shape.h"

namespace dd::train {

Tensor<float> outlier_images(int64_t n, Rng& rng) {
  Tensor<float> x({n, 1, 28, 28});
  for (int64_t i = 0; i < n; ++i) {
    float* img = x.data() + i * 784;
    if (i % 2 == 0) {
      const Tensor<float> u = rng.uniform<float>({784}, -1.f, 1.f);
      std::copy_n(u.data(), 784, img);
    } else {
      const Tensor<float> u = rng.uniform<float>({49}, -1.f, 1.f);
      for (int r = 0; r < 28; ++r)
        for (int c = 0; c < 28; ++c) img[r * 28 + c] = u.data()[(r / 4) * 7 + c / 4];
    }
  }
  return x;
}

double cosine_lr(double peak, int64_t step, int64_t total) {
  return peak * 0.5 * (1 + std::cos(M_PI * static_cast<double>(step) / static_cast<double>(total)));
}

double classifier_train_step(MnistClassifier<float>& model, Adam<float>& adam, const Tensor<float>& digits,
                             const std::vector<int64_t>& labels, const Tensor<float>& outliers, double noise_weight,
                             double lr, int64_t step) {
  const int64_t n_digits = digits.size(0), n_outliers = outliers.defined() ? outliers.size(0) : 0;
  if (static_cast<int64_t>(labels.size()) != n_digits)
    shape_error("classifier_train_step", std::to_string(n_digits) + " labels (one per digit)", std::to_string(labels.size()));
  Tensor<float> x({n_digits + n_outliers, 1, 28, 28});
  std::copy_n(digits.contiguous().data(), digits.numel(), x.data());
  if (n_outliers > 0) std::copy_n(outliers.contiguous().data(), outliers.numel(), x.data() + digits.numel());
  adam.set_lr(lr);
  Var<float> logits = model.forward(Var<float>(x));
  Var<float> ce = cross_entropy(slice(logits, 0, 0, n_digits), labels);
  Var<float> loss = ce;
  // Cross-entropy to the uniform distribution: -(1/K) sum_k log p_k, averaged over the outliers.
  if (n_outliers > 0 && noise_weight > 0)
    loss = ce + mul_scalar(mean(log_softmax(slice(logits, 0, n_digits, n_digits + n_outliers), 1)), static_cast<float>(-noise_weight));
  const double value = ce.item();
  if (!std::isfinite(value))
    throw std::runtime_error("classifier training: expected a finite loss, got " + std::to_string(value) + " at step " +
                             std::to_string(step) + " (lower --lr)");
  model.zero_grad();
  loss.backward();
  adam.step();
  return value;
}

}  // namespace dd::train
