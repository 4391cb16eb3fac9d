// Replays the fuzz targets' seed corpus (tests/fuzz/corpus/TARGET/) and every regression input
// (tests/fuzz/regressions/TARGET/: inputs that once crashed or hung a target, kept so the bug stays
// fixed) through the targets, built with g++ and without libFuzzer. A crash or an uncaught
// exception fails `make test`; the seeds must also still be accepted where they are valid files.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>

#include "apps/common/model.h"
#include "nn/checkpoint.h"
#include "tensor/io/atomic_file.h"
#include "tensor/io/idx.h"
#include "tensor/io/safetensors.h"
#include "tests/fuzz/fuzz_target.h"

namespace fs = std::filesystem;

namespace {
std::vector<std::string> files_in(const std::string& folder) {
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec))
    if (it->is_regular_file() && it->path().filename().string()[0] != '.') out.push_back(it->path().string());
  std::sort(out.begin(), out.end());
  return out;
}
}  // namespace

TEST_CASE("fuzz targets: every seed and every regression input runs through its target without a crash") {
  const auto& targets = dd_fuzz::registry();
  std::vector<std::string> names;
  for (const auto& t : targets) names.push_back(t.name);
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"checkpoint", "config", "idx", "png"});
  for (const auto& t : targets) {
    const std::vector<std::string> seeds = files_in("tests/fuzz/corpus/" + t.name);
    const std::vector<std::string> regressions = files_in("tests/fuzz/regressions/" + t.name);
    INFO("target " << t.name);
    CHECK(seeds.size() >= 3);
    for (const auto& path : seeds) {
      INFO(path);
      const std::vector<uint8_t> bytes = dd::read_file_bytes(path);
      CHECK(t.target(bytes.data(), bytes.size()) == 0);
    }
    for (const auto& path : regressions) {
      INFO(path);
      const std::vector<uint8_t> bytes = dd::read_file_bytes(path);
      CHECK(t.target(bytes.data(), bytes.size()) == 0);
    }
    MESSAGE(t.name << ": " << seeds.size() << " seeds, " << regressions.size() << " regression inputs replayed");
  }
}

TEST_CASE("fuzz seeds are valid files, so the fuzzers start deep in the parsers") {
  // The full checkpoint seed loads into the fuzz target's model, checksum included.
  const dd::SafetensorsFile f = dd::load_safetensors("tests/fuzz/corpus/checkpoint/full");
  CHECK(dd::read_checkpoint_info(f).step == 3);
  CHECK(dd::app::read_run_config(f).T == 50);
  dd::UNetConfig u = dd::UNetConfig::from_json(f.metadata.at("unet_config"));
  dd::Rng rng(1);
  dd::UNet<float> model(u, rng);
  dd::Ema<float> ema(model, 0.9);
  dd::Adam<float> adam(model, dd::AdamConfig{});
  CHECK(dd::load_checkpoint(f, model, &ema, &adam).step == 3);
  // The IDX seeds after their selector byte.
  const std::vector<uint8_t> img = dd::read_file_bytes("tests/fuzz/corpus/idx/images-plain");
  REQUIRE(img.size() > 1);
  CHECK(dd::read_idx_images(dd_fuzz::as_file("seed-check", img.data() + 1, img.size() - 1)).dims == std::vector<int64_t>{3, 4, 4});
}
