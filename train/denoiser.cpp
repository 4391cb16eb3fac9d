#include "train/denoiser.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "autograd/var.h"
#include "nn/module.h"

namespace dd::train {

namespace {
std::vector<int64_t> zero_based(const std::vector<int64_t>& t) {
  std::vector<int64_t> out(t.size());
  for (size_t i = 0; i < t.size(); ++i) out[i] = t[i] - 1;
  return out;
}
}  // namespace

ddpm::Denoiser make_denoiser(UNet<float>& model) {
  return [&model](const Tensor<float>& x_t, const std::vector<int64_t>& t) {
    NoGradGuard no_grad;
    TrainModeGuard<float> eval_mode(model, false);
    return model.forward(Var<float>(x_t), zero_based(t)).value();
  };
}

ddpm::TrainDenoiser make_train_denoiser(UNet<float>& model) {
  return [&model](const Var<float>& x_t, const std::vector<int64_t>& t) { return model.forward(x_t, zero_based(t)); };
}

namespace {
void check_labels(const std::vector<int64_t>& labels, int64_t batch) {
  if (static_cast<int64_t>(labels.size()) != batch)
    throw std::invalid_argument("conditional denoiser: expected one label per image (" + std::to_string(batch) +
                                "), got " + std::to_string(labels.size()) + " labels");
}
void require_conditional(const UNet<float>& model, const char* what) {
  if (!model.conditional())
    throw std::invalid_argument(std::string(what) + ": expected a class-conditional model (num_classes > 0), got an unconditional one");
}
}  // namespace

ddpm::Denoiser make_denoiser(UNet<float>& model, const std::vector<int64_t>& labels) {
  if (!model.conditional()) {
    if (!labels.empty()) require_conditional(model, "make_denoiser with labels");
    return make_denoiser(model);
  }
  return [&model, &labels](const Tensor<float>& x_t, const std::vector<int64_t>& t) {
    check_labels(labels, x_t.size(0));
    NoGradGuard no_grad;
    TrainModeGuard<float> eval_mode(model, false);
    return model.forward(Var<float>(x_t), zero_based(t), labels).value();
  };
}

ddpm::TrainDenoiser make_train_denoiser(UNet<float>& model, const std::vector<int64_t>& labels) {
  if (!model.conditional()) {
    if (!labels.empty()) require_conditional(model, "make_train_denoiser with labels");
    return make_train_denoiser(model);
  }
  return [&model, &labels](const Var<float>& x_t, const std::vector<int64_t>& t) {
    check_labels(labels, x_t.size(0));
    return model.forward(x_t, zero_based(t), labels);
  };
}

ddpm::Denoiser make_guided_denoiser(UNet<float>& model, const std::vector<int64_t>& labels, double guidance,
                                    GuidanceInterval interval) {
  require_conditional(model, "guided denoiser");
  if (!std::isfinite(guidance) || guidance < 0)
    throw std::invalid_argument("--guidance: expected a finite weight >= 0, got " + std::to_string(guidance));
  if (interval.t_min < 1 || interval.t_max < interval.t_min)
    throw std::invalid_argument("--guidance-interval: expected 1 <= LO <= HI, got " + std::to_string(interval.t_min) + "," +
                                std::to_string(interval.t_max));
  ddpm::Denoiser conditional = make_denoiser(model, labels);
  if (guidance == 0) return conditional;
  const int64_t eps_channels = model.config().in_channels;
  return [&model, &labels, conditional, guidance, interval, eps_channels](const Tensor<float>& x_t, const std::vector<int64_t>& t) {
    // The conditional call checks one t per image (UNet.forward), so t[i] below is in range.
    Tensor<float> out = conditional(x_t, t).contiguous();
    if (std::none_of(t.begin(), t.end(), [&](int64_t ti) { return interval.contains(ti); })) return out;
    const std::vector<int64_t> null(labels.size(), model.config().null_label());
    const Tensor<float> uncond = make_denoiser(model, null)(x_t, t).contiguous();
    // out [N, C_out, H, W]: mix the first eps_channels channels of every image whose t is in the interval.
    const int64_t n = out.size(0), per_image = out.numel() / n, eps_part = per_image / out.size(1) * eps_channels;
    const float w = static_cast<float>(guidance), one_plus_w = 1.0f + w;
    float* o = out.data();
    const float* u = uncond.data();
    for (int64_t i = 0; i < n; ++i)
      if (interval.contains(t[static_cast<size_t>(i)]))
        for (int64_t k = i * per_image; k < i * per_image + eps_part; ++k) o[k] = one_plus_w * o[k] - w * u[k];
    return out;
  };
}

GuidanceInterval balanced_guidance_interval(int64_t T) {
  if (T < 1) throw std::invalid_argument("balanced_guidance_interval: expected T >= 1, got " + std::to_string(T));
  // Integer arithmetic: ceil(2T / 10) and floor(7T / 10), no float rounding at the ends.
  return {(2 * T + 9) / 10, 7 * T / 10};
}

}  // namespace dd::train
