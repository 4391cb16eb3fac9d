#include "apps/common/outputs.h"

#include <cmath>
#include <filesystem>
#include <stdexcept>

namespace dd::app {

namespace fs = std::filesystem;

void check_output_files(const std::vector<std::pair<std::string, std::string>>& outputs) {
  std::vector<std::pair<std::string, fs::path>> seen;
  for (const auto& [flag, path] : outputs) {
    if (path.empty()) continue;
    std::error_code ec;
    if (fs::is_directory(path, ec))
      throw std::invalid_argument(flag + ": expected a file name, got the folder " + path);
    const fs::path parent = fs::path(path).parent_path();
    if (!parent.empty() && !fs::is_directory(parent, ec))
      throw std::invalid_argument(flag + ": expected a file in an existing folder, got " + path + " (no folder " +
                                  parent.string() + ")");
    const fs::path full = fs::weakly_canonical(fs::absolute(path, ec), ec);
    for (const auto& [other_flag, other] : seen)
      if (full == other)
        throw std::invalid_argument(flag + ": expected a file other than " + other_flag + "'s, got the same " + path);
    seen.push_back({flag, full});
  }
}

void require_finite_images(const Tensor<float>& images, const std::string& checkpoint) {
  const Tensor<float> x = images.contiguous();
  int64_t bad = 0;
  for (int64_t i = 0; i < x.numel(); ++i) bad += !std::isfinite(x.data()[i]);
  if (bad > 0)
    throw std::runtime_error(checkpoint + ": expected a model that samples finite images, got " + std::to_string(bad) + " of " +
                             std::to_string(x.numel()) + " pixels NaN or infinite (damaged or diverged weights); nothing written");
}

void require_finite_value(double value, const std::string& what, const std::string& checkpoint) {
  if (!std::isfinite(value))
    throw std::runtime_error(checkpoint + ": expected a finite " + what + ", got " + std::to_string(value) +
                             " (damaged or diverged weights); nothing written");
}

}  // namespace dd::app
