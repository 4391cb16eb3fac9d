// Where a forward pass's dropout masks come from. A mask is a function of (key, step, which dropout
// call of the forward it is, global sample index) alone: the same for a sample whether it is
// trained in a batch of one process or in any process's shard of it, the same after a resume (no
// generator state to save), and different for every call, sample and step.
//
// The stream is Philox keyed by `key`; its 64-bit block counter is laid out as
//   bits 34..63  step                          (< 2^30)
//   bits 24..33  call k: the k-th dropout site of this forward, 0-based, in execution order (< 2^10)
//   bits  0..23  sample g takes blocks [g b, (g + 1) b), b = ceil(C H W / 2) for that call's
//                activation (two uniforms per block); (g + 1) b <= 2^24 is checked at each call
// so no two (step, call, sample) ranges overlap. It is train::stream_rng's layout (step index in
// bits 24 and up) with index = step 2^10 + k.
#pragma once

#include <cstdint>

#include "autograd/var.h"
#include "tensor/random.h"

namespace dd {

struct DropoutStream {
  uint64_t key = 0;          // the Philox key (train::dropout_stream derives it from the run's seed)
  int64_t step = 0;          // in [0, 2^30)
  int64_t first_sample = 0;  // the global sample index of batch row 0

  static constexpr int kBlockBits = 24, kCallBits = 10, kStepBits = 30;
  // The generator of call k's masks: counter step << 34 | k << 24. Throws when step or k is out of range.
  Rng call_stream(int64_t call) const;
};

// The dropout sites of one forward pass, numbered 0, 1, ... in the order they run (every site counts,
// also when it draws nothing), each drawing from its own range of the stream.
class DropoutCalls {
 public:
  explicit DropoutCalls(const DropoutStream& stream) : stream_(stream) {}
  // Inverted dropout of h [N, ...] at the next site: row i uses sample first_sample + i's blocks of
  // this call's range; identity when !training or p == 0. Throws when the range would overflow.
  template <class T>
  Var<T> next(const Var<T>& h, double p, bool training);
  int64_t sites() const { return next_; }

 private:
  DropoutStream stream_;
  int64_t next_ = 0;
};

}  // namespace dd
