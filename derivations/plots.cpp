// --plots DIR: the pictures of docs/derivations.md.
#include <algorithm>
#include <cmath>
#include <vector>

#include "derivations/checks.h"
#include <cstdio>
#include <filesystem>
#include <string>

#include "ddpm/diffusion.h"
#include "derivations/derivations.h"
#include "tensor/io/idx.h"
#include "tensor/io/png.h"

namespace dd::derivations {

namespace fs = std::filesystem;

using namespace dd::ddpm;

void write_plots(const std::string& dir, const std::string& data_dir, std::FILE* out) {
  fs::create_directories(dir);
  const Schedule lin = linear_schedule(1000), cos = cosine_schedule(1000);
  auto series = [](const std::string& name, const std::vector<double>& v, Rgb color, size_t from = 1) {
    PlotSeries p;
    p.name = name;
    p.color = color;
    for (size_t t = from; t < v.size(); ++t) p.xs.push_back(static_cast<double>(t)), p.ys.push_back(v[t]);
    return p;
  };
  const Rgb blue{31, 119, 180}, orange{255, 127, 14}, green{44, 160, 44}, red{214, 39, 40};
  auto snr = [](const Schedule& s) {
    std::vector<double> r(s.abar.size());
    for (size_t t = 0; t < r.size(); ++t) r[t] = s.abar[t] / (1 - s.abar[t]);
    return r;
  };
  PlotOptions o;
  o.x_label = "t";
  o.log_y = true;
  o.title = "beta_t (T = 1000)";
  write_line_plot_png(dir + "/schedule_beta.png", {series("linear", lin.betas, blue), series("cosine", cos.betas, orange)},
                      o);
  o.log_y = false;
  o.title = "abar_t (T = 1000)";
  write_line_plot_png(dir + "/schedule_abar.png", {series("linear", lin.abar, blue), series("cosine", cos.abar, orange)},
                      o);
  o.log_y = true;
  o.title = "signal to noise abar_t / (1 - abar_t) (T = 1000)";
  write_line_plot_png(dir + "/schedule_snr.png", {series("linear", snr(lin), blue), series("cosine", snr(cos), orange)},
                      o);

  // eq. (12) weights, divided by their mean over t = 2..T, against L_simple's weight 1
  auto normalized = [](std::vector<double> w) {
    double m = 0;
    for (size_t t = 2; t < w.size(); ++t) m += w[t];
    m /= static_cast<double>(w.size() - 2);
    for (double& a : w) a /= m;
    return w;
  };
  o.title = "eq. 12 weights / their mean vs L_simple (uniform), linear T = 1000";
  write_line_plot_png(dir + "/eq12_weights.png",
                      {series("sigma2 = betatilde_t", normalized(lin.eps_weight_small), blue, 2),
                       series("sigma2 = beta_t", normalized(lin.eps_weight_large), orange, 2),
                       series("L_simple: 1 for every t", std::vector<double>(lin.T + 1, 1.0), green, 2)},
                      o);
  // betatilde_t and beta_t differ only while abar_{t-1} is near 1: the first steps; then the ratio over all t
  auto head = [](const std::vector<double>& v) { return std::vector<double>(v.begin(), v.begin() + 101); };
  o.title = "betatilde_t vs beta_t, the first 100 steps (T = 1000)";
  write_line_plot_png(dir + "/betatilde_vs_beta.png",
                      {series("beta_t linear", head(lin.betas), blue, 2),
                       series("betatilde_t linear", head(lin.posterior_variance), orange, 2),
                       series("beta_t cosine", head(cos.betas), green, 2),
                       series("betatilde_t cosine", head(cos.posterior_variance), red, 2)},
                      o);
  auto ratio = [](const Schedule& s) {
    std::vector<double> r(s.betas.size(), 0.0);
    for (size_t t = 2; t < r.size(); ++t) r[t] = s.posterior_variance[t] / s.betas[t];
    return r;
  };
  o.log_y = false;
  o.title = "betatilde_t / beta_t = (1 - abar_t-1) / (1 - abar_t) (T = 1000)";
  write_line_plot_png(dir + "/betatilde_over_beta.png",
                      {series("linear", ratio(lin), blue, 2), series("cosine", ratio(cos), orange, 2)}, o);
  if (out) std::fprintf(out, "wrote %s/: schedule_beta.png schedule_abar.png schedule_snr.png eq12_weights.png\n", dir.c_str());
  if (out) std::fprintf(out, "      betatilde_vs_beta.png betatilde_over_beta.png\n");

  // q(x_t | x0) on a real digit: row 1 linear, row 2 cosine, the same noise
  std::string path;
  for (const char* name : {"t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz", "train-images-idx3-ubyte",
                           "train-images-idx3-ubyte.gz"})
    if (fs::exists(fs::path(data_dir) / name)) {
      path = (fs::path(data_dir) / name).string();
      break;
    }
  if (path.empty()) {
    if (out) std::fprintf(out, "skipped q_xt_digit.png: no MNIST images in %s/ (give --data DIR holding t10k-images-idx3-ubyte)\n",
                data_dir.c_str());
    return;
  }
  const TensorF digit = idx_images_to_tensor(read_idx_images(path), 0, 1);  // [1, 1, 28, 28] in [-1, 1]
  const std::vector<int64_t> ts = {0, 10, 50, 100, 200, 300, 500, 700, 1000};
  Rng rng(7);
  const TensorF noise = rng.normal<float>(digit.shape());
  const int64_t P = digit.numel(), K = static_cast<int64_t>(ts.size());
  TensorF grid({2 * K, 1, 28, 28});
  for (int row = 0; row < 2; ++row)
    for (int64_t k = 0; k < K; ++k) {
      const TensorF xt = ts[k] == 0 ? digit : q_sample(row == 0 ? lin : cos, digit, {ts[k]}, noise);
      std::copy(xt.data(), xt.data() + P, grid.data() + (row * K + k) * P);
    }
  write_png_grid(dir + "/q_xt_digit.png", grid, static_cast<int>(K), 2, 128);
  if (out) std::fprintf(out, "wrote %s/q_xt_digit.png: %s, columns t = 0 10 50 100 200 300 500 700 1000; row 1 linear, 2 cosine\n",
              dir.c_str(), path.c_str());
}

}  // namespace dd::derivations
