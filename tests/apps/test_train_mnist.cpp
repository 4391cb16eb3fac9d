// apps/train_mnist end to end on tiny synthetic data: outputs, bit-identical resume, SIGINT,
// resume compatibility, bad flags and files, and the non-finite-loss stop.
#include <nlohmann/json.hpp>

#include <cmath>
#include <map>
#include <regex>

#include "nn/checkpoint.h"
#include "nn/unet.h"
#include "tensor/io/idx.h"
#include "tensor/io/safetensors.h"
#include "tensor/kernels.h"
#include "tests/apps/app_test_util.h"

using namespace dd_apps_test;
using nlohmann::json;

namespace {


// Loads a checkpoint with the library (model, EMA and Adam), as a resumed run would.
int64_t load_full_checkpoint(const std::string& path) {
  dd::Rng rng(0);
  dd::UNet<float> model(dd::UNetConfig::from_json(dd::read_unet_config(path)), rng);
  dd::Ema<float> ema(model, 0.999);
  dd::Adam<float> adam(model, dd::AdamConfig{});
  return dd::load_checkpoint(path, model, &ema, &adam).step;
}

bool all_finite(const dd::SafetensorsFile& f) {
  for (const auto& e : f.entries()) {
    if (e.dtype != dd::Dtype::F32) continue;
    const float* p = reinterpret_cast<const float*>(e.bytes.data());
    for (size_t i = 0; i < e.bytes.size() / 4; ++i)
      if (!std::isfinite(p[i])) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("train_mnist: a tiny run writes checkpoints, samples (PNG + IDX), metrics.jsonl and plots") {
  TinyRun& t = tiny_run();
  INFO("stderr: " << t.result.err);
  REQUIRE(t.result.code == 0);
  for (const char* f : {"ckpt-000003.safetensors", "ckpt-000006.safetensors", "last.safetensors", "samples-000003.png",
                        "samples-000003-idx3-ubyte", "samples-000006.png", "samples-000006-idx3-ubyte", "metrics.jsonl",
                        "loss.png", "bpd.png"})
    CHECK_MESSAGE(fs::exists(t.out + "/" + f), f);
  dd::IdxArray samples = dd::read_idx_images(t.out + "/samples-000006-idx3-ubyte");
  CHECK(samples.dims == std::vector<int64_t>{4, 28, 28});
  CHECK(logged_losses(t.out + "/metrics.jsonl").size() == 6);
  int evals = 0;
  for (const auto& line : lines_of(read_text(t.out + "/metrics.jsonl")))
    if (json::parse(line).contains("bpd_estimate")) ++evals;
  CHECK(evals == 2);
  CHECK(load_full_checkpoint(t.ckpt) == 6);
  CHECK(load_full_checkpoint(t.out + "/ckpt-000003.safetensors") == 3);
  CHECK(contains(t.result.err, "data: mnist from local files"));
}

TEST_CASE("train_mnist: 2N straight steps equal N steps + --resume + N steps, bit for bit") {
  TinyRun& straight = tiny_run();
  REQUIRE(straight.result.code == 0);
  ScratchDir dir;
  const std::string out = dir.file("run"), flags = tiny_flags(straight.data) + " --threads 2 --ckpt-every 3 --sample-every 3 --eval-every 3";
  RunResult first = run("./apps/train_mnist" + flags + " --steps 3 --out '" + out + "'");
  REQUIRE_MESSAGE(first.code == 0, first.err);
  RunResult second = run("./apps/train_mnist --resume '" + out + "/last.safetensors' --steps 6");
  REQUIRE_MESSAGE(second.code == 0, second.err);
  CHECK(contains(second.err, "resumed from"));

  const auto a = logged_losses(straight.out + "/metrics.jsonl"), b = logged_losses(out + "/metrics.jsonl");
  CHECK(a.size() == 6);
  CHECK(a == b);  // exact doubles: JSON round-trips them
  const auto sa = logged_losses(straight.out + "/metrics.jsonl", "loss_smooth"), sb = logged_losses(out + "/metrics.jsonl", "loss_smooth");
  CHECK(sa.size() == 6);
  CHECK(sa == sb);  // the smoothed loss carries over the resume too

  const dd::SafetensorsFile fa = dd::load_safetensors(straight.ckpt), fb = dd::load_safetensors(out + "/last.safetensors");
  REQUIRE(fa.entries().size() == fb.entries().size());
  int model = 0, ema = 0, adam = 0;
  for (const auto& e : fa.entries()) {
    INFO(e.name);
    REQUIRE(fb.has(e.name));
    CHECK(e.shape == fb.entry(e.name).shape);
    CHECK(e.bytes == fb.entry(e.name).bytes);
    (e.name.rfind("ema.", 0) == 0 ? ema : e.name.rfind("adam.", 0) == 0 ? adam : model)++;
  }
  CHECK(model > 0);
  CHECK(ema == model);
  CHECK(adam == 2 * model);
  CHECK(fa.metadata.at("step") == "6");
  CHECK(fb.metadata.at("step") == "6");
  // The previews at step 6 come from the same EMA weights and noise.
  CHECK(read_text(straight.out + "/samples-000006-idx3-ubyte") == read_text(out + "/samples-000006-idx3-ubyte"));
}

TEST_CASE("train_mnist: with --t-sampler loss-second-moment and --dropout, 2N straight steps equal N + --resume + N, bit for bit") {
  TinyRun& tiny = tiny_run();
  REQUIRE(tiny.result.code == 0);
  ScratchDir dir;
  // T = 25 and batch 64: the sampler's history (10 losses at each t) fills within the first 8 steps,
  // so the resumed half draws its t from the restored history rather than uniformly.
  const std::string flags = " --data '" + tiny.data +
                            "' --ch 8 --ch-mult 1 --attn-res 0 --T 25 --batch 64 --warmup 0 --log-every 1 --sample-every 0"
                            " --sample-steps 5 --eval-every 0 --threads 2 --ckpt-every 8 --t-sampler loss-second-moment --dropout 0.1 --no-cond";
  const std::string straight = dir.file("straight"), halves = dir.file("halves");
  RunResult a = run("./apps/train_mnist" + flags + " --steps 16 --out '" + straight + "'");
  REQUIRE_MESSAGE(a.code == 0, a.err);
  RunResult first = run("./apps/train_mnist" + flags + " --steps 8 --out '" + halves + "'");
  REQUIRE_MESSAGE(first.code == 0, first.err);
  RunResult second = run("./apps/train_mnist --resume '" + halves + "/last.safetensors' --steps 16");
  REQUIRE_MESSAGE(second.code == 0, second.err);

  // The state at the resume point: counts per t (column 0), all t >= 1 seen at least 10 times.
  const dd::SafetensorsFile mid = dd::load_safetensors(halves + "/ckpt-000008.safetensors");
  const dd::Tensor<double> state = mid.get_f64("state.t_sampler");
  REQUIRE(state.shape() == dd::Shape{26, 11});
  for (int64_t t = 1; t <= 25; ++t) CHECK(state.data()[t * 11] >= 10);

  CHECK(logged_losses(straight + "/metrics.jsonl") == logged_losses(halves + "/metrics.jsonl"));
  const dd::SafetensorsFile fa = dd::load_safetensors(straight + "/last.safetensors"),
                            fb = dd::load_safetensors(halves + "/last.safetensors");
  REQUIRE(fa.entries().size() == fb.entries().size());
  for (const auto& e : fa.entries()) {
    INFO(e.name);
    REQUIRE(fb.has(e.name));
    CHECK(e.bytes == fb.entry(e.name).bytes);  // model, EMA, Adam and the sampler's state
  }
  CHECK(fa.has("state.t_sampler"));
  // A uniform run keeps no sampler state.
  CHECK_FALSE(dd::load_safetensors(tiny.ckpt).has("state.t_sampler"));
}

TEST_CASE("train_mnist: resuming with an incompatible flag is a one-line error; a compatible one works") {
  TinyRun& t = tiny_run();
  REQUIRE(t.result.code == 0);
  ScratchDir dir;
  fs::copy_file(t.ckpt, dir.file("last.safetensors"));
  const std::string ckpt = dir.file("last.safetensors");
  check_one_line_error(run("./apps/train_mnist --resume '" + ckpt + "' --ch 16 --out '" + dir.file("o") + "'"),
                       {"--ch", "must stay 8", "16"});
  CHECK(!fs::exists(dir.file("o")));

  RunResult more = run("./apps/train_mnist --resume '" + ckpt + "' --steps 8 --threads 1 --out '" + dir.file("more") + "'");
  INFO(more.err);
  CHECK(more.code == 0);
  CHECK(load_full_checkpoint(dir.file("more/last.safetensors")) == 8);
  const auto losses = logged_losses(dir.file("more/metrics.jsonl"));
  CHECK(losses.size() == 2);  // steps 7 and 8 only: the run continued, it did not restart
  CHECK(losses.count(7) == 1);
}

TEST_CASE("train_mnist: SIGINT mid-training saves, exits 0 and leaves a loadable checkpoint") {
  TinyRun& t = tiny_run();
  REQUIRE(t.result.code == 0);
  ScratchDir dir;
  const std::string out = dir.file("run");
  // The handler is installed before the first metrics line is written, so once one is there the
  // signal arrives mid-training. The loop waits at most ~60 s for it.
  const std::string script = "./apps/train_mnist" + tiny_flags(t.data) +
                             " --steps 100000 --ckpt-every 0 --sample-every 0 --eval-every 0 --out '" + out +
                             "' &\npid=$!\nfor i in $(seq 600); do grep -q loss '" + out +
                             "/metrics.jsonl' 2>/dev/null && break; sleep 0.1; done\nkill -INT $pid\nwait $pid\n";
  write_text_file(dir.file("interrupt.sh"), script);
  RunResult r = run("bash '" + dir.file("interrupt.sh") + "'");
  INFO(r.err);
  CHECK(r.code == 0);
  CHECK(contains(r.err, "stopped by signal after step"));
  REQUIRE(fs::exists(out + "/last.safetensors"));
  const int64_t step = load_full_checkpoint(out + "/last.safetensors");
  CHECK(step >= 1);
  CHECK(step < 100000);
  CHECK(logged_losses(out + "/metrics.jsonl").rbegin()->first == step);
  for (const auto& e : fs::directory_iterator(out)) CHECK_MESSAGE(!contains(e.path().filename().string(), "tmp"), e.path());
}

TEST_CASE("train_mnist: bad flags and bad files give one-line errors and a non-zero exit") {
  TinyRun& t = tiny_run();
  ScratchDir dir;
  const std::string base = "./apps/train_mnist --data '" + t.data + "' --out '" + dir.file("o") + "'";
  check_one_line_error(run(base + " --steps abc"), {"--steps", "abc"});
  check_one_line_error(run(base + " --lr -1"), {"--lr", "expected > 0", "-1"});
  check_one_line_error(run(base + " --schedule quadratic"), {"--schedule", "linear or cosine", "quadratic"});
  check_one_line_error(run(base + " --no-such-flag"), {"--no-such-flag"});
  check_one_line_error(run(base + " --resume '" + dir.file("missing.safetensors") + "'"), {"missing.safetensors"});
  write_text_file(dir.file("garbage.safetensors"), "this is not a safetensors file at all");
  check_one_line_error(run(base + " --resume '" + dir.file("garbage.safetensors") + "'"), {"garbage.safetensors"});
  const std::string good = read_text(t.ckpt);
  write_text_file(dir.file("truncated.safetensors"), good.substr(0, good.size() - 100));
  check_one_line_error(run(base + " --resume '" + dir.file("truncated.safetensors") + "'"), {"truncated.safetensors"});
  dd::SafetensorsFile plain;  // a valid safetensors file, but no train_mnist checkpoint
  plain.add("conv_in.weight", dd::Tensor<float>({8, 1, 3, 3}));
  dd::save_safetensors(dir.file("plain.safetensors"), plain);
  check_one_line_error(run(base + " --resume '" + dir.file("plain.safetensors") + "'"),
                       {"plain.safetensors", "expected a train_mnist checkpoint"});
  // Data folder without the IDX files: fetching is not attempted in tests, so point --data at a
  // folder holding a corrupt train file (a fetch would not replace an existing file).
  const std::string bad_data = dir.file("bad");
  write_tiny_mnist(bad_data);
  write_text_file(bad_data + "/train-images-idx3-ubyte", std::string("\0\0\x08\x03", 4) + "truncated");
  check_one_line_error(run("./apps/train_mnist --data '" + bad_data + "' --out '" + dir.file("o") + "' --steps 1"),
                       {"train-images-idx3-ubyte"});
  CHECK(!fs::exists(dir.file("o/last.safetensors")));
}

TEST_CASE("train_mnist: a diverging run stops at the first non-finite loss, naming the step, keeping the last good checkpoint") {
  TinyRun& t = tiny_run();
  ScratchDir dir;
  const std::string out = dir.file("run");
  // Adam moves every weight by about lr per step: lr = 1e30 makes activations overflow float32
  // within a step or two, while step 1 (the initial weights) is still finite.
  RunResult r = run("./apps/train_mnist" + tiny_flags(t.data) +
                    " --lr 1e30 --grad-clip 0 --steps 50 --ckpt-every 1 --sample-every 0 --eval-every 0 --out '" + out + "'");
  INFO(r.err);
  CHECK(r.code != 0);
  std::smatch m;
  const std::string err = r.err;
  REQUIRE(std::regex_search(err, m, std::regex("expected a finite (loss|gradient), got .* at step ([0-9]+)")));
  const int64_t bad_step = std::stoll(m[2]);
  CHECK(bad_step >= 2);
  CHECK(!fs::exists(out + "/ckpt-" + std::string(6 - std::to_string(bad_step).size(), '0') + std::to_string(bad_step) + ".safetensors"));
  const dd::SafetensorsFile last = dd::load_safetensors(out + "/last.safetensors");
  CHECK(last.metadata.at("step") == std::to_string(bad_step - 1));
  CHECK(all_finite(last));
  CHECK(load_full_checkpoint(out + "/last.safetensors") == bad_step - 1);
}

TEST_CASE("train_mnist: the fast (Winograd) convolutions follow the generic kernels' loss curve") {
  // Same seed and data; DD_CONV=generic forces im2col + GEMM everywhere. The kernels differ by float
  // rounding (Winograd transforms: about 1e-4 relative per convolution, bound 1e-3 in
  // tests/tensor/test_conv_fast.cpp), which 12 Adam steps carry into the losses but must not grow
  // into a different curve.
  // On the generic kernel path (a CPU without AVX2, or DD_KERNELS=generic) both runs would use the
  // same kernels: nothing to compare.
  if (dd::kernel_path() == dd::KernelPath::generic) {
    MESSAGE("not run: the generic kernel path has no fast convolutions (" << dd::cpu_kernel_flags() << ")");
    return;
  }
  TinyRun& t = tiny_run();
  REQUIRE(t.result.code == 0);
  ScratchDir dir;
  const std::string flags = tiny_flags(t.data) + " --threads 1 --steps 12 --ckpt-every 0 --sample-every 0 --eval-every 0";
  RunResult fast = run("./apps/train_mnist" + flags + " --out '" + dir.file("fast") + "'");
  RunResult generic = run("DD_CONV=generic ./apps/train_mnist" + flags + " --out '" + dir.file("generic") + "'");
  REQUIRE_MESSAGE(fast.code == 0, fast.err);
  REQUIRE_MESSAGE(generic.code == 0, generic.err);
  const auto a = logged_losses(dir.file("fast") + "/metrics.jsonl"), b = logged_losses(dir.file("generic") + "/metrics.jsonl");
  REQUIRE(a.size() == 12);
  REQUIRE(b.size() == 12);
  double worst = 0;
  bool any_differs = false;
  for (const auto& [step, loss] : a) {
    worst = std::max(worst, std::abs(loss - b.at(step)) / std::abs(b.at(step)));
    any_differs = any_differs || loss != b.at(step);
  }
  MESSAGE("worst relative loss difference over 12 steps: " << worst);
  CHECK(any_differs);    // the two runs really used different kernels
  CHECK(worst < 1e-3);
}
