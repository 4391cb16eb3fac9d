#include "apps/common/model.h"

#include <stdexcept>

#include "nn/checkpoint.h"
#include "tensor/io/safetensors.h"

namespace dd::app {

TrainConfig read_run_config(const SafetensorsFile& f) {
  auto it = f.metadata.find("config");
  if (it == f.metadata.end())
    throw std::runtime_error(f.source + ": expected a train_mnist checkpoint with a 'config' entry in __metadata__, found none");
  read_checkpoint_info(f);  // format, version, step, checksum
  try {
    TrainConfig c = TrainConfig::from_json(it->second);
    c.validate(/*this_machine=*/false);
    return c;
  } catch (const std::exception& e) {
    throw std::runtime_error(f.source + ": stored run config: " + e.what());
  }
}

TrainConfig read_run_config(const std::string& checkpoint) { return read_run_config(load_safetensors(checkpoint)); }

ResumePoint read_resume_point(const std::string& checkpoint) {
  ResumePoint p;
  p.file = load_safetensors(checkpoint);
  p.config = read_run_config(p.file);
  p.step = read_checkpoint_info(p.file).step;
  require_finite_values(p.file);  // before anything else happens (load_checkpoint checks again)
  return p;
}

LoadedRun load_run(const std::string& checkpoint, bool use_ema) {
  const SafetensorsFile f = load_safetensors(checkpoint);  // read once, validated below
  LoadedRun run;
  run.config = read_run_config(f);
  const CheckpointInfo info = read_checkpoint_info(f);
  Rng init(run.config.seed);
  run.model = std::make_unique<UNet<float>>(run.config.unet(), init);
  run.model->build_flat_buffers();
  load_weights(f, *run.model, use_ema);  // shapes, names, finite values
  run.model->eval();
  run.schedule = run.config.make_schedule();
  run.step = info.step;
  run.dataset = info.dataset;
  return run;
}

}  // namespace dd::app
