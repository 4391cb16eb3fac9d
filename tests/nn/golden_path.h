// Where the committed golden files live: tests/golden/, found from this source file's path so the
// suite runs from the repository root (make test) or from its own folder.
#pragma once

#include <fstream>
#include <string>

namespace dd {

inline std::string golden_path(const std::string& name) {
  const std::string here = __FILE__;  // ".../tests/nn/golden_path.h"
  const std::string dir = here.substr(0, here.rfind('/')) + "/../golden/";
  for (const std::string& candidate : {dir + name, "tests/golden/" + name}) {
    std::ifstream f(candidate);
    if (f.good()) return candidate;
  }
  return "tests/golden/" + name;
}

}  // namespace dd
