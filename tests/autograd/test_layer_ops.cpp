// Layer ops: forward values against naive loops written from the definitions, float64
// gradchecks of every input, float32 against float64, thread-count independence, shape errors.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"
#include "tensor/parallel.h"
#include "tensor/random.h"

using namespace dd;

namespace {

// max|a - b| / max|b| over the tensor (the comparison rule of docs/conventions.md)
template <class A, class B>
double rel_err(const Tensor<A>& a, const Tensor<B>& b) {
  REQUIRE(a.shape() == b.shape());
  double num = 0, den = 0;
  for (int64_t i = 0; i < a.numel(); ++i) {
    num = std::max(num, std::fabs(static_cast<double>(a.flat(i)) - static_cast<double>(b.flat(i))));
    den = std::max(den, std::fabs(static_cast<double>(b.flat(i))));
  }
  return den > 0 ? num / den : num;
}

// y[n,o,i,j] = b[o] + sum_{c,p,q} w[o,c,p,q] x[n,c,i s - pad + p, j s - pad + q], straight from the definition.
TensorD naive_conv2d(const TensorD& x, const TensorD& w, const TensorD* b, int s, int pad) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const int64_t O = w.size(0), kh = w.size(2), kw = w.size(3);
  const int64_t Ho = (H + 2 * pad - kh) / s + 1, Wo = (W + 2 * pad - kw) / s + 1;
  TensorD y({N, O, Ho, Wo});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o)
      for (int64_t i = 0; i < Ho; ++i)
        for (int64_t j = 0; j < Wo; ++j) {
          double acc = b ? b->at({o}) : 0.0;
          for (int64_t c = 0; c < C; ++c)
            for (int64_t p = 0; p < kh; ++p)
              for (int64_t q = 0; q < kw; ++q) {
                const int64_t h = i * s - pad + p, ww = j * s - pad + q;
                if (h >= 0 && h < H && ww >= 0 && ww < W) acc += w.at({o, c, p, q}) * x.at({n, c, h, ww});
              }
          y.at({n, o, i, j}) = acc;
        }
  return y;
}

// Group norm from its definition on x [N, C, L]: mean and biased variance per (n, group).
TensorD naive_group_norm(const TensorD& x, int G, const TensorD* gamma, const TensorD* beta, double eps) {
  const int64_t N = x.size(0), C = x.size(1), L = x.numel() / (N * C), cpg = C / G;
  TensorD xr = x.reshape({N, C, L});
  TensorD y({N, C, L});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t g = 0; g < G; ++g) {
      double s = 0, ss = 0;
      for (int64_t c = g * cpg; c < (g + 1) * cpg; ++c)
        for (int64_t l = 0; l < L; ++l) s += xr.at({n, c, l});
      const double mu = s / (cpg * L);
      for (int64_t c = g * cpg; c < (g + 1) * cpg; ++c)
        for (int64_t l = 0; l < L; ++l) ss += (xr.at({n, c, l}) - mu) * (xr.at({n, c, l}) - mu);
      const double var = ss / (cpg * L);
      for (int64_t c = g * cpg; c < (g + 1) * cpg; ++c)
        for (int64_t l = 0; l < L; ++l)
          y.at({n, c, l}) = (xr.at({n, c, l}) - mu) / std::sqrt(var + eps) * (gamma ? gamma->at({c}) : 1.0) +
                            (beta ? beta->at({c}) : 0.0);
    }
  return y.reshape(x.shape());
}

// out[b,:,i] = sum_j softmax_j(scale <q[b,:,i], k[b,:,j]>) v[b,:,j]
TensorD naive_attention(const TensorD& q, const TensorD& k, const TensorD& v, double scale) {
  const int64_t B = q.size(0), C = q.size(1), N = q.size(2);
  TensorD out({B, C, N});
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < N; ++i) {
      std::vector<double> w(N);
      double z = 0;
      for (int64_t j = 0; j < N; ++j) {
        double d = 0;
        for (int64_t c = 0; c < C; ++c) d += q.at({b, c, i}) * k.at({b, c, j});
        w[j] = std::exp(scale * d);
        z += w[j];
      }
      for (int64_t c = 0; c < C; ++c) {
        double acc = 0;
        for (int64_t j = 0; j < N; ++j) acc += w[j] / z * v.at({b, c, j});
        out.at({b, c, i}) = acc;
      }
    }
  return out;
}

struct ConvCase {
  int64_t N, C, H, W, O, kh, kw;
  int stride, pad;
  bool bias;
};

std::string describe(const ConvCase& c) {
  return "x [" + std::to_string(c.N) + "," + std::to_string(c.C) + "," + std::to_string(c.H) + "," +
         std::to_string(c.W) + "] w [" + std::to_string(c.O) + "," + std::to_string(c.C) + "," + std::to_string(c.kh) +
         "," + std::to_string(c.kw) + "] stride " + std::to_string(c.stride) + " pad " + std::to_string(c.pad) +
         (c.bias ? " bias" : " no bias");
}

// stride 1 and 2, padding 0 and 1, 1x1 (the plain-GEMM path) and 3x3, non-square inputs and
// kernels, C != O, batches of 1 (BLAS-threaded path) and 3 (images split unevenly over threads).
const ConvCase kConvCases[] = {
    {2, 3, 5, 7, 4, 3, 3, 1, 1, true},  {2, 3, 5, 7, 4, 3, 3, 1, 0, false}, {3, 2, 6, 5, 3, 3, 3, 2, 1, true},
    {2, 2, 7, 6, 3, 3, 3, 2, 0, false}, {2, 3, 4, 5, 2, 1, 1, 1, 0, true},  {1, 3, 4, 5, 2, 1, 1, 1, 0, false},
    {2, 2, 5, 4, 3, 1, 1, 2, 0, true},  {1, 2, 4, 6, 3, 2, 3, 1, 1, true},  {3, 1, 5, 5, 2, 3, 3, 1, 1, true},
};

}  // namespace

TEST_CASE("conv2d forward equals the direct convolution loop") {
  Rng rng(11);
  for (const ConvCase& c : kConvCases) {
    CAPTURE(describe(c));
    TensorD x = rng.normal<double>({c.N, c.C, c.H, c.W}), w = rng.normal<double>({c.O, c.C, c.kh, c.kw});
    TensorD b = rng.normal<double>({c.O});
    VarD y = conv2d(VarD(x), VarD(w), c.bias ? VarD(b) : VarD(), c.stride, c.pad);
    TensorD expect = naive_conv2d(x, w, c.bias ? &b : nullptr, c.stride, c.pad);
    REQUIRE(y.shape() == expect.shape());
    CHECK(rel_err(y.value(), expect) < 1e-13);
  }
}

TEST_CASE("conv2d gradcheck: input, weight and bias") {
  Rng rng(12);
  for (const ConvCase& c : kConvCases) {
    CAPTURE(describe(c));
    TensorD x = rng.normal<double>({c.N, c.C, c.H, c.W}), w = rng.normal<double>({c.O, c.C, c.kh, c.kw});
    if (c.bias) {
      auto r = gradcheck([&](const std::vector<VarD>& v) { return conv2d(v[0], v[1], v[2], c.stride, c.pad); },
                         {x, w, rng.normal<double>({c.O})});
      CHECK_MESSAGE(r.ok, r.message);
    } else {
      auto r = gradcheck([&](const std::vector<VarD>& v) { return conv2d(v[0], v[1], VarD(), c.stride, c.pad); },
                         {x, w});
      CHECK_MESSAGE(r.ok, r.message);
    }
  }
}

TEST_CASE("conv2d_add gradcheck: input, weight, bias and the addend, per-image-channel and full, non-contiguous") {
  Rng rng(14);
  for (const ConvCase& c : kConvCases) {
    CAPTURE(describe(c));
    const int64_t Ho = (c.H + 2 * c.pad - c.kh) / c.stride + 1, Wo = (c.W + 2 * c.pad - c.kw) / c.stride + 1;
    TensorD x = rng.normal<double>({c.N, c.C, c.H, c.W}), w = rng.normal<double>({c.O, c.C, c.kh, c.kw});
    TensorD b = rng.normal<double>({c.O});
    // [N,O,1,1], broadcast over the pixels (the time embedding)
    auto r1 = gradcheck(
        [&](const std::vector<VarD>& v) { return conv2d_add(v[0], v[1], v[2], v[3], c.stride, c.pad); },
        {x, w, b, rng.normal<double>({c.N, c.O, 1, 1})});
    CHECK_MESSAGE(r1.ok, r1.message);
    // the full output shape (a residual), given as a transposed, non-contiguous view
    auto r2 = gradcheck(
        [&](const std::vector<VarD>& v) {
          return conv2d_add(v[0], v[1], c.bias ? v[2] : VarD(), transpose(v[3], 2, 3), c.stride, c.pad);
        },
        {x, w, b, rng.normal<double>({c.N, c.O, Wo, Ho})});
    CHECK_MESSAGE(r2.ok, r2.message);
  }
}

TEST_CASE("conv2d_add equals conv2d followed by add: float64, and float32 on the Winograd and GEMM paths") {
  Rng rng(15);
  // float64: generic kernels (3x3 and 1x1)
  for (int k : {3, 1}) {
    CAPTURE(k);
    const int pad = k / 2;
    TensorD x = rng.normal<double>({3, 4, 6, 5}), w = rng.normal<double>({5, 4, k, k}), b = rng.normal<double>({5});
    for (const Shape& as : {Shape{3, 5, 1, 1}, Shape{3, 5, 6, 5}}) {
      CAPTURE(shape_str(as));
      TensorD a = rng.normal<double>(as), up = rng.normal<double>({3, 5, 6, 5});
      VarD xf(x, true), wf(w, true), bf(b, true), af(a, true), xu(x, true), wu(w, true), bu(b, true), au(a, true);
      VarD fused = conv2d_add(xf, wf, bf, af, 1, pad), plain = conv2d(xu, wu, bu, 1, pad) + au;
      CHECK(rel_err(fused.value(), plain.value()) < 1e-14);
      fused.backward(up);
      plain.backward(up);
      CHECK(rel_err(xf.grad(), xu.grad()) < 1e-14);
      CHECK(rel_err(wf.grad(), wu.grad()) < 1e-14);
      CHECK(rel_err(bf.grad(), bu.grad()) < 1e-14);
      CHECK(rel_err(af.grad(), au.grad()) < 1e-13);
    }
  }
  // float32: 16 input channels take the Winograd kernels for 3x3 (the addition happens in its
  // output transform, after the bias, as the separate add did: the same float operations), and the
  // GEMM path for 1x1 (the addend is summed into the prefilled output before the GEMM)
  for (int k : {3, 1}) {
    CAPTURE(k);
    const int pad = k / 2;
    TensorF x = rng.normal<float>({2, 16, 9, 10}), w = rng.normal<float>({12, 16, k, k}), b = rng.normal<float>({12});
    for (const Shape& as : {Shape{2, 12, 1, 1}, Shape{2, 12, 9, 10}}) {
      CAPTURE(shape_str(as));
      TensorF a = rng.normal<float>(as);
      VarF fused = conv2d_add(VarF(x), VarF(w), VarF(b), VarF(a), 1, pad);
      VarF plain = conv2d(VarF(x), VarF(w), VarF(b), 1, pad) + VarF(a);
      CHECK(rel_err(fused.value(), plain.value()) < (k == 3 ? 1e-7 : 1e-6));
    }
  }
}

TEST_CASE("conv2d_add rejects an addend of any other shape, naming both allowed shapes") {
  VarD x(TensorD({2, 3, 5, 5})), w(TensorD({4, 3, 3, 3}));
  CHECK_THROWS_WITH_AS(conv2d_add(x, w, VarD(), VarD(TensorD({2, 4, 5, 1})), 1, 1),
                       "conv2d_add: expected an addend of shape [2, 4, 1, 1] or [2, 4, 5, 5], got [2, 4, 5, 1]",
                       ShapeError);
  CHECK_THROWS_AS(conv2d_add(x, w, VarD(), VarD(), 1, 1), std::invalid_argument);
}

TEST_CASE("conv2d backward computes only the gradients that are needed") {
  Rng rng(13);
  VarD x(rng.normal<double>({2, 2, 4, 4}), false), w(rng.normal<double>({3, 2, 3, 3}), true);
  VarD b(rng.normal<double>({3}), true);
  sum(conv2d(x, w, b, 1, 1)).backward();
  CHECK_FALSE(x.grad().defined());
  CHECK(w.grad().defined());
  // d sum(y) / db[o] = number of output pixels per channel summed over the batch = 2 * 16
  for (int64_t o = 0; o < 3; ++o) CHECK(b.grad().at({o}) == doctest::Approx(32.0).epsilon(1e-14));
}

TEST_CASE("conv2d gives the same values for 1 and 2 threads") {
  const int prev = get_num_threads();
  Rng rng(14);
  TensorD x = rng.normal<double>({4, 3, 6, 5}), w = rng.normal<double>({5, 3, 3, 3}), b = rng.normal<double>({5});
  TensorD u = rng.normal<double>({4, 5, 3, 3});
  TensorD y[2], gx[2], gw[2];
  for (int k = 0; k < 2; ++k) {
    set_num_threads(k + 1);
    VarD xv(x, true), wv(w, true), bv(b, true);
    VarD out = conv2d(xv, wv, bv, 2, 1);
    out.backward(u);
    y[k] = out.value();
    gx[k] = xv.grad();
    gw[k] = wv.grad();
  }
  set_num_threads(prev);
  CHECK(rel_err(y[1], y[0]) < 1e-14);
  CHECK(rel_err(gx[1], gx[0]) < 1e-14);
  CHECK(rel_err(gw[1], gw[0]) < 1e-14);
}

TEST_CASE("group_norm forward equals the definition, for several group counts") {
  Rng rng(21);
  TensorD x = rng.normal<double>({2, 6, 3, 4}), gamma = rng.normal<double>({6}), beta = rng.normal<double>({6});
  // a common offset of 100 checks that the variance is not computed as E[x^2] - mu^2 in float
  TensorD shifted = x.clone();
  for (int64_t i = 0; i < shifted.numel(); ++i) shifted.data()[i] += 100.0;
  for (int G : {1, 2, 3, 6}) {
    CAPTURE(G);
    VarD y = group_norm(VarD(x), G, VarD(gamma), VarD(beta), 1e-5);
    CHECK(rel_err(y.value(), naive_group_norm(x, G, &gamma, &beta, 1e-5)) < 1e-13);
    VarD y0 = group_norm(VarD(x), G, VarD(), VarD(), 1e-5);
    CHECK(rel_err(y0.value(), naive_group_norm(x, G, nullptr, nullptr, 1e-5)) < 1e-13);
    VarF yf = group_norm(VarF(shifted.to<float>()), G, VarF(gamma.to<float>()), VarF(beta.to<float>()), 1e-5);
    CHECK(rel_err(yf.value(), naive_group_norm(shifted, G, &gamma, &beta, 1e-5)) < 1e-5);
  }
}

TEST_CASE("group_norm gradcheck: x, gamma and beta, several group counts and ranks") {
  Rng rng(22);
  for (int G : {1, 2, 3, 6}) {
    CAPTURE(G);
    auto r = gradcheck([G](const std::vector<VarD>& v) { return group_norm(v[0], G, v[1], v[2], 1e-5); },
                       {rng.normal<double>({2, 6, 3, 2}), rng.normal<double>({6}), rng.normal<double>({6})});
    CHECK_MESSAGE(r.ok, r.message);
  }
  // [N, C, L] input without affine parameters
  auto r = gradcheck([](const std::vector<VarD>& v) { return group_norm(v[0], 2, VarD(), VarD(), 1e-5); },
                     {rng.normal<double>({3, 4, 5})});
  CHECK_MESSAGE(r.ok, r.message);
}

TEST_CASE("group_norm_silu equals silu(group_norm(x)) and passes gradcheck (x, gamma, beta)") {
  Rng rng(23);
  TensorD x = rng.normal<double>({2, 6, 3, 4}), gamma = rng.normal<double>({6}), beta = rng.normal<double>({6});
  for (int G : {1, 3}) {
    CAPTURE(G);
    VarD fused = group_norm_silu(VarD(x), G, VarD(gamma), VarD(beta), 1e-5);
    VarD composed = silu(group_norm(VarD(x), G, VarD(gamma), VarD(beta), 1e-5));
    CHECK(rel_err(fused.value(), composed.value()) < 1e-14);
    auto r = gradcheck([G](const std::vector<VarD>& v) { return group_norm_silu(v[0], G, v[1], v[2], 1e-5); },
                       {rng.normal<double>({2, 6, 3, 2}), rng.normal<double>({6}), rng.normal<double>({6})});
    CHECK_MESSAGE(r.ok, r.message);
  }
  // without affine parameters, and only the input needing a gradient
  auto r = gradcheck([](const std::vector<VarD>& v) { return group_norm_silu(v[0], 2, VarD(), VarD(), 1e-5); },
                     {rng.normal<double>({3, 4, 5})});
  CHECK_MESSAGE(r.ok, r.message);
  // the fused backward equals the backward of the composition, also when gamma and beta need none
  VarD xa(x, true), xb(x, true);
  TensorD up = rng.normal<double>(x.shape());
  group_norm_silu(xa, 3, VarD(gamma), VarD(beta), 1e-5).backward(up);
  silu(group_norm(xb, 3, VarD(gamma), VarD(beta), 1e-5)).backward(up);
  CHECK(rel_err(xa.grad(), xb.grad()) < 1e-12);
  CHECK_THROWS_WITH_AS(group_norm_silu(VarD(TensorD({2, 6, 4})), 4, VarD(), VarD(), 1e-5),
                       "group_norm_silu: expected a group count dividing the 6 channels of input [2, 6, 4], got 4 groups",
                       ShapeError);
}

TEST_CASE("upsample_nearest2x repeats each pixel 2x2 and sums the gradient back") {
  TensorD x = TensorD::from({1, 2, 2, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  VarD y = upsample_nearest2x(VarD(x));
  REQUIRE(y.shape() == Shape{1, 2, 4, 6});
  for (int64_t c = 0; c < 2; ++c)
    for (int64_t i = 0; i < 4; ++i)
      for (int64_t j = 0; j < 6; ++j) CHECK(y.value().at({0, c, i, j}) == x.at({0, c, i / 2, j / 2}));
  Rng rng(31);
  auto r = gradcheck([](const std::vector<VarD>& v) { return upsample_nearest2x(v[0]); },
                     {rng.normal<double>({2, 3, 3, 2})});
  CHECK_MESSAGE(r.ok, r.message);
}

TEST_CASE("linear: y = x W^T + b, values and gradcheck") {
  Rng rng(41);
  TensorD x = rng.normal<double>({3, 4}), w = rng.normal<double>({5, 4}), b = rng.normal<double>({5});
  VarD y = linear(VarD(x), VarD(w), VarD(b));
  REQUIRE(y.shape() == Shape{3, 5});
  for (int64_t n = 0; n < 3; ++n)
    for (int64_t o = 0; o < 5; ++o) {
      double acc = b.at({o});
      for (int64_t i = 0; i < 4; ++i) acc += x.at({n, i}) * w.at({o, i});
      CHECK(y.value().at({n, o}) == doctest::Approx(acc).epsilon(1e-14));
    }
  auto r = gradcheck([](const std::vector<VarD>& v) { return linear(v[0], v[1], v[2]); }, {x, w, b});
  CHECK_MESSAGE(r.ok, r.message);
  auto r0 = gradcheck([](const std::vector<VarD>& v) { return linear(v[0], v[1], VarD()); }, {x, w});
  CHECK_MESSAGE(r0.ok, r0.message);
  // a non-contiguous input (a transposed view) and leading batch dimensions
  TensorD xt = rng.normal<double>({4, 3}).transpose(0, 1);
  auto rt = gradcheck([](const std::vector<VarD>& v) { return linear(v[0], v[1], v[2]); }, {xt, w, b});
  CHECK_MESSAGE(rt.ok, rt.message);
  auto r3 = gradcheck([](const std::vector<VarD>& v) { return linear(v[0], v[1], v[2]); },
                      {rng.normal<double>({2, 3, 4}), w, b});
  CHECK_MESSAGE(r3.ok, r3.message);
}

TEST_CASE("attention: values against the definition and gradcheck of q, k and v") {
  Rng rng(51);
  const double scale = 1.0 / std::sqrt(3.0);
  TensorD q = rng.normal<double>({2, 3, 5}), k = rng.normal<double>({2, 3, 5}), v = rng.normal<double>({2, 3, 5});
  VarD out = attention(VarD(q), VarD(k), VarD(v), scale);
  CHECK(rel_err(out.value(), naive_attention(q, k, v, scale)) < 1e-13);
  auto r = gradcheck([scale](const std::vector<VarD>& in) { return attention(in[0], in[1], in[2], scale); },
                     {q, k, v});
  CHECK_MESSAGE(r.ok, r.message);
  // the same Var as q, k and v (self-attention on one tensor) accumulates all three gradients
  auto rs = gradcheck([scale](const std::vector<VarD>& in) { return attention(in[0], in[0], in[0], scale); },
                      {rng.normal<double>({1, 4, 6})});
  CHECK_MESSAGE(rs.ok, rs.message);
}

TEST_CASE("dropout: inverted scaling, fixed-seed mask, identity when off") {
  Rng rng(61);
  TensorD x = rng.normal<double>({4, 50});
  const double p = 0.3;
  Rng r1(5), r2(5);
  VarD y1 = dropout(VarD(x), p, true, r1), y2 = dropout(VarD(x), p, true, r2);
  int64_t zeros = 0;
  for (int64_t i = 0; i < x.numel(); ++i) {
    const double yi = y1.value().flat(i);
    CHECK(yi == y2.value().flat(i));  // same seed, same mask
    if (yi == 0) {
      ++zeros;
    } else {
      CHECK(yi == doctest::Approx(x.flat(i) / (1 - p)).epsilon(1e-15));
    }
  }
  // 200 Bernoulli(0.3) draws: mean 60, standard deviation 6.5; 30..90 is more than 4.5 sigma
  CHECK(zeros > 30);
  CHECK(zeros < 90);
  CHECK(r1.counter() > 0);  // the generator advanced: the next call draws a fresh mask
  VarD xv(x, true);
  CHECK(dropout(xv, p, false, r1).value().data() == x.data());
  CHECK(dropout(xv, 0.0, true, r1).value().data() == x.data());
  // every element dropped when p = 1
  VarD all = dropout(VarD(x), 1.0, true, r1);
  for (int64_t i = 0; i < x.numel(); ++i) CHECK(all.value().flat(i) == 0.0);
  // gradcheck with a fixed mask: each evaluation draws from a fresh generator of the same seed
  auto r = gradcheck(
      [p](const std::vector<VarD>& v) {
        Rng fixed(9);
        return dropout(v[0], p, true, fixed);
      },
      {rng.normal<double>({3, 7})});
  CHECK_MESSAGE(r.ok, r.message);
  CHECK_THROWS_WITH_AS(dropout(VarD(x), 1.5, true, r1), doctest::Contains("dropout: expected p in [0, 1], got 1.5"),
                       std::invalid_argument);
}

TEST_CASE("dropout_rows: row i's mask comes from row first_row + i's blocks of the stream, whatever the slice") {
  const Rng stream(23, 1000);
  const double p = 0.4;
  // Rows of 7 elements (odd: 4 Philox blocks per row, the last one half used).
  const TensorD ones = TensorD::full({4, 7}, 1.0);
  const VarD whole = dropout_rows(VarD(ones), p, true, stream, 0);
  const VarD tail = dropout_rows(VarD(ones.slice(0, 2, 4).contiguous()), p, true, stream, 2);
  const auto w = whole.value().to_vector(), t = tail.value().to_vector();
  CHECK(std::vector<double>(w.begin() + 14, w.end()) == t);
  // Row r's mask is uniform<double>(one row) of a generator at counter + r b, b = 4.
  for (int64_t r = 0; r < 4; ++r) {
    Rng at(23, 1000 + static_cast<uint64_t>(r) * 4);
    const TensorD u = at.uniform<double>({1, 7});
    for (int64_t j = 0; j < 7; ++j) CHECK(w[r * 7 + j] == (u.flat(j) >= p ? 1.0 / (1.0 - p) : 0.0));
  }
  // the rows differ from each other (no blocks shared between rows)
  CHECK(std::vector<double>(w.begin(), w.begin() + 7) != std::vector<double>(w.begin() + 7, w.begin() + 14));
  int64_t zeros = 0;
  const TensorD big = TensorD::full({50, 8}, 1.0);
  const VarD yb = dropout_rows(VarD(big), p, true, stream, 3);
  for (int64_t i = 0; i < big.numel(); ++i) zeros += yb.value().flat(i) == 0.0;
  // 400 Bernoulli(0.4) draws: mean 160, standard deviation 9.8; 115..205 is more than 4.5 sigma
  CHECK(zeros > 115);
  CHECK(zeros < 205);
  VarD xv(ones, true);
  CHECK(dropout_rows(xv, p, false, stream, 0).value().data() == ones.data());
  CHECK(dropout_rows(xv, 0.0, true, stream, 0).value().data() == ones.data());
  Rng rng(62);
  auto r = gradcheck([p, stream](const std::vector<VarD>& v) { return dropout_rows(v[0], p, true, stream, 5); },
                     {rng.normal<double>({3, 2, 3})});
  CHECK_MESSAGE(r.ok, r.message);
  auto rf = gradcheck([p, stream](const std::vector<VarD>& v) { return dropout_rows(v[0], p, true, stream, 0); },
                      {rng.normal<double>({2, 5}).transpose(0, 1)});  // non-contiguous input
  CHECK_MESSAGE(rf.ok, rf.message);
  CHECK_THROWS_WITH_AS(dropout_rows(VarD(ones), 1.5, true, stream, 0), doctest::Contains("dropout: expected p in [0, 1], got 1.5"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(dropout_rows(VarD(ones), p, true, stream, -1), doctest::Contains("expected first_row >= 0, got -1"),
                       std::invalid_argument);
}

TEST_CASE("timestep_embedding matches values computed by hand for t = 0, 1, 999") {
  // dim 8: half 4, f_i = 10000^(-i/3) = 1, 0.0464158883, 0.00215443469, 0.0001; row = [sin(t f), cos(t f)]
  // (sin and cos below evaluated independently in double precision).
  const std::vector<double> t0 = {0, 0, 0, 0, 1, 1, 1, 1};
  const std::vector<double> t1 = {0.841470984807897, 0.0463992234647313, 0.0021544330233656, 9.99999998333333e-05,
                                  0.54030230586814,  0.99892297604063,   0.999997679206481,  0.999999995};
  const std::vector<double> t999 = {-0.0264607527370641, 0.684864229357854,  0.835648500885845,  0.0997339157312991,
                                    0.999649852980826,   -0.728670698838696, -0.549264583754715, 0.995014143644653};
  TensorD e = timestep_embedding<double>({0, 1, 999}, 8);
  REQUIRE(e.shape() == Shape{3, 8});
  for (int64_t j = 0; j < 8; ++j) {
    CAPTURE(j);
    CHECK(e.at({0, j}) == doctest::Approx(t0[j]).epsilon(1e-13));
    CHECK(e.at({1, j}) == doctest::Approx(t1[j]).epsilon(1e-13));
    CHECK(e.at({2, j}) == doctest::Approx(t999[j]).epsilon(1e-12));
  }
  // float32 as PyTorch computes it: the argument 999 f_i is rounded to float32 (relative
  // 6e-8, absolute up to 6e-5 at 999 f_0 = 999), so sin/cos differ from double by up to ~6e-5.
  TensorF ef = timestep_embedding<float>({0, 1, 999}, 8);
  for (int64_t i = 0; i < 2; ++i)
    for (int64_t j = 0; j < 8; ++j) CHECK(std::fabs(ef.at({i, j}) - e.at({i, j})) < 1e-6);
  for (int64_t j = 0; j < 8; ++j) CHECK(std::fabs(ef.at({2, j}) - e.at({2, j})) < 1e-4);
  CHECK_THROWS_WITH_AS(timestep_embedding<float>({1}, 7), doctest::Contains("got 7"), std::invalid_argument);
}

TEST_CASE("shape errors name the op and both shapes") {
  VarD x(TensorD({2, 3, 5, 5})), w(TensorD({4, 2, 3, 3})), b(TensorD({5}));
  CHECK_THROWS_WITH_AS(conv2d(x, w, VarD(), 1, 1),
                       "conv2d: expected weight [O, 3, kh, kw] for input [2, 3, 5, 5], got weight [4, 2, 3, 3]",
                       ShapeError);
  VarD w3(TensorD({4, 3, 3, 3}));
  CHECK_THROWS_WITH_AS(conv2d(x, w3, b, 1, 1), "conv2d: expected bias [4] for weight [4, 3, 3, 3], got bias [5]",
                       ShapeError);
  CHECK_THROWS_WITH_AS(conv2d(VarD(TensorD({3, 5, 5})), w3, VarD(), 1, 1),
                       "conv2d: expected input [N, C, H, W], got [3, 5, 5]", ShapeError);
  CHECK_THROWS_WITH_AS(conv2d(x, VarD(TensorD({4, 3, 9, 9})), VarD(), 1, 1), doctest::Contains("[4, 3, 9, 9]"),
                       ShapeError);
  CHECK_THROWS_WITH_AS(group_norm(VarD(TensorD({2, 6, 4})), 4, VarD(), VarD(), 1e-5),
                       "group_norm: expected a group count dividing the 6 channels of input [2, 6, 4], got 4 groups",
                       ShapeError);
  CHECK_THROWS_WITH_AS(group_norm(VarD(TensorD({2, 6, 4})), 3, VarD(TensorD({5})), VarD(), 1e-5),
                       "group_norm: expected gamma [6] for input [2, 6, 4], got [5]", ShapeError);
  CHECK_THROWS_WITH_AS(linear(VarD(TensorD({3, 4})), VarD(TensorD({5, 3})), VarD()),
                       "linear: expected weight [out, 4] for input [3, 4], got weight [5, 3]", ShapeError);
  CHECK_THROWS_WITH_AS(attention(VarD(TensorD({1, 2, 3})), VarD(TensorD({1, 2, 4})), VarD(TensorD({1, 2, 3})), 1.0),
                       "attention: expected k and v of the shape of q [1, 2, 3], got k [1, 2, 4], v [1, 2, 3]",
                       ShapeError);
  CHECK_THROWS_WITH_AS(upsample_nearest2x(VarD(TensorD({2, 3}))), "upsample_nearest2x: expected input [N, C, H, W], got [2, 3]",
                       ShapeError);
}

TEST_CASE("float32 equals float64 within 1e-5 relative, forward and backward") {
  Rng rng(71);
  auto check_op = [](const char* name, auto op, std::vector<TensorD> inputs, const TensorD& upstream) {
    CAPTURE(name);
    std::vector<VarD> vd;
    std::vector<VarF> vf;
    for (const auto& t : inputs) {
      vd.emplace_back(t, true);
      vf.emplace_back(t.to<float>(), true);
    }
    VarD yd = op(vd);
    VarF yf = op(vf);
    CHECK(rel_err(yf.value(), yd.value()) < 1e-5);
    yd.backward(upstream);
    yf.backward(upstream.to<float>());
    for (size_t i = 0; i < inputs.size(); ++i) {
      CAPTURE(i);
      CHECK(rel_err(vf[i].grad(), vd[i].grad()) < 1e-5);
    }
  };
  check_op("conv2d 3x3 stride 2",
           [](const auto& v) { return conv2d(v[0], v[1], v[2], 2, 1); },
           {rng.normal<double>({2, 4, 9, 8}), rng.normal<double>({6, 4, 3, 3}), rng.normal<double>({6})},
           rng.normal<double>({2, 6, 5, 4}));
  check_op("conv2d_add [N,O,1,1]", [](const auto& v) { return conv2d_add(v[0], v[1], v[2], v[3], 1, 1); },
           {rng.normal<double>({2, 4, 6, 5}), rng.normal<double>({6, 4, 3, 3}), rng.normal<double>({6}),
            rng.normal<double>({2, 6, 1, 1})},
           rng.normal<double>({2, 6, 6, 5}));
  check_op("conv2d_add residual", [](const auto& v) { return conv2d_add(v[0], v[1], v[2], v[3], 1, 0); },
           {rng.normal<double>({2, 4, 5, 5}), rng.normal<double>({3, 4, 1, 1}), rng.normal<double>({3}),
            rng.normal<double>({2, 3, 5, 5})},
           rng.normal<double>({2, 3, 5, 5}));
  check_op("conv2d 1x1", [](const auto& v) { return conv2d(v[0], v[1], v[2], 1, 0); },
           {rng.normal<double>({2, 4, 5, 5}), rng.normal<double>({3, 4, 1, 1}), rng.normal<double>({3})},
           rng.normal<double>({2, 3, 5, 5}));
  check_op("group_norm", [](const auto& v) { return group_norm(v[0], 4, v[1], v[2], 1e-5); },
           {rng.normal<double>({2, 8, 4, 4}), rng.normal<double>({8}), rng.normal<double>({8})},
           rng.normal<double>({2, 8, 4, 4}));
  check_op("group_norm_silu", [](const auto& v) { return group_norm_silu(v[0], 4, v[1], v[2], 1e-5); },
           {rng.normal<double>({2, 8, 4, 4}), rng.normal<double>({8}), rng.normal<double>({8})},
           rng.normal<double>({2, 8, 4, 4}));
  // the UNet's plane sizes: 14 x 14 with 2 channels per group is one 256-element block of the float
  // statistics plus a partial block and a tail; 7 x 7 only partial blocks and tails
  for (int64_t side : {14, 7}) {
    CAPTURE(side);
    check_op("group_norm_silu, UNet planes", [](const auto& v) { return group_norm_silu(v[0], 8, v[1], v[2], 1e-5); },
             {rng.normal<double>({2, 16, side, side}), rng.normal<double>({16}), rng.normal<double>({16})},
             rng.normal<double>({2, 16, side, side}));
  }
  check_op("silu", [](const auto& v) { return silu(v[0]); }, {rng.normal<double>({3, 50})}, rng.normal<double>({3, 50}));
  check_op("linear", [](const auto& v) { return linear(v[0], v[1], v[2]); },
           {rng.normal<double>({3, 16}), rng.normal<double>({8, 16}), rng.normal<double>({8})},
           rng.normal<double>({3, 8}));
  check_op("attention", [](const auto& v) { return attention(v[0], v[1], v[2], 0.25); },
           {rng.normal<double>({2, 16, 9}), rng.normal<double>({2, 16, 9}), rng.normal<double>({2, 16, 9})},
           rng.normal<double>({2, 16, 9}));
  check_op("upsample_nearest2x", [](const auto& v) { return upsample_nearest2x(v[0]); },
           {rng.normal<double>({2, 3, 4, 5})}, rng.normal<double>({2, 3, 8, 10}));
}

TEST_CASE("max_pool2x2 and avg_pool2x2: values by hand and gradchecks") {
  // one 3x5 plane: the last row and column are dropped (floor), as in PyTorch
  TensorD x = TensorD::from({1, 1, 3, 5}, {1, 5, 2, 0, 9,  //
                                           3, 4, 8, 7, 9,  //
                                           9, 9, 9, 9, 9});
  VarD xm(x, true);
  VarD m = max_pool2x2(xm);
  REQUIRE(m.shape() == Shape{1, 1, 1, 2});
  CHECK(m.value().at({0, 0, 0, 0}) == 5);
  CHECK(m.value().at({0, 0, 0, 1}) == 8);
  m.backward(TensorD::from({1, 1, 1, 2}, {10, 20}));
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 5; ++j) {
      const double expect = (i == 0 && j == 1) ? 10 : (i == 1 && j == 2) ? 20 : 0;
      CHECK(xm.grad().at({0, 0, i, j}) == expect);
    }
  VarD a = avg_pool2x2(VarD(x));
  CHECK(a.value().at({0, 0, 0, 0}) == doctest::Approx((1 + 5 + 3 + 4) / 4.0).epsilon(1e-15));
  CHECK(a.value().at({0, 0, 0, 1}) == doctest::Approx((2 + 0 + 8 + 7) / 4.0).epsilon(1e-15));

  Rng rng(81);
  // normal samples: no two values in a window within the 1e-6 finite-difference step, so the
  // maximum does not switch during the check
  auto rm = gradcheck([](const std::vector<VarD>& v) { return max_pool2x2(v[0]); }, {rng.normal<double>({2, 2, 4, 5})});
  CHECK_MESSAGE(rm.ok, rm.message);
  auto ra = gradcheck([](const std::vector<VarD>& v) { return avg_pool2x2(v[0]); }, {rng.normal<double>({2, 2, 5, 4})});
  CHECK_MESSAGE(ra.ok, ra.message);
  CHECK_THROWS_WITH_AS(max_pool2x2(VarD(TensorD({2, 3, 1, 4}))),
                       "max_pool2x2: expected input [N, C, H, W] with H, W >= 2, got [2, 3, 1, 4]", ShapeError);
}

TEST_CASE("cross_entropy: mean negative log-likelihood, gradcheck, label errors") {
  Rng rng(91);
  TensorD z = rng.normal<double>({4, 5});
  const std::vector<int64_t> y = {0, 4, 2, 2};
  VarD loss = cross_entropy(VarD(z), y);
  double expect = 0;
  for (int64_t n = 0; n < 4; ++n) {
    double se = 0;
    for (int64_t k = 0; k < 5; ++k) se += std::exp(z.at({n, k}));
    expect += (std::log(se) - z.at({n, y[n]})) / 4;
  }
  CHECK(loss.item() == doctest::Approx(expect).epsilon(1e-14));
  auto r = gradcheck([&y](const std::vector<VarD>& v) { return cross_entropy(v[0], y); }, {z});
  CHECK_MESSAGE(r.ok, r.message);
  // logits of 1000 do not overflow (log-softmax subtracts the maximum)
  VarF big = cross_entropy(VarF(TensorF::from({1, 2}, {1000.f, 0.f})), {1});
  CHECK(big.item() == doctest::Approx(1000.0).epsilon(1e-6));
  CHECK_THROWS_WITH_AS(cross_entropy(VarD(z), {0, 1, 5, 2}),
                       "cross_entropy: expected labels in [0, 5), got 5 at position 2", std::invalid_argument);
  CHECK_THROWS_WITH_AS(cross_entropy(VarD(z), {0, 1}), "cross_entropy: expected logits [2, K] for 2 labels, got logits [4, 5]",
                       ShapeError);
}

TEST_CASE("accuracy: fraction of argmax hits, first maximum on ties, label errors") {
  // rows' argmax: 2, 0, 1 (tie between 1 and 3 -> the first), 3
  TensorD z = TensorD::from({4, 4}, {0, 1, 5, 2,  /**/ 9, 1, 1, 1,  /**/ 0, 7, 0, 7,  /**/ -3, -2, -1, 0});
  CHECK(accuracy(z, {2, 0, 1, 3}) == 1.0);
  CHECK(accuracy(z, {2, 0, 3, 3}) == 0.75);  // the tie goes to class 1, not 3
  CHECK(accuracy(z, {0, 1, 2, 0}) == 0.0);
  CHECK(accuracy(TensorF::from({2, 2}, {1.f, 0.f, 0.f, 1.f}), {0, 0}) == 0.5);
  CHECK_THROWS_WITH_AS(accuracy(z, {0, 1, 4, 0}), "accuracy: expected labels in [0, 4), got 4 at position 2",
                       std::invalid_argument);
  CHECK_THROWS_AS(accuracy(z, {0, 1}), ShapeError);
}

TEST_CASE("embedding: rows gathered, repeated rows' gradients summed, float64 gradcheck, index errors") {
  Rng rng(92);
  TensorD w = rng.normal<double>({5, 3});
  const std::vector<int64_t> idx = {4, 0, 4, 2, 4, 1};  // row 4 three times, row 3 never
  VarD W(w, true);
  VarD y = embedding(W, idx);
  REQUIRE(y.shape() == Shape{6, 3});
  for (int64_t n = 0; n < 6; ++n)
    for (int64_t d = 0; d < 3; ++d) CHECK(y.value().at({n, d}) == w.at({idx[n], d}));
  sum(y).backward();
  for (int64_t d = 0; d < 3; ++d) {
    CHECK(W.grad().at({4, d}) == 3.0);
    CHECK(W.grad().at({3, d}) == 0.0);
    CHECK(W.grad().at({0, d}) == 1.0);
  }
  auto r = gradcheck([&idx](const std::vector<VarD>& v) { return embedding(v[0], idx); }, {w});
  CHECK_MESSAGE(r.ok, r.message);
  // float32 spot check against the float64 values
  TensorF wf = rng.normal<float>({11, 4});
  VarF yf = embedding(VarF(wf), {10, 3});
  CHECK(yf.value().at({0, 2}) == wf.at({10, 2}));
  CHECK(yf.value().at({1, 0}) == wf.at({3, 0}));
  CHECK_THROWS_WITH_AS(embedding(VarD(w), {0, 5}), "embedding: expected indices in [0, 5), got 5 at position 1",
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(embedding(VarD(w), {-1}), "embedding: expected indices in [0, 5), got -1 at position 0",
                       std::invalid_argument);
  CHECK_THROWS_AS(embedding(VarD(TensorD({5})), {0}), ShapeError);
}
