#include "train/denoiser.h"

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

ddpm::Denoiser make_guided_denoiser(UNet<float>& model, const std::vector<int64_t>& labels, double guidance) {
  require_conditional(model, "guided denoiser");
  if (!std::isfinite(guidance) || guidance < 0)
    throw std::invalid_argument("--guidance: expected a finite weight >= 0, got " + std::to_string(guidance));
  ddpm::Denoiser conditional = make_denoiser(model, labels);
  if (guidance == 0) return conditional;
  const int64_t eps_channels = model.config().in_channels;
  return [&model, &labels, conditional, guidance, eps_channels](const Tensor<float>& x_t, const std::vector<int64_t>& t) {
    Tensor<float> out = conditional(x_t, t).contiguous();
    const std::vector<int64_t> null(labels.size(), model.config().null_label());
    const Tensor<float> uncond = make_denoiser(model, null)(x_t, t).contiguous();
    // out [N, C_out, H, W]: mix the first eps_channels channels of every image.
    const int64_t n = out.size(0), per_image = out.numel() / n, eps_part = per_image / out.size(1) * eps_channels;
    const float w = static_cast<float>(guidance), one_plus_w = 1.0f + w;
    float* o = out.data();
    const float* u = uncond.data();
    for (int64_t i = 0; i < n; ++i)
      for (int64_t k = i * per_image; k < i * per_image + eps_part; ++k) o[k] = one_plus_w * o[k] - w * u[k];
    return out;
  };
}

}  // namespace dd::train
