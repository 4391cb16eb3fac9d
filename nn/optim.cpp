#include "nn/optim.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "tensor/parallel.h"

namespace dd {

namespace {

// Below this many elements a parallel region costs more than the loop (tests, tiny models).
constexpr int64_t kParallelMin = 1 << 15;

template <class T>
void check_flat_pair(const char* who, const Tensor<T>& a, const char* a_name, const Tensor<T>& b, const char* b_name) {
  if (!a.defined() || !b.defined()) throw std::invalid_argument(std::string(who) + ": undefined buffer");
  if (!a.is_contiguous() || !b.is_contiguous())
    throw std::invalid_argument(std::string(who) + ": expected contiguous " + a_name + " and " + b_name);
  if (a.shape() != b.shape())
    shape_error(who, std::string(b_name) + " of the shape of " + a_name + " " + shape_str(a.shape()), shape_str(b.shape()));
}

}  // namespace

// ---- Adam ------------------------------------------------------------------------------------
template <class T>
Adam<T>::Adam(const Module<T>& model, const AdamConfig& config)
    : Adam(model.flat_values(), model.flat_grads(), config) {}

template <class T>
Adam<T>::Adam(const Tensor<T>& params, const Tensor<T>& grads, const AdamConfig& config)
    : config_(config), params_(params), grads_(grads), m_(params.shape()), v_(params.shape()) {
  check_flat_pair("Adam", params, "params", grads, "grads");
  if (!(config.lr >= 0) || !(config.beta1 >= 0 && config.beta1 < 1) || !(config.beta2 >= 0 && config.beta2 < 1) ||
      !(config.eps >= 0) || !(config.weight_decay >= 0))
    throw std::invalid_argument("Adam: expected lr >= 0, betas in [0, 1), eps >= 0, weight_decay >= 0; got lr " +
                                std::to_string(config.lr) + ", betas " + std::to_string(config.beta1) + ", " +
                                std::to_string(config.beta2) + ", eps " + std::to_string(config.eps) +
                                ", weight_decay " + std::to_string(config.weight_decay));
}

template <class T>
void Adam<T>::step() {
  ++step_;
  const double k = static_cast<double>(step_);
  // Scalars in double, as PyTorch computes them in Python floats.
  const T step_size = static_cast<T>(config_.lr / (1.0 - std::pow(config_.beta1, k)));
  const T bias_correction2_sqrt = static_cast<T>(std::sqrt(1.0 - std::pow(config_.beta2, k)));
  const T b1 = static_cast<T>(config_.beta1), b2 = static_cast<T>(config_.beta2);
  const T one_minus_b1 = static_cast<T>(1.0 - config_.beta1), one_minus_b2 = static_cast<T>(1.0 - config_.beta2);
  const T eps = static_cast<T>(config_.eps);
  const T l2 = config_.decoupled_weight_decay ? T(0) : static_cast<T>(config_.weight_decay);
  const T shrink = config_.decoupled_weight_decay ? static_cast<T>(1.0 - config_.lr * config_.weight_decay) : T(1);
  T* p = params_.data();
  const T* g = grads_.data();
  T* m = m_.data();
  T* v = v_.data();
  const int64_t n = params_.numel();
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const T gi = g[i] + l2 * p[i];
    const T pi = p[i] * shrink;
    m[i] = b1 * m[i] + one_minus_b1 * gi;
    v[i] = b2 * v[i] + one_minus_b2 * gi * gi;
    const T denom = std::sqrt(v[i]) / bias_correction2_sqrt + eps;
    p[i] = pi - step_size * (m[i] / denom);
  }
}

// ---- clipping --------------------------------------------------------------------------------
template <class T>
double clip_grad_norm(const Tensor<T>& grads, double max_norm) {
  if (!grads.is_contiguous()) throw std::invalid_argument("clip_grad_norm: expected a contiguous gradient buffer");
  if (!(max_norm > 0)) throw std::invalid_argument("clip_grad_norm: expected max_norm > 0, got " + std::to_string(max_norm));
  T* g = grads.data();
  const int64_t n = grads.numel();
  // in fixed chunks combined in order: the same norm for every thread count (tensor/parallel.h)
  const double sumsq = ordered_sum(n, [g](int64_t i) { return static_cast<double>(g[i]) * g[i]; });
  const double norm = std::sqrt(sumsq);
  const double coef = max_norm / (norm + 1e-6);  // the 1e-6 keeps a zero gradient finite, as in PyTorch
  if (coef < 1.0) {
    const T c = static_cast<T>(coef);
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
    for (int64_t i = 0; i < n; ++i) g[i] *= c;
  }
  return norm;
}

// ---- EMA -------------------------------------------------------------------------------------
template <class T>
Ema<T>::Ema(const Module<T>& model, double decay) : params_(model.flat_values()), shadow_(params_.clone()), decay_(decay) {
  if (!(decay >= 0 && decay <= 1)) throw std::invalid_argument("Ema: expected decay in [0, 1], got " + std::to_string(decay));
}

template <class T>
double Ema<T>::decay_for_update(int64_t n) const {
  return std::min(decay_, (1.0 + static_cast<double>(n)) / (10.0 + static_cast<double>(n)));
}

template <class T>
void Ema<T>::update() {
  if (swapped_) throw std::logic_error("Ema::update: the EMA weights are swapped into the model; swap back first");
  const T d = static_cast<T>(decay_for_update(updates_));
  const T one_minus_d = static_cast<T>(1.0 - decay_for_update(updates_));
  const T* p = params_.data();
  T* s = shadow_.data();
  const int64_t n = params_.numel();
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) s[i] = d * s[i] + one_minus_d * p[i];
  ++updates_;
}

template <class T>
void Ema<T>::swap() {
  T* p = params_.data();
  T* s = shadow_.data();
  const int64_t n = params_.numel();
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) std::swap(p[i], s[i]);
  swapped_ = !swapped_;
}

template class Adam<float>;
template class Adam<double>;
template class Ema<float>;
template class Ema<double>;
template double clip_grad_norm<float>(const Tensor<float>&, double);
template double clip_grad_norm<double>(const Tensor<double>&, double);

}  // namespace dd
