// Micro- and macro-benchmarks. For now one mode:
//
//   ./apps/bench --mode conv [--batch 64] [--threads 1,2] [--reps 7] [--warmup 2] [--variants ...]
//                [--stat median|min] [--clock wall|cpu] [--only SUBSTRING]
//
// times every convolution shape of the default UNet (1x28x28, ch 32, ch_mult 1,2,2) at the given
// batch: forward, backward-input and backward-weight, for the generic im2col + OpenBLAS kernels of
// tensor/conv and the Winograd kernels of tensor/winograd (F(2x2,3x3), F(4x4,3x3), the tile
// winograd_tile picks, and `dispatch`: what conv2d_* actually runs for the shape), and prints ms and GFLOP/s (2 * multiply-adds of the direct convolution / time, so
// a Winograd kernel's "GFLOP/s" is an effective rate). Each number is the median of --reps timed
// calls (or the minimum, --stat min) after --warmup untimed ones. The UNet totals weight each shape by how often it occurs.
//
// Structure: each mode is one function `int run_<mode>(const Options&)`; later modes (train step,
// sampling step, PyTorch side by side) slot in beside run_conv.
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "tensor/conv.h"
#include "tensor/parallel.h"
#include "tensor/random.h"
#include "tensor/winograd.h"

namespace {

using namespace dd;

struct Options {
  std::string mode = "conv";
  int64_t batch = 64;
  std::vector<int> threads{1, 2};
  int reps = 7, warmup = 2;
  std::vector<std::string> variants{"generic", "wino2", "wino4", "dispatch"};
  std::string only;  // substring filter on shape names
  std::string stat = "median";  // or min (more robust on a busy shared machine)
  std::string clock = "wall";    // or cpu: process CPU time (for 1-thread tuning on a shared machine)
};

double now_s(bool cpu) {
  if (cpu) {
    timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Median (or minimum) wall time in seconds of fn() over reps calls after warmup calls.
double time_calls(const std::function<void()>& fn, int reps, int warmup, bool use_min, bool cpu) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    const double t0 = now_s(cpu);
    fn();
    t.push_back(now_s(cpu) - t0);
  }
  std::sort(t.begin(), t.end());
  return use_min ? t.front() : t[t.size() / 2];
}

// One convolution shape of the UNet and how many times it occurs in one forward pass.
struct ConvShape {
  const char* name;
  int64_t C, O, H, k, stride, count;
};

// The default UNet's convolutions (torch_reference.py); 377.42 MFLOP per sample in total.
const std::vector<ConvShape>& unet_convs() {
  static const std::vector<ConvShape> v = {
      {"conv_in 1->32 @28", 1, 32, 28, 3, 1, 1},
      {"3x3 32->32 @28", 32, 32, 28, 3, 1, 4},
      {"3x3 96->32 @28", 96, 32, 28, 3, 1, 1},
      {"3x3 64->32 @28", 64, 32, 28, 3, 1, 1},
      {"3x3 64->64 @28 (upsample)", 64, 64, 28, 3, 1, 1},
      {"conv_out 32->1 @28", 32, 1, 28, 3, 1, 1},
      {"1x1 96->32 @28", 96, 32, 28, 1, 1, 1},
      {"1x1 64->32 @28", 64, 32, 28, 1, 1, 1},
      {"3x3/2 32 @28->14", 32, 32, 28, 3, 2, 1},
      {"3x3 32->64 @14", 32, 64, 14, 3, 1, 1},
      {"3x3 64->64 @14", 64, 64, 14, 3, 1, 4},
      {"3x3 128->64 @14", 128, 64, 14, 3, 1, 1},
      {"3x3 96->64 @14", 96, 64, 14, 3, 1, 1},
      {"1x1 32->64 @14", 32, 64, 14, 1, 1, 1},
      {"1x1 128->64 @14", 128, 64, 14, 1, 1, 1},
      {"1x1 96->64 @14", 96, 64, 14, 1, 1, 1},
      {"3x3/2 64 @14->7", 64, 64, 14, 3, 2, 1},
      {"3x3 64->64 @7", 64, 64, 7, 3, 1, 8},
      {"3x3 128->64 @7", 128, 64, 7, 3, 1, 2},
      {"1x1 128->64 @7", 128, 64, 7, 1, 1, 2},
      {"1x1 64->64 @7 (attention)", 64, 64, 7, 1, 1, 16},
  };
  return v;
}

const char* kPass[3] = {"fwd", "bwd-in", "bwd-w"};

int run_conv(const Options& opt) {
  const int64_t N = opt.batch;
  std::printf("conv benchmark: batch %lld, %s of %d after %d warm-up, GFLOP/s = 2*MACs/time\n",
              static_cast<long long>(N), opt.stat.c_str(), opt.reps, opt.warmup);
  std::printf("%-27s %-6s %3s", "shape", "pass", "thr");
  for (const auto& v : opt.variants) std::printf(" %9s %7s", (v + " ms").c_str(), "GF/s");
  std::printf(" %8s\n", "best/gen");
  // totals[threads][variant] = sum over the UNet's convs (count-weighted) of fwd, bwd-in, bwd-w
  std::map<int, std::map<std::string, double[3]>> totals;
  double macs_total = 0;
  Rng rng(1);
  Workspace<float> ws;
  for (const ConvShape& s : unet_convs()) {
    if (!opt.only.empty() && std::string(s.name).find(opt.only) == std::string::npos) continue;
    const Shape bs{s.O};
    const Conv2dGeometry g = conv2d_geometry({N, s.C, s.H, s.H}, {s.O, s.C, s.k, s.k}, &bs, s.stride, s.k / 2);
    const double macs = static_cast<double>(N) * s.O * g.Ho * g.Wo * s.C * s.k * s.k;
    macs_total += macs * s.count;
    Tensor<float> x = rng.normal<float>({N, s.C, s.H, s.H}), w = rng.normal<float>({s.O, s.C, s.k, s.k});
    Tensor<float> b = rng.normal<float>({s.O}), gy = rng.normal<float>({N, s.O, g.Ho, g.Wo});
    Tensor<float> y({N, s.O, g.Ho, g.Wo}), dx({N, s.C, s.H, s.H}), dw({s.O, s.C, s.k, s.k}), db({s.O});
    for (int th : opt.threads) {
      set_num_threads(th);
      std::vector<std::array<double, 3>> t(opt.variants.size());
      for (size_t vi = 0; vi < opt.variants.size(); ++vi) {
        const std::string& v = opt.variants[vi];
        const bool generic = v == "generic" || !winograd_supported(g);
        const int tile = v == "wino2" ? 2 : v == "wino4" ? 4 : 0;
        std::function<void()> fns[3];
        if (v == "dispatch") {  // what the library runs (tensor/conv.h decides per shape)
          fns[0] = [&] { conv2d_forward(g, x.data(), w.data(), b.data(), y.data(), ws); };
          fns[1] = [&] { conv2d_backward_input(g, gy.data(), w.data(), dx.data(), ws); };
          fns[2] = [&] { conv2d_backward_weight(g, gy.data(), x.data(), dw.data(), db.data(), ws); };
        } else if (generic) {
          fns[0] = [&] { conv2d_forward_generic(g, x.data(), w.data(), b.data(), y.data(), ws); };
          fns[1] = [&] { conv2d_backward_input_generic(g, gy.data(), w.data(), dx.data(), ws); };
          fns[2] = [&] { conv2d_backward_weight_generic(g, gy.data(), x.data(), dw.data(), db.data(), ws); };
        } else {
          fns[0] = [&, tile] { winograd_conv2d_forward(g, x.data(), w.data(), b.data(), y.data(), ws, tile); };
          fns[1] = [&, tile] { winograd_conv2d_backward_input(g, gy.data(), w.data(), dx.data(), ws, tile); };
          fns[2] = [&, tile] {
            winograd_conv2d_backward_weight(g, gy.data(), x.data(), dw.data(), db.data(), ws, tile);
          };
        }
        for (int p = 0; p < 3; ++p) {
          t[vi][p] = time_calls(fns[p], opt.reps, opt.warmup, opt.stat == "min", opt.clock == "cpu");
          totals[th][v][p] += t[vi][p] * s.count;
        }
      }
      for (int p = 0; p < 3; ++p) {
        std::printf("%-27s %-6s %3d", s.name, kPass[p], th);
        double gen = 0, best = 1e30;
        for (size_t vi = 0; vi < opt.variants.size(); ++vi) {
          std::printf(" %9.3f %7.1f", t[vi][p] * 1e3, 2 * macs / t[vi][p] / 1e9);
          if (opt.variants[vi] == "generic") gen = t[vi][p];
          best = std::min(best, t[vi][p]);
        }
        if (gen > 0) std::printf(" %7.2fx", gen / best);
        std::printf("\n");
      }
    }
  }
  std::printf("\nUNet total over all convs at batch %lld (each shape x its count; %.2f MFLOP/sample forward)\n",
              static_cast<long long>(N), 2 * macs_total / N / 1e6);
  nlohmann::json js = {{"mode", "conv"}, {"batch", N}, {"stat", opt.stat}, {"clock", opt.clock},
                       {"fwd_mflop_per_sample", 2 * macs_total / N / 1e6}};
  for (auto& [th, per] : totals) {
    for (const auto& v : opt.variants) {
      js["totals_ms"][std::to_string(th)][v] = {
          {"fwd", per[v][0] * 1e3}, {"bwd_input", per[v][1] * 1e3}, {"bwd_weight", per[v][2] * 1e3}};
    }
    for (const auto& v : opt.variants) {
      const double* t = per[v];
      std::printf("  threads %d %-8s fwd %8.1f ms  bwd-in %8.1f ms  bwd-w %8.1f ms  train(sum) %8.1f ms  "
                  "fwd %6.1f GF/s  train %6.1f GF/s\n",
                  th, v.c_str(), t[0] * 1e3, t[1] * 1e3, t[2] * 1e3, (t[0] + t[1] + t[2]) * 1e3,
                  2 * macs_total / t[0] / 1e9, 6 * macs_total / (t[0] + t[1] + t[2]) / 1e9);
    }
  }
  std::printf("%s\n", js.dump().c_str());  // last line: one JSON object with the totals
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  CLI::App app{"ddpm-cpp benchmarks"};
  app.add_option("--mode", opt.mode, "what to time: conv (every UNet conv shape, generic vs fast)")
      ->check(CLI::IsMember({"conv"}));
  app.add_option("--batch", opt.batch, "batch size")->check(CLI::PositiveNumber);
  app.add_option("--threads", opt.threads, "thread counts to run, e.g. --threads 1,2")
      ->delimiter(',')
      ->check(CLI::PositiveNumber);
  app.add_option("--reps", opt.reps, "timed repetitions (median reported)")->check(CLI::PositiveNumber);
  app.add_option("--warmup", opt.warmup, "untimed repetitions first")->check(CLI::NonNegativeNumber);
  app.add_option("--variants", opt.variants, "conv kernels: generic (im2col + sgemm), wino2 / wino4 (Winograd F(2x2) / F(4x4), generic where "
                 "unsupported), auto (Winograd with its own tile choice), dispatch (what conv2d_* runs)")
      ->delimiter(',')
      ->check(CLI::IsMember({"generic", "wino2", "wino4", "auto", "dispatch"}));
  app.add_option("--stat", opt.stat, "median or min of the timed repetitions")
      ->check(CLI::IsMember({"median", "min"}));
  app.add_option("--clock", opt.clock, "wall, or cpu (process CPU time: steadier on a busy machine, 1 thread)")
      ->check(CLI::IsMember({"wall", "cpu"}));
  app.add_option("--only", opt.only, "only conv shapes whose name contains this");
  CLI11_PARSE(app, argc, argv);
  if (opt.mode == "conv") return run_conv(opt);
  return 1;
}
