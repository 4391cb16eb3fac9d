// matmul and bmm against a naive triple loop, for every layout BLAS can take as a flag and for the
// ones it cannot (stepped slices, stride-0 expands), in float and double.
#include <doctest/doctest.h>

#include <cmath>

#include "tensor/blas.h"
#include "tensor/random.h"

using namespace dd;

namespace {
template <class T>
Tensor<T> naive_matmul(const Tensor<T>& a, const Tensor<T>& b) {
  const int64_t M = a.shape()[0], K = a.shape()[1], N = b.shape()[1];
  Tensor<T> c({M, N});
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k) acc += static_cast<double>(a.at({i, k})) * b.at({k, j});
      c.at({i, j}) = static_cast<T>(acc);
    }
  return c;
}

// max |a - b| / max |b|, the comparison docs/conventions.md uses between two kernels.
template <class T>
double rel_err(const Tensor<T>& a, const Tensor<T>& b) {
  REQUIRE(a.shape() == b.shape());
  double num = 0, den = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    num = std::max(num, std::fabs(static_cast<double>(a.flat(i)) - b.flat(i)));
    den = std::max(den, std::fabs(static_cast<double>(b.flat(i))));
  }
  return num / den;
}

template <class T>
double tol() {
  // float: K <= 40 products of unit normals summed in float by BLAS; double: rounding only
  return std::is_same<T, float>::value ? 1e-5 : 1e-13;
}
}  // namespace

TEST_CASE_TEMPLATE("matmul equals the naive triple loop for every operand layout", T, float, double) {
  Rng rng(11);
  const int64_t M = 7, K = 13, N = 5;
  Tensor<T> a = rng.normal<T>({M, K}), b = rng.normal<T>({K, N});
  Tensor<T> ref = naive_matmul(a, b);
  CHECK(rel_err(matmul(a, b), ref) <= tol<T>());

  SUBCASE("transposed views (passed to BLAS as flags)") {
    Tensor<T> at_store = a.transpose(0, 1).contiguous();  // [K, M]
    Tensor<T> bt_store = b.transpose(0, 1).contiguous();  // [N, K]
    Tensor<T> a_view = at_store.transpose(0, 1), b_view = bt_store.transpose(0, 1);
    REQUIRE_FALSE(a_view.is_contiguous());
    CHECK(rel_err(matmul(a_view, b), ref) <= tol<T>());
    CHECK(rel_err(matmul(a, b_view), ref) <= tol<T>());
    CHECK(rel_err(matmul(a_view, b_view), ref) <= tol<T>());
  }
  SUBCASE("sliced views with a row stride larger than the width") {
    Tensor<T> big_a = rng.normal<T>({M + 3, K + 4}), big_b = rng.normal<T>({K + 2, N + 6});
    Tensor<T> sa = big_a.slice(0, 2, 2 + M).slice(1, 3, 3 + K);
    Tensor<T> sb = big_b.slice(0, 1, 1 + K).slice(1, 5, 5 + N);
    CHECK(rel_err(matmul(sa, sb), naive_matmul(sa, sb)) <= tol<T>());
    // a transposed slice: column-major with a leading dimension larger than the height
    Tensor<T> store = rng.normal<T>({K + 2, M + 3});
    Tensor<T> st = store.slice(0, 0, K).slice(1, 0, M).transpose(0, 1);  // [M, K], strides [1, M + 3]
    REQUIRE(st.strides() == Shape{1, M + 3});
    CHECK(rel_err(matmul(st, sb), naive_matmul(st, sb)) <= tol<T>());
  }
  SUBCASE("stepped slices (no BLAS layout, copied)") {
    Tensor<T> big = rng.normal<T>({2 * M, 3 * K});
    Tensor<T> sa = big.slice(0, 0, 2 * M, 2).slice(1, 1, 3 * K, 3);
    REQUIRE(sa.shape() == Shape{M, K});
    CHECK(rel_err(matmul(sa, b), naive_matmul(sa, b)) <= tol<T>());
    CHECK(rel_err(matmul(b.transpose(0, 1), sa.transpose(0, 1)),
                  naive_matmul(b.transpose(0, 1), sa.transpose(0, 1))) <= tol<T>());
  }
  SUBCASE("stride-0 operands from expand") {
    Tensor<T> row = rng.normal<T>({K}), col = rng.normal<T>({K, 1});
    Tensor<T> ea = row.expand({M, K});   // every row the same: row stride 0
    Tensor<T> eb = col.expand({K, N});   // every column the same: column stride 0
    CHECK(rel_err(matmul(ea, b), naive_matmul(ea, b)) <= tol<T>());
    CHECK(rel_err(matmul(a, eb), naive_matmul(a, eb)) <= tol<T>());
    Tensor<T> one_row = row.expand({1, K});  // [1, K] with row stride 0
    CHECK(rel_err(matmul(one_row, b), naive_matmul(one_row, b)) <= tol<T>());
  }
  SUBCASE("vectors: M = 1, N = 1, K = 1") {
    Tensor<T> r = rng.normal<T>({1, K}), c = rng.normal<T>({K, 1});
    CHECK(rel_err(matmul(r, b), naive_matmul(r, b)) <= tol<T>());
    CHECK(rel_err(matmul(a, c), naive_matmul(a, c)) <= tol<T>());
    Tensor<T> u = rng.normal<T>({M, 1}), v = rng.normal<T>({1, N});
    CHECK(rel_err(matmul(u, v), naive_matmul(u, v)) <= tol<T>());
  }
}

TEST_CASE_TEMPLATE("bmm equals a naive loop per batch, with transposed, sliced and broadcast batches", T, float,
                   double) {
  Rng rng(12);
  const int64_t B = 3, M = 4, K = 6, N = 5;
  Tensor<T> a = rng.normal<T>({B, M, K}), b = rng.normal<T>({B, K, N});
  auto check = [](const Tensor<T>& x, const Tensor<T>& y) {
    Tensor<T> out = bmm(x, y);
    REQUIRE(out.shape() == Shape{x.shape()[0], x.shape()[1], y.shape()[2]});
    for (int64_t i = 0; i < x.shape()[0]; ++i) {
      Tensor<T> xi = x.slice(0, i, i + 1).reshape({x.shape()[1], x.shape()[2]});
      Tensor<T> yi = y.slice(0, i, i + 1).reshape({y.shape()[1], y.shape()[2]});
      Tensor<T> oi = out.slice(0, i, i + 1).reshape({x.shape()[1], y.shape()[2]});
      CHECK(rel_err(oi, naive_matmul(xi, yi)) <= tol<T>());
    }
  };
  check(a, b);
  check(a.transpose(1, 2).contiguous().transpose(1, 2), b);                  // A as a flag
  check(a, b.transpose(1, 2).contiguous().transpose(1, 2));                  // B as a flag
  check(rng.normal<T>({B, K, M}).transpose(1, 2), b.transpose(1, 2).contiguous().transpose(1, 2));
  check(rng.normal<T>({2 * B, M, K + 3}).slice(0, 0, 2 * B, 2).slice(2, 1, K + 1), b);  // batch step 2, ld > K
  check(rng.normal<T>({1, M, K}).expand({B, M, K}), b);                   // batch stride 0
  check(a, rng.normal<T>({K, N}).unsqueeze(0).expand({B, K, N}));         // one B for every batch
  check(a.permute({1, 0, 2}).contiguous().permute({1, 0, 2}), b);         // batch stride not M*K
}

TEST_CASE("matmul and bmm reject mismatched shapes, naming both") {
  TensorD a({3, 4}), b({5, 2});
  try {
    matmul(a, b);
    FAIL("no error");
  } catch (const ShapeError& e) {
    const std::string m = e.what();
    CHECK(m.find("matmul") != std::string::npos);
    CHECK(m.find("[3, 4]") != std::string::npos);
    CHECK(m.find("[5, 2]") != std::string::npos);
  }
  CHECK_THROWS_AS(matmul(TensorD({3}), TensorD({3, 1})), ShapeError);
  CHECK_THROWS_AS(bmm(TensorD({2, 3, 4}), TensorD({3, 4, 5})), ShapeError);
  CHECK_THROWS_AS(bmm(TensorD({2, 3, 4}), TensorD({2, 5, 5})), ShapeError);
  CHECK_THROWS_AS(bmm(TensorD({3, 4}), TensorD({4, 5})), ShapeError);
}

TEST_CASE("gemm: alpha, beta and leading dimensions on raw pointers") {
  // C = 2 A^T B + 0.5 C with A stored [K, M] inside a wider buffer (lda = 4)
  const int64_t M = 2, N = 2, K = 3;
  std::vector<double> A{1, 2, 0, 0, 3, 4, 0, 0, 5, 6, 0, 0};  // [[1,2],[3,4],[5,6]] with lda 4
  std::vector<double> B{1, 0, 0, 1, 1, 1};                    // [[1,0],[0,1],[1,1]]
  std::vector<double> C{10, 20, 30, 40};
  gemm(true, false, M, N, K, 2.0, A.data(), 4, B.data(), 2, 0.5, C.data(), 2);
  // A^T B = [[1+5, 3+5], [2+6, 4+6]] = [[6, 8], [8, 10]]
  CHECK(C == std::vector<double>{2 * 6 + 5, 2 * 8 + 10, 2 * 8 + 15, 2 * 10 + 20});
}
