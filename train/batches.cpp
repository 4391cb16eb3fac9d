#include "train/batches.h"

#include <algorithm>
#include <numeric>
#include <stdexcept>
#include <string>

namespace dd::train {

Rng stream_rng(uint64_t seed, Stream stream, uint64_t index) {
  return Rng(seed * 0x9E3779B97F4A7C15ull + static_cast<uint64_t>(stream), index << 24);
}

BatchSampler::BatchSampler(const Tensor<float>& images, int64_t batch, uint64_t seed)
    : images_(images), batch_(batch), seed_(seed), per_epoch_(batch > 0 ? images.size(0) / batch : 0) {
  if (batch < 1) throw std::invalid_argument("--batch: expected >= 1, got " + std::to_string(batch));
  if (per_epoch_ < 1)
    throw std::invalid_argument("--batch: expected at most " + std::to_string(images.size(0)) + " (the training images), got " +
                                std::to_string(batch));
}

Tensor<float> BatchSampler::batch_for_step(int64_t step) {
  const int64_t epoch = (step - 1) / per_epoch_, pos = (step - 1) % per_epoch_;
  if (epoch != epoch_) shuffle(epoch);
  const int64_t pixels = images_.numel() / images_.size(0);
  Shape shape = images_.shape();
  shape[0] = batch_;
  Tensor<float> x(shape);
  for (int64_t i = 0; i < batch_; ++i)
    std::copy_n(images_.data() + order_[pos * batch_ + i] * pixels, pixels, x.data() + i * pixels);
  return x;
}

std::vector<int64_t> BatchSampler::labels_for_step(int64_t step, const std::vector<int64_t>& labels) {
  if (static_cast<int64_t>(labels.size()) != images_.size(0))
    throw std::invalid_argument("labels: expected one per training image (" + std::to_string(images_.size(0)) + "), got " +
                                std::to_string(labels.size()));
  const int64_t epoch = (step - 1) / per_epoch_, pos = (step - 1) % per_epoch_;
  if (epoch != epoch_) shuffle(epoch);
  std::vector<int64_t> out(batch_);
  for (int64_t i = 0; i < batch_; ++i) out[i] = labels[order_[pos * batch_ + i]];
  return out;
}

std::vector<int64_t> drop_labels(uint64_t seed, int64_t step, const std::vector<int64_t>& labels, double p_uncond,
                                 int64_t null_label, int64_t first_sample) {
  const int64_t n = static_cast<int64_t>(labels.size());
  std::vector<int64_t> out = labels;
  const Rng stream = stream_rng(seed, Stream::LabelDrop, step);
  for (int64_t i = 0; i < n; ++i) {
    Rng draw = stream.at_block(static_cast<uint64_t>(first_sample + i));  // block g of the step's stream
    if (draw.uniform1() < p_uncond) out[i] = null_label;
  }
  return out;
}

void BatchSampler::shuffle(int64_t epoch) {
  const int64_t n = images_.size(0);
  Tensor<double> keys = stream_rng(seed_, Stream::Shuffle, epoch).uniform<double>({n});
  order_.resize(n);
  std::iota(order_.begin(), order_.end(), 0);
  std::stable_sort(order_.begin(), order_.end(), [&](int64_t a, int64_t b) { return keys.data()[a] < keys.data()[b]; });
  epoch_ = epoch;
}

// Sample g takes block g of the step's timestep stream and blocks [g b, (g + 1) b) of its noise
// stream (b = the Philox blocks of one image, two normals each): disjoint for every g, and the
// same whichever process draws it.
StepDraws draw_step(uint64_t seed, int64_t step, const Shape& batch_shape, int64_t T, int64_t first_sample) {
  if (first_sample < 0) throw std::invalid_argument("draw_step: expected first_sample >= 0, got " + std::to_string(first_sample));
  const int64_t n = batch_shape.at(0);
  Shape one = batch_shape;
  one[0] = 1;
  StepDraws d;
  d.noise = Tensor<float>(batch_shape);
  const int64_t pixels = n > 0 ? d.noise.numel() / n : 0, blocks_per_image = (pixels + 1) / 2;
  const Rng t_stream = stream_rng(seed, Stream::Timesteps, step), noise_stream = stream_rng(seed, Stream::Noise, step);
  d.t.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    const uint64_t g = static_cast<uint64_t>(first_sample + i);
    d.t[i] = t_stream.at_block(g).integers(1, 1, T + 1)[0];
    const Tensor<float> eps = noise_stream.at_block(g * blocks_per_image).normal<float>(one);
    std::copy_n(eps.data(), pixels, d.noise.data() + i * pixels);
  }
  return d;
}

DropoutStream dropout_stream(uint64_t seed, int64_t step, int64_t first_sample) {
  if (first_sample < 0)
    throw std::invalid_argument("dropout_stream: expected first_sample >= 0, got " + std::to_string(first_sample));
  DropoutStream s;
  s.key = stream_rng(seed, Stream::Dropout, 0).seed();
  s.step = step;
  s.first_sample = first_sample;
  return s;
}

ddpm::TimestepDraw draw_timesteps(const ddpm::TimestepSampler& sampler, uint64_t seed, int64_t step, int64_t n,
                                  int64_t first_sample) {
  if (first_sample < 0 || n < 0)
    throw std::invalid_argument("draw_timesteps: expected n >= 0 and first_sample >= 0, got " + std::to_string(n) + ", " +
                                std::to_string(first_sample));
  const Rng stream = stream_rng(seed, Stream::Timesteps, step);
  ddpm::TimestepDraw d;
  for (int64_t i = 0; i < n; ++i) {
    Rng draw = stream.at_block(static_cast<uint64_t>(first_sample + i));  // block g of the step's stream
    const ddpm::TimestepDraw one = sampler.sample(1, draw);
    d.t.push_back(one.t.at(0));
    d.weights.push_back(one.weights.at(0));
  }
  return d;
}

}  // namespace dd::train
