#include "apps/common/run_config.h"

#include "apps/common/flag_checks.h"

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <cstdio>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <utility>

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
  u.num_classes = cond ? 10 : 0;
  return u;
}

namespace {
// The linear schedule's (beta_1, beta_T): --beta-start / --beta-end where given, else those of
// ddpm::linear_schedule(T).
std::pair<double, double> linear_schedule_ends(const TrainConfig& c) {
  const auto [ddpm_beta_1, ddpm_beta_T] = ddpm::linear_schedule_default_ends(c.T);
  return {c.beta_start > 0 ? c.beta_start : ddpm_beta_1, c.beta_end > 0 ? c.beta_end : ddpm_beta_T};
}
}  // namespace

ddpm::Schedule TrainConfig::make_schedule() const {
  ddpm::Schedule s = [&] {
    if (schedule == "linear" && (beta_start > 0 || beta_end > 0)) {
      const auto [beta_1, beta_T] = linear_schedule_ends(*this);
      return ddpm::linear_schedule(T, beta_1, beta_T);
    }
    return schedule == "linear" ? ddpm::linear_schedule(T) : ddpm::cosine_schedule(T);
  }();
  if (decoder_floor > 0) s.set_decoder_floor(decoder_floor);
  return s;
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
  X(eval_n) X(classifier)                                                                                      \
  X(cond) X(p_uncond) X(t_sampler) X(lr_decay) X(beta_start) X(beta_end) X(decoder_floor)

std::string TrainConfig::to_json() const {
  json j;
#define DD_PUT(f) j[#f] = f;
  DD_TRAIN_FIELDS(DD_PUT)
#undef DD_PUT
  return j.dump();
}

namespace {
// nlohmann's get_to converts freely (1.5 -> 1, -1 -> 2^64 - 1, true -> 1): a stored config
// must hold exactly the type of its field.
template <class F>
bool json_fits(const json& v) {
  if constexpr (std::is_same<F, std::string>::value) {
    return v.is_string();
  } else if constexpr (std::is_same<F, bool>::value) {
    return v.is_boolean();
  } else if constexpr (std::is_same<F, double>::value) {
    return v.is_number();
  } else if constexpr (std::is_same<F, uint64_t>::value) {
    return v.is_number_unsigned();
  } else if constexpr (std::is_integral<F>::value) {
    if (!v.is_number_integer()) return false;
    if (v.is_number_unsigned()) return v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<F>::max());
    const int64_t x = v.get<int64_t>();
    return x >= std::numeric_limits<F>::min() && x <= std::numeric_limits<F>::max();
  } else {  // std::vector<int>
    if (!v.is_array()) return false;
    for (const auto& e : v)
      if (!json_fits<typename F::value_type>(e)) return false;
    return true;
  }
}
}  // namespace

TrainConfig TrainConfig::from_json(const std::string& text) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw std::invalid_argument(std::string("run config: expected a JSON object, got unparsable text (") + e.what() + ")");
  }
  if (!j.is_object()) throw std::invalid_argument("run config: expected a JSON object, got " + std::string(j.type_name()));
  TrainConfig c;
  // Keys a config written before their defaults changed lacks, read as what they were then:
  c.cond = false;        // before --cond: unconditional
  c.beta_start = 0.0;    // before the beta_1 = 1e-5 default: DDPM's beta_1
  c.loss = "simple";     // before the hybrid default (configs have always stored loss and variance;
  c.variance = "large";  // these keep a hand-written config without them as it was)
  c.t_sampler = "uniform";  // before --t-sampler and before its loss-second-moment default
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& key = it.key();
    bool known = false;
    try {
#define DD_GET(f)                                                                   \
  if (key == #f) {                                                                  \
    if (!json_fits<decltype(c.f)>(it.value())) throw json::type_error::create(302, "", nullptr); \
    it.value().get_to(c.f);                                                         \
    known = true;                                                                   \
  }
      DD_TRAIN_FIELDS(DD_GET)
#undef DD_GET
    } catch (const json::exception&) {
      std::string shown = it.value().dump();
      if (shown.size() > 60) shown = shown.substr(0, 60) + "...";
      throw std::invalid_argument("run config: expected key '" + key + "' of its flag's type, got " + shown);
    }
    if (!known) throw std::invalid_argument("run config: unknown key '" + (key.size() > 60 ? key.substr(0, 60) + "..." : key) + "'");
  }
  return c;
}

const std::vector<std::string>& structural_keys() {
  static const std::vector<std::string> keys{"ch", "ch_mult", "num_res_blocks", "attn_res", "dropout", "T",
                                             "schedule", "loss", "variance", "dataset", "batch", "seed",
                                             "cond", "p_uncond", "beta_start", "beta_end", "decoder_floor"};
  return keys;
}

namespace {
[[noreturn]] void bad(const std::string& flag, const std::string& expected, const std::string& found) {
  throw std::invalid_argument("--" + flag + ": expected " + expected + ", got " + found);
}

}  // namespace

std::string format_number(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", v);
  return b;
}

int max_threads() {
  const unsigned cores = std::thread::hardware_concurrency();
  return 4 * static_cast<int>(cores > 0 ? cores : 1);
}

void validate_threads(int threads) {
  if (threads < 0 || threads > max_threads())
    bad("threads", "0.." + std::to_string(max_threads()) + " (0 = all cores; at most 4x the " +
                       std::to_string(max_threads() / 4) + " cores of this machine, more only slow it down)",
        std::to_string(threads));
}

void check_resume_steps(const std::string& checkpoint, int64_t done, int64_t steps) {
  if (steps <= done)
    bad("steps", "more than the " + std::to_string(done) + " steps already done in " + checkpoint +
                     " (--resume continues to --steps in total)", std::to_string(steps));
}

double unet_parameter_count(const UNetConfig& u) {
  // The layers of nn/unet.cpp and nn/layers.cpp, counted in double so no size overflows.
  const double temb = 4.0 * u.ch;
  auto conv = [](double cin, double cout, double k) { return cin * cout * k * k + cout; };
  auto norm = [](double c) { return 2 * c; };
  auto res = [&](double cin, double cout) {
    return norm(cin) + conv(cin, cout, 3) + (temb * cout + cout) + norm(cout) + conv(cout, cout, 3) +
           (cin != cout ? conv(cin, cout, 1) : 0.0);
  };
  auto attn = [&](double c) { return norm(c) + 4 * conv(c, c, 1); };
  auto has_attn = [&](int r) { return std::find(u.attn_resolutions.begin(), u.attn_resolutions.end(), r) != u.attn_resolutions.end(); };
  double n = (u.ch * temb + temb) + (temb * temb + temb) + conv(u.in_channels, u.ch, 3);
  if (u.num_classes > 0) n += (static_cast<double>(u.num_classes) + 1) * temb;  // label_emb: the digits and the null label
  std::vector<double> skips{static_cast<double>(u.ch)};
  double cin = u.ch;
  int r = u.resolution;
  const size_t levels = u.ch_mult.size();
  for (size_t i = 0; i < levels; ++i) {
    const double cout = static_cast<double>(u.ch) * u.ch_mult[i];
    for (int b = 0; b < u.num_res_blocks; ++b) {
      n += res(b == 0 ? cin : cout, cout) + (has_attn(r) ? attn(cout) : 0.0);
      skips.push_back(cout);
    }
    if (i + 1 < levels) {
      n += conv(cout, cout, 3);
      skips.push_back(cout);
      r /= 2;
    }
    cin = cout;
  }
  n += res(cin, cin) + attn(cin) + res(cin, cin);
  for (size_t k = levels; k-- > 0;) {
    const double cout = static_cast<double>(u.ch) * u.ch_mult[k];
    for (int b = 0; b < u.num_res_blocks + 1; ++b) {
      n += res(cin + skips.back(), cout) + (has_attn(r) ? attn(cout) : 0.0);
      skips.pop_back();
      cin = cout;
    }
    if (k != 0) {
      n += conv(cout, cout, 3);
      r *= 2;
    }
  }
  return n + norm(cin) + conv(cin, u.out_channels(), 3);
}

double training_memory_bytes(const TrainConfig& c) {
  // Weights, gradients, EMA and Adam's two moments (float32), plus the activations kept for the
  // backward pass: at least a few tensors of batch x width x 28 x 28 per ResBlock.
  const UNetConfig u = c.unet();
  double widest = 0;
  for (int m : u.ch_mult) widest = std::max(widest, static_cast<double>(u.ch) * m);
  const double blocks = static_cast<double>(u.ch_mult.size()) * (2 * u.num_res_blocks + 1) + 2;
  return 5 * 4 * unet_parameter_count(u) + 4.0 * static_cast<double>(c.batch) * widest * 28 * 28 * 4 * blocks;
}

namespace {
double physical_memory_bytes() {
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? static_cast<double>(pages) * static_cast<double>(page) : 0;
}
}  // namespace

void TrainConfig::validate(bool this_machine) const {
  if (steps < 1) bad("steps", ">= 1", std::to_string(steps));
  if (batch < 1) bad("batch", ">= 1", std::to_string(batch));
  if (!(std::isfinite(lr) && lr > 0)) bad("lr", "> 0 and finite", format_number(lr));
  if (warmup < 0) bad("warmup", ">= 0", std::to_string(warmup));
  if (!(std::isfinite(grad_clip) && grad_clip >= 0)) bad("grad-clip", "a finite value >= 0 (0 = off)", format_number(grad_clip));
  if (!(ema_decay >= 0 && ema_decay < 1)) bad("ema-decay", "a value in [0, 1)", format_number(ema_decay));
  if (!(std::isfinite(weight_decay) && weight_decay >= 0)) bad("weight-decay", "a finite value >= 0", format_number(weight_decay));
  if (!(dropout >= 0 && dropout < 1)) bad("dropout", "a value in [0, 1)", format_number(dropout));
  if (T > 100000) bad("T", "2..100000", std::to_string(T));
  if (T < 2) bad("T", ">= 2", std::to_string(T));
  if (schedule != "linear" && schedule != "cosine") bad("schedule", "linear or cosine", "'" + schedule + "'");
  if (lr_decay != "none" && lr_decay != "cosine") bad("lr-decay", "none or cosine", "'" + lr_decay + "'");
  if (lr_decay == "cosine" && steps <= warmup)
    bad("lr-decay", "more --steps than --warmup for a cosine decay", std::to_string(steps) + " steps, " + std::to_string(warmup) + " warm-up");
  for (auto [name, v] : {std::pair<const char*, double>{"beta-start", beta_start}, {"beta-end", beta_end}})
    if (!(v >= 0 && v < 1)) bad(name, "a value in [0, 1) (0 = DDPM's)", format_number(v));
  if (schedule != "linear" && (beta_start > 0 || beta_end > 0))
    bad("beta-start/--beta-end", "--schedule linear (the cosine schedule has no end points to set)", "--schedule " + schedule);
  if (schedule == "linear") {
    const auto [b1, bT] = linear_schedule_ends(*this);
    if (!(b1 <= bT && bT < 1)) bad("beta-start", "beta_1 <= beta_T < 1", format_number(b1) + " and " + format_number(bT));
  }
  if (loss != "simple" && loss != "hybrid" && loss != "vlb") bad("loss", "simple, hybrid or vlb", "'" + loss + "'");
  if (variance != "large" && variance != "small" && variance != "learned")
    bad("variance", "large, small or learned", "'" + variance + "'");
  if (loss != "simple" && variance != "learned")
    bad("loss", "simple unless --variance learned (the vb term trains the variance)", "'" + loss + "' with --variance " + variance);
  // L_simple gives the variance channel no gradient: a new run would sample with an untrained
  // variance. A stored config (this_machine = false) is only read, so it still loads.
  if (this_machine && loss == "simple" && variance == "learned")
    bad("variance", "large or small with --loss simple (L_simple does not train a learned variance; --loss hybrid or vlb do)",
        "--variance learned with --loss simple");
  if (!(decoder_floor >= 0 && decoder_floor < 1)) bad("decoder-floor", "a value in [0, 1) (0 = sqrt(betatilde_2))", format_number(decoder_floor));
  if (decoder_floor > 0 && variance != "learned")
    bad("decoder-floor", "--variance learned (it bounds the learned sigma_1)", "--variance " + variance);
  if (decoder_floor > 0 && schedule == "linear") {
    const double b1 = linear_schedule_ends(*this).first;
    if (!(decoder_floor * decoder_floor < b1))
      bad("decoder-floor", "a standard deviation below sqrt(beta_1) = " + format_number(std::sqrt(b1)), format_number(decoder_floor));
  }
  if (t_sampler != "uniform" && t_sampler != "loss-second-moment")
    bad("t-sampler", "uniform or loss-second-moment", "'" + t_sampler + "'");
  if (dataset != "mnist" && dataset != "fashion") bad("dataset", "mnist or fashion", "'" + dataset + "'");
  if (this_machine)
    validate_threads(threads);
  else if (threads < 0 || threads > 4096)
    bad("threads", "0..4096", std::to_string(threads));
  for (auto [name, v] : {std::pair<const char*, int64_t>{"log-every", log_every}, {"sample-every", sample_every},
                         {"ckpt-every", ckpt_every}, {"eval-every", eval_every}})
    if (v < 0) bad(name, ">= 0 (0 = never)", std::to_string(v));
  if (sample_n < 1) bad("sample-n", ">= 1", std::to_string(sample_n));
  // The previews' strided schedule needs 1..T steps only when there are previews.
  if (sample_every > 0 && (sample_steps < 1 || sample_steps > T))
    bad("sample-steps", "1.." + std::to_string(T) + " (--T) while previews are on (--sample-every > 0)", std::to_string(sample_steps));
  if (sample_every > 0 && sample_n > 4096) bad("sample-n", "1..4096", std::to_string(sample_n));
  if (eval_n < 1) bad("eval-n", ">= 1", std::to_string(eval_n));
  if (!(p_uncond >= 0 && p_uncond < 1)) bad("p-uncond", "a probability in [0, 1)", std::to_string(p_uncond));
  try {
    unet().validate();
  } catch (const std::exception& e) {
    throw std::invalid_argument(std::string("model flags (--ch, --ch-mult, --attn-res): ") + e.what());
  }
  // --attn-res names side lengths of the model: 28 and each halving (28, 14, 7 for three levels).
  std::vector<int> sides{28};
  for (size_t i = 0; i + 1 < ch_mult.size(); ++i) sides.push_back(sides.back() / 2);
  std::string side_list;
  for (int r : sides) side_list += (side_list.empty() ? "" : ", ") + std::to_string(r);
  for (int r : attn_res)
    if (r != 0 && std::find(sides.begin(), sides.end(), r) == sides.end())
      bad("attn-res", "side lengths of this model (" + side_list + "; 0 = none)", std::to_string(r));
  if (attn_res.size() > 1 && std::find(attn_res.begin(), attn_res.end(), 0) != attn_res.end())
    bad("attn-res", "0 alone (no attention) or side lengths", "0 among others");
  // A stored config only has to fit its weights (sampling); a training run everything.
  const double have = physical_memory_bytes();
  const double need = this_machine ? training_memory_bytes(*this) : 4 * unet_parameter_count(unet());
  if (have > 0 && need > have) {
    char msg[256];
    std::snprintf(msg, sizeof msg, "a model and batch that fit in memory: this one needs about %.1f GiB (%.3g parameters; "
                  "weights, gradients, EMA and Adam moments, plus activations), the machine has %.1f GiB",
                  need / (1 << 30), unet_parameter_count(unet()), have / (1 << 30));
    throw std::invalid_argument("--ch / --ch-mult / --batch: expected " + std::string(msg));
  }
}

void add_train_flags(CLI::App& app, TrainConfig& c) {
  app.add_option("--steps", c.steps, "training steps")->capture_default_str()->group("Optimisation");
  app.add_option("--batch", c.batch, "images per step")->capture_default_str()->group("Optimisation");
  app.add_option("--lr", c.lr, "Adam learning rate")->capture_default_str()->group("Optimisation");
  app.add_option("--warmup", c.warmup, "linear learning-rate warm-up steps")->capture_default_str()->group("Optimisation");
  app.add_option("--lr-decay", c.lr_decay, "after the warm-up: none (constant) | cosine (to 0 at the last step)")->capture_default_str()->group("Optimisation");
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
  CLI::Option* beta_start = app.add_option("--beta-start", c.beta_start,
                                           "linear schedule: beta_1 (the default 1e-5 at any T, not used with --schedule cosine; 0 = DDPM's 1e-4 x 1000/T)")
                                ->capture_default_str()->group("Diffusion");
  app.add_option("--beta-end", c.beta_end, "linear schedule: beta_T (0 = DDPM's 0.02 x 1000/T)")->capture_default_str()->group("Diffusion");
  CLI::Option* loss = app.add_option("--loss", c.loss,
                                     "simple (eq. 14; alone it sets --variance large) | hybrid (simple + vb, needs learned variance) | vlb")
                          ->capture_default_str()->group("Diffusion");
  CLI::Option* variance = app.add_option("--variance", c.variance,
                                         "reverse-process variance: large (beta) | small (betatilde) | learned "
                                         "(large or small alone sets --loss simple)")
                              ->capture_default_str()->group("Diffusion");
  app.add_option("--decoder-floor", c.decoder_floor,
                 "with --variance learned: the lowest sigma_1 of the decoder p(x0 | x1), in [-1, 1] units (0 = sqrt(betatilde_2))")
      ->capture_default_str()->group("Diffusion");
  app.add_flag("--cond,!--no-cond", c.cond,
               "class-conditional (the default): learn a digit-label embedding (classifier-free guidance); --no-cond: "
               "unconditional (with --loss simple --beta-start 0: DDPM's reference UNet and schedule)")->group("Model");
  app.add_option("--p-uncond", c.p_uncond, "with --cond: probability of training with the null label")->capture_default_str()->group("Model");
  non_negative(app.add_option("--seed", c.seed, "seed of every random draw"))->capture_default_str()->group("Run");
  CLI::Option* t_sampler = app.add_option("--t-sampler", c.t_sampler,
                 "timesteps: uniform (Algorithm 1) | loss-second-moment (importance sampling, Nichol & Dhariwal 2021 sec. 3.3)")
      ->capture_default_str()->group("Diffusion");
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
  // The default beta_1 belongs to the linear schedule: --schedule cosine alone must not trip the
  // "cosine has no end points" check, only an explicit --beta-start.
  // The hybrid loss and the learned variance go together (the vb term is what trains the variance),
  // so naming one of DDPM's choices alone brings its partner: --loss simple alone is DDPM's fixed
  // beta variance, --variance small alone is trained with L_simple. L_simple (named or brought)
  // samples t uniformly unless --t-sampler says otherwise: DDPM's Algorithm 1.
  app.parse_complete_callback([&c, beta_start, loss, variance, t_sampler] {
    if (c.schedule != "linear" && beta_start->count() == 0) c.beta_start = 0.0;
    if (loss->count() > 0 && variance->count() == 0 && c.loss == "simple") c.variance = "large";
    if (variance->count() > 0 && loss->count() == 0 && c.variance != "learned") c.loss = "simple";
    if (c.loss == "simple" && t_sampler->count() == 0) c.t_sampler = "uniform";
  });
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
