// nll: the full variational bound (DDPM eq. 5) of a train_mnist checkpoint on the first N test
// digits, in bits/dim, with its parts L_T, sum of L_{t-1} and L_0, a standard error over images,
// a CSV of the mean of every term L_t (t = 0..T) and its plot. T network calls per batch of images.
// --compare OTHER.csv (another run's nll-terms.csv) also draws both runs' terms in nll-compare.png,
// each named by its run folder.
// The last line of stdout is one JSON object (for scripts).
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

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
#include "apps/common/terms_csv.h"
#include "ddpm/bound.h"
#include "tensor/io/atomic_file.h"
#include "tensor/io/png.h"
#include "tensor/parallel.h"

namespace fs = std::filesystem;
using namespace dd;
using namespace dd::app;
using nlohmann::json;

namespace {

// The ranks of an MPI run (one process without MPI): each evaluates a contiguous share of the batches.
dist::Comm* g_comm = nullptr;

int run(int argc, char** argv) {
  CLI::App app{"Bits/dim of a train_mnist checkpoint: the full variational bound over all T terms on the first N test digits."};
  std::string ckpt, out, data, compare;
  int64_t n = 256, batch = 32;
  uint64_t seed = 0;
  int threads = 0;
  bool raw = false, no_clip = false;
  app.add_option("--ckpt", ckpt, "checkpoint written by train_mnist (e.g. runs/mnist/last.safetensors)")->required();
  app.add_option("--n", n, "number of test digits (the first N of the 10,000)")->capture_default_str();
  app.add_option("--batch", batch, "images per network call")->capture_default_str();
  app.add_flag("--raw", raw, "use the raw weights instead of the EMA weights");
  app.add_flag("--no-clip", no_clip, "do not clip x0_hat to [-1, 1] in the model mean (plain eq. 11)");
  non_negative(app.add_option("--seed", seed, "seed of the x_t ~ q(x_t|x0) draws"))->capture_default_str();
  app.add_option("--out", out, "folder for nll-terms.csv and nll-terms.png (default: the checkpoint's folder)");
  app.add_option("--data", data, "folder with the MNIST IDX files (default: the run's --data)");
  app.add_option("--threads", threads, "threads (0 = OMP_NUM_THREADS or all cores)")->capture_default_str();
  bool null_label = false;
  app.add_flag("--null-label", null_label, "with a --cond checkpoint: the unconditional bound -log p(x) through the null label "
                                           "(default: the conditional bound -log p(x | y) with the true test labels)");
  app.add_option("--compare", compare, "another run's nll-terms.csv: also plot its terms and these in nll-compare.png (each named by its folder)");
  if (const auto code = dd::app::parse_flags(app, "nll", argc, argv)) return *code;
  if (n < 2) throw std::invalid_argument("--n: expected >= 2 (a standard error needs two images), got " + std::to_string(n));
  if (batch < 1) throw std::invalid_argument("--batch: expected >= 1, got " + std::to_string(batch));
  validate_threads(threads);
  if (threads > 0) set_num_threads(threads);
  if (out.empty()) out = fs::path(ckpt).parent_path().string();
  if (out.empty()) out = ".";

  BoundTerms old_terms;
  if (!compare.empty()) old_terms = read_terms_csv(compare);  // before the long bound: a bad file fails fast
  LoadedRun run = load_run(ckpt, !raw);
  Dataset ds = load_dataset(run.config.dataset, data.empty() ? run.config.data : data, Split::TestOnly);
  if (n > ds.test.size(0))
    throw std::invalid_argument("--n: expected at most " + std::to_string(ds.test.size(0)) + " (the test digits in " +
                                ds.folder + "), got " + std::to_string(n));
  dist::Comm& comm = *g_comm;
  const bool root = comm.root();
  // A conditional model's bound is -log p(x | y) with each test digit's true label (--null-label:
  // the null label, i.e. the unconditional model inside it).
  const bool conditional = run.model->conditional() && !null_label;
  if (null_label && !run.model->conditional())
    throw std::invalid_argument("--null-label: expected a class-conditional checkpoint (train_mnist --cond), got an unconditional one: " + ckpt);
  std::vector<int64_t> test_labels, batch_labels;
  if (conditional) test_labels = labels_of(ds, false);
  const std::string what = conditional ? "conditional bound -log p(x | y), true test labels"
                                       : run.model->conditional() ? "unconditional bound -log p(x), null label" : "bound -log p(x)";
  if (root) fs::create_directories(out);
  const ddpm::Schedule& schedule = run.schedule;
  const int64_t T = schedule.T;
  ddpm::BoundOptions bo;
  bo.variance = run.config.variance_type();
  bo.clip_x0 = !no_clip;

  const int64_t n_batches = (n + batch - 1) / batch;
  const dist::Share my_batches = dist::share_of(n_batches, comm.rank(), comm.size());
  if (root) std::fprintf(stderr, "nll: %s step %lld, %s weights, %lld test digits, T = %lld (%lld network calls), %s x0_hat, %d threads\n",
               ckpt.c_str(), static_cast<long long>(run.step), raw ? "raw" : "EMA", static_cast<long long>(n),
               static_cast<long long>(T), static_cast<long long>(n_batches * T), no_clip ? "unclipped" : "clipped",
               get_num_threads());
  // The progress counts network calls, the unit of cost: variational_bound makes T per batch.
  const int64_t my_calls = (my_batches.end - my_batches.begin) * T;  // rank 0's share on an MPI run
  Progress progress("network call", my_calls);
  int64_t calls = 0;
  ddpm::Denoiser inner = conditional ? make_denoiser(*run.model, batch_labels) : make_denoiser(*run.model);
  ddpm::Denoiser counted = [&](const Tensor<float>& x, const std::vector<int64_t>& t) {
    Tensor<float> y = inner(x, t);
    if (root) progress.update(std::min(++calls, my_calls));
    return y;
  };

  std::vector<ddpm::BoundResult> results;
  for (int64_t b = my_batches.begin; b < my_batches.end; ++b) {
    const int64_t first = b * batch, count = std::min(batch, n - first);
    const Tensor<float> x0 = ds.test.slice(0, first, first + count).contiguous();
    if (conditional) batch_labels.assign(test_labels.begin() + first, test_labels.begin() + first + count);
    Rng rng(seed, static_cast<uint64_t>(b) << 40);  // disjoint noise per batch
    results.push_back(ddpm::variational_bound(schedule, counted, x0, rng, bo));
  }
  if (root) progress.finish();
  results = gather_bound_results(comm, results);  // every batch, in order, on rank 0
  if (!root) return 0;
  ddpm::BoundAccumulator bound;
  for (const auto& r : results) bound.add(r);
  const ddpm::BoundSummary summary = bound.summary();
  const bool clipped = summary.clip_x0;
  const double total_bpd = summary.bits_per_dim, stderr_bpd = summary.stderr_bits_per_dim;
  const double prior_bpd = summary.prior_bits_per_dim, diffusion_bpd = summary.diffusion_bits_per_dim,
               decoder_bpd = summary.decoder_bits_per_dim;
  require_finite_value(total_bpd, "bound (bits/dim)", ckpt);

  // CSV and plot in the paper's indexing: L_0 (decoder), L_t for t = 1..T-1 (the KL at step t+1), L_T (prior).
  std::vector<double> ts, ys;
  std::string csv = "t,term,bits_per_dim\n";
  for (int64_t t = 0; t <= T; ++t) {
    const double v = summary.mean_term_bits_per_dim[t];
    char line[96];
    std::snprintf(line, sizeof line, "%lld,L_%s,%.10g\n", static_cast<long long>(t), t == T ? "T" : std::to_string(t).c_str(), v);
    csv += line;
    ts.push_back(static_cast<double>(t));
    ys.push_back(v);
  }
  const std::string csv_path = (fs::path(out) / "nll-terms.csv").string(), png_path = (fs::path(out) / "nll-terms.png").string();
  write_file_atomic(csv_path, csv);
  PlotOptions po;
  // The plot font prints capitals only, so the title avoids "L_t" (it would read as the prior L_T).
  po.title = "MEAN TERM OF THE BOUND AT EACH STEP (BITS/DIM; 0 = DECODER, T = PRIOR), " + std::to_string(n) + " TEST DIGITS";
  po.x_label = "t";
  po.log_y = true;
  write_line_plot_png(png_path, {{"term", ts, ys, {214, 39, 40}}}, po);
  std::string compare_path;
  if (!compare.empty()) {
    // Both runs' terms on one axis: blue the --compare CSV, red this checkpoint, each named by its
    // run folder (either may be the older run, so the legend does not say "old" and "new").
    compare_path = (fs::path(out) / "nll-compare.png").string();
    auto folder_name = [](const fs::path& folder, const std::string& fallback) {
      const std::string name = folder.filename().string();
      return name.empty() || name == "." ? fallback : name;
    };
    const std::string compare_name = folder_name(fs::path(compare).parent_path(), fs::path(compare).filename().string());
    const std::string this_name = folder_name(fs::path(out), "this checkpoint");
    PlotOptions co = po;
    co.title = "MEAN TERM AT EACH STEP (BITS/DIM): BLUE " + compare_name + ", RED " + this_name + " (THIS CHECKPOINT)";
    write_line_plot_png(compare_path,
                        {{compare_name, old_terms.t, old_terms.bits_per_dim, {31, 119, 180}}, {this_name, ts, ys, {214, 39, 40}}}, co);
  }

  std::printf("checkpoint %s (step %lld, %s weights), %lld test digits, T = %lld, x0_hat %s\n", ckpt.c_str(),
              static_cast<long long>(run.step), raw ? "raw" : "EMA", static_cast<long long>(n), static_cast<long long>(T),
              clipped ? "clipped to [-1, 1]" : "not clipped");
  std::printf("%s\n", what.c_str());
  std::printf("bound       %.4f +- %.4f bits/dim (standard error over images)\n", total_bpd, stderr_bpd);
  std::printf("  L_T           %.6f bits/dim (prior)\n", prior_bpd);
  std::printf("  sum L_{t-1}   %.6f bits/dim (t = 2..T)\n", diffusion_bpd);
  std::printf("  L_0           %.6f bits/dim (discretized decoder)\n", decoder_bpd);
  std::printf("per-term means: %s and %s\n", csv_path.c_str(), png_path.c_str());
  if (!compare.empty()) {
    double old_sum = 0;
    for (double v : old_terms.bits_per_dim) old_sum += v;
    std::printf("compare: %s (sum of terms %.4f, L_0 %.4f bits/dim; T = %zu) vs this checkpoint in %s\n", compare.c_str(), old_sum,
                old_terms.bits_per_dim[0], old_terms.t.size() - 1, compare_path.c_str());
  }
  json j{{"bits_per_dim", total_bpd}, {"L_T", prior_bpd}, {"L_sum", diffusion_bpd}, {"L_0", decoder_bpd},
         {"stderr", stderr_bpd}, {"n", n}, {"clip", clipped}, {"step", run.step}, {"T", T}, {"ema", !raw},
         {"checkpoint", ckpt}, {"csv", csv_path}, {"plot", png_path}, {"conditional", conditional}};
  if (!compare.empty()) j["compare_plot"] = compare_path;
  std::printf("%s\n", j.dump().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  auto comm = dd::dist::init(argc, argv);
  g_comm = comm.get();
  const int rc = dd::app::run_main("nll", run, argc, argv);
  return dd::dist::finish(std::move(comm), rc);
}
