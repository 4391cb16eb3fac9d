// The IDX reader (tensor/io/idx.h), plain and gzip. First byte 0: the rest is the file as it is
// (a plain or a gzip file); 1: the rest is gzip-compressed first, so the IDX parser behind the
// decompressor sees structured headers too. Then the image / label readers and the conversion.
#include <zlib.h>

#include <stdexcept>

#include "tensor/io/idx.h"
#include "tests/fuzz/fuzz_target.h"

DD_FUZZ_TARGET(idx) {
  if (size < 1) return 0;
  std::vector<uint8_t> file(data + 1, data + size);
  if (data[0] & 1) {
    uLongf n = compressBound(file.size()) + 32;
    std::vector<uint8_t> gz(n);
    z_stream zs{};
    if (deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return 0;  // 15 + 16: gzip wrapper
    zs.next_in = file.data();
    zs.avail_in = static_cast<uInt>(file.size());
    zs.next_out = gz.data();
    zs.avail_out = static_cast<uInt>(gz.size());
    deflate(&zs, Z_FINISH);
    gz.resize(zs.total_out);
    deflateEnd(&zs);
    file = gz;
  }
  const std::string path = dd_fuzz::as_file("idx", file.data(), file.size());
  try {
    dd::IdxArray a = dd::read_idx(path);
    (void)a;
  } catch (const std::exception&) {
  }
  try {
    dd::IdxArray images = dd::read_idx_images(path);
    if (!images.dims.empty() && images.dims[0] > 0) {
      dd::Tensor<float> x = dd::idx_images_to_tensor(images, 0, 1);
      (void)x;
    }
  } catch (const std::exception&) {
  }
  try {
    dd::IdxArray labels = dd::read_idx_labels(path);
    (void)labels;
  } catch (const std::exception&) {
  }
  return 0;
}
