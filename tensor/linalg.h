// Dense symmetric linear algebra in float64 through OpenBLAS's LAPACK: the eigendecomposition of a
// symmetric matrix (dsyevd) and, built on it, the square root of a symmetric positive
// semi-definite matrix. Used by the Frechet distance of the sample-quality metrics (nn/metrics.h).
#pragma once

#include "tensor/tensor.h"

namespace dd {

struct SymEig {
  Tensor<double> values;   // [n], ascending
  Tensor<double> vectors;  // [n, n], column j is the unit eigenvector of values[j]
};

// A = V diag(w) V^T for a symmetric A [n, n] (only its lower triangle is read, as LAPACK does).
// Throws ShapeError for a non-square input, std::runtime_error when LAPACK does not converge.
SymEig sym_eig(const Tensor<double>& a);

// The symmetric PSD square root S = V diag(sqrt(w)) V^T, so S S = A. Eigenvalues that are negative
// only by rounding (w >= -1e-9 * max|w|) are taken as 0; a clearly negative eigenvalue means the
// input is not PSD: std::invalid_argument naming it.
Tensor<double> sqrtm_psd(const Tensor<double>& a);

// Trace of a square matrix.
double trace(const Tensor<double>& a);

}  // namespace dd
