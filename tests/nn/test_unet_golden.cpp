// Parity with PyTorch, from the golden files of tests/golden/make_golden.py: the UNet's output,
// L_simple and every parameter gradient; and files for the other direction (--check-cpp).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>

#include "autograd/ops.h"
#include "nn/checkpoint.h"
#include "nn/optim.h"
#include "nn/unet.h"
#include "tensor/io/safetensors.h"
#include "tests/nn/golden_path.h"

using namespace dd;

namespace {

double max_abs(const TensorF& a) {
  double m = 0;
  for (int64_t i = 0; i < a.numel(); ++i) m = std::max(m, std::fabs(static_cast<double>(a.flat(i))));
  return m;
}

TensorF slice_of(const TensorF& flat, const NamedParameter<float>& p) {
  return TensorF::view_of(flat.storage(), flat.offset() + p.offset, p.var.shape());
}

constexpr double kParity = 1e-4;  // float32 plain path vs PyTorch (docs/conventions.md)

}  // namespace

TEST_CASE("UNet output, L_simple and every parameter gradient match PyTorch (ch=16 golden file)") {
  const SafetensorsFile g = load_safetensors(golden_path("unet_golden.safetensors"));
  const UNetConfig cfg = UNetConfig::from_json(g.metadata.at("unet_config"));
  CHECK(cfg.ch == 16);
  Rng rng(0);
  UNet<float> net(cfg, rng);
  const auto params = net.named_parameters();
  // The golden file holds exactly the model's names (plus its inputs, outputs and grad.*).
  int64_t model_tensors = 0;
  for (const auto& e : g.entries())
    if (e.name.rfind("grad.", 0) != 0 && e.name != "x0" && e.name != "noise" && e.name != "t" && e.name != "x_t" &&
        e.name != "output" && e.name != "loss")
      ++model_tensors;
  CHECK(model_tensors == static_cast<int64_t>(params.size()));
  for (const auto& p : params) g.copy_to(p.name, p.var.value());

  const TensorF x_t = g.get_f32("x_t"), noise = g.get_f32("noise");
  const std::vector<int64_t> t = g.get_i64("t");
  net.zero_grad();
  VarF out = net.forward(VarF(x_t), t);
  VarF loss = mse_loss(out, VarF(noise));
  loss.backward();

  const double out_err = rel_err(out.value(), g.get_f32("output"));
  CHECK_MESSAGE(out_err <= kParity, "output rel err " << out_err);
  CHECK(loss.item() == doctest::Approx(g.get_f32("loss").item()).epsilon(kParity));
  const TensorF grads = net.flat_grads();
  double worst = 0;
  std::string worst_name;
  for (const auto& p : params) {
    const TensorF want = g.get_f32("grad." + p.name, p.var.shape());
    if (p.name.size() > 7 && p.name.compare(p.name.size() - 7, 7, ".k.bias") == 0) {
      // The attention key bias has a zero gradient in exact arithmetic: it adds <q_i, b> to every
      // logit of query i, which the softmax over keys cancels. Both sides hold only rounding noise
      // (PyTorch ~1e-11), so a relative comparison is meaningless; instead both must be negligible
      // next to the gradient of the key weights of the same block.
      const std::string kw = p.name.substr(0, p.name.size() - 4) + "weight";
      const double scale = max_abs(g.get_f32("grad." + kw));
      CHECK_MESSAGE(max_abs(want) <= 1e-5 * scale, p.name);
      CHECK_MESSAGE(max_abs(slice_of(grads, p)) <= 1e-5 * scale, p.name << " gradient " << max_abs(slice_of(grads, p)));
      continue;
    }
    const double e = rel_err(slice_of(grads, p), want);
    CHECK_MESSAGE(e <= kParity, p.name << " gradient rel err " << e);
    if (e > worst) worst = e, worst_name = p.name;
  }
  MESSAGE("worst gradient rel err " << worst << " (" << worst_name << "), output " << out_err);
}

// Files for the other direction, `make_golden.py --check-cpp FILE` (run by hand): set
// DDPM_CHECK_DIR=dir to write dir/cpp_forward.safetensors (default UNet weights + check.x, check.t
// and the C++ output) and dir/cpp_checkpoint.safetensors (a full checkpoint with EMA and Adam).
TEST_CASE("write files for make_golden.py --check-cpp when DDPM_CHECK_DIR is set") {
  const char* dir = std::getenv("DDPM_CHECK_DIR");
  if (!dir) return;
  Rng rng(123);
  UNet<float> net(UNetConfig{}, rng);
  const TensorF x = rng.normal<float>({2, 1, 28, 28});
  const std::vector<int64_t> t{0, 742};
  TensorF out;
  {
    NoGradGuard ng;
    out = net.forward(VarF(x), t).value();
  }
  SafetensorsFile f;
  for (const auto& p : net.named_parameters()) f.add(p.name, p.var.value());
  f.add("check.x", x);
  f.add_i64("check.t", {2}, t);
  f.add("check.output", out);
  f.metadata["unet_config"] = net.config().to_json();
  save_safetensors(std::string(dir) + "/cpp_forward.safetensors", f);

  Adam<float> adam(net, AdamConfig{});
  Ema<float> ema(net, 0.999);
  VarF loss = mse_loss(net.forward(VarF(x), t), VarF(TensorF({2, 1, 28, 28})));
  loss.backward();
  adam.step();
  ema.update();
  CheckpointInfo info;
  info.step = 1;
  info.config = "{\"note\": \"written by tests/nn DDPM_CHECK_DIR\"}";
  info.dataset = "none";
  info.rng = rng.state();
  info.unet_config = net.config().to_json();
  save_checkpoint(std::string(dir) + "/cpp_checkpoint.safetensors", net, &ema, &adam, info);
  MESSAGE("wrote " << std::string(dir) << "/cpp_forward.safetensors and cpp_checkpoint.safetensors");
}
