#include "apps/common/run_config.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <stdexcept>

namespace dd::app {

using nlohmann::json;

UNetConfig TrainConfig::unet() const {
  UNetConfig u;
  u.in_channels = 1;
  u.ch = ch;
  u.ch_mult = ch_mult;
  u.num_res_blocks = num_res_blocks;
  u.attn_resolutions = attn_res;
  u.dropout = dropout;
  u.learn_variance = variance == "learned";
  u.resolution = 28;
  return u;
}

ddpm::Schedule TrainConfig::make_schedule() const {
  if (schedule == "linear") return ddpm::linear_schedule(T);
  return ddpm::cosine_schedule(T);
}

ddpm::VarianceType TrainConfig::variance_type() const { return ddpm::variance_type_from_string(variance); }

ddpm::LossOptions TrainConfig::loss_options() const {
  ddpm::LossOptions o;
  o.type = ddpm::loss_type_from_string(loss);
  o.variance = variance_type();
  return o;
}

// One table drives JSON in both directions, so a new field is one line here.
#define DD_TRAIN_FIELDS(X)                                                                                     \
  X(steps) X(batch) X(lr) X(warmup) X(grad_clip) X(ema_decay) X(weight_decay) X(ch) X(ch_mult)                \
  X(num_res_blocks) X(attn_res) X(dropout) X(T) X(schedule) X(loss) X(variance) X(seed) X(threads) X(data)    \
  X(dataset) X(out) X(log_every) X(sample_every) X(sample_n) X(sample_steps) X(ckpt_every) X(eval_every)      \
  X(eval_n) X(classifier) X(t_sampler)

std::string TrainConfig::to_json() const {
  json j;
#define DD_PUT(f) j[#f] = f;
  DD_TRAIN_FIELDS(DD_PUT)
#undef DD_PUT
  return j.dump();
}

TrainConfig TrainConfig::from_json(const std::string& text) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw std::invalid_argument(std::string("run config: expected a JSON object, got unparsable text (") + e.what() + ")");
  }
  if (!j.is_object()) throw std::invalid_argument("run config: expected a JSON object, got " + std::string(j.type_name()));
  TrainConfig c;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    bool known = false;
    try {
#define DD_GET(f) \
  if (key == #f) { \
    it.value().get_to(c.f); \
    known = true; \
  }
      DD_TRAIN_FIELDS(DD_GET)
#undef DD_GET
    } catch (const json::exception&) {
      throw std::invalid_argument("run config: key '" + key + "' has the wrong type: " + it.value().dump());
    }
    if (!known) throw std::invalid_argument("run config: unknown key '" + key + "'");
  }
  return c;
}

const std::vector<std::string>& structural_keys() {
  static const std::vector<std::string> keys{"ch", "ch_mult", "num_res_blocks", "attn_res", "dropout", "T",
                                             "schedule", "loss", "variance", "dataset", "batch", "seed"};
  return keys;
}

namespace {
[[noreturn]] void bad(const std::string& flag, const std::string& expected, const std::string& found) {
  throw std::invalid_argument("--" + flag + ": expected " + expected + ", got " + found);
}
}  // namespace

void TrainConfig::validate() const {
  if (steps < 1) bad("steps", ">= 1", std::to_string(steps));
  if (batch < 1) bad("batch", ">= 1", std::to_string(batch));
  if (!(lr > 0)) bad("lr", "> 0", std::to_string(lr));
  if (warmup < 0) bad("warmup", ">= 0", std::to_string(warmup));
  if (!(grad_clip >= 0)) bad("grad-clip", ">= 0 (0 = off)", std::to_string(grad_clip));
  if (!(ema_decay >= 0 && ema_decay < 1)) bad("ema-decay", "a value in [0, 1)", std::to_string(ema_decay));
  if (!(weight_decay >= 0)) bad("weight-decay", ">= 0", std::to_string(weight_decay));
  if (!(dropout >= 0 && dropout < 1)) bad("dropout", "a value in [0, 1)", std::to_string(dropout));
  if (T < 2) bad("T", ">= 2", std::to_string(T));
  if (schedule != "linear" && schedule != "cosine") bad("schedule", "linear or cosine", "'" + schedule + "'");
  if (loss != "simple" && loss != "hybrid" && loss != "vlb") bad("loss", "simple, hybrid or vlb", "'" + loss + "'");
  if (variance != "large" && variance != "small" && variance != "learned")
    bad("variance", "large, small or learned", "'" + variance + "'");
  if (loss != "simple" && variance != "learned")
    bad("loss", "simple unless --variance learned (the vb term trains the variance)", "'" + loss + "' with --variance " + variance);
  if (t_sampler != "uniform" && t_sampler != "loss-second-moment")
    bad("t-sampler", "uniform or loss-second-moment", "'" + t_sampler + "'");
  if (dataset != "mnist" && dataset != "fashion") bad("dataset", "mnist or fashion", "'" + dataset + "'");
  if (threads < 0) bad("threads", ">= 0", std::to_string(threads));
  for (auto [name, v] : {std::pair<const char*, int64_t>{"log-every", log_every}, {"sample-every", sample_every},
                         {"ckpt-every", ckpt_every}, {"eval-every", eval_every}})
    if (v < 0) bad(name, ">= 0 (0 = never)", std::to_string(v));
  if (sample_n < 1) bad("sample-n", ">= 1", std::to_string(sample_n));
  if (sample_steps < 1 || sample_steps > T) bad("sample-steps", "1.." + std::to_string(T), std::to_string(sample_steps));
  if (eval_n < 1) bad("eval-n", ">= 1", std::to_string(eval_n));
  try {
    unet().validate();
  } catch (const std::exception& e) {
    throw std::invalid_argument(std::string("model flags (--ch, --ch-mult, --attn-res): ") + e.what());
  }
}

void add_train_flags(CLI::App& app, TrainConfig& c) {
  app.add_option("--steps", c.steps, "training steps")->capture_default_str()->group("Optimisation");
  app.add_option("--batch", c.batch, "images per step")->capture_default_str()->group("Optimisation");
  app.add_option("--lr", c.lr, "Adam learning rate")->capture_default_str()->group("Optimisation");
  app.add_option("--warmup", c.warmup, "linear learning-rate warm-up steps")->capture_default_str()->group("Optimisation");
  app.add_option("--grad-clip", c.grad_clip, "clip the global gradient norm to this (0 = off)")->capture_default_str()->group("Optimisation");
  app.add_option("--ema-decay", c.ema_decay, "EMA decay of the weights used for samples")->capture_default_str()->group("Optimisation");
  app.add_option("--weight-decay", c.weight_decay, "AdamW decoupled weight decay (0 = plain Adam)")->capture_default_str()->group("Optimisation");
  app.add_option("--ch", c.ch, "base channel count of the UNet")->capture_default_str()->group("Model");
  app.add_option("--ch-mult", c.ch_mult, "channel multipliers per resolution, comma separated")->delimiter(',')->capture_default_str()->group("Model");
  app.add_option("--num-res-blocks", c.num_res_blocks, "ResBlocks per encoder level")->capture_default_str()->group("Model");
  app.add_option("--attn-res", c.attn_res, "side lengths with self-attention, comma separated (0 = none)")->delimiter(',')->capture_default_str()->group("Model");
  app.add_option("--dropout", c.dropout, "dropout in the ResBlocks")->capture_default_str()->group("Model");
  app.add_option("--T", c.T, "diffusion steps")->capture_default_str()->group("Diffusion");
  app.add_option("--schedule", c.schedule, "beta schedule: linear | cosine")->capture_default_str()->group("Diffusion");
  app.add_option("--loss", c.loss, "simple (eq. 14) | hybrid (simple + vb, needs learned variance) | vlb")->capture_default_str()->group("Diffusion");
  app.add_option("--variance", c.variance, "reverse-process variance: large (beta) | small (betatilde) | learned")->capture_default_str()->group("Diffusion");
  app.add_option("--t-sampler", c.t_sampler,
                 "timesteps: uniform (Algorithm 1) | loss-second-moment (importance sampling, Nichol & Dhariwal 2021 sec. 3.3)")
      ->capture_default_str()->group("Diffusion");
  app.add_option("--seed", c.seed, "seed of every random draw")->capture_default_str()->group("Run");
  app.add_option("--threads", c.threads, "threads (0 = OMP_NUM_THREADS or all cores)")->capture_default_str()->group("Run");
  app.add_option("--data", c.data, "folder with the IDX files (fetched there when missing)")->capture_default_str()->group("Run");
  app.add_option("--dataset", c.dataset, "mnist | fashion (Debian's dataset-fashion-mnist)")->capture_default_str()->group("Run");
  app.add_option("--out", c.out, "output folder: checkpoints, samples, metrics, plots")->capture_default_str()->group("Run");
  app.add_option("--log-every", c.log_every, "write a metrics line every N steps")->capture_default_str()->group("Run");
  app.add_option("--sample-every", c.sample_every, "EMA sample grid every N steps (0 = never)")->capture_default_str()->group("Run");
  app.add_option("--sample-n", c.sample_n, "images per sample grid")->capture_default_str()->group("Run");
  app.add_option("--sample-steps", c.sample_steps, "strided sampling steps for the previews")->capture_default_str()->group("Run");
  app.add_option("--ckpt-every", c.ckpt_every, "checkpoint every N steps (0 = only at the end)")->capture_default_str()->group("Run");
  app.add_option("--eval-every", c.eval_every, "held-out bits/dim estimate every N steps (0 = never)")->capture_default_str()->group("Run");
  app.add_option("--eval-n", c.eval_n, "held-out test digits for the estimate")->capture_default_str()->group("Run");
  app.add_option("--classifier", c.classifier, "apps/classifier weights: classifier-FID etc. of every preview (skipped when absent)")
      ->capture_default_str()->group("Run");
}

std::vector<std::string> passed_keys(const CLI::App& app) {
  std::vector<std::string> keys;
  for (const CLI::Option* opt : app.get_options()) {
    if (opt->count() == 0 || opt->get_lnames().empty()) continue;
    std::string k = opt->get_lnames()[0];
    for (char& ch : k)
      if (ch == '-') ch = '_';
    keys.push_back(k);
  }
  return keys;
}

}  // namespace dd::app
