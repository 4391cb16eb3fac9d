#include "apps/common/data.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "tensor/io/idx.h"

namespace dd::app {

namespace fs = std::filesystem;

std::string Dataset::describe() const {
  return name + " from " + source + " (" + folder + "): " + std::to_string(train.size(0)) + " train, " +
         std::to_string(test.size(0)) + " test images";
}

std::string project_path(const std::string& relative) {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    fs::path candidate = exe.parent_path().parent_path() / relative;  // apps/NAME -> root
    if (fs::exists(candidate)) return candidate.string();
  }
  return relative;  // fall back to the working directory
}

namespace {

// "name" or "name.gz", whichever exists ("" when neither).
std::string find_idx(const fs::path& folder, const std::string& name) {
  for (const std::string& candidate : {name, name + ".gz"})
    if (fs::exists(folder / candidate)) return (folder / candidate).string();
  return "";
}

bool has_all(const fs::path& folder) {
  for (const char* f : {"train-images-idx3-ubyte", "t10k-images-idx3-ubyte"})
    if (find_idx(folder, f).empty()) return false;
  return true;
}

Tensor<float> read_images(const fs::path& folder, const std::string& name) {
  return idx_images_to_tensor(read_idx_images(find_idx(folder, name)));
}

}  // namespace

Dataset load_dataset(const std::string& name, const std::string& folder_in) {
  Dataset d;
  d.name = name;
  fs::path folder = folder_in;
  if (name == "fashion") {
    folder = "/usr/share/datasets/fashion-mnist";
    if (!has_all(folder))
      throw std::runtime_error("--dataset fashion: expected the IDX files in " + folder.string() +
                               ", found none (apt-get install dataset-fashion-mnist)");
    d.source = "Debian dataset-fashion-mnist";
  } else if (name == "mnist") {
    if (!has_all(folder)) {
      std::fprintf(stderr, "MNIST not found in %s: fetching it\n", folder.c_str());
      const std::string cmd = "bash '" + project_path("scripts/fetch_mnist.sh") + "' '" + folder.string() + "' 1>&2";
      if (std::system(cmd.c_str()) != 0 || !has_all(folder))
        throw std::runtime_error("MNIST: expected the four IDX files in " + folder.string() +
                                 " after fetching, found them missing (see the fetch messages above; "
                                 "or point --data at a folder that has them)");
    }
    std::ifstream src(folder / "SOURCE");
    if (!src || !std::getline(src, d.source) || d.source.empty()) d.source = "local files";
  } else {
    throw std::runtime_error("--dataset: expected mnist or fashion, got '" + name + "'");
  }
  d.folder = folder.string();
  d.train = read_images(folder, "train-images-idx3-ubyte");
  d.test = read_images(folder, "t10k-images-idx3-ubyte");
  return d;
}

std::vector<int64_t> load_labels(const std::string& folder, bool train) {
  const std::string name = train ? "train-labels-idx1-ubyte" : "t10k-labels-idx1-ubyte";
  const std::string path = find_idx(folder, name);
  if (path.empty()) throw std::runtime_error("no " + name + " (or .gz) in " + folder);
  const IdxArray a = read_idx_labels(path);
  std::vector<int64_t> labels(a.data.begin(), a.data.end());
  for (size_t i = 0; i < labels.size(); ++i)
    if (labels[i] > 9)
      throw std::runtime_error(path + ": expected labels 0..9, got " + std::to_string(labels[i]) + " at " + std::to_string(i));
  return labels;
}

}  // namespace dd::app
