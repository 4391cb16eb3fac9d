// Glue between the network (nn/) and the diffusion code (ddpm/), which never see each other:
// the UNet embeds 0-based steps, ddpm/ speaks the paper's 1-based t, so the adapters pass t - 1.
#pragma once

#include "ddpm/diffusion.h"
#include "ddpm/losses.h"
#include "nn/unet.h"

namespace dd::train {

// eps_theta(x_t, t) for sampling and evaluation: eval mode (restored afterwards, also on an
// exception), no tape, 1-based t. The model must outlive the returned function.
ddpm::Denoiser make_denoiser(UNet<float>& model);
// eps_theta(x_t, t) on the tape for training, 1-based t, in the model's current mode.
ddpm::TrainDenoiser make_train_denoiser(UNet<float>& model);

}  // namespace dd::train
