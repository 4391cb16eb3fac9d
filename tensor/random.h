// Counter-based random numbers (Philox4x32-10, Salmon et al. 2011): value i of a draw depends only
// on (seed, counter, i), never on how the loop is split over threads, so a seed gives the same
// tensor for any thread count. The state is two integers, saved in checkpoints.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "tensor/tensor.h"

namespace dd {

// Philox4x32 with 10 rounds: a bijection of the 128-bit counter keyed by 64 bits.
std::array<uint32_t, 4> philox4x32(std::array<uint32_t, 4> ctr, std::array<uint32_t, 2> key);

class Rng {
 public:
  explicit Rng(uint64_t seed = 0, uint64_t counter = 0) : seed_(seed), counter_(counter) {}

  template <class T>
  Tensor<T> uniform(const Shape& s, T lo = 0, T hi = 1);  // [lo, hi)
  template <class T>
  Tensor<T> normal(const Shape& s, T mean = 0, T stddev = 1);
  // Integers uniform in [lo, hi), as int64.
  std::vector<int64_t> integers(int64_t n, int64_t lo, int64_t hi);
  double uniform1();  // one double in [0, 1)

  uint64_t seed() const { return seed_; }
  uint64_t counter() const { return counter_; }
  // The generator `blocks` counter blocks further on, without moving this one: a sample's own
  // draws at a fixed offset in a step's stream, the same on every rank and for every batch split.
  Rng at_block(uint64_t blocks) const { return Rng(seed_, counter_ + blocks); }
  // "seed:counter", and back (checkpoint metadata).
  std::string state() const;
  static Rng from_state(const std::string& s);

 private:
  // Two 53-bit doubles in (0, 1) from block `b` of the current draw.
  void block_uniforms(uint64_t b, double* u0, double* u1) const;
  uint64_t seed_, counter_;
};

}  // namespace dd
