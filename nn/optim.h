// Optimisation on the flat buffers of a Module (see nn/module.h): Adam / AdamW, global-norm
// gradient clipping and an exponential moving average of the parameters. Each is one loop over all
// parameters (OpenMP), not one call per tensor.
#pragma once

#include <cstdint>

#include "nn/module.h"

namespace dd {

struct AdamConfig {
  double lr = 2e-4;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  // false: Adam's L2 penalty, g += weight_decay * p (torch.optim.Adam);
  // true: AdamW's decoupled decay, p *= 1 - lr * weight_decay before the Adam update (torch.optim.AdamW).
  bool decoupled_weight_decay = false;
};

// PyTorch semantics (torch.optim.Adam / AdamW, Kingma & Ba 2015 Algorithm 1), step k = 1, 2, ...:
//   m = beta1 m + (1 - beta1) g,  v = beta2 v + (1 - beta2) g^2
//   p -= lr / (1 - beta1^k) * m / (sqrt(v) / sqrt(1 - beta2^k) + eps)     (eps added after the sqrt)
template <class T>
class Adam {
 public:
  // Optimises the module's flat buffers (build_flat_buffers() must have run).
  Adam(const Module<T>& model, const AdamConfig& config);
  // Optimises `params` with gradients `grads`: contiguous tensors of the same shape.
  Adam(const Tensor<T>& params, const Tensor<T>& grads, const AdamConfig& config);

  void step();  // one update at config().lr
  void set_lr(double lr) { config_.lr = lr; }  // for a learning-rate schedule
  const AdamConfig& config() const { return config_; }

  int64_t steps() const { return step_; }  // updates done so far
  // The moment buffers (flat, same layout as the parameters); writable, e.g. by a checkpoint load.
  const Tensor<T>& m() const { return m_; }
  const Tensor<T>& v() const { return v_; }
  void set_steps(int64_t k) { step_ = k; }

 private:
  AdamConfig config_;
  Tensor<T> params_, grads_, m_, v_;
  int64_t step_ = 0;
};

// Scales all gradients by max_norm / (norm + 1e-6) when their global L2 norm exceeds max_norm
// (torch.nn.utils.clip_grad_norm_). Returns the norm before clipping.
template <class T>
double clip_grad_norm(const Tensor<T>& grads, double max_norm);
template <class T>
double clip_grad_norm(const Module<T>& model, double max_norm) {
  return clip_grad_norm(model.flat_grads(), max_norm);
}

// Exponential moving average of the parameters (Polyak averaging, as in the DDPM code). Update n
// (n = 0 for the first) uses decay_n = min(decay, (1 + n) / (10 + n)): early on the average follows
// the weights closely, so a short run still gets useful EMA weights.
template <class T>
class Ema {
 public:
  // Starts from a copy of the module's current parameters.
  Ema(const Module<T>& model, double decay);

  void update();  // shadow = decay_n * shadow + (1 - decay_n) * params, then n += 1
  double decay() const { return decay_; }
  double decay_for_update(int64_t n) const;  // min(decay, (1 + n) / (10 + n))
  int64_t num_updates() const { return updates_; }
  void set_num_updates(int64_t n) { updates_ = n; }

  // Exchanges the EMA weights and the model's weights in place: call once to evaluate or sample
  // with the EMA weights, and again to put the trained weights back (EmaSwapGuard does both).
  void swap();
  bool swapped() const { return swapped_; }

  // The averaged weights (flat, same layout as the model's flat buffer); writable for checkpoint loads.
  const Tensor<T>& values() const { return shadow_; }

 private:
  Tensor<T> params_, shadow_;
  double decay_;
  int64_t updates_ = 0;
  bool swapped_ = false;
};

// Swaps the EMA weights into the model for its scope.
template <class T>
class EmaSwapGuard {
 public:
  explicit EmaSwapGuard(Ema<T>& ema) : ema_(ema) { ema_.swap(); }
  ~EmaSwapGuard() { ema_.swap(); }
  EmaSwapGuard(const EmaSwapGuard&) = delete;
  EmaSwapGuard& operator=(const EmaSwapGuard&) = delete;

 private:
  Ema<T>& ema_;
};

}  // namespace dd
