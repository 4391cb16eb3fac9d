#include "train/train_step.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "tensor/profile.h"
#include "train/denoiser.h"

namespace dd::train {

namespace {
// x * 0 is 0 for every finite x and NaN for inf and NaN, so the sum is finite exactly when every
// element is: one branch-free pass (about a millisecond for the default UNet).
bool all_finite(const Tensor<float>& t) {
  const float* p = t.data();
  float acc = 0.0f;
  for (int64_t i = 0, n = t.numel(); i < n; ++i) acc += p[i] * 0.0f;
  return std::isfinite(acc);
}
}  // namespace

TrainStep::TrainStep(UNet<float>& model, Adam<float>& adam, Ema<float>& ema, const ddpm::Schedule& schedule,
                     const TrainStepConfig& config)
    : model_(model), adam_(adam), ema_(ema), schedule_(schedule), config_(config), denoiser_(make_train_denoiser(model, labels_)) {}

double TrainStep::lr_at(int64_t step) const {
  const double s = static_cast<double>(step), warmup = static_cast<double>(config_.warmup);
  if (config_.warmup > 0 && s < warmup) return config_.lr * s / warmup;
  if (config_.decay_steps <= config_.warmup) return config_.lr;
  // The cosine's phase runs from 0 at the end of the warm-up to pi at decay_steps.
  const double progress = std::min(1.0, (s - warmup) / (static_cast<double>(config_.decay_steps) - warmup));
  return config_.lr * 0.5 * (1.0 + std::cos(M_PI * std::max(0.0, progress)));
}

TrainStepResult TrainStep::run(int64_t step, const Tensor<float>& x0, const std::vector<int64_t>& t,
                               const Tensor<float>& noise, const std::vector<double>& weights,
                               const std::vector<int64_t>& labels) {
  if (model_.conditional() != !labels.empty())
    throw std::invalid_argument(model_.conditional() ? "training step: expected the batch's labels for a conditional model, got none"
                                                     : "training step: labels given to an unconditional model");
  labels_ = labels;
  return run_impl(step, x0, t, noise, weights);
}

TrainStepResult TrainStep::run(int64_t step, const Tensor<float>& x0, const std::vector<int64_t>& t,
                               const Tensor<float>& noise, const std::vector<double>& weights) {
  return run(step, x0, t, noise, weights, {});
}

TrainStepResult TrainStep::run_impl(int64_t step, const Tensor<float>& x0, const std::vector<int64_t>& t,
                                    const Tensor<float>& noise, const std::vector<double>& weights) {
  TrainStepResult r;
  r.lr = lr_at(step);
  r.grad_norm = std::numeric_limits<double>::quiet_NaN();
  {
    ProfileScope timed("optimizer", "zero_grad");
    model_.zero_grad();
  }
  profile_restart();
  ddpm::TrainingLoss loss = [&] {
    ProfileScope timed("total", "forward");
    return ddpm::training_loss(schedule_, denoiser_, x0, t, noise, weights, config_.loss);
  }();
  r.loss = loss.loss.item();
  r.per_sample = std::move(loss.per_sample);
  if (!std::isfinite(r.loss)) {
    // The hook may be a collective that other processes are waiting in: join it with a NaN
    // gradient, so that the reduced gradient is NaN everywhere and every process skips the step.
    if (gradient_hook) {
      Tensor<float> nan_grads({model_.num_parameters()});
      nan_grads.fill(std::numeric_limits<float>::quiet_NaN());
      gradient_hook(nan_grads);
    }
    return r;
  }
  {
    ProfileScope timed("total", "backward");
    loss.loss.backward();
  }
  Tensor<float> grads = model_.flat_grads();
  if (gradient_hook) gradient_hook(grads);
  {
    ProfileScope timed("optimizer", "clip_grad_norm");
    r.grad_norm = clip_grad_norm(grads, config_.grad_clip > 0 ? config_.grad_clip : INFINITY);
  }
  if (!std::isfinite(r.grad_norm)) return r;
  adam_.set_lr(r.lr);
  {
    ProfileScope timed("optimizer", "adam");
    adam_.step();
  }
  // A finite gradient can still give a non-finite update (a huge learning rate, an overflowing
  // moment). The parameters are then lost, so this is an error: the caller must not save them.
  if (!all_finite(model_.flat_values())) {
    throw std::runtime_error("training step " + std::to_string(step) + ": expected finite parameters after the Adam update (lr " +
                             std::to_string(r.lr) + "), got inf or NaN");
  }
  {
    ProfileScope timed("optimizer", "ema");
    ema_.update();
  }
  r.applied = true;
  return r;
}

}  // namespace dd::train
