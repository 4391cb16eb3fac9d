// PNG output through stb_image_write: grids of generated images and simple line plots (loss and
// bits/dim curves) drawn by the project itself, with a built-in 5x7 pixel font for the labels.
// Every writer is atomic (encoded in memory, then write_file_atomic); encode_* return the bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace dd {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
};

// An 8-bit RGB canvas, (0, 0) top left. Drawing outside it is clipped, never an error.
class RgbImage {
 public:
  RgbImage(int width, int height, Rgb background = {255, 255, 255});
  int width() const { return width_; }
  int height() const { return height_; }
  const std::vector<uint8_t>& pixels() const { return pixels_; }  // row-major RGB
  Rgb get(int x, int y) const;
  void set(int x, int y, Rgb c);
  void fill_rect(int x0, int y0, int x1, int y1, Rgb c);  // inclusive corners
  void draw_line(int x0, int y0, int x1, int y1, Rgb c, int thickness = 1);
  // Text in the 5x7 font (6 px advance per character, times scale). Letters print as capitals;
  // characters without a glyph print as '?'.
  void draw_text(int x, int y, const std::string& text, Rgb c, int scale = 1);
  static int text_width(const std::string& text, int scale = 1);
  static constexpr int kGlyphHeight = 7;

 private:
  int width_, height_;
  std::vector<uint8_t> pixels_;
};

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

struct PlotSeries {
  std::string name;
  std::vector<double> xs, ys;  // same length; non-finite points (and y <= 0 on a log axis) break the line
  Rgb color{31, 119, 180};
};

struct PlotOptions {
  std::string title;
  std::string x_label = "step";
  bool log_y = false;
  int width = 800, height = 500;
};

std::vector<uint8_t> encode_line_plot_png(const std::vector<PlotSeries>& series, const PlotOptions& options);
void write_line_plot_png(const std::string& path, const std::vector<PlotSeries>& series,
                         const PlotOptions& options);

}  // namespace dd
