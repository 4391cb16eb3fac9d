// The dropout stream of nn/dropout.h: a sample's mask depends on (key, step, site, global sample
// index) only, so a shard of a batch draws the masks the whole batch draws for its samples; every
// site of a forward and every step draws fresh masks; ranges that would overflow are refused.
#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>
#include <vector>

#include "nn/dropout.h"
#include "nn/unet.h"
#include "tests/tiny_unet.h"

using namespace dd;

namespace {
// Row g of a [rows, 3, 4, 4] activation of ones through site `site` of a forward: the mask itself.
std::vector<float> masks(const DropoutStream& s, int64_t rows, int sites_before = 0) {
  DropoutCalls calls(s);
  const VarF ones(TensorF::full({rows, 3, 4, 4}, 1.0f));
  for (int k = 0; k < sites_before; ++k) calls.next(ones, 0.3, true);
  return calls.next(ones, 0.3, true).value().to_vector();
}
std::vector<float> rows_of(const std::vector<float>& v, int64_t begin, int64_t end) {
  return std::vector<float>(v.begin() + begin * 48, v.begin() + end * 48);
}
}  // namespace

TEST_CASE("dropout stream: the mask of sample g is the same in a batch of 4 from 0 and in a batch of 2 from 2") {
  const std::vector<float> whole = masks({77, 5, 0}, 4), shard = masks({77, 5, 2}, 2);
  CHECK(rows_of(whole, 2, 4) == shard);
  // and at a later site of the forward too
  CHECK(rows_of(masks({77, 5, 0}, 4, 3), 2, 4) == masks({77, 5, 2}, 2, 3));
  // the samples' masks differ from each other, and some are dropped, some kept (x 1/0.7)
  CHECK(rows_of(whole, 0, 1) != rows_of(whole, 1, 2));
  int64_t zeros = 0;
  for (float m : whole) {
    CHECK((m == 0.0f || m == static_cast<float>(1.0 / 0.7)));
    zeros += m == 0.0f;
  }
  // 192 Bernoulli(0.3) draws: mean 57.6, standard deviation 6.3; 29..86 is more than 4.5 sigma
  CHECK(zeros > 29);
  CHECK(zeros < 86);
}

TEST_CASE("dropout stream: two sites of one forward and two steps draw different masks; the same stream repeats") {
  const std::vector<float> site0 = masks({77, 5, 0}, 4), site1 = masks({77, 5, 0}, 4, 1);
  CHECK(site0 != site1);
  CHECK(masks({77, 6, 0}, 4) != site0);  // the next step
  CHECK(masks({78, 5, 0}, 4) != site0);  // another key (another seed)
  CHECK(masks({77, 5, 0}, 4) == site0);  // a forward with the same stream: the same masks (no state)
  // Site k's range starts at counter step << 34 | k << 24: nothing of another step or site.
  CHECK(DropoutStream{77, 5, 0}.call_stream(3).counter() == (uint64_t{5} << 34 | uint64_t{3} << 24));
  CHECK(DropoutStream{77, 5, 0}.call_stream(3).seed() == 77);
}

TEST_CASE("dropout stream: every site counts, drawing or not; out-of-range steps, sites and samples throw") {
  DropoutCalls calls(DropoutStream{1, 2, 0});
  const VarF x(TensorF::full({2, 3, 4, 4}, 1.0f));
  CHECK(calls.next(x, 0.3, false).value().data() == x.value().data());  // eval: identity
  CHECK(calls.next(x, 0.0, true).value().data() == x.value().data());   // p = 0: identity
  CHECK(calls.sites() == 2);
  CHECK(calls.next(x, 0.3, true).value().to_vector() == masks({1, 2, 0}, 2, 2));  // site 2
  // 24 elements per sample = 12 blocks: samples up to 2^24 / 12 = 1398101 fit, one more does not.
  const VarF small(TensorF::full({2, 24}, 1.0f));
  DropoutCalls last_fit(DropoutStream{1, 2, 1398099});
  CHECK_NOTHROW(last_fit.next(small, 0.3, true));
  DropoutCalls over(DropoutStream{1, 2, 1398100});
  CHECK_THROWS_WITH_AS(over.next(small, 0.3, true), doctest::Contains("blocks per sample <= 2^24"), std::invalid_argument);
  DropoutCalls bad_step(DropoutStream{1, int64_t{1} << 30, 0});
  CHECK_THROWS_WITH_AS(bad_step.next(small, 0.3, true), doctest::Contains("expected a step in [0, 2^30)"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(DropoutStream{}.call_stream(1024), doctest::Contains("at most 1024 dropout sites"), std::invalid_argument);
  DropoutCalls negative(DropoutStream{1, 2, -1});
  CHECK_THROWS_WITH_AS(negative.next(small, 0.3, true), doctest::Contains("expected first_sample >= 0, got -1"), std::invalid_argument);
}

TEST_CASE("UNet with dropout: images 2, 3 of a batch of 4 give the outputs of a batch of 2 starting at sample 2") {
  UNetConfig c = dd_test::tiny_unet_config();
  c.dropout = 0.3;
  Rng rng(5);
  UNet<float> net(c, rng);
  net.train();
  const TensorF x = rng.normal<float>({4, 1, 8, 8});
  const std::vector<int64_t> t{3, 17, 40, 9};
  net.set_dropout_stream(DropoutStream{11, 4, 0});
  const std::vector<float> whole = net.forward(VarF(x), t).value().to_vector();
  net.set_dropout_stream(DropoutStream{11, 4, 2});
  const std::vector<float> shard = net.forward(VarF(x.slice(0, 2, 4).contiguous()), {40, 9}).value().to_vector();
  REQUIRE(shard.size() * 2 == whole.size());
  double worst = 0;
  for (size_t i = 0; i < shard.size(); ++i) worst = std::max(worst, std::fabs(double(shard[i]) - whole[shard.size() + i]));
  CHECK(worst < 1e-5);  // float32 rounding of another batch size at most; other masks move outputs by O(0.1)
  // Another first sample (other masks) moves them visibly.
  net.set_dropout_stream(DropoutStream{11, 4, 0});
  const std::vector<float> other = net.forward(VarF(x.slice(0, 2, 4).contiguous()), {40, 9}).value().to_vector();
  double moved = 0;
  for (size_t i = 0; i < shard.size(); ++i) moved = std::max(moved, std::fabs(double(other[i]) - shard[i]));
  CHECK(moved > 1e-3);
}
