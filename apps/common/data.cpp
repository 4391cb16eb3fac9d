#include "apps/common/data.h"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "tensor/io/idx.h"

namespace dd::app {

namespace fs = std::filesystem;

std::string Dataset::describe() const {
  const std::string n_train = train.shape().empty() ? "no" : std::to_string(train.size(0));
  return name + " from " + source + " (" + folder + "): " + n_train + " train, " +
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

bool has_all(const fs::path& folder, Split split) {
  for (const char* f : {"train-images-idx3-ubyte", "t10k-images-idx3-ubyte"}) {
    if (split == Split::TestOnly && f[0] == 't' && f[1] == 'r') continue;
    if (find_idx(folder, f).empty()) return false;
  }
  return true;
}

Tensor<float> read_images(const fs::path& folder, const std::string& name) {
  return idx_images_to_tensor(read_idx_images(find_idx(folder, name)));
}

extern "C" char** environ;

}  // namespace

int run_program(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, STDERR_FILENO, STDOUT_FILENO);  // its progress goes to our stderr
  pid_t pid = 0;
  const int rc = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return -1;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Dataset load_dataset(const std::string& name, const std::string& folder_in, Split split) {
  Dataset d;
  d.name = name;
  fs::path folder = folder_in;
  if (name == "fashion") {
    folder = "/usr/share/datasets/fashion-mnist";
    if (!has_all(folder, split))
      throw std::runtime_error("--dataset fashion: expected the IDX files in " + folder.string() +
                               ", found none (apt-get install dataset-fashion-mnist)");
    d.source = "Debian dataset-fashion-mnist";
  } else if (name == "mnist") {
    if (!has_all(folder, split)) {
      std::fprintf(stderr, "MNIST not found in %s: fetching it\n", folder.c_str());
      // An argument vector, never a shell command line; "--" ends the script's options, so a
      // folder named "-x" is a folder too.
      if (run_program({"bash", project_path("scripts/fetch_mnist.sh"), "--", folder.string()}) != 0 || !has_all(folder, split))
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
  if (split == Split::TrainAndTest) d.train = read_images(folder, "train-images-idx3-ubyte");
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

std::vector<int64_t> labels_of(const Dataset& ds, bool train) {
  std::vector<int64_t> labels = load_labels(ds.folder, train);
  const int64_t images = train ? ds.train.size(0) : ds.test.size(0);
  if (static_cast<int64_t>(labels.size()) != images)
    throw std::runtime_error(ds.folder + ": expected one " + (train ? "training" : "test") + " label per image (" + std::to_string(images) +
                             "), found " + std::to_string(labels.size()) + " labels");
  return labels;
}

}  // namespace dd::app
