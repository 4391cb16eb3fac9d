// The safetensors parser (header, offsets, dtypes, metadata) and the checkpoint loader behind it
// (names and shapes against a model, finite values, metadata fields, the stored run config):
// parse_safetensors, then load_checkpoint / load_weights into a tiny UNet and read_run_config,
// as train_mnist --resume, sample and nll do. The checksum is skipped in this build
// (FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION) so inputs get past it.
#include <stdexcept>

#include "apps/common/model.h"
#include "nn/checkpoint.h"
#include "nn/unet.h"
#include "tensor/io/safetensors.h"
#include "tests/fuzz/fuzz_target.h"
#include "tests/tiny_unet.h"

namespace {
// The model of the seed corpus (tests/fuzz/seeds/make_seeds.cpp): the smallest UNet there is.
dd::UNetConfig tiny() { return dd_test::one_level_unet_config(); }
}  // namespace

DD_FUZZ_TARGET(checkpoint) {
  static dd::Rng rng(0);
  static dd::UNet<float> model(tiny(), rng);
  static dd::Ema<float> ema(model, 0.9);
  static dd::Adam<float> adam(model, dd::AdamConfig{});
  const std::vector<uint8_t> bytes(data, data + size);
  dd::SafetensorsFile f;
  try {
    f = dd::parse_safetensors(bytes, "fuzz");
  } catch (const std::exception&) {
    return 0;
  }
  try {
    dd::load_checkpoint(f, model, &ema, &adam);
  } catch (const std::exception&) {
  }
  try {
    dd::load_weights(f, model, /*from_ema=*/true);
  } catch (const std::exception&) {
  }
  try {
    dd::load_weights(f, model, false);
  } catch (const std::exception&) {
  }
  try {
    dd::app::TrainConfig c = dd::app::read_run_config(f);
    (void)c;
  } catch (const std::exception&) {
  }
  try {
    (void)dd::serialize_safetensors(f);  // what was accepted can be written again
  } catch (const std::exception&) {
  }
  return 0;
}
