// sample: images from a train_mnist checkpoint (EMA weights unless --raw). By default the project's
// sampler (ddpm::default_sampler: 100 strided ancestral steps with the posterior variance); --steps,
// --variance, --sampler ddim choose another. Writes a PNG grid and
// the same samples as an IDX file; optionally the x0_hat strip over t (DDPM fig. 6) and
// interpolations of test digits at step t (DDPM fig. 8).
#include <CLI/CLI.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "apps/common/main.h"
#include "apps/common/data.h"
#include "apps/common/model.h"
#include "apps/common/progress.h"
#include "ddpm/sample.h"
#include "tensor/io/idx.h"
#include "tensor/io/png.h"
#include "tensor/parallel.h"

using namespace dd;
using namespace dd::app;

namespace {

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

std::pair<int64_t, int64_t> parse_pair(const std::string& s) {
  const size_t comma = s.find(',');
  try {
    size_t used_a = 0, used_b = 0;
    if (comma == std::string::npos) throw std::invalid_argument("");
    const std::string a = s.substr(0, comma), b = s.substr(comma + 1);
    const int64_t i = std::stoll(a, &used_a), j = std::stoll(b, &used_b);
    if (used_a != a.size() || used_b != b.size()) throw std::invalid_argument("");
    return {i, j};
  } catch (const std::exception&) {
    throw std::invalid_argument("--pair: expected two test-digit indices I,J (e.g. 3,7), got '" + s + "'");
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
  app.add_option("--seed", seed, "seed of the noise")->capture_default_str();
  app.add_option("--threads", threads, "threads (0 = OMP_NUM_THREADS or all cores)")->capture_default_str();
  app.add_option("--batch", batch, "images per network call")->capture_default_str();
  app.add_option("--progressive", progressive, "also write the x0_hat strip over t (DDPM fig. 6) to this PNG");
  app.add_option("--progressive-rows", progressive_rows, "samples shown in the --progressive strip")->capture_default_str();
  app.add_option("--interpolate", interp_out, "also write interpolations of test digits (DDPM fig. 8) to this PNG");
  app.add_option("--t", interp_t, "step at which --interpolate mixes the two digits (0 = T/2)")->capture_default_str();
  app.add_option("--pair", pairs, "test-digit indices I,J to interpolate, one row each (repeatable; default 0,1)");
  app.add_option("--data", data, "folder with the MNIST IDX files for --interpolate (default: the run's --data)");
  if (const auto code = dd::app::parse_flags(app, "sample", argc, argv)) return *code;
  if (n < 1) throw std::invalid_argument("--n: expected >= 1, got " + std::to_string(n));
  if (batch < 1) throw std::invalid_argument("--batch: expected >= 1, got " + std::to_string(batch));
  if (sampler != "ancestral" && sampler != "ddim")
    throw std::invalid_argument("--sampler: expected ancestral or ddim, got '" + sampler + "'");
  if (!(eta >= 0)) throw std::invalid_argument("--eta: expected >= 0, got " + std::to_string(eta));
  if (sampler != "ddim" && app.count("--eta")) throw std::invalid_argument("--eta: expected only with --sampler ddim, got --sampler " + sampler);
  if (sampler != "ancestral" && !variance.empty())
    throw std::invalid_argument("--variance: expected only with --sampler ancestral (DDIM's variance is set by --eta), got --sampler " + sampler);
  if (threads < 0) throw std::invalid_argument("--threads: expected >= 0, got " + std::to_string(threads));
  if (progressive_rows < 1) throw std::invalid_argument("--progressive-rows: expected >= 1, got " + std::to_string(progressive_rows));
  if (interp_out.empty() && (app.count("--t") || !pairs.empty()))
    throw std::invalid_argument("--t / --pair: expected together with --interpolate FILE.png, got no --interpolate");
  std::vector<std::pair<int64_t, int64_t>> pair_list;
  for (const auto& p : pairs) pair_list.push_back(parse_pair(p));
  if (pair_list.empty()) pair_list.push_back({0, 1});
  if (idx.empty()) idx = (std::filesystem::path(out).replace_extension("").string()) + "-idx3-ubyte";
  if (threads > 0) set_num_threads(threads);

  LoadedRun run = load_run(ckpt, !raw);
  const ddpm::Schedule& base = run.schedule;
  const int64_t T = base.T;
  const bool learned = run.config.variance_type() == ddpm::VarianceType::Learned;
  const ddpm::DefaultSampler defaults = ddpm::default_sampler(T, learned);
  if (steps < 0) steps = defaults.steps;
  if (steps == 0) steps = T;
  if (steps < 2 || steps > T)
    throw std::invalid_argument("--steps: expected 2.." + std::to_string(T) + " (T of the checkpoint; 0 = all), got " +
                                std::to_string(steps));
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
  ddpm::Denoiser denoiser = learned && opts.variance != ddpm::VarianceType::Learned ? ddpm::eps_only(make_denoiser(*run.model))
                                                                                    : make_denoiser(*run.model);

  // Test digits for --interpolate are read before the long sampling, so a bad --data or --pair fails fast.
  Tensor<float> pair_a, pair_b;
  if (!interp_out.empty()) {
    Dataset ds = load_dataset(run.config.dataset, data.empty() ? run.config.data : data);
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

  char eta_text[48];
  std::snprintf(eta_text, sizeof eta_text, "DDIM eta %g", eta);
  std::fprintf(stderr, "sample: %s step %lld, %s weights, %s%s, %lld of T = %lld steps, %s x0_hat, %lld samples, seed %llu, %d threads\n",
               ckpt.c_str(), static_cast<long long>(run.step), raw ? "raw" : "EMA",
               sampler == "ddim" ? eta_text : "ancestral",
               sampler == "ddim" ? "" : (" (" + ddpm::to_string(opts.variance) + " variance)").c_str(), static_cast<long long>(steps),
               static_cast<long long>(T), no_clip ? "unclipped" : "clipped", static_cast<long long>(n),
               static_cast<unsigned long long>(seed), get_num_threads());

  // Main samples, batch by batch; the progressive strip follows the first rows of the first batch.
  const int64_t n_batches = (n + batch - 1) / batch;
  const std::vector<int64_t> strip_steps = evenly_spaced(steps, 10);
  const int64_t strip_rows = std::min({progressive_rows, n, batch});
  const int64_t strip_cols = static_cast<int64_t>(strip_steps.size());
  Tensor<float> strip({strip_rows * strip_cols, 1, 28, 28});
  Tensor<float> images({n, 1, 28, 28});
  const int64_t pixels = 28 * 28;
  Progress progress("sampling step", n_batches * steps);
  int64_t done = 0;
  for (int64_t b = 0; b < n_batches; ++b) {
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
      progress.update(++done, "batch " + std::to_string(b + 1) + "/" + std::to_string(n_batches));
    };
    Rng rng = batch_rng(seed, b);
    const Shape shape{count, 1, 28, 28};
    const Tensor<float> x = ddpm::sample(schedule, denoiser, shape, rng, o).contiguous();
    std::copy_n(x.data(), count * pixels, images.data() + first * pixels);
  }
  progress.finish();
  const int columns = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(n))));
  write_png_grid(out, images, columns);
  write_idx_images(idx, images);
  std::printf("samples: %s and %s (%lld images)\n", out.c_str(), idx.c_str(), static_cast<long long>(n));
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

int main(int argc, char** argv) { return dd::app::run_main("sample", run, argc, argv); }
