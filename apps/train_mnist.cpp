// train_mnist: trains the DDPM UNet on MNIST (Algorithm 1 of Ho et al. 2020; by default with the
// hybrid loss and learned variance of Nichol & Dhariwal 2021) and writes, under
// --out: checkpoints (ckpt-STEP.safetensors, last.safetensors), EMA sample grids (PNG + IDX),
// metrics.jsonl and a loss / bits-per-dim plot. Resumable bit for bit; Ctrl-C saves and exits.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>

#include "apps/common/main.h"
#include "apps/common/data.h"
#include "apps/common/model.h"
#include "apps/common/progress.h"
#include "apps/common/run_config.h"
#include "apps/common/run_folder.h"
#include "apps/common/sample_quality.h"
#include "ddpm/bound.h"
#include "ddpm/sample.h"
#include "dist/comm.h"
#include "nn/checkpoint.h"
#include "nn/optim.h"
#include "train/batches.h"
#include "train/train_step.h"
#include "tensor/io/atomic_file.h"
#include "tensor/io/idx.h"
#include "tensor/io/png.h"
#include "tensor/io/safetensors.h"
#include "tensor/kernels.h"
#include "tensor/parallel.h"

namespace fs = std::filesystem;
using namespace dd;
using namespace dd::app;
using train::Stream;
using train::stream_rng;
using nlohmann::json;

namespace {

volatile std::sig_atomic_t g_stop_requested = 0;
void request_stop(int) { g_stop_requested = 1; }

// The ranks of a data-parallel run (one process without MPI): each trains on its shard of every
// global batch, the gradients are averaged, rank 0 alone writes files and progress.
dist::Comm* g_comm = nullptr;

// metrics.jsonl: one JSON object per line; training lines and evaluation lines share it.
struct History {
  std::vector<double> step, loss_smooth, eval_step, eval_bpd, quality_step, quality_fid;
};

History read_history(const fs::path& metrics, int64_t up_to_step) {
  History h;
  std::ifstream in(metrics);
  std::string line;
  std::vector<std::string> kept;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (!check_metrics_line(metrics.string(), number, line, in.peek() == EOF)) continue;
    json j = json::parse(line);
    if (j["step"].get<int64_t>() > up_to_step) continue;
    kept.push_back(line);
    if (j.contains("loss_smooth")) {
      h.step.push_back(j["step"].get<double>());
      h.loss_smooth.push_back(j["loss_smooth"].get<double>());
    }
    if (j.contains("fid")) {
      h.quality_step.push_back(j["step"].get<double>());
      h.quality_fid.push_back(j["fid"].get<double>());
    }
    if (j.contains("bpd_estimate")) {
      h.eval_step.push_back(j["step"].get<double>());
      h.eval_bpd.push_back(j["bpd_estimate"].get<double>());
    }
  }
  in.close();
  // Drop lines logged after the checkpoint we resume from: they are about to be logged again.
  std::string text;
  for (const auto& l : kept) text += l + "\n";
  write_file_atomic(metrics.string(), text);
  return h;
}

void write_plots(const fs::path& out, const History& h) {
  if (h.step.size() >= 2) {
    PlotOptions o;
    o.title = "TRAINING LOSS (SMOOTHED)";
    o.log_y = true;
    write_line_plot_png((out / "loss.png").string(), {{"loss", h.step, h.loss_smooth, {31, 119, 180}}}, o);
  }
  if (h.eval_step.size() >= 2) {
    PlotOptions o;
    o.title = "HELD-OUT BITS/DIM (ONE-T ESTIMATE, EMA)";
    write_line_plot_png((out / "bpd.png").string(), {{"bits/dim", h.eval_step, h.eval_bpd, {214, 39, 40}}}, o);
  }
  if (h.quality_step.size() >= 2) {
    PlotOptions o;
    o.title = "CLASSIFIER-FID OF THE EMA PREVIEWS";
    o.log_y = true;
    write_line_plot_png((out / "fid.png").string(), {{"fid", h.quality_step, h.quality_fid, {44, 160, 44}}}, o);
  }
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// Applies the flags passed on the command line onto the config stored in the checkpoint; a flag
// that would change the model or the diffusion is an error naming it.
TrainConfig merge_for_resume(const TrainConfig& stored, const TrainConfig& cli, const std::vector<std::string>& passed,
                             const std::string& path) {
  json s = json::parse(stored.to_json()), c = json::parse(cli.to_json());
  for (const auto& key : passed) {
    if (!s.contains(key)) continue;  // --resume, --list-params
    const auto& structural = structural_keys();
    if (std::find(structural.begin(), structural.end(), key) != structural.end() && s[key] != c[key])
      throw std::invalid_argument("--resume " + path + ": --" + key + " must stay " + s[key].dump() +
                                  " (it changes the model or the data), got " + c[key].dump());
    s[key] = c[key];
  }
  return TrainConfig::from_json(s.dump());
}

// columns 0: a square grid.
void save_samples(const fs::path& out, const std::string& stem, const Tensor<float>& images, int columns = 0) {
  if (columns <= 0) columns = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(images.size(0)))));
  write_png_grid((out / (stem + ".png")).string(), images, columns);
  write_idx_images((out / (stem + "-idx3-ubyte")).string(), images);
}

int run(int argc, char** argv) {
  CLI::App app{"Train a DDPM (Ho et al. 2020) on MNIST. Writes checkpoints, EMA sample grids, metrics.jsonl and "
               "plots under --out. Ctrl-C finishes the step, saves, and exits."};
  TrainConfig cli;
  cli.steps = kRecommendedSteps;
  add_train_flags(app, cli);
  std::string resume;
  bool list_params = false, overwrite = false;
  add_run_folder_flags(app, overwrite);
  app.add_option("--resume", resume, "continue from this checkpoint (e.g. runs/mnist/last.safetensors)")->group("Run");
  app.add_flag("--list-params", list_params, "print every parameter's name and shape, then the total, and exit");
  double rank_timeout = 600;
  app.add_option("--rank-timeout", rank_timeout, "MPI runs: seconds a rank waits for the others before declaring the run broken")
      ->capture_default_str()->group("Run");
  if (const auto code = dd::app::parse_flags(app, "train_mnist", argc, argv)) return *code;

  TrainConfig cfg = cli;
  ResumePoint resume_point;  // the checkpoint, read once
  if (!resume.empty()) resume_point = read_resume_point(resume);
  if (!resume.empty()) {
    const std::vector<std::string> passed = passed_keys(app);
    const auto was_passed = [&](const char* key) { return std::find(passed.begin(), passed.end(), key) != passed.end(); };
    cfg = merge_for_resume(resume_point.config, cli, passed, resume);
    // The run goes on in the folder of its checkpoint (wherever it was moved, whatever the working
    // directory), not in the --out stored when it started, unless --out is passed.
    if (!was_passed("out")) {
      const fs::path folder = fs::path(resume).parent_path();
      cfg.out = folder.empty() ? "." : folder.string();
    }
    // A thread count stored by a bigger machine is not an error here unless it is asked for again.
    if (!was_passed("threads") && cfg.threads > max_threads()) {
      std::fprintf(stderr, "resume: the run used --threads %d, more than this machine allows (%d); using all cores\n", cfg.threads,
                   max_threads());
      cfg.threads = 0;
    }
  }
  cfg.validate();
  if (!resume.empty()) check_resume_steps(resume, resume_point.step, cfg.steps);
  if (cfg.threads > 0) set_num_threads(cfg.threads);
  if (list_params) {  // reads nothing and writes nothing: the run folder is not checked
    Rng list_rng(cfg.seed);
    std::printf("%s", format_parameter_list(UNet<float>(cfg.unet(), list_rng)).c_str());
    return 0;
  }
  dist::Comm& comm = *g_comm;
  const bool root = comm.root();
  // Only rank 0 writes the run folder, so only it checks and locks it.
  if (root) precheck_run_folder(cfg.out, resume, overwrite);
  comm.timeout_s = rank_timeout;
  if (cfg.batch % comm.size() != 0) {
    if (root)
      std::fprintf(stderr, "train_mnist: --batch: expected a multiple of the %d ranks (the global batch is split evenly), got %lld\n",
                   comm.size(), static_cast<long long>(cfg.batch));
    return 2;
  }
  const int64_t local_batch = cfg.batch / comm.size(), first_sample = comm.rank() * local_batch;

  Rng init_rng(cfg.seed);
  UNet<float> model(cfg.unet(), init_rng);

  const fs::path out = cfg.out;
  Dataset data = load_dataset(cfg.dataset, cfg.data);
  if (root) std::fprintf(stderr, "data: %s\n", data.describe().c_str());

  AdamConfig adam_cfg;
  adam_cfg.lr = cfg.lr;
  adam_cfg.weight_decay = cfg.weight_decay;
  adam_cfg.decoupled_weight_decay = cfg.weight_decay > 0;
  Adam<float> adam(model, adam_cfg);
  Ema<float> ema(model, cfg.ema_decay);
  int64_t start_step = 0;
  // The sampler of t; its state (per-t loss history) is kept in the checkpoint so a resumed run draws
  // the same t as an uninterrupted one.
  std::unique_ptr<ddpm::TimestepSampler> t_sampler = ddpm::make_timestep_sampler(cfg.t_sampler, cfg.T);
  const bool importance_t = cfg.t_sampler != "uniform";
  if (!resume.empty()) {
    CheckpointInfo info = load_checkpoint(resume_point.file, model, &ema, &adam);
    start_step = info.step;
    if (importance_t && info.state.count("t_sampler")) t_sampler->set_state(info.state.at("t_sampler"));
    if (root && !info.kernel_path.empty() && info.kernel_path != kernel_path_name(kernel_path()))
      std::fprintf(stderr, "resume: the run was trained on the %s kernels and continues on %s: exact to rounding, not bit-identical to "
                           "an uninterrupted run\n", info.kernel_path.c_str(), kernel_path_name(kernel_path()));
    if (root) std::fprintf(stderr, "resumed from %s at step %lld\n", resume.c_str(), static_cast<long long>(start_step));
  }
  const ddpm::Schedule schedule = cfg.make_schedule();
  train::TrainStepConfig step_cfg;
  step_cfg.lr = cfg.lr;
  step_cfg.warmup = cfg.warmup;
  step_cfg.decay_steps = cfg.lr_decay == "cosine" ? cfg.steps : 0;
  step_cfg.grad_clip = cfg.grad_clip;
  step_cfg.loss = cfg.loss_options();
  train::TrainStep train_step(model, adam, ema, schedule, step_cfg);
  ddpm::Denoiser denoiser = make_denoiser(model);
  train::BatchSampler batches(data.train, cfg.batch, cfg.seed);
  // --cond: the training labels, and the preview's labels (one row per digit, columns = sample_n / 10).
  std::vector<int64_t> train_labels, preview_labels;
  const int64_t preview_columns = cfg.cond ? std::max<int64_t>(1, cfg.sample_n / 10) : 0;
  if (cfg.cond) {
    train_labels = labels_of(data, true);
    for (int64_t digit = 0; digit < 10; ++digit) preview_labels.insert(preview_labels.end(), preview_columns, digit);
    std::fprintf(stderr, "class-conditional: %zu labels, p_uncond %g; previews: one row per digit, guidance %g; held-out bits/dim: the unconditional bound (null label)\n",
                 train_labels.size(), cfg.p_uncond, train::kDefaultGuidance);
  }
  const Tensor<float> eval_images = data.test.slice(0, 0, std::min<int64_t>(cfg.eval_n, data.test.size(0))).contiguous();

  std::optional<RunFolder> run_folder;  // after every check: nothing is created before
  if (root) run_folder.emplace(out.string(), resume, overwrite, "train_mnist");
  std::unique_ptr<SampleQuality> quality;
  if (!root) {
  } else if (cfg.sample_every > 0 && !cfg.classifier.empty() && fs::exists(cfg.classifier)) {
    quality = std::make_unique<SampleQuality>(cfg.classifier, data.test, std::min<int64_t>(1000, data.test.size(0)));
    std::fprintf(stderr, "sample quality: %s on every preview\n", cfg.classifier.c_str());
  } else if (cfg.sample_every > 0) {
    std::fprintf(stderr, "sample quality: no classifier at %s (./apps/classifier makes one); previews are not scored\n",
                 cfg.classifier.c_str());
  }
  const fs::path metrics_path = out / "metrics.jsonl";
  History history = root ? read_history(metrics_path, start_step) : History{};
  std::ofstream metrics;
  if (root) metrics.open(metrics_path, std::ios::app);
  std::signal(SIGINT, request_stop);
  std::signal(SIGTERM, request_stop);
  std::signal(SIGHUP, request_stop);  // a closed terminal saves the run like Ctrl-C
  // Data parallelism: the flat gradient buffer is summed over the ranks and divided by their
  // number, the gradient of the mean loss over the global batch (every shard has local_batch images).
  double allreduce_s = 0;
  if (comm.size() > 1) {
    train_step.gradient_hook = [&](Tensor<float>& grads) {
      const auto t0 = std::chrono::steady_clock::now();
      comm.allreduce_sum(grads.data(), grads.numel());
      const float ranks = static_cast<float>(comm.size());
      float* g = grads.data();
      for (int64_t i = 0, n = grads.numel(); i < n; ++i) g[i] /= ranks;
      allreduce_s += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
  }

  auto checkpoint = [&](int64_t step) {
    if (!root) return;
    CheckpointInfo info;
    info.step = step;
    info.config = cfg.to_json();
    info.dataset = data.describe();
    info.rng = stream_rng(cfg.seed, Stream::Noise, step).state();
    info.unet_config = cfg.unet().to_json();
    if (const Tensor<double> ts = t_sampler->state(); ts.defined()) info.state["t_sampler"] = ts;
    info.kernel_path = kernel_path_name(kernel_path());
    char name[64];
    std::snprintf(name, sizeof name, "ckpt-%06lld.safetensors", static_cast<long long>(step));
    save_checkpoint((out / name).string(), model, &ema, &adam, info);
    save_checkpoint((out / "last.safetensors").string(), model, &ema, &adam, info);
  };
  auto preview = [&](int64_t step) {
    if (!root) return;
    EmaSwapGuard use_ema(ema);
    ddpm::Schedule strided = ddpm::respace(schedule, ddpm::strided_timesteps(cfg.T, cfg.sample_steps));
    Rng rng = stream_rng(cfg.seed, Stream::Preview, 0);  // the same noise at every preview: progress is visible
    // The project's default sampler (what ./apps/sample draws without flags), at --sample-steps.
    const ddpm::SampleOptions opts = ddpm::default_sampler(cfg.T, cfg.variance_type() == ddpm::VarianceType::Learned).options;
    Tensor<float> images = cfg.cond ? ddpm::sample(strided, train::make_guided_denoiser(model, preview_labels, train::kDefaultGuidance),
                                                   {static_cast<int64_t>(preview_labels.size()), 1, 28, 28}, rng, opts)
                                    : ddpm::sample(strided, denoiser, {cfg.sample_n, 1, 28, 28}, rng, opts);
    char stem[64];
    std::snprintf(stem, sizeof stem, "samples-%06lld", static_cast<long long>(step));
    save_samples(out, stem, images, static_cast<int>(preview_columns));
    if (quality && images.size(0) > SampleQuality::kNeighbours) {
      SampleMetrics m = quality->measure(images);
      json j = json::parse(m.to_json());
      j["step"] = step;
      metrics << j.dump() << "\n" << std::flush;
      history.quality_step.push_back(step);
      history.quality_fid.push_back(m.fid);
      write_plots(out, history);
      std::fprintf(stderr, "%sstep %lld previews: classifier-FID %.1f (N = %lld vs %lld real; see docs/metrics.md)  IS %.2f  "
                   "confident %.0f%%\n", isatty(fileno(stderr)) ? "\r\033[K" : "", static_cast<long long>(step), m.fid,
                   static_cast<long long>(m.n_samples), static_cast<long long>(m.n_real), m.inception_score,
                   100 * m.fraction_above_0_9);
    }
  };

  if (root)
    std::fprintf(stderr, "training %lld steps, batch %lld, %lld parameters, %d threads%s -> %s\n",
                 static_cast<long long>(cfg.steps), static_cast<long long>(cfg.batch),
                 static_cast<long long>(model.num_parameters()), get_num_threads(),
                 comm.size() > 1 ? (" per rank, " + comm.describe() + ", " + std::to_string(local_batch) + " images per rank").c_str() : "",
                 out.c_str());
  Progress progress("step", cfg.steps, start_step);
  // The smoothed loss is a bias-corrected EMA (0.98) kept in normalized form, m_s = m_{s-1} +
  // 0.02 (loss_s - m_{s-1}) / (1 - 0.98^s), so its whole state is the logged value itself: a resumed
  // run picks it up from the metrics line of the checkpoint step (always logged) and logs the same
  // values as a straight run. Without that line it restarts from the first loss.
  double loss_smooth = 0, last_bpd = NAN;
  bool have_smooth = false;
  if (start_step > 0 && !history.step.empty() && history.step.back() == static_cast<double>(start_step)) {
    loss_smooth = history.loss_smooth.back();
    have_smooth = true;
  }
  model.train();
  for (int64_t step = start_step + 1; step <= cfg.steps; ++step) {
    Tensor<float> x0 = batches.batch_for_step(step);
    std::vector<int64_t> labels;
    if (cfg.cond) {
      labels = batches.labels_for_step(step, train_labels);
      if (comm.size() > 1) labels = std::vector<int64_t>(labels.begin() + first_sample, labels.begin() + first_sample + local_batch);
      labels = train::drop_labels(cfg.seed, step, labels, cfg.p_uncond, model.config().null_label(), first_sample);
    }
    if (comm.size() > 1) x0 = x0.slice(0, first_sample, first_sample + local_batch).contiguous();
    train::StepDraws draws = train::draw_step(cfg.seed, step, x0.shape(), cfg.T, first_sample);
    std::vector<double> t_weights;  // importance weights 1 / (T p_t); empty for uniform t
    if (importance_t) {
      ddpm::TimestepDraw td = train::draw_timesteps(*t_sampler, cfg.seed, step, x0.size(0), first_sample);
      draws.t = std::move(td.t);
      t_weights = std::move(td.weights);
    }
    model.set_dropout_stream(train::dropout_stream(cfg.seed, step, first_sample));
    const train::TrainStepResult result = cfg.cond ? train_step.run(step, x0, draws.t, draws.noise, t_weights, labels)
                                                   : train_step.run(step, x0, draws.t, draws.noise, t_weights);
    // One allreduce: the global batch's loss (the mean of the equal shards' means), whether any rank
    // was signalled (so that every rank stops after the same step), and with an importance sampler
    // every sample's (t, loss) at its global index (each rank fills its own samples, zeros elsewhere;
    // x + 0 is exact), so that every rank records the whole global batch in global order and keeps
    // the history, and hence the draws, of one process.
    std::vector<double> step_sums(2 + (importance_t ? 2 * cfg.batch : 0), 0.0);
    step_sums[0] = result.loss;
    step_sums[1] = g_stop_requested ? 1.0 : 0.0;
    if (importance_t && result.per_sample.size() == draws.t.size())
      for (size_t i = 0; i < draws.t.size(); ++i) {
        step_sums[2 + 2 * (first_sample + i)] = static_cast<double>(draws.t[i]);
        step_sums[3 + 2 * (first_sample + i)] = result.per_sample[i];
      }
    comm.allreduce_sum(step_sums.data(), static_cast<int64_t>(step_sums.size()));
    if (importance_t && result.applied) {  // applied is the same on every rank (the gradient is shared)
      std::vector<int64_t> global_t(cfg.batch);
      std::vector<double> global_loss(cfg.batch);
      for (int64_t g = 0; g < cfg.batch; ++g) {
        global_t[g] = static_cast<int64_t>(step_sums[2 + 2 * g]);
        global_loss[g] = step_sums[3 + 2 * g];
      }
      t_sampler->update(global_t, global_loss);
    }
    const double loss_value = step_sums[0] / comm.size(), grad_norm = result.grad_norm, lr = result.lr;
    if (!result.applied) {
      if (root) std::fprintf(stderr, "\ntrain_mnist: expected a finite %s, got %g at step %lld; stopping (the last checkpoint is kept)\n",
                   std::isfinite(loss_value) ? "gradient" : "loss", std::isfinite(loss_value) ? grad_norm : loss_value,
                   static_cast<long long>(step));
      return 3;
    }

    loss_smooth = have_smooth ? loss_smooth + 0.02 * (loss_value - loss_smooth) / (1.0 - std::pow(0.98, static_cast<double>(step)))
                              : loss_value;
    have_smooth = true;
    const double shown_loss = loss_smooth;
    const bool stopping = step_sums[1] > 0;
    const bool save_now = (cfg.ckpt_every > 0 && step % cfg.ckpt_every == 0) || step == cfg.steps || stopping;
    const double samples_per_s = (step - start_step) * cfg.batch / progress.elapsed_s();
    if (root && cfg.log_every > 0 && (step % cfg.log_every == 0 || save_now)) {
      json j{{"step", step}, {"loss", loss_value}, {"loss_smooth", shown_loss}, {"grad_norm", grad_norm},
             {"lr", lr}, {"samples_per_s", samples_per_s}, {"elapsed_s", progress.elapsed_s()}};
      if (comm.size() > 1) {
        j["ranks"] = comm.size();
        j["allreduce_s"] = allreduce_s;  // total so far, this rank's wait included
      }
      metrics << j.dump() << "\n" << std::flush;
      history.step.push_back(step);
      history.loss_smooth.push_back(shown_loss);
      write_plots(out, history);
    }
    if (root && cfg.eval_every > 0 && step % cfg.eval_every == 0) {
      EmaSwapGuard use_ema(ema);
      Rng rng = stream_rng(cfg.seed, Stream::Eval, step);
      ddpm::BoundOptions bo;
      bo.variance = cfg.variance_type();
      last_bpd = ddpm::variational_bound_estimate(schedule, denoiser, eval_images, rng, bo).mean_bits_per_dim;
      metrics << json{{"step", step}, {"bpd_estimate", last_bpd}, {"eval_n", eval_images.size(0)}}.dump() << "\n" << std::flush;
      history.eval_step.push_back(step);
      history.eval_bpd.push_back(last_bpd);
      write_plots(out, history);
    }
    if (cfg.sample_every > 0 && step % cfg.sample_every == 0) preview(step);
    if (save_now) checkpoint(step);
    if (root) progress.update(step, "loss " + fmt("%.4f", shown_loss) + (std::isnan(last_bpd) ? "" : "  bpd~" + fmt("%.2f", last_bpd)) +
                              "  " + fmt("%.1f", samples_per_s) + " img/s");
    if (stopping) {
      if (root) std::fprintf(stderr, "\nstopped by signal after step %lld; saved %s\n", static_cast<long long>(step),
                   (out / "last.safetensors").c_str());
      return 0;
    }
  }
  if (root) progress.finish();
  if (cfg.sample_every > 0 && cfg.steps % cfg.sample_every != 0 && start_step < cfg.steps) preview(cfg.steps);
  if (root) std::fprintf(stderr, "done: %s\n", (out / "last.safetensors").c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  auto comm = dd::dist::init(argc, argv);
  g_comm = comm.get();
  const int rc = dd::app::run_main("train_mnist", run, argc, argv);
  return dd::dist::finish(std::move(comm), rc);
}
