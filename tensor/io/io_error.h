// The one exception every file format in tensor/io/ throws, with a one-line message of the form
// "FILE: expected WHAT, found WHAT" so a user can tell which file is bad and how.
#pragma once

#include <stdexcept>
#include <string>

namespace dd {

struct IoError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// "path: expected <expected>, found <found>"
[[noreturn]] inline void io_error(const std::string& path, const std::string& expected,
                                  const std::string& found) {
  throw IoError(path + ": expected " + expected + ", found " + found);
}

}  // namespace dd
