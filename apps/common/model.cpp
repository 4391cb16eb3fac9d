#include "apps/common/model.h"

#include <stdexcept>

#include "nn/checkpoint.h"
#include "tensor/io/safetensors.h"

namespace dd::app {

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
