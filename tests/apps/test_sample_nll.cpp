// apps/sample and apps/nll end to end on the tiny checkpoint of the shared 6-step run, and their
// one-line errors for bad flags and bad files.
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>
#include <nlohmann/json.hpp>

#include <cmath>

#include "tensor/io/idx.h"
#include "tensor/io/safetensors.h"
#include "tests/apps/app_test_util.h"

using namespace dd_apps_test;
using nlohmann::json;

namespace {

struct PngSize {
  int w = 0, h = 0, channels = 0;
};
PngSize png_size(const std::string& path) {
  PngSize s;
  if (!stbi_info(path.c_str(), &s.w, &s.h, &s.channels)) FAIL_CHECK("not a PNG: " << path);
  return s;
}
// The grid layout of write_png_grid: 28x28 images with 2 pixels of padding between and around.
int grid_side(int images) { return images * 28 + (images + 1) * 2; }

// The 784 gray pixels of the cell at (row, col) of a grid PNG.
std::vector<uint8_t> grid_cell(const std::string& path, int row, int col) {
  int w = 0, h = 0, c = 0;
  unsigned char* px = stbi_load(path.c_str(), &w, &h, &c, 1);
  REQUIRE(px != nullptr);
  std::vector<uint8_t> cell;
  for (int y = 0; y < 28; ++y)
    for (int x = 0; x < 28; ++x) cell.push_back(px[(2 + row * 30 + y) * w + 2 + col * 30 + x]);
  stbi_image_free(px);
  return cell;
}
std::vector<uint8_t> idx_image(const dd::IdxArray& a, int64_t i) {
  return std::vector<uint8_t>(a.data.begin() + i * 784, a.data.begin() + (i + 1) * 784);
}
int max_abs_diff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  REQUIRE(a.size() == b.size());
  int m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(int(a[i]) - int(b[i])));
  return m;
}

}  // namespace

TEST_CASE("sample: strided ancestral samples as PNG + IDX, the progressive strip and interpolations") {
  TinyRun& t = tiny_run();
  REQUIRE(t.result.code == 0);
  ScratchDir dir;
  const std::string cmd = "./apps/sample --ckpt '" + t.ckpt + "' --n 5 --batch 3 --steps 5 --seed 7";
  RunResult r = run(cmd + " --out '" + dir.file("a.png") + "' --idx '" + dir.file("a-idx") + "' --progressive '" +
                    dir.file("prog.png") + "' --interpolate '" + dir.file("interp.png") + "' --t 10 --pair 0,1 --pair 2,3 --data '" +
                    t.data + "'");
  INFO(r.err);
  REQUIRE(r.code == 0);
  dd::IdxArray a = dd::read_idx_images(dir.file("a-idx"));
  CHECK(a.dims == std::vector<int64_t>{5, 28, 28});
  // 5 samples in ceil(sqrt(5)) = 3 columns, 2 rows.
  PngSize g = png_size(dir.file("a.png"));
  CHECK(g.w == grid_side(3));
  CHECK(g.h == grid_side(2));
  // Progressive: 3 rows (the first batch) x 5 columns (all 5 strided steps; at most ~10 are shown).
  PngSize p = png_size(dir.file("prog.png"));
  CHECK(p.w == grid_side(5));
  CHECK(p.h == grid_side(3));
  // Interpolation: 2 pairs x (x0, 11 lambdas, x0').
  PngSize i = png_size(dir.file("interp.png"));
  CHECK(i.w == grid_side(13));
  CHECK(i.h == grid_side(2));
  // The strip's last column is x0_hat at t = 1, which is the final sample (mutilde_1 = x0_hat:
  // posterior coefficients 1 and 0); up to one gray level of float rounding.
  for (int row = 0; row < 3; ++row) CHECK(max_abs_diff(grid_cell(dir.file("prog.png"), row, 4), idx_image(a, row)) <= 1);
  CHECK(max_abs_diff(grid_cell(dir.file("prog.png"), 0, 0), idx_image(a, 0)) > 1);  // the first column is early in t
  // The interpolation rows start and end with the chosen test digits (8-bit data round-trips exactly).
  const dd::IdxArray test = dd::read_idx_images(t.data + "/t10k-images-idx3-ubyte");
  CHECK(grid_cell(dir.file("interp.png"), 0, 0) == idx_image(test, 0));
  CHECK(grid_cell(dir.file("interp.png"), 0, 12) == idx_image(test, 1));
  CHECK(grid_cell(dir.file("interp.png"), 1, 0) == idx_image(test, 2));
  CHECK(grid_cell(dir.file("interp.png"), 1, 12) == idx_image(test, 3));
  CHECK(grid_cell(dir.file("interp.png"), 0, 1) != grid_cell(dir.file("interp.png"), 0, 11));  // lambda = 0 vs 1
  CHECK(contains(r.err, "sampling step 10/10"));  // 2 batches x 5 steps, with progress
  CHECK(contains(r.out, "interpolate:"));

  // Same seed, same samples (independently of the extra outputs); another seed, other samples.
  RunResult same = run(cmd + " --out '" + dir.file("b.png") + "' --idx '" + dir.file("b-idx") + "'");
  REQUIRE(same.code == 0);
  CHECK(read_text(dir.file("a-idx")) == read_text(dir.file("b-idx")));
  RunResult other = run("./apps/sample --ckpt '" + t.ckpt + "' --n 5 --batch 3 --steps 5 --seed 8 --out '" + dir.file("c.png") +
                        "' --idx '" + dir.file("c-idx") + "'");
  REQUIRE(other.code == 0);
  CHECK(read_text(dir.file("a-idx")) != read_text(dir.file("c-idx")));
  // After 6 steps with EMA decay 0.999 the EMA weights are still near the initial ones: the raw
  // weights give other samples from the same noise.
  RunResult raw = run(cmd + " --raw --out '" + dir.file("d.png") + "' --idx '" + dir.file("d-idx") + "'");
  REQUIRE(raw.code == 0);
  CHECK(read_text(dir.file("a-idx")) != read_text(dir.file("d-idx")));
}

TEST_CASE("sample: the default sampler (min(100, T) strided steps, posterior variance), --variance, and DDIM") {
  TinyRun& t = tiny_run();
  REQUIRE(t.result.code == 0);
  ScratchDir dir;
  RunResult full = run("./apps/sample --ckpt '" + t.ckpt + "' --n 2 --out '" + dir.file("f.png") + "'");
  INFO(full.err);
  REQUIRE(full.code == 0);
  CHECK(contains(full.err, "ancestral (small variance), 50 of T = 50 steps"));  // T = 50 < 100: every step
  CHECK(contains(full.err, "sampling step 50/50"));
  CHECK(dd::read_idx_images(dir.file("f-idx3-ubyte")).dims == std::vector<int64_t>{2, 28, 28});  // default IDX name
  // The default is exactly --variance small at all T steps, and another draw than --variance large.
  const std::string base = "./apps/sample --ckpt '" + t.ckpt + "' --n 2";
  RunResult small = run(base + " --steps 0 --variance small --out '" + dir.file("s.png") + "'");
  RunResult large = run(base + " --variance large --out '" + dir.file("l.png") + "'");
  REQUIRE(small.code == 0);
  REQUIRE(large.code == 0);
  CHECK(contains(large.err, "ancestral (large variance)"));
  CHECK(read_text(dir.file("f-idx3-ubyte")) == read_text(dir.file("s-idx3-ubyte")));
  CHECK(read_text(dir.file("f-idx3-ubyte")) != read_text(dir.file("l-idx3-ubyte")));
  const std::string png = " --out '" + dir.file("e.png") + "'";
  check_one_line_error(run(base + png + " --variance learned"), {"--variance", "large or small", "no learned variance", "learned"});
  check_one_line_error(run(base + png + " --variance wide"), {"--variance", "large, small or learned", "wide"});
  check_one_line_error(run(base + png + " --sampler ddim --variance small"), {"--variance", "only with --sampler ancestral", "ddim"});

  const std::string ddim = "./apps/sample --ckpt '" + t.ckpt + "' --n 3 --steps 10 --sampler ddim";
  RunResult d0 = run(ddim + " --eta 0 --out '" + dir.file("d0.png") + "' --idx '" + dir.file("d0") + "'");
  RunResult d0b = run(ddim + " --eta 0 --seed 0 --out '" + dir.file("d0b.png") + "' --idx '" + dir.file("d0b") + "'");
  RunResult d1 = run(ddim + " --eta 1 --out '" + dir.file("d1.png") + "' --idx '" + dir.file("d1") + "'");
  REQUIRE(d0.code == 0);
  REQUIRE(d0b.code == 0);
  REQUIRE(d1.code == 0);
  CHECK(contains(d0.err, "DDIM eta 0"));
  CHECK(read_text(dir.file("d0")) == read_text(dir.file("d0b")));
  CHECK(read_text(dir.file("d0")) != read_text(dir.file("d1")));  // eta adds noise

  // --no-clip: the barely trained model's x0_hat leaves [-1, 1], so clipping it changes the samples.
  const std::string anc = "./apps/sample --ckpt '" + t.ckpt + "' --n 3 --steps 10";
  RunResult clip = run(anc + " --out '" + dir.file("c.png") + "' --idx '" + dir.file("c") + "'");
  RunResult noclip = run(anc + " --no-clip --out '" + dir.file("nc.png") + "' --idx '" + dir.file("nc") + "'");
  REQUIRE(clip.code == 0);
  REQUIRE(noclip.code == 0);
  CHECK(contains(clip.err, " clipped x0_hat"));
  CHECK(contains(noclip.err, "unclipped x0_hat"));
  CHECK(read_text(dir.file("c")) != read_text(dir.file("nc")));
}

TEST_CASE("nll: the full bound on test digits, its parts adding up, the per-term CSV and plot, a JSON last line") {
  TinyRun& t = tiny_run();
  REQUIRE(t.result.code == 0);
  ScratchDir dir;
  RunResult r = run("./apps/nll --ckpt '" + t.ckpt + "' --n 6 --batch 4 --out '" + dir.path() + "' --data '" + t.data + "'");
  INFO(r.err);
  REQUIRE(r.code == 0);
  CHECK(contains(r.err, "network call 100/100"));  // 2 batches x T = 50
  const auto out_lines = lines_of(r.out);
  REQUIRE(!out_lines.empty());
  json j = json::parse(out_lines.back());
  const double total = j.at("bits_per_dim"), lt = j.at("L_T"), sum = j.at("L_sum"), l0 = j.at("L_0"), se = j.at("stderr");
  CHECK(std::abs(lt + sum + l0 - total) <= 1e-9 * total);
  CHECK(total > 0);
  CHECK(lt > 0);
  CHECK(sum > 0);
  CHECK(l0 > 0);
  CHECK(se > 0);
  CHECK(se < total);
  CHECK(j.at("n") == 6);
  CHECK(j.at("clip") == true);
  CHECK(j.at("step") == 6);
  CHECK(j.at("T") == 50);

  // CSV: header + t = 0..T; the column sums to the total and its rows are the parts.
  const auto csv = lines_of(read_text(dir.file("nll-terms.csv")));
  REQUIRE(csv.size() == 52);
  CHECK(csv[0] == "t,term,bits_per_dim");
  double csv_sum = 0, csv_l0 = 0, csv_lt = 0;
  for (size_t k = 1; k < csv.size(); ++k) {
    const std::string& line = csv[k];
    const double v = std::stod(line.substr(line.rfind(',') + 1));
    CHECK(std::stoll(line.substr(0, line.find(','))) == static_cast<int64_t>(k - 1));
    csv_sum += v;
    if (k == 1) csv_l0 = v;
    if (k == csv.size() - 1) csv_lt = v;
  }
  CHECK(contains(csv[1], ",L_0,"));
  CHECK(contains(csv.back(), "50,L_T,"));
  CHECK(std::abs(csv_sum - total) <= 1e-8 * total);
  CHECK(std::abs(csv_l0 - l0) <= 1e-8 * l0);
  CHECK(std::abs(csv_lt - lt) <= 1e-8 * lt);
  CHECK(png_size(dir.file("nll-terms.png")).w > 0);

  // Unclipped evaluation is reported as such and gives another bound for the same draws.
  RunResult nc = run("./apps/nll --ckpt '" + t.ckpt + "' --n 6 --batch 4 --no-clip --out '" + dir.file("nc") + "' --data '" + t.data + "'");
  REQUIRE(nc.code == 0);
  json jn = json::parse(lines_of(nc.out).back());
  CHECK(jn.at("clip") == false);
  CHECK(jn.at("L_T").get<double>() == doctest::Approx(lt).epsilon(1e-12));  // L_T has no parameters
  CHECK(jn.at("bits_per_dim").get<double>() != total);
}

TEST_CASE("sample and nll: bad flags and bad files give one-line errors and a non-zero exit") {
  TinyRun& t = tiny_run();
  REQUIRE(t.result.code == 0);
  ScratchDir dir;
  // A truncated checkpoint, garbage bytes, and a valid safetensors file that is not a checkpoint.
  const std::string good = read_text(t.ckpt);
  write_text_file(dir.file("truncated.safetensors"), good.substr(0, good.size() / 2));
  write_text_file(dir.file("garbage.safetensors"), "not a safetensors file");
  dd::SafetensorsFile plain;
  plain.add("x", dd::Tensor<float>({2, 2}));
  dd::save_safetensors(dir.file("plain.safetensors"), plain);
  const std::string png = " --out '" + dir.file("s.png") + "'";
  for (const std::string prog : {"./apps/sample", "./apps/nll"}) {
    CAPTURE(prog);
    const std::string extra = prog == "./apps/sample" ? png : " --data '" + t.data + "' --out '" + dir.path() + "'";
    check_one_line_error(run(prog + extra), {"--ckpt", "required"});
    check_one_line_error(run(prog + extra + " --ckpt '" + dir.file("missing.safetensors") + "'"), {"missing.safetensors"});
    check_one_line_error(run(prog + extra + " --ckpt '" + dir.file("truncated.safetensors") + "'"), {"truncated.safetensors"});
    check_one_line_error(run(prog + extra + " --ckpt '" + dir.file("garbage.safetensors") + "'"), {"garbage.safetensors"});
    check_one_line_error(run(prog + extra + " --ckpt '" + dir.file("plain.safetensors") + "'"),
                         {"plain.safetensors", "expected a train_mnist checkpoint"});
    check_one_line_error(run(prog + extra + " --ckpt '" + t.ckpt + "' --n 0"), {"--n", "expected"});
    check_one_line_error(run(prog + extra + " --ckpt '" + t.ckpt + "' --n x"), {"--n", "x"});
    check_one_line_error(run(prog + extra + " --ckpt '" + t.ckpt + "' --bogus"), {"--bogus"});
  }
  const std::string s = "./apps/sample --ckpt '" + t.ckpt + "'" + png;
  check_one_line_error(run(s + " --sampler euler"), {"--sampler", "ancestral or ddim", "euler"});
  check_one_line_error(run(s + " --steps 51"), {"--steps", "2..50", "51"});
  check_one_line_error(run(s + " --eta 0.5"), {"--eta", "--sampler ddim"});
  check_one_line_error(run(s + " --interpolate '" + dir.file("i.png") + "' --pair 0,99 --data '" + t.data + "'"),
                       {"--pair", "0..31", "99"});
  check_one_line_error(run(s + " --interpolate '" + dir.file("i.png") + "' --pair 3 --data '" + t.data + "'"), {"--pair", "I,J", "'3'"});
  check_one_line_error(run(s + " --interpolate '" + dir.file("i.png") + "' --t 51 --data '" + t.data + "'"), {"--t", "1..50", "51"});
  check_one_line_error(run(s + " --pair 0,1"), {"--interpolate"});
  CHECK(!fs::exists(dir.file("s.png")));
  CHECK(!fs::exists(dir.file("i.png")));
  check_one_line_error(run("./apps/nll --ckpt '" + t.ckpt + "' --n 33 --data '" + t.data + "' --out '" + dir.path() + "'"),
                       {"--n", "at most 32", "33"});
  CHECK(!fs::exists(dir.file("nll-terms.csv")));
}

namespace {
// Pixels of exactly this color in a PNG (the plot's series colors).
int64_t pixels_of_color(const std::string& path, int r, int g, int b) {
  int w = 0, h = 0, c = 0;
  unsigned char* px = stbi_load(path.c_str(), &w, &h, &c, 3);
  REQUIRE(px != nullptr);
  int64_t count = 0;
  for (int64_t i = 0; i < int64_t(w) * h; ++i) count += px[3 * i] == r && px[3 * i + 1] == g && px[3 * i + 2] == b;
  stbi_image_free(px);
  return count;
}
}  // namespace

TEST_CASE("nll --compare OLD.csv: both runs' per-term curves in nll-compare.png; a bad CSV fails before the bound") {
  TinyRun& t = tiny_run();
  REQUIRE(t.result.code == 0);
  ScratchDir dir;
  const std::string base = "./apps/nll --n 2 --batch 2 --data '" + t.data + "'";
  RunResult old_run = run(base + " --ckpt '" + t.out + "/ckpt-000003.safetensors' --out '" + dir.file("old") + "'");
  REQUIRE_MESSAGE(old_run.code == 0, old_run.err);
  const std::string old_csv = dir.file("old/nll-terms.csv");
  double old_sum = 0;
  const auto rows = lines_of(read_text(old_csv));
  for (size_t k = 1; k < rows.size(); ++k) old_sum += std::stod(rows[k].substr(rows[k].rfind(',') + 1));
  RunResult r = run(base + " --ckpt '" + t.ckpt + "' --out '" + dir.file("new") + "' --compare '" + old_csv + "'");
  INFO(r.err);
  REQUIRE(r.code == 0);
  const json j = json::parse(lines_of(r.out).back());
  CHECK(j.at("compare_plot") == dir.file("new/nll-compare.png"));
  char sum_text[64];
  std::snprintf(sum_text, sizeof sum_text, "sum of terms %.4f", old_sum);
  CHECK(contains(r.out, sum_text));
  CHECK(contains(r.out, "T = 50"));
  // The comparison has the old run's blue curve next to the red one; the single-run plot only red.
  const std::string cmp = dir.file("new/nll-compare.png"), single = dir.file("new/nll-terms.png");
  CHECK(pixels_of_color(cmp, 31, 119, 180) > 50);
  CHECK(pixels_of_color(cmp, 214, 39, 40) > 50);
  CHECK(pixels_of_color(single, 31, 119, 180) == 0);

  // Bad CSVs: one-line errors naming the file, before any network call (no output written).
  write_text_file(dir.file("bad.csv"), "step,loss\n1,2\n");
  check_one_line_error(run(base + " --ckpt '" + t.ckpt + "' --out '" + dir.file("bad") + "' --compare '" + dir.file("bad.csv") + "'"),
                       {"bad.csv", "t,term,bits_per_dim", "step,loss"});
  write_text_file(dir.file("gap.csv"), "t,term,bits_per_dim\n0,L_0,1.5\n2,L_2,0.1\n3,L_T,0\n");
  check_one_line_error(run(base + " --ckpt '" + t.ckpt + "' --out '" + dir.file("bad") + "' --compare '" + dir.file("gap.csv") + "'"),
                       {"gap.csv", "t = 1", "line 3"});
  check_one_line_error(run(base + " --ckpt '" + t.ckpt + "' --out '" + dir.file("bad") + "' --compare '" + dir.file("none.csv") + "'"),
                       {"none.csv"});
  CHECK_FALSE(fs::exists(dir.file("bad/nll-terms.csv")));
}
