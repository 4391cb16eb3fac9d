// The small register-blocked GEMM of tensor/microkernel.h against a double-precision loop, on every
// kernel path this host has (tensor/kernels.h: small_gemm, OpenBLAS on the generic path): every
// remainder of the 6 x 16 (AVX2) and 12 x 32 (AVX-512) blocks, transposed A, accumulation into C;
// the two loop orders (small_gemm: column panels outer; micro::gemm: row blocks outer) bit for bit;
// and the path selection itself.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "tensor/kernels.h"
#include "tensor/microkernel.h"
#include "tensor/random.h"
#include "tests/tensor/kernel_paths.h"

using namespace dd;
using dd::testing::for_each_kernel_path;

TEST_CASE("small_gemm equals the direct product on every path for all block remainders, op(A) = A or A^T, C = or +=") {
  for_each_kernel_path([&](KernelPath) {
  Rng rng(5);
  for (int64_t M : {1, 5, 6, 7, 11, 12, 13, 25})
    for (int64_t N : {1, 8, 15, 16, 17, 31, 32, 33, 49})
      for (int64_t K : {1, 9, 32})
        for (bool trans_a : {false, true})
          for (bool accumulate : {false, true}) {
            CAPTURE(M);
            CAPTURE(N);
            CAPTURE(K);
            CAPTURE(trans_a);
            CAPTURE(accumulate);
            const int64_t lda = (trans_a ? M : K) + 3;  // A's rows padded: its stride is honoured
            Tensor<float> a = rng.normal<float>({trans_a ? K : M, lda}), b = rng.normal<float>({K, N});
            Tensor<float> c0 = rng.normal<float>({M, N});
            std::vector<float> packed(c0.data(), c0.data() + c0.numel());
            const std::vector<float> before = packed;
            small_gemm(trans_a, accumulate, M, N, K, a.data(), lda, b.data(), N, packed.data(), N);
            double worst = 0;
            for (int64_t r = 0; r < M; ++r)
              for (int64_t n = 0; n < N; ++n) {
                double s = accumulate ? before[r * N + n] : 0.0;
                for (int64_t k = 0; k < K; ++k)
                  s += static_cast<double>(trans_a ? a.data()[k * lda + r] : a.data()[r * lda + k]) * b.data()[k * N + n];
                worst = std::max(worst, std::abs(packed[r * N + n] - s) / (1.0 + std::abs(s)));
              }
            REQUIRE(worst < 1e-5);
          }
  });
}

TEST_CASE("small_gemm writes nothing outside the M x N block (masked last columns), on every path") {
  for_each_kernel_path([&](KernelPath) {
    Rng rng(6);
    for (int64_t N : {19, 37}) {
      CAPTURE(N);
      const int64_t M = 13, K = 5, ldc = 48;
      Tensor<float> a = rng.normal<float>({M, K}), b = rng.normal<float>({K, ldc});
      std::vector<float> c(M * ldc, 12345.0f);
      small_gemm(false, false, M, N, K, a.data(), K, b.data(), ldc, c.data(), ldc);
      for (int64_t r = 0; r < M; ++r)
        for (int64_t n = N; n < ldc; ++n) REQUIRE(c[r * ldc + n] == 12345.0f);
    }
  });
}

TEST_CASE("the AVX2 and AVX-512 small GEMMs agree bit for bit (the same FMA chain per element)") {
  if (!kernel_path_available(KernelPath::avx2) || !kernel_path_available(KernelPath::avx512)) {
    MESSAGE("not run: this CPU lacks avx2 or avx512 (has: " << cpu_kernel_flags() << ")");
    return;
  }
  const KernelPath saved = kernel_path();
  Rng rng(8);
  const int64_t M = 29, N = 70, K = 41;
  for (bool trans_a : {false, true}) {
    Tensor<float> a = rng.normal<float>({trans_a ? K : M, trans_a ? M : K}), b = rng.normal<float>({K, N});
    std::vector<float> c2(M * N, 0.5f), c5(M * N, 0.5f);
    set_kernel_path(KernelPath::avx2);
    small_gemm(trans_a, true, M, N, K, a.data(), trans_a ? M : K, b.data(), N, c2.data(), N);
    set_kernel_path(KernelPath::avx512);
    small_gemm(trans_a, true, M, N, K, a.data(), trans_a ? M : K, b.data(), N, c5.data(), N);
    CHECK(c2 == c5);
  }
  set_kernel_path(saved);
}

TEST_CASE("small_gemm (column panels outer, prefetching) and micro::gemm (row blocks outer) agree bit for bit") {
  // micro::gemm here is this file's instruction set (the build's, AVX2 + FMA), so it is compared
  // with small_gemm on the AVX2 path.
  if (!kernel_path_available(KernelPath::avx2)) {
    MESSAGE("not run: this CPU lacks avx2 (has: " << cpu_kernel_flags() << ")");
    return;
  }
  const KernelPath saved = kernel_path();
  set_kernel_path(KernelPath::avx2);
  Rng rng(9);
  for (int64_t N : {16, 70, 784})
    for (bool trans_a : {false, true}) {
      CAPTURE(N);
      CAPTURE(trans_a);
      const int64_t M = 29, K = 41;
      Tensor<float> a = rng.normal<float>({trans_a ? K : M, trans_a ? M : K}), b = rng.normal<float>({K, N});
      std::vector<float> by_rows(M * N, 0.5f), by_panels(M * N, 0.5f);
      micro::gemm(trans_a, true, M, N, K, a.data(), trans_a ? M : K, b.data(), N, by_rows.data(), N);
      small_gemm(trans_a, true, M, N, K, a.data(), trans_a ? M : K, b.data(), N, by_panels.data(), N);
      CHECK(by_rows == by_panels);
    }
  set_kernel_path(saved);
}

TEST_CASE("kernel paths: names round-trip, the best one is available, an unknown name is refused by name") {
  for (KernelPath p : {KernelPath::generic, KernelPath::avx2, KernelPath::avx512})
    CHECK(parse_kernel_path(kernel_path_name(p)) == p);
  CHECK_THROWS_WITH_AS(parse_kernel_path("sse9"), doctest::Contains("avx512, avx2 or generic"), std::invalid_argument);
  CHECK(kernel_path_available(KernelPath::generic));
  CHECK(kernel_path_available(best_kernel_path()));
  // avx512 implies avx2 here: the AVX-512 kernel file is built for x86-64-v4, which includes it
  if (kernel_path_available(KernelPath::avx512)) CHECK(kernel_path_available(KernelPath::avx2));
  // the active path is DD_KERNELS when the suite runs with it, else the best one
  const char* e = std::getenv("DD_KERNELS");
  CHECK(kernel_path() == (e && *e ? parse_kernel_path(e) : best_kernel_path()));
  MESSAGE("CPU: " << cpu_kernel_flags() << "; active kernel path " << std::string(kernel_path_name(kernel_path())));
  const KernelPath saved = kernel_path();
  for (KernelPath p : {KernelPath::generic, KernelPath::avx2, KernelPath::avx512}) {
    if (kernel_path_available(p)) {
      set_kernel_path(p);
      CHECK(kernel_path() == p);
      CHECK((kernel_table() == nullptr) == (p == KernelPath::generic));
      if (kernel_table()) CHECK(kernel_table()->path == p);
    } else {
      CHECK_THROWS_WITH_AS(set_kernel_path(p), doctest::Contains("this CPU has"), std::invalid_argument);
    }
  }
  set_kernel_path(saved);
}

TEST_CASE("small_transpose on every path: every remainder of the 8 x 8 blocks") {
  for_each_kernel_path([&](KernelPath) {
    Rng rng(9);
    for (int64_t rows : {1, 7, 8, 9, 32, 33})
      for (int64_t cols : {1, 5, 8, 16, 49, 196}) {
        CAPTURE(rows);
        CAPTURE(cols);
        Tensor<float> src = rng.normal<float>({rows, cols});
        std::vector<float> dst(rows * cols + 4, 777.0f);
        small_transpose(rows, cols, src.data(), dst.data());
        for (int64_t r = 0; r < rows; ++r)
          for (int64_t c = 0; c < cols; ++c) REQUIRE(dst[c * rows + r] == src.data()[r * cols + c]);
        for (int64_t i = rows * cols; i < rows * cols + 4; ++i) REQUIRE(dst[i] == 777.0f);
      }
  });
}
