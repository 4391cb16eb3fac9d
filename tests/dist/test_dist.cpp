#include <doctest/doctest.h>

#include <stdexcept>

#include "dist/comm.h"

using namespace dd;

TEST_CASE("share_of: contiguous shares that cover 0..total once, sizes differ by at most one") {
  for (int64_t total : {0, 1, 7, 64, 100})
    for (int size : {1, 2, 3, 8}) {
      int64_t next = 0;
      for (int r = 0; r < size; ++r) {
        const dist::Share s = dist::share_of(total, r, size);
        CHECK(s.begin == next);
        CHECK(s.end >= s.begin);
        const int64_t len = s.end - s.begin;
        CHECK((len == total / size || len == total / size + 1));
        next = s.end;
      }
      CHECK(next == total);
    }
  CHECK(dist::share_of(10, 0, 3).end == 4);  // the first total % size ranks take one more
  CHECK(dist::share_of(10, 2, 3).begin == 7);
  CHECK_THROWS_AS(dist::share_of(10, 3, 3), std::invalid_argument);
}

TEST_CASE("single_process: rank 0 of 1, collectives are the identity, gather returns the own bytes") {
  auto comm = dist::single_process();
  CHECK(comm->rank() == 0);
  CHECK(comm->size() == 1);
  CHECK(comm->root());
  std::vector<float> f{1.5f, -2.0f};
  comm->allreduce_sum(f.data(), 2);
  CHECK(f == std::vector<float>{1.5f, -2.0f});
  CHECK(comm->allreduce_max(7) == 7);
  const std::vector<double> d{0.25, 3.0};
  const auto got = comm->gather_to_root(dist::to_bytes(d));
  REQUIRE(got.size() == 1);
  CHECK(dist::from_bytes<double>(got[0]) == d);
}
