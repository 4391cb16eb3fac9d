// The OpenMP paths (taken above 2^14..2^16 elements) give the same results as one thread and as a
// naive loop: strided copies, broadcasting zips, maps, reductions, softmax.
#include <doctest/doctest.h>

#include <cmath>

#include "tensor/elementwise.h"
#include "tensor/parallel.h"
#include "tensor/random.h"
#include "tensor/reduce.h"
#include "tensor/softmax.h"

using namespace dd;

namespace {
struct Results {
  TensorF copy, zipped, mapped, summed, maxed, soft;
};

Results run(const TensorF& x, const TensorF& row) {
  Results r;
  const TensorF xt = x.transpose(0, 1);  // [1030, 70]: non-contiguous
  r.copy = xt.contiguous();
  r.zipped = zip(xt, row.unsqueeze(1), [](float a, float b) { return a - b; }, "test");  // [1030,70] - [1030,1]
  r.mapped = map(xt, [](float a) { return std::tanh(a); });
  r.summed = sum(x, {1});
  r.maxed = max(xt, {0}, true);
  r.soft = softmax(x, 1);
  return r;
}
}  // namespace

TEST_CASE("large tensors: 2 threads give the same results as 1 thread and as naive loops") {
  Rng rng(31);
  const int64_t R = 70, C = 1030;  // 72,100 elements > 2^16
  TensorF x = rng.normal<float>({R, C}), row = rng.normal<float>({C});
  const int before = get_num_threads();
  set_num_threads(1);
  Results one = run(x, row);
  set_num_threads(2);
  Results two = run(x, row);
  set_num_threads(before);
  CHECK(one.copy.to_vector() == two.copy.to_vector());
  CHECK(one.zipped.to_vector() == two.zipped.to_vector());
  CHECK(one.mapped.to_vector() == two.mapped.to_vector());
  CHECK(one.summed.to_vector() == two.summed.to_vector());
  CHECK(one.maxed.to_vector() == two.maxed.to_vector());
  CHECK(one.soft.to_vector() == two.soft.to_vector());

  int bad_copy = 0, bad_zip = 0, bad_map = 0;
  for (int64_t j = 0; j < C; ++j)
    for (int64_t i = 0; i < R; ++i) {
      const float v = x.at({i, j});
      bad_copy += two.copy.at({j, i}) != v;
      bad_zip += two.zipped.at({j, i}) != v - row.at({j});
      bad_map += two.mapped.at({j, i}) != std::tanh(v);
    }
  CHECK(bad_copy == 0);
  CHECK(bad_zip == 0);
  CHECK(bad_map == 0);
  for (int64_t i = 0; i < R; ++i) {
    double s = 0, z = 0;
    float m = x.at({i, 0});
    for (int64_t j = 0; j < C; ++j) {
      s += x.at({i, j});
      m = std::max(m, x.at({i, j}));
    }
    for (int64_t j = 0; j < C; ++j) z += std::exp(static_cast<double>(x.at({i, j}) - m));
    CHECK(two.summed.at({i}) == static_cast<float>(s));  // accumulated in double, rounded once
    CHECK(two.maxed.at({0, i}) == m);
    CHECK(std::fabs(two.soft.at({i, 7}) - std::exp(static_cast<double>(x.at({i, 7}) - m)) / z) < 1e-7);
  }
}
