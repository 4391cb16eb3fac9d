// Class-conditional runs end to end (train_mnist --cond, sample --digit / --guidance, nll of a
// conditional model, eval --labels) on the tiny synthetic MNIST, and their one-line errors; and
// train_mnist --no-cond --loss simple still builds exactly the reference UNet (--cond and the learned
// variance are the default).
#include <stb_image.h>
#include <nlohmann/json.hpp>

#include <cmath>
#include <map>

#include "nn/checkpoint.h"
#include "tensor/io/safetensors.h"
#include "tensor/io/idx.h"
#include "tests/apps/app_test_util.h"

using namespace dd_apps_test;
using nlohmann::json;

namespace {

std::pair<int, int> png_wh(const std::string& path) {
  int w = 0, h = 0, c = 0;
  if (!stbi_info(path.c_str(), &w, &h, &c)) FAIL_CHECK("not a PNG: " << path);
  return {w, h};
}
json config_of(const std::string& ckpt) { return json::parse(dd::load_safetensors(ckpt).metadata.at("config")); }
int grid_side(int images) { return images * 28 + (images + 1) * 2; }

std::map<int64_t, double> losses(const std::string& metrics) {
  std::map<int64_t, double> out;
  for (const auto& line : lines_of(read_text(metrics))) {
    json j = json::parse(line);
    if (j.contains("loss")) out[j["step"].get<int64_t>()] = j["loss"].get<double>();
  }
  return out;
}

// A 6-step conditional run (checkpoints at 3 and 6, previews of 20 = 10 rows x 2) and an
// unconditional one, shared by the cases below.
// tiny_flags with 20 preview images (two per digit row).
std::string cond_flags(const std::string& data) {
  std::string f = tiny_flags(data);
  f.replace(f.find("--sample-n 4"), 12, "--sample-n 20");
  return f;
}

struct CondRuns {
  ScratchDir dir;
  std::string data = dir.file("data"), out = dir.file("cond"), ckpt = dir.file("cond/last.safetensors"),
              plain_out = dir.file("plain"), plain_ckpt = dir.file("plain/last.safetensors");
  RunResult cond, plain;
  CondRuns() {
    write_tiny_mnist(data);
    cond = run("./apps/train_mnist" + cond_flags(data) + " --cond --p-uncond 0.25 --steps 6 --ckpt-every 3 "
               "--sample-every 3 --eval-every 3 --out '" + out + "'");
    plain = run("./apps/train_mnist" + tiny_flags(data) + " --steps 2 --sample-every 0 --eval-every 0 --out '" + plain_out + "'");
  }
};
CondRuns& runs() {
  static CondRuns r;
  return r;
}

}  // namespace

TEST_CASE("train_mnist --list-params: the reference UNet with --no-cond --loss simple; label_emb.weight (11, 128) with --cond; "
          "the default adds it and a variance channel to conv_out") {
  const RunResult plain = run("./apps/train_mnist --list-params --no-cond --loss simple");
  REQUIRE(plain.code == 0);
  const std::string golden = read_text("tests/golden/unet_default_params.txt");
  REQUIRE(!golden.empty());
  CHECK(plain.out == golden);
  const RunResult cond = run("./apps/train_mnist --list-params --cond --loss simple");
  REQUIRE(cond.code == 0);
  const std::string body = golden.substr(0, golden.find("total parameters:"));
  CHECK(cond.out.substr(0, body.size()) == body);
  std::string name = "label_emb.weight";
  name.resize(45, ' ');
  CHECK(cond.out.substr(body.size()) == name + " (11, 128)\ntotal parameters: " + std::to_string(1112801 + 11 * 128) + "\n");
  // The default: conditional, learned variance (conv_out gives eps and the variance interpolation v).
  const RunResult by_default = run("./apps/train_mnist --list-params");
  const RunResult named = run("./apps/train_mnist --list-params --cond --loss hybrid --variance learned");
  REQUIRE(by_default.code == 0);
  CHECK(by_default.out == named.out);
  std::string learned = cond.out;
  const auto at = [&](const std::string& line) { return learned.find(line); };
  REQUIRE(at("(1, 32, 3, 3)") != std::string::npos);
  learned.replace(at("(1, 32, 3, 3)"), 13, "(2, 32, 3, 3)");
  REQUIRE(at("(1,)\n") != std::string::npos);
  learned.replace(at("(1,)\n"), 4, "(2,)");
  const std::string total = std::to_string(1112801 + 11 * 128);
  learned.replace(at(total), total.size(), std::to_string(1112801 + 11 * 128 + 32 * 9 + 1));
  CHECK(by_default.out == learned);
}

TEST_CASE("train_mnist --cond: cond and p_uncond stored; previews one row per digit; resume is bit for bit and keeps them") {
  CondRuns& r = runs();
  INFO("stderr: " << r.cond.err);
  REQUIRE(r.cond.code == 0);
  CHECK(contains(r.cond.err, "class-conditional: 64 labels, p_uncond 0.25"));
  const json cfg = config_of(r.ckpt);
  CHECK(cfg["cond"] == true);
  CHECK(cfg["p_uncond"] == 0.25);
  CHECK(contains(dd::read_unet_config(r.ckpt), "\"num_classes\":10"));
  CHECK(png_wh(r.out + "/samples-000006.png") == std::pair<int, int>{grid_side(2), grid_side(10)});
  CHECK(dd::read_idx_images(r.out + "/samples-000006-idx3-ubyte").dims == std::vector<int64_t>{20, 28, 28});
  // An unconditional run stores cond false and keeps its square previews.
  REQUIRE(r.plain.code == 0);
  CHECK(config_of(r.plain_ckpt)["cond"] == false);
  CHECK(!contains(dd::read_unet_config(r.plain_ckpt), "num_classes"));

  ScratchDir dir;
  const std::string half = dir.file("half");
  RunResult first = run("./apps/train_mnist" + cond_flags(r.data) + " --cond --p-uncond 0.25 --steps 3 "
                        "--ckpt-every 3 --sample-every 3 --eval-every 3 --out '" + half + "'");
  REQUIRE_MESSAGE(first.code == 0, first.err);
  RunResult second = run("./apps/train_mnist --resume '" + half + "/last.safetensors' --steps 6");
  REQUIRE_MESSAGE(second.code == 0, second.err);
  const auto a = losses(r.out + "/metrics.jsonl"), b = losses(half + "/metrics.jsonl");
  CHECK(a.size() == 6);
  CHECK(a == b);
  CHECK(read_text(r.out + "/samples-000006-idx3-ubyte") == read_text(half + "/samples-000006-idx3-ubyte"));
  CHECK(config_of(half + "/last.safetensors")["cond"] == true);
  check_one_line_error(run("./apps/train_mnist --resume '" + half + "/last.safetensors' --p-uncond 0.5 --steps 8"),
                       {"--p_uncond", "must stay 0.25", "0.5"});
}

TEST_CASE("sample --digit: rows of asked digits for every sampler, the labels as an IDX file beside them") {
  CondRuns& r = runs();
  REQUIRE(r.cond.code == 0);
  ScratchDir dir;
  const std::string png = dir.file("d.png");
  RunResult s = run("./apps/sample --ckpt '" + r.ckpt + "' --digit 3 --digit 7 --n 2 --steps 5 --guidance 2 --out '" + png + "'");
  INFO("stderr: " << s.err);
  REQUIRE(s.code == 0);
  CHECK(dd::read_idx_images(dir.file("d-idx3-ubyte")).dims == std::vector<int64_t>{4, 28, 28});
  CHECK(dd::read_idx_labels(dir.file("d-labels-idx1-ubyte")).data == std::vector<uint8_t>{3, 3, 7, 7});
  CHECK(png_wh(png) == std::pair<int, int>{grid_side(2), grid_side(2)});
  CHECK(contains(s.err, "guidance w = 2"));

  // --digit all: 10 rows (--n 1 per digit here), with DDIM and its own labels path; full ancestral too.
  RunResult all = run("./apps/sample --ckpt '" + r.ckpt + "' --digit all --n 1 --sampler ddim --steps 4 --out '" +
                      dir.file("all.png") + "' --labels '" + dir.file("all-labels") + "'");
  REQUIRE_MESSAGE(all.code == 0, all.err);
  CHECK(dd::read_idx_labels(dir.file("all-labels")).data == std::vector<uint8_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
  CHECK(png_wh(dir.file("all.png")) == std::pair<int, int>{grid_side(1), grid_side(10)});
  RunResult full = run("./apps/sample --ckpt '" + r.ckpt + "' --digit 5 --n 3 --out '" + dir.file("full.png") + "'");
  REQUIRE_MESSAGE(full.code == 0, full.err);
  CHECK(dd::read_idx_labels(dir.file("full-labels-idx1-ubyte")).data == std::vector<uint8_t>{5, 5, 5});
  CHECK(contains(full.err, "guidance w = 0.5\n"));  // the measured default for asked digits (kDefaultGuidance)
  // Without --digit a conditional checkpoint draws every digit equally (sample i asks i mod 10), at
  // the default guidance, and writes the labels; --digit null samples the null label, no label file.
  RunResult balanced = run("./apps/sample --ckpt '" + r.ckpt + "' --n 12 --steps 5 --out '" + dir.file("b.png") + "'");
  REQUIRE_MESSAGE(balanced.code == 0, balanced.err);
  CHECK(dd::read_idx_labels(dir.file("b-labels-idx1-ubyte")).data == std::vector<uint8_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1});
  CHECK(dd::read_idx_images(dir.file("b-idx3-ubyte")).dims == std::vector<int64_t>{12, 28, 28});
  CHECK(contains(balanced.err, "every digit equally"));
  // The measured best without asked digits: kBalancedGuidance on t in [0.2 T, 0.7 T] (T = 50 here).
  CHECK(contains(balanced.err, "guidance w = 0.15 for t in 10,35\n"));
  // --guidance-interval 1,T guides every step: the same images as --digit all, whose guidance covers
  // every t; the default interval leaves steps unguided, so its draw differs.
  RunResult whole = run("./apps/sample --ckpt '" + r.ckpt + "' --n 10 --steps 5 --guidance-interval 1,50 --out '" + dir.file("w.png") + "'");
  RunResult every_t = run("./apps/sample --ckpt '" + r.ckpt + "' --digit all --n 1 --steps 5 --guidance 0.15 --out '" +
                          dir.file("e.png") + "'");
  REQUIRE_MESSAGE(whole.code == 0, whole.err);
  REQUIRE_MESSAGE(every_t.code == 0, every_t.err);
  CHECK(contains(whole.err, "guidance w = 0.15 for t in 1,50\n"));
  const std::vector<uint8_t> whole_images = dd::read_idx_images(dir.file("w-idx3-ubyte")).data;
  CHECK(whole_images == dd::read_idx_images(dir.file("e-idx3-ubyte")).data);
  const std::vector<uint8_t> default_images = dd::read_idx_images(dir.file("b-idx3-ubyte")).data;
  CHECK(whole_images != std::vector<uint8_t>(default_images.begin(), default_images.begin() + 10 * 28 * 28));
  // Ten balanced samples ask 0..9, as --digit all --n 1 does: the same images (one conditional path)
  // when both guide every t.
  RunResult ten = run("./apps/sample --ckpt '" + r.ckpt + "' --n 10 --steps 5 --guidance 0.5 --guidance-interval 1,50 --out '" +
                      dir.file("ten.png") + "'");
  RunResult rows = run("./apps/sample --ckpt '" + r.ckpt + "' --digit all --n 1 --steps 5 --guidance 0.5 --out '" + dir.file("rows.png") + "'");
  REQUIRE_MESSAGE(ten.code == 0, ten.err);
  REQUIRE_MESSAGE(rows.code == 0, rows.err);
  CHECK(dd::read_idx_images(dir.file("ten-idx3-ubyte")).data == dd::read_idx_images(dir.file("rows-idx3-ubyte")).data);
  RunResult uncond = run("./apps/sample --ckpt '" + r.ckpt + "' --digit null --n 4 --steps 5 --out '" + dir.file("u.png") + "'");
  REQUIRE_MESSAGE(uncond.code == 0, uncond.err);
  CHECK(!fs::exists(dir.file("u-labels-idx1-ubyte")));
  CHECK(dd::read_idx_images(dir.file("u-idx3-ubyte")).dims == std::vector<int64_t>{4, 28, 28});
  // The null label is not the balanced draw: their first four images differ.
  const std::vector<uint8_t> null_images = dd::read_idx_images(dir.file("u-idx3-ubyte")).data,
                             balanced_images = dd::read_idx_images(dir.file("b-idx3-ubyte")).data;
  CHECK(null_images != std::vector<uint8_t>(balanced_images.begin(), balanced_images.begin() + 4 * 28 * 28));
}

TEST_CASE("sample --digit / --guidance: one-line errors") {
  CondRuns& r = runs();
  REQUIRE(r.cond.code == 0);
  REQUIRE(r.plain.code == 0);
  ScratchDir dir;
  const std::string out = " --steps 5 --out '" + dir.file("x.png") + "'";
  check_one_line_error(run("./apps/sample --ckpt '" + r.plain_ckpt + "' --digit 3" + out),
                       {"--digit", "expected a class-conditional checkpoint", "unconditional"});
  check_one_line_error(run("./apps/sample --ckpt '" + r.ckpt + "' --digit 12" + out), {"--digit", "expected a digit 0..9, all or null", "'12'"});
  check_one_line_error(run("./apps/sample --ckpt '" + r.ckpt + "' --digit -1" + out), {"--digit", "'-1'"});
  check_one_line_error(run("./apps/sample --ckpt '" + r.ckpt + "' --digit 3 --guidance -1" + out), {"--guidance", "expected", ">= 0"});
  check_one_line_error(run("./apps/sample --ckpt '" + r.plain_ckpt + "' --guidance 2" + out),
                       {"--guidance", "expected a class-conditional checkpoint", "unconditional"});
  check_one_line_error(run("./apps/sample --ckpt '" + r.ckpt + "' --digit null --guidance 2" + out), {"--guidance", "--digit null"});
  check_one_line_error(run("./apps/sample --ckpt '" + r.ckpt + "' --digit null --digit 3" + out), {"--digit null", "expected alone"});
  for (const char* bad : {"0,10", "30,20", "1,51", "abc", "5"})
    check_one_line_error(run("./apps/sample --ckpt '" + r.ckpt + "' --guidance-interval " + bad + out),
                         {"--guidance-interval", "expected two timesteps LO,HI with 1 <= LO <= HI <= 50", bad});
  check_one_line_error(run("./apps/sample --ckpt '" + r.plain_ckpt + "' --guidance-interval 1,5" + out),
                       {"--guidance-interval", "expected a class-conditional checkpoint", "unconditional"});
  CHECK(!fs::exists(dir.file("x.png")));
  check_one_line_error(run("./apps/train_mnist --cond --p-uncond 1 --out '" + dir.file("t") + "' --data '" + r.data + "'"),
                       {"--p-uncond", "expected a probability in [0, 1)"});
}

TEST_CASE("nll of a conditional checkpoint: -log p(x | y) with the true labels, --null-label the unconditional bound") {
  CondRuns& r = runs();
  REQUIRE(r.cond.code == 0);
  ScratchDir dir;
  RunResult c = run("./apps/nll --ckpt '" + r.ckpt + "' --n 4 --out '" + dir.file("c") + "'");
  REQUIRE_MESSAGE(c.code == 0, c.err);
  CHECK(contains(c.out, "conditional bound -log p(x | y), true test labels"));
  const json jc = json::parse(lines_of(c.out).back());
  CHECK(jc["conditional"] == true);
  RunResult u = run("./apps/nll --ckpt '" + r.ckpt + "' --n 4 --null-label --out '" + dir.file("u") + "'");
  REQUIRE_MESSAGE(u.code == 0, u.err);
  CHECK(contains(u.out, "unconditional bound -log p(x), null label"));
  CHECK(json::parse(lines_of(u.out).back())["conditional"] == false);
  check_one_line_error(run("./apps/nll --ckpt '" + r.plain_ckpt + "' --n 4 --null-label --out '" + dir.file("p") + "'"),
                       {"--null-label", "expected a class-conditional checkpoint"});
}

// The test digits with their true labels as "samples": the fraction classified as asked is the
// classifier's accuracy on them, and each class's FID against the same digits of that class is 0.
TEST_CASE("eval --labels: fraction classified as asked per class and overall, FID per class") {
  CondRuns& r = runs();
  ScratchDir dir;
  const std::string clf = dir.file("clf.safetensors");
  REQUIRE(run("./apps/classifier --data '" + r.data + "' --epochs 1 --batch 8 --seed 5 --out '" + clf + "'").code == 0);
  const std::string images = r.data + "/t10k-images-idx3-ubyte", labels = r.data + "/t10k-labels-idx1-ubyte";
  RunResult e = run("./apps/eval '" + images + "' --classifier '" + clf + "' --data '" + r.data + "' --labels '" + labels + "'");
  INFO("stderr: " << e.err);
  REQUIRE(e.code == 0);
  const json j = json::parse(lines_of(e.out).back());
  const dd::IdxArray y = dd::read_idx_labels(labels);
  double hits = 0;
  for (const auto& [digit, c] : j["asked_per_class"].items()) {
    CHECK(std::fabs(c["fid"].get<double>()) < 1e-6);
    CHECK(c["n"] == c["n_real"]);
    hits += c["classified_as_asked"].get<double>() * c["n"].get<double>();
  }
  CHECK(j["asked_per_class"].size() == 10);
  CHECK(j["asked_classified_as_asked"].get<double>() == doctest::Approx(hits / 32.0));
  // Shifting every asked label by one changes the fraction unless the classifier is exactly that wrong.
  std::vector<uint8_t> shifted(y.data);
  for (auto& v : shifted) v = static_cast<uint8_t>((v + 1) % 10);
  dd::write_idx_labels(dir.file("shifted"), shifted);
  RunResult s = run("./apps/eval '" + images + "' --classifier '" + clf + "' --data '" + r.data + "' --labels '" + dir.file("shifted") + "'");
  REQUIRE(s.code == 0);
  const double a = j["asked_classified_as_asked"].get<double>(), b = json::parse(lines_of(s.out).back())["asked_classified_as_asked"].get<double>();
  CHECK(a + b <= 1.0 + 1e-12);  // a sample is classified as at most one of its two asked labels

  dd::write_idx_labels(dir.file("short"), std::vector<uint8_t>(5, 1));
  check_one_line_error(run("./apps/eval '" + images + "' --classifier '" + clf + "' --data '" + r.data + "' --labels '" + dir.file("short") + "'"),
                       {"--labels", "expected one label per sample (32)", "got 5"});
  std::vector<uint8_t> bad(32, 1);
  bad[4] = 11;
  dd::write_idx_labels(dir.file("bad"), bad);
  check_one_line_error(run("./apps/eval '" + images + "' --classifier '" + clf + "' --data '" + r.data + "' --labels '" + dir.file("bad") + "'"),
                       {"--labels", "expected digits 0..9", "11 at position 4"});
}

// scripts/guidance_table.sh on the tiny conditional run: one row per weight whose numbers are the
// ones ./apps/eval wrote for it, and one-line errors for a missing checkpoint or a bad weight.
TEST_CASE("scripts/guidance_table.sh: the table's numbers are eval's, one row per guidance weight") {
  CondRuns& r = runs();
  REQUIRE(r.cond.code == 0);
  ScratchDir dir;
  const std::string clf = dir.file("clf.safetensors"), out = dir.file("table");
  REQUIRE(run("./apps/classifier --data '" + r.data + "' --epochs 1 --batch 8 --seed 5 --out '" + clf + "'").code == 0);
  const std::string env = "GUIDANCE_N=2 GUIDANCE_STEPS=4 GUIDANCE_N_REAL=32 GUIDANCE_CLASSIFIER='" + clf + "' GUIDANCE_DATA='" + r.data + "' ";
  RunResult t = run(env + "bash scripts/guidance_table.sh '" + r.ckpt + "' '" + out + "' 0 2");
  INFO("stderr: " << t.err);
  REQUIRE(t.code == 0);
  const std::string table = read_text(out + "/table.md");
  for (const std::string w : {"0", "2"}) {
    const json j = json::parse(lines_of(read_text(out + "/g" + w + ".json")).back());
    char overall[64];
    std::snprintf(overall, sizeof overall, "| %s | %.1f %% | %.2f |", w.c_str(), 100 * j["asked_classified_as_asked"].get<double>(),
                  j["fid"].get<double>());
    CHECK_MESSAGE(table.find(overall) != std::string::npos, "expected the row '" << overall << "' in\n" << table);
    const std::vector<uint8_t> asked = dd::read_idx_labels(out + "/g" + w + "-labels-idx1-ubyte").data;
    CHECK(asked.size() == 20);  // two per digit, in digit order
    for (size_t i = 0; i < asked.size(); ++i) CHECK(asked[i] == i / 2);
  }
  // GUIDANCE_TABLE_ONLY=1 writes the same table from the files already there, without sampling.
  std::filesystem::remove(out + "/g0.png");
  RunResult again = run(env + "GUIDANCE_TABLE_ONLY=1 bash scripts/guidance_table.sh '" + r.ckpt + "' '" + out + "' 0 2");
  CHECK(again.code == 0);
  CHECK(read_text(out + "/table.md") == table);
  CHECK_FALSE(std::filesystem::exists(out + "/g0.png"));
  check_one_line_error(run(env + "bash scripts/guidance_table.sh '" + dir.file("none.safetensors") + "' '" + out + "'"),
                       {"expected a checkpoint file", "none.safetensors"});
  check_one_line_error(run(env + "bash scripts/guidance_table.sh '" + r.ckpt + "' '" + out + "' -1"),
                       {"expected guidance weights >= 0", "'-1'"});
}
