// train::TrainStep, the one training step train_mnist runs and apps/bench times: the same numbers
// as the step written out by hand (loss, backward, clipping, warm-up, Adam, EMA), nothing changed by
// a non-finite loss, an error for a non-finite update; the denoiser's mode guard; the draws.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "ddpm/losses.h"
#include "ddpm/schedule.h"
#include "nn/optim.h"
#include "nn/unet.h"
#include "train/batches.h"
#include "train/denoiser.h"
#include "train/train_step.h"
#include "tests/tiny_unet.h"

using namespace dd;

namespace {
UNetConfig tiny_unet() {
  UNetConfig c = dd_test::tiny_unet_config();
  c.dropout = 0.1;
  return c;
}
struct Batch {
  TensorF x0, noise;
  std::vector<int64_t> t;
};
Batch batch(int64_t step) {
  Rng rng(100 + static_cast<uint64_t>(step));
  Batch b;
  b.x0 = rng.uniform<float>({4, 1, 8, 8}, -1.0f, 1.0f);
  b.noise = rng.normal<float>(b.x0.shape());
  b.t = rng.integers(4, 1, 51);
  return b;
}
}  // namespace

TEST_CASE("TrainStep equals the step written out: loss, backward, clip at 1, warm-up lr, Adam, EMA (bit for bit)") {
  const ddpm::Schedule s = ddpm::linear_schedule(50);
  Rng init_a(1), init_b(1);
  UNet<float> a(tiny_unet(), init_a), b(tiny_unet(), init_b);
  Adam<float> adam_a(a, AdamConfig{}), adam_b(b, AdamConfig{});
  Ema<float> ema_a(a, 0.99), ema_b(b, 0.99);
  train::TrainStepConfig cfg;
  cfg.lr = 1e-3;
  cfg.warmup = 4;
  cfg.grad_clip = 1.0;
  train::TrainStep step(a, adam_a, ema_a, s, cfg);
  const ddpm::TrainDenoiser by_hand = train::make_train_denoiser(b);
  for (int64_t k = 1; k <= 3; ++k) {
    const Batch bt = batch(k);
    a.set_dropout_stream(train::dropout_stream(7, k));
    b.set_dropout_stream(train::dropout_stream(7, k));
    const train::TrainStepResult r = step.run(k, bt.x0, bt.t, bt.noise);
    CHECK(r.applied);
    CHECK(r.lr == doctest::Approx(1e-3 * k / 4.0));
    b.zero_grad();
    ddpm::TrainingLoss loss = ddpm::training_loss(s, by_hand, bt.x0, bt.t, bt.noise);
    loss.loss.backward();
    const double norm = clip_grad_norm(b, 1.0);
    adam_b.set_lr(1e-3 * std::min(1.0, k / 4.0));
    adam_b.step();
    ema_b.update();
    CHECK(r.loss == loss.loss.item());
    CHECK(r.grad_norm == norm);
    CHECK(r.per_sample == loss.per_sample);
  }
  CHECK(a.flat_values().to_vector() == b.flat_values().to_vector());
  CHECK(ema_a.values().to_vector() == ema_b.values().to_vector());
  CHECK(adam_a.m().to_vector() == adam_b.m().to_vector());
  CHECK(step.lr_at(100) == doctest::Approx(1e-3));
}

TEST_CASE("TrainStep: a non-finite loss changes nothing; a non-finite update is an error; the gradient hook runs") {
  const ddpm::Schedule s = ddpm::linear_schedule(50);
  Rng init(2);
  UNet<float> net(tiny_unet(), init);
  Adam<float> adam(net, AdamConfig{});
  Ema<float> ema(net, 0.99);
  train::TrainStep step(net, adam, ema, s, train::TrainStepConfig{});
  Batch bt = batch(1);
  const std::vector<float> before = net.flat_values().to_vector(), ema_before = ema.values().to_vector();
  bt.x0.data()[3] = NAN;
  const train::TrainStepResult r = step.run(1, bt.x0, bt.t, bt.noise);
  CHECK_FALSE(r.applied);
  CHECK(std::isnan(r.loss));
  CHECK(net.flat_values().to_vector() == before);
  CHECK(ema.values().to_vector() == ema_before);
  CHECK(adam.steps() == 0);

  int hook_calls = 0;
  step.gradient_hook = [&](TensorF& g) {
    ++hook_calls;
    CHECK(g.numel() == net.num_parameters());
  };
  CHECK(step.run(1, batch(1).x0, batch(1).t, batch(1).noise).applied);
  CHECK(hook_calls == 1);

  // A non-finite loss still calls the hook (other processes wait in its collective), with a NaN
  // gradient, so that their reduced gradient is NaN too and they skip the step as well.
  const std::vector<float> kept = net.flat_values().to_vector();
  bool all_nan = false;
  step.gradient_hook = [&](TensorF& g) {
    ++hook_calls;
    all_nan = g.numel() == net.num_parameters() && std::all_of(g.data(), g.data() + g.numel(), [](float v) { return std::isnan(v); });
  };
  Batch bad = batch(3);
  bad.x0.data()[0] = NAN;
  CHECK_FALSE(step.run(3, bad.x0, bad.t, bad.noise).applied);
  CHECK(hook_calls == 2);
  CHECK(all_nan);
  CHECK(net.flat_values().to_vector() == kept);

  train::TrainStepConfig huge;
  huge.lr = INFINITY;
  train::TrainStep diverging(net, adam, ema, s, huge);
  CHECK_THROWS_WITH_AS(diverging.run(2, batch(2).x0, batch(2).t, batch(2).noise),
                       doctest::Contains("expected finite parameters after the Adam update"), std::runtime_error);
}

TEST_CASE("make_denoiser runs in eval mode and puts the training mode back, also when the network throws") {
  Rng init(3);
  UNet<float> net(tiny_unet(), init);
  net.train();
  const ddpm::Denoiser d = train::make_denoiser(net);
  Rng rng(4);
  const TensorF x = rng.normal<float>({2, 1, 8, 8});
  // Dropout is on in training mode: two eval-mode calls agree, so the denoiser is not in training mode.
  CHECK(d(x, {1, 2}).to_vector() == d(x, {1, 2}).to_vector());
  CHECK(net.training());
  CHECK_THROWS(d(rng.normal<float>({2, 1, 5, 5}), {1, 2}));  // wrong image size
  CHECK(net.training());
  net.eval();
  CHECK_THROWS(d(x, {1}));
  CHECK_FALSE(net.training());
}

TEST_CASE("draw_step and BatchSampler: a function of (seed, step) alone; batches cover an epoch without repeats") {
  const train::StepDraws a = train::draw_step(5, 12, {3, 1, 2, 2}, 100), b = train::draw_step(5, 12, {3, 1, 2, 2}, 100);
  CHECK(a.t == b.t);
  CHECK(a.noise.to_vector() == b.noise.to_vector());
  CHECK(train::draw_step(5, 13, {3, 1, 2, 2}, 100).noise.to_vector() != a.noise.to_vector());
  for (int64_t t : a.t) CHECK((t >= 1 && t <= 100));
  TensorF images({6, 1, 1, 1});
  for (int64_t i = 0; i < 6; ++i) images.data()[i] = static_cast<float>(i);
  train::BatchSampler sampler(images, 2, 9);
  CHECK(sampler.steps_per_epoch() == 3);
  std::vector<float> seen;
  for (int64_t step = 1; step <= 3; ++step)
    for (float v : sampler.batch_for_step(step).to_vector()) seen.push_back(v);
  std::sort(seen.begin(), seen.end());
  CHECK(seen == std::vector<float>{0, 1, 2, 3, 4, 5});
  train::BatchSampler again(images, 2, 9);
  CHECK(again.batch_for_step(2).to_vector() == train::BatchSampler(images, 2, 9).batch_for_step(2).to_vector());
  CHECK_THROWS_WITH(train::BatchSampler(images, 7, 9), doctest::Contains("expected at most 6 (the training images), got 7"));
  CHECK_THROWS_WITH(train::BatchSampler(images, 0, 9), doctest::Contains("expected >= 1, got 0"));
}

TEST_CASE("draw_step: a shard of the global batch draws exactly the global batch's numbers for its samples") {
  // Data parallelism relies on it: process r trains on samples [r n, (r + 1) n) of the step's batch.
  const Shape global{6, 1, 3, 3}, shard{3, 1, 3, 3};
  const train::StepDraws all = train::draw_step(9, 4, global, 1000);
  const train::StepDraws second = train::draw_step(9, 4, shard, 1000, 3);
  const train::StepDraws first = train::draw_step(9, 4, shard, 1000, 0);
  const auto noise = all.noise.to_vector();
  CHECK(std::vector<float>(noise.begin(), noise.begin() + 27) == first.noise.to_vector());
  CHECK(std::vector<float>(noise.begin() + 27, noise.end()) == second.noise.to_vector());
  CHECK(std::vector<int64_t>(all.t.begin(), all.t.begin() + 3) == first.t);
  CHECK(std::vector<int64_t>(all.t.begin() + 3, all.t.end()) == second.t);
  // and the samples differ from each other (no stream reused between samples)
  CHECK(first.noise.to_vector() != second.noise.to_vector());
}

TEST_CASE("dropout_stream: the run's (seed, Dropout) key, the step and the shard's first global sample") {
  const DropoutStream s = train::dropout_stream(9, 4, 3);
  CHECK(s.key == train::stream_rng(9, train::Stream::Dropout, 0).seed());
  CHECK(s.key != train::dropout_stream(10, 4, 3).key);
  CHECK(s.step == 4);
  CHECK(s.first_sample == 3);
  // nn/dropout.h's site k of step s is stream_rng's index s 2^10 + k of the Dropout stream.
  CHECK(s.call_stream(2).state() == train::stream_rng(9, train::Stream::Dropout, 4 * 1024 + 2).state());
  CHECK_THROWS_WITH_AS(train::dropout_stream(9, 4, -1), doctest::Contains("expected first_sample >= 0"), std::invalid_argument);
}

TEST_CASE("draw_timesteps: a shard draws the global batch's importance-sampled t and weights for its samples") {
  // A warmed-up loss-second-moment sampler (non-uniform p_t), so the weights are not all 1.
  ddpm::LossSecondMomentTimesteps sampler(20);
  std::vector<int64_t> ts;
  std::vector<double> losses;
  for (int rep = 0; rep < 10; ++rep)
    for (int64_t t = 1; t <= 20; ++t) {
      ts.push_back(t);
      losses.push_back(0.1 + 0.05 * static_cast<double>(t));
    }
  sampler.update(ts, losses);
  REQUIRE(sampler.warmed_up());
  const ddpm::TimestepDraw all = train::draw_timesteps(sampler, 9, 4, 8);
  const ddpm::TimestepDraw second = train::draw_timesteps(sampler, 9, 4, 4, 4);
  CHECK(std::vector<int64_t>(all.t.begin() + 4, all.t.end()) == second.t);
  CHECK(std::vector<double>(all.weights.begin() + 4, all.weights.end()) == second.weights);
  CHECK(std::vector<int64_t>(all.t.begin(), all.t.begin() + 4) != second.t);
  CHECK(std::any_of(all.weights.begin(), all.weights.end(), [](double w) { return w != 1.0; }));
  // One process draws what the sampler draws from the step's Timesteps stream (so checkpoints of
  // earlier runs resume to the same t).
  Rng stream = train::stream_rng(9, train::Stream::Timesteps, 4);
  const ddpm::TimestepDraw direct = sampler.sample(8, stream);
  CHECK(direct.t == all.t);
  CHECK(direct.weights == all.weights);
  CHECK(train::draw_timesteps(sampler, 9, 5, 8).t != all.t);  // the next step
}
