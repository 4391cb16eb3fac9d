// apps/classifier and apps/eval end to end on the tiny synthetic MNIST of app_test_util.h: a
// deterministic classifier file, the metrics of a set against itself, PNG grid = IDX input, the
// calibration tables, and one-line errors.
#include <nlohmann/json.hpp>

#include "tensor/io/idx.h"
#include "tensor/io/png.h"
#include "tests/apps/app_test_util.h"

using namespace dd_apps_test;
using nlohmann::json;

namespace {

// One tiny data folder and one 1-epoch classifier (64 digits, batch 8), shared by the cases below.
struct TinyClassifier {
  ScratchDir dir;
  std::string data = dir.file("data"), weights = dir.file("clf.safetensors");
  RunResult train;
  TinyClassifier() {
    write_tiny_mnist(data);
    train = run("./apps/classifier --data '" + data + "' --epochs 1 --batch 8 --seed 5 --out '" + weights + "'");
  }
};
TinyClassifier& tiny() {
  static TinyClassifier t;
  return t;
}

}  // namespace

TEST_CASE("classifier: trains, reports the test accuracy as a JSON line, and is deterministic from --seed") {
  TinyClassifier& t = tiny();
  INFO("stderr: " << t.train.err);
  REQUIRE(t.train.code == 0);
  const json j = json::parse(lines_of(t.train.out).at(0));
  CHECK(j["test_digits"] == 32);
  CHECK(j["train_digits"] == 64);
  CHECK(j["test_accuracy"].get<double>() >= 0.0);
  CHECK(j["test_accuracy"].get<double>() <= 1.0);
  const std::string again = t.dir.file("again.safetensors");
  REQUIRE(run("./apps/classifier --data '" + t.data + "' --epochs 1 --batch 8 --seed 5 --out '" + again + "'").code == 0);
  CHECK(read_text(again) == read_text(t.weights));
  const std::string other = t.dir.file("other.safetensors");
  REQUIRE(run("./apps/classifier --data '" + t.data + "' --epochs 1 --batch 8 --seed 6 --out '" + other + "'").code == 0);
  CHECK(read_text(other) != read_text(t.weights));
}

TEST_CASE("eval: a set against itself (FID 0, precision = recall = 1); a PNG grid gives the IDX numbers") {
  TinyClassifier& t = tiny();
  REQUIRE(t.train.code == 0);
  const std::string test_idx = t.data + "/t10k-images-idx3-ubyte";
  RunResult r = run("./apps/eval '" + test_idx + "' --classifier '" + t.weights + "' --data '" + t.data + "'");
  INFO("stderr: " << r.err);
  REQUIRE(r.code == 0);
  REQUIRE(lines_of(r.out).size() == 1);
  const json j = json::parse(r.out);
  CHECK(j["n_samples"] == 32);
  CHECK(j["n_real"] == 32);
  CHECK(j["fid"].get<double>() < 1e-6);
  CHECK(j["precision"] == 1.0);
  CHECK(j["recall"] == 1.0);
  CHECK(contains(r.err, "classifier-FID"));

  // the same digits as a PNG grid of 6 columns (6 rows, 4 empty cells: --count 32)
  const std::string png = t.dir.file("grid.png");
  dd::write_png_grid(png, dd::idx_images_to_tensor(dd::read_idx_images(test_idx)), 6);
  const RunResult p = run("./apps/eval '" + png + "' --grid-cols 6 --count 32 --classifier '" + t.weights + "' --data '" + t.data + "'");
  INFO("stderr: " << p.err);
  REQUIRE(p.code == 0);
  CHECK(p.out == r.out);

  // fewer samples against a larger reference: no longer identical sets
  const RunResult s = run("./apps/eval '" + test_idx + "' --count 10 --n-real 32 --classifier '" + t.weights + "' --data '" + t.data + "'");
  REQUIRE(s.code == 0);
  CHECK(json::parse(s.out)["n_samples"] == 10);
  CHECK(json::parse(s.out)["precision"] == 1.0);  // each sample is itself one of the reference digits
}

TEST_CASE("eval --calibrate: one table row per set for each N") {
  TinyClassifier& t = tiny();
  REQUIRE(t.train.code == 0);
  const RunResult r = run("./apps/eval --calibrate --sizes 5,6 --classifier '" + t.weights + "' --data '" + t.data + "'");
  INFO("stderr: " << r.err);
  REQUIRE(r.code == 0);
  int rows = 0;
  for (const auto& l : lines_of(r.out)) rows += l.rfind("| ", 0) == 0 && !contains(l, "| set |");
  CHECK(rows == 2 * 8);
  CHECK(contains(r.out, "N = 5 "));
  CHECK(contains(r.out, "N = 6 "));
  CHECK(contains(r.out, "pure noise"));
  CHECK(lines_of(r.err).size() == 16);  // one JSON line per row
}

TEST_CASE("classifier and eval: bad flags and bad files give one-line errors and a non-zero exit") {
  TinyClassifier& t = tiny();
  REQUIRE(t.train.code == 0);
  const std::string flags = " --classifier '" + t.weights + "' --data '" + t.data + "'";
  check_one_line_error(run("./apps/eval" + flags), {"expected either SAMPLES or --calibrate"});
  check_one_line_error(run("./apps/eval '" + t.dir.file("missing") + "'" + flags), {"missing"});
  const std::string png = t.dir.file("grid.png");
  dd::write_png_grid(png, dd::idx_images_to_tensor(dd::read_idx_images(t.data + "/t10k-images-idx3-ubyte")), 8);
  check_one_line_error(run("./apps/eval '" + png + "'" + flags), {"--grid-cols"});
  check_one_line_error(run("./apps/eval '" + png + "' --grid-cols 7" + flags), {"grid.png", "expected a grid of 7 columns"});
  check_one_line_error(run("./apps/eval '" + png + "' --grid-cols 8 --cell 14" + flags), {"--cell", "expected 28"});
  const std::string text = t.dir.file("not-weights");
  write_text_file(text, "hello");
  check_one_line_error(run("./apps/eval '" + png + "' --grid-cols 8 --classifier '" + text + "' --data '" + t.data + "'"), {"not-weights"});
  check_one_line_error(run("./apps/eval --calibrate --sizes 17" + flags), {"--sizes", "expected"});
  check_one_line_error(run("./apps/classifier --data '" + t.data + "' --batch 100 --out '" + t.dir.file("x") + "'"), {"--batch", "expected at most 64"});
  CHECK(!fs::exists(t.dir.file("x")));
  check_one_line_error(run("./apps/classifier --epochs 0"), {"--epochs"});
}
