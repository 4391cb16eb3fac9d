// eval: sample quality measured by the MNIST classifier of apps/classifier (nn/classifier.h,
// nn/metrics.h): classifier-FID against held-out real test digits, an Inception-score analogue, the
// class histogram and its KL to uniform, mean max-confidence, the fraction above 0.9, and k-NN
// precision / recall in feature space. Prints a readable table (stderr) and one JSON line (stdout).
//
//   ./apps/eval SAMPLES --classifier FILE           SAMPLES: an IDX image file, or a PNG grid
//                                                   (--grid-cols, --cell, --padding as write_png_grid)
//   ./apps/eval --calibrate --classifier FILE       the calibration tables of docs/metrics.md
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <string>
#include <vector>

#include "apps/common/main.h"
#include "apps/common/data.h"
#include "tensor/image_filter.h"
#include "apps/common/flag_checks.h"
#include "apps/common/run_config.h"
#include "apps/common/sample_quality.h"
#include "nn/checkpoint.h"
#include "nn/classifier.h"
#include "nn/metrics.h"
#include "tensor/io/idx.h"
#include "tensor/io/png.h"
#include "tensor/parallel.h"

using namespace dd;
using namespace dd::app;

namespace {

constexpr int kNeighbours = SampleQuality::kNeighbours;

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && std::equal(suffix.rbegin(), suffix.rend(), s.rbegin(), [](char a, char b) {
           return std::tolower(static_cast<unsigned char>(a)) == b;
         });
}

Tensor<float> load_samples(const std::string& path, int grid_cols, int cell, int padding, int64_t count) {
  if (ends_with(path, ".png")) {
    if (grid_cols < 1) throw std::invalid_argument(path + ": a PNG grid needs --grid-cols (the number of columns)");
    if (cell != 28) throw std::invalid_argument("--cell: expected 28 (the classifier reads 28x28 digits), got " + std::to_string(cell));
    return read_png_grid(path, grid_cols, cell, padding, count);
  }
  const IdxArray a = read_idx_images(path);
  if (a.dims[1] != 28 || a.dims[2] != 28)
    throw std::invalid_argument(path + ": expected 28x28 images, got " + std::to_string(a.dims[1]) + "x" + std::to_string(a.dims[2]));
  Tensor<float> x = idx_images_to_tensor(a);
  if (count > 0) {
    if (count > x.size(0)) throw std::invalid_argument("--count: the file holds " + std::to_string(x.size(0)) + " images, asked for " + std::to_string(count));
    x = x.slice(0, 0, count).contiguous();
  }
  return x;
}

std::string f3(double v, const char* fmt = "%.3f") {
  char b[32];
  std::snprintf(b, sizeof b, fmt, v);
  return b;
}

// Calibration: the metrics of known image sets against N held-out test digits, at each N.
int calibrate(const std::string& classifier, const Dataset& data, const std::string& folder, const std::vector<int64_t>& sizes,
              uint64_t seed) {
  const std::vector<int64_t> train_labels = labels_of(data, true);
  const int64_t n_train = data.train.size(0), n_test = data.test.size(0);
  for (int64_t n : sizes)
    if (n < kNeighbours + 1 || 2 * n > n_test)
      throw std::invalid_argument("--sizes: expected values in [" + std::to_string(kNeighbours + 1) + ", " + std::to_string(n_test / 2) + "], got " + std::to_string(n));
  std::printf("Command: ./apps/eval --calibrate --classifier FILE --seed %llu\n", static_cast<unsigned long long>(seed));
  for (int64_t n : sizes) {
    // reference: N test digits (as for SAMPLES); the sets: N random training digits (seeded), transformed
    const std::vector<int64_t> order = reference_order(n_test);
    const std::vector<int64_t> other(order.begin() + n, order.begin() + 2 * n);
    Rng rng(seed * 1000003 + static_cast<uint64_t>(n));
    std::vector<int64_t> pick(n), single;
    for (auto& i : pick) i = static_cast<int64_t>(rng.uniform1() * n_train);
    for (int64_t i = 0; i < n_train && static_cast<int64_t>(single.size()) < n; ++i)
      if (train_labels[i] == 3) single.push_back(i);
    if (static_cast<int64_t>(single.size()) < n)
      throw std::invalid_argument("--sizes: only " + std::to_string(single.size()) + " training 3s for the single-class set, asked for " + std::to_string(n));
    const Tensor<float> train_set = take(data.train, pick);
    const SampleQuality quality(classifier, data.test, n);  // reference: the first N of reference_order
    struct Row {
      std::string name;
      Tensor<float> images;
    };
    Rng noise_rng(seed * 1000003 + static_cast<uint64_t>(n) + 7);
    const std::vector<Row> rows = {
        {"other held-out test digits", take(data.test, other)},
        {"training digits", train_set},
        {"training digits, blurred (Gaussian sigma 1 px)", gaussian_blur(train_set, 1.0)},
        {"training digits, noised (+ N(0, 0.3^2), clipped)", add_noise(train_set, 0.3, noise_rng)},
        {"training digits, shifted 3 px right and down", shift(train_set, 3, 3)},
        {"a single class (training 3s)", take(data.train, single)},
        {"pure noise N(0,1) clipped to [-1,1]", gaussian_noise_images(n, noise_rng)},
        {"uniform noise in [-1,1] (seen in training)", uniform_noise_images(n, noise_rng)},
    };
    std::printf("\nN = %lld (reference: %lld held-out test digits)\n\n", static_cast<long long>(n), static_cast<long long>(n));
    std::printf("| set | FID | IS | KL(hist, uniform) | mean max-conf | frac conf > 0.9 | precision | recall |\n");
    std::printf("|---|---:|---:|---:|---:|---:|---:|---:|\n");
    for (const Row& r : rows) {
      const SampleMetrics m = quality.measure(r.images);
      std::printf("| %s | %s | %s | %s | %s | %s | %s | %s |\n", r.name.c_str(), f3(m.fid, "%.2f").c_str(), f3(m.inception_score, "%.2f").c_str(),
                  f3(m.kl_uniform).c_str(), f3(m.mean_max_confidence).c_str(), f3(m.fraction_above_0_9).c_str(), f3(m.precision).c_str(),
                  f3(m.recall).c_str());
      std::fflush(stdout);
      std::fprintf(stderr, "%s\n", m.to_json().c_str());
    }
  }
  std::printf("\n");
  return 0;
}

// Rows idx of a [N, D] feature matrix.
Tensor<double> rows_of(const Tensor<double>& m, const std::vector<int64_t>& idx) {
  const int64_t d = m.size(1);
  Tensor<double> out({static_cast<int64_t>(idx.size()), d});
  const Tensor<double> c = m.contiguous();
  for (size_t i = 0; i < idx.size(); ++i) std::copy_n(c.data() + idx[i] * d, d, out.data() + static_cast<int64_t>(i) * d);
  return out;
}

// --labels (samples of a class-conditional model, apps/sample --digit): the fraction classified as
// their asked digit, per class and overall, and per class the FID against all held-out test digits
// of that class. Table on stderr; the JSON keys asked_* for the stdout line.
IdxArray read_asked_labels(const std::string& labels_path, int64_t n) {
  const IdxArray a = read_idx_labels(labels_path);
  if (a.dims[0] != n)
    throw std::invalid_argument("--labels " + labels_path + ": expected one label per sample (" + std::to_string(n) + "), got " +
                                std::to_string(a.dims[0]));
  for (int64_t i = 0; i < n; ++i)
    if (a.data[i] > 9)
      throw std::invalid_argument("--labels " + labels_path + ": expected digits 0..9, got " + std::to_string(a.data[i]) +
                                  " at position " + std::to_string(i));
  return a;
}

nlohmann::json asked_label_report(const std::string& labels_path, const IdxArray& a, const Tensor<float>& x, const SampleQuality& quality,
                                  const Dataset& data) {
  const int64_t n = x.size(0);
  const ClassifierOutputs s = classify(quality.model(), x);
  const std::vector<int64_t> test_labels = labels_of(data, false);
  const ClassifierOutputs real = classify(quality.model(), data.test);
  nlohmann::json per_class = nlohmann::json::object();
  int64_t hits = 0;
  std::fprintf(stderr, "asked digits (%s): fraction classified as asked, FID against that class's held-out test digits\n",
               labels_path.c_str());
  std::fprintf(stderr, "| digit | samples | classified as asked | FID (vs held-out of the digit) |\n|---|---:|---:|---:|\n");
  for (int64_t c = 0; c < 10; ++c) {
    std::vector<int64_t> mine, held_out;
    int64_t class_hits = 0;
    for (int64_t i = 0; i < n; ++i)
      if (a.data[i] == c) {
        mine.push_back(i);
        const double* p = s.probs.data() + i * 10;
        class_hits += (std::max_element(p, p + 10) - p) == c;
      }
    if (mine.empty()) continue;
    for (int64_t i = 0; i < static_cast<int64_t>(test_labels.size()); ++i)
      if (test_labels[i] == c) held_out.push_back(i);
    hits += class_hits;
    const double frac = static_cast<double>(class_hits) / static_cast<double>(mine.size());
    // The Frechet distance needs a covariance: at least two samples.
    const double fid = mine.size() >= 2 ? frechet_distance(rows_of(s.features, mine), rows_of(real.features, held_out)) : NAN;
    std::fprintf(stderr, "| %lld | %zu | %.3f | %.2f (vs %zu) |\n", static_cast<long long>(c), mine.size(), frac, fid, held_out.size());
    per_class[std::to_string(c)] = {{"n", mine.size()}, {"classified_as_asked", frac}, {"fid", fid}, {"n_real", held_out.size()}};
  }
  const double overall = static_cast<double>(hits) / static_cast<double>(n);
  std::fprintf(stderr, "overall: %.3f of %lld samples classified as their asked digit\n", overall, static_cast<long long>(n));
  return {{"asked_classified_as_asked", overall}, {"asked_per_class", per_class}, {"labels", labels_path}};
}

int run(int argc, char** argv) {
  CLI::App app{"Sample-quality metrics from the MNIST classifier (docs/metrics.md): classifier-FID, Inception-score analogue, "
               "class histogram and its KL to uniform, confidences, k-NN precision and recall (k = 3). Table on stderr, one "
               "JSON line on stdout."};
  std::string samples, classifier = "runs/classifier.safetensors", data_dir = "data";
  int64_t n_real = 0, count = -1;
  int grid_cols = 0, cell = 28, padding = 2, threads = 0;
  bool calibrate_mode = false;
  std::vector<int64_t> sizes = {256, 1000};
  uint64_t seed = 0;
  app.add_option("SAMPLES", samples, "generated digits: an IDX image file (e.g. samples-idx3-ubyte) or a PNG grid");
  app.add_option("--classifier", classifier, "weights written by ./apps/classifier")->capture_default_str();
  app.add_option("--data", data_dir, "folder with the MNIST IDX files (the held-out test digits)")->capture_default_str();
  non_negative(app.add_option("--n-real", n_real, "held-out test digits in the reference (0: as many as samples, at most 10000)"));
  app.add_option("--count", count, "use only the first COUNT samples (default: all; for a grid: every cell)");
  positive(app.add_option("--grid-cols", grid_cols, "PNG grid: number of columns"));
  app.add_option("--cell", cell, "PNG grid: cell size in pixels")->capture_default_str();
  non_negative(app.add_option("--padding", padding, "PNG grid: pixels between and around the cells"))->capture_default_str();
  app.add_flag("--calibrate", calibrate_mode, "print the calibration tables (real, degraded and noise sets) instead");
  app.add_option("--sizes", sizes, "--calibrate: set sizes N (comma-separated)")->delimiter(',')->capture_default_str();
  non_negative(app.add_option("--seed", seed, "--calibrate: seed of the random subsets and noise"))->capture_default_str();
  app.add_option("--threads", threads, "threads (0: OMP_NUM_THREADS or all cores)")->check(CLI::NonNegativeNumber);
  std::string labels_path;
  app.add_option("--labels", labels_path, "IDX label file of the asked digits (apps/sample --digit): fraction classified as "
                                          "asked and FID per class");
  if (const auto code = dd::app::parse_flags(app, "eval", argc, argv)) return *code;
  if (samples.empty() == !calibrate_mode) {
    std::fprintf(stderr, "eval: expected either SAMPLES or --calibrate (see --help)\n");
    return 2;
  }
  validate_threads(threads);
  if (threads > 0) set_num_threads(threads);

  if (calibrate_mode) {
    const Dataset data = load_dataset("mnist", data_dir);
    return calibrate(classifier, data, data.folder, sizes, seed);
  }
  const Tensor<float> x = load_samples(samples, grid_cols, cell, padding, count);
  const int64_t n = x.size(0);
  if (n < kNeighbours + 1) throw std::invalid_argument(samples + ": expected at least " + std::to_string(kNeighbours + 1) + " images, got " + std::to_string(n));
  const Dataset data = load_dataset("mnist", data_dir, Split::TestOnly);
  const SampleQuality quality(classifier, data.test, n_real > 0 ? n_real : std::min<int64_t>(n, data.test.size(0)));
  const IdxArray asked = labels_path.empty() ? IdxArray{} : read_asked_labels(labels_path, n);  // checked before the long part
  const SampleMetrics metrics = quality.measure(x);
  std::fprintf(stderr, "%s: %s", samples.c_str(), metrics.to_table().c_str());
  if (!labels_path.empty()) {
    nlohmann::json j = nlohmann::json::parse(metrics.to_json());
    j.update(asked_label_report(labels_path, asked, x, quality, data));
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf("%s\n", metrics.to_json().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return dd::app::run_main("eval", run, argc, argv); }
