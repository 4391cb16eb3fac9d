#include "tensor/random.h"

#include <cmath>
#include <stdexcept>

namespace dd {

std::array<uint32_t, 4> philox4x32(std::array<uint32_t, 4> c, std::array<uint32_t, 2> k) {
  constexpr uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  for (int r = 0; r < 10; ++r) {
    const uint64_t p0 = static_cast<uint64_t>(M0) * c[0];
    const uint64_t p1 = static_cast<uint64_t>(M1) * c[2];
    c = {static_cast<uint32_t>(p1 >> 32) ^ c[1] ^ k[0], static_cast<uint32_t>(p1),
         static_cast<uint32_t>(p0 >> 32) ^ c[3] ^ k[1], static_cast<uint32_t>(p0)};
    k[0] += W0;
    k[1] += W1;
  }
  return c;
}

void Rng::block_uniforms(uint64_t b, double* u0, double* u1) const {
  const uint64_t ctr = counter_ + b;
  auto r = philox4x32({static_cast<uint32_t>(ctr), static_cast<uint32_t>(ctr >> 32), 0, 0},
                      {static_cast<uint32_t>(seed_), static_cast<uint32_t>(seed_ >> 32)});
  const uint64_t a = (static_cast<uint64_t>(r[0]) << 32 | r[1]) >> 11;
  const uint64_t c = (static_cast<uint64_t>(r[2]) << 32 | r[3]) >> 11;
  // (k + 0.5) / 2^53: strictly inside (0, 1), so log(u) is finite.
  *u0 = (static_cast<double>(a) + 0.5) * 0x1.0p-53;
  *u1 = (static_cast<double>(c) + 0.5) * 0x1.0p-53;
}

template <class T>
Tensor<T> Rng::uniform(const Shape& s, T lo, T hi) {
  Tensor<T> out(s);
  const int64_t n = out.numel(), blocks = (n + 1) / 2;
  T* p = out.data();
#pragma omp parallel for schedule(static) if (n > (1 << 14))
  for (int64_t b = 0; b < blocks; ++b) {
    double u[2];
    block_uniforms(b, &u[0], &u[1]);
    for (int j = 0; j < 2 && 2 * b + j < n; ++j) {
      T v = static_cast<T>(lo + (hi - lo) * u[j]);
      p[2 * b + j] = v < hi ? v : lo;  // float rounding could reach hi
    }
  }
  counter_ += blocks;
  return out;
}

// Box-Muller: each block's two uniforms give two independent standard normals.
template <class T>
Tensor<T> Rng::normal(const Shape& s, T mean, T stddev) {
  Tensor<T> out(s);
  const int64_t n = out.numel(), blocks = (n + 1) / 2;
  T* p = out.data();
#pragma omp parallel for schedule(static) if (n > (1 << 14))
  for (int64_t b = 0; b < blocks; ++b) {
    double u0, u1;
    block_uniforms(b, &u0, &u1);
    const double r = std::sqrt(-2.0 * std::log(u0)), th = 2.0 * M_PI * u1;
    p[2 * b] = static_cast<T>(mean + stddev * r * std::cos(th));
    if (2 * b + 1 < n) p[2 * b + 1] = static_cast<T>(mean + stddev * r * std::sin(th));
  }
  counter_ += blocks;
  return out;
}

std::vector<int64_t> Rng::integers(int64_t n, int64_t lo, int64_t hi) {
  if (hi <= lo)
    throw std::invalid_argument("Rng::integers: expected lo < hi, got [" + std::to_string(lo) + ", " +
                                std::to_string(hi) + ")");
  if (n < 0) throw std::invalid_argument("Rng::integers: expected a count >= 0, got " + std::to_string(n));
  std::vector<int64_t> out(n);
  const int64_t blocks = (n + 1) / 2;
  const double range = static_cast<double>(hi - lo);
  for (int64_t b = 0; b < blocks; ++b) {
    double u[2];
    block_uniforms(b, &u[0], &u[1]);
    for (int j = 0; j < 2 && 2 * b + j < n; ++j)
      out[2 * b + j] = std::min(hi - 1, lo + static_cast<int64_t>(u[j] * range));
  }
  counter_ += blocks;
  return out;
}

double Rng::uniform1() {
  double u0, u1;
  block_uniforms(0, &u0, &u1);
  counter_ += 1;
  return u0;
}

std::string Rng::state() const { return std::to_string(seed_) + ":" + std::to_string(counter_); }

// Strict: two unsigned decimal numbers and one colon, nothing else. (std::stoull alone would accept
// "-1" as 2^64 - 1 and skip leading spaces, silently restoring a different generator.)
Rng Rng::from_state(const std::string& s) {
  auto bad = [&s]() { return std::invalid_argument("Rng state: expected \"seed:counter\", got \"" + s + "\""); };
  const auto colon = s.find(':');
  if (colon == std::string::npos) throw bad();
  auto parse = [&bad](const std::string& digits) {
    if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) throw bad();
    try {
      return static_cast<uint64_t>(std::stoull(digits));
    } catch (const std::out_of_range&) {
      throw bad();
    }
  };
  return Rng(parse(s.substr(0, colon)), parse(s.substr(colon + 1)));
}

template Tensor<float> Rng::uniform(const Shape&, float, float);
template Tensor<double> Rng::uniform(const Shape&, double, double);
template Tensor<float> Rng::normal(const Shape&, float, float);
template Tensor<double> Rng::normal(const Shape&, double, double);

}  // namespace dd
