// classifier: trains the MNIST CNN of nn/classifier.h (conv-pool-conv-pool-fc-fc) with this
// framework, reports its accuracy on the 10,000 test digits and saves it as safetensors. apps/eval
// uses it for classifier-FID and the other sample-quality metrics (docs/metrics.md).
// Each batch also holds --noise-frac as many non-digit images (train/classifier_training.h).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <string>

#include "apps/common/main.h"
#include "apps/common/data.h"
#include "apps/common/progress.h"
#include "nn/classifier.h"
#include "nn/optim.h"
#include "tensor/io/safetensors.h"
#include "tensor/parallel.h"
#include "train/classifier_training.h"

namespace fs = std::filesystem;
using namespace dd;
using namespace dd::app;

namespace {

struct Config {
  std::string data = "data", out = "runs/classifier.safetensors";
  uint64_t seed = 0;
  int epochs = 3;
  int64_t batch = 64, limit = 0;
  double lr = 2e-3, noise_frac = 0.25, noise_weight = 0.5;
  int threads = 0;
};

// Non-digit images in [-1, 1]: even rows i.i.d. uniform pixels, odd rows 7x7 uniform blocks of 4x4 pixels.
double test_accuracy(const MnistClassifier<float>& model, const Tensor<float>& images, const std::vector<int64_t>& labels) {
  const ClassifierOutputs o = classify(model, images);
  return accuracy(o.probs, labels);
}

int run(int argc, char** argv) {
  CLI::App app{"Train the MNIST classifier used by ./apps/eval (a small CNN, Adam, cosine learning rate), report "
               "its test accuracy and save it as safetensors."};
  Config c;
  app.add_option("--data", c.data, "folder with the MNIST IDX files (fetched when missing)")->capture_default_str();
  app.add_option("--out", c.out, "weights file to write (safetensors)")->capture_default_str();
  app.add_option("--seed", c.seed, "initialisation, shuffling and noise seed")->capture_default_str();
  app.add_option("--epochs", c.epochs, "passes over the training digits")->capture_default_str()->check(CLI::Range(1, 1000));
  app.add_option("--batch", c.batch, "digits per step")->capture_default_str()->check(CLI::Range(int64_t(1), int64_t(60000)));
  app.add_option("--lr", c.lr, "peak Adam learning rate (cosine decay to 0)")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--noise-frac", c.noise_frac, "noise images per digit in each batch, trained towards the uniform prediction")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 4.0));
  app.add_option("--noise-weight", c.noise_weight, "weight of the noise term in the loss")->capture_default_str()->check(CLI::Range(0.0, 100.0));
  app.add_option("--limit", c.limit, "train on the first N digits only (0: all 60,000)")->capture_default_str()->check(CLI::Range(0, 1 << 30));
  app.add_option("--threads", c.threads, "threads (0: OMP_NUM_THREADS or all cores)")->capture_default_str()->check(CLI::Range(0, 4096));
  if (const auto code = dd::app::parse_flags(app, "classifier", argc, argv)) return *code;
  if (c.threads > 0) set_num_threads(c.threads);

  Dataset data = load_dataset("mnist", c.data);
  std::vector<int64_t> train_labels = labels_of(data, true), test_labels = labels_of(data, false);
  const int64_t n_train = c.limit > 0 ? std::min(c.limit, data.train.size(0)) : data.train.size(0);
  if (c.batch > n_train) throw std::invalid_argument("--batch: expected at most " + std::to_string(n_train) + " (the training digits), got " + std::to_string(c.batch));
  std::fprintf(stderr, "data: %s; training on %lld digits\n", data.describe().c_str(), static_cast<long long>(n_train));

  Rng init_rng(c.seed);
  MnistClassifier<float> model(init_rng);
  AdamConfig acfg;
  acfg.lr = c.lr;
  Adam<float> adam(model, acfg);
  const int64_t per_epoch = n_train / c.batch, total = per_epoch * c.epochs;
  const int64_t n_noise = static_cast<int64_t>(std::llround(c.noise_frac * static_cast<double>(c.batch)));
  std::fprintf(stderr, "%lld parameters, %d epochs x %lld steps of %lld digits + %lld noise images, %d threads\n",
               static_cast<long long>(model.num_parameters()), c.epochs, static_cast<long long>(per_epoch),
               static_cast<long long>(c.batch), static_cast<long long>(n_noise), get_num_threads());

  const int64_t pixels = 784;
  std::vector<int64_t> order(static_cast<size_t>(n_train));
  double acc = 0;
  int64_t step = 0;
  Progress progress("train", total);
  progress.set_plain_every(std::max<int64_t>(1, total / 20));
  double ce_smooth = -1;
  for (int epoch = 0; epoch < c.epochs; ++epoch) {
    // The epoch's order: a permutation drawn from (seed, epoch) alone (Fisher-Yates).
    Rng shuffle_rng(c.seed * 0x9E3779B97F4A7C15ull + 1, static_cast<uint64_t>(epoch) << 24);
    std::iota(order.begin(), order.end(), 0);
    for (int64_t i = n_train - 1; i > 0; --i) std::swap(order[i], order[static_cast<int64_t>(shuffle_rng.uniform1() * (i + 1))]);
    Rng noise_rng(c.seed * 0x9E3779B97F4A7C15ull + 2, static_cast<uint64_t>(epoch) << 24);
    for (int64_t b = 0; b < per_epoch; ++b, ++step) {
      Tensor<float> x({c.batch, 1, 28, 28});
      std::vector<int64_t> y(static_cast<size_t>(c.batch));
      for (int64_t i = 0; i < c.batch; ++i) {
        const int64_t j = order[b * c.batch + i];
        std::copy_n(data.train.data() + j * pixels, pixels, x.data() + i * pixels);
        y[i] = train_labels[j];
      }
      const Tensor<float> outliers = n_noise > 0 ? train::outlier_images(n_noise, noise_rng) : Tensor<float>();
      const double v = train::classifier_train_step(model, adam, x, y, outliers, c.noise_weight,
                                                    train::cosine_lr(c.lr, step, total), step + 1);
      ce_smooth = ce_smooth < 0 ? v : 0.98 * ce_smooth + 0.02 * v;
      char extra[64];
      std::snprintf(extra, sizeof extra, "epoch %d, cross-entropy %.4f", epoch + 1, ce_smooth);
      progress.update(step + 1, extra);
    }
    acc = test_accuracy(model, data.test, test_labels);
    std::fprintf(stderr, "epoch %d: test accuracy %.2f %%\n", epoch + 1, 100 * acc);
  }
  char extra[64];
  std::snprintf(extra, sizeof extra, "test accuracy %.2f %%", 100 * acc);
  progress.finish(extra);
  const double seconds = progress.elapsed_s();

  SafetensorsFile f;
  for (const auto& p : model.named_parameters()) f.add(p.name, p.var.value());
  f.metadata["format"] = "ddpm-cpp-classifier";
  f.metadata["model"] = "MnistClassifier (nn/classifier.h)";
  f.metadata["config"] = "{\"seed\":" + std::to_string(c.seed) + ",\"epochs\":" + std::to_string(c.epochs) + ",\"batch\":" +
                         std::to_string(c.batch) + ",\"lr\":" + std::to_string(c.lr) + ",\"noise_frac\":" + std::to_string(c.noise_frac) +
                         ",\"noise_weight\":" + std::to_string(c.noise_weight) + ",\"limit\":" + std::to_string(n_train) + "}";
  f.metadata["test_accuracy"] = std::to_string(acc);
  if (fs::path(c.out).has_parent_path()) fs::create_directories(fs::path(c.out).parent_path());
  save_safetensors(c.out, f);
  std::printf("{\"test_accuracy\":%.4f,\"test_digits\":%lld,\"train_digits\":%lld,\"epochs\":%d,\"seconds\":%.1f,\"out\":\"%s\"}\n", acc,
              static_cast<long long>(data.test.size(0)), static_cast<long long>(n_train), c.epochs, seconds, c.out.c_str());
  std::printf("test accuracy %.2f %% on %lld digits, %s, saved %s\n", 100 * acc, static_cast<long long>(data.test.size(0)),
              format_duration(seconds).c_str(), c.out.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return dd::app::run_main("classifier", run, argc, argv); }
