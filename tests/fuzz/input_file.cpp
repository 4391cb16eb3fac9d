#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <stdexcept>

#include "tests/fuzz/fuzz_target.h"

namespace dd_fuzz {

std::string as_file(const char* target, const uint8_t* data, size_t size) {
  // Removed with everything in it when the process exits.
  struct Folder {
    std::string path = (std::filesystem::temp_directory_path() / ("ddpm-fuzz-" + std::to_string(::getpid()))).string();
    Folder() { std::filesystem::create_directories(path); }
    ~Folder() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static const Folder folder;
  const std::string path = folder.path + "/" + target;
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) throw std::runtime_error("fuzz: cannot write " + path);
  if (size > 0 && std::fwrite(data, 1, size, f) != size) throw std::runtime_error("fuzz: cannot write " + path);
  std::fclose(f);
  return path;
}

}  // namespace dd_fuzz
