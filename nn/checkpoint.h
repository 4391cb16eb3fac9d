// Checkpoints: a model, its EMA weights, the Adam moments and the run's metadata in one safetensors
// file (tensor/io/safetensors.h), with the names of docs/conventions.md ("Checkpoints"):
//   <name>          the model's parameters (conv_in.weight, ...; tools/torch_unet.py's names)
//   ema.<name>      the EMA weights                      adam.m.<name>, adam.v.<name>  Adam's moments
//   state.<key>     more run state (CheckpointInfo::state, F64), e.g. a timestep sampler's losses
//   __metadata__    format = ddpm-cpp-checkpoint, version, step, config (the run's flags, JSON),
//                   dataset, rng, and when set: unet_config (UNetConfig::to_json), adam.step,
//                   ema.decay, ema.updates.
// A weights file (save_weights) holds only model names: tools/torch_unet.py's UNet().load_state_dict
// accepts it as it is. Files are written atomically (temporary file, fsync, rename).
//
// Loading validates before it changes anything: every expected tensor must be present with the
// model's shape and dtype, no unexpected tensor may be present, every value must be finite, and
// every metadata field must be well-formed (format, version, step and counters in range, the CRC-32
// of the tensor data of a version-2 file); the error names the tensor or the field. A failed load
// leaves the model, EMA and optimizer untouched.
//
// Saving refuses (an IoError, nothing written, the previous file stays) a model, EMA or moment
// with a NaN or an infinity: a diverging run never replaces its last good checkpoint.
// Version 2 adds __metadata__ crc32 (CRC-32 of every tensor's bytes in file order), so one
// flipped bit anywhere in the weights is a load error rather than black samples; version-1 files
// (no checksum) still load.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "nn/module.h"
#include "nn/optim.h"
#include "tensor/io/safetensors.h"

namespace dd {

// Keeps T deduced from the model alone, so nullptr can be passed for the EMA or the optimizer.
template <class X>
struct NonDeduced {
  using type = X;
};
template <class X>
using NonDeducedPtr = typename NonDeduced<X>::type*;

constexpr const char* kCheckpointFormat = "ddpm-cpp-checkpoint";
constexpr int kCheckpointVersion = 2;
// Steps and counters beyond this are damage, not training (10^12 steps is centuries of it).
constexpr int64_t kCheckpointMaxStep = 1000000000000;

struct CheckpointInfo {
  int64_t step = 0;         // training steps done
  std::string config;       // the run's flags as JSON
  std::string dataset;      // data source and image count
  std::string rng;          // a generator state (Rng::state()), for the record: train_mnist stores the saved
                            // step's noise stream; resume does not read it (every draw is keyed by (seed, step))
  std::string unet_config;  // UNetConfig::to_json() of the model (empty: not recorded)

  // More state of the run (e.g. a timestep sampler's loss history), each saved as an F64 tensor
  // "state.<key>" and loaded back whole; a file without them loads with this empty.
  std::map<std::string, Tensor<double>> state;
  // The kernel path that computed the run (tensor/kernels.h: avx512, avx2, generic; empty: not
  // recorded). Runs are bit-identical per path; another path resumes exact to rounding only.
  std::string kernel_path;
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
// The same from a file already read (load_safetensors), so a program parses a checkpoint once.
template <class T>
CheckpointInfo load_checkpoint(const SafetensorsFile& file, Module<T>& model, NonDeducedPtr<Ema<T>> ema,
                               NonDeducedPtr<Adam<T>> adam);

// The __metadata__ crc32 of a version-2 checkpoint: CRC-32 of every tensor's bytes in file order.
std::string checkpoint_data_crc32(const SafetensorsFile& file);

// Every value of the file's F32 / F64 tensors is finite; else IoError naming the tensor and element.
void require_finite_values(const SafetensorsFile& file);

// The metadata of a checkpoint, validated (format, version, step range, checksum) without a model.
CheckpointInfo read_checkpoint_info(const SafetensorsFile& file);

// Only the model's tensors, under its names (plus unet_config metadata when given).
template <class T>
void save_weights(const std::string& path, const Module<T>& model, const std::string& unet_config = "");

// Loads model weights from a weights file or a checkpoint: the model's names, or with from_ema the
// ema.<name> tensors of a checkpoint. Other checkpoint tensors (ema., adam., state.) are ignored; any other
// unexpected tensor is an error.
template <class T>
void load_weights(const std::string& path, Module<T>& model, bool from_ema = false);
template <class T>
void load_weights(const SafetensorsFile& file, Module<T>& model, bool from_ema = false);

// The unet_config metadata of a checkpoint or weights file ("" when absent), to build the model first.
std::string read_unet_config(const std::string& path);

}  // namespace dd
