// Helpers shared by the tests/io suites: a scratch folder removed at the end of a test, and a
// check that an expression throws IoError whose message contains given words.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "tensor/io/io_error.h"
#include "tests/scratch_dir.h"

namespace dd_test {

// The IoError message thrown by f, or "" (and a failed check) when f does not throw IoError.
template <class F>
std::string io_error_message(F&& f) {
  try {
    f();
  } catch (const dd::IoError& e) {
    return e.what();
  }
  FAIL_CHECK("expected an IoError");
  return "";
}

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace dd_test
