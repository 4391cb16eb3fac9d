// Drawing for the project's pictures: an 8-bit RGB canvas with a built-in 5x7 pixel font, and line
// plots (loss and bits/dim curves, the schedules of docs/derivations.md) rendered onto it. Turning a
// canvas into a file is tensor/io/png.h's job.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

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
  // Text in the 5x7 font (6 px advance per character, times scale). Capitals and lowercase letters
  // have their own glyphs (t and T differ); characters without a glyph print as '?'.
  void draw_text(int x, int y, const std::string& text, Rgb c, int scale = 1);
  // The same text turned a quarter left, read bottom to top (a y-axis label), x, y its top left.
  void draw_text_up(int x, int y, const std::string& text, Rgb c, int scale = 1);
  static int text_width(const std::string& text, int scale = 1);
  static constexpr int kGlyphHeight = 7;

 private:
  int width_, height_;
  std::vector<uint8_t> pixels_;
};

struct PlotSeries {
  std::string name;
  std::vector<double> xs, ys;  // same length; non-finite points (and y <= 0 on a log axis) break the line
  Rgb color{31, 119, 180};
};

struct PlotOptions {
  std::string title;
  std::string x_label = "step";
  std::string y_label;  // written up the left side; empty: none
  bool log_y = false;
  int width = 800, height = 500;
};

// The series on axes with ticks, grid, title, axis labels and a legend (top right).
RgbImage render_line_plot(const std::vector<PlotSeries>& series, const PlotOptions& options);

}  // namespace dd
