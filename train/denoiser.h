// Glue between the network (nn/) and the diffusion code (ddpm/), which never see each other:
// the UNet embeds 0-based steps, ddpm/ speaks the paper's 1-based t, so the adapters pass t - 1.
#pragma once

#include <cstdint>
#include <limits>

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
// data set) the samples are scored by FID, precision and recall against all digits. A little
// guidance in the middle of the chain (balanced_guidance_interval) is the measured best there: on
// the 10,000-step default (docs/recipe.md, 1,000 samples, 100 steps) w = 0 left precision on the
// lower edge of its band (0.818 - 0.854 over five draws against real digits' 0.885), w = 0.2 on
// every t at 90 steps raised it to 0.865 but cost recall (0.843) and took 4.9 minutes, while
// w = 0.15 on t in [0.2 T, 0.7 T] gave precision 0.865, recall 0.865, FID 1.23x real digits' in 3.9
// minutes (the steps outside the interval make one network call).
constexpr double kBalancedGuidance = 0.15;

// Guidance in a limited interval of t (Kynkaanniemi et al. 2024, "Applying guidance in a limited
// interval improves sample and distribution quality in diffusion models"): the guided prediction for
// an image whose t (the original 1-based timestep, what the network is told) lies in
// [t_min, t_max], the conditional one elsewhere. A call with no t inside costs one network call.
// The default interval holds every t.
struct GuidanceInterval {
  int64_t t_min = 1;
  int64_t t_max = std::numeric_limits<int64_t>::max();
  bool contains(int64_t t) const { return t >= t_min && t <= t_max; }
  bool all() const { return t_min <= 1 && t_max == std::numeric_limits<int64_t>::max(); }
};

ddpm::Denoiser make_guided_denoiser(UNet<float>& model, const std::vector<int64_t>& labels, double guidance,
                                    GuidanceInterval interval = {});
// The interval of the balanced samples' guidance (apps/sample without --digit): t in
// [ceil(0.2 T), floor(0.7 T)], i.e. 200..700 at T = 1000 (at T < 5 it may hold no t at all).
GuidanceInterval balanced_guidance_interval(int64_t T);

}  // namespace dd::train
