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

// Class-conditional adapters (classifier-free guidance, Ho & Salimans 2022). `labels` holds one
// label per image of every call (0..K-1, or the model's null label K); the function keeps a
// reference to it, so the caller may change the labels between calls (a new batch per training
// step) and must keep the vector alive. A call whose batch size differs from labels.size() throws.
// With an unconditional model, labels must be empty (then these are the adapters above).
ddpm::Denoiser make_denoiser(UNet<float>& model, const std::vector<int64_t>& labels);
ddpm::TrainDenoiser make_train_denoiser(UNet<float>& model, const std::vector<int64_t>& labels);

// The guided prediction eps = (1 + w) eps(x_t, t, y) - w eps(x_t, t, null) (Ho & Salimans eq. 6),
// as a plain Denoiser, so every sampler uses it unchanged. Two network calls of N images: the first
// is exactly make_denoiser(model, labels)'s, so w = 0 gives the conditional prediction bit for bit
// (and skips the unconditional call). With a learned variance (2C output channels) only the eps
// channels are mixed; the variance interpolation is the conditional one's.
// Throws when the model is unconditional or w is negative or not finite.
// The default guidance weight for asked digits: the lowest FID among the weights whose samples are
// classified as the asked digit at least 98 % of the time. Measured on the default 6,000-step --cond
// run (README, "Drawing a chosen digit"; 100 samples per digit): w = 0 95.8 % as asked, FID 9.13;
// w = 0.5 99.7 %, FID 18.15; w = 1 100 %, FID 33.17; larger w only lose diversity. As in Ho &
// Salimans (2022), fidelity grows with w and FID is best at small weights.
constexpr double kDefaultGuidance = 0.5;
// Without asked digits (apps/sample with no --digit: every digit equally, standing in for the whole
// data set) the samples are scored by FID, precision and recall against all digits, and w = 0 is
// best there (FID 1.1x real digits' against 2.2x at w = 0.5), with one network call per step.
constexpr double kBalancedGuidance = 0.0;

ddpm::Denoiser make_guided_denoiser(UNet<float>& model, const std::vector<int64_t>& labels, double guidance);

}  // namespace dd::train
