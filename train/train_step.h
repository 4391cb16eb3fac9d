// One step of Algorithm 1 as train_mnist runs it and apps/bench times it: the loss of a batch
// (L_simple, eq. 14, or the hybrid / vlb losses of ddpm/losses.h), backward, global-norm gradient
// clipping, the learning-rate warm-up, Adam and the EMA update. A step whose loss or gradient is
// not finite changes no parameter; an update that makes a parameter non-finite throws.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "ddpm/losses.h"
#include "ddpm/schedule.h"
#include "nn/optim.h"
#include "nn/unet.h"

namespace dd::train {

struct TrainStepConfig {
  double lr = 2e-4;       // the peak learning rate
  int64_t warmup = 0;     // linear warm-up: lr * min(1, step / warmup); 0 = none
  // After the warm-up: constant (decay_steps = 0) or a half cosine from lr down to 0 at step
  // decay_steps (SGDR, Loshchilov & Hutter 2017, without restarts); steps past it keep lr 0.
  int64_t decay_steps = 0;
  double grad_clip = 1.0;  // max global L2 norm of the gradient; <= 0 = no clipping
  ddpm::LossOptions loss;
};

struct TrainStepResult {
  double loss = 0.0;       // the batch loss (before the update)
  double grad_norm = 0.0;  // the global L2 norm of the gradient before clipping (NaN if not reached)
  double lr = 0.0;         // the learning rate of this step
  // false: the loss or the gradient was not finite; parameters, moments and EMA are unchanged.
  bool applied = false;
  std::vector<double> per_sample;  // the unweighted per-sample loss terms (for an importance sampler of t)
};

class TrainStep {
 public:
  TrainStep(UNet<float>& model, Adam<float>& adam, Ema<float>& ema, const ddpm::Schedule& schedule,
            const TrainStepConfig& config);
  // The denoiser holds a reference to this object's labels_: a copy would read the original's.
  TrainStep(const TrainStep&) = delete;
  TrainStep& operator=(const TrainStep&) = delete;

  // Step `step` (1-based, it sets the warm-up) on the batch x0 [N, C, H, W] with its timesteps t
  // (1-based) and noise eps (x0's shape); `weights` are importance weights (empty = 1). The model's
  // dropout stream is the caller's (UNet::set_dropout_stream, train::dropout_stream).
  TrainStepResult run(int64_t step, const Tensor<float>& x0, const std::vector<int64_t>& t, const Tensor<float>& noise,
                      const std::vector<double>& weights = {});
  // The same step of a class-conditional model: `labels` (one per image, the null label where it
  // was dropped, see drop_labels) are the network's labels.
  TrainStepResult run(int64_t step, const Tensor<float>& x0, const std::vector<int64_t>& t, const Tensor<float>& noise,
                      const std::vector<double>& weights, const std::vector<int64_t>& labels);

  double lr_at(int64_t step) const;

  // Called on the flat gradient buffer after backward, before clipping (e.g. to average the
  // gradients of several processes); empty = nothing.
  std::function<void(Tensor<float>& flat_grads)> gradient_hook;

 private:
  UNet<float>& model_;
  Adam<float>& adam_;
  Ema<float>& ema_;
  const ddpm::Schedule& schedule_;
  TrainStepConfig config_;
  TrainStepResult run_impl(int64_t step, const Tensor<float>& x0, const std::vector<int64_t>& t,
                           const Tensor<float>& noise, const std::vector<double>& weights);
  std::vector<int64_t> labels_;  // the current step's labels (empty: unconditional)
  ddpm::TrainDenoiser denoiser_;  // reads labels_
};

}  // namespace dd::train
