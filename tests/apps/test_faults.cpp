// Fault injection into train_mnist with a checkpoint every step: a kill -9 at many moments (also
// inside a checkpoint write, through DD_TEST_KILL_AFTER_BYTES of tensor/io/atomic_file.h, and once
// from outside at a random moment), after which the newest checkpoint loads and --resume ends
// bit-identical to an uninterrupted run at the same thread count; and writes that fail (a file-size
// limit set for the child, ENOSPC injected) give a one-line error and keep the previous checkpoint.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <map>

#include "nn/checkpoint.h"
#include "nn/unet.h"
#include "tensor/io/atomic_file.h"
#include "tensor/io/safetensors.h"
#include "tests/apps/app_test_util.h"

using namespace dd_apps_test;
using nlohmann::json;

namespace {

constexpr int kSteps = 6;

std::string run_flags(const std::string& data, const std::string& out) {
  return tiny_flags(data) + " --threads 1 --ckpt-every 1 --sample-every 0 --eval-every 0 --out " + sh(out);
}

// Loads a checkpoint completely (model, EMA, Adam), as --resume does; returns its step.
int64_t load_full(const std::string& path) {
  dd::Rng rng(0);
  dd::UNet<float> model(dd::UNetConfig::from_json(dd::read_unet_config(path)), rng);
  dd::Ema<float> ema(model, 0.999);
  dd::Adam<float> adam(model, dd::AdamConfig{});
  return dd::load_checkpoint(path, model, &ema, &adam).step;
}

// Every tensor of two checkpoints, byte for byte (the metadata differs: --out is in the config).
bool same_tensors(const std::string& a, const std::string& b) {
  const dd::SafetensorsFile fa = dd::load_safetensors(a), fb = dd::load_safetensors(b);
  if (fa.entries().size() != fb.entries().size()) return false;
  for (const auto& e : fa.entries())
    if (!fb.has(e.name) || fb.entry(e.name).bytes != e.bytes) return false;
  return fa.metadata.at("step") == fb.metadata.at("step");
}

std::map<int64_t, double> losses(const std::string& metrics) {
  std::map<int64_t, double> out;
  for (const auto& line : lines_of(read_text(metrics))) {
    const json j = json::parse(line);
    if (j.contains("loss")) out[j["step"].get<int64_t>()] = j["loss"].get<double>();
  }
  return out;
}

// After a kill: every checkpoint left loads, the newest one is resumed (or, with none, the run is
// started again with --overwrite) and the run ends where the uninterrupted one did, bit for bit.
void recover_and_compare(const std::string& data, const std::string& out, const std::string& reference) {
  std::vector<std::string> ckpts;  // ckpt-NNNNNN.safetensors, in step order (temporary files excluded)
  for (const auto& e : fs::directory_iterator(out)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("ckpt-", 0) == 0 && name.size() > 12 && name.compare(name.size() - 12, 12, ".safetensors") == 0)
      ckpts.push_back(e.path().string());
  }
  std::sort(ckpts.begin(), ckpts.end());
  for (size_t i = 0; i < ckpts.size(); ++i) CHECK_MESSAGE(load_full(ckpts[i]) == static_cast<int64_t>(i + 1), ckpts[i]);
  RunResult again;
  if (!ckpts.empty()) {
    // last.safetensors is written right after ckpt-N: it holds step N, or N - 1 when the kill fell between.
    const int64_t newest = static_cast<int64_t>(ckpts.size());
    const int64_t last = fs::exists(out + "/last.safetensors") ? load_full(out + "/last.safetensors") : 0;
    CHECK((last == newest || last == newest - 1));
    if (newest == kSteps && last == kSteps) return;  // killed after the last write
    again = run("./apps/train_mnist --resume " + sh(ckpts.back()) + " --steps " + std::to_string(kSteps));
  } else {
    again = run("./apps/train_mnist" + run_flags(data, out) + " --steps " + std::to_string(kSteps) + " --overwrite");
  }
  INFO(again.err);
  REQUIRE(again.code == 0);
  CHECK(same_tensors(out + "/last.safetensors", reference + "/last.safetensors"));
  CHECK(losses(out + "/metrics.jsonl") == losses(reference + "/metrics.jsonl"));
  for (const auto& e : fs::directory_iterator(out)) CHECK_MESSAGE(!dd::is_temp_file_name(e.path().filename().string()), e.path());
}

struct Reference {
  ScratchDir dir;
  std::string out = dir.file("straight");
  RunResult result;
  Reference() {
    result = run("./apps/train_mnist" + run_flags(tiny_run().data, out) + " --steps " + std::to_string(kSteps));
  }
};
Reference& reference() {
  static Reference r;
  return r;
}

}  // namespace

TEST_CASE("faults: kill -9 at many moments, inside checkpoint writes too; the newest checkpoint loads and --resume ends bit-identical") {
  Reference& ref = reference();
  REQUIRE_MESSAGE(ref.result.code == 0, ref.result.err);
  const std::string data = tiny_run().data;
  const uint64_t ckpt_bytes = fs::file_size(ref.out + "/last.safetensors");
  // Each step writes two checkpoints (ckpt-N and last) and a small plot: kill points every 0.7
  // checkpoints land at every phase of the run, many of them in the middle of a file.
  int killed = 0;
  for (int k = 1; k <= 14; ++k) {
    const uint64_t after = static_cast<uint64_t>(0.7 * k * static_cast<double>(ckpt_bytes));
    INFO("killed after " << after << " bytes");
    ScratchDir dir;
    const std::string out = dir.file("run");
    RunResult r = run("DD_TEST_KILL_AFTER_BYTES=" + std::to_string(after) + " ./apps/train_mnist" + run_flags(data, out) +
                      " --steps " + std::to_string(kSteps));
    if (r.code == 128 + 9 || r.code == -1) ++killed;  // (the shell of run() reports a SIGKILL as 137)
    recover_and_compare(data, out, ref.out);
  }
  CHECK(killed >= 12);  // (the last points may fall after the run's final write)
}

TEST_CASE("faults: a kill -9 from outside at a random moment; the resumed run ends bit-identical") {
  Reference& ref = reference();
  REQUIRE(ref.result.code == 0);
  const std::string data = tiny_run().data;
  ScratchDir dir;
  const std::string out = dir.file("run");
  // Killed as soon as the second step's loss is logged, whatever the run is doing then.
  const std::string script = "./apps/train_mnist" + run_flags(data, out) + " --steps " + std::to_string(kSteps) +
                             " 2>/dev/null &\npid=$!\nfor i in $(seq 600); do grep -q '\"step\":2' " + sh(out + "/metrics.jsonl") +
                             " 2>/dev/null && break; sleep 0.02; done\nkill -9 $pid\nwait $pid\necho status=$? >&2\n";
  write_text_file(dir.file("kill.sh"), script);
  RunResult r = run("bash " + sh(dir.file("kill.sh")));
  MESSAGE("kill -9 from outside: " << r.err);
  recover_and_compare(data, out, ref.out);
}

TEST_CASE("faults: a file-size limit and a full disk give a one-line error and keep the previous checkpoint") {
  Reference& ref = reference();
  REQUIRE(ref.result.code == 0);
  const std::string data = tiny_run().data;
  const uint64_t ckpt_bytes = fs::file_size(ref.out + "/last.safetensors");
  struct Case {
    std::string name, prefix, expect;
  };
  // ulimit -f counts 1024-byte blocks; ENOSPC half-way through the next checkpoint.
  for (const Case& c : {Case{"RLIMIT_FSIZE", "ulimit -f " + std::to_string(ckpt_bytes / 2048) + "; ", "file too large"},
                        Case{"ENOSPC", "DD_TEST_ENOSPC_AFTER_BYTES=" + std::to_string(ckpt_bytes / 2) + " ", "no space left"}}) {
    INFO(c.name);
    ScratchDir dir;
    const std::string out = dir.file("run");
    RunResult first = run("./apps/train_mnist" + run_flags(data, out) + " --steps 2");
    REQUIRE_MESSAGE(first.code == 0, first.err);
    const std::string last = read_text(out + "/last.safetensors"), ckpt2 = read_text(out + "/ckpt-000002.safetensors");
    RunResult r = run(c.prefix + "./apps/train_mnist --resume " + sh(out + "/last.safetensors") + " --steps 4");
    INFO(r.err);
    CHECK(r.code == 1);  // not killed by SIGXFSZ
    const auto lines = lines_of(r.err);
    REQUIRE(!lines.empty());
    CHECK(contains(lines.back(), c.expect));
    CHECK(contains(lines.back(), "train_mnist: "));
    CHECK(read_text(out + "/last.safetensors") == last);
    CHECK(read_text(out + "/ckpt-000002.safetensors") == ckpt2);
    CHECK(!fs::exists(out + "/ckpt-000003.safetensors"));
    for (const auto& e : fs::directory_iterator(out)) CHECK_MESSAGE(!dd::is_temp_file_name(e.path().filename().string()), e.path());
    CHECK(load_full(out + "/last.safetensors") == 2);
    // And the run goes on from there once the disk has room again.
    RunResult resumed = run("./apps/train_mnist --resume " + sh(out + "/last.safetensors") + " --steps 4");
    CHECK_MESSAGE(resumed.code == 0, resumed.err);
  }
}
