// The random draws of a training run, each a function of (seed, purpose, step) alone, so that a
// run resumed at any step replays exactly the numbers of an uninterrupted one.
#pragma once

#include <cstdint>
#include <vector>

#include "ddpm/losses.h"
#include "nn/dropout.h"
#include "tensor/random.h"
#include "tensor/tensor.h"

namespace dd::train {

// One stream of the counter-based generator per purpose.
enum class Stream : uint64_t { Shuffle = 1, Timesteps = 2, Noise = 3, Dropout = 4, Eval = 5, Preview = 6, LabelDrop = 7 };
Rng stream_rng(uint64_t seed, Stream stream, uint64_t index);

// Mini-batches without replacement: epoch e visits the images in a permutation drawn from
// (seed, e); step s (1-based) takes batch (s - 1) mod steps_per_epoch of epoch (s - 1) / steps_per_epoch.
class BatchSampler {
 public:
  // images [N, C, H, W]; throws when batch is not in 1..N.
  BatchSampler(const Tensor<float>& images, int64_t batch, uint64_t seed);
  Tensor<float> batch_for_step(int64_t step);
  // The labels of the images batch_for_step(step) returns (labels: one per training image).
  std::vector<int64_t> labels_for_step(int64_t step, const std::vector<int64_t>& labels);
  int64_t steps_per_epoch() const { return per_epoch_; }

 private:
  void shuffle(int64_t epoch);
  Tensor<float> images_;
  int64_t batch_;
  uint64_t seed_;
  int64_t per_epoch_, epoch_ = -1;
  std::vector<int64_t> order_;
};

// Algorithm 1's draws for step s: t ~ U{1..T} per image and eps ~ N(0, I) of the batch's shape.
// Each is a function of (seed, step, global sample index) alone: image i of `batch_shape` is
// sample first_sample + i of the step's global batch, so a process that trains on a shard of the
// batch (data parallelism) draws exactly the numbers one process draws for those samples.
struct StepDraws {
  std::vector<int64_t> t;
  Tensor<float> noise;
};
StepDraws draw_step(uint64_t seed, int64_t step, const Shape& batch_shape, int64_t T, int64_t first_sample = 0);

// Where step s's dropout masks come from: sample g of the global batch (row g - first_sample of a
// shard) draws its masks from its own blocks of the (seed, Dropout) stream, for any number of
// processes (the layout of steps, dropout sites and samples is nn/dropout.h's). Set it on the model
// before the step's forward (UNet::set_dropout_stream).
DropoutStream dropout_stream(uint64_t seed, int64_t step, int64_t first_sample = 0);

// The timesteps (and importance weights) of samples first_sample .. first_sample + n - 1 of step s
// drawn by `sampler`: sample g from block g of the step's Timesteps stream alone, as draw_step's
// uniform t, so a shard draws exactly the global batch's t for its samples (given the same
// sampler state on every process).
ddpm::TimestepDraw draw_timesteps(const ddpm::TimestepSampler& sampler, uint64_t seed, int64_t step, int64_t n,
                                  int64_t first_sample = 0);

// Classifier-free guidance's training labels (Ho & Salimans 2022, Algorithm 1): the label of global
// sample first_sample + i replaced by null_label with probability p_uncond, by a draw from
// (seed, LabelDrop, step, global sample index) alone, so a shard drops exactly the global batch's labels.
std::vector<int64_t> drop_labels(uint64_t seed, int64_t step, const std::vector<int64_t>& labels, double p_uncond,
                                 int64_t null_label, int64_t first_sample = 0);

}  // namespace dd::train
