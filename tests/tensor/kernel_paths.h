// Runs a test body once per kernel path of tensor/kernels.h that this host has, each forced with
// set_kernel_path, and reports a path the host lacks as not run (in the test log), so that a log
// from an AVX2-only machine says what it did not cover. The active path is restored afterwards.
#pragma once

#include <doctest/doctest.h>

#include <initializer_list>

#include "tensor/kernels.h"

namespace dd {
namespace testing {

// Restores the path active at its construction, also when a REQUIRE in the body throws (doctest's
// way out of a failed test case), so a failure cannot leave later cases on a forced path.
class KernelPathRestorer {
 public:
  KernelPathRestorer() : saved_(kernel_path()) {}
  ~KernelPathRestorer() { set_kernel_path(saved_); }
  KernelPathRestorer(const KernelPathRestorer&) = delete;
  KernelPathRestorer& operator=(const KernelPathRestorer&) = delete;

 private:
  KernelPath saved_;
};

template <class Body>
void for_each_kernel_path(std::initializer_list<KernelPath> paths, Body body) {
  const KernelPathRestorer restore;
  for (KernelPath p : paths) {
    const char* name = kernel_path_name(p);
    if (!kernel_path_available(p)) {
      MESSAGE("kernel path " << std::string(name) << ": not run (this CPU lacks it; has: " << cpu_kernel_flags() << ")");
      continue;
    }
    set_kernel_path(p);
    CAPTURE(name);
    body(p);
  }
}

// every path: generic, avx2, avx512
template <class Body>
void for_each_kernel_path(Body body) {
  for_each_kernel_path({KernelPath::generic, KernelPath::avx2, KernelPath::avx512}, body);
}
// the vector paths only (the Winograd kernels exist only there)
template <class Body>
void for_each_vector_path(Body body) {
  for_each_kernel_path({KernelPath::avx2, KernelPath::avx512}, body);
}

}  // namespace testing
}  // namespace dd
