// The learning rate of each step (train::TrainStep::lr_at): the linear warm-up, then constant or a
// half cosine down to 0 at the last step.
#include <doctest/doctest.h>

#include <cmath>

#include "ddpm/schedule.h"
#include "nn/optim.h"
#include "nn/unet.h"
#include "train/train_step.h"
#include "tests/tiny_unet.h"

using namespace dd;


TEST_CASE("lr_at: warm-up, then a half cosine from the peak to 0 at decay_steps") {
  Rng init(1);
  UNet<float> net(dd_test::one_level_unet_config(), init);
  Adam<float> adam(net, AdamConfig{});
  Ema<float> ema(net, 0.99);
  const ddpm::Schedule s = ddpm::linear_schedule(50);
  train::TrainStepConfig cfg;
  cfg.lr = 1e-3;
  cfg.warmup = 10;
  cfg.decay_steps = 110;
  train::TrainStep step(net, adam, ema, s, cfg);
  CHECK(step.lr_at(5) == doctest::Approx(5e-4).epsilon(1e-12));
  CHECK(step.lr_at(10) == doctest::Approx(1e-3).epsilon(1e-12));
  // a quarter of the way: cos(pi / 4); half way: exactly half the peak; the end: 0, and it stays there
  CHECK(step.lr_at(35) == doctest::Approx(1e-3 * 0.5 * (1 + std::sqrt(0.5))).epsilon(1e-12));
  CHECK(step.lr_at(60) == doctest::Approx(5e-4).epsilon(1e-12));
  CHECK(std::abs(step.lr_at(110)) < 1e-18);
  CHECK(std::abs(step.lr_at(150)) < 1e-18);
  for (int64_t k = 11; k <= 110; ++k) CHECK(step.lr_at(k) < step.lr_at(k - 1));

  cfg.decay_steps = 0;  // no decay: the peak after the warm-up, for ever
  train::TrainStep constant(net, adam, ema, s, cfg);
  CHECK(constant.lr_at(10) == 1e-3);
  CHECK(constant.lr_at(100000) == 1e-3);
}
