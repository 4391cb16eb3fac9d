// scripts/quality.sh (`make quality`) end to end on tiny settings: it makes the classifier when
// absent, trains, samples, evaluates against the real-vs-real reference, computes the bound and
// writes report.md with the programs' numbers in a new run folder, and never reuses a folder.
#include <nlohmann/json.hpp>

#include <cstdio>

#include "tests/apps/app_test_util.h"

using namespace dd_apps_test;
using nlohmann::json;

namespace {
std::string fixed(double v, int digits) {
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}
// The environment of a tiny quality.sh run: N samples, the bound on 4 digits, a one-epoch
// classifier, and the tiny UNet with these extra train_mnist flags.
std::string quality_env(const std::string& data, const std::string& classifier, int n, const std::string& train_flags) {
  return "QUALITY_DATA='" + data + "' QUALITY_CLASSIFIER='" + classifier + "' QUALITY_N=" + std::to_string(n) +
         " QUALITY_NLL_N=4 QUALITY_CLASSIFIER_FLAGS='--epochs 1 --batch 8'"
         " QUALITY_TRAIN_FLAGS='--ch 8 --ch-mult 1,2 --attn-res 0 --T 50 --batch 8 --warmup 0 --threads 2 " + train_flags + "' ";
}
}  // namespace

TEST_CASE("quality.sh: tiny recipe end to end into a new folder, report.md with the measured values; a used folder is refused") {
  ScratchDir dir;
  const std::string data = dir.file("data"), out = dir.file("q1"), classifier = dir.file("cls/classifier.safetensors");
  write_tiny_mnist(data);
  const std::string env = quality_env(data, classifier, 6, "--steps 4 --log-every 1 --sample-every 2 --sample-n 8 --sample-steps 5"
                                                           " --eval-every 2 --eval-n 8 --no-cond");

  // Dry run: the commands, with the classifier's first (it is absent), and nothing written.
  RunResult dry = run(env + "QUALITY_DRY_RUN=1 QUALITY_OUT='" + out + "' bash scripts/quality.sh");
  REQUIRE_MESSAGE(dry.code == 0, dry.err);
  const auto cmds = lines_of(dry.out);
  REQUIRE(cmds.size() == 7);
  CHECK(contains(cmds[1], "./apps/classifier"));
  CHECK(contains(cmds[2], "./apps/train_mnist"));
  CHECK(contains(cmds[3], "./apps/sample --ckpt " + out + "/train/last.safetensors --n 6 --out " + out + "/samples.png"));
  CHECK(contains(cmds[5], "--calibrate --sizes 6"));
  CHECK(contains(cmds[6], "./apps/nll"));
  CHECK_FALSE(fs::exists(out));

  RunResult r = run(env + "QUALITY_OUT='" + out + "' bash scripts/quality.sh");
  INFO("stderr: " << r.err);
  REQUIRE(r.code == 0);
  CHECK(fs::exists(classifier));  // made, since it was absent
  for (const char* f : {"report.md", "samples.png", "samples-idx3-ubyte", "nll-terms.csv", "nll-terms.png", "train/last.safetensors",
                        "train/loss.png"})
    CHECK_MESSAGE(fs::exists(out + "/" + f), f);
  const std::string report = read_text(out + "/report.md");
  // The report's numbers are the programs' own: eval's JSON line, nll's last line, the 6 samples.
  const json samples = json::parse(lines_of(read_text(out + "/eval.out")).back());
  const json bound = json::parse(lines_of(read_text(out + "/nll.out")).back());
  CHECK(samples.at("n_samples") == 6);
  CHECK(samples.at("n_real") == 6);
  CHECK(bound.at("n") == 4);
  CHECK(contains(report, "| classifier-FID at N = 6 |"));
  // The FID target is 1.5x the real-vs-real FID of ./apps/eval --calibrate (its first row).
  const json real = json::parse(lines_of(read_text(out + "/calibrate.json")).front());
  CHECK(real.at("n_samples") == 6);
  const double fid = samples.at("fid").get<double>(), real_fid = real.at("fid").get<double>();
  CHECK(contains(report, "<= 1.5 x real held-out (" + fixed(real_fid, 2) + ") = " + fixed(1.5 * real_fid, 2) + " |"));
  CHECK(contains(report, "| " + fixed(fid, 2) + " (" + fixed(fid / real_fid, 2) + " x real) |"));
  CHECK(contains(report, "| " + fixed(bound.at("bits_per_dim").get<double>(), 4) + " +- "));
  CHECK(contains(report, "L_0 " + fixed(bound.at("L_0").get<double>(), 4)));
  CHECK(contains(report, "![samples](samples.png)"));
  CHECK(contains(report, "![train/loss.png](train/loss.png)"));
  CHECK(contains(report, "| bound on 4 test digits | <= 1.3 bits/dim"));
  CHECK(dd::read_idx_images(out + "/samples-idx3-ubyte").dims == std::vector<int64_t>{6, 28, 28});
  // The samples came from the default sampler on the default (learned-variance) model: all T = 50
  // steps (min(100, T)) with the learned variance.
  CHECK(contains(read_text(out + "/sample.err"), "ancestral (learned variance), 50 of T = 50 steps"));

  // The same folder again: refused, the report untouched. With the classifier present, the dry run
  // does not make it again.
  const RunResult again = run(env + "QUALITY_OUT='" + out + "' bash scripts/quality.sh");
  CHECK(again.code == 2);
  CHECK(contains(again.err, "expected a new run folder"));
  CHECK(read_text(out + "/report.md") == report);
  const RunResult dry2 = run(env + "QUALITY_DRY_RUN=1 QUALITY_OUT='" + dir.file("q2") + "' bash scripts/quality.sh");
  REQUIRE(dry2.code == 0);
  CHECK(lines_of(dry2.out).size() == 6);
  CHECK_FALSE(contains(dry2.out, "./apps/classifier"));
  // Bad settings: one-line errors.
  const RunResult bad = run(env + "QUALITY_N=two QUALITY_OUT='" + dir.file("q3") + "' bash scripts/quality.sh");
  CHECK(bad.code == 2);
  CHECK(contains(bad.err, "QUALITY_N: expected an integer >= 4, got 'two'"));
}

TEST_CASE("quality.sh with --cond: the samples ask every digit equally and the report says how many are classified as asked") {
  ScratchDir dir;
  const std::string data = dir.file("data"), out = dir.file("qc"), classifier = dir.file("cls/classifier.safetensors");
  write_tiny_mnist(data);
  const std::string env = quality_env(data, classifier, 6, "--cond --steps 2 --sample-every 0 --eval-every 0");
  RunResult r = run(env + "QUALITY_OUT='" + out + "' bash scripts/quality.sh");
  INFO("stderr: " << r.err);
  REQUIRE(r.code == 0);
  CHECK(dd::read_idx_labels(out + "/samples-labels-idx1-ubyte").data == std::vector<uint8_t>{0, 1, 2, 3, 4, 5});
  const json samples = json::parse(lines_of(read_text(out + "/eval.out")).back());
  REQUIRE(samples.contains("asked_classified_as_asked"));
  const double asked = samples.at("asked_classified_as_asked").get<double>();
  const std::string report = read_text(out + "/report.md");
  CHECK(contains(report, fixed(100 * asked, 1) + " % are classified as the digit asked"));
  CHECK(contains(report, "--labels " + out + "/samples-labels-idx1-ubyte"));
}
