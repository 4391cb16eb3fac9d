#include "tensor/image_filter.h"

#include <algorithm>
#include <cmath>

namespace dd {

namespace {
float clip(float v) { return std::min(1.f, std::max(-1.f, v)); }
}  // namespace

Tensor<float> take(const Tensor<float>& images, const std::vector<int64_t>& idx) {
  const Tensor<float> src = images.contiguous();
  const int64_t per = src.numel() / src.size(0);
  Shape s = src.shape();
  s[0] = static_cast<int64_t>(idx.size());
  Tensor<float> out(s);
  for (size_t i = 0; i < idx.size(); ++i) std::copy_n(src.data() + idx[i] * per, per, out.data() + static_cast<int64_t>(i) * per);
  return out;
}

Tensor<float> gaussian_blur(const Tensor<float>& images, double sigma) {
  const Tensor<float> src = images.contiguous();
  const int64_t n = src.size(0) * src.size(1), h = src.size(2), w = src.size(3);
  const int r = static_cast<int>(std::ceil(3 * sigma));
  std::vector<double> k(2 * r + 1);
  double total = 0;
  for (int i = -r; i <= r; ++i) total += k[i + r] = std::exp(-0.5 * i * i / (sigma * sigma));
  for (double& v : k) v /= total;
  Tensor<float> tmp(src.shape()), out(src.shape());
  auto at = [](int64_t v, int64_t size) { return std::min(size - 1, std::max<int64_t>(0, v)); };
  for (int64_t img = 0; img < n; ++img) {
    const float* a = src.data() + img * h * w;
    float* t = tmp.data() + img * h * w;
    float* o = out.data() + img * h * w;
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        double s = 0;
        for (int i = -r; i <= r; ++i) s += k[i + r] * a[y * w + at(x + i, w)];
        t[y * w + x] = static_cast<float>(s);
      }
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        double s = 0;
        for (int i = -r; i <= r; ++i) s += k[i + r] * t[at(y + i, h) * w + x];
        o[y * w + x] = clip(static_cast<float>(s));
      }
  }
  return out;
}

Tensor<float> add_noise(const Tensor<float>& images, double sigma, Rng& rng) {
  Tensor<float> out = images.contiguous().clone();
  const Tensor<float> z = rng.normal<float>(out.shape());
  for (int64_t i = 0; i < out.numel(); ++i) out.data()[i] = clip(out.data()[i] + static_cast<float>(sigma) * z.data()[i]);
  return out;
}

Tensor<float> shift(const Tensor<float>& images, int dy, int dx) {
  const Tensor<float> src = images.contiguous();
  const int64_t n = src.size(0) * src.size(1), h = src.size(2), w = src.size(3);
  Tensor<float> out = Tensor<float>::full(src.shape(), -1.f);
  for (int64_t img = 0; img < n; ++img)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) {
        const int64_t sy = y - dy, sx = x - dx;
        if (sy >= 0 && sy < h && sx >= 0 && sx < w) out.data()[(img * h + y) * w + x] = src.data()[(img * h + sy) * w + sx];
      }
  return out;
}

Tensor<float> gaussian_noise_images(int64_t n, Rng& rng) {
  Tensor<float> z = rng.normal<float>({n, 1, 28, 28});
  for (int64_t i = 0; i < z.numel(); ++i) z.data()[i] = clip(z.data()[i]);
  return z;
}

Tensor<float> uniform_noise_images(int64_t n, Rng& rng) { return rng.uniform<float>({n, 1, 28, 28}, -1.f, 1.f); }

}  // namespace dd
