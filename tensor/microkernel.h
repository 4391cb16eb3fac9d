// A small register-blocked float GEMM for the products of the convolution kernels, where OpenBLAS's
// packing copies and per-call overhead cost more than they win: the per-position products of the
// Winograd kernels (tensor/winograd_kernels.h) and the per-image products of the 1x1 and im2col
// convolutions (tensor/conv.cpp, through tensor/kernels.h, which picks the instruction set).
//
//   C[M x N] (+)= op(A)[M x K] B[K x N]     row-major B and C; op(A) = A [M x K] (row stride lda)
//                                           or A^T with A stored [K x M] (row stride lda)
//
// AVX2 + FMA: a register block of 6 rows x 16 columns (12 accumulators of the 16 ymm registers: the
// BLIS/OpenBLAS Haswell-class micro-kernel shape): per k, two 8-float loads of B, six broadcasts of
// A, twelve FMAs. AVX-512: 12 rows x 32 columns (24 accumulators of the 32 zmm registers, two
// 16-float loads of B and one broadcast live beside them; the Skylake-X shapes of BLIS are of this
// size), the last columns through a 16-bit lane mask. B is read in place (not packed), so N should
// be the long dimension. gemm: row blocks are the outer loop (a block of A stays in L1 while it
// meets every column block of B; B's rows are expected in L1/L2); panel_gemm: column panels outer,
// prefetching, for a B that comes from memory. The last M rows use a shorter
// block. Every element of C is the same chain of FMAs over k = 0 .. K-1 in both versions, so they
// agree bit for bit.
//
// Each instruction set's copy lives in its own inline namespace (dd::avx512, dd::avx2,
// dd::baseline, from the flags the including file is compiled with), so that the kernel files
// compiled with AVX-512 flags never share an out-of-line copy of a function with ordinary code.
// Without AVX2 + FMA, micro::gemm is OpenBLAS (tensor/blas.h).
#pragma once

#include <cstdint>
#include <type_traits>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#else
#include "tensor/blas.h"
#endif

#if defined(__AVX512F__) && defined(__AVX2__) && defined(__FMA__)
#define DD_ISA avx512
#elif defined(__AVX2__) && defined(__FMA__)
#define DD_ISA avx2
#else
#define DD_ISA baseline
#endif

namespace dd {
inline namespace DD_ISA {
namespace micro {

#if defined(__AVX2__) && defined(__FMA__)
// rows(R, r) for the row blocks of an M-row product: r = 0, MaxR, 2 MaxR, ... with R = MaxR, then
// once for the last M % MaxR rows (R a compile-time constant in every call, for the kernels'
// `if constexpr` / unrolled loops).
template <int R, class Rows>
inline void remainder_rows(int64_t left, int64_t r, Rows& rows) {
  if constexpr (R > 0) {
    if (left == R) return rows(std::integral_constant<int, R>(), r);
    remainder_rows<R - 1>(left, r, rows);
  }
}
template <int MaxR, class Rows>
inline void for_row_blocks(int64_t M, Rows&& rows) {
  int64_t r = 0;
  for (; r + MaxR <= M; r += MaxR) rows(std::integral_constant<int, MaxR>(), r);
  remainder_rows<MaxR - 1>(M - r, r, rows);
}

// Lanes l < n of a 16-column block (n in 1..16) as two 8-lane masks.
inline void column_masks(int64_t n, __m256i& m0, __m256i& m1) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), idx);
  m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n - 8)), idx);
}

// C[R x 16] (+)= op(A)[R x K] B[K x 16], R <= 6. The accumulators are named variables (GCC spills
// an array of them to the stack); `if constexpr` drops the rows >= R.
template <int R, bool TransA, bool Accumulate, bool Masked>
inline void kernel(int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C, int64_t ldc,
                   __m256i m0, __m256i m1, bool prefetch = false) {
  auto load = [&](const float* p, int half) {
    if constexpr (Masked) return _mm256_maskload_ps(p, half ? m1 : m0);
    return _mm256_loadu_ps(p);
  };
  auto store = [&](float* p, int half, __m256 v) {
    if constexpr (Masked)
      _mm256_maskstore_ps(p, half ? m1 : m0, v);
    else
      _mm256_storeu_ps(p, v);
  };
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00,
         c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  if constexpr (Accumulate) {
    c00 = load(C, 0), c01 = load(C + 8, 1);
    if constexpr (R > 1) c10 = load(C + ldc, 0), c11 = load(C + ldc + 8, 1);
    if constexpr (R > 2) c20 = load(C + 2 * ldc, 0), c21 = load(C + 2 * ldc + 8, 1);
    if constexpr (R > 3) c30 = load(C + 3 * ldc, 0), c31 = load(C + 3 * ldc + 8, 1);
    if constexpr (R > 4) c40 = load(C + 4 * ldc, 0), c41 = load(C + 4 * ldc + 8, 1);
    if constexpr (R > 5) c50 = load(C + 5 * ldc, 0), c51 = load(C + 5 * ldc + 8, 1);
  }
  // element (r, k) of op(A)
  const int64_t rs = TransA ? 1 : lda, ks = TransA ? lda : 1;
  for (int64_t k = 0; k < K; ++k, B += ldb) {
    if (prefetch) _mm_prefetch(reinterpret_cast<const char*>(B + 16), _MM_HINT_T0);  // the next panel's row k
    const __m256 b0 = load(B, 0), b1 = load(B + 8, 1);
    const float* a = A + k * ks;
    __m256 av = _mm256_broadcast_ss(a);
    c00 = _mm256_fmadd_ps(av, b0, c00);
    c01 = _mm256_fmadd_ps(av, b1, c01);
    if constexpr (R > 1) {
      av = _mm256_broadcast_ss(a + rs);
      c10 = _mm256_fmadd_ps(av, b0, c10);
      c11 = _mm256_fmadd_ps(av, b1, c11);
    }
    if constexpr (R > 2) {
      av = _mm256_broadcast_ss(a + 2 * rs);
      c20 = _mm256_fmadd_ps(av, b0, c20);
      c21 = _mm256_fmadd_ps(av, b1, c21);
    }
    if constexpr (R > 3) {
      av = _mm256_broadcast_ss(a + 3 * rs);
      c30 = _mm256_fmadd_ps(av, b0, c30);
      c31 = _mm256_fmadd_ps(av, b1, c31);
    }
    if constexpr (R > 4) {
      av = _mm256_broadcast_ss(a + 4 * rs);
      c40 = _mm256_fmadd_ps(av, b0, c40);
      c41 = _mm256_fmadd_ps(av, b1, c41);
    }
    if constexpr (R > 5) {
      av = _mm256_broadcast_ss(a + 5 * rs);
      c50 = _mm256_fmadd_ps(av, b0, c50);
      c51 = _mm256_fmadd_ps(av, b1, c51);
    }
  }
  store(C, 0, c00), store(C + 8, 1, c01);
  if constexpr (R > 1) store(C + ldc, 0, c10), store(C + ldc + 8, 1, c11);
  if constexpr (R > 2) store(C + 2 * ldc, 0, c20), store(C + 2 * ldc + 8, 1, c21);
  if constexpr (R > 3) store(C + 3 * ldc, 0, c30), store(C + 3 * ldc + 8, 1, c31);
  if constexpr (R > 4) store(C + 4 * ldc, 0, c40), store(C + 4 * ldc + 8, 1, c41);
  if constexpr (R > 5) store(C + 5 * ldc, 0, c50), store(C + 5 * ldc + 8, 1, c51);
}

// Rows r .. r+R-1 of C, all column blocks.
template <int R, bool TransA, bool Accumulate>
inline void row_block(int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
                      int64_t ldc) {
  const __m256i none = _mm256_setzero_si256();
  int64_t n = 0;
  for (; n + 16 <= N; n += 16) kernel<R, TransA, Accumulate, false>(K, A, lda, B + n, ldb, C + n, ldc, none, none);
  if (n < N) {
    __m256i m0, m1;
    column_masks(N - n, m0, m1);
    kernel<R, TransA, Accumulate, true>(K, A, lda, B + n, ldb, C + n, ldc, m0, m1);
  }
}

template <bool TransA, bool Accumulate>
inline void gemm_impl(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                      float* C, int64_t ldc) {
  const int64_t rs = TransA ? 1 : lda;  // from row r of op(A) to row r + 1
  for_row_blocks<6>(M, [&](auto R, int64_t r) {
    row_block<R(), TransA, Accumulate>(N, K, A + r * rs, lda, B, ldb, C + r * ldc, ldc);
  });
}

// The same product with the column panels as the outer loop (see panel_gemm below).
template <bool TransA, bool Accumulate>
inline void panel_gemm_impl(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                            int64_t ldb, float* C, int64_t ldc) {
  const int64_t rs = TransA ? 1 : lda;
  for (int64_t n = 0; n < N; n += 16) {
    __m256i m0 = _mm256_set1_epi32(-1), m1 = m0;
    const bool full = n + 16 <= N, prefetch = n + 16 < N;
    if (!full) column_masks(N - n, m0, m1);
    auto rows = [&](auto R, int64_t r) {
      if (full)
        kernel<R(), TransA, Accumulate, false>(K, A + r * rs, lda, B + n, ldb, C + r * ldc + n, ldc, m0, m1,
                                               prefetch && r == 0);
      else
        kernel<R(), TransA, Accumulate, true>(K, A + r * rs, lda, B + n, ldb, C + r * ldc + n, ldc, m0, m1, false);
    };
    for_row_blocks<6>(M, rows);
  }
}
#endif

#if defined(__AVX512F__)
namespace z {

// C[R x 16 NV] (+)= op(A)[R x K] B[K x 16 NV], R <= 12, NV = 1 or 2 vectors of 16 columns; m0 / m1
// the lanes of each vector that are inside C. The accumulators are an array that GCC keeps in
// registers (fully unrolled by `if constexpr`-free constant loops).
template <int R, int NV, bool TransA, bool Accumulate>
inline void kernel(int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C, int64_t ldc,
                   __mmask16 m0, __mmask16 m1, bool prefetch = false) {
  __m512 c[R][NV];
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v)
      c[r][v] = Accumulate ? _mm512_maskz_loadu_ps(v ? m1 : m0, C + r * ldc + 16 * v) : _mm512_setzero_ps();
  const int64_t rs = TransA ? 1 : lda, ks = TransA ? lda : 1;
  for (int64_t k = 0; k < K; ++k, B += ldb) {
    if (prefetch) {  // the next panel's row k
      _mm_prefetch(reinterpret_cast<const char*>(B + 16 * NV), _MM_HINT_T0);
      if (NV == 2) _mm_prefetch(reinterpret_cast<const char*>(B + 48), _MM_HINT_T0);
    }
    __m512 b[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) b[v] = _mm512_maskz_loadu_ps(v ? m1 : m0, B + 16 * v);
    const float* a = A + k * ks;
#pragma GCC unroll 12
    for (int r = 0; r < R; ++r) {
      const __m512 av = _mm512_set1_ps(a[r * rs]);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) c[r][v] = _mm512_fmadd_ps(av, b[v], c[r][v]);
    }
  }
#pragma GCC unroll 12
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) _mm512_mask_storeu_ps(C + r * ldc + 16 * v, v ? m1 : m0, c[r][v]);
}

inline __mmask16 lanes(int64_t n) {
  return n >= 16 ? __mmask16(0xFFFF) : n <= 0 ? __mmask16(0) : static_cast<__mmask16>((1u << n) - 1);
}

template <int R, bool TransA, bool Accumulate>
inline void row_block(int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb, float* C,
                      int64_t ldc) {
  int64_t n = 0;
  for (; n + 32 <= N; n += 32) kernel<R, 2, TransA, Accumulate>(K, A, lda, B + n, ldb, C + n, ldc, 0xFFFF, 0xFFFF);
  if (N - n > 16)
    kernel<R, 2, TransA, Accumulate>(K, A, lda, B + n, ldb, C + n, ldc, 0xFFFF, lanes(N - n - 16));
  else if (N > n)
    kernel<R, 1, TransA, Accumulate>(K, A, lda, B + n, ldb, C + n, ldc, lanes(N - n), 0);
}

template <bool TransA, bool Accumulate>
inline void gemm_impl(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                      float* C, int64_t ldc) {
  const int64_t rs = TransA ? 1 : lda;
  for_row_blocks<12>(M, [&](auto R, int64_t r) {
    row_block<R(), TransA, Accumulate>(N, K, A + r * rs, lda, B, ldb, C + r * ldc, ldc);
  });
}

template <bool TransA, bool Accumulate>
inline void panel_gemm_impl(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
                            int64_t ldb, float* C, int64_t ldc) {
  const int64_t rs = TransA ? 1 : lda;
  for (int64_t n = 0; n < N; n += 32) {
    const bool two = N - n > 16, prefetch = n + 32 < N;
    const __mmask16 m0 = lanes(N - n), m1 = lanes(N - n - 16);
    auto rows = [&](auto R, int64_t r) {
      if (two)
        kernel<R(), 2, TransA, Accumulate>(K, A + r * rs, lda, B + n, ldb, C + r * ldc + n, ldc, m0, m1,
                                           prefetch && r == 0);
      else
        kernel<R(), 1, TransA, Accumulate>(K, A + r * rs, lda, B + n, ldb, C + r * ldc + n, ldc, m0, 0, false);
    };
    for_row_blocks<12>(M, rows);
  }
}

}  // namespace z
#endif

#if defined(__AVX2__) && defined(__FMA__)
// This instruction set's register-blocked implementations (z: AVX-512; else the AVX2 ones above).
#if defined(__AVX512F__)
namespace blocked = z;
#else
namespace blocked = ::dd::DD_ISA::micro;
#endif
// impl(TransA, Accumulate) with the run-time flags as std::bool_constant template arguments.
template <class Impl>
inline void with_flags(bool trans_a, bool accumulate, Impl&& impl) {
  auto acc = [&](auto t) { accumulate ? impl(t, std::true_type()) : impl(t, std::false_type()); };
  trans_a ? acc(std::true_type()) : acc(std::false_type());
}
#endif

// C = op(A) B, or C += op(A) B when accumulate. Single-threaded (callers parallelise over images or
// chunks; without AVX2 OpenBLAS is called from inside those parallel regions, where it runs on one
// thread).
inline void gemm(bool trans_a, bool accumulate, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                 const float* B, int64_t ldb, float* C, int64_t ldc) {
#if defined(__AVX2__) && defined(__FMA__)
  with_flags(trans_a, accumulate, [&](auto t, auto a) {
    blocked::gemm_impl<decltype(t)::value, decltype(a)::value>(M, N, K, A, lda, B, ldb, C, ldc);
  });
#else
  if (M == 0 || N == 0) return;
  if (K == 0) {
    if (!accumulate)
      for (int64_t r = 0; r < M; ++r)
        for (int64_t n = 0; n < N; ++n) C[r * ldc + n] = 0.0f;
    return;
  }
  dd::gemm(trans_a, false, M, N, K, 1.0f, A, lda, B, ldb, accumulate ? 1.0f : 0.0f, C, ldc);
#endif
}

// gemm() with the column panels of B (16 or 32 columns: one register block wide) as the outer loop
// and every row block of C inside, the first of them prefetching the next panel's rows: for the
// per-image products of the 1x1 and im2col convolutions, whose B (an image, up to K x P = 128 x 784
// floats) comes from memory, not cache. Row blocks outer (gemm) read all of B once per row block,
// with K strided rows at a time: more streams than the hardware prefetchers follow. Here each panel
// is read from memory once and stays in L1 for the other row blocks. The same FMA chain per element
// as gemm(), so the two agree bit for bit.
inline void panel_gemm(bool trans_a, bool accumulate, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                       const float* B, int64_t ldb, float* C, int64_t ldc) {
#if defined(__AVX2__) && defined(__FMA__)
  with_flags(trans_a, accumulate, [&](auto t, auto a) {
    blocked::panel_gemm_impl<decltype(t)::value, decltype(a)::value>(M, N, K, A, lda, B, ldb, C, ldc);
  });
#else
  gemm(trans_a, accumulate, M, N, K, A, lda, B, ldb, C, ldc);
#endif
}

}  // namespace micro
}  // namespace DD_ISA
}  // namespace dd
