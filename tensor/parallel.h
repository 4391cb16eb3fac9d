// One thread pool for everything: OpenMP, which the OpenMP build of OpenBLAS shares.
//
// Scheduling policy: loops whose iterations are independent (images of a convolution, groups of
// a GroupNorm, Winograd chunks, attention items) hand iterations out dynamically. On the shared
// VMs this runs on one core is often slowed for a while by other tenants, and with a static split
// every such loop would wait for it at its end. Loops that reduce into per-thread partial sums
// keep a fixed partition instead, so that a fixed thread count gives bit-identical results; sums
// of one value over a whole buffer go through ordered_sum below, whose result does not depend on
// the thread count at all (an `omp reduction` combines the threads' partials in the order they
// arrive, which differs from run to run once there are three or more).
#pragma once

#include <cstdint>
#include <cstddef>
#include <vector>

namespace dd {

// Sets the OpenMP and OpenBLAS thread counts together (n >= 1).
void set_num_threads(int n);
int get_num_threads();

// Chunk length of ordered_sum: fixed, so the partition never depends on the thread count.
constexpr int64_t kOrderedSumChunk = 1 << 13;

// sum_{i < n} term(i) in double: fixed chunks of kOrderedSumChunk indices, each summed in index
// order (by whichever thread), the chunk sums then added in chunk order. Bit-identical for every
// thread count and every run. term(i) returns double.
template <class Term>
double ordered_sum(int64_t n, Term term) {
  if (n <= 0) return 0.0;
  const int64_t chunks = (n + kOrderedSumChunk - 1) / kOrderedSumChunk;
  auto chunk_sum = [&](int64_t c) {
    const int64_t lo = c * kOrderedSumChunk, hi = lo + kOrderedSumChunk < n ? lo + kOrderedSumChunk : n;
    double s = 0;
    for (int64_t i = lo; i < hi; ++i) s += term(i);
    return s;
  };
  if (chunks == 1) return chunk_sum(0);
  std::vector<double> partial(static_cast<size_t>(chunks));
#pragma omp parallel for schedule(static) if (chunks > 3)
  for (int64_t c = 0; c < chunks; ++c) partial[static_cast<size_t>(c)] = chunk_sum(c);
  double s = 0;
  for (double p : partial) s += p;
  return s;
}

}  // namespace dd
