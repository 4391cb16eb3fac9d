// Views share storage and index the same elements as a copy would; copies do not share.
#include <doctest/doctest.h>

#include <numeric>

#include "tensor/tensor.h"

using namespace dd;

// Whether two tensors are views of one buffer.
static bool shares(const TensorD& a, const TensorD& b) { return a.storage() == b.storage(); }

namespace {
// 0, 1, 2, ... in row-major order, so an element's value is its position in the original tensor.
TensorD iota(const Shape& s) {
  TensorD t(s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = static_cast<double>(i);
  return t;
}
}  // namespace

TEST_CASE("reshape of a contiguous tensor is a view; of a permuted one, a copy") {
  TensorD a = iota({2, 3, 4});
  TensorD r = a.reshape({6, -1});
  CHECK(r.shape() == Shape{6, 4});
  CHECK(shares(r, a));
  r.at({5, 3}) = -1;  // writes through to a
  CHECK(a.at({1, 2, 3}) == -1);

  TensorD p = a.permute({2, 0, 1});  // [4, 2, 3]
  CHECK_FALSE(p.is_contiguous());
  TensorD rp = p.reshape({4, 6});
  CHECK_FALSE(shares(rp, a));
  CHECK(rp.is_contiguous());
  for (int64_t k = 0; k < 4; ++k)
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < 3; ++j) CHECK(rp.at({k, i * 3 + j}) == a.at({i, j, k}));

  CHECK_THROWS_AS(a.reshape({5, 5}), ShapeError);
  CHECK_THROWS_AS(a.reshape({-1, -1}), ShapeError);
}

TEST_CASE("permute and transpose move strides, not data") {
  TensorD a = iota({2, 3, 4});
  TensorD p = a.permute({1, 2, 0});
  CHECK(p.shape() == Shape{3, 4, 2});
  CHECK(p.strides() == Shape{4, 1, 12});
  CHECK(shares(p, a));
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 3; ++j)
      for (int64_t k = 0; k < 4; ++k) CHECK(p.at({j, k, i}) == a.at({i, j, k}));
  TensorD t = a.transpose(0, -1);  // negative axes wrap
  CHECK(t.shape() == Shape{4, 3, 2});
  CHECK(t.at({3, 1, 0}) == a.at({0, 1, 3}));
  CHECK_THROWS_AS(a.permute({0, 1}), ShapeError);
  CHECK_THROWS_AS(a.permute({0, 1, 1}), ShapeError);
  CHECK_THROWS_AS(a.transpose(0, 3), ShapeError);
}

TEST_CASE("slice with a step picks start, start+step, ... and clamps end") {
  TensorD a = iota({4, 10});
  TensorD s = a.slice(1, 1, 9, 3);  // columns 1, 4, 7
  CHECK(s.shape() == Shape{4, 3});
  CHECK(s.strides() == Shape{10, 3});
  CHECK(shares(s, a));
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 3; ++j) CHECK(s.at({i, j}) == a.at({i, 1 + 3 * j}));
  TensorD c = a.slice(-1, 8, 100, 1);  // end clamped to 10
  CHECK(c.shape() == Shape{4, 2});
  CHECK(c.at({3, 1}) == 39);
  TensorD rows = a.slice(0, 1, 3);  // a row range stays contiguous, offset moves
  CHECK(rows.is_contiguous());
  CHECK(rows.offset() == 10);
  CHECK(rows.at({0, 0}) == 10);
  CHECK(a.slice(1, 4, 4).numel() == 0);
  CHECK_THROWS_AS(a.slice(1, 5, 3), ShapeError);
  CHECK_THROWS_AS(a.slice(1, 0, 3, 0), ShapeError);
  CHECK_THROWS_AS(a.slice(2, 0, 1), ShapeError);
}

TEST_CASE("expand gives stride 0 on stretched dimensions") {
  TensorD a = iota({3, 1});
  TensorD e = a.expand({2, 3, 4});
  CHECK(e.shape() == Shape{2, 3, 4});
  CHECK(e.strides() == Shape{0, 1, 0});
  CHECK(shares(e, a));
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = 0; j < 4; ++j) CHECK(e.at({n, i, j}) == static_cast<double>(i));
  CHECK_FALSE(e.is_contiguous());
  a.at({1, 0}) = 7;  // a view: the change shows through every copy of the element
  CHECK(e.at({1, 1, 3}) == 7);
  CHECK(a.expand({3, 2}).shape() == Shape{3, 2});
  CHECK_THROWS_AS(a.expand({2, 2}), ShapeError);  // 3 cannot stretch to 2
  CHECK_THROWS_AS(a.expand({3}), ShapeError);     // fewer dimensions
}

TEST_CASE("unsqueeze inserts a size-1 dimension anywhere") {
  TensorD a = iota({2, 3});
  CHECK(a.unsqueeze(0).shape() == Shape{1, 2, 3});
  CHECK(a.unsqueeze(1).shape() == Shape{2, 1, 3});
  CHECK(a.unsqueeze(2).shape() == Shape{2, 3, 1});
  CHECK(a.unsqueeze(-1).shape() == Shape{2, 3, 1});
  CHECK(a.unsqueeze(1).is_contiguous());
  CHECK(a.unsqueeze(1).at({1, 0, 2}) == a.at({1, 2}));
  CHECK(a.unsqueeze(2).at({1, 2, 0}) == a.at({1, 2}));
  CHECK_THROWS_AS(a.unsqueeze(3), ShapeError);
  // unsqueeze of a transposed view keeps its element order
  TensorD t = a.transpose(0, 1).unsqueeze(1);  // [3, 1, 2]
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 2; ++j) CHECK(t.at({i, 0, j}) == a.at({j, i}));
}

TEST_CASE("contiguous copies only a non-contiguous view; clone always copies") {
  TensorD a = iota({3, 4});
  CHECK(shares(a.contiguous(), a));
  TensorD c = a.clone();
  CHECK_FALSE(shares(c, a));
  c.at({0, 0}) = 100;
  CHECK(a.at({0, 0}) == 0);

  TensorD t = a.transpose(0, 1);
  TensorD tc = t.contiguous();
  CHECK_FALSE(shares(tc, a));
  CHECK(tc.is_contiguous());
  CHECK(tc.strides() == Shape{3, 1});
  for (int64_t i = 0; i < 4; ++i)
    for (int64_t j = 0; j < 3; ++j) CHECK(tc.at({i, j}) == a.at({j, i}));

  // a stepped slice of a permuted 3-d view, through the strided copy
  TensorD b = iota({2, 5, 6});
  TensorD v = b.permute({2, 0, 1}).slice(0, 1, 6, 2);  // [3, 2, 5]
  TensorD vc = v.contiguous();
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t n = 0; n < 2; ++n)
      for (int64_t k = 0; k < 5; ++k) CHECK(vc.at({i, n, k}) == b.at({n, k, 1 + 2 * i}));
  // flat(i) walks the view in row-major order
  for (int64_t i = 0; i < v.numel(); ++i) CHECK(v.flat(i) == vc.data()[i]);

  // copy_from into a strided destination
  TensorD dst = TensorD::zeros({4, 3});
  dst.transpose(0, 1).copy_from(a);
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 4; ++j) CHECK(dst.at({j, i}) == a.at({i, j}));
  CHECK_THROWS_AS(dst.copy_from(a), ShapeError);

  // an undefined tensor stays undefined
  TensorD undefined;
  CHECK_FALSE(undefined.contiguous().defined());
}

TEST_CASE("from, item, at and to<U> report what they expected") {
  CHECK_THROWS_AS(TensorD::from({2, 2}, {1, 2, 3}), ShapeError);
  try {
    TensorD::from({2, 2}, {1, 2, 3});
  } catch (const ShapeError& e) {
    CHECK(std::string(e.what()) == "Tensor::from: expected 4 values for shape [2, 2], got 3 values");
  }
  TensorD a = iota({2, 2});
  CHECK_THROWS_AS(a.item(), ShapeError);
  CHECK_THROWS_AS(a.at({2, 0}), ShapeError);
  CHECK_THROWS_AS(a.at({0}), ShapeError);
  CHECK(TensorD::scalar(2.5).item() == 2.5);
  TensorF f = a.transpose(0, 1).to<float>();
  CHECK(f.at({0, 1}) == 2.0f);
}
