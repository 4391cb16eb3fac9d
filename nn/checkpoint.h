// Checkpoints: a model, its EMA weights, the Adam moments and the run's metadata in one safetensors
// file (tensor/io/safetensors.h), with the names of ../shared/DESIGN.md:
//   <name>          the model's parameters (conv_in.weight, ...; the PyTorch reference's names)
//   ema.<name>      the EMA weights                      adam.m.<name>, adam.v.<name>  Adam's moments
//   state.<key>     more run state (CheckpointInfo::state, F64), e.g. a timestep sampler's losses
//   __metadata__    format = ddpm-cpp-checkpoint, version, step, config (the run's flags, JSON),
//                   dataset, rng, and when set: unet_config (UNetConfig::to_json), adam.step,
//                   ema.decay, ema.updates.
// A weights file (save_weights) holds only model names: torch_reference.UNet().load_state_dict
// accepts it as it is. Files are written atomically (temporary file, fsync, rename).
//
// Loading validates before it changes anything: every expected tensor must be present with the
// model's shape and dtype, and no unexpected tensor may be present; the error names the tensor.
// A failed load leaves the model, EMA and optimizer untouched.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "nn/module.h"
#include "nn/optim.h"

namespace dd {

// Keeps T deduced from the model alone, so nullptr can be passed for the EMA or the optimizer.
template <class X>
struct NonDeduced {
  using type = X;
};
template <class X>
using NonDeducedPtr = typename NonDeduced<X>::type*;

constexpr const char* kCheckpointFormat = "ddpm-cpp-checkpoint";
constexpr int kCheckpointVersion = 1;

struct CheckpointInfo {
  int64_t step = 0;         // training steps done
  std::string config;       // the run's flags as JSON
  std::string dataset;      // data source and image count
  std::string rng;          // generator state, Rng::state()
  std::string unet_config;  // UNetConfig::to_json() of the model (empty: not recorded)

  // More state of the run (e.g. a timestep sampler's loss history), each saved as an F64 tensor
  // "state.<key>" and loaded back whole; a file without them loads with this empty.
  std::map<std::string, Tensor<double>> state;
};

// Model + (optional) EMA + (optional) Adam moments + metadata. T = float writes F32, double F64.
template <class T>
void save_checkpoint(const std::string& path, const Module<T>& model, NonDeducedPtr<const Ema<T>> ema,
                     NonDeducedPtr<const Adam<T>> adam, const CheckpointInfo& info);

// Restores what save_checkpoint wrote into model (and ema / adam when given; the file must then hold
// their tensors). Returns the metadata. Throws IoError naming the file and the tensor on any mismatch.
template <class T>
CheckpointInfo load_checkpoint(const std::string& path, Module<T>& model, NonDeducedPtr<Ema<T>> ema,
                               NonDeducedPtr<Adam<T>> adam);

// Only the model's tensors, under its names (plus unet_config metadata when given).
template <class T>
void save_weights(const std::string& path, const Module<T>& model, const std::string& unet_config = "");

// Loads model weights from a weights file or a checkpoint: the model's names, or with from_ema the
// ema.<name> tensors of a checkpoint. Other checkpoint tensors (ema., adam., state.) are ignored; any other
// unexpected tensor is an error.
template <class T>
void load_weights(const std::string& path, Module<T>& model, bool from_ema = false);

// The unet_config metadata of a checkpoint or weights file ("" when absent), to build the model first.
std::string read_unet_config(const std::string& path);

}  // namespace dd
