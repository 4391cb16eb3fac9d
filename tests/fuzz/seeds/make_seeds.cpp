// Writes the seed corpus of the fuzz targets into tests/fuzz/corpus/TARGET/ (committed; rerun only
// when a format changes; keep the files it replaces as old-DATE-NAME, so that reading configs and
// checkpoints of earlier formats stays fuzzed). Build and run from the repository root after `make`:
//   g++ -std=c++17 -O1 -fopenmp -I. -I/usr/include/stb tests/fuzz/seeds/make_seeds.cpp \
//       build/apps/common/run_config.o build/apps/common/flag_checks.o build/libddpm.a \
//       $(pkg-config --libs openblas) -lz -o build/make_seeds && ./build/make_seeds
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "apps/common/run_config.h"
#include "nn/checkpoint.h"
#include "nn/unet.h"
#include "tensor/io/atomic_file.h"
#include "tensor/io/idx.h"
#include "tensor/io/png.h"
#include "tests/tiny_unet.h"

namespace fs = std::filesystem;
using namespace dd;

namespace {
void put(const std::string& target, const std::string& name, const std::vector<uint8_t>& prefix, const std::vector<uint8_t>& body) {
  fs::create_directories("tests/fuzz/corpus/" + target);
  std::vector<uint8_t> all = prefix;
  all.insert(all.end(), body.begin(), body.end());
  write_file_atomic("tests/fuzz/corpus/" + target + "/" + name, all);
}
std::vector<uint8_t> bytes_of(const std::string& path) { return read_file_bytes(path); }
std::vector<uint8_t> text(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }
}  // namespace

int main() {
  const std::string tmp = (fs::temp_directory_path() / "ddpm-make-seeds").string();
  fs::create_directories(tmp);
  // idx: three 4x4 images and five labels, plain (prefix 0) and to be gzipped by the target (1),
  // and an already gzipped file.
  std::vector<uint8_t> px(3 * 16);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i * 5);
  write_idx_images(tmp + "/img", px.data(), 3, 4, 4);
  write_idx_labels(tmp + "/lbl", {0, 1, 2, 9, 5});
  put("idx", "images-plain", {0}, bytes_of(tmp + "/img"));
  put("idx", "images-gzip", {1}, bytes_of(tmp + "/img"));
  put("idx", "labels-plain", {0}, bytes_of(tmp + "/lbl"));
  put("idx", "labels-gzip", {1}, bytes_of(tmp + "/lbl"));
  std::system(("gzip -n -c " + tmp + "/img > " + tmp + "/img.gz").c_str());
  put("idx", "images-gz-file", {0}, bytes_of(tmp + "/img.gz"));

  // png: grids as write_png_grid makes them. Prefix: columns - 1, padding | cell code, count.
  Rng rng(1);
  Tensor<float> four = rng.uniform<float>({4, 1, 28, 28});
  for (int64_t i = 0; i < four.numel(); ++i) four.data()[i] = 2 * four.data()[i] - 1;
  write_png_grid(tmp + "/g28.png", four, 2);
  put("png", "grid-2x2-cell28-pad2", {1, static_cast<uint8_t>(0x80 | 2), 0}, bytes_of(tmp + "/g28.png"));
  put("png", "grid-2x2-cell28-pad2-count3", {1, static_cast<uint8_t>(0x80 | 2), 2}, bytes_of(tmp + "/g28.png"));
  Tensor<float> small = rng.uniform<float>({6, 1, 4, 4});
  write_png_grid(tmp + "/g4.png", small, 3, 1);
  put("png", "grid-3x2-cell4-pad1", {2, static_cast<uint8_t>(1 | (3 << 2)), 0}, bytes_of(tmp + "/g4.png"));

  // config: the default run, the tiny test run, a learned-variance run, a model config.
  app::TrainConfig c;
  c.steps = app::kRecommendedSteps;
  put("config", "default", {}, text(c.to_json()));
  c.ch = 8;
  c.ch_mult = {1, 2};
  c.attn_res = {0};
  c.T = 50;
  c.sample_steps = 5;
  c.cond = false;  // the tiny test run's DDPM choices (tests/apps/app_test_util.h tiny_flags)
  c.loss = "simple";
  c.variance = "large";
  c.beta_start = 0;
  c.t_sampler = "uniform";
  put("config", "tiny", {}, text(c.to_json()));
  c.variance = "learned";
  c.loss = "hybrid";
  c.schedule = "cosine";
  put("config", "learned-cosine", {}, text(c.to_json()));
  put("config", "unet", {}, text(c.unet().to_json()));

  // checkpoint: the fuzz target's tiny model, a full checkpoint (with a run config) and weights only.
  const UNetConfig u = dd_test::one_level_unet_config();  // the fuzz target's model (fuzz_checkpoint.cpp)
  Rng init(0);
  UNet<float> model(u, init);
  Ema<float> ema(model, 0.9);
  Adam<float> adam(model, AdamConfig{});
  CheckpointInfo info;
  info.step = 3;
  info.config = c.to_json();
  info.dataset = "mnist";
  info.rng = Rng(5, 7).state();
  info.unet_config = u.to_json();
  save_checkpoint(tmp + "/ckpt.safetensors", model, &ema, &adam, info);
  put("checkpoint", "full", {}, bytes_of(tmp + "/ckpt.safetensors"));
  save_checkpoint(tmp + "/model.safetensors", model, nullptr, nullptr, info);
  put("checkpoint", "model-only", {}, bytes_of(tmp + "/model.safetensors"));
  save_weights(tmp + "/weights.safetensors", model, u.to_json());
  put("checkpoint", "weights", {}, bytes_of(tmp + "/weights.safetensors"));
  fs::remove_all(tmp);
  return 0;
}
