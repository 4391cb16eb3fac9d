// PNG files through stb_image_write / stb_image: a canvas (tensor/plot.h), grids of generated images
// and line plots (rendered by tensor/plot.h) written out, and grids read back.
// Every writer is atomic (encoded in memory, then write_file_atomic); encode_* return the bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tensor/plot.h"
#include "tensor/tensor.h"

namespace dd {

std::vector<uint8_t> encode_png(const RgbImage& image);
void write_png(const std::string& path, const RgbImage& image);

// images [n, C, H, W] (C = 1 gray or 3 RGB) with values in [-1, 1] (clipped, rounded to 8 bits as
// in tensor_to_pixels) laid out row by row in `columns` columns with `padding` pixels of
// pad_value between and around them. Grayscale images give a grayscale PNG.
std::vector<uint8_t> encode_png_grid(const Tensor<float>& images, int columns, int padding = 2,
                                     uint8_t pad_value = 0);
void write_png_grid(const std::string& path, const Tensor<float>& images, int columns, int padding = 2,
                    uint8_t pad_value = 0);

// The inverse of write_png_grid for grayscale grids: `columns` columns of cell x cell images with
// `padding` pixels between and around them -> [count, 1, cell, cell] in [-1, 1] (pixels k -> 2k/255 - 1;
// a color PNG is converted to gray). count -1: every cell of the grid (trailing empty cells included).
// The image size must match the layout exactly; any mismatch is an IoError naming the file.
Tensor<float> read_png_grid(const std::string& path, int columns, int cell = 28, int padding = 2, int64_t count = -1);

// render_line_plot (tensor/plot.h) encoded as a PNG.
std::vector<uint8_t> encode_line_plot_png(const std::vector<PlotSeries>& series, const PlotOptions& options);
void write_line_plot_png(const std::string& path, const std::vector<PlotSeries>& series,
                         const PlotOptions& options);

}  // namespace dd
