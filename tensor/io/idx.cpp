#include "tensor/io/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>

#include "tensor/io/atomic_file.h"
#include "tensor/io/io_error.h"

namespace dd {

namespace {

// No MNIST-like file comes near this; a corrupt header claiming more is rejected, not allocated.
constexpr uint64_t kMaxIdxPayload = uint64_t(4) << 30;

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08X", v);
  return buf;
}

std::string dims_str(const std::vector<int64_t>& dims) { return shape_str(Shape(dims.begin(), dims.end())); }

// Sequential reader over a plain or gzip file (gzip recognised by its magic bytes 1f 8b).
class ByteSource {
 public:
  explicit ByteSource(const std::string& path) : path_(path) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) io_error(path, "a readable IDX file", std::string("error: ") + std::strerror(errno));
    unsigned char head[2] = {0, 0};
    size_t got = std::fread(head, 1, 2, f);
    gzip_ = got == 2 && head[0] == 0x1f && head[1] == 0x8b;
    if (gzip_) {
      std::fclose(f);
      gz_ = gzopen(path.c_str(), "rb");
      if (!gz_) io_error(path, "a readable gzip file", std::string("error: ") + std::strerror(errno));
    } else {
      file_ = f;
      std::fseek(file_, 0, SEEK_END);
      file_size_ = std::ftell(file_);
      std::fseek(file_, 0, SEEK_SET);
    }
  }
  ~ByteSource() {
    if (file_) std::fclose(file_);
    if (gz_) gzclose(gz_);
  }
  ByteSource(const ByteSource&) = delete;
  ByteSource& operator=(const ByteSource&) = delete;

  bool gzip() const { return gzip_; }
  // Size on disk of a plain file (lets a short file be reported before anything is allocated).
  long plain_size() const { return file_size_; }

  // Reads up to n bytes; fewer only at the end of the (decompressed) data.
  size_t read(void* buf, size_t n) {
    size_t total = 0;
    char* p = static_cast<char*>(buf);
    while (total < n) {
      size_t want = std::min<size_t>(n - total, size_t(1) << 30);
      size_t got;
      if (gz_) {
        int r = gzread(gz_, p + total, static_cast<unsigned>(want));
        int errnum = Z_OK;
        const char* msg = gzerror(gz_, &errnum);
        // A truncated gzip stream returns its partial data with Z_BUF_ERROR set, not -1.
        if (r < 0 || (errnum != Z_OK && errnum != Z_STREAM_END))
          io_error(path_, "a valid gzip stream", std::string("a damaged or truncated one (zlib: ") + msg + ")");
        got = static_cast<size_t>(r);
      } else {
        got = std::fread(p + total, 1, want, file_);
        if (got < want && std::ferror(file_))
          io_error(path_, "a readable file", std::string("a read error: ") + std::strerror(errno));
      }
      total += got;
      if (got < want) break;
    }
    return total;
  }

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
  gzFile gz_ = nullptr;
  bool gzip_ = false;
  long file_size_ = -1;
};

void append_be32(std::vector<uint8_t>& out, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<uint8_t>(v >> s));
}

}  // namespace

IdxArray read_idx(const std::string& path, int expected_ndim) {
  ByteSource in(path);
  uint8_t magic[4];
  size_t got = in.read(magic, 4);
  if (got < 4) io_error(path, "a 4-byte IDX magic number", std::to_string(got) + " bytes (truncated file)");
  const uint32_t magic_value = (uint32_t(magic[0]) << 24) | (uint32_t(magic[1]) << 16) | (uint32_t(magic[2]) << 8) | magic[3];
  const int ndim = magic[3];
  const std::string expected_magic =
      expected_ndim > 0 ? hex32(0x0800u | uint32_t(expected_ndim)) + " (unsigned bytes, " + std::to_string(expected_ndim) + " dims)"
                        : "0x000008DD (unsigned bytes, DD dims)";
  if (magic[0] != 0 || magic[1] != 0 || magic[2] != 0x08 || ndim == 0 || (expected_ndim > 0 && ndim != expected_ndim))
    io_error(path, "IDX magic " + expected_magic, hex32(magic_value));

  IdxArray array;
  uint64_t payload = 1;
  for (int d = 0; d < ndim; ++d) {
    uint8_t b[4];
    got = in.read(b, 4);
    if (got < 4)
      io_error(path, std::to_string(ndim) + " 4-byte dimension sizes",
               "the file ending in dimension " + std::to_string(d) + " (truncated file)");
    uint32_t size = (uint32_t(b[0]) << 24) | (uint32_t(b[1]) << 16) | (uint32_t(b[2]) << 8) | b[3];
    array.dims.push_back(size);
    if (payload != 0 && __builtin_mul_overflow(payload, uint64_t(size), &payload)) payload = UINT64_MAX;
  }
  const uint64_t header = 4 + 4 * uint64_t(ndim);
  const std::string what = std::to_string(payload) + " data bytes for dims " + dims_str(array.dims);
  if (payload > kMaxIdxPayload)
    io_error(path, "at most " + std::to_string(kMaxIdxPayload) + " data bytes", "dims " + dims_str(array.dims));
  if (!in.gzip() && uint64_t(in.plain_size()) < header + payload)
    io_error(path, what, std::to_string(in.plain_size() - header) + " (truncated file)");

  // Grow as data arrives, so a gzip file whose header lies costs no more memory than it holds.
  const size_t chunk = size_t(16) << 20;
  while (array.data.size() < payload) {
    size_t old = array.data.size();
    size_t want = std::min<uint64_t>(chunk, payload - old);
    array.data.resize(old + want);
    got = in.read(array.data.data() + old, want);
    if (got < want) io_error(path, what, std::to_string(old + got) + " (truncated file)");
  }
  uint8_t extra[4096];
  size_t trailing = in.read(extra, sizeof extra);
  if (trailing > 0) {
    std::string count = in.gzip() ? "more" : std::to_string(in.plain_size() - int64_t(header + payload));
    io_error(path, what, count + " trailing bytes after them");
  }
  return array;
}

IdxArray read_idx_images(const std::string& path) { return read_idx(path, 3); }
IdxArray read_idx_labels(const std::string& path) { return read_idx(path, 1); }

void write_idx(const std::string& path, const IdxArray& array) {
  if (array.dims.empty() || array.dims.size() > 255)
    io_error(path, "1 to 255 dims to write", std::to_string(array.dims.size()));
  uint64_t payload = 1;
  for (int64_t d : array.dims) {
    if (d < 0 || d > int64_t(UINT32_MAX)) io_error(path, "dims in [0, 2^32) to write", dims_str(array.dims));
    if (__builtin_mul_overflow(payload, uint64_t(d), &payload)) io_error(path, "dims whose product fits 64 bits", dims_str(array.dims));
  }
  if (payload != array.data.size())
    io_error(path, std::to_string(payload) + " bytes for dims " + dims_str(array.dims),
             std::to_string(array.data.size()) + " bytes to write");
  std::vector<uint8_t> header;
  append_be32(header, 0x0800u | uint32_t(array.dims.size()));
  for (int64_t d : array.dims) append_be32(header, uint32_t(d));
  write_file_atomic(path, [&](const ByteSink& sink) {
    sink(header.data(), header.size());
    sink(array.data.data(), array.data.size());
  });
}

void write_idx_images(const std::string& path, const uint8_t* data, int64_t n, int64_t rows, int64_t cols) {
  if (n < 0 || rows < 0 || cols < 0)
    io_error(path, "non-negative image count and size", dims_str({n, rows, cols}));
  IdxArray a;
  a.dims = {n, rows, cols};
  a.data.assign(data, data + n * rows * cols);
  write_idx(path, a);
}

void write_idx_images(const std::string& path, const Tensor<float>& images) {
  std::vector<uint8_t> pixels = tensor_to_pixels(images);
  const Shape& s = images.shape();
  IdxArray a{std::move(pixels), {s[0], s[s.size() - 2], s[s.size() - 1]}};
  write_idx(path, a);
}

void write_idx_labels(const std::string& path, const std::vector<uint8_t>& labels) {
  write_idx(path, IdxArray{labels, {int64_t(labels.size())}});
}

Tensor<float> idx_images_to_tensor(const IdxArray& images, int64_t first, int64_t count) {
  // The product checked for overflow: the dims of a hostile file reach 2^32 each (a zero among them
  // lets such a file pass read_idx with an empty payload).
  int64_t bytes = -1;
  if (images.dims.size() == 3 && (__builtin_mul_overflow(images.dims[0], images.dims[1], &bytes) ||
                                  __builtin_mul_overflow(bytes, images.dims[2], &bytes)))
    bytes = -1;
  if (images.dims.size() != 3 || bytes < 0 || int64_t(images.data.size()) != bytes)
    shape_error("idx_images_to_tensor", "images [n, rows, cols] with n*rows*cols bytes",
                dims_str(images.dims) + " with " + std::to_string(images.data.size()) + " bytes");
  const int64_t n = images.dims[0], rows = images.dims[1], cols = images.dims[2];
  if (count < 0) count = n - first;
  if (first < 0 || count < 0 || first + count > n)
    shape_error("idx_images_to_tensor", "images in [0, " + std::to_string(n) + ")",
                "first " + std::to_string(first) + ", count " + std::to_string(count));
  // One table of the 256 possible values: the same float for the same byte everywhere.
  float table[256];
  for (int k = 0; k < 256; ++k) table[k] = 2.0f * float(k) / 255.0f - 1.0f;
  Tensor<float> out({count, 1, rows, cols});
  const uint8_t* src = images.data.data() + first * rows * cols;
  float* dst = out.data();
  for (int64_t i = 0, m = count * rows * cols; i < m; ++i) dst[i] = table[src[i]];
  return out;
}

uint8_t pixel_from_unit(float x) {
  if (!(x == x)) return 0;  // NaN: no meaningful pixel; black rather than undefined behaviour
  float v = std::min(1.0f, std::max(-1.0f, x));
  return static_cast<uint8_t>(std::lround((v + 1.0f) * 127.5f));
}

std::vector<uint8_t> tensor_to_pixels(const Tensor<float>& images) {
  const Shape& s = images.shape();
  if (!(s.size() == 3 || (s.size() == 4 && s[1] == 1)))
    shape_error("tensor_to_pixels", "images [n, 1, H, W] or [n, H, W]", shape_str(s));
  Tensor<float> c = images.contiguous();
  std::vector<uint8_t> out(static_cast<size_t>(c.numel()));
  for (size_t i = 0; i < out.size(); ++i) out[i] = pixel_from_unit(c.data()[i]);
  return out;
}

}  // namespace dd
