#include "nn/dropout.h"

#include <stdexcept>
#include <string>

#include "autograd/ops.h"

namespace dd {

Rng DropoutStream::call_stream(int64_t call) const {
  if (step < 0 || step >= (int64_t{1} << kStepBits))
    throw std::invalid_argument("dropout stream: expected a step in [0, 2^30), got " + std::to_string(step));
  if (call < 0 || call >= (int64_t{1} << kCallBits))
    throw std::invalid_argument("dropout stream: expected at most 1024 dropout sites in one forward, got site " +
                                std::to_string(call));
  const uint64_t counter = (static_cast<uint64_t>(step) << (kCallBits + kBlockBits)) | (static_cast<uint64_t>(call) << kBlockBits);
  return Rng(key, counter);
}

template <class T>
Var<T> DropoutCalls::next(const Var<T>& h, double p, bool training) {
  const int64_t call = next_++;
  if (!training || p == 0) return h;
  const int64_t rows = h.size(0), row_size = rows > 0 ? h.numel() / rows : 0, blocks_per_sample = (row_size + 1) / 2;
  const int64_t capacity = int64_t{1} << DropoutStream::kBlockBits;
  if (stream_.first_sample < 0)
    throw std::invalid_argument("dropout stream: expected first_sample >= 0, got " + std::to_string(stream_.first_sample));
  // (first_sample + rows) blocks_per_sample <= 2^24, written so that it cannot overflow int64.
  if (blocks_per_sample > 0 && stream_.first_sample + rows > capacity / blocks_per_sample)
    throw std::invalid_argument("dropout stream: expected (first sample + batch) x " + std::to_string(blocks_per_sample) +
                                " blocks per sample <= 2^24 at dropout site " + std::to_string(call) + ", got samples up to " +
                                std::to_string(stream_.first_sample + rows) + " (at most " +
                                std::to_string(capacity / blocks_per_sample) + ")");
  return dropout_rows(h, p, true, stream_.call_stream(call), stream_.first_sample);
}

template Var<float> DropoutCalls::next(const Var<float>&, double, bool);
template Var<double> DropoutCalls::next(const Var<double>&, double, bool);

}  // namespace dd
