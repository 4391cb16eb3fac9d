// Where the committed golden files live (tests/golden/, found from this source file's path so the
// suite runs from the repository root (make test) or from its own folder), and the comparison the
// golden tests make against PyTorch.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>

#include "tensor/tensor.h"

namespace dd {

inline std::string golden_path(const std::string& name) {
  const std::string here = __FILE__;  // ".../tests/nn/golden_path.h"
  const std::string dir = here.substr(0, here.rfind('/')) + "/../golden/";
  for (const std::string& candidate : {dir + name, "tests/golden/" + name}) {
    std::ifstream f(candidate);
    if (f.good()) return candidate;
  }
  return "tests/golden/" + name;
}

// Per-tensor max|a - b| / max|b| (docs/conventions.md's comparison with PyTorch).
inline double rel_err(const TensorF& a, const TensorF& b) {
  REQUIRE(a.shape() == b.shape());
  double diff = 0, scale = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    diff = std::max(diff, std::fabs(static_cast<double>(a.flat(i)) - b.flat(i)));
    scale = std::max(scale, std::fabs(static_cast<double>(b.flat(i))));
  }
  return scale > 0 ? diff / scale : diff;
}

}  // namespace dd
