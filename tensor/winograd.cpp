// Winograd convolutions (Lavin & Gray 2016; see winograd.h): the geometry checks and the tile
// choice, and the calls into the active vector path's kernels (tensor/winograd_kernels.h, built
// once per instruction set; tensor/kernels.h chooses). The bias gradient is tensor/conv.h's, in
// ordinary code, the same on every path.
#include "tensor/winograd.h"

#include <stdexcept>
#include <string>

#include "tensor/kernels.h"

namespace dd {

namespace {

const KernelTable& vector_kernels(const char* op) {
  const KernelTable* t = kernel_table();
  if (!t)
    throw std::logic_error(std::string(op) + ": expected a vector kernel path (avx2 or avx512), got the generic path");
  return *t;
}

int checked_tile(const Conv2dGeometry& g, int tile, const char* op) {
  if (!winograd_supported(g))
    throw std::invalid_argument(std::string(op) + ": expected a 3x3 stride-1 convolution with padding 0..2, got " +
                                std::to_string(g.kh) + "x" + std::to_string(g.kw) + " stride " +
                                std::to_string(g.stride) + " padding " + std::to_string(g.pad));
  if (tile == 0) return winograd_tile(g);
  if (tile != 2 && tile != 4)
    throw std::invalid_argument(std::string(op) + ": expected tile 0, 2 or 4, got " + std::to_string(tile));
  return tile;
}

}  // namespace


bool winograd_supported(const Conv2dGeometry& g) {
  return g.kh == 3 && g.kw == 3 && g.stride == 1 && g.pad >= 0 && g.pad <= 2 && g.Ho >= 1 && g.Wo >= 1;
}

int winograd_tile(const Conv2dGeometry& g) {
  // Multiplies per output pixel, padding of the last tiles included: 36/16 * (cover / pixels) for
  // F(4x4) against 16/4 for F(2x2).
  auto cost = [&](int m) {
    const double cover = static_cast<double>((g.Ho + m - 1) / m * m) * ((g.Wo + m - 1) / m * m);
    return (m + 2.0) * (m + 2.0) / (m * m) * cover / (static_cast<double>(g.Ho) * g.Wo);
  };
  return cost(4) <= cost(2) ? 4 : 2;
}

void winograd_conv2d_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* b, float* y,
                             Workspace<float>& ws, int tile, const ConvAddend<float>& add) {
  const int m = checked_tile(g, tile, "winograd_conv2d_forward");
  vector_kernels("winograd_conv2d_forward").winograd_forward(g, m, x, w, b, add.image_bias, add.residual, y, ws);
}

void winograd_conv2d_backward_input(const Conv2dGeometry& g, const float* gy, const float* w, float* dx,
                                    Workspace<float>& ws, int tile) {
  const int m = checked_tile(g, tile, "winograd_conv2d_backward_input");
  vector_kernels("winograd_conv2d_backward_input").winograd_backward_input(g, m, gy, w, dx, ws);
}

void winograd_conv2d_backward_weight(const Conv2dGeometry& g, const float* gy, const float* x, float* dw, float* db,
                                     Workspace<float>& ws, int tile) {
  const int m = checked_tile(g, tile, "winograd_conv2d_backward_weight");
  const KernelTable& kernels = vector_kernels("winograd_conv2d_backward_weight");
  if (db) conv2d_backward_bias(g, gy, db);
  if (!dw) return;
  kernels.winograd_backward_weight(g, m, gy, x, dw, ws);
}

}  // namespace dd
