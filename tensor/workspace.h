// Scratch memory a kernel reuses between calls (im2col columns, per-thread partial sums, attention
// score gradients). It only grows, so after the first training step nothing is allocated.
#pragma once

#include <cstddef>
#include <vector>

namespace dd {

template <class T>
class Workspace {
 public:
  // At least n elements; the contents are unspecified (kernels overwrite what they use).
  T* get(size_t n) {
    if (buf_.size() < n) buf_.resize(n);
    return buf_.data();
  }

 private:
  std::vector<T> buf_;
};

}  // namespace dd
