// Training the MNIST classifier of nn/classifier.h that apps/eval uses for the sample-quality
// metrics. Besides the digits, every batch holds non-digit images (i.i.d. uniform pixel noise and
// blocky 7x7 noise) trained towards the uniform prediction ("outlier exposure", Hendrycks et al.
// 2019), so that the classifier is not confidently wrong on noise.
#pragma once

#include <cstdint>
#include <vector>

#include "nn/classifier.h"
#include "nn/optim.h"
#include "tensor/random.h"

namespace dd::train {

// n non-digit images [n, 1, 28, 28] in [-1, 1]: even rows i.i.d. uniform pixels, odd rows 4x4 blocks
// of a uniform 7x7 image.
Tensor<float> outlier_images(int64_t n, Rng& rng);

// Cosine decay from `peak` at step 0 to 0 at step `total` (Loshchilov & Hutter 2017, no restarts).
double cosine_lr(double peak, int64_t step, int64_t total);

// One step at learning rate lr: loss = CE(digits, labels) + noise_weight * CE(outliers, uniform),
// the second term -(1/K) sum_k log p_k averaged over the outlier images; backward; Adam.
// Returns the digits' cross-entropy (before the update); throws naming the step when it is not finite.
double classifier_train_step(MnistClassifier<float>& model, Adam<float>& adam, const Tensor<float>& digits,
                             const std::vector<int64_t>& labels, const Tensor<float>& outliers, double noise_weight,
                             double lr, int64_t step);

}  // namespace dd::train
