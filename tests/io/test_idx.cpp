// IDX (MNIST) files: round trips plain and gzip, the pixel mapping, and clean errors for truncated
// files, wrong magic, wrong counts and trailing bytes.
#include <doctest/doctest.h>
#include <zlib.h>

#include <cmath>
#include <limits>

#include "io_test_util.h"
#include "tensor/io/atomic_file.h"
#include "tensor/io/idx.h"

using namespace dd;
using dd_test::contains;
using dd_test::io_error_message;
using dd_test::ScratchDir;

namespace {

// n images of rows x cols with pixel (i, r, c) = (7i + 3r + c) mod 256: every image different.
IdxArray pattern_images(int64_t n, int64_t rows, int64_t cols) {
  IdxArray a;
  a.dims = {n, rows, cols};
  for (int64_t i = 0; i < n; ++i)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < cols; ++c) a.data.push_back(uint8_t((7 * i + 3 * r + c) % 256));
  return a;
}

std::vector<uint8_t> bytes_of(const std::string& path) { return read_file_bytes(path); }

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) { write_file_atomic(path, bytes); }

// gzip-compresses bytes into path with zlib, as the .gz MNIST files are.
void write_gz(const std::string& path, const std::vector<uint8_t>& bytes) {
  gzFile gz = gzopen(path.c_str(), "wb");
  REQUIRE(gz != nullptr);
  REQUIRE(gzwrite(gz, bytes.data(), unsigned(bytes.size())) == int(bytes.size()));
  REQUIRE(gzclose(gz) == Z_OK);
}

}  // namespace

TEST_CASE("IDX images and labels round trip, with the exact header bytes") {
  ScratchDir dir;
  IdxArray images = pattern_images(5, 28, 28);
  write_idx_images(dir.file("img"), images.data.data(), 5, 28, 28);
  std::vector<uint8_t> raw = bytes_of(dir.file("img"));
  REQUIRE(raw.size() == 16 + 5 * 28 * 28);
  CHECK(std::vector<uint8_t>(raw.begin(), raw.begin() + 16) ==
        std::vector<uint8_t>{0, 0, 8, 3, 0, 0, 0, 5, 0, 0, 0, 28, 0, 0, 0, 28});
  IdxArray back = read_idx_images(dir.file("img"));
  CHECK(back.dims == std::vector<int64_t>{5, 28, 28});
  CHECK(back.data == images.data);

  std::vector<uint8_t> labels = {7, 2, 1, 0, 4, 1, 4, 9, 5, 9};
  write_idx_labels(dir.file("lbl"), labels);
  std::vector<uint8_t> raw_labels = bytes_of(dir.file("lbl"));
  CHECK(std::vector<uint8_t>(raw_labels.begin(), raw_labels.begin() + 8) == std::vector<uint8_t>{0, 0, 8, 1, 0, 0, 0, 10});
  IdxArray lb = read_idx_labels(dir.file("lbl"));
  CHECK(lb.dims == std::vector<int64_t>{10});
  CHECK(lb.data == labels);
  CHECK(dir.listing() == std::vector<std::string>{"img", "lbl"});
}

TEST_CASE("gzip IDX files are read, recognised by content not by name") {
  ScratchDir dir;
  IdxArray images = pattern_images(300, 28, 28);  // big enough to span several gzip blocks
  write_idx(dir.file("plain"), images);
  std::vector<uint8_t> raw = bytes_of(dir.file("plain"));
  write_gz(dir.file("images.gz"), raw);
  write_gz(dir.file("no-extension"), raw);
  CHECK(bytes_of(dir.file("images.gz")).size() < raw.size());
  for (const char* name : {"images.gz", "no-extension"}) {
    IdxArray back = read_idx_images(dir.file(name));
    CHECK(back.dims == images.dims);
    CHECK(back.data == images.data);
  }
  // a plain file named .gz is read as plain
  write_bytes(dir.file("fake.gz"), raw);
  CHECK(read_idx_images(dir.file("fake.gz")).data == images.data);
}

TEST_CASE("a truncated IDX file is rejected, plain or gzip, naming the file") {
  ScratchDir dir;
  IdxArray images = pattern_images(3, 4, 5);
  write_idx(dir.file("full"), images);
  std::vector<uint8_t> raw = bytes_of(dir.file("full"));
  for (size_t cut = 0; cut < raw.size(); ++cut) {
    CAPTURE(cut);
    std::vector<uint8_t> part(raw.begin(), raw.begin() + cut);
    write_bytes(dir.file("cut"), part);
    std::string m = io_error_message([&] { read_idx_images(dir.file("cut")); });
    CHECK(contains(m, dir.file("cut") + ": expected"));
    if (cut >= 16) CHECK(contains(m, "60 data bytes for dims [3, 4, 5], found " + std::to_string(cut - 16) + " (truncated file)"));
    write_gz(dir.file("cut.gz"), part);
    CHECK(contains(io_error_message([&] { read_idx_images(dir.file("cut.gz")); }), "truncated"));
  }
  // a gzip stream cut short (its own end missing) is an error, not a silently short read
  write_gz(dir.file("whole.gz"), raw);
  std::vector<uint8_t> gz = bytes_of(dir.file("whole.gz"));
  for (size_t cut : {size_t(3), gz.size() / 2, gz.size() - 9, gz.size() - 1}) {
    CAPTURE(cut);
    write_bytes(dir.file("gzcut.gz"), std::vector<uint8_t>(gz.begin(), gz.begin() + cut));
    CHECK(contains(io_error_message([&] { read_idx_images(dir.file("gzcut.gz")); }), dir.file("gzcut.gz")));
  }
}

TEST_CASE("wrong magic, wrong dimension count and wrong data type are rejected") {
  ScratchDir dir;
  IdxArray labels{{1, 2, 3}, {3}};
  write_idx(dir.file("labels"), labels);
  std::string m = io_error_message([&] { read_idx_images(dir.file("labels")); });
  CHECK(contains(m, "expected IDX magic 0x00000803 (unsigned bytes, 3 dims), found 0x00000801"));
  m = io_error_message([&] { read_idx_labels(dir.file("nonexistent")); });
  CHECK(contains(m, dir.file("nonexistent")));

  std::vector<uint8_t> raw = bytes_of(dir.file("labels"));
  raw[2] = 0x0D;  // IDX type float
  write_bytes(dir.file("float"), raw);
  CHECK(contains(io_error_message([&] { read_idx_labels(dir.file("float")); }), "found 0x00000D01"));
  raw[2] = 0x08;
  raw[0] = 0x1f;  // not a gzip magic (second byte differs) and not an IDX magic
  write_bytes(dir.file("junk"), raw);
  CHECK(contains(io_error_message([&] { read_idx(dir.file("junk")); }), "found 0x1F000801"));
  write_bytes(dir.file("text"), std::vector<uint8_t>{'h', 'e', 'l', 'l', 'o', '\n'});
  CHECK(contains(io_error_message([&] { read_idx(dir.file("text")); }), "IDX magic"));
  CHECK(contains(io_error_message([&] { read_idx(dir.path()); }), dir.path()));
}

TEST_CASE("a header count that disagrees with the data: too many images is truncated, too few leaves trailing bytes") {
  ScratchDir dir;
  IdxArray images = pattern_images(4, 2, 2);
  write_idx(dir.file("ok"), images);
  std::vector<uint8_t> raw = bytes_of(dir.file("ok"));
  raw[7] = 5;  // claims 5 images, holds 4
  write_bytes(dir.file("more"), raw);
  CHECK(contains(io_error_message([&] { read_idx_images(dir.file("more")); }),
                 "expected 20 data bytes for dims [5, 2, 2], found 16 (truncated file)"));
  raw[7] = 3;  // claims 3 images, holds 4
  write_bytes(dir.file("fewer"), raw);
  CHECK(contains(io_error_message([&] { read_idx_images(dir.file("fewer")); }),
                 "expected 12 data bytes for dims [3, 2, 2], found 4 trailing bytes after them"));
  write_gz(dir.file("fewer.gz"), raw);
  CHECK(contains(io_error_message([&] { read_idx_images(dir.file("fewer.gz")); }), "trailing bytes"));
  // a header claiming terabytes is refused without trying to allocate them
  raw[4] = raw[5] = raw[6] = raw[7] = 0xff;
  raw[11] = raw[15] = 0xff;
  write_bytes(dir.file("huge"), raw);
  CHECK(contains(io_error_message([&] { read_idx_images(dir.file("huge")); }), "at most"));
  write_gz(dir.file("huge.gz"), raw);
  CHECK(contains(io_error_message([&] { read_idx_images(dir.file("huge.gz")); }), "at most"));
}

TEST_CASE("pixels map k -> 2k/255 - 1 and back exactly; generated values are clipped and rounded") {
  IdxArray all;
  all.dims = {1, 16, 16};
  for (int k = 0; k < 256; ++k) all.data.push_back(uint8_t(k));
  TensorF x = idx_images_to_tensor(all);
  CHECK(x.shape() == Shape{1, 1, 16, 16});
  CHECK(x.flat(0) == -1.0f);
  CHECK(x.flat(255) == 1.0f);
  for (int k = 0; k < 256; ++k) CHECK(x.flat(k) == doctest::Approx(2.0 * k / 255.0 - 1.0).epsilon(1e-6));
  CHECK(tensor_to_pixels(x) == all.data);

  CHECK(pixel_from_unit(-3.0f) == 0);
  CHECK(pixel_from_unit(7.0f) == 255);
  CHECK(pixel_from_unit(0.0f) == 128);  // 127.5 rounds half away from zero
  CHECK(pixel_from_unit(std::numeric_limits<float>::infinity()) == 255);
  CHECK(pixel_from_unit(std::nanf("")) == 0);
  CHECK(tensor_to_pixels(TensorF::from({1, 1, 1, 3}, {-1.5f, 0.999f, 1.5f})) == std::vector<uint8_t>{0, 255, 255});

  IdxArray images = pattern_images(6, 3, 2);
  TensorF batch = idx_images_to_tensor(images, 2, 3);
  CHECK(batch.shape() == Shape{3, 1, 3, 2});
  CHECK(tensor_to_pixels(batch) == std::vector<uint8_t>(images.data.begin() + 12, images.data.begin() + 30));
  CHECK_THROWS_AS(idx_images_to_tensor(images, 4, 3), ShapeError);
  CHECK_THROWS_AS(tensor_to_pixels(TensorF::zeros({2, 3, 4, 4})), ShapeError);
}

TEST_CASE("generated images in [-1, 1] are written as an IDX image file") {
  ScratchDir dir;
  TensorF samples = TensorF::from({2, 1, 1, 3}, {-1.0f, 0.0f, 1.0f, 2.0f, -0.5f, 2.0f / 255.0f - 1.0f});
  write_idx_images(dir.file("samples"), samples);
  IdxArray back = read_idx_images(dir.file("samples"));
  CHECK(back.dims == std::vector<int64_t>{2, 1, 3});
  CHECK(back.data == std::vector<uint8_t>{0, 128, 255, 255, 64, 1});
}

TEST_CASE("write_idx refuses data that does not match its dims") {
  ScratchDir dir;
  IdxArray bad{{1, 2, 3}, {2, 2}};
  CHECK(contains(io_error_message([&] { write_idx(dir.file("bad"), bad); }), "expected 4 bytes for dims [2, 2]"));
  CHECK(dir.listing().empty());
}

TEST_CASE("fuzz finding: dims whose product overflows 64 bits are a shape error in idx_images_to_tensor") {
  // tests/fuzz/regressions/idx/crash-6794...: dims [4294934268, 2951675408, 0] (an empty payload passes
  // read_idx) made n * rows * cols overflow.
  dd::IdxArray a{{}, {4294934268LL, 2951675408LL, 0}};
  CHECK_THROWS(dd::idx_images_to_tensor(a));
  dd::IdxArray b{{}, {4294934268LL, 2951675408LL, 4294934268LL}};
  CHECK_THROWS(dd::idx_images_to_tensor(b));
}
