// Class-conditional training and classifier-free guidance (Ho & Salimans 2022): the guided
// denoiser's formula (w = 0 is the conditional prediction bit for bit), the label draws of a
// training run, a conditional training step, and a tiny conditional model that learns to draw
// the class it is asked for.
#include <doctest/doctest.h>

#include <cmath>
#include <stdexcept>

#include "ddpm/sample.h"
#include "ddpm/schedule.h"
#include "nn/optim.h"
#include "nn/unet.h"
#include "train/batches.h"
#include "train/denoiser.h"
#include "train/train_step.h"
#include "tests/tiny_unet.h"

using namespace dd;

namespace {
UNetConfig tiny_cond(int classes, bool attention = true) {
  UNetConfig c = dd_test::tiny_unet_config();
  if (!attention) c.attn_resolutions = {};
  c.num_classes = classes;
  return c;
}
// Random label rows, so conditional and unconditional predictions differ.
void randomise_labels(UNet<float>& net, uint64_t seed) {
  for (const auto& p : net.named_parameters())
    if (p.name == "label_emb.weight") p.var.assign(Rng(seed).normal<float>(p.var.shape()));
}
}  // namespace

TEST_CASE("guided denoiser: w = 0 is the conditional prediction bit for bit; w > 0 is (1 + w) eps_y - w eps_null") {
  Rng rng(3);
  UNet<float> net(tiny_cond(3), rng);
  randomise_labels(net, 4);
  const TensorF x = rng.normal<float>({3, 1, 8, 8});
  const std::vector<int64_t> t{1, 20, 50}, labels{0, 2, 1}, null(3, 3);
  const TensorF cond = train::make_denoiser(net, labels)(x, t);
  const TensorF uncond = train::make_denoiser(net, null)(x, t);
  CHECK(train::make_guided_denoiser(net, labels, 0.0)(x, t).to_vector() == cond.to_vector());
  double differ = 0;
  for (int64_t i = 0; i < cond.numel(); ++i) differ += std::fabs(cond.flat(i) - uncond.flat(i));
  REQUIRE(differ > 1e-3);  // otherwise the next check could not tell the terms apart
  for (double w : {1.0, 2.5}) {
    const TensorF guided = train::make_guided_denoiser(net, labels, w)(x, t);
    for (int64_t i = 0; i < cond.numel(); ++i)
      CHECK(guided.flat(i) == doctest::Approx((1 + w) * cond.flat(i) - w * uncond.flat(i)).epsilon(1e-5));
  }
  // The unconditional call of a conditional model is the null label's.
  CHECK(train::make_denoiser(net)(x, t).to_vector() == uncond.to_vector());
}

TEST_CASE("guided denoiser in an interval of t: guided inside, the conditional prediction bit for bit outside") {
  Rng rng(11);
  UNet<float> net(tiny_cond(3), rng);
  randomise_labels(net, 12);
  const TensorF x = rng.normal<float>({4, 1, 8, 8});
  const std::vector<int64_t> labels{0, 2, 1, 1};
  const train::GuidanceInterval interval{10, 30};
  // Every t outside: the conditional prediction, bit for bit.
  const std::vector<int64_t> outside{1, 9, 31, 50};
  CHECK(train::make_guided_denoiser(net, labels, 2.0, interval)(x, outside).to_vector() ==
        train::make_denoiser(net, labels)(x, outside).to_vector());
  // A batch with t inside and outside (the ends included): per image, guided where t is inside.
  const std::vector<int64_t> mixed{9, 10, 30, 31};
  const TensorF cond = train::make_denoiser(net, labels)(x, mixed);
  const TensorF all_t = train::make_guided_denoiser(net, labels, 2.0)(x, mixed);
  const TensorF in_interval = train::make_guided_denoiser(net, labels, 2.0, interval)(x, mixed);
  const int64_t per_image = 64;
  for (int64_t n = 0; n < 4; ++n) {
    const TensorF& expect = interval.contains(mixed[n]) ? all_t : cond;
    for (int64_t k = n * per_image; k < (n + 1) * per_image; ++k) CHECK(in_interval.flat(k) == expect.flat(k));
  }
  double differ = 0;
  for (int64_t k = 0; k < all_t.numel(); ++k) differ += std::fabs(all_t.flat(k) - cond.flat(k));
  REQUIRE(differ > 1e-3);  // the two branches are told apart
  // A bad interval, and one t per image.
  CHECK_THROWS_WITH_AS(train::make_guided_denoiser(net, labels, 1.0, {0, 5}), "--guidance-interval: expected 1 <= LO <= HI, got 0,5",
                       std::invalid_argument);
  CHECK_THROWS_AS(train::make_guided_denoiser(net, labels, 1.0, {6, 5}), std::invalid_argument);
  CHECK_THROWS_WITH_AS(train::make_guided_denoiser(net, labels, 1.0, interval)(x, {10, 10}),
                       doctest::Contains("expected one"), std::invalid_argument);
}

TEST_CASE("balanced_guidance_interval: t in [ceil(0.2 T), floor(0.7 T)]") {
  CHECK(train::balanced_guidance_interval(1000).t_min == 200);
  CHECK(train::balanced_guidance_interval(1000).t_max == 700);
  CHECK(train::balanced_guidance_interval(50).t_min == 10);
  CHECK(train::balanced_guidance_interval(50).t_max == 35);
  CHECK(train::balanced_guidance_interval(7).t_min == 2);  // ceil(1.4)
  CHECK(train::balanced_guidance_interval(7).t_max == 4);  // floor(4.9)
  CHECK_THROWS_AS(train::balanced_guidance_interval(0), std::invalid_argument);
}

TEST_CASE("guided denoiser with a learned variance mixes the eps channels only") {
  Rng rng(5);
  UNetConfig c = tiny_cond(2);
  c.learn_variance = true;
  UNet<float> net(c, rng);
  randomise_labels(net, 6);
  const TensorF x = rng.normal<float>({2, 1, 8, 8});
  const std::vector<int64_t> t{3, 30}, labels{1, 0}, null(2, 2);
  const TensorF cond = train::make_denoiser(net, labels)(x, t), uncond = train::make_denoiser(net, null)(x, t);
  const TensorF guided = train::make_guided_denoiser(net, labels, 2.0)(x, t);
  REQUIRE(guided.shape() == Shape{2, 2, 8, 8});
  for (int64_t n = 0; n < 2; ++n)
    for (int64_t k = 0; k < 64; ++k) {
      const int64_t eps = n * 128 + k, var = eps + 64;
      CHECK(guided.flat(eps) == doctest::Approx(3 * cond.flat(eps) - 2 * uncond.flat(eps)).epsilon(1e-5));
      CHECK(guided.flat(var) == cond.flat(var));
    }
}

TEST_CASE("conditional adapters: errors for an unconditional model, a bad weight, a label count mismatch") {
  Rng rng(7);
  UNetConfig plain = tiny_cond(0);
  UNet<float> uncond(plain, rng);
  const std::vector<int64_t> labels{0, 1};
  CHECK_THROWS_WITH_AS(train::make_guided_denoiser(uncond, labels, 1.0),
                       "guided denoiser: expected a class-conditional model (num_classes > 0), got an unconditional one",
                       std::invalid_argument);
  CHECK_THROWS_AS(train::make_denoiser(uncond, labels), std::invalid_argument);
  CHECK_NOTHROW(train::make_denoiser(uncond, std::vector<int64_t>{}));
  UNet<float> net(tiny_cond(2), rng);
  CHECK_THROWS_WITH_AS(train::make_guided_denoiser(net, labels, -1.0),
                       "--guidance: expected a finite weight >= 0, got -1.000000", std::invalid_argument);
  CHECK_THROWS_AS(train::make_guided_denoiser(net, labels, NAN), std::invalid_argument);
  const TensorF x3 = rng.normal<float>({3, 1, 8, 8});
  CHECK_THROWS_WITH_AS(train::make_guided_denoiser(net, labels, 1.0)(x3, {1, 1, 1}),
                       "conditional denoiser: expected one label per image (3), got 2 labels", std::invalid_argument);
}

TEST_CASE("drop_labels: a function of (seed, step); p_uncond of the labels become null; labels_for_step follows the batch") {
  std::vector<int64_t> labels(4000);
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<int64_t>(i % 10);
  const auto a = train::drop_labels(11, 5, labels, 0.1, 10), b = train::drop_labels(11, 5, labels, 0.1, 10);
  CHECK(a == b);
  CHECK(train::drop_labels(11, 6, labels, 0.1, 10) != a);
  int64_t dropped = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i] == 10) ++dropped;
    else CHECK(a[i] == labels[i]);
  }
  // Binomial(4000, 0.1): mean 400, sd 19; 5 sd either side.
  CHECK(dropped > 305);
  CHECK(dropped < 495);
  CHECK(train::drop_labels(11, 5, labels, 0.0, 10) == labels);
  CHECK(train::drop_labels(11, 5, labels, 1.0, 10) == std::vector<int64_t>(labels.size(), 10));

  // Image i holds the value i in every pixel and has the label i mod 7.
  const int64_t n = 30;
  TensorF images({n, 1, 2, 2});
  std::vector<int64_t> image_labels(n);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t k = 0; k < 4; ++k) images.flat(i * 4 + k) = static_cast<float>(i);
    image_labels[i] = i % 7;
  }
  train::BatchSampler sampler(images, 4, 3);
  for (int64_t step : {1, 7, 8, 9, 20}) {  // 7 steps per epoch: crosses epochs both ways
    const std::vector<int64_t> got = sampler.labels_for_step(step, image_labels);
    const TensorF batch = sampler.batch_for_step(step);
    REQUIRE(got.size() == 4);
    for (int64_t i = 0; i < 4; ++i) CHECK(got[i] == static_cast<int64_t>(batch.flat(i * 4)) % 7);
  }
  CHECK_THROWS_AS(sampler.labels_for_step(1, std::vector<int64_t>(5, 0)), std::invalid_argument);
}

TEST_CASE("conditional TrainStep: only the used label rows move; labels are required exactly for a conditional model") {
  const ddpm::Schedule s = ddpm::linear_schedule(50);
  Rng rng(8);
  UNet<float> net(tiny_cond(3), rng);
  Adam<float> adam(net, AdamConfig{});
  Ema<float> ema(net, 0.99);
  train::TrainStep step(net, adam, ema, s, train::TrainStepConfig{});
  const std::vector<float> before = net.named_parameters().back().var.value().contiguous().to_vector();  // the N(0, 1) rows (a copy)
  const TensorF x0 = rng.uniform<float>({4, 1, 8, 8}, -1.0f, 1.0f), noise = rng.normal<float>(x0.shape());
  const std::vector<int64_t> t{1, 10, 20, 50};
  CHECK_THROWS_WITH_AS(step.run(1, x0, t, noise), "training step: expected the batch's labels for a conditional model, got none",
                       std::invalid_argument);
  const train::TrainStepResult r = step.run(1, x0, t, noise, {}, {0, 3, 0, 3});  // label 1, 2 unused
  REQUIRE(r.applied);
  const auto p = net.named_parameters().back();
  REQUIRE(p.name == "label_emb.weight");
  const TensorF w = p.var.value().contiguous();
  auto row_moved = [&](int64_t row) {
    bool moved = false;
    for (int64_t k = 0; k < w.size(1); ++k) moved = moved || w.at({row, k}) != before[row * w.size(1) + k];
    return moved;
  };
  CHECK(row_moved(0));
  CHECK(row_moved(3));
  CHECK_FALSE(row_moved(1));
  CHECK_FALSE(row_moved(2));
  Rng r2(8);
  UNet<float> plain(tiny_cond(0), r2);
  Adam<float> adam2(plain, AdamConfig{});
  Ema<float> ema2(plain, 0.99);
  train::TrainStep step2(plain, adam2, ema2, s, train::TrainStepConfig{});
  CHECK_THROWS_WITH_AS(step2.run(1, x0, t, noise, {}, {0, 0, 0, 0}), "training step: labels given to an unconditional model",
                       std::invalid_argument);
}

// Two classes of 8x8 images: class 0 bright on the left half, class 1 on the right (plus noise).
// A tiny conditional UNet trained 600 steps with p_uncond = 0.1 draws, asked for a class, images
// nearer that class's mean than the other's, far more often than chance (1/2).
TEST_CASE("a tiny conditional model trained on two classes draws the class it is asked for") {
  const int64_t per_class = 64, n = 2 * per_class;
  Rng data_rng(21);
  TensorF images({n, 1, 8, 8});
  std::vector<int64_t> labels(n);
  TensorF means({2, 64});
  for (int64_t i = 0; i < n; ++i) {
    labels[i] = i % 2;
    for (int64_t y = 0; y < 8; ++y)
      for (int64_t x = 0; x < 8; ++x) {
        const bool bright = (x < 4) == (labels[i] == 0);
        images.flat(i * 64 + y * 8 + x) = (bright ? 0.8f : -0.8f) + 0.1f * data_rng.normal<float>({1}).flat(0);
      }
  }
  for (int64_t i = 0; i < n; ++i)
    for (int64_t k = 0; k < 64; ++k) means.flat(labels[i] * 64 + k) += images.flat(i * 64 + k) / per_class;

  const ddpm::Schedule s = ddpm::linear_schedule(100, 1e-4, 0.1);
  Rng init(22);
  UNet<float> net(tiny_cond(2, false), init);
  Adam<float> adam(net, AdamConfig{});
  Ema<float> ema(net, 0.9);
  train::TrainStepConfig cfg;
  cfg.lr = 3e-3;
  train::TrainStep step(net, adam, ema, s, cfg);
  const uint64_t seed = 5;
  train::BatchSampler sampler(images, 16, seed);
  for (int64_t k = 1; k <= 600; ++k) {
    const TensorF x0 = sampler.batch_for_step(k);
    const std::vector<int64_t> y =
        train::drop_labels(seed, k, sampler.labels_for_step(k, labels), 0.1, net.config().null_label());
    const train::StepDraws d = train::draw_step(seed, k, x0.shape(), s.T);
    REQUIRE(step.run(k, x0, d.t, d.noise, {}, y).applied);
  }

  const int64_t asked_n = 40;
  std::vector<int64_t> asked(asked_n);
  for (int64_t i = 0; i < asked_n; ++i) asked[i] = i < asked_n / 2 ? 0 : 1;
  for (double w : {0.0, 2.0}) {
    Rng sample_rng(23);
    const TensorF x = ddpm::sample(s, train::make_guided_denoiser(net, asked, w), {asked_n, 1, 8, 8}, sample_rng);
    int64_t hits = 0;
    for (int64_t i = 0; i < asked_n; ++i) {
      double d[2] = {0, 0};
      for (int c = 0; c < 2; ++c)
        for (int64_t k = 0; k < 64; ++k) d[c] += std::pow(x.flat(i * 64 + k) - means.flat(c * 64 + k), 2);
      hits += (d[1] < d[0] ? 1 : 0) == asked[i];
    }
    MESSAGE("guidance " << w << ": " << hits << " of " << asked_n << " samples nearest the asked class's mean");
    // Binomial(40, 1/2) reaches 30 with probability 0.1 %.
    CHECK(hits >= 30);
  }
}
