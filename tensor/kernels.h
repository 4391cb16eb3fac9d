// Run-time choice of the vector kernels (one binary for every x86-64 host).
//
// Three paths, chosen once at start-up from cpuid, overridable by the environment variable
// DD_KERNELS=avx512|avx2|generic (for A/B runs; naming a path this CPU lacks is an error):
//   avx512   AVX-512F/BW/DQ/VL: the Winograd convolutions and the small GEMM of
//            tensor/microkernel.h with 16-float vectors and a 12 x 32 register block
//   avx2     AVX2 + FMA: the same kernels with 8-float vectors and a 6 x 16 block
//   generic  every product through OpenBLAS (which picks its own kernels for the CPU), the
//            convolutions by im2col + OpenBLAS (tensor/conv.cpp); never a plain loop
// Only the kernel files (tensor/winograd_avx2.cpp, tensor/winograd_avx512.cpp) are compiled with
// these instruction sets; everything else is compiled for the build's ARCH (the Makefile). Results
// are bit-identical run to run on each path; between paths they agree to rounding.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "tensor/conv.h"
#include "tensor/workspace.h"

namespace dd {

enum class KernelPath { generic = 0, avx2 = 1, avx512 = 2 };

const char* kernel_path_name(KernelPath p);        // "generic", "avx2", "avx512"
// Throws std::invalid_argument naming the three names when s is none of them.
KernelPath parse_kernel_path(const std::string& s);
// Compiled into this binary and supported by this CPU (and its OS: the vector state is saved).
bool kernel_path_available(KernelPath p);
// The best available path, what DD_KERNELS would default to.
KernelPath best_kernel_path();
// The active path: DD_KERNELS if set (std::invalid_argument when it names an unknown or an
// unavailable path), else best_kernel_path(); read once.
KernelPath kernel_path();
// Switches the active path (tests and A/B timing; not while kernels run). Throws
// std::invalid_argument when the path is not available here.
void set_kernel_path(KernelPath p);
// The CPU's flags that matter for the choice, e.g. "avx2 fma avx512f avx512bw avx512dq avx512vl".
std::string cpu_kernel_flags();

// The entry points of one vector path (defined in the kernel files). Same contracts as the
// winograd_conv2d_* functions of tensor/winograd.h (tile already checked: 2 or 4) and micro::gemm.
struct KernelTable {
  KernelPath path;
  void (*small_gemm)(bool trans_a, bool accumulate, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                     const float* B, int64_t ldb, float* C, int64_t ldc);
  void (*transpose)(int64_t rows, int64_t cols, const float* src, float* dst);
  void (*winograd_forward)(const Conv2dGeometry& g, int tile, const float* x, const float* w, const float* b,
                           const float* image_bias, const float* residual, float* y, Workspace<float>& ws);
  void (*winograd_backward_input)(const Conv2dGeometry& g, int tile, const float* gy, const float* w, float* dx,
                                  Workspace<float>& ws);
  void (*winograd_backward_weight)(const Conv2dGeometry& g, int tile, const float* gy, const float* x, float* dw,
                                   Workspace<float>& ws);
};
// The active path's table; nullptr on the generic path.
const KernelTable* kernel_table();

// C[M x N] (+)= op(A) B (micro::gemm's contract), single-threaded: the active vector path's small
// GEMM (micro::panel_gemm: B read from memory panel by panel), or OpenBLAS on the generic path.
void small_gemm(bool trans_a, bool accumulate, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                const float* B, int64_t ldb, float* C, int64_t ldc);

// dst [cols x rows] = src [rows x cols]^T (both dense row-major): the active vector path's 8 x 8
// in-register blocks, or a plain blocked copy on the generic path.
void small_transpose(int64_t rows, int64_t cols, const float* src, float* dst);

// Workspace<float>::get for the kernel files, defined in ordinary code: the kernel files call no
// inline library function that could be emitted there with their instruction set and then be
// picked by the linker for ordinary callers.
float* workspace_floats(Workspace<float>& ws, size_t n);

}  // namespace dd
