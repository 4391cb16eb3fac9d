// The UNet's structure against the PyTorch model's (names, order, shapes, count), its configuration
// checks, and a float64 gradient check of a whole tiny UNet.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "nn/optim.h"
#include "nn/unet.h"
#include "tensor/allocator.h"
#include "tests/nn/golden_path.h"
#include "tests/tiny_unet.h"

using namespace dd;

TEST_CASE("default UNet: --list-params output identical to tools/torch_race.py --list-params (1,112,801)") {
  Rng rng(1);
  UNet<float> net(UNetConfig{}, rng);
  CHECK(net.num_parameters() == 1112801);
  std::ifstream f(golden_path("unet_default_params.txt"));
  REQUIRE_MESSAGE(f.good(), "missing golden file " << golden_path("unet_default_params.txt"));
  std::stringstream want;
  want << f.rdbuf();
  const std::string got = format_parameter_list(net);
  // Line by line, so a failure names the first differing parameter.
  std::istringstream a(got), b(want.str());
  std::string la, lb;
  int line = 0;
  while (std::getline(b, lb)) {
    ++line;
    REQUIRE_MESSAGE(std::getline(a, la), "C++ list ends before reference line " << line << ": " << lb);
    REQUIRE_MESSAGE(la == lb, "line " << line);
  }
  CHECK_FALSE(std::getline(a, la));
  CHECK(got == want.str());
}

TEST_CASE("default UNet: parameters live in one flat buffer in name order; init follows PyTorch's bounds") {
  Rng rng(2);
  UNet<float> net(UNetConfig{}, rng);
  auto ps = net.named_parameters();
  TensorF flat = net.flat_values();
  CHECK(flat.numel() == 1112801);
  for (const auto& p : ps) {
    REQUIRE(p.var.value().data() == flat.data() + p.offset);
    const auto v = p.var.value().to_vector();
    double lo = 1e9, hi = -1e9;
    for (float x : v) lo = std::min<double>(lo, x), hi = std::max<double>(hi, x);
    const bool is_norm = p.name.find("norm") != std::string::npos;
    if (is_norm) {
      // GroupNorm: weight 1, bias 0
      const double want = p.name.size() > 7 && p.name.compare(p.name.size() - 7, 7, ".weight") == 0 ? 1.0 : 0.0;
      CHECK_MESSAGE((lo == want && hi == want), p.name);
    } else {
      // U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with fan_in = in * kh * kw of the weight of this layer.
      std::string wname = p.name.substr(0, p.name.rfind('.')) + ".weight";
      Shape ws;
      for (const auto& q : ps)
        if (q.name == wname) ws = q.var.shape();
      int64_t fan_in = 1;
      for (size_t d = 1; d < ws.size(); ++d) fan_in *= ws[d];
      const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
      CHECK_MESSAGE((lo >= -bound && hi <= bound), p.name);
      if (v.size() >= 1000) CHECK_MESSAGE((lo < -0.9 * bound && hi > 0.9 * bound), p.name);  // fills the range
    }
  }
}

TEST_CASE("UNet forward gives [N, out_channels, H, W]; learned variance doubles the output channels") {
  UNetConfig c = dd_test::tiny_unet_config();
  c.learn_variance = true;
  Rng rng(3);
  UNet<float> net(c, rng);
  VarF x(rng.normal<float>({2, 1, 8, 8}));
  VarF y = net.forward(x, {0, 999});
  CHECK(y.shape() == Shape{2, 2, 8, 8});
  CHECK(net.named_parameters().back().var.shape() == Shape{2});  // conv_out.bias
}

TEST_CASE("UNet forward rejects a wrong input shape or timestep count, saying what it expected") {
  Rng rng(4);
  UNetConfig c;
  c.ch = 8;
  UNet<float> net(c, rng);
  VarF x(TensorF({2, 1, 32, 32}));
  CHECK_THROWS_WITH_AS(net.forward(x, {1, 2}), doctest::Contains("[N, 1, 28, 28]"), ShapeError);
  VarF ok(TensorF({2, 1, 28, 28}));
  CHECK_THROWS_WITH_AS(net.forward(ok, {1}), doctest::Contains("one timestep per image (2)"), ShapeError);
  CHECK_THROWS_WITH_AS(net.forward(ok, {1, -1}), doctest::Contains("got -1"), std::invalid_argument);
}

TEST_CASE("UNetConfig: invalid configurations name the field; JSON round trip") {
  UNetConfig c;
  c.ch = 12;  // 12 channels cannot form 8 groups
  CHECK_THROWS_WITH_AS(c.validate(), doctest::Contains("ch_mult"), std::invalid_argument);
  UNetConfig r;
  r.resolution = 30;  // 30 -> 15 -> 7.5: the decoder would not meet the skips
  CHECK_THROWS_WITH_AS(r.validate(), doctest::Contains("resolution"), std::invalid_argument);
  UNetConfig j;
  j.ch = 16;
  j.ch_mult = {1, 2};
  j.attn_resolutions = {14, 7};
  j.dropout = 0.1;
  j.learn_variance = true;
  CHECK(UNetConfig::from_json(j.to_json()) == j);
  CHECK_FALSE(UNetConfig::from_json(UNetConfig{}.to_json()) == j);
  CHECK_THROWS_WITH_AS(UNetConfig::from_json("{\"ch\": \"wide\"}"), doctest::Contains("wrong type"),
                       std::invalid_argument);
}

TEST_CASE("dropout acts only in training mode") {
  UNetConfig c = dd_test::tiny_unet_config();
  c.dropout = 0.5;
  Rng rng(5);
  UNet<float> net(c, rng);
  net.set_dropout_stream(DropoutStream{9, 0, 0});
  VarF x(rng.normal<float>({1, 1, 8, 8}));
  net.eval();
  auto a = net.forward(x, {10}).value().to_vector();
  auto b = net.forward(x, {10}).value().to_vector();
  CHECK(a == b);
  net.train();
  auto d = net.forward(x, {10}).value().to_vector();
  CHECK(d != a);
}

// L = sum(u * UNet(x, t)) for a tiny UNet with every kind of block: two levels (so a Downsample, an
// Upsample, channel-changing ResBlocks with nin_shortcut) and attention at 4x4 (encoder, middle,
// decoder). Gradients w.r.t. the input by dd::gradcheck, and w.r.t. elements of several parameters
// by central differences against the flat gradient buffer, both at the default tolerances.
TEST_CASE("float64 gradcheck of a whole tiny UNet (input and parameters)") {
  UNetConfig c = dd_test::tiny_unet_config();
  c.num_res_blocks = 1;
  Rng rng(6);
  UNet<double> net(c, rng);
  // Perturb the GroupNorm affine parameters away from 1 / 0 so their gradients are generic.
  for (const auto& p : net.named_parameters())
    if (p.name.find("norm") != std::string::npos)
      p.var.assign(rng.normal<double>(p.var.shape(), p.name.find("weight") != std::string::npos ? 1.0 : 0.0, 0.2));
  const std::vector<int64_t> t{3, 517};
  TensorD x = rng.normal<double>({2, 1, 8, 8});

  auto input_check = gradcheck([&](const std::vector<VarD>& v) { return net.forward(v[0], t); }, {x});
  CHECK_MESSAGE(input_check.ok, input_check.message);

  // Parameter gradients.
  TensorD u = Rng(77).normal<double>({2, 1, 8, 8});
  VarD u_var(u);
  auto loss_of = [&]() {
    NoGradGuard ng;
    return sum(net.forward(VarD(x), t) * u_var).item();
  };
  net.zero_grad();
  sum(net.forward(VarD(x), t) * u_var).backward();
  TensorD grads = net.flat_grads();
  TensorD values = net.flat_values();
  const GradcheckTolerance tol;
  int checked = 0;
  for (const auto& p : net.named_parameters()) {
    const std::string& n = p.name;
    const bool pick = n == "temb.dense.0.weight" || n == "conv_in.weight" || n == "down.0.block.0.norm1.weight" ||
                      n == "down.1.block.0.nin_shortcut.bias" || n == "down.1.attn.0.q.weight" ||
                      n == "mid.attn_1.k.bias" || n == "up.0.block.1.temb_proj.weight" ||
                      n == "up.1.upsample.conv.weight" ||
                      n == "norm_out.bias" || n == "conv_out.weight";
    if (!pick) continue;
    // Up to 6 elements spread over the tensor.
    const int64_t numel = p.var.numel();
    for (int64_t s = 0; s < std::min<int64_t>(6, numel); ++s) {
      const int64_t i = p.offset + (s * 7919) % numel;
      const double orig = values.flat(i);
      values.flat(i) = orig + tol.eps;
      const double plus = loss_of();
      values.flat(i) = orig - tol.eps;
      const double minus = loss_of();
      values.flat(i) = orig;
      const double numeric = (plus - minus) / (2 * tol.eps);
      const double analytic = grads.flat(i);
      CHECK_MESSAGE(std::fabs(analytic - numeric) <= tol.atol + tol.rtol * std::fabs(numeric),
                    n << " element " << i - p.offset << ": analytic " << analytic << " numeric " << numeric);
      ++checked;
    }
  }
  CHECK(checked >= 40);
}

TEST_CASE("a training step after the first allocates no new tensor storage (caching allocator)") {
  Rng rng(5);
  UNetConfig cfg;
  cfg.ch = 8;
  cfg.ch_mult = {1, 2};
  cfg.resolution = 16;
  cfg.attn_resolutions = {8};
  UNet<float> net(cfg, rng);
  Adam<float> adam(net, AdamConfig{});
  auto step = [&](uint64_t seed) {
    Rng data(seed);
    Var<float> x(data.normal<float>({32, 1, 16, 16}));
    net.zero_grad();
    Var<float> out = net.forward(x, data.integers(32, 0, 1000));
    Var<float> loss = mean(square(out - x));
    loss.backward();
    adam.step();
  };
  step(1);
  step(2);
  const AllocatorStats before = allocator_stats();
  step(3);
  const AllocatorStats after = allocator_stats();
  CHECK(after.reused > before.reused);  // the step did ask for large blocks
  CHECK(after.fresh == before.fresh);   // and every one came from the cache
}
