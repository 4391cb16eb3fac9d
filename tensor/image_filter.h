// Image filters, used to calibrate the sample-quality metrics (apps/eval --calibrate, docs/metrics.md):
// subsets of real digits and the same digits blurred, noised or shifted, and pure noise.
// Images are [n, 1, 28, 28] in [-1, 1]; every result stays in [-1, 1].
#pragma once

#include <cstdint>
#include <vector>

#include "tensor/random.h"
#include "tensor/tensor.h"

namespace dd {

// images[idx[0]], images[idx[1]], ...
Tensor<float> take(const Tensor<float>& images, const std::vector<int64_t>& idx);
// Separable Gaussian blur, kernel radius ceil(3 sigma), edge pixels repeated.
Tensor<float> gaussian_blur(const Tensor<float>& images, double sigma);
// x + sigma * N(0, 1), clipped to [-1, 1].
Tensor<float> add_noise(const Tensor<float>& images, double sigma, Rng& rng);
// Moves the content dy rows down and dx columns right; uncovered pixels are background (-1).
Tensor<float> shift(const Tensor<float>& images, int dy, int dx);
// N(0, 1) pixels clipped to [-1, 1] (the DDPM's x_T, clipped as a written image would be).
Tensor<float> gaussian_noise_images(int64_t n, Rng& rng);
// Uniform pixels in [-1, 1] (the kind of noise apps/classifier trains towards the uniform prediction).
Tensor<float> uniform_noise_images(int64_t n, Rng& rng);

}  // namespace dd
