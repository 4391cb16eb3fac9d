// Helpers for the tests/apps suite: it runs the built programs (./apps/NAME, from the repository
// root as `make test` does) on tiny synthetic MNIST-shaped IDX files written here, never the network,
// with a tiny model so the whole suite takes seconds.
#pragma once

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "tensor/io/idx.h"
#include "tests/scratch_dir.h"

namespace dd_apps_test {

namespace fs = std::filesystem;

using dd_test::ScratchDir;

inline std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_text_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line))
    if (!line.empty()) out.push_back(line);
  return out;
}

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

struct RunResult {
  int code = -1;  // exit status (-1: killed by a signal)
  std::string out, err;
};

// Runs `args` (a shell command line, e.g. "./apps/sample --ckpt x") with stdout and stderr captured,
// on one thread unless the command passes --threads: the tiny models gain nothing from more, and
// on a busy machine two spinning OpenMP threads make them several times slower.
inline RunResult run(const std::string& args) {
  static int counter = 0;
  const std::string base = (fs::temp_directory_path() / ("ddpm-apps-test-" + std::to_string(::getpid()) + "-" +
                                                        std::to_string(counter++)))
                               .string();
  const std::string cmd = "OMP_NUM_THREADS=1 " + args + " >'" + base + ".out' 2>'" + base + ".err' </dev/null";
  const int status = std::system(cmd.c_str());
  RunResult r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = read_text(base + ".out");
  r.err = read_text(base + ".err");
  fs::remove(base + ".out");
  fs::remove(base + ".err");
  return r;
}

// A failure as the standards ask: a non-zero exit (not a crash) and exactly one line on stderr
// containing each of `words` (e.g. the flag or file named and the word "expected").
inline void check_one_line_error(const RunResult& r, const std::vector<std::string>& words) {
  INFO("stderr: " << r.err);
  CHECK(r.code > 0);
  CHECK(lines_of(r.err).size() == 1);
  CHECK(r.out.empty());
  for (const auto& w : words) CHECK_MESSAGE(contains(r.err, w), "missing '" << w << "'");
}

// 64 training and 32 test 28x28 digits: a bright bar whose position and orientation depend on the
// index (so images differ and test digits are distinguishable), plus labels.
inline void write_tiny_mnist(const std::string& folder) {
  fs::create_directories(folder);
  auto make = [](int64_t n, int offset) {
    std::vector<uint8_t> px(static_cast<size_t>(n) * 28 * 28, 0);
    for (int64_t i = 0; i < n; ++i) {
      const int k = static_cast<int>(i) + offset, pos = 4 + k % 20;
      for (int a = 4; a < 24; ++a) {
        const int r = (k % 2) ? a : pos, c = (k % 2) ? pos : a;
        px[static_cast<size_t>(i * 784 + r * 28 + c)] = static_cast<uint8_t>(150 + (k * 7) % 106);
      }
    }
    return px;
  };
  auto labels = [](int64_t n) {
    std::vector<uint8_t> l(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) l[static_cast<size_t>(i)] = static_cast<uint8_t>(i % 10);
    return l;
  };
  const auto train = make(64, 0), test = make(32, 3);
  dd::write_idx_images(folder + "/train-images-idx3-ubyte", train.data(), 64, 28, 28);
  dd::write_idx_labels(folder + "/train-labels-idx1-ubyte", labels(64));
  dd::write_idx_images(folder + "/t10k-images-idx3-ubyte", test.data(), 32, 28, 28);
  dd::write_idx_labels(folder + "/t10k-labels-idx1-ubyte", labels(32));
}

// The tiny model and run (T = 50: the linear schedule needs T > 20), without the --out / --steps.
// DDPM's choices (unconditional, L_simple, fixed variance, its beta_1): the suites that use it test the fixed-
// variance samplers and errors; the default recipe (hybrid, learned variance) is run by test_quality
// and named in the suites that test it. As (flag, value) pairs for suites that replace one (CLI11
// refuses a scalar flag given twice); value "" for a switch.
using FlagList = std::vector<std::pair<std::string, std::string>>;
inline FlagList tiny_flag_list(const std::string& data) {
  return {{"--data", "'" + data + "'"}, {"--ch", "8"}, {"--ch-mult", "1,2"}, {"--attn-res", "0"}, {"--T", "50"},
          {"--batch", "8"}, {"--warmup", "0"}, {"--log-every", "1"}, {"--sample-n", "4"}, {"--sample-steps", "5"},
          {"--eval-n", "8"}, {"--no-cond", ""}, {"--loss", "simple"}, {"--beta-start", "0"}};
}
inline std::string join_flags(const FlagList& flags) {
  std::string out;
  for (const auto& [flag, value] : flags) out += " " + flag + (value.empty() ? "" : " " + value);
  return out;
}
inline std::string tiny_flags(const std::string& data) { return join_flags(tiny_flag_list(data)); }

// One tiny data folder and one 6-step training run (checkpoints at 3 and 6, samples and held-out
// estimates at 3 and 6), shared by the test cases that only read them. Two threads, so that the
// resume test compares parallel runs (the thread count is stored in the checkpoint's config).
struct TinyRun {
  ScratchDir dir;
  std::string data = dir.file("data"), out = dir.file("run"), ckpt = dir.file("run/last.safetensors");
  RunResult result;
  TinyRun() {
    write_tiny_mnist(data);
    result = run("./apps/train_mnist" + tiny_flags(data) + " --threads 2 --steps 6 --ckpt-every 3 --sample-every 3 --eval-every 3 --out '" +
                 out + "'");
  }
};
inline TinyRun& tiny_run() {
  static TinyRun r;
  return r;
}

// A word for a POSIX shell: single-quoted, with single quotes inside spelled '\''.
inline std::string sh(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// step -> `key` (loss, loss_smooth, grad_norm, ...) of every training line of metrics.jsonl.
inline std::map<int64_t, double> logged_losses(const std::string& metrics, const std::string& key = "loss") {
  std::map<int64_t, double> out;
  for (const auto& line : lines_of(read_text(metrics))) {
    nlohmann::json j = nlohmann::json::parse(line);
    if (j.contains(key)) out[j["step"].get<int64_t>()] = j[key].get<double>();
  }
  return out;
}

}  // namespace dd_apps_test
