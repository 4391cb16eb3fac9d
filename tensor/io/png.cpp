#include "tensor/io/png.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "tensor/io/atomic_file.h"
#include "tensor/io/idx.h"
#include "tensor/io/io_error.h"

// The one definition of stb_image_write in the program (other files include it without this).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-function"
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_WRITE_NO_STDIO
#include <stb_image_write.h>
// and of the PNG decoder of stb_image (read_png_grid), PNG only, from memory only
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_ONLY_PNG
#define STBI_NO_STDIO
#include <stb_image.h>
#pragma GCC diagnostic pop

namespace dd {

namespace {


void png_to_vector(void* context, void* data, int size) {
  auto* out = static_cast<std::vector<uint8_t>*>(context);
  const uint8_t* p = static_cast<const uint8_t*>(data);
  out->insert(out->end(), p, p + size);
}

std::vector<uint8_t> encode_pixels(const uint8_t* pixels, int width, int height, int channels) {
  std::vector<uint8_t> out;
  if (!stbi_write_png_to_func(png_to_vector, &out, width, height, channels, pixels, width * channels))
    throw IoError("PNG encoder: expected to encode a " + std::to_string(width) + "x" + std::to_string(height) +
                  " image, found stb_image_write failing");
  return out;
}

}  // namespace

std::vector<uint8_t> encode_png(const RgbImage& image) {
  return encode_pixels(image.pixels().data(), image.width(), image.height(), 3);
}

void write_png(const std::string& path, const RgbImage& image) { write_file_atomic(path, encode_png(image)); }

// ---- image grids ----------------------------------------------------------------------------

std::vector<uint8_t> encode_png_grid(const Tensor<float>& images, int columns, int padding, uint8_t pad_value) {
  const Shape& s = images.shape();
  if (s.size() != 4 || (s[1] != 1 && s[1] != 3) || s[0] < 1 || s[2] < 1 || s[3] < 1)
    shape_error("png grid", "images [n >= 1, 1 or 3, H, W]", shape_str(s));
  if (columns < 1 || padding < 0)
    shape_error("png grid", "columns >= 1 and padding >= 0",
                std::to_string(columns) + " columns, padding " + std::to_string(padding));
  const int64_t n = s[0], channels = s[1], h = s[2], w = s[3];
  const int64_t cols = std::min<int64_t>(columns, n), rows = (n + cols - 1) / cols;
  const int64_t width = cols * w + (cols + 1) * padding, height = rows * h + (rows + 1) * padding;
  if (width > 20000 || height > 20000)
    shape_error("png grid", "a grid of at most 20000x20000 pixels", std::to_string(width) + "x" + std::to_string(height));
  std::vector<uint8_t> canvas(size_t(width * height * channels), pad_value);
  Tensor<float> c = images.contiguous();
  const float* src = c.data();
  for (int64_t i = 0; i < n; ++i) {
    const int64_t left = padding + (i % cols) * (w + padding), top = padding + (i / cols) * (h + padding);
    for (int64_t ch = 0; ch < channels; ++ch)
      for (int64_t y = 0; y < h; ++y)
        for (int64_t x = 0; x < w; ++x)
          canvas[((top + y) * width + left + x) * channels + ch] = pixel_from_unit(src[((i * channels + ch) * h + y) * w + x]);
  }
  return encode_pixels(canvas.data(), int(width), int(height), int(channels));
}

void write_png_grid(const std::string& path, const Tensor<float>& images, int columns, int padding,
                    uint8_t pad_value) {
  write_file_atomic(path, encode_png_grid(images, columns, padding, pad_value));
}

std::vector<uint8_t> encode_line_plot_png(const std::vector<PlotSeries>& series, const PlotOptions& options) {
  return encode_png(render_line_plot(series, options));
}

void write_line_plot_png(const std::string& path, const std::vector<PlotSeries>& series, const PlotOptions& options) {
  write_file_atomic(path, encode_line_plot_png(series, options));
}

// ---- reading a grid back ----------------------------------------------------------------------

namespace {
// The bytes without zero-length IDAT chunks: legal, never written by an encoder, and stb_image
// reads one with memcpy(NULL, ..., 0) (undefined behaviour, found by the png fuzz target). Anything
// that is not a well-formed chunk sequence is passed on unchanged for the decoder to reject.
std::vector<uint8_t> without_empty_idat(const std::vector<uint8_t>& in) {
  static const uint8_t signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  if (in.size() < 8 || !std::equal(signature, signature + 8, in.begin())) return in;
  std::vector<uint8_t> out(in.begin(), in.begin() + 8);
  size_t at = 8;
  while (at + 12 <= in.size()) {
    const uint64_t length = (uint64_t(in[at]) << 24) | (uint64_t(in[at + 1]) << 16) | (uint64_t(in[at + 2]) << 8) | in[at + 3];
    if (at + 12 + length > in.size()) break;
    const bool empty_idat = length == 0 && std::equal(in.begin() + at + 4, in.begin() + at + 8, "IDAT");
    if (!empty_idat) out.insert(out.end(), in.begin() + at, in.begin() + at + 12 + length);
    at += 12 + length;
  }
  out.insert(out.end(), in.begin() + at, in.end());
  return out;
}
}  // namespace

Tensor<float> read_png_grid(const std::string& path, int columns, int cell, int padding, int64_t count) {
  if (columns < 1 || cell < 1 || padding < 0)
    throw IoError(path + ": expected columns >= 1, cell >= 1 and padding >= 0, got " + std::to_string(columns) + ", " +
                  std::to_string(cell) + ", " + std::to_string(padding));
  const std::vector<uint8_t> bytes = without_empty_idat(read_file_bytes(path));
  int width = 0, height = 0, channels = 0;
  // The header's size first: a damaged or hostile file may claim gigapixels, which the decoder
  // would try to allocate. No grid of this project comes near 2^26 pixels (4096 x 16384).
  if (stbi_info_from_memory(bytes.data(), static_cast<int>(bytes.size()), &width, &height, &channels) &&
      static_cast<int64_t>(width) * height > (int64_t{1} << 26))
    throw IoError(path + ": expected a PNG grid of at most 2^26 pixels, found " + std::to_string(width) + "x" +
                  std::to_string(height));
  unsigned char* px = stbi_load_from_memory(bytes.data(), static_cast<int>(bytes.size()), &width, &height, &channels, 1);
  if (!px) throw IoError(path + ": not a readable PNG (" + std::string(stbi_failure_reason()) + ")");
  std::vector<uint8_t> gray(px, px + static_cast<size_t>(width) * height);
  stbi_image_free(px);
  const int64_t step = cell + padding;
  const int64_t expect_w = static_cast<int64_t>(columns) * step + padding;
  if (width != expect_w || (height - padding) % step != 0 || height < step + padding)
    throw IoError(path + ": expected a grid of " + std::to_string(columns) + " columns of " + std::to_string(cell) + "x" +
                  std::to_string(cell) + " cells with padding " + std::to_string(padding) + " (width " +
                  std::to_string(expect_w) + ", height " + std::to_string(padding) + " + k*" + std::to_string(step) +
                  "), found " + std::to_string(width) + "x" + std::to_string(height));
  const int64_t rows = (height - padding) / step, cells = rows * columns;
  if (count < 0) count = cells;
  if (count < 1 || count > cells)
    throw IoError(path + ": expected 1.." + std::to_string(cells) + " images in the grid, asked for " + std::to_string(count));
  Tensor<float> out({count, 1, cell, cell});
  for (int64_t i = 0; i < count; ++i) {
    const int64_t left = padding + (i % columns) * step, top = padding + (i / columns) * step;
    for (int64_t y = 0; y < cell; ++y)
      for (int64_t x = 0; x < cell; ++x)
        out.data()[(i * cell + y) * cell + x] = 2.f * gray[(top + y) * width + left + x] / 255.f - 1.f;
  }
  return out;
}

}  // namespace dd
