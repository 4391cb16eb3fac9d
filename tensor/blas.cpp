#include "tensor/blas.h"

#include <cblas.h>

namespace dd {

void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
          const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
              lda, B, ldb, beta, C, ldc);
}

void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, double alpha, const double* A, int64_t lda,
          const double* B, int64_t ldb, double beta, double* C, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N, K, alpha, A,
              lda, B, ldb, beta, C, ldc);
}

namespace {

// How a matrix view (strides rs, cs) can be handed to BLAS: row-major (cs == 1), or transposed
// (rs == 1), else it needs a copy. Returns the leading dimension and the flag.
template <class T>
bool blas_layout(const Tensor<T>& m, int r_axis, int c_axis, int64_t* ld, bool* trans) {
  const int64_t rows = m.shape()[r_axis], cols = m.shape()[c_axis];
  const int64_t rs = m.strides()[r_axis], cs = m.strides()[c_axis];
  if ((cs == 1 || cols == 1) && rs >= std::max<int64_t>(cols, 1)) {
    *ld = std::max<int64_t>(rs, 1);
    *trans = false;
    return true;
  }
  if ((rs == 1 || rows == 1) && cs >= std::max<int64_t>(rows, 1)) {
    *ld = std::max<int64_t>(cs, 1);
    *trans = true;
    return true;
  }
  return false;
}

// Batched product over dimension 0 of two 3-d views.
template <class T>
Tensor<T> bmm_impl(Tensor<T> a, Tensor<T> b, const char* op) {
  const int64_t B = a.shape()[0], M = a.shape()[1], K = a.shape()[2], N = b.shape()[2];
  if (b.shape()[0] != B || b.shape()[1] != K)
    shape_error(op, "[" + std::to_string(B) + ", " + std::to_string(K) + ", N] for the right operand",
                shape_str(a.shape()) + " and " + shape_str(b.shape()));
  int64_t lda, ldb;
  bool ta, tb;
  if (!blas_layout(a, 1, 2, &lda, &ta)) {
    a = a.contiguous();
    blas_layout(a, 1, 2, &lda, &ta);
  }
  if (!blas_layout(b, 1, 2, &ldb, &tb)) {
    b = b.contiguous();
    blas_layout(b, 1, 2, &ldb, &tb);
  }
  Tensor<T> out({B, M, N});
  if (K == 0) return out;
  for (int64_t i = 0; i < B; ++i)
    gemm(ta, tb, M, N, K, T(1), a.data() + i * a.strides()[0], lda, b.data() + i * b.strides()[0], ldb, T(0),
         out.data() + i * M * N, N);
  return out;
}

}  // namespace

template <class T>
Tensor<T> matmul(const Tensor<T>& a, const Tensor<T>& b) {
  if (a.dim() != 2 || b.dim() != 2 || a.shape()[1] != b.shape()[0])
    shape_error("matmul", "[M, K] and [K, N]", shape_str(a.shape()) + " and " + shape_str(b.shape()));
  return bmm_impl(a.unsqueeze(0), b.unsqueeze(0), "matmul").reshape({a.shape()[0], b.shape()[1]});
}

template <class T>
Tensor<T> bmm(const Tensor<T>& a, const Tensor<T>& b) {
  if (a.dim() != 3 || b.dim() != 3)
    shape_error("bmm", "[B, M, K] and [B, K, N]", shape_str(a.shape()) + " and " + shape_str(b.shape()));
  return bmm_impl(a, b, "bmm");
}

template Tensor<float> matmul(const Tensor<float>&, const Tensor<float>&);
template Tensor<double> matmul(const Tensor<double>&, const Tensor<double>&);
template Tensor<float> bmm(const Tensor<float>&, const Tensor<float>&);
template Tensor<double> bmm(const Tensor<double>&, const Tensor<double>&);

}  // namespace dd
