// Checks on what a program is about to write, made before the long computation and after it:
// - output paths: not a folder, in a folder that exists, no two flags naming the same file;
// - results: generated images and bounds must be finite, or the checkpoint is bad (a weight
//   that overflows every activation gives black images and a meaningless bound): refused, nothing written.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

namespace dd::app {

// (flag, path) pairs; empty paths are skipped. Throws std::invalid_argument naming the flag.
void check_output_files(const std::vector<std::pair<std::string, std::string>>& outputs);

// Throws std::runtime_error naming the checkpoint when an image value is NaN or infinite.
void require_finite_images(const Tensor<float>& images, const std::string& checkpoint);
// Throws std::runtime_error naming the checkpoint when a bound value is not finite.
void require_finite_value(double value, const std::string& what, const std::string& checkpoint);

}  // namespace dd::app
