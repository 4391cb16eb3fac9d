// A trained run read back from a checkpoint file (the denoiser adapters are train/denoiser.h).
#pragma once

#include <memory>
#include <string>

#include "apps/common/run_config.h"
#include "ddpm/diffusion.h"
#include "ddpm/losses.h"
#include "nn/unet.h"
#include "tensor/io/safetensors.h"
#include "train/denoiser.h"

namespace dd::app {

using train::make_denoiser;
using train::make_train_denoiser;

// A trained run read back from a checkpoint: its config, the model (EMA weights by default,
// the raw weights with use_ema = false) and its schedule.
struct LoadedRun {
  TrainConfig config;
  std::unique_ptr<UNet<float>> model;
  ddpm::Schedule schedule;
  int64_t step = 0;
  std::string dataset;
};
LoadedRun load_run(const std::string& checkpoint, bool use_ema = true);

// The run config stored in a checkpoint's metadata, validated strictly (unknown keys, wrong types,
// values no run could have): throws one line naming the file. The checkpoint's own metadata
// (format, version, step, checksum) is validated first.
TrainConfig read_run_config(const std::string& checkpoint);
TrainConfig read_run_config(const SafetensorsFile& checkpoint);

// What --resume needs, from one read of the file: the file itself (for load_checkpoint), its
// validated config and step.
struct ResumePoint {
  SafetensorsFile file;
  TrainConfig config;
  int64_t step = 0;
};
ResumePoint read_resume_point(const std::string& checkpoint);

}  // namespace dd::app
