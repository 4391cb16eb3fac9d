// IDX files, the format of MNIST and Fashion-MNIST (http://yann.lecun.com/exdb/mnist/):
// a big-endian magic 0x0000TTDD (TT = 0x08 for unsigned bytes, DD = number of dimensions), DD
// big-endian uint32 sizes, then the row-major payload. Images are 0x00000803 [n, rows, cols],
// labels 0x00000801 [n]. Files may be gzip-compressed; that is detected from the first bytes.
// Only the unsigned-byte type is supported (all MNIST-like data uses it).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace dd {

struct IdxArray {
  std::vector<uint8_t> data;   // row-major, product(dims) bytes
  std::vector<int64_t> dims;   // e.g. {60000, 28, 28}
};

// Reads an unsigned-byte IDX file (plain or gzip). Checks the magic, the dimension count
// (when expected_ndim > 0) and that the payload is exactly product(dims) bytes: fewer is
// "truncated", more is "trailing bytes". Every error is an IoError naming the file.
IdxArray read_idx(const std::string& path, int expected_ndim = 0);
IdxArray read_idx_images(const std::string& path);  // 3 dims [n, rows, cols]
IdxArray read_idx_labels(const std::string& path);  // 1 dim [n]

// Writes an unsigned-byte IDX file (uncompressed), atomically.
void write_idx(const std::string& path, const IdxArray& array);
void write_idx_images(const std::string& path, const uint8_t* data, int64_t n, int64_t rows, int64_t cols);
// Generated images [n, 1, H, W] in [-1, 1] -> an IDX image file (clipped and rounded as tensor_to_pixels).
void write_idx_images(const std::string& path, const Tensor<float>& images);
void write_idx_labels(const std::string& path, const std::vector<uint8_t>& labels);

// Pixels k in 0..255 -> float 2k/255 - 1 in [-1, 1] (docs/conventions.md), as [n, 1, rows, cols].
// Takes images first..first+count-1 (count -1: to the end), so a batch needs no copy of the file.
Tensor<float> idx_images_to_tensor(const IdxArray& images, int64_t first = 0, int64_t count = -1);
// The inverse for writing generated images: clip to [-1, 1], k = round((x + 1) / 2 * 255).
// Accepts [n, 1, H, W] or [n, H, W]; returns n*H*W bytes row-major.
std::vector<uint8_t> tensor_to_pixels(const Tensor<float>& images);
uint8_t pixel_from_unit(float x);  // the per-value rule of tensor_to_pixels (NaN -> 0)

}  // namespace dd
