// Philox RNG: known answers, reproducibility, thread-count independence, distributions, state.
#include <doctest/doctest.h>

#include <cmath>

#include "tensor/parallel.h"
#include "tensor/random.h"

using namespace dd;

TEST_CASE("philox4x32-10 matches Random123's known-answer vectors") {
  // Salmon et al. 2011, the reference implementation's kat_vectors
  CHECK(philox4x32({0, 0, 0, 0}, {0, 0}) == std::array<uint32_t, 4>{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8});
  CHECK(philox4x32({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}) ==
        std::array<uint32_t, 4>{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd});
  CHECK(philox4x32({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}) ==
        std::array<uint32_t, 4>{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1});
}

TEST_CASE("the same seed gives the same numbers; draws advance the counter") {
  Rng a(42), b(42), c(43);
  TensorF x = a.normal<float>({1000}), y = b.normal<float>({1000}), z = c.normal<float>({1000});
  CHECK(x.to_vector() == y.to_vector());
  CHECK(x.to_vector() != z.to_vector());
  CHECK(a.counter() == 500);  // two numbers per Philox block
  TensorF x2 = a.normal<float>({1000});
  CHECK(x2.to_vector() != x.to_vector());
  // an odd count still uses whole blocks, so the next draw never reuses a number
  Rng o(42);
  o.uniform<double>({3});
  CHECK(o.counter() == 2);
}

TEST_CASE("at_block(k) is the stream k blocks on: a slice of one long draw, without moving the stream") {
  const Rng stream(7, 100);
  Rng whole = stream;
  const std::vector<float> all = whole.normal<float>({20}).to_vector();  // blocks 100..109
  const std::vector<float> tail = stream.at_block(4).normal<float>({6}).to_vector();
  CHECK(std::vector<float>(all.begin() + 8, all.begin() + 14) == tail);
  CHECK(stream.at_block(4).counter() == 104);
  CHECK(stream.at_block(4).seed() == 7);
  CHECK(stream.counter() == 100);
}

TEST_CASE("normal, uniform and integers are identical with 1 and 2 threads") {
  // > 2^14 elements, so the OpenMP path runs
  const Shape big{3, 7, 1000};
  const int before = get_num_threads();
  set_num_threads(1);
  Rng r1(7);
  TensorF n1 = r1.normal<float>(big);
  TensorD u1 = r1.uniform<double>(big, -2.0, 3.0);
  std::vector<int64_t> i1 = r1.integers(30000, -5, 17);
  set_num_threads(2);
  CHECK(get_num_threads() == 2);
  Rng r2(7);
  TensorF n2 = r2.normal<float>(big);
  TensorD u2 = r2.uniform<double>(big, -2.0, 3.0);
  std::vector<int64_t> i2 = r2.integers(30000, -5, 17);
  set_num_threads(before);
  CHECK(n1.to_vector() == n2.to_vector());
  CHECK(u1.to_vector() == u2.to_vector());
  CHECK(i1 == i2);
  CHECK(r1.state() == r2.state());
}

TEST_CASE("normal(mean, stddev) has the stated moments; uniform stays in [lo, hi)") {
  Rng rng(123);
  const int64_t n = 1 << 18;
  TensorD x = rng.normal<double>({n}, 1.5, 2.0);
  double s = 0, s2 = 0, s4 = 0;
  for (int64_t i = 0; i < n; ++i) s += x.data()[i];
  const double m = s / n;
  for (int64_t i = 0; i < n; ++i) {
    const double d = x.data()[i] - m;
    s2 += d * d;
    s4 += d * d * d * d;
  }
  const double var = s2 / (n - 1);
  // standard error of the mean: sd / sqrt(n) = 2 / 512 ~ 0.0039; of the variance: sd^2 sqrt(2 / n) ~ 0.011.
  // 5 standard errors: a fair generator fails this with probability ~1e-6.
  CHECK(std::fabs(m - 1.5) < 5 * 2.0 / std::sqrt(double(n)));
  CHECK(std::fabs(var - 4.0) < 5 * 4.0 * std::sqrt(2.0 / n));
  CHECK(std::fabs(s4 / n / (var * var) - 3.0) < 0.05);  // kurtosis 3 (se ~ sqrt(24/n) ~ 0.01)

  TensorF u = rng.uniform<float>({n}, -1.0f, 3.0f);
  double us = 0;
  float lo = 10, hi = -10;
  for (int64_t i = 0; i < n; ++i) {
    us += u.data()[i];
    lo = std::min(lo, u.data()[i]);
    hi = std::max(hi, u.data()[i]);
  }
  CHECK(lo >= -1.0f);
  CHECK(hi < 3.0f);
  CHECK(lo < -0.99f);  // the range is covered
  CHECK(hi > 2.99f);
  // uniform on [-1, 3): mean 1, sd 4/sqrt(12)
  CHECK(std::fabs(us / n - 1.0) < 5 * (4.0 / std::sqrt(12.0)) / std::sqrt(double(n)));
}

TEST_CASE("integers are in [lo, hi) and hit every value") {
  Rng rng(5);
  std::vector<int64_t> v = rng.integers(20000, -3, 7);
  std::vector<int> count(10, 0);
  for (int64_t x : v) {
    REQUIRE(x >= -3);
    REQUIRE(x < 7);
    ++count[x + 3];
  }
  for (int c : count) CHECK(std::abs(c - 2000) < 5 * 42);  // binomial sd sqrt(20000 * 0.1 * 0.9) ~ 42
  CHECK(rng.integers(5, 4, 5) == std::vector<int64_t>(5, 4));
  CHECK_THROWS_AS(rng.integers(3, 5, 5), std::invalid_argument);
  CHECK_THROWS_AS(rng.integers(-1, 0, 5), std::invalid_argument);
}

TEST_CASE("state() and from_state() round trip; a bad state is an error naming the format") {
  Rng a(0xdeadbeefcafeULL);
  a.normal<float>({77});
  const std::string st = a.state();
  CHECK(st == std::to_string(0xdeadbeefcafeULL) + ":39");
  Rng b = Rng::from_state(st);
  CHECK(b.seed() == a.seed());
  CHECK(b.counter() == a.counter());
  CHECK(a.uniform<double>({10}).to_vector() == b.uniform<double>({10}).to_vector());
  CHECK(a.uniform1() == b.uniform1());
  for (std::string bad : {"", "12", "12:", ":5", "12:5x", "x:5", "1:2:3", "-1:5", "1:-5", " 1:5", "1: 5",
                          "99999999999999999999999:1"}) {
    CAPTURE(bad);
    try {
      Rng::from_state(bad);
      FAIL("accepted a bad state");
    } catch (const std::invalid_argument& e) {
      const std::string m = e.what();
      CHECK(m.find("seed:counter") != std::string::npos);
      CHECK(m.find("\"" + bad + "\"") != std::string::npos);
    }
  }
}
