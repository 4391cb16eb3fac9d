#include "tensor/linalg.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <vector>

#include "tensor/blas.h"

// LAPACK's divide-and-conquer symmetric eigensolver (in libopenblas). The trailing size_t arguments
// are the hidden lengths of the Fortran character arguments (gfortran's calling convention).
extern "C" void dsyevd_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda, double* w,
                        double* work, const int* lwork, int* iwork, const int* liwork, int* info, size_t jobz_len,
                        size_t uplo_len);

namespace dd {

namespace {
void require_square(const Tensor<double>& a, const char* op) {
  if (a.dim() != 2 || a.size(0) != a.size(1)) shape_error(op, "a square matrix [n, n]", shape_str(a.shape()));
}
}  // namespace

SymEig sym_eig(const Tensor<double>& a) {
  require_square(a, "sym_eig");
  const int n = static_cast<int>(a.size(0));
  // Row-major lower triangle = column-major upper triangle: ask LAPACK for "U" on the row-major copy.
  Tensor<double> v = a.contiguous().clone();
  Tensor<double> w({static_cast<int64_t>(n)});
  if (n == 0) return {w, v};
  int info = 0, lwork = -1, liwork = -1, iwork_query = 0;
  double work_query = 0;
  dsyevd_("V", "U", &n, v.data(), &n, w.data(), &work_query, &lwork, &iwork_query, &liwork, &info, 1, 1);
  if (info != 0) throw std::runtime_error("sym_eig: LAPACK dsyevd workspace query failed, info " + std::to_string(info));
  lwork = static_cast<int>(work_query);
  liwork = iwork_query;
  std::vector<double> work(static_cast<size_t>(std::max(lwork, 1)));
  std::vector<int> iwork(static_cast<size_t>(std::max(liwork, 1)));
  dsyevd_("V", "U", &n, v.data(), &n, w.data(), work.data(), &lwork, iwork.data(), &liwork, &info, 1, 1);
  if (info != 0) throw std::runtime_error("sym_eig: LAPACK dsyevd did not converge, info " + std::to_string(info));
  // LAPACK wrote the eigenvectors column-major, i.e. as the rows of the row-major buffer: transpose.
  Tensor<double> vec({static_cast<int64_t>(n), static_cast<int64_t>(n)});
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) vec.data()[static_cast<int64_t>(i) * n + j] = v.data()[static_cast<int64_t>(j) * n + i];
  return {w, vec};
}

Tensor<double> sqrtm_psd(const Tensor<double>& a) {
  require_square(a, "sqrtm_psd");
  const SymEig e = sym_eig(a);
  const int64_t n = a.size(0);
  double max_abs = 0;
  for (int64_t j = 0; j < n; ++j) max_abs = std::max(max_abs, std::fabs(e.values.data()[j]));
  // B = V diag(sqrt(w)) (columns scaled), S = B V^T.
  Tensor<double> b({n, n});
  for (int64_t j = 0; j < n; ++j) {
    const double w = e.values.data()[j];
    if (w < -1e-9 * max_abs)
      throw std::invalid_argument("sqrtm_psd: expected a positive semi-definite matrix, got eigenvalue " +
                                  std::to_string(w) + " (largest |eigenvalue| " + std::to_string(max_abs) + ")");
    const double s = std::sqrt(std::max(w, 0.0));
    for (int64_t i = 0; i < n; ++i) b.data()[i * n + j] = e.vectors.data()[i * n + j] * s;
  }
  Tensor<double> out({n, n});
  if (n > 0) gemm(false, true, n, n, n, 1.0, b.data(), n, e.vectors.data(), n, 0.0, out.data(), n);
  // Symmetrise away the last-bit asymmetry of the product.
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = i + 1; j < n; ++j) {
      const double m = 0.5 * (out.data()[i * n + j] + out.data()[j * n + i]);
      out.data()[i * n + j] = out.data()[j * n + i] = m;
    }
  return out;
}

double trace(const Tensor<double>& a) {
  require_square(a, "trace");
  const Tensor<double> c = a.contiguous();
  double t = 0;
  for (int64_t i = 0; i < a.size(0); ++i) t += c.data()[i * a.size(0) + i];
  return t;
}

}  // namespace dd
