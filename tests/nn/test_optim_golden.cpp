// Adam and AdamW against torch.optim (tests/golden/optim_golden.safetensors, from make_golden.py).
#include <doctest/doctest.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "nn/optim.h"
#include "tensor/io/safetensors.h"
#include "tests/nn/golden_path.h"

using namespace dd;

namespace {

constexpr double kParity = 1e-4;  // float32 plain path vs PyTorch (docs/conventions.md)

}  // namespace

TEST_CASE("Adam and AdamW match torch.optim over several steps (parameters and moments)") {
  const SafetensorsFile g = load_safetensors(golden_path("optim_golden.safetensors"));
  const int steps = std::stoi(g.metadata.at("steps"));
  REQUIRE(steps >= 3);
  for (const std::string tag : {"adam", "adamw"}) {
    CAPTURE(tag);
    const auto hp = nlohmann::json::parse(g.metadata.at(tag));
    AdamConfig cfg;
    cfg.lr = hp.at("lr");
    cfg.beta1 = hp.at("betas")[0];
    cfg.beta2 = hp.at("betas")[1];
    cfg.eps = hp.at("eps");
    cfg.weight_decay = hp.value("weight_decay", 0.0);
    cfg.decoupled_weight_decay = tag == "adamw";
    if (tag == "adamw") CHECK(cfg.weight_decay > 0);
    // Two tensors packed into one flat buffer, as a Module would.
    const TensorF p0 = g.get_f32("p.0"), p1 = g.get_f32("p.1");
    const int64_t n0 = p0.numel(), n = n0 + p1.numel();
    TensorF params({n}), grads({n});
    auto part = [&](const TensorF& flat, int i) {
      return i == 0 ? TensorF::view_of(flat.storage(), 0, p0.shape()) : TensorF::view_of(flat.storage(), n0, p1.shape());
    };
    part(params, 0).copy_from(p0);
    part(params, 1).copy_from(p1);
    Adam<float> opt(params, grads, cfg);
    for (int k = 1; k <= steps; ++k) {
      for (int i = 0; i < 2; ++i) part(grads, i).copy_from(g.get_f32("g." + std::to_string(k) + "." + std::to_string(i)));
      opt.step();
      for (int i = 0; i < 2; ++i) {
        // Compare the change from the start: it is what the optimizer computes (the parameters
        // themselves are ~100x larger than the updates and would hide an error).
        const TensorF init = i == 0 ? p0 : p1;
        const TensorF want = g.get_f32(tag + ".p." + std::to_string(k) + "." + std::to_string(i));
        TensorF got_delta(init.shape()), want_delta(init.shape());
        for (int64_t j = 0; j < init.numel(); ++j) {
          got_delta.flat(j) = part(params, i).flat(j) - init.flat(j);
          want_delta.flat(j) = want.flat(j) - init.flat(j);
        }
        const double e = rel_err(got_delta, want_delta);
        CHECK_MESSAGE(e <= kParity, "step " << k << " tensor " << i << " update rel err " << e);
      }
    }
    for (int i = 0; i < 2; ++i) {
      CHECK(rel_err(part(opt.m(), i), g.get_f32(tag + ".m." + std::to_string(i))) <= kParity);
      CHECK(rel_err(part(opt.v(), i), g.get_f32(tag + ".v." + std::to_string(i))) <= kParity);
    }
  }
}

