#include "tensor/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "tensor/io/io_error.h"

namespace dd {

namespace {

// ---- the 5x7 font: one byte per row, bit 4 = leftmost pixel ------------------------------------
struct Glyph {
  char c;
  uint8_t rows[7];
};
constexpr Glyph kFont[] = {
    {' ', {0, 0, 0, 0, 0, 0, 0}},
    {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}},
    {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}},
    {'3', {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}},
    {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}},
    {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
    {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}},
    {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
    {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}},
    {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
    {'A', {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}},
    {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}},
    {'D', {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C}},
    {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}},
    {'F', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}},
    {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}},
    {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
    {'I', {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}},
    {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}},
    {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}},
    {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}},
    {'N', {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}},
    {'O', {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}},
    {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}},
    {'Q', {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}},
    {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}},
    {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}},
    {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}},
    {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}},
    {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}},
    {'X', {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}},
    {'Y', {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04}},
    {'Z', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}},
    {'a', {0x00, 0x00, 0x0E, 0x01, 0x0F, 0x11, 0x0F}},
    {'b', {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1E}},
    {'c', {0x00, 0x00, 0x0E, 0x10, 0x10, 0x11, 0x0E}},
    {'d', {0x01, 0x01, 0x0D, 0x13, 0x11, 0x11, 0x0F}},
    {'e', {0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E}},
    {'f', {0x06, 0x09, 0x08, 0x1C, 0x08, 0x08, 0x08}},
    {'g', {0x00, 0x0F, 0x11, 0x11, 0x0F, 0x01, 0x0E}},
    {'h', {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11}},
    {'i', {0x04, 0x00, 0x0C, 0x04, 0x04, 0x04, 0x0E}},
    {'j', {0x02, 0x00, 0x06, 0x02, 0x02, 0x12, 0x0C}},
    {'k', {0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12}},
    {'l', {0x0C, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}},
    {'m', {0x00, 0x00, 0x1A, 0x15, 0x15, 0x11, 0x11}},
    {'n', {0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11}},
    {'o', {0x00, 0x00, 0x0E, 0x11, 0x11, 0x11, 0x0E}},
    {'p', {0x00, 0x00, 0x1E, 0x11, 0x1E, 0x10, 0x10}},
    {'q', {0x00, 0x00, 0x0D, 0x13, 0x0F, 0x01, 0x01}},
    {'r', {0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10}},
    {'s', {0x00, 0x00, 0x0E, 0x10, 0x0E, 0x01, 0x1E}},
    {'t', {0x08, 0x08, 0x1C, 0x08, 0x08, 0x09, 0x06}},
    {'u', {0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0D}},
    {'v', {0x00, 0x00, 0x11, 0x11, 0x11, 0x0A, 0x04}},
    {'w', {0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0A}},
    {'x', {0x00, 0x00, 0x11, 0x0A, 0x04, 0x0A, 0x11}},
    {'y', {0x00, 0x00, 0x11, 0x11, 0x0F, 0x01, 0x0E}},
    {'z', {0x00, 0x00, 0x1F, 0x02, 0x04, 0x08, 0x1F}},
    {'^', {0x04, 0x0A, 0x11, 0x00, 0x00, 0x00, 0x00}},
    {'[', {0x0E, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0E}},
    {']', {0x0E, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0E}},
    {'<', {0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02}},
    {'>', {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08}},
    {'*', {0x00, 0x04, 0x15, 0x0E, 0x15, 0x04, 0x00}},
    {'|', {0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
    {'\'', {0x0C, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00}},
    {';', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x04, 0x08}},
    {'!', {0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x04}},
    {'.', {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}},
    {'-', {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}},
    {'+', {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00}},
    {',', {0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08}},
    {':', {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00}},
    {'/', {0x01, 0x02, 0x02, 0x04, 0x08, 0x08, 0x10}},
    {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}},
    {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}},
    {'=', {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00}},
    {'_', {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F}},
    {'%', {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}},
    {'?', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04}},
};

const Glyph& glyph_for(char c) {
  for (const Glyph& g : kFont)
    if (g.c == c) return g;
  for (const Glyph& g : kFont)
    if (g.c == '?') return g;
  return kFont[0];
}

// ---- axis ticks ---------------------------------------------------------------------------------
// About `target` round values (1, 2 or 5 times a power of ten apart) inside [lo, hi].
std::vector<double> nice_ticks(double lo, double hi, int target) {
  double raw = (hi - lo) / target;
  double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double f = raw / magnitude;
  double step = (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * magnitude;
  std::vector<double> ticks;
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step)
    ticks.push_back(std::fabs(v) < step * 1e-9 ? 0.0 : v);
  return ticks;
}

// Ticks of a log axis, as values (not logs): decades, or 1-2-5 multiples when under two decades fit.
std::vector<double> log_ticks(double log_lo, double log_hi) {
  std::vector<double> ticks;
  for (double d = std::ceil(log_lo); d <= log_hi + 1e-9; d += 1) ticks.push_back(std::pow(10.0, d));
  if (ticks.size() >= 2) return ticks;
  ticks.clear();
  for (double d = std::floor(log_lo); d <= std::ceil(log_hi); d += 1)
    for (double m : {1.0, 2.0, 5.0}) {
      double v = m * std::pow(10.0, d);
      if (std::log10(v) >= log_lo - 1e-9 && std::log10(v) <= log_hi + 1e-9) ticks.push_back(v);
    }
  if (ticks.size() >= 2) return ticks;
  ticks.clear();
  for (double t : nice_ticks(std::pow(10.0, log_lo), std::pow(10.0, log_hi), 4))
    if (t > 0) ticks.push_back(t);
  return ticks;
}

std::string tick_label(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

struct Range {
  double lo = 0, hi = 1;
};

// The finite extent of values (for a log axis: of log10 of the positive ones), padded a little so
// that lines do not run along the frame; a flat or empty series still gets a usable range.
Range value_range(const std::vector<double>& values, bool log_axis, double pad_fraction) {
  double lo = INFINITY, hi = -INFINITY;
  for (double v : values) {
    if (!std::isfinite(v) || (log_axis && v <= 0)) continue;
    double u = log_axis ? std::log10(v) : v;
    lo = std::min(lo, u);
    hi = std::max(hi, u);
  }
  if (!(lo <= hi)) return {0, 1};
  if (hi - lo < 1e-12 * std::max(1.0, std::fabs(hi))) {
    double half = log_axis ? 0.5 : std::max(1e-3, std::fabs(hi) * 0.1);
    return {lo - half, hi + half};
  }
  double pad = (hi - lo) * pad_fraction;
  return {lo - pad, hi + pad};
}

}  // namespace

// ---- RgbImage -------------------------------------------------------------------------------

RgbImage::RgbImage(int width, int height, Rgb background) : width_(width), height_(height) {
  if (width <= 0 || height <= 0 || width > 20000 || height > 20000)
    throw IoError("RgbImage: expected a size in [1, 20000]^2, found " + std::to_string(width) + "x" +
                  std::to_string(height));
  pixels_.resize(size_t(width) * height * 3);
  for (size_t i = 0; i < pixels_.size(); i += 3) {
    pixels_[i] = background.r;
    pixels_[i + 1] = background.g;
    pixels_[i + 2] = background.b;
  }
}

Rgb RgbImage::get(int x, int y) const {
  if (x < 0 || y < 0 || x >= width_ || y >= height_) return {};
  const uint8_t* p = &pixels_[(size_t(y) * width_ + x) * 3];
  return {p[0], p[1], p[2]};
}

void RgbImage::set(int x, int y, Rgb c) {
  if (x < 0 || y < 0 || x >= width_ || y >= height_) return;
  uint8_t* p = &pixels_[(size_t(y) * width_ + x) * 3];
  p[0] = c.r;
  p[1] = c.g;
  p[2] = c.b;
}

void RgbImage::fill_rect(int x0, int y0, int x1, int y1, Rgb c) {
  for (int y = std::max(0, std::min(y0, y1)); y <= std::min(height_ - 1, std::max(y0, y1)); ++y)
    for (int x = std::max(0, std::min(x0, x1)); x <= std::min(width_ - 1, std::max(x0, x1)); ++x) set(x, y, c);
}

void RgbImage::draw_line(int x0, int y0, int x1, int y1, Rgb c, int thickness) {
  // Bresenham; a thick line is a square pen of `thickness` pixels moved along it.
  int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0);
  int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
  int err = dx + dy;
  const int lo = -(thickness - 1) / 2, hi = thickness / 2;
  for (;;) {
    fill_rect(x0 + lo, y0 + lo, x0 + hi, y0 + hi, c);
    if (x0 == x1 && y0 == y1) break;
    int e2 = 2 * err;
    if (e2 >= dy) {
      err += dy;
      x0 += sx;
    }
    if (e2 <= dx) {
      err += dx;
      y0 += sy;
    }
  }
}

void RgbImage::draw_text(int x, int y, const std::string& text, Rgb c, int scale) {
  for (char ch : text) {
    const Glyph& g = glyph_for(ch);
    for (int row = 0; row < 7; ++row)
      for (int col = 0; col < 5; ++col)
        if (g.rows[row] & (0x10 >> col))
          fill_rect(x + col * scale, y + row * scale, x + (col + 1) * scale - 1, y + (row + 1) * scale - 1, c);
    x += 6 * scale;
  }
}

void RgbImage::draw_text_up(int x, int y, const std::string& text, Rgb c, int scale) {
  // a pixel at (column X of the whole line, row r) of the upright text goes to (r, width - 1 - X)
  const int w = text_width(text) / std::max(scale, 1);
  for (size_t i = 0; i < text.size(); ++i) {
    const Glyph& g = glyph_for(text[i]);
    for (int row = 0; row < 7; ++row)
      for (int col = 0; col < 5; ++col)
        if (g.rows[row] & (0x10 >> col)) {
          const int X = 6 * static_cast<int>(i) + col;
          fill_rect(x + row * scale, y + (w - 1 - X) * scale, x + (row + 1) * scale - 1, y + (w - X) * scale - 1, c);
        }
  }
}

int RgbImage::text_width(const std::string& text, int scale) {
  return text.empty() ? 0 : (6 * static_cast<int>(text.size()) - 1) * scale;
}

// ---- line plots -----------------------------------------------------------------------------

RgbImage render_line_plot(const std::vector<PlotSeries>& series, const PlotOptions& options) {
  if (options.width < 200 || options.height < 150)
    throw IoError("line plot: expected a size of at least 200x150, found " + std::to_string(options.width) + "x" +
                  std::to_string(options.height));
  std::vector<double> all_x, all_y;
  for (const PlotSeries& s : series) {
    if (s.xs.size() != s.ys.size())
      throw IoError("line plot: series '" + s.name + "': expected as many xs as ys, found " +
                    std::to_string(s.xs.size()) + " and " + std::to_string(s.ys.size()));
    for (size_t i = 0; i < s.xs.size(); ++i)  // the axes span only the points that are drawn
      if (std::isfinite(s.xs[i]) && std::isfinite(s.ys[i]) && !(options.log_y && s.ys[i] <= 0)) {
        all_x.push_back(s.xs[i]);
        all_y.push_back(s.ys[i]);
      }
  }
  const Range xr = value_range(all_x, false, 0.0), yr = value_range(all_y, options.log_y, 0.05);
  const std::vector<double> xticks = nice_ticks(xr.lo, xr.hi, 6);
  const std::vector<double> yticks =
      options.log_y ? log_ticks(yr.lo, yr.hi) : nice_ticks(yr.lo, yr.hi, 6);

  const Rgb black{0, 0, 0}, grid{225, 225, 225}, text{40, 40, 40};
  RgbImage img(options.width, options.height);
  int label_w = 0;
  for (double t : yticks) label_w = std::max(label_w, RgbImage::text_width(tick_label(t)));
  const int px0 = 12 + label_w + (options.y_label.empty() ? 0 : 14), px1 = options.width - 16;
  const int py0 = options.title.empty() ? 12 : 34, py1 = options.height - 40;

  auto map_x = [&](double x) { return px0 + int(std::lround((x - xr.lo) / (xr.hi - xr.lo) * (px1 - px0))); };
  auto map_y = [&](double y) {
    double u = options.log_y ? std::log10(y) : y;
    return py1 - int(std::lround((u - yr.lo) / (yr.hi - yr.lo) * (py1 - py0)));
  };

  for (double t : yticks) {
    int y = map_y(t);
    if (y < py0 || y > py1) continue;
    img.draw_line(px0, y, px1, y, grid);
    img.draw_line(px0 - 4, y, px0, y, black);
    std::string label = tick_label(t);
    img.draw_text(px0 - 6 - RgbImage::text_width(label), y - 3, label, text);
  }
  for (double t : xticks) {
    int x = map_x(t);
    if (x < px0 || x > px1) continue;
    img.draw_line(x, py0, x, py1, grid);
    img.draw_line(x, py1, x, py1 + 4, black);
    std::string label = tick_label(t);
    img.draw_text(x - RgbImage::text_width(label) / 2, py1 + 8, label, text);
  }
  img.draw_line(px0, py0, px0, py1, black);
  img.draw_line(px0, py1, px1, py1, black);
  img.draw_line(px0, py0, px1, py0, black);
  img.draw_line(px1, py0, px1, py1, black);
  if (!options.title.empty()) {
    // Twice the glyph size when it fits; a title wider than the image at that size (nll's
    // "MEAN TERM OF THE BOUND ..." at 800 px) lost both its ends, so it drops to the plain size.
    const int title_scale = RgbImage::text_width(options.title, 2) <= options.width - 8 ? 2 : 1;
    img.draw_text((options.width - RgbImage::text_width(options.title, title_scale)) / 2, 8 + 4 * (2 - title_scale),
                  options.title, black, title_scale);
  }
  if (!options.x_label.empty())
    img.draw_text((px0 + px1 - RgbImage::text_width(options.x_label)) / 2, py1 + 24, options.x_label, text);

  if (!options.y_label.empty())
    img.draw_text_up(4, (py0 + py1 - RgbImage::text_width(options.y_label)) / 2, options.y_label, text);

  for (const PlotSeries& s : series) {
    bool have_last = false;
    int lx = 0, ly = 0;
    for (size_t i = 0; i < s.xs.size(); ++i) {
      double x = s.xs[i], y = s.ys[i];
      if (!std::isfinite(x) || !std::isfinite(y) || (options.log_y && y <= 0)) {
        have_last = false;  // a gap in the line rather than a jump to a made-up value
        continue;
      }
      int cx = map_x(x), cy = map_y(y);
      if (have_last)
        img.draw_line(lx, ly, cx, cy, s.color, 2);
      else
        img.fill_rect(cx, cy, cx + 1, cy + 1, s.color);
      lx = cx;
      ly = cy;
      have_last = true;
    }
  }

  // Legend, top right inside the frame, on a white box so lines do not cross the names; a series
  // without a name (a guide line drawn twice, say) has no row.
  std::vector<const PlotSeries*> named;
  for (const PlotSeries& s : series)
    if (!s.name.empty()) named.push_back(&s);
  int legend_w = 0;
  for (const PlotSeries* s : named) legend_w = std::max(legend_w, 26 + RgbImage::text_width(s->name));
  if (!named.empty()) {
    int lx1 = px1 - 6, lx0 = lx1 - legend_w - 8, ly0 = py0 + 6;
    img.fill_rect(lx0, ly0, lx1, ly0 + 12 * int(named.size()) + 4, Rgb{255, 255, 255});
    for (size_t i = 0; i < named.size(); ++i) {
      int y = ly0 + 8 + 12 * int(i);
      img.draw_line(lx0 + 4, y, lx0 + 22, y, named[i]->color, 2);
      img.draw_text(lx0 + 28, y - 3, named[i]->name, text);
    }
  }
  return img;
}

}  // namespace dd
