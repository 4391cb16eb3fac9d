// The training run's configuration: every flag of train_mnist, stored as JSON in each checkpoint so
// that sample/nll rebuild the same model and schedule, and --resume can tell a compatible override
// (more steps, another sampling interval) from an incompatible one (another width or schedule).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "ddpm/losses.h"
#include "ddpm/sample.h"
#include "ddpm/schedule.h"
#include "nn/unet.h"

namespace CLI {
class App;
}

namespace dd::app {

// The recommended run (README "Training"): the steps ./apps/train_mnist trains without --steps,
// as many as fit in the hour, because the bound was still falling: 1.323 bits/dim at 8,000 steps
// and 1.275 at 10,000 (256 test digits), the 10,000 in 55.6 minutes on the 2-core AVX-512 Xeon of
// 2026-12-07 (docs/recipe.md). The bench projects the default run's
// minutes from the same number.
constexpr int64_t kRecommendedSteps = 10000;

struct TrainConfig {
  // optimisation
  int64_t steps = 0;  // train_mnist sets kRecommendedSteps; a stored config names its own
  int64_t batch = 64;
  double lr = 2e-4;
  int64_t warmup = 200;  // linear learning-rate warm-up steps
  std::string lr_decay = "none";  // none | cosine (to 0 at the last step, train::TrainStepConfig)
  double grad_clip = 1.0;
  double ema_decay = 0.999;
  double weight_decay = 0.0;
  // model
  int ch = 32;
  std::vector<int> ch_mult{1, 2, 2};
  int num_res_blocks = 1;
  std::vector<int> attn_res{7};
  double dropout = 0.0;
  // diffusion
  int64_t T = 1000;
  std::string schedule = "linear";  // linear | cosine
  // The linear schedule's end points beta_1 and beta_T; 0 = DDPM's 1e-4 and 0.02 (scaled by 1000/T).
  // The default beta_1 = 1e-5 (ten times below DDPM's) raises the signal-to-noise ratio at t = 1, so
  // the decoder's floor on L_0 drops: on the default budget the bound went 1.69 -> 1.49 bits/dim
  // (L_0 0.93 -> 0.31) and FID 7.79 -> 7.60 (docs/recipe.md). --schedule cosine drops it (no end
  // points); a stored config without the key predates the default: DDPM's beta_1. Unlike 0 it is
  // not scaled by 1000/T (it was measured at T = 1000 only).
  double beta_start = 1e-5;
  double beta_end = 0.0;
  // The hybrid loss with learned variance (Nichol & Dhariwal 2021 sec. 3.1) is the default: on the
  // default budget it measured bound 2.10 -> 1.69 bits/dim and FID 1.10x -> 0.99x of real digits'
  // against L_simple with fixed variance (docs/recipe.md).
  std::string loss = "hybrid";      // simple | hybrid | vlb
  std::string variance = "learned";   // large | small | learned
  // With --variance learned: the lowest decoder standard deviation sigma_1 (ddpm::Schedule::
  // set_decoder_floor); 0 = Nichol & Dhariwal's sqrt(betatilde_2).
  double decoder_floor = 0.0;
  // class-conditional training (classifier-free guidance, Ho & Salimans 2022): a label embedding
  // of the 10 digits + null; each label replaced by null with probability p_uncond. On by default:
  // on the default budget it measured FID 9.1 against the unconditional model's 21.7 (docs/recipe.md);
  // --no-cond --loss simple trains the reference UNet. A stored config without the key predates --cond: false.
  bool cond = true;
  double p_uncond = 0.1;
  // uniform | loss-second-moment (importance-sampled t, Nichol & Dhariwal 2021 sec. 3.3; its state in
  // the checkpoint). The importance sampler is the default: on the default budget it measured bound
  // 1.42 -> 1.32 bits/dim (sum L_{t-1} 1.12 -> 1.05, L_0 0.30 -> 0.27) at FID 8.44 -> 8.85 (1.01x ->
  // 1.06x real; docs/recipe.md). --loss simple alone brings uniform (DDPM's Algorithm 1); a stored
  // config without the key predates the option: uniform.
  std::string t_sampler = "loss-second-moment";
  // run
  uint64_t seed = 0;
  int threads = 0;  // 0: OMP_NUM_THREADS or all cores
  std::string data = "data";
  std::string dataset = "mnist";  // mnist | fashion
  std::string out = "runs/mnist";
  int64_t log_every = 50;
  int64_t sample_every = 1000;
  int64_t sample_n = 64;
  int64_t sample_steps = ddpm::kDefaultSamplingSteps;  // strided steps of the previews (the default sampler)
  int64_t ckpt_every = 1000;
  int64_t eval_every = 500;  // one-t bits/dim estimate on held-out digits
  int64_t eval_n = 256;
  // Sample quality of the previews (docs/metrics.md), measured when this classifier file exists.
  std::string classifier = "runs/classifier.safetensors";

  UNetConfig unet() const;
  ddpm::Schedule make_schedule() const;
  ddpm::LossOptions loss_options() const;
  ddpm::VarianceType variance_type() const;

  std::string to_json() const;
  // Keys missing from the JSON keep their defaults; unknown keys are an error.
  static TrainConfig from_json(const std::string& json);
  // Throws std::invalid_argument naming the flag, expected and found. this_machine: also the limits
  // of this machine (--threads, memory), which a config stored on another machine need not meet.
  void validate(bool this_machine = true) const;
};

// --threads: 0 (all cores) up to max_threads() = 4x the cores; else std::invalid_argument.
int max_threads();
void validate_threads(int threads);

// Parameters of the UNet of `u`, counted from its layers without building it (a double: a
// damaged or absurd config must not overflow), and the memory a training run of `c` needs.
double unet_parameter_count(const UNetConfig& u);
// A number as printf's %g writes it (flag values in messages and help texts).
std::string format_number(double v);
double training_memory_bytes(const TrainConfig& c);

// --resume of a checkpoint at step `done` with --steps `steps`: there must be steps left to train.
void check_resume_steps(const std::string& checkpoint, int64_t done, int64_t steps);

// Keys that change the model or the diffusion: a resumed run must keep them.
const std::vector<std::string>& structural_keys();

// Registers every flag of TrainConfig on `app` (long names, with help and defaults shown).
void add_train_flags(CLI::App& app, TrainConfig& c);

// The flags the user actually passed on the command line, by config key.
std::vector<std::string> passed_keys(const CLI::App& app);

}  // namespace dd::app
