// --plots DIR: the pictures of docs/derivations.md.
#include <algorithm>
#include <cmath>
#include <vector>

#include "derivations/checks.h"
#include <cstdio>
#include <filesystem>
#include <string>

#include "ddpm/diffusion.h"
#include "ddpm/gaussian.h"
#include "ddpm/sample.h"
#include "derivations/toy.h"
#include "derivations/derivations.h"
#include "tensor/io/idx.h"
#include "tensor/io/png.h"

namespace dd::derivations {

namespace fs = std::filesystem;

using namespace dd::ddpm;

namespace {

// The toy model's pictures: chains of Algorithm 2 and of eq. (2), one reverse step's densities, the decoder's bins.
void write_toy_plots(const std::string& dir, std::FILE* out) {
  const Schedule s = linear_schedule(kT, 0.05, 0.5);
  const Rgb colors[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40}, {148, 103, 189}, {140, 86, 75}};
  const Rgb grey{150, 150, 150};
  PlotOptions o;
  o.x_label = "t (the sampler runs right to left)";

  // toy_trajectory.png: 3 sampler chains (linear network, data N(0, 0.25)) and 3 forward paths
  std::vector<PlotSeries> lines;
  {
    std::vector<std::vector<double>> chains(3, std::vector<double>(kT + 1, 0.0));
    SampleOptions so;
    so.variance = VarianceType::Large;
    so.clip_x0 = false;
    so.on_step = [&](int64_t t, const TensorF& x_t, const TensorF&) {
      for (int n = 0; n < 3; ++n) chains[n][t] = x_t.data()[n];
    };
    Rng rng(40);
    const TensorF x0 = sample_ancestral(s, linear_denoiser(), {3, 1, 1, 1}, rng, so);
    for (int n = 0; n < 3; ++n) {
      chains[n][0] = x0.data()[n];
      PlotSeries p;
      p.name = "sampler chain " + std::to_string(n + 1);
      p.color = colors[n];
      for (int64_t t = 0; t <= kT; ++t) p.xs.push_back(static_cast<double>(t)), p.ys.push_back(chains[n][t]);
      lines.push_back(p);
    }
    Rng frng(41);
    const auto paths = forward_paths(0.5, 3, frng);
    for (int n = 0; n < 3; ++n) {
      PlotSeries p;
      p.name = "forward path " + std::to_string(n + 1) + " from x0 = 0.5";
      p.color = colors[3 + n];
      for (int64_t t = 0; t <= kT; ++t) p.xs.push_back(static_cast<double>(t)), p.ys.push_back(paths[t][n]);
      lines.push_back(p);
    }
    for (double sign : {-2.0, 2.0}) {
      PlotSeries p;
      p.name = sign > 0 ? "+-2 sd of q(x_t)" : "";
      p.color = grey;
      for (int64_t t = 0; t <= kT; ++t) {
        const double v = abar_hand(t) * kDataStd * kDataStd + 1 - abar_hand(t);
        p.xs.push_back(static_cast<double>(t)), p.ys.push_back(sign * std::sqrt(v));
      }
      lines.push_back(p);
    }
  }
  o.title = "the toy model, T = 10: Algorithm 2 chains and eq. (2) paths";
  o.y_label = "x_t";
  write_line_plot_png(dir + "/toy_trajectory.png", lines, o);

  // posterior_vs_model.png: t = 5, x_5 = 0.4, binary data x0 = -1 or 1
  {
    const int64_t t = 5;
    const double xt = 0.4;
    double w[2];
    for (int k = 0; k < 2; ++k) w[k] = std::exp(log_normal(xt, (k ? 1 : -1) * std::sqrt(abar_hand(t)), 1 - abar_hand(t)));
    const double wsum = w[0] + w[1];
    w[0] /= wsum, w[1] /= wsum;  // q(x0 | x_5)
    PlotSeries minus, plus, mix, gauss;
    minus.name = "q(x0=-1|x5) q(x4|x5, x0=-1)";
    plus.name = "q(x0=+1|x5) q(x4|x5, x0=+1)";
    mix.name = "q(x4|x5), their sum";
    gauss.name = "the Gaussian with its mean and variance";
    minus.color = colors[0], plus.color = colors[1], mix.color = colors[3], gauss.color = colors[2];
    double mean = 0, second = 0;
    for (int k = 0; k < 2; ++k) {
      const double m = mutilde_hand(t, k ? 1.0 : -1.0, xt);
      mean += w[k] * m, second += w[k] * (betatilde_hand(t) + m * m);
    }
    const double var = second - mean * mean;
    for (double x = -2.0; x <= 2.0; x += 0.01) {
      const double a = w[0] * std::exp(log_normal(x, mutilde_hand(t, -1.0, xt), betatilde_hand(t)));
      const double b = w[1] * std::exp(log_normal(x, mutilde_hand(t, 1.0, xt), betatilde_hand(t)));
      for (PlotSeries* p : {&minus, &plus, &mix, &gauss}) p->xs.push_back(x);
      minus.ys.push_back(a), plus.ys.push_back(b), mix.ys.push_back(a + b);
      gauss.ys.push_back(std::exp(log_normal(x, mean, var)));
    }
    PlotOptions po;
    po.title = "one reverse step, t = 5, x5 = 0.4, data x0 = -1 or 1";
    po.x_label = "x4";
    po.y_label = "density";
    write_line_plot_png(dir + "/posterior_vs_model.png", {minus, plus, mix, gauss}, po);
  }

  // decoder_bins.png: N(0.3, 0.05^2) and the mass of each 8-bit bin / bin width
  {
    const double mu = 0.3, sd = 0.05;
    PlotSeries density, bins;
    density.name = "N(x; 0.3, 0.05^2)";
    bins.name = "bin mass / bin width (eq. 13)";
    density.color = colors[0], bins.color = colors[1];
    for (double x = 0.1; x <= 0.5; x += 0.001) density.xs.push_back(x), density.ys.push_back(std::exp(log_normal(x, mu, sd * sd)));
    for (int k = 0; k <= 255; ++k) {
      const double x = 2.0 * k / 255 - 1;
      if (x < 0.1 || x > 0.5) continue;
      const double h = std::exp(discretized_gaussian_log_likelihood(x, mu, std::log(sd))) / (2.0 / 255);
      bins.xs.push_back(x - 1.0 / 255), bins.ys.push_back(h);  // a step: flat over the bin
      bins.xs.push_back(x + 1.0 / 255), bins.ys.push_back(h);
    }
    PlotOptions po;
    po.title = "the discretized decoder: 8-bit bins of width 2/255";
    po.x_label = "pixel value x (k = 0..255 at 2k/255 - 1)";
    po.y_label = "density";
    write_line_plot_png(dir + "/decoder_bins.png", {density, bins}, po);
  }
  if (out)
    std::fprintf(out, "wrote %s/: toy_trajectory.png posterior_vs_model.png decoder_bins.png\n", dir.c_str());
}

}  // namespace

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
  o.y_label = "beta_t";
  write_line_plot_png(dir + "/schedule_beta.png", {series("linear", lin.betas, blue), series("cosine", cos.betas, orange)},
                      o);
  o.log_y = false;
  o.title = "abar_t (T = 1000)";
  o.y_label = "abar_t";
  write_line_plot_png(dir + "/schedule_abar.png", {series("linear", lin.abar, blue), series("cosine", cos.abar, orange)},
                      o);
  o.log_y = true;
  o.title = "signal to noise abar_t / (1 - abar_t) (T = 1000)";
  o.y_label = "SNR(t)";
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
  o.y_label = "weight / mean weight";
  write_line_plot_png(dir + "/eq12_weights.png",
                      {series("sigma2 = betatilde_t", normalized(lin.eps_weight_small), blue, 2),
                       series("sigma2 = beta_t", normalized(lin.eps_weight_large), orange, 2),
                       series("L_simple: 1 for every t", std::vector<double>(lin.T + 1, 1.0), green, 2)},
                      o);
  // betatilde_t and beta_t differ only while abar_{t-1} is near 1: the first steps; then the ratio over all t
  auto head = [](const std::vector<double>& v) { return std::vector<double>(v.begin(), v.begin() + 101); };
  o.title = "betatilde_t vs beta_t, the first 100 steps (T = 1000)";
  o.y_label = "variance";
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
  o.y_label = "betatilde_t / beta_t";
  write_line_plot_png(dir + "/betatilde_over_beta.png",
                      {series("linear", ratio(lin), blue, 2), series("cosine", ratio(cos), orange, 2)}, o);
  if (out) std::fprintf(out, "wrote %s/: schedule_beta.png schedule_abar.png schedule_snr.png eq12_weights.png\n", dir.c_str());
  if (out) std::fprintf(out, "      betatilde_vs_beta.png betatilde_over_beta.png\n");

  write_toy_plots(dir, out);

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
