// Micro- and macro-benchmarks.
//
//   ./apps/bench --mode train|sample|both [--batch 64] [--threads 1,2] [--steps 10] [--warmup 2]
//                [--rounds 2] [--no-torch] [--profile]
//
// times the C++ training step (L_simple forward, backward, gradient clipping, Adam; the batch is made
// outside the timer) and sampling step (one reverse step of Algorithm 2 under no-grad) of the default
// UNet, and, when /usr/bin/python3 has torch, runs tools/torch_race.py (the same UNet in PyTorch) with the same
// batch and threads in the same run, interleaved round by round (each round times every mode and
// thread count, C++ then PyTorch, the C++ steps alternating between the thread counts step by step,
// so ratios and scaling compare the same moments of a machine whose speed drifts), then prints
// both medians,
// their spread, GFLOP/s (380.08 MFLOP forward per sample, 3x for a training step), peak RSS and the
// ratio, for each thread count, then the 1 -> N thread scaling (C++ and PyTorch) and a probe of the
// machine's own scaling (probe_machine). Its last line is one JSON object (top level: the last
// thread count; "by_threads": all). --profile then runs --steps more steps at
// the last thread count with tensor/profile.h switched on and prints ms per step for each op kind
// (forward, backward, optimizer).
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

#include <sys/resource.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <memory>

#include "apps/common/main.h"
#include "apps/common/model.h"
#include "apps/common/run_config.h"
#include "autograd/var.h"
#include "ddpm/diffusion.h"
#include "ddpm/losses.h"
#include "ddpm/sample.h"
#include "nn/optim.h"
#include "nn/unet.h"
#include "tensor/conv.h"
#include "tensor/kernels.h"
#include "tensor/microkernel.h"
#include "tensor/parallel.h"
#include "tensor/profile.h"
#include "tensor/random.h"
#include "tensor/winograd.h"
#include "train/denoiser.h"
#include "train/train_step.h"

namespace {

using namespace dd;

struct Options {
  std::string mode = "both";
  int64_t batch = 64;
  std::vector<int> threads{1, 2};
  int reps = 7, warmup = 2;
  std::vector<std::string> variants{"generic", "wino2", "wino4", "dispatch"};
  std::string only;  // substring filter on shape names
  std::string stat = "median";  // or min (more robust on a busy shared machine)
  std::string clock = "wall";    // or cpu: process CPU time (for 1-thread tuning on a shared machine)
  int steps = 10, rounds = 2;    // train/sample: timed steps per round, interleaved rounds
  bool no_torch = false;
  bool profile = false;          // train/sample: time per op kind (extra profiled steps after the timed ones)
  std::string torch_script = "tools/torch_race.py";
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

// The default UNet's convolutions (nn/unet.h); 377.42 MFLOP per sample in total.
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
  const KernelPath start_path = kernel_path();
  std::printf("kernels: %s (CPU: %s; DD_KERNELS=avx512|avx2|generic overrides)\n", kernel_path_name(start_path),
              cpu_kernel_flags().c_str());
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
        // avx2 / avx512: dispatch with that kernel path forced (A/B in one process); the others
        // run on the path chosen at start-up
        const bool forced = v == "avx2" || v == "avx512";
        set_kernel_path(forced ? parse_kernel_path(v) : start_path);
        if (v == "dispatch" || forced) {  // what the library runs (tensor/conv.h decides per shape)
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
  set_kernel_path(start_path);
  nlohmann::json js = {{"mode", "conv"}, {"batch", N}, {"stat", opt.stat}, {"clock", opt.clock},
                       {"fwd_mflop_per_sample", 2 * macs_total / N / 1e6}, {"kernel_path", kernel_path_name(start_path)},
                       {"cpu_flags", cpu_kernel_flags()}};
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


// ---- whole steps, side by side with PyTorch ------------------------------------------------------

constexpr double kForwardFlopsPerSample = 380.08e6;  // 2 x multiply-adds of the convs, linears and attention matmuls

double peak_rss_mib() {
  rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss / 1024.0;  // Linux: KiB
}

// The library's own steps, timed: train::TrainStep (what train_mnist runs: L_simple, clipping,
// warm-up, Adam, EMA) and ddpm::reverse_step (what apps/sample runs: the default sampler with
// x0_hat clipped), on the reference UNet and DDPM's schedule, which tools/torch_race.py models. The
// default run's model adds the label embedding and conv_out's variance channel (+0.15 % parameters)
// and its loss the vb term, which cost little beside the network (docs/performance.md).
struct StepTimer {
  explicit StepTimer(int64_t batch)
      : batch(batch), init(0), model(UNetConfig{}, init), sched(ddpm::linear_schedule(1000)),
        adam(model, AdamConfig{}), ema(model, 0.999), train_step(model, adam, ema, sched, default_step_config()),
        denoiser(train::make_denoiser(model)) {}
  static train::TrainStepConfig default_step_config() {
    train::TrainStepConfig c;
    c.warmup = 200;
    c.grad_clip = 1.0;
    return c;
  }
  // One training step; x0 ~ U[-1, 1], t and noise drawn before the timer.
  double train_step_s(int64_t i) {
    Rng rng(1, static_cast<uint64_t>(i) << 24);
    Tensor<float> x0 = rng.uniform<float>({batch, 1, 28, 28}, -1.0f, 1.0f);
    std::vector<int64_t> t = rng.integers(batch, 1, 1001);
    Tensor<float> noise = rng.normal<float>({batch, 1, 28, 28});
    const double t0 = now_s(false);
    const train::TrainStepResult r = train_step.run(i + 1, x0, t, noise);
    const double dt = now_s(false) - t0;
    if (!r.applied) throw std::runtime_error("bench: the training loss is not finite");
    return dt;
  }
  // One reverse step x_t -> x_{t-1} of the default sampler, t counting down from T.
  double sample_step_s(int64_t i) {
    Rng rng(2, static_cast<uint64_t>(i) << 24);
    if (!x.defined()) x = rng.normal<float>({batch, 1, 28, 28});
    const int64_t t = std::max<int64_t>(1, 1000 - i);
    const double t0 = now_s(false);
    profile_restart();
    ddpm::ReverseStep step = [&] {
      ProfileScope timed("total", "reverse step");
      return ddpm::reverse_step(sched, denoiser, x, t, rng, ddpm::SampleOptions{});
    }();
    x = t > 1 ? step.x_prev : rng.normal<float>({batch, 1, 28, 28});
    return now_s(false) - t0;
  }
  int64_t batch;
  Rng init;
  UNet<float> model;
  ddpm::Schedule sched;
  Adam<float> adam;
  Ema<float> ema;
  train::TrainStep train_step;
  ddpm::Denoiser denoiser;
  Tensor<float> x;
};

// Runs tools/torch_race.py once (one round) and returns its JSON line, or null when torch is absent.
nlohmann::json run_torch(const Options& opt, const std::string& mode, int threads) {
  const std::string cmd = "/usr/bin/python3 '" + opt.torch_script + "' --mode " + mode + " --batch " +
                          std::to_string(opt.batch) + " --threads " + std::to_string(threads) + " --steps " +
                          std::to_string(opt.steps) + " --warmup " + std::to_string(opt.warmup) + " --json 2>/dev/null";
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return nullptr;
  std::string out;
  char buf[4096];
  while (fgets(buf, sizeof buf, p)) out += buf;
  if (pclose(p) != 0) return nullptr;
  const auto last = out.find_last_of('{') == std::string::npos ? std::string::npos : out.rfind("\n{");
  nlohmann::json j = nlohmann::json::parse(last == std::string::npos ? out : out.substr(last + 1), nullptr, false);
  return j.is_discarded() ? nlohmann::json(nullptr) : j;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? NAN : v[v.size() / 2];
}

// Prints where a step's time goes: ms per step for each (phase, kind), largest first within a phase.
// Forward ops are charged by autograd's make_result (see tensor/profile.h); "total" rows are the
// whole forward / backward, so the ops of a phase plus the tape's own overhead add up to them.
void print_profile(const std::string& mode, int threads, int steps) {
  std::vector<ProfileEntry> e = profile_entries();
  std::stable_sort(e.begin(), e.end(), [](const ProfileEntry& a, const ProfileEntry& b) {
    return a.phase != b.phase ? a.phase < b.phase : a.seconds > b.seconds;
  });
  double step_total = 0;
  for (const auto& x : e)
    if (x.phase != "forward" && x.phase != "backward") step_total += x.seconds;  // total + optimizer + update
  std::printf("\nprofile: %s step, %d thread%s, ms per step (mean over %d steps)\n", mode.c_str(), threads,
              threads == 1 ? "" : "s", steps);
  std::printf("  %-10s %-28s %9s %7s %7s\n", "phase", "kind", "ms", "%step", "calls");
  for (const auto& x : e)
    std::printf("  %-10s %-28s %9.2f %6.1f%% %7.0f\n", x.phase.c_str(), x.kind.c_str(), 1e3 * x.seconds / steps,
                100.0 * x.seconds / step_total, static_cast<double>(x.calls) / steps);
}

// The machine's own 1 -> N thread scaling at this moment, to read the UNet's next to: the same
// total work at 1 and at N threads (64 units handed out dynamically, each thread on its own
// buffers), alternating, median of the ratios over `reps` pairs. Two kinds of work:
//   compute: micro::gemm 48x64x64 on matrices that stay in L1/L2 (the convolutions' inner kernel);
//   stream:  y = 1.0001 x + y over two 128 KiB vectors per thread (in L2; the Winograd transforms,
//            GroupNorm and the copies are passes of this kind over cache-resident data).
// On this shared VM the compute probe scaled 1.8-2.0x on 2 cores throughout a day of measurements, while the
// stream probe went from ~2x down to 1.5-1.7x in the phases when other tenants loaded the memory
// system (docs/performance.md).
struct MachineProbe {
  double compute_scaling = NAN, stream_scaling = NAN;
};

MachineProbe probe_machine(int threads, int reps = 9) {
  constexpr int64_t kUnits = 64, M = 48, N = 64, K = 64, kStream = 32 * 1024;
  const int maxth = std::max(1, threads);
  std::vector<std::vector<float>> a(maxth, std::vector<float>(M * K, 0.5f)), b(maxth, std::vector<float>(K * N, 0.25f)),
      c(maxth, std::vector<float>(M * N, 0.0f)), x(maxth, std::vector<float>(kStream, 1.0f)),
      y(maxth, std::vector<float>(kStream, 2.0f));
  auto run = [&](bool compute, int th) {
    const double t0 = now_s(false);
#pragma omp parallel for schedule(dynamic, 1) num_threads(th)
    for (int64_t u = 0; u < kUnits; ++u) {
      const int me = omp_get_thread_num();
      if (compute) {
        for (int rep = 0; rep < 40; ++rep)
          micro::gemm(false, rep > 0, M, N, K, a[me].data(), K, b[me].data(), N, c[me].data(), N);
      } else {
        float* yv = y[me].data();
        const float* xv = x[me].data();
        for (int rep = 0; rep < 24; ++rep)
          for (int64_t i = 0; i < kStream; ++i) yv[i] = 1.0001f * xv[i] + yv[i];
      }
    }
    return now_s(false) - t0;
  };
  MachineProbe p;
  if (threads <= 1) return p;
  for (const bool compute : {true, false}) {
    run(compute, 1);  // warm-up
    run(compute, threads);
    std::vector<double> ratios;
    for (int r = 0; r < reps; ++r) ratios.push_back(run(compute, 1) / run(compute, threads));
    (compute ? p.compute_scaling : p.stream_scaling) = median(ratios);
  }
  return p;
}

// What a user waits for, projected from the median step times at one thread count (step time per
// image, scaled linearly to each job's image count; the bench's steps run at --batch):
//   the default training run: train_mnist's recommended steps (app::kRecommendedSteps) at batch 64 (of the reference
//   UNet's step, see StepTimer);
//   1,000 samples at the default sampler (ddpm::default_sampler: 100 strided steps of T = 1000);
//   the full bound on 256 test digits (apps/nll: T = 1000 network evaluations per digit; the prior
//   and decoder terms cost next to nothing beside them).
// Each is printed for C++ and, where it ran, PyTorch, and recorded in the JSON as projected_*_min.
nlohmann::json project_user_jobs(int64_t batch, double train_s, double sample_s) {
  const double default_run_steps = static_cast<double>(app::kRecommendedSteps);
  constexpr double kTrainBatch = 64, kSamples = 1000, kBoundDigits = 256, kT = 1000;
  const double sampler_steps = static_cast<double>(ddpm::default_sampler(1000, false).steps);
  const double per_image_train = train_s / static_cast<double>(batch);
  const double per_image_eval = sample_s / static_cast<double>(batch);
  nlohmann::json j;
  if (!std::isnan(train_s)) j["train_default_run_min"] = default_run_steps * kTrainBatch * per_image_train / 60;
  if (!std::isnan(sample_s)) {
    j["sample_1000_min"] = kSamples * sampler_steps * per_image_eval / 60;
    j["bound_256_min"] = kBoundDigits * kT * per_image_eval / 60;
  }
  return j;
}

int run_steps(const Options& opt) {
  const bool torch_ok = !opt.no_torch && std::filesystem::exists("/usr/bin/python3") &&
                        std::filesystem::exists(opt.torch_script) &&
                        std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
  if (!opt.no_torch && !torch_ok)
    std::fprintf(stderr, "bench: PyTorch not found (/usr/bin/python3 with torch, %s): C++ only\n", opt.torch_script.c_str());
  StepTimer timer(opt.batch);
  nlohmann::json js = {{"batch", opt.batch}, {"steps_per_round", opt.steps}, {"rounds", opt.rounds},
                       {"kernel_path", kernel_path_name(kernel_path())}, {"cpu_flags", cpu_kernel_flags()}};
  std::printf("kernels: %s (CPU: %s; DD_KERNELS=avx512|avx2|generic overrides)\n", kernel_path_name(kernel_path()),
              cpu_kernel_flags().c_str());
  const int lo_threads = opt.threads.front(), hi_threads = opt.threads.back();
  const bool probe = opt.threads.size() > 1 && lo_threads == 1;
  const MachineProbe probe_before = probe ? probe_machine(hi_threads) : MachineProbe{};
  std::vector<std::string> modes;
  if (opt.mode == "train" || opt.mode == "both") modes.push_back("train");
  if (opt.mode == "sample" || opt.mode == "both") modes.push_back("sample");
  std::printf("%-7s %-8s %7s %10s %10s %10s %12s %8s %10s\n", "mode", "impl", "threads", "s/step", "min", "max", "img/s",
              "GFLOP/s", "vs torch");
  std::map<std::string, std::map<int, double>> cpp_median, torch_median;  // mode -> threads -> median s/step
  // Rounds are the outer loop: each round times every (mode, threads) pair, C++ then PyTorch, so
  // the ratios and the thread scaling compare programs and thread counts measured at the same
  // moments (on this shared VM the speed of a core drifts by 10-30 % over minutes). Within a round
  // the C++ steps of one mode alternate between the thread counts step by step (1, 2, 1, 2, ...),
  // so that the two sides of the thread scaling see the same drift; PyTorch runs once per thread
  // count after them (a process per run).
  struct Samples {
    std::vector<double> cpp, torch;
    double torch_rss = NAN;
  };
  std::map<std::pair<int, std::string>, Samples> samples;
  const int64_t nthreads = static_cast<int64_t>(opt.threads.size());
  int64_t counter = 0;
  for (int round = 0; round < opt.rounds; ++round)
    for (const std::string& mode : modes) {
      for (int64_t i = 0; i < (opt.warmup + opt.steps) * nthreads; ++i) {
        const int threads = opt.threads[i % nthreads];
        set_num_threads(threads);
        const double dt = mode == "train" ? timer.train_step_s(counter++) : timer.sample_step_s(counter++);
        if (i >= opt.warmup * nthreads) samples[{threads, mode}].cpp.push_back(dt);
      }
      if (torch_ok)
        for (const int threads : opt.threads) {
          Samples& sm = samples[{threads, mode}];
          nlohmann::json tj = run_torch(opt, mode, threads);
          if (!tj.is_null()) {
            for (double v : tj["step_times"]) sm.torch.push_back(v);
            sm.torch_rss = std::isnan(sm.torch_rss) ? tj["peak_rss_mib"].get<double>()
                                                    : std::max(sm.torch_rss, tj["peak_rss_mib"].get<double>());
          }
        }
    }
  set_num_threads(opt.threads.back());
  nlohmann::json by_threads = nlohmann::json::array();
  for (const int threads : opt.threads) {
    nlohmann::json jt = {{"threads", threads}};
    for (const std::string& mode : modes) {
      const Samples& sm = samples[{threads, mode}];
      const std::vector<double>&cpp = sm.cpp, &torch = sm.torch;
      const double flops = kForwardFlopsPerSample * opt.batch * (mode == "train" ? 3 : 1);
      auto row = [&](const char* impl, const std::vector<double>& v, double ratio) {
        std::printf("%-7s %-8s %7d %10.4f %10.4f %10.4f %12.1f %8.1f %10s\n", mode.c_str(), impl, threads, median(v),
                    *std::min_element(v.begin(), v.end()), *std::max_element(v.begin(), v.end()), opt.batch / median(v),
                    flops / median(v) / 1e9, std::isnan(ratio) ? "" : (std::to_string(ratio).substr(0, 5) + "x").c_str());
      };
      const double ratio = torch.empty() ? NAN : median(torch) / median(cpp);
      row("c++", cpp, ratio);
      if (!torch.empty()) row("pytorch", torch, NAN);
      cpp_median[mode][threads] = median(cpp);
      jt[mode + "_s_per_step"] = median(cpp);
      jt[mode + "_s_per_step_min"] = *std::min_element(cpp.begin(), cpp.end());
      jt[mode + "_s_per_step_max"] = *std::max_element(cpp.begin(), cpp.end());
      if (!torch.empty()) {
        jt["torch_" + mode + "_s_per_step"] = median(torch);
        jt["torch_" + mode + "_s_per_step_min"] = *std::min_element(torch.begin(), torch.end());
        jt["torch_" + mode + "_s_per_step_max"] = *std::max_element(torch.begin(), torch.end());
        jt["torch_" + mode + "_peak_rss_mib"] = sm.torch_rss;
        jt[mode + "_speedup_vs_torch"] = ratio;
        torch_median[mode][threads] = median(torch);
      }
    }
    by_threads.push_back(jt);
  }
  // Top level: the last (largest) thread count (the JSON contract tests/apps/test_bench.cpp checks); all counts below.
  for (auto& [k, v] : by_threads.back().items()) js[k] = v;
  if (opt.threads.size() > 1) {
    js["by_threads"] = by_threads;
    const int lo = opt.threads.front(), hi = opt.threads.back();
    for (const std::string& mode : modes) {
      const double scaling = cpp_median[mode][lo] / cpp_median[mode][hi];
      js[mode + "_thread_scaling"] = scaling;
      std::printf("%s: %d -> %d threads %.2fx faster", mode.c_str(), lo, hi, scaling);
      if (torch_median[mode].count(lo) && torch_median[mode].count(hi)) {
        js["torch_" + mode + "_thread_scaling"] = torch_median[mode][lo] / torch_median[mode][hi];
        std::printf(" (pytorch %.2fx)", torch_median[mode][lo] / torch_median[mode][hi]);
      }
      std::printf("\n");
    }
  }
  if (probe) {
    const MachineProbe after = probe_machine(hi_threads);
    std::printf("machine, 1 -> %d threads, before / after the steps: compute probe %.2fx / %.2fx, "
                "cache-resident stream probe %.2fx / %.2fx\n",
                hi_threads, probe_before.compute_scaling, after.compute_scaling, probe_before.stream_scaling,
                after.stream_scaling);
    js["machine_compute_scaling"] = {probe_before.compute_scaling, after.compute_scaling};
    js["machine_stream_scaling"] = {probe_before.stream_scaling, after.stream_scaling};
  }
  {
    const int th = opt.threads.back();
    auto at = [&](std::map<std::string, std::map<int, double>>& m, const char* mode) {
      return m[mode].count(th) ? m[mode][th] : NAN;
    };
    const nlohmann::json cpp = project_user_jobs(opt.batch, at(cpp_median, "train"), at(cpp_median, "sample"));
    const nlohmann::json torch = project_user_jobs(opt.batch, at(torch_median, "train"), at(torch_median, "sample"));
    std::printf("what a user waits for at %d thread%s (projected from the median steps):\n", th, th == 1 ? "" : "s");
    const std::string train_label = "default training run (" + std::to_string(app::kRecommendedSteps) + " steps x 64)";
    const std::string sample_label =
        "1,000 samples (default sampler, " + std::to_string(ddpm::default_sampler(1000, false).steps) + " steps)";
    const std::string jobs[3][2] = {{"train_default_run_min", train_label},
                                    {"sample_1000_min", sample_label},
                                    {"bound_256_min", "full bound on 256 test digits"}};
    for (const auto& job : jobs) {
      if (!cpp.contains(job[0])) continue;
      const double c = cpp[job[0]].get<double>();
      js["projected_" + job[0]] = c;
      std::printf("  %-42s c++ %7.1f min", job[1].c_str(), c);
      if (torch.contains(job[0])) {
        const double t = torch[job[0]].get<double>();
        js["projected_torch_" + job[0]] = t;
        std::printf("  pytorch %7.1f min (%.2fx)", t, t / c);
      }
      std::printf("\n");
    }
  }
  js["peak_rss_mib"] = peak_rss_mib();
  std::printf("peak RSS: c++ %.0f MiB (the whole bench process)", peak_rss_mib());
  if (js.contains("torch_train_peak_rss_mib"))
    std::printf(", pytorch training %.0f MiB (%.2fx)", js["torch_train_peak_rss_mib"].get<double>(),
                peak_rss_mib() / js["torch_train_peak_rss_mib"].get<double>());
  std::printf("\n");
  if (opt.profile) {
    for (const std::string& mode : modes) {
      profile_reset();
      set_profiling(true);
      for (int i = 0; i < opt.steps; ++i) mode == "train" ? timer.train_step_s(1000 + i) : timer.sample_step_s(1000 + i);
      set_profiling(false);
      print_profile(mode, opt.threads.back(), opt.steps);
    }
  }
  std::printf("%s\n", js.dump().c_str());  // last line: one JSON object
  return 0;
}

}  // namespace

int run(int argc, char** argv) {
  Options opt;
  CLI::App app{"ddpm-cpp benchmarks"};
  app.add_option("--mode", opt.mode, "conv (every UNet conv shape, generic vs fast), or train / sample / both "
                 "(whole steps, against PyTorch in the same run)")
      ->check(CLI::IsMember({"conv", "train", "sample", "both"}));
  app.add_option("--steps", opt.steps, "train/sample: timed steps per round")->check(CLI::Range(1, 1 << 30));
  app.add_option("--rounds", opt.rounds, "train/sample: rounds, C++ and PyTorch interleaved")->check(CLI::Range(1, 1 << 30));
  app.add_flag("--no-torch", opt.no_torch, "train/sample: do not run PyTorch");
  app.add_flag("--profile", opt.profile, "train/sample: afterwards, time per op kind for forward, backward and the optimizer "
               "(--steps more steps at the last thread count)");
  app.add_option("--torch-script", opt.torch_script, "path of the PyTorch race script (tools/torch_race.py)");
  app.add_option("--batch", opt.batch, "batch size")->check(CLI::Range(1, 1 << 30));
  app.add_option("--threads", opt.threads, "thread counts to run, e.g. --threads 1,2 (the JSON's top level is the last)")
      ->delimiter(',')
      ->check(CLI::Range(1, 1024));
  app.add_option("--reps", opt.reps, "timed repetitions (median reported)")->check(CLI::Range(1, 1 << 30));
  app.add_option("--warmup", opt.warmup, "untimed repetitions first")->check(CLI::Range(0, 1 << 30));
  app.add_option("--variants", opt.variants, "conv kernels: generic (im2col + sgemm), wino2 / wino4 (Winograd F(2x2) / F(4x4), generic where "
                 "unsupported), auto (Winograd with its own tile choice), dispatch (what conv2d_* runs), avx2 / avx512 (dispatch "
                 "on that kernel path)")
      ->delimiter(',')
      ->check(CLI::IsMember({"generic", "wino2", "wino4", "auto", "dispatch", "avx2", "avx512"}));
  app.add_option("--stat", opt.stat, "median or min of the timed repetitions")
      ->check(CLI::IsMember({"median", "min"}));
  app.add_option("--clock", opt.clock, "wall, or cpu (process CPU time: steadier on a busy machine, 1 thread)")
      ->check(CLI::IsMember({"wall", "cpu"}));
  app.add_option("--only", opt.only, "only conv shapes whose name contains this");
  if (const auto code = dd::app::parse_flags(app, "bench", argc, argv)) return *code;
  return opt.mode == "conv" ? run_conv(opt) : run_steps(opt);
}

int main(int argc, char** argv) { return dd::app::run_main("bench", run, argc, argv); }
