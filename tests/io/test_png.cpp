// PNG output: the files are decoded here (chunks, CRCs, zlib, row filters) so the tests check
// actual pixel values, not only that some bytes were written.
#include <doctest/doctest.h>
#include <zlib.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "io_test_util.h"
#include "tensor/io/atomic_file.h"
#include "tensor/io/png.h"

using namespace dd;
using dd_test::contains;
using dd_test::ScratchDir;

namespace {

uint32_t be32(const uint8_t* p) { return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3]; }

struct DecodedPng {
  int width = 0, height = 0, channels = 0;
  std::vector<uint8_t> pixels;  // row-major, `channels` bytes per pixel
  std::vector<uint8_t> at(int x, int y) const {
    auto p = pixels.begin() + (size_t(y) * width + x) * channels;
    return std::vector<uint8_t>(p, p + channels);
  }
};

// A minimal decoder for the 8-bit gray / RGB non-interlaced PNGs stb_image_write makes.
DecodedPng decode_png(const std::vector<uint8_t>& png) {
  const uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  REQUIRE(png.size() > 8);
  REQUIRE(std::memcmp(png.data(), signature, 8) == 0);
  DecodedPng out;
  std::vector<uint8_t> idat;
  size_t pos = 8;
  bool seen_end = false;
  while (pos + 12 <= png.size()) {
    uint32_t len = be32(&png[pos]);
    REQUIRE(pos + 12 + len <= png.size());
    std::string type(png.begin() + pos + 4, png.begin() + pos + 8);
    const uint8_t* body = &png[pos + 8];
    uint32_t crc = uint32_t(crc32(0, &png[pos + 4], len + 4));
    CHECK(crc == be32(body + len));
    if (type == "IHDR") {
      REQUIRE(pos == 8);  // IHDR comes first
      out.width = int(be32(body));
      out.height = int(be32(body + 4));
      REQUIRE(body[8] == 8);  // bit depth
      REQUIRE((body[9] == 0 || body[9] == 2));
      out.channels = body[9] == 0 ? 1 : 3;
      REQUIRE(body[12] == 0);  // not interlaced
    } else if (type == "IDAT") {
      idat.insert(idat.end(), body, body + len);
    } else if (type == "IEND") {
      seen_end = true;
    }
    pos += 12 + len;
  }
  REQUIRE(seen_end);
  REQUIRE(pos == png.size());
  const size_t stride = size_t(out.width) * out.channels;
  std::vector<uint8_t> raw((stride + 1) * out.height);
  uLongf raw_len = raw.size();
  REQUIRE(uncompress(raw.data(), &raw_len, idat.data(), idat.size()) == Z_OK);
  REQUIRE(raw_len == raw.size());
  out.pixels.resize(stride * out.height);
  const int bpp = out.channels;
  for (int y = 0; y < out.height; ++y) {
    uint8_t filter = raw[y * (stride + 1)];
    const uint8_t* src = &raw[y * (stride + 1) + 1];
    uint8_t* row = &out.pixels[y * stride];
    const uint8_t* up = y > 0 ? &out.pixels[(y - 1) * stride] : nullptr;
    for (size_t i = 0; i < stride; ++i) {
      int a = i >= size_t(bpp) ? row[i - bpp] : 0, b = up ? up[i] : 0, c = (up && i >= size_t(bpp)) ? up[i - bpp] : 0;
      int pred = 0;
      switch (filter) {
        case 0: pred = 0; break;
        case 1: pred = a; break;
        case 2: pred = b; break;
        case 3: pred = (a + b) / 2; break;
        case 4: {
          int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
          pred = (pa <= pb && pa <= pc) ? a : (pb <= pc ? b : c);
          break;
        }
        default: FAIL("unknown PNG filter " << int(filter));
      }
      row[i] = uint8_t(src[i] + pred);
    }
  }
  return out;
}

std::vector<uint8_t> rgb(Rgb c) { return {c.r, c.g, c.b}; }

}  // namespace

TEST_CASE("an image grid has the right size, each image in its cell, padding around them") {
  // 5 images of 3x4 (HxW), 3 columns, padding 2: 2 rows of cells, the sixth cell empty.
  const int n = 5, h = 3, w = 4, pad = 2;
  TensorF images({n, 1, h, w});
  for (int i = 0; i < n; ++i)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) images.at({i, 0, y, x}) = -1.0f + 0.1f * i + 0.05f * (y * w + x);
  DecodedPng png = decode_png(encode_png_grid(images, 3, pad, 77));
  CHECK(png.width == 3 * w + 4 * pad);
  CHECK(png.height == 2 * h + 3 * pad);
  CHECK(png.channels == 1);
  int image_pixels = 0;
  for (int i = 0; i < n; ++i)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) {
        int gx = pad + (i % 3) * (w + pad) + x, gy = pad + (i / 3) * (h + pad) + y;
        uint8_t expected = uint8_t(std::lround((images.at({i, 0, y, x}) + 1.0f) * 127.5f));
        CHECK(png.at(gx, gy)[0] == expected);
        ++image_pixels;
      }
  // everything else (padding and the empty sixth cell) is the pad value
  std::vector<bool> in_image(png.pixels.size(), false);
  for (int i = 0; i < n; ++i)
    for (int y = 0; y < h; ++y)
      for (int x = 0; x < w; ++x) in_image[(pad + (i / 3) * (h + pad) + y) * png.width + pad + (i % 3) * (w + pad) + x] = true;
  int pad_pixels = 0;
  for (size_t p = 0; p < png.pixels.size(); ++p)
    if (!in_image[p]) pad_pixels += png.pixels[p] == 77;
  CHECK(image_pixels == n * h * w);
  CHECK(pad_pixels == png.width * png.height - image_pixels);
  CHECK(png.at(pad + 2 * (w + pad), pad + h + pad)[0] == 77);  // sixth cell

  // values outside [-1, 1] are clipped, as the paper does when writing samples
  DecodedPng clipped = decode_png(encode_png_grid(TensorF::from({1, 1, 1, 3}, {-4.0f, 0.0f, 9.0f}), 1, 0));
  CHECK(clipped.pixels == std::vector<uint8_t>{0, 128, 255});
}

TEST_CASE("an RGB grid keeps channels; bad shapes are errors; write_png_grid writes a file atomically") {
  TensorF images = TensorF::zeros({2, 3, 2, 2});
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 2; ++x) {
      images.at({1, 0, y, x}) = 1.0f;   // second image pure red
      images.at({1, 1, y, x}) = -1.0f;
      images.at({1, 2, y, x}) = -1.0f;
    }
  DecodedPng png = decode_png(encode_png_grid(images, 2, 1));
  CHECK(png.channels == 3);
  CHECK(png.width == 2 * 2 + 3);
  CHECK(png.at(1 + 2 + 1, 1) == std::vector<uint8_t>{255, 0, 0});
  CHECK(png.at(1, 1) == std::vector<uint8_t>{128, 128, 128});
  CHECK(png.at(0, 0) == std::vector<uint8_t>{0, 0, 0});

  CHECK_THROWS_AS(encode_png_grid(TensorF::zeros({2, 2, 4, 4}), 2), ShapeError);
  CHECK_THROWS_AS(encode_png_grid(TensorF::zeros({2, 4, 4}), 2), ShapeError);
  CHECK_THROWS_AS(encode_png_grid(TensorF::zeros({2, 1, 4, 4}), 0), ShapeError);

  ScratchDir dir;
  write_png_grid(dir.file("grid.png"), TensorF::zeros({4, 1, 28, 28}), 2);
  DecodedPng file = decode_png(read_file_bytes(dir.file("grid.png")));
  CHECK(file.width == 2 * 28 + 3 * 2);
  CHECK(file.height == 2 * 28 + 3 * 2);
  CHECK(dir.listing() == std::vector<std::string>{"grid.png"});
}

TEST_CASE("the 5x7 font draws glyphs upright, left to right, 6 pixels apart") {
  RgbImage img(11, 7);
  const Rgb ink{0, 0, 0}, paper{255, 255, 255};
  img.draw_text(0, 0, "1L", ink);
  auto inked = [&](int x, int y) { return rgb(img.get(x, y)) == rgb(ink); };
  // '1': a vertical stem in column 2, a flag at (1, 1), a 3-pixel foot 01110 on the bottom row
  for (int y = 0; y < 7; ++y) CHECK(inked(2, y));
  CHECK(inked(1, 1));
  CHECK(!inked(1, 0));
  CHECK((!inked(0, 6) && inked(1, 6) && inked(3, 6) && !inked(4, 6)));
  // 'L' starts at x = 6: stem in its column 0, bar along the bottom only
  for (int y = 0; y < 7; ++y) CHECK(inked(6, y));
  for (int x = 6; x < 11; ++x) CHECK(inked(x, 6));
  CHECK(!inked(10, 0));
  CHECK(rgb(img.get(5, 3)) == rgb(paper));  // the gap between characters
  CHECK(RgbImage::text_width("1L") == 11);
  CHECK(RgbImage::text_width("1L", 2) == 22);
}

TEST_CASE("lowercase letters have their own glyphs (t and T differ); text turned up is the same text rotated") {
  RgbImage lower(5, 7), upper(5, 7);
  const Rgb ink{0, 0, 0};
  lower.draw_text(0, 0, "t", ink);
  upper.draw_text(0, 0, "T", ink);
  CHECK(lower.pixels() != upper.pixels());
  // 't': the cross bar on row 2, the hook at the bottom right; 'T': the bar on row 0
  CHECK(rgb(lower.get(0, 2)) == rgb(ink));
  CHECK(rgb(lower.get(0, 0)) != rgb(ink));
  CHECK(rgb(upper.get(0, 0)) == rgb(ink));
  RgbImage q(5, 7);
  q.draw_text(0, 0, "~", ink);  // no glyph: the question mark
  RgbImage mark(5, 7);
  mark.draw_text(0, 0, "?", ink);
  CHECK(q.pixels() == mark.pixels());

  const std::string text = "abar_t";
  const int w = RgbImage::text_width(text);
  RgbImage flat(w, 7), up(7, w);
  flat.draw_text(0, 0, text, ink);
  up.draw_text_up(0, 0, text, ink);
  int inked = 0;
  for (int y = 0; y < 7; ++y)
    for (int x = 0; x < w; ++x) {
      CHECK(rgb(flat.get(x, y)) == rgb(up.get(y, w - 1 - x)));
      inked += rgb(flat.get(x, y)) == rgb(ink);
    }
  CHECK(inked > 20);
}

namespace {
// A 300 x 200 plot of one rising series, for the layout tests.
const PlotSeries kRising{"v", {0, 1}, {0.0, 1.0}, Rgb{200, 30, 30}};
PlotOptions small_plot() {
  PlotOptions opt;
  opt.width = 300;
  opt.height = 200;
  return opt;
}
}  // namespace

TEST_CASE("a line plot's y label is drawn up the left side, left of the tick labels") {
  const PlotSeries& s = kRising;
  PlotOptions opt = small_plot();
  auto ink_in_left_strip = [&](const DecodedPng& p) {
    int n = 0;
    for (int y = 0; y < p.height; ++y)
      for (int x = 0; x < 6; ++x) n += p.at(x, y) != std::vector<uint8_t>{255, 255, 255};
    return n;
  };
  const DecodedPng without = decode_png(encode_line_plot_png({s}, opt));
  opt.y_label = "bits/dim";
  const DecodedPng with = decode_png(encode_line_plot_png({s}, opt));
  CHECK(ink_in_left_strip(without) == 0);
  CHECK(ink_in_left_strip(with) > 5);
}

TEST_CASE("a line plot's title is whole: twice the glyph size where it fits, the plain size where not") {
  const PlotSeries& s = kRising;
  PlotOptions opt = small_plot();
  // Columns with black ink in the title band (above the frame at y = 34).
  auto title_columns = [&](const DecodedPng& p) {
    int first = -1, last = -1;
    for (int x = 0; x < p.width; ++x)
      for (int y = 0; y < 30; ++y)
        if (p.at(x, y) == std::vector<uint8_t>{0, 0, 0}) {
          if (first < 0) first = x;
          last = x;
        }
    return std::pair<int, int>{first, last};
  };
  opt.title = "LOSS";  // 46 px at scale 2: drawn at scale 2, centred
  auto [f2, l2] = title_columns(decode_png(encode_line_plot_png({s}, opt)));
  CHECK(l2 - f2 + 1 > RgbImage::text_width(opt.title));
  CHECK(std::abs((f2 + l2) - opt.width) <= 4);
  opt.title = std::string(40, 'M');  // 478 px at scale 2, 239 at scale 1: must stay inside the image
  auto [f1, l1] = title_columns(decode_png(encode_line_plot_png({s}, opt)));
  CHECK(f1 > 0);
  CHECK(l1 < opt.width - 1);
  CHECK(l1 - f1 + 1 <= RgbImage::text_width(opt.title));
  CHECK(l1 - f1 + 1 > RgbImage::text_width(opt.title) - 6);
}

TEST_CASE("a line plot: size, white background, the series colour where the data is") {
  PlotSeries up{"loss", {0, 50, 100}, {0.0, 0.5, 1.0}, Rgb{200, 30, 30}};
  PlotOptions opt;
  opt.title = "Loss";
  opt.width = 400;
  opt.height = 300;
  DecodedPng png = decode_png(encode_line_plot_png({up}, opt));
  CHECK(png.width == 400);
  CHECK(png.height == 300);
  CHECK(png.channels == 3);
  CHECK(png.at(0, 0) == std::vector<uint8_t>{255, 255, 255});
  CHECK(png.at(399, 299) == std::vector<uint8_t>{255, 255, 255});

  // An increasing series: the red pixels of the left part of the plot are lower (larger y) than
  // those of the right part. The legend (top right) also uses the colour, so look left of it.
  auto red_rows_in_column = [&](const DecodedPng& p, int x) {
    std::vector<int> ys;
    for (int y = 0; y < p.height; ++y)
      if (p.at(x, y) == std::vector<uint8_t>{200, 30, 30}) ys.push_back(y);
    return ys;
  };
  int first_red_x = -1, last_red_x = -1;
  for (int x = 0; x < png.width; ++x)
    for (int y = png.height / 3; y < png.height; ++y)  // below the legend
      if (png.at(x, y) == std::vector<uint8_t>{200, 30, 30}) {
        if (first_red_x < 0) first_red_x = x;
        last_red_x = x;
      }
  REQUIRE(first_red_x > 0);
  std::vector<int> left = red_rows_in_column(png, first_red_x + 2), mid = red_rows_in_column(png, png.width / 2);
  REQUIRE(!left.empty());
  REQUIRE(!mid.empty());
  CHECK(left.front() > mid.front());
  CHECK(last_red_x > png.width / 2);
}

TEST_CASE("a log-y plot puts 1, 10, 100 evenly spaced; non-positive values are skipped") {
  // Exponential data is a straight line on a log axis: the middle point lies at the mid height of
  // the line's vertical extent. On a linear axis it would sit near the bottom.
  auto middle_offset = [&](bool log_y) {
    // the last point (y = -5) cannot be drawn on a log axis: it is skipped and does not widen
    // the x axis; on a linear axis the series stops before it
    PlotSeries s = log_y ? PlotSeries{"", {0, 1, 2, 3}, {1, 10, 100, -5}, Rgb{0, 0, 255}}
                         : PlotSeries{"", {0, 1, 2}, {1, 10, 100}, Rgb{0, 0, 255}};
    PlotOptions opt;
    opt.log_y = log_y;
    DecodedPng png = decode_png(encode_line_plot_png({s}, opt));
    int top = png.height, bottom = -1, mid_x_top = -1;
    int x_lo = png.width, x_hi = -1;
    for (int y = 0; y < png.height; ++y)
      for (int x = 0; x < png.width; ++x)
        if (png.at(x, y) == std::vector<uint8_t>{0, 0, 255}) {
          top = std::min(top, y);
          bottom = std::max(bottom, y);
          x_lo = std::min(x_lo, x);
          x_hi = std::max(x_hi, x);
        }
    int x_mid = (x_lo + x_hi) / 2;
    for (int y = 0; y < png.height && mid_x_top < 0; ++y)
      if (png.at(x_mid, y) == std::vector<uint8_t>{0, 0, 255}) mid_x_top = y;
    REQUIRE(mid_x_top >= 0);
    return std::abs(mid_x_top - (top + bottom) / 2) / double(bottom - top);
  };
  CHECK(middle_offset(true) < 0.03);
  CHECK(middle_offset(false) > 0.3);
}

TEST_CASE("line plot errors: mismatched series, too small; empty and flat series still draw") {
  PlotOptions opt;
  PlotSeries bad{"bad", {1, 2}, {1}, {}};
  CHECK(contains(dd_test::io_error_message([&] { encode_line_plot_png({bad}, opt); }), "'bad'"));
  opt.width = 10;
  dd_test::io_error_message([&] { encode_line_plot_png({}, opt); });
  opt.width = 300;
  CHECK(decode_png(encode_line_plot_png({}, opt)).width == 300);
  PlotSeries flat{"flat", {1, 2, 3}, {0.5, 0.5, 0.5}, Rgb{0, 128, 0}};
  PlotSeries nan{"nan", {1, 2}, {NAN, INFINITY}, Rgb{1, 2, 3}};
  DecodedPng png = decode_png(encode_line_plot_png({flat, nan}, opt));
  int green = 0;
  for (int y = png.height / 3; y < png.height; ++y)
    for (int x = 0; x < png.width; ++x) green += png.at(x, y) == std::vector<uint8_t>{0, 128, 0};
  CHECK(green > 100);

  ScratchDir dir;
  write_line_plot_png(dir.file("loss.png"), {flat}, opt);
  CHECK(decode_png(read_file_bytes(dir.file("loss.png"))).height == opt.height);
}

TEST_CASE("read_png_grid reads back what write_png_grid wrote (8-bit values), and rejects a wrong layout") {
  ScratchDir dir;
  const std::string path = dir.file("grid.png");
  // 7 images of 28x28 with values k -> 2k/255 - 1 for k = (i * 37 + p) % 256: exact at 8 bits
  Tensor<float> x({7, 1, 28, 28});
  for (int64_t i = 0; i < x.numel(); ++i) x.data()[i] = 2.f * static_cast<float>((i * 37) % 256) / 255.f - 1.f;
  write_png_grid(path, x, 3);
  const Tensor<float> all = read_png_grid(path, 3);  // 3 rows x 3 columns: 2 empty cells
  CHECK(all.shape() == Shape{9, 1, 28, 28});
  const Tensor<float> y = read_png_grid(path, 3, 28, 2, 7);
  REQUIRE(y.shape() == x.shape());
  float max_err = 0;
  for (int64_t i = 0; i < x.numel(); ++i) max_err = std::max(max_err, std::fabs(x.data()[i] - y.data()[i]));
  CHECK(max_err < 1e-6f);
  for (int64_t i = 7 * 784; i < 9 * 784; ++i) CHECK(all.data()[i] == -1.f);  // padding value 0 -> -1
  CHECK_THROWS_AS(read_png_grid(path, 4), IoError);
  CHECK_THROWS_AS(read_png_grid(path, 3, 28, 3), IoError);
  CHECK_THROWS_AS(read_png_grid(path, 3, 28, 2, 10), IoError);
  write_file_atomic(dir.file("bad.png"), std::string("not a png"));
  CHECK_THROWS_AS(read_png_grid(dir.file("bad.png"), 3), IoError);
}

TEST_CASE("fuzz finding: a zero-length IDAT chunk (legal) reads as the same grid, without stb_image's memcpy(NULL, 0)") {
  // tests/fuzz/regressions/png/crash-cd82...: UBSan in the fuzz build; here the behaviour: the grid is unchanged.
  ScratchDir dir;
  Tensor<float> images({6, 1, 4, 4});
  for (int64_t i = 0; i < images.numel(); ++i) images.data()[i] = static_cast<float>((i * 37) % 255) / 127.5f - 1.0f;
  write_png_grid(dir.file("g.png"), images, 3, 1);
  std::vector<uint8_t> bytes = read_file_bytes(dir.file("g.png"));
  // Insert an empty IDAT chunk (length 0, type, CRC of "IDAT") right after IHDR (8 + 25 bytes).
  const uint8_t empty_idat[12] = {0, 0, 0, 0, 'I', 'D', 'A', 'T', 0x35, 0xaf, 0x06, 0x1e};
  bytes.insert(bytes.begin() + 33, empty_idat, empty_idat + 12);
  write_file_atomic(dir.file("empty-idat.png"), bytes);
  const Tensor<float> a = read_png_grid(dir.file("g.png"), 3, 4, 1), b = read_png_grid(dir.file("empty-idat.png"), 3, 4, 1);
  CHECK(a.shape() == b.shape());
  CHECK(a.to_vector() == b.to_vector());
}
