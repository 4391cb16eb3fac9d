// The PNG grid reader (tensor/io/png.h, read_png_grid as ./apps/eval uses it). The first three
// bytes choose columns (1..16), padding (0..3) and count (-1 or 1..64); the cell is 28 or a small
// one so that small inputs can be valid grids. The rest is the file.
#include <stdexcept>

#include "tensor/io/png.h"
#include "tests/fuzz/fuzz_target.h"

DD_FUZZ_TARGET(png) {
  if (size < 3) return 0;
  const int columns = 1 + data[0] % 16, padding = data[1] % 4, cell = (data[1] & 0x80) ? 28 : 1 + (data[1] >> 2) % 8;
  const int64_t count = data[2] == 0 ? -1 : data[2] % 64 + 1;
  const std::string path = dd_fuzz::as_file("png", data + 3, size - 3);
  try {
    dd::Tensor<float> grid = dd::read_png_grid(path, columns, cell, padding, count);
    (void)grid;
  } catch (const std::exception&) {
  }
  return 0;
}
