// Matrix products through OpenBLAS. Operands whose last two dimensions are row-major or
// column-major (a transposed view) are passed to BLAS with a transpose flag, not copied.
#pragma once

#include "tensor/tensor.h"

namespace dd {

// C[M,N] = alpha * op(A)[M,K] op(B)[K,N] + beta * C, row-major, raw pointers (the kernel the
// others and the conv/attention ops use). lda/ldb/ldc are row strides of the stored matrices.
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float* A,
          int64_t lda, const float* B, int64_t ldb, float beta, float* C, int64_t ldc);
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double* A,
          int64_t lda, const double* B, int64_t ldb, double beta, double* C, int64_t ldc);

// [M,K] x [K,N] -> [M,N]
template <class T>
Tensor<T> matmul(const Tensor<T>& a, const Tensor<T>& b);

// [B,M,K] x [B,K,N] -> [B,M,N]
template <class T>
Tensor<T> bmm(const Tensor<T>& a, const Tensor<T>& b);

}  // namespace dd
