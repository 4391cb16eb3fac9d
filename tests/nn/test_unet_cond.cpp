// The class-conditional UNet (classifier-free guidance, Ho & Salimans 2022): the label embedding is
// one extra parameter after the reference's, its path has float64 gradients, and the labels change
// the output while the null label is the unlabeled call.
#include <doctest/doctest.h>

#include <cmath>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "nn/unet.h"
#include "tests/tiny_unet.h"

using namespace dd;

namespace {
UNetConfig tiny_cond() {
  UNetConfig c = dd_test::tiny_unet_config();
  c.num_classes = 3;
  return c;
}
}  // namespace

TEST_CASE("conditional UNet: the reference's parameters unchanged (names, order, initial values) plus label_emb.weight last") {
  UNetConfig cond;
  cond.num_classes = 10;
  Rng r1(1), r2(1);
  UNet<float> plain(UNetConfig{}, r1), labelled(cond, r2);
  const auto a = plain.named_parameters(), b = labelled.named_parameters();
  REQUIRE(b.size() == a.size() + 1);
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].name == b[i].name);
    REQUIRE(a[i].var.shape() == b[i].var.shape());
    bool same = true;
    for (int64_t k = 0; k < a[i].var.numel(); ++k) same = same && a[i].var.value().flat(k) == b[i].var.value().flat(k);
    CHECK_MESSAGE(same, a[i].name);
  }
  CHECK(b.back().name == "label_emb.weight");
  CHECK(b.back().var.shape() == Shape{11, 128});  // 10 digits + the null label, 4 * ch wide
  CHECK(labelled.num_parameters() == 1112801 + 11 * 128);
  CHECK(labelled.config().null_label() == 10);
  // Its rows start from N(0, 1): 1,408 draws, so the mean is within 0.1 and the variance within 0.15 of it.
  const Tensor<float>& rows = b.back().var.value();
  double sum = 0, sum_sq = 0;
  for (int64_t k = 0; k < rows.numel(); ++k) {
    sum += rows.flat(k);
    sum_sq += double(rows.flat(k)) * rows.flat(k);
  }
  const double mean = sum / rows.numel(), variance = sum_sq / rows.numel() - mean * mean;
  CHECK(std::fabs(mean) < 0.1);
  CHECK(std::fabs(variance - 1.0) < 0.15);
}

TEST_CASE("conditional UNet: config JSON keeps num_classes; an unconditional JSON has no such key") {
  UNetConfig c = tiny_cond();
  CHECK(UNetConfig::from_json(c.to_json()) == c);
  CHECK(c.to_json().find("\"num_classes\":3") != std::string::npos);
  CHECK(UNetConfig{}.to_json().find("num_classes") == std::string::npos);
  UNetConfig u = c;
  u.num_classes = 0;
  CHECK_FALSE(u == c);
  c.num_classes = -1;
  CHECK_THROWS_WITH_AS(c.validate(), "UNetConfig.num_classes: expected 0..65536 (0: unconditional), got -1",
                       std::invalid_argument);
}

TEST_CASE("conditional UNet: labels change the output; the null label is the unlabeled call; errors") {
  Rng rng(8);
  UNet<double> net(tiny_cond(), rng);
  Var<double> emb = net.named_parameters().back().var;
  emb.assign(rng.normal<double>(emb.shape()));
  TensorD x = rng.normal<double>({3, 1, 8, 8});
  const std::vector<int64_t> t{5, 5, 5};
  NoGradGuard ng;
  const TensorD y0 = net.forward(VarD(x), t, {0, 0, 0}).value();
  const TensorD y1 = net.forward(VarD(x), t, {1, 1, 1}).value();
  const TensorD null = net.forward(VarD(x), t, {3, 3, 3}).value();
  const TensorD unlabeled = net.forward(VarD(x), t).value();
  double d01 = 0, dnull = 0;
  for (int64_t i = 0; i < y0.numel(); ++i) {
    d01 += std::fabs(y0.flat(i) - y1.flat(i));
    dnull += std::fabs(null.flat(i) - unlabeled.flat(i));
  }
  CHECK(d01 > 1e-3);
  CHECK(dnull == 0.0);
  // Per image: the label of image 1 does not leak into images 0 and 2.
  const TensorD mixed = net.forward(VarD(x), t, {0, 1, 0}).value();
  const int64_t px = 64;
  for (int64_t i = 0; i < px; ++i) {
    CHECK(mixed.flat(i) == y0.flat(i));
    CHECK(mixed.flat(px + i) == y1.flat(px + i));
  }
  CHECK_THROWS_WITH_AS(net.forward(VarD(x), t, {0, 4, 0}),
                       "UNet.forward: expected labels in 0..3 (3 = null), got 4 at position 1", std::invalid_argument);
  CHECK_THROWS_AS(net.forward(VarD(x), t, {0, 1}), ShapeError);
  Rng r2(8);
  UNetConfig plain = tiny_cond();
  plain.num_classes = 0;
  UNet<double> uncond(plain, r2);
  CHECK_THROWS_WITH_AS(uncond.forward(VarD(x), t, {0, 0, 0}),
                       "UNet.forward: labels given to an unconditional model (num_classes = 0)", std::invalid_argument);
}

// L = sum(u * UNet(x, t, y)): the gradient w.r.t. the input by gradcheck, and w.r.t. every element of
// the used and unused rows of label_emb.weight by central differences, at the default tolerances.
TEST_CASE("conditional UNet: float64 gradcheck through the label path") {
  Rng rng(9);
  UNet<double> net(tiny_cond(), rng);
  Var<double> emb = net.named_parameters().back().var;
  emb.assign(rng.normal<double>(emb.shape(), 0.0, 0.5));
  const std::vector<int64_t> t{3, 517, 40}, y{2, 0, 2};  // row 2 twice, row 1 and the null row unused
  TensorD x = rng.normal<double>({3, 1, 8, 8});
  auto input_check = gradcheck([&](const std::vector<VarD>& v) { return net.forward(v[0], t, y); }, {x});
  CHECK_MESSAGE(input_check.ok, input_check.message);

  VarD u(Rng(77).normal<double>({3, 1, 8, 8}));
  auto loss_of = [&]() {
    NoGradGuard ng;
    return sum(net.forward(VarD(x), t, y) * u).item();
  };
  net.zero_grad();
  sum(net.forward(VarD(x), t, y) * u).backward();
  const auto p = net.named_parameters().back();
  TensorD grads = net.flat_grads(), values = net.flat_values();
  const GradcheckTolerance tol;
  const int64_t width = p.var.size(1);
  for (int64_t row = 0; row < 4; ++row)
    for (int64_t col : {int64_t{0}, int64_t{17}, width - 1}) {
      const int64_t i = p.offset + row * width + col;
      const double orig = values.flat(i);
      values.flat(i) = orig + tol.eps;
      const double plus = loss_of();
      values.flat(i) = orig - tol.eps;
      const double minus = loss_of();
      values.flat(i) = orig;
      const double numeric = (plus - minus) / (2 * tol.eps), analytic = grads.flat(i);
      CHECK_MESSAGE(std::fabs(analytic - numeric) <= tol.atol + tol.rtol * std::fabs(numeric),
                    "row " << row << " col " << col << ": analytic " << analytic << " numeric " << numeric);
      if (row == 1 || row == 3) CHECK(analytic == 0.0);
      if (row == 0 || row == 2) CHECK(std::fabs(analytic) > 0.0);
    }
}
