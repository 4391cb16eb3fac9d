#include "apps/common/model.h"

#include <stdexcept>

#include "autograd/var.h"
#include "nn/checkpoint.h"
#include "tensor/io/safetensors.h"

namespace dd::app {

namespace {
std::vector<int64_t> zero_based(const std::vector<int64_t>& t) {
  std::vector<int64_t> out(t.size());
  for (size_t i = 0; i < t.size(); ++i) out[i] = t[i] - 1;
  return out;
}
}  // namespace

ddpm::Denoiser make_denoiser(UNet<float>& model) {
  return [&model](const Tensor<float>& x_t, const std::vector<int64_t>& t) {
    NoGradGuard no_grad;
    const bool was_training = model.training();
    model.eval();
    Tensor<float> out = model.forward(Var<float>(x_t), zero_based(t)).value();
    model.train(was_training);
    return out;
  };
}

ddpm::TrainDenoiser make_train_denoiser(UNet<float>& model) {
  return [&model](const Var<float>& x_t, const std::vector<int64_t>& t) { return model.forward(x_t, zero_based(t)); };
}

TrainConfig read_run_config(const std::string& checkpoint) {
  SafetensorsFile f = load_safetensors(checkpoint);
  auto it = f.metadata.find("config");
  if (it == f.metadata.end())
    throw std::runtime_error(checkpoint + ": expected a train_mnist checkpoint with a 'config' entry in __metadata__, found none");
  try {
    return TrainConfig::from_json(it->second);
  } catch (const std::exception& e) {
    throw std::runtime_error(checkpoint + ": " + e.what());
  }
}

LoadedRun load_run(const std::string& checkpoint, bool use_ema) {
  LoadedRun run;
  run.config = read_run_config(checkpoint);
  Rng init(run.config.seed);
  run.model = std::make_unique<UNet<float>>(run.config.unet(), init);
  run.model->build_flat_buffers();
  load_weights(checkpoint, *run.model, use_ema);
  run.model->eval();
  run.schedule = run.config.make_schedule();
  SafetensorsFile meta = load_safetensors(checkpoint);
  if (meta.metadata.count("step")) run.step = std::stoll(meta.metadata.at("step"));
  if (meta.metadata.count("dataset")) run.dataset = meta.metadata.at("dataset");
  return run;
}

}  // namespace dd::app
