// sample: images from a train_mnist checkpoint (EMA weights unless --raw). By default the project's
// sampler (ddpm::default_sampler: 100 strided ancestral steps with the model's learned variance, or
// the posterior variance for a fixed-variance model; a class-conditional model without --digit is
// also guided with w = 0.15 on t in [0.2 T, 0.7 T], train::balanced_guidance_interval); --steps,
// --variance, --sampler ddim, --guidance, --guidance-interval choose another. Writes a PNG grid and
// the same samples as an IDX file; optionally the x0_hat strip over t (DDPM fig. 6) and
// interpolations of test digits at step t (DDPM fig. 8).
#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "apps/common/main.h"
#include "apps/common/data.h"
#include "apps/common/dist_eval.h"
#include "apps/common/flag_checks.h"
#include "apps/common/outputs.h"
#include "apps/common/run_config.h"
#include "apps/common/model.h"
#include "apps/common/progress.h"
#include "ddpm/sample.h"
#include "tensor/io/idx.h"
#include "tensor/io/png.h"
#include "tensor/parallel.h"

using namespace dd;
using namespace dd::app;

namespace {

// The ranks of an MPI run (one process without MPI): each samples a contiguous share of the batches.
dist::Comm* g_comm = nullptr;

// Every batch draws from its own counter range of the generator (2^40 draws apart, far more than
// T steps of a batch use), so batches never share noise and a run is reproducible from --seed.
Rng batch_rng(uint64_t seed, int64_t batch_index) { return Rng(seed, static_cast<uint64_t>(batch_index) << 40); }

// ~count evenly spaced indices into 0..total-1, always the first and the last (the progressive strip's columns).
std::vector<int64_t> evenly_spaced(int64_t total, int64_t count) {
  std::vector<int64_t> out;
  count = std::min(count, total);
  for (int64_t i = 0; i < count; ++i) {
    const int64_t k = count == 1 ? total - 1 : static_cast<int64_t>(std::llround(double(i) * (total - 1) / (count - 1)));
    if (out.empty() || out.back() != k) out.push_back(k);
  }
  return out;
}

// A guidance interval as --guidance-interval takes it ("LO,HI"), or "all t" for the default one.
std::string interval_text(const train::GuidanceInterval& g) {
  if (g.all()) return "all t";
  return std::to_string(g.t_min) + "," + std::to_string(g.t_max);
}

// "I,J" of --pair and --guidance-interval; `expected` says what the flag takes, for the error.
std::pair<int64_t, int64_t> parse_pair(const std::string& s, const std::string& flag, const std::string& expected) {
  const size_t comma = s.find(',');
  try {
    size_t used_a = 0, used_b = 0;
    if (comma == std::string::npos) throw std::invalid_argument("");
    const std::string a = s.substr(0, comma), b = s.substr(comma + 1);
    const int64_t i = std::stoll(a, &used_a), j = std::stoll(b, &used_b);
    if (used_a != a.size() || used_b != b.size()) throw std::invalid_argument("");
    return {i, j};
  } catch (const std::exception&) {
    throw std::invalid_argument(flag + ": expected " + expected + ", got '" + s + "'");
  }
}

// Copies rows idx of images [N, C, H, W] into a new [idx.size(), C, H, W] tensor.
Tensor<float> gather(const Tensor<float>& images, const std::vector<int64_t>& idx) {
  Shape shape = images.shape();
  shape[0] = static_cast<int64_t>(idx.size());
  Tensor<float> out(shape);
  const int64_t per = images.numel() / images.size(0);
  const Tensor<float> src = images.contiguous();
  for (size_t i = 0; i < idx.size(); ++i) std::copy_n(src.data() + idx[i] * per, per, out.data() + i * per);
  return out;
}

// --digit values: 0..9 each (repeatable), or "all" for 0..9 in order. "null" (alone) is the null
// label, returned as an empty list with *null_label set.
std::vector<int64_t> parse_digits(const std::vector<std::string>& values, bool* null_label) {
  std::vector<int64_t> digits;
  *null_label = false;
  for (const std::string& v : values) {
    if (v == "null") {
      if (values.size() != 1)
        throw std::invalid_argument("--digit null: expected alone (the unconditional samples), got it with other --digit values");
      *null_label = true;
      continue;
    }
    if (v == "all") {
      for (int64_t d = 0; d < 10; ++d) digits.push_back(d);
      continue;
    }
    if (v.size() != 1 || v[0] < '0' || v[0] > '9')
      throw std::invalid_argument("--digit: expected a digit 0..9, all or null, got '" + v + "'");
    digits.push_back(v[0] - '0');
  }
  return digits;
}

int run(int argc, char** argv) {
  CLI::App app{"Draw samples from a train_mnist checkpoint (EMA weights unless --raw): a PNG grid and an IDX file."};
  std::string ckpt, out = "samples.png", idx, sampler = "ancestral", progressive, interp_out, data, variance;
  int64_t n = 64, steps = -1, batch = 64, interp_t = 0, progressive_rows = 8;
  double eta = 0.0;
  uint64_t seed = 0;
  int threads = 0;
  bool raw = false, no_clip = false;
  std::vector<std::string> pairs;
  app.add_option("--ckpt", ckpt, "checkpoint written by train_mnist (e.g. runs/mnist/last.safetensors)")->required();
  app.add_option("--n", n, "number of samples")->capture_default_str();
  app.add_option("--out", out, "PNG grid of the samples")->capture_default_str();
  app.add_option("--idx", idx, "IDX file of the samples (default: the --out name with -idx3-ubyte)");
  app.add_option("--steps", steps, "sampling steps K of a strided schedule (default: the default sampler's " +
                                       std::to_string(ddpm::kDefaultSamplingSteps) + ", at most T; 0 = all T)");
  app.add_option("--variance", variance,
                 "sigma_t^2 of the ancestral steps: large (beta_t), small (betatilde_t), learned (only a model trained "
                 "with --variance learned); default: learned for such a model, else small");
  app.add_option("--sampler", sampler, "ancestral (Algorithm 2) | ddim")->capture_default_str();
  app.add_option("--eta", eta, "DDIM eta (0 = deterministic, 1 = posterior variance)")->capture_default_str();
  app.add_flag("--raw", raw, "use the raw weights instead of the EMA weights");
  app.add_flag("--no-clip", no_clip, "do not clip x0_hat to [-1, 1] while sampling (plain eq. 11 mean)");
  non_negative(app.add_option("--seed", seed, "seed of the noise"))->capture_default_str();
  app.add_option("--threads", threads, "threads (0 = OMP_NUM_THREADS or all cores)")->capture_default_str();
  app.add_option("--batch", batch, "images per network call")->capture_default_str();
  app.add_option("--progressive", progressive, "also write the x0_hat strip over t (DDPM fig. 6) to this PNG");
  app.add_option("--progressive-rows", progressive_rows, "samples shown in the --progressive strip")->capture_default_str();
  app.add_option("--interpolate", interp_out, "also write interpolations of test digits (DDPM fig. 8) to this PNG");
  app.add_option("--t", interp_t, "step at which --interpolate mixes the two digits (0 = T/2)")->capture_default_str();
  app.add_option("--pair", pairs, "test-digit indices I,J to interpolate, one row each (repeatable; default 0,1)");
  app.add_option("--data", data, "folder with the MNIST IDX files for --interpolate (default: the run's --data)");
  // Class-conditional checkpoints (train_mnist --cond): classifier-free guidance.
  std::vector<std::string> digit_flags;
  double guidance = train::kDefaultGuidance;
  std::string labels_out;
  app.add_option("--digit", digit_flags, "with a --cond checkpoint: draw this digit, one row of --n per --digit (repeatable; "
                                         "'all' = 0..9; --n defaults to 10 here), or 'null' for the null label (unconditional). "
                                         "Without --digit: every digit equally, sample i asks digit i mod 10")->group("Conditional");
  app.add_option("--guidance", guidance, "guidance weight w: eps = (1 + w) eps(x, y) - w eps(x, null); default " +
                                           format_number(train::kDefaultGuidance) + " with --digit, " +
                                           format_number(train::kBalancedGuidance) + " without (the measured best of each, README)")
      ->group("Conditional");
  std::string interval_flag;
  app.add_option("--guidance-interval", interval_flag,
                 "guide only the steps whose t (1..T) is in LO,HI, the others with one network call (Kynkaanniemi et al. "
                 "2024); default " + interval_text(train::balanced_guidance_interval(1000)) +
                     " at T = 1000 (0.2 T to 0.7 T) without --digit, every t with --digit")
      ->group("Conditional");
  app.add_option("--labels", labels_out, "IDX label file of the asked digits (default: the --out name with -labels-idx1-ubyte)")
      ->group("Conditional");
  if (const auto code = dd::app::parse_flags(app, "sample", argc, argv)) return *code;
  bool null_label = false;
  const std::vector<int64_t> digits = parse_digits(digit_flags, &null_label);
  if (null_label && (app.count("--guidance") || app.count("--guidance-interval") || app.count("--labels")))
    throw std::invalid_argument("--guidance / --guidance-interval / --labels: expected with digits to draw, got --digit null (the "
                                "null label has no guidance)");
  if (!std::isfinite(guidance) || guidance < 0)
    throw std::invalid_argument("--guidance: expected a finite weight >= 0, got " + std::to_string(guidance));
  const int64_t per_digit = digits.empty() ? 0 : (app.count("--n") ? n : 10);
  if (!digits.empty()) n = per_digit * static_cast<int64_t>(digits.size());
  if (n < 1) throw std::invalid_argument("--n: expected >= 1, got " + std::to_string(n));
  if (batch < 1) throw std::invalid_argument("--batch: expected >= 1, got " + std::to_string(batch));
  if (sampler != "ancestral" && sampler != "ddim")
    throw std::invalid_argument("--sampler: expected ancestral or ddim, got '" + sampler + "'");
  if (!(eta >= 0)) throw std::invalid_argument("--eta: expected >= 0, got " + std::to_string(eta));
  if (sampler != "ddim" && app.count("--eta")) throw std::invalid_argument("--eta: expected only with --sampler ddim, got --sampler " + sampler);
  validate_threads(threads);
  if (sampler != "ancestral" && !variance.empty())
    throw std::invalid_argument("--variance: expected only with --sampler ancestral (DDIM's variance is set by --eta), got --sampler " + sampler);
  if (progressive_rows < 1) throw std::invalid_argument("--progressive-rows: expected >= 1, got " + std::to_string(progressive_rows));
  if (interp_out.empty() && (app.count("--t") || !pairs.empty()))
    throw std::invalid_argument("--t / --pair: expected together with --interpolate FILE.png, got no --interpolate");
  std::vector<std::pair<int64_t, int64_t>> pair_list;
  for (const auto& p : pairs) pair_list.push_back(parse_pair(p, "--pair", "two test-digit indices I,J (e.g. 3,7)"));
  if (pair_list.empty()) pair_list.push_back({0, 1});
  if (idx.empty()) idx = (std::filesystem::path(out).replace_extension("").string()) + "-idx3-ubyte";
  check_output_files({{"--out", out}, {"--idx", idx}, {"--progressive", progressive}, {"--interpolate", interp_out}});
  if (threads > 0) set_num_threads(threads);

  LoadedRun run = load_run(ckpt, !raw);
  if (!run.model->conditional() && !digit_flags.empty())
    throw std::invalid_argument("--digit: expected a class-conditional checkpoint (train_mnist --cond), got an unconditional one: " + ckpt);
  if (!run.model->conditional() && (app.count("--guidance") || app.count("--guidance-interval") || app.count("--labels")))
    throw std::invalid_argument("--guidance / --guidance-interval / --labels: expected a class-conditional checkpoint (train_mnist "
                                "--cond), got an unconditional one: " + ckpt);
  // What a conditional checkpoint is asked: the --digit rows, or without --digit every digit equally
  // (sample i asks i mod 10, so 1,000 samples hold 100 of each), or with --digit null nothing.
  const bool balanced = run.model->conditional() && digit_flags.empty();
  const bool labelled = !digits.empty() || balanced;
  if (balanced && !app.count("--guidance")) guidance = train::kBalancedGuidance;
  train::GuidanceInterval interval;  // every t
  if (labels_out.empty() && labelled) labels_out = std::filesystem::path(out).replace_extension("").string() + "-labels-idx1-ubyte";
  if (labelled) check_output_files({{"--labels", labels_out}});
  const ddpm::Schedule& base = run.schedule;
  const int64_t T = base.T;
  const bool learned = run.config.variance_type() == ddpm::VarianceType::Learned;
  const ddpm::DefaultSampler defaults = ddpm::default_sampler(T, learned);
  if (steps < 0) steps = defaults.steps;
  if (steps == 0) steps = T;
  if (steps < 2 || steps > T)
    throw std::invalid_argument("--steps: expected 2.." + std::to_string(T) + " (T of the checkpoint; 0 = all), got " +
                                std::to_string(steps));
  if (balanced && interval_flag.empty()) interval = train::balanced_guidance_interval(T);
  if (!interval_flag.empty()) {
    const std::string expected = "two timesteps LO,HI with 1 <= LO <= HI <= " + std::to_string(T) + " (T of the checkpoint)";
    const auto [lo, hi] = parse_pair(interval_flag, "--guidance-interval", expected);
    if (lo < 1 || hi < lo || hi > T) throw std::invalid_argument("--guidance-interval: expected " + expected + ", got '" + interval_flag + "'");
    interval = {lo, hi};
  }
  if (interp_t == 0) interp_t = T / 2;
  if (interp_t < 1 || interp_t > T)
    throw std::invalid_argument("--t: expected 1.." + std::to_string(T) + " (T of the checkpoint), got " + std::to_string(interp_t));
  const ddpm::Schedule schedule = steps == T ? base : ddpm::respace(base, ddpm::strided_timesteps(T, steps));
  ddpm::SampleOptions opts = defaults.options;
  opts.sampler = ddpm::sampler_type_from_string(sampler);
  opts.eta = eta;
  opts.clip_x0 = !no_clip;
  if (!variance.empty()) {
    if (variance != "large" && variance != "small" && variance != "learned")
      throw std::invalid_argument("--variance: expected large, small or learned, got '" + variance + "'");
    if (variance == "learned" && !learned)
      throw std::invalid_argument("--variance: expected large or small (" + ckpt + " was trained with --variance " +
                                  run.config.variance + ", it has no learned variance), got 'learned'");
    opts.variance = ddpm::variance_type_from_string(variance);
  }
  if (opts.sampler == ddpm::SamplerType::Ddim) opts.variance = learned ? ddpm::VarianceType::Learned : ddpm::VarianceType::Large;
  // A learned-variance network sampled with a fixed variance: only its eps channels are used.
  const bool eps_channels_only = learned && opts.variance != ddpm::VarianceType::Learned;
  ddpm::Denoiser denoiser = eps_channels_only ? ddpm::eps_only(make_denoiser(*run.model)) : make_denoiser(*run.model);
  // The asked digit of every sample (one row of per_digit each), and the current batch's slice of it.
  std::vector<int64_t> asked, batch_labels;
  for (int64_t d : digits) asked.insert(asked.end(), per_digit, d);
  if (balanced)
    for (int64_t i = 0; i < n; ++i) asked.push_back(i % 10);
  ddpm::Denoiser guided = denoiser;
  if (labelled) {
    guided = train::make_guided_denoiser(*run.model, batch_labels, guidance, interval);
    if (eps_channels_only) guided = ddpm::eps_only(guided);
  }

  // Test digits for --interpolate are read before the long sampling, so a bad --data or --pair fails fast.
  Tensor<float> pair_a, pair_b;
  if (!interp_out.empty()) {
    Dataset ds = load_dataset(run.config.dataset, data.empty() ? run.config.data : data, Split::TestOnly);
    std::vector<int64_t> ia, ib;
    for (auto [i, j] : pair_list) {
      for (int64_t k : {i, j})
        if (k < 0 || k >= ds.test.size(0))
          throw std::invalid_argument("--pair: expected test-digit indices in 0.." + std::to_string(ds.test.size(0) - 1) +
                                      ", got " + std::to_string(k));
      ia.push_back(i);
      ib.push_back(j);
    }
    pair_a = gather(ds.test, ia);
    pair_b = gather(ds.test, ib);
  }

  dist::Comm& comm = *g_comm;
  const bool root = comm.root();
  char eta_text[48];
  std::snprintf(eta_text, sizeof eta_text, "DDIM eta %g", eta);
  if (root) std::fprintf(stderr, "sample: %s step %lld, %s weights, %s%s, %lld of T = %lld steps, %s x0_hat, %lld samples, seed %llu, %d threads\n",
               ckpt.c_str(), static_cast<long long>(run.step), raw ? "raw" : "EMA",
               sampler == "ddim" ? eta_text : "ancestral",
               sampler == "ddim" ? "" : (" (" + ddpm::to_string(opts.variance) + " variance)").c_str(), static_cast<long long>(steps),
               static_cast<long long>(T), no_clip ? "unclipped" : "clipped", static_cast<long long>(n),
               static_cast<unsigned long long>(seed), get_num_threads());
  const std::string guidance_text = "guidance w = " + format_number(guidance) +
                                    (guidance > 0 && !interval.all() ? " for t in " + interval_text(interval) : "");
  if (!digits.empty())
    std::fprintf(stderr, "sample: %lld per digit of %zu asked, %s\n", static_cast<long long>(per_digit), digits.size(),
                 guidance_text.c_str());
  if (balanced)
    std::fprintf(stderr, "sample: class-conditional checkpoint without --digit: every digit equally (sample i asks i mod 10), "
                 "%s\n", guidance_text.c_str());
  if (null_label) std::fprintf(stderr, "sample: --digit null: the null label (unconditional samples)\n");

  // Main samples, batch by batch; the progressive strip follows the first rows of the first batch.
  const int64_t n_batches = (n + batch - 1) / batch;
  const std::vector<int64_t> strip_steps = evenly_spaced(steps, 10);
  const int64_t strip_rows = std::min({progressive_rows, n, batch});
  const int64_t strip_cols = static_cast<int64_t>(strip_steps.size());
  Tensor<float> strip({strip_rows * strip_cols, 1, 28, 28});
  Tensor<float> images({n, 1, 28, 28});
  const int64_t pixels = 28 * 28;
  // An MPI run: rank r samples batches [begin, end) (rank 0 has batch 0 and the strip), rank 0 gathers.
  const dist::Share my_batches = dist::share_of(n_batches, comm.rank(), comm.size());
  const int64_t my_first = std::min(n, my_batches.begin * batch), my_end = std::min(n, my_batches.end * batch);
  Tensor<float> my_images({my_end - my_first, 1, 28, 28});
  Progress progress("sampling step", (my_batches.end - my_batches.begin) * steps);
  int64_t done = 0;
  for (int64_t b = my_batches.begin; b < my_batches.end; ++b) {
    const int64_t first = b * batch, count = std::min(batch, n - first);
    int64_t step_index = 0;
    size_t next_col = 0;
    ddpm::SampleOptions o = opts;
    o.on_step = [&](int64_t, const Tensor<float>&, const Tensor<float>& x0_hat) {
      if (b == 0 && !progressive.empty() && next_col < strip_steps.size() && strip_steps[next_col] == step_index) {
        const Tensor<float> x = x0_hat.contiguous();
        for (int64_t r = 0; r < strip_rows; ++r)
          std::copy_n(x.data() + r * pixels, pixels, strip.data() + (r * strip_cols + next_col) * pixels);
        ++next_col;
      }
      ++step_index;
      if (root) progress.update(++done, "batch " + std::to_string(b + 1) + "/" + std::to_string(n_batches));
    };
    Rng rng = batch_rng(seed, b);
    const Shape shape{count, 1, 28, 28};
    if (labelled) batch_labels.assign(asked.begin() + first, asked.begin() + first + count);
    const Tensor<float> x = ddpm::sample(schedule, guided, shape, rng, o).contiguous();
    std::copy_n(x.data(), count * pixels, my_images.data() + (first - my_first) * pixels);
  }
  if (root) progress.finish();
  gather_images(comm, my_images, images);
  if (!root) return 0;
  require_finite_images(images, ckpt);
  const int columns = digits.empty() ? static_cast<int>(std::ceil(std::sqrt(static_cast<double>(n)))) : static_cast<int>(per_digit);
  write_png_grid(out, images, columns);
  write_idx_images(idx, images);
  std::printf("samples: %s and %s (%lld images)\n", out.c_str(), idx.c_str(), static_cast<long long>(n));
  if (labelled) {
    write_idx_labels(labels_out, std::vector<uint8_t>(asked.begin(), asked.end()));
    if (balanced)
      std::printf("labels: %s (the asked digit of each sample: i mod 10)\n", labels_out.c_str());
    else
      std::printf("labels: %s (the asked digit of each sample, one row of %lld per digit)\n", labels_out.c_str(),
                  static_cast<long long>(per_digit));
  }
  if (!progressive.empty()) {
    write_png_grid(progressive, strip, static_cast<int>(strip_cols));
    std::printf("progressive: %s (%lld samples x %lld steps of x0_hat, t from %lld down to 1)\n", progressive.c_str(),
                static_cast<long long>(strip_rows), static_cast<long long>(strip_cols), static_cast<long long>(T));
  }

  if (!interp_out.empty()) {
    // Columns: x0, lambda = 0, 0.1, ..., 1, x0'; one row per pair. The same rng for every lambda, so
    // the rows differ only by the mix (DDPM fig. 8).
    const int64_t P = pair_a.size(0), L = 11, cols = L + 2;
    Tensor<float> grid({P * cols, 1, 28, 28});
    auto put = [&](const Tensor<float>& imgs, int64_t col) {
      const Tensor<float> c = imgs.contiguous();
      for (int64_t r = 0; r < P; ++r) std::copy_n(c.data() + r * pixels, pixels, grid.data() + (r * cols + col) * pixels);
    };
    put(pair_a, 0);
    put(pair_b, cols - 1);
    Progress ip("interpolation step", L * interp_t);
    int64_t idone = 0;
    ddpm::SampleOptions o = opts;
    o.on_step = [&](int64_t, const Tensor<float>&, const Tensor<float>&) { ip.update(++idone); };
    const Rng rng = batch_rng(seed, n_batches);  // a range the samples above never used
    for (int64_t l = 0; l < L; ++l)
      put(ddpm::interpolate(base, denoiser, pair_a, pair_b, interp_t, l / 10.0, rng, o), 1 + l);
    ip.finish();
    write_png_grid(interp_out, grid, static_cast<int>(cols));
    std::printf("interpolate: %s (%lld pair(s), t = %lld, lambda = 0, 0.1, ..., 1 between the two test digits)\n",
                interp_out.c_str(), static_cast<long long>(P), static_cast<long long>(interp_t));
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  auto comm = dd::dist::init(argc, argv);
  g_comm = comm.get();
  const int rc = dd::app::run_main("sample", run, argc, argv);
  return dd::dist::finish(std::move(comm), rc);
}
