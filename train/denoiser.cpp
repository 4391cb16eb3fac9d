#include "train/denoiser.h"

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

}  // namespace dd::train
