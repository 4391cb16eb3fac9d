// Shapes and strides: the bookkeeping every tensor op shares.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace dd {

using Shape = std::vector<int64_t>;

// "[3, 1, 5]"
std::string shape_str(const Shape& s);

int64_t shape_numel(const Shape& s);

// Row-major strides of a contiguous tensor of this shape (last dimension has stride 1).
Shape contiguous_strides(const Shape& s);

// NumPy broadcasting: align from the right; a dimension of 1 stretches. Throws naming `op` and
// both shapes when the shapes cannot broadcast.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// Wraps a possibly negative dimension index into [0, ndim); throws naming `op` when out of range.
int wrap_dim(int64_t d, int64_t ndim, const char* op);

// The error every shape check throws: "op: expected ..., got ...".
struct ShapeError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};
[[noreturn]] void shape_error(const std::string& op, const std::string& expected, const std::string& found);

}  // namespace dd
