// The stored run config (apps/common/run_config.h, TrainConfig::from_json + validate as sample and
// nll read it from a checkpoint) and the stored model config (UNetConfig::from_json), from the
// same text. A config that passes must also give a schedule and a parameter count.
#include <stdexcept>

#include "apps/common/run_config.h"
#include "nn/unet.h"
#include "tests/fuzz/fuzz_target.h"

DD_FUZZ_TARGET(config) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    dd::app::TrainConfig c = dd::app::TrainConfig::from_json(text);
    c.validate(/*this_machine=*/false);
    (void)dd::app::unet_parameter_count(c.unet());
    (void)c.loss_options();
    if (c.T <= 2000) (void)c.make_schedule();  // larger T is valid but slow to build on every input
  } catch (const std::exception&) {
  }
  try {
    dd::UNetConfig u = dd::UNetConfig::from_json(text);
    (void)u;
  } catch (const std::exception&) {
  }
  return 0;
}
