// Module bookkeeping (names, order, flat buffers, modes) and the optimizers' arithmetic on
// hand-checkable cases. The comparisons with torch.optim are in test_golden.cpp.
#include <doctest/doctest.h>

#include <cmath>

#include "autograd/ops.h"
#include "nn/module.h"
#include "nn/optim.h"

using namespace dd;

namespace {

// A two-level tree: own parameters, then children in registration order.
struct Leaf : Module<double> {
  Var<double> w;
  explicit Leaf(double fill) { w = register_parameter("w", TensorD::full({2, 2}, fill)); }
};
struct Tree : Module<double> {
  Var<double> a, b;
  Leaf first{3.0}, second{4.0};
  Tree() {
    a = register_parameter("a", TensorD::from({3}, {1, 2, 3}));
    register_module("sub.0", first);
    b = register_parameter("b", TensorD::full({1}, 5.0));  // own parameters come first whatever the order
    register_module("sub.1", second);
  }
};

}  // namespace

TEST_CASE("named_parameters: dotted names, own parameters first, then children in registration order") {
  Tree t;
  auto ps = t.named_parameters();
  REQUIRE(ps.size() == 4);
  CHECK(ps[0].name == "a");
  CHECK(ps[1].name == "b");
  CHECK(ps[2].name == "sub.0.w");
  CHECK(ps[3].name == "sub.1.w");
  CHECK(t.num_parameters() == 3 + 1 + 4 + 4);
  CHECK(ps[0].offset == -1);  // no flat buffers yet
}

TEST_CASE("build_flat_buffers: one value and one grad storage, values kept, gradients land in place") {
  Tree t;
  t.build_flat_buffers();
  auto ps = t.named_parameters();
  CHECK(ps[0].offset == 0);
  CHECK(ps[1].offset == 3);
  CHECK(ps[2].offset == 4);
  CHECK(ps[3].offset == 8);
  TensorD flat = t.flat_values();
  REQUIRE(flat.numel() == 12);
  const std::vector<double> expect{1, 2, 3, 5, 3, 3, 3, 3, 4, 4, 4, 4};
  for (int i = 0; i < 12; ++i) CHECK(flat.flat(i) == expect[i]);
  // The module's handles see the flat buffer: writing through one is seen by the other.
  flat.flat(4) = -7.0;
  CHECK(t.first.w.value().at({0, 0}) == -7.0);
  CHECK(t.first.w.value().storage().get() == t.a.value().storage().get());

  // L = sum(a) * 2 + sum(w_second * w_second): dL/da = 2, dL/dw = 2 w = 8.
  Var<double> loss = sum(t.a) * 2.0 + sum(t.second.w * t.second.w);
  loss.backward();
  TensorD g = t.flat_grads();
  for (int i = 0; i < 3; ++i) CHECK(g.flat(i) == 2.0);
  for (int i = 3; i < 8; ++i) CHECK(g.flat(i) == 0.0);
  for (int i = 8; i < 12; ++i) CHECK(g.flat(i) == 8.0);
  CHECK(t.second.w.grad().storage().get() == g.storage().get());
  // A second backward accumulates; zero_grad clears the flat buffer.
  (sum(t.a) * 2.0).backward();
  CHECK(g.flat(0) == 4.0);
  t.zero_grad();
  for (int i = 0; i < 12; ++i) CHECK(g.flat(i) == 0.0);
}

TEST_CASE("train/eval applies to the whole tree") {
  Tree t;
  CHECK(t.training());
  t.eval();
  CHECK_FALSE(t.training());
  CHECK_FALSE(t.first.training());
  t.train();
  CHECK(t.second.training());
}

TEST_CASE("flat_values before build_flat_buffers says what is missing") {
  Tree t;
  CHECK_THROWS_WITH_AS(t.flat_values(), doctest::Contains("build_flat_buffers"), std::logic_error);
}

TEST_CASE("Adam step 1: m_hat = g and sqrt(v_hat) = |g|, so p moves by lr * g / (|g| + eps)") {
  TensorD p = TensorD::from({3}, {1.0, -1.0, 0.5});
  TensorD g = TensorD::from({3}, {0.3, -2.0, 1e-8});
  AdamConfig cfg;
  cfg.lr = 0.1;
  Adam<double> adam(p, g, cfg);
  adam.step();
  CHECK(adam.steps() == 1);
  CHECK(p.flat(0) == doctest::Approx(1.0 - 0.1 * 0.3 / (0.3 + 1e-8)).epsilon(1e-12));
  CHECK(p.flat(1) == doctest::Approx(-1.0 + 0.1 * 2.0 / (2.0 + 1e-8)).epsilon(1e-12));
  // A gradient the size of eps moves the parameter by only half a step: eps is added after the sqrt.
  CHECK(p.flat(2) == doctest::Approx(0.5 - 0.1 * 0.5).epsilon(1e-9));
  CHECK(adam.m().flat(1) == doctest::Approx(0.1 * -2.0));
  CHECK(adam.v().flat(1) == doctest::Approx(0.001 * 4.0));
}

TEST_CASE("AdamW shrinks the weights by 1 - lr * wd, independent of the gradient; Adam's L2 goes through the moments") {
  TensorD p = TensorD::from({1}, {2.0});
  TensorD g = TensorD::from({1}, {0.0});
  AdamConfig cfg;
  cfg.lr = 0.1;
  cfg.weight_decay = 0.5;
  cfg.decoupled_weight_decay = true;
  Adam<double> adamw(p, g, cfg);
  adamw.step();  // zero gradient: only the decay acts
  CHECK(p.flat(0) == doctest::Approx(2.0 * (1 - 0.1 * 0.5)).epsilon(1e-12));

  TensorD q = TensorD::from({1}, {2.0});
  cfg.decoupled_weight_decay = false;
  Adam<double> adam_l2(q, g, cfg);
  adam_l2.step();  // g_eff = 0.5 * 2 = 1 -> a full step of lr
  CHECK(q.flat(0) == doctest::Approx(2.0 - 0.1).epsilon(1e-9));
}

TEST_CASE("Adam rejects buffers of different shapes, naming both") {
  TensorD p({3}), g({4});
  CHECK_THROWS_WITH_AS(Adam<double>(p, g, AdamConfig{}), doctest::Contains("[4]"), ShapeError);
}

TEST_CASE("clip_grad_norm: returns the global norm and rescales only above the limit") {
  TensorF g = TensorF::from({2}, {3.0f, 4.0f});
  CHECK(clip_grad_norm(g, 10.0) == doctest::Approx(5.0));
  CHECK(g.flat(0) == 3.0f);  // below the limit: untouched
  CHECK(clip_grad_norm(g, 1.0) == doctest::Approx(5.0));
  CHECK(g.flat(0) == doctest::Approx(0.6).epsilon(1e-6));
  CHECK(g.flat(1) == doctest::Approx(0.8).epsilon(1e-6));
  CHECK(std::sqrt(g.flat(0) * g.flat(0) + g.flat(1) * g.flat(1)) == doctest::Approx(1.0).epsilon(1e-6));
  // A large buffer: the parallel reduction gives the same norm as the closed form.
  TensorF big = TensorF::full({100001}, 0.5f);
  CHECK(clip_grad_norm(big, 1e9) == doctest::Approx(0.5 * std::sqrt(100001.0)).epsilon(1e-9));
}

TEST_CASE("EMA: warm-up min(decay, (1+n)/(10+n)), the update, and swapping in and back") {
  Tree t;
  t.build_flat_buffers();
  Ema<double> ema(t, 0.9);
  CHECK(ema.decay_for_update(0) == doctest::Approx(0.1));
  CHECK(ema.decay_for_update(1) == doctest::Approx(2.0 / 11.0));
  CHECK(ema.decay_for_update(80) == doctest::Approx(81.0 / 90.0));
  CHECK(ema.decay_for_update(81) == doctest::Approx(0.9));  // 82/91 > 0.9: capped
  CHECK(ema.decay_for_update(100000) == 0.9);

  // Starts as a copy; after moving a to 11, update 0 gives 0.1 * 1 + 0.9 * 11.
  CHECK(ema.values().flat(0) == 1.0);
  t.flat_values().flat(0) = 11.0;
  ema.update();
  CHECK(ema.values().flat(0) == doctest::Approx(0.1 * 1.0 + 0.9 * 11.0));
  ema.update();  // update 1: d = 2/11
  const double after2 = 2.0 / 11.0 * (0.1 + 9.9) + 9.0 / 11.0 * 11.0;
  CHECK(ema.values().flat(0) == doctest::Approx(after2));
  CHECK(ema.num_updates() == 2);

  {
    EmaSwapGuard<double> guard(ema);
    CHECK(t.a.value().flat(0) == doctest::Approx(after2));  // the model now runs on EMA weights
    CHECK(ema.swapped());
    CHECK_THROWS_AS(ema.update(), std::logic_error);
  }
  CHECK(t.a.value().flat(0) == 11.0);
  CHECK(ema.values().flat(0) == doctest::Approx(after2));
}
