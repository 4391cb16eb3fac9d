// The small register-blocked GEMM of tensor/microkernel.h against a double-precision loop:
// every remainder of the 6-row and 16-column blocks, transposed A, and accumulation into C.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "tensor/microkernel.h"
#include "tensor/random.h"

using namespace dd;

TEST_CASE("micro::gemm equals the direct product for all block remainders, op(A) = A or A^T, C = or +=") {
  Rng rng(5);
  for (int64_t M : {1, 5, 6, 7, 13})
    for (int64_t N : {1, 8, 15, 16, 17, 49})
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
            micro::gemm(trans_a, accumulate, M, N, K, a.data(), lda, b.data(), N, packed.data(), N);
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
}

TEST_CASE("micro::gemm writes nothing outside the M x N block (masked last columns)") {
  Rng rng(6);
  const int64_t M = 7, N = 19, K = 5, ldc = 24;
  Tensor<float> a = rng.normal<float>({M, K}), b = rng.normal<float>({K, ldc});
  std::vector<float> c(M * ldc, 12345.0f);
  micro::gemm(false, false, M, N, K, a.data(), K, b.data(), ldc, c.data(), ldc);
  for (int64_t r = 0; r < M; ++r)
    for (int64_t n = N; n < ldc; ++n) REQUIRE(c[r * ldc + n] == 12345.0f);
}
