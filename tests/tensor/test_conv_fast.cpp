// The Winograd float32 convolutions (tensor/winograd) against the generic im2col + GEMM kernels of
// tensor/conv, forward, input gradient and weight gradient (and bias gradient), for every 3x3
// stride-1 shape of the UNet and for odd sizes (H, W not multiples of the tile, channel counts not
// multiples of 8, batch 1 and 3, padding 0, 1 and 2).
//
// Error measure: per tensor max|fast - ref| / max|ref| (docs/conventions.md). Two references: the generic
// kernel in float32 (the kernel the fast path replaces) and in float64 (the exact answer, to show
// how much of the difference is the fast path's own rounding).
// Bounds, with unit-normal x, w and gy:
//   F(2x2,3x3): transform constants 0, +-1, +-1/2: about float32 GEMM rounding; bound 1e-5
//               (measured at most 1.6e-6 over all cases below: y 6.9e-7, dx 5.0e-7, dw 1.6e-6).
//   F(4x4,3x3): constants up to 8 in A^T and 1/24 in G amplify rounding (Lavin & Gray 2016, sec. 5;
//               the error grows with the tile); bound 1e-4 (measured at most y 8.2e-6, dx 9.9e-6,
//               dw 2.1e-5, the last at batch 64 where dU sums ~1600 tiles per thread in float), a
//               tenth of docs/conventions.md's ~1e-3 allowance for Winograd.
#include <doctest/doctest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <vector>

#include "tensor/conv.h"
#include "tensor/random.h"
#include "tensor/winograd.h"
#include "tests/tensor/kernel_paths.h"

using namespace dd;
using dd::testing::for_each_kernel_path;
using dd::testing::for_each_vector_path;

namespace {

template <class A, class B>
double rel_err(const A* a, const B* b, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) {
    num = std::max(num, std::fabs(static_cast<double>(a[i]) - static_cast<double>(b[i])));
    den = std::max(den, std::fabs(static_cast<double>(b[i])));
  }
  return den > 0 ? num / den : num;
}

std::vector<double> to_double(const Tensor<float>& t) { return std::vector<double>(t.data(), t.data() + t.numel()); }

struct Case {
  int64_t N, C, H, W, O, pad;
};

double bound(int tile) { return tile == 4 ? 1e-4 : 1e-5; }

// Runs the three kernels both ways and checks all four outputs against both references.
void check_case(const Case& k, int tile, uint64_t seed) {
  const Shape xs{k.N, k.C, k.H, k.W}, wsh{k.O, k.C, 3, 3}, bs{k.O};
  const Conv2dGeometry g = conv2d_geometry(xs, wsh, &bs, 1, k.pad);
  CAPTURE(k.N);
  CAPTURE(k.C);
  CAPTURE(k.H);
  CAPTURE(k.W);
  CAPTURE(k.O);
  CAPTURE(k.pad);
  CAPTURE(tile);
  Rng rng(seed);
  Tensor<float> x = rng.normal<float>(xs), w = rng.normal<float>(wsh), b = rng.normal<float>(bs);
  Tensor<float> gy = rng.normal<float>({g.N, g.O, g.Ho, g.Wo});
  const int64_t ny = g.N * g.O * g.Ho * g.Wo, nx = x.numel(), nw = w.numel();

  Workspace<float> wsf;
  Workspace<double> wsd;
  // generic float32 and float64
  std::vector<float> y_f(ny), dx_f(nx), dw_f(nw), db_f(g.O);
  conv2d_forward_generic(g, x.data(), w.data(), b.data(), y_f.data(), wsf);
  conv2d_backward_input_generic(g, gy.data(), w.data(), dx_f.data(), wsf);
  conv2d_backward_weight_generic(g, gy.data(), x.data(), dw_f.data(), db_f.data(), wsf);
  const std::vector<double> xd = to_double(x), wd = to_double(w), bd = to_double(b), gyd = to_double(gy);
  std::vector<double> y_d(ny), dx_d(nx), dw_d(nw), db_d(g.O);
  conv2d_forward_generic(g, xd.data(), wd.data(), bd.data(), y_d.data(), wsd);
  conv2d_backward_input_generic(g, gyd.data(), wd.data(), dx_d.data(), wsd);
  conv2d_backward_weight_generic(g, gyd.data(), xd.data(), dw_d.data(), db_d.data(), wsd);

  // fast path; outputs prefilled with NaN to catch elements it fails to write
  Workspace<float> ws;
  std::vector<float> y(ny, NAN), dx(nx, NAN), dw(nw, NAN), db(g.O, NAN);
  winograd_conv2d_forward(g, x.data(), w.data(), b.data(), y.data(), ws, tile);
  winograd_conv2d_backward_input(g, gy.data(), w.data(), dx.data(), ws, tile);
  winograd_conv2d_backward_weight(g, gy.data(), x.data(), dw.data(), db.data(), ws, tile);

  const double e[4][2] = {{rel_err(y.data(), y_f.data(), ny), rel_err(y.data(), y_d.data(), ny)},
                          {rel_err(dx.data(), dx_f.data(), nx), rel_err(dx.data(), dx_d.data(), nx)},
                          {rel_err(dw.data(), dw_f.data(), nw), rel_err(dw.data(), dw_d.data(), nw)},
                          {rel_err(db.data(), db_f.data(), g.O), rel_err(db.data(), db_d.data(), g.O)}};
  const char* names[4] = {"y", "dx", "dw", "db"};
  for (int i = 0; i < 4; ++i) {
    CAPTURE(names[i]);
    CHECK(std::isfinite(e[i][0]));
    CHECK(e[i][0] <= bound(tile));
    CHECK(e[i][1] <= bound(tile));
  }
  // Keep the measured errors visible in the test log (the bounds above are documented from them).
  MESSAGE("F(" << tile << ") N" << k.N << " C" << k.C << "->O" << k.O << " " << k.H << "x" << k.W << " pad" << k.pad
               << ": vs f32/f64  y " << e[0][0] << "/" << e[0][1] << "  dx " << e[1][0] << "/" << e[1][1] << "  dw "
               << e[2][0] << "/" << e[2][1]);
}

}  // namespace

TEST_CASE("winograd conv: every 3x3 stride-1 shape of the UNet, F(2x2) and F(4x4)") {
  // (N, C, H, W, O, pad); batch 9 makes several chunks per thread with a short last one.
  const Case unet[] = {
      {9, 1, 28, 28, 32, 1},   // conv_in
      {9, 32, 28, 28, 32, 1},  // level 0 ResBlock convs
      {9, 96, 28, 28, 32, 1},  // up.0 block 0 conv1 (cat 64 + 32)
      {9, 64, 28, 28, 32, 1},  // up.0 block 1 conv1
      {9, 64, 28, 28, 64, 1},  // upsample conv to 28
      {9, 32, 28, 28, 1, 1},   // conv_out
      {9, 32, 14, 14, 64, 1},  // down.1 conv1
      {9, 64, 14, 14, 64, 1},  // level 1 convs, upsample conv to 14
      {9, 128, 14, 14, 64, 1}, {9, 96, 14, 14, 64, 1},  // up.1 conv1s
      {9, 64, 7, 7, 64, 1},                             // level 2 and middle convs
      {9, 128, 7, 7, 64, 1},                            // up.2 conv1s
  };
  for_each_vector_path([&](KernelPath) {
    uint64_t seed = 100;
    for (const Case& k : unet)
      for (int tile : {2, 4}) check_case(k, tile, seed++);
  });
}

TEST_CASE("winograd conv: odd sizes, batch 1 and 3, padding 0 and 2, tiny maps") {
  const Case odd[] = {
      {1, 5, 11, 13, 7, 1}, {3, 13, 9, 6, 9, 1}, {3, 3, 10, 7, 4, 0}, {2, 3, 10, 7, 4, 2}, {1, 2, 1, 1, 3, 1},
      {3, 1, 3, 2, 1, 1},   {1, 9, 5, 5, 10, 0}, {3, 17, 15, 17, 11, 1}, {2, 4, 3, 3, 2, 0},
  };
  for_each_vector_path([&](KernelPath) {
    uint64_t seed = 200;
    for (const Case& k : odd)
      for (int tile : {2, 4}) check_case(k, tile, seed++);
  });
}

TEST_CASE("winograd conv: batch 64 (several chunks per thread), default tile") {
  for_each_vector_path([&](KernelPath) {
    check_case({64, 32, 28, 28, 32, 1},
               winograd_tile(conv2d_geometry({64, 32, 28, 28}, {32, 32, 3, 3}, nullptr, 1, 1)), 300);
    check_case({64, 64, 7, 7, 64, 1}, 0 + 2, 301);
  });
}

TEST_CASE("winograd conv: a reused workspace and a second call give the same result") {
  for_each_vector_path([&](KernelPath) {
    Rng rng(7);
    const Conv2dGeometry g = conv2d_geometry({3, 8, 12, 12}, {5, 8, 3, 3}, nullptr, 1, 1);
    Tensor<float> x = rng.normal<float>({3, 8, 12, 12}), w = rng.normal<float>({5, 8, 3, 3});
    Tensor<float> gy = rng.normal<float>({3, 5, 12, 12});
    Workspace<float> ws;
    std::vector<float> a(3 * 5 * 144), b2(a.size()), dw1(5 * 8 * 9), dw2(dw1.size());
    winograd_conv2d_forward(g, x.data(), w.data(), nullptr, a.data(), ws, 4);
    winograd_conv2d_backward_weight(g, gy.data(), x.data(), dw1.data(), nullptr, ws, 4);
    // a larger call in between grows the workspace
    const Conv2dGeometry big = conv2d_geometry({4, 16, 20, 20}, {16, 16, 3, 3}, nullptr, 1, 1);
    std::vector<float> xb(4 * 16 * 400, 0.5f), wb(16 * 16 * 9, 0.25f), yb(4 * 16 * 400);
    winograd_conv2d_forward(big, xb.data(), wb.data(), nullptr, yb.data(), ws, 2);
    winograd_conv2d_forward(g, x.data(), w.data(), nullptr, b2.data(), ws, 4);
    winograd_conv2d_backward_weight(g, gy.data(), x.data(), dw2.data(), nullptr, ws, 4);
    CHECK(a == b2);
    CHECK(dw1 == dw2);
  });
}

TEST_CASE("winograd conv: unsupported geometries and tiles are refused by name") {
  Workspace<float> ws;
  std::vector<float> buf(4096);
  const Conv2dGeometry s2 = conv2d_geometry({1, 2, 8, 8}, {2, 2, 3, 3}, nullptr, 2, 1);
  const Conv2dGeometry k1 = conv2d_geometry({1, 2, 8, 8}, {2, 2, 1, 1}, nullptr, 1, 0);
  CHECK_FALSE(winograd_supported(s2));
  CHECK_FALSE(winograd_supported(k1));
  CHECK_THROWS_AS(winograd_conv2d_forward(s2, buf.data(), buf.data(), nullptr, buf.data(), ws), std::invalid_argument);
  CHECK_THROWS_AS(winograd_conv2d_backward_input(k1, buf.data(), buf.data(), buf.data(), ws), std::invalid_argument);
  const Conv2dGeometry ok = conv2d_geometry({1, 2, 8, 8}, {2, 2, 3, 3}, nullptr, 1, 1);
  CHECK_THROWS_AS(winograd_conv2d_forward(ok, buf.data(), buf.data(), nullptr, buf.data(), ws, 3),
                  std::invalid_argument);
}

TEST_CASE("conv2d_* dispatch: float32 3x3 stride-1 with C >= 8 runs Winograd on a vector path, the rest (and all on the generic path) the generic kernels") {
  Rng rng(9);
  auto run = [&](const Shape& xs, const Shape& wsh, int64_t stride, int64_t pad, bool expect_fast) {
    CAPTURE(shape_str(xs));
    CAPTURE(shape_str(wsh));
    const Conv2dGeometry g = conv2d_geometry(xs, wsh, nullptr, stride, pad);
    Tensor<float> x = rng.normal<float>(xs), w = rng.normal<float>(wsh), gy = rng.normal<float>({g.N, g.O, g.Ho, g.Wo});
    const size_t ny = g.N * g.O * g.Ho * g.Wo;
    std::vector<float> y(ny), yr(ny), dx(x.numel()), dxr(x.numel()), dw(w.numel()), dwr(w.numel());
    Workspace<float> ws;
    conv2d_forward(g, x.data(), w.data(), static_cast<float*>(nullptr), y.data(), ws);
    conv2d_backward_input(g, gy.data(), w.data(), dx.data(), ws);
    conv2d_backward_weight(g, gy.data(), x.data(), dw.data(), static_cast<float*>(nullptr), ws);
    CHECK(winograd_supported(g) == (g.kh == 3 && stride == 1));
    if (expect_fast) {
      winograd_conv2d_forward(g, x.data(), w.data(), static_cast<float*>(nullptr), yr.data(), ws);
      winograd_conv2d_backward_input(g, gy.data(), w.data(), dxr.data(), ws);
      winograd_conv2d_backward_weight(g, gy.data(), x.data(), dwr.data(), static_cast<float*>(nullptr), ws);
    } else {
      conv2d_forward_generic(g, x.data(), w.data(), static_cast<float*>(nullptr), yr.data(), ws);
      conv2d_backward_input_generic(g, gy.data(), w.data(), dxr.data(), ws);
      conv2d_backward_weight_generic(g, gy.data(), x.data(), dwr.data(), static_cast<float*>(nullptr), ws);
    }
    CHECK(y == yr);  // the same kernel, so bit-identical
    CHECK(dx == dxr);
    CHECK(dw == dwr);
  };
  for_each_kernel_path([&](KernelPath path) {
    const bool vector = path != KernelPath::generic;
    run({2, 32, 14, 14}, {16, 32, 3, 3}, 1, 1, vector);
    run({2, 1, 14, 14}, {16, 1, 3, 3}, 1, 1, false);   // conv_in: 1 input channel
    run({2, 16, 14, 14}, {16, 16, 3, 3}, 2, 1, false);  // downsample
    run({2, 16, 14, 14}, {8, 16, 1, 1}, 1, 0, false);   // 1x1
  });
}

TEST_CASE("Winograd weight gradient: bit-identical over repeated runs although chunks go to threads dynamically") {
  // 24 images of 28x28 at F(4x4) are 48 chunks in 8 groups at 2 threads; which thread takes which
  // group changes from run to run, the sum must not.
  const int saved = omp_get_max_threads();
  omp_set_num_threads(2);
  Rng rng(41);
  const Conv2dGeometry g = conv2d_geometry({24, 16, 28, 28}, {16, 16, 3, 3}, nullptr, 1, 1);
  Tensor<float> x = rng.normal<float>({24, 16, 28, 28}), gy = rng.normal<float>({24, 16, 28, 28});
  for_each_vector_path([&](KernelPath) {
    Workspace<float> ws;
    std::vector<float> first(16 * 16 * 9), again(16 * 16 * 9);
    winograd_conv2d_backward_weight(g, gy.data(), x.data(), first.data(), static_cast<float*>(nullptr), ws, 4);
    for (int r = 0; r < 6; ++r) {
      winograd_conv2d_backward_weight(g, gy.data(), x.data(), again.data(), static_cast<float*>(nullptr), ws, 4);
      REQUIRE(again == first);
    }
  });
  omp_set_num_threads(saved);
}

TEST_CASE("the Winograd entry points refuse the generic path by name (it has no vector kernels)") {
  for_each_kernel_path({KernelPath::generic}, [&](KernelPath) {
    Workspace<float> ws;
    std::vector<float> buf(4096);
    const Conv2dGeometry g = conv2d_geometry({1, 8, 8, 8}, {8, 8, 3, 3}, nullptr, 1, 1);
    CHECK_THROWS_WITH_AS(winograd_conv2d_forward(g, buf.data(), buf.data(), nullptr, buf.data(), ws),
                         doctest::Contains("generic path"), std::logic_error);
  });
}

TEST_CASE("generic float32 convolutions (1x1, stride 2, conv_in, conv_out) against float64, on every path and 1-3 threads") {
  // The float32 generic kernels use the small GEMM of the active path (images one per thread) and
  // OpenBLAS otherwise; float64 always OpenBLAS, the exact reference. Bound 1e-5 of max|ref| (float
  // GEMM rounding over at most 5 * 784 terms; measured below 2e-6).
  const int saved = omp_get_max_threads();
  struct G {
    int64_t N, C, H, O, k, stride;
  };
  const G shapes[] = {{5, 96, 28, 32, 1, 1}, {5, 32, 14, 64, 1, 1}, {3, 32, 28, 32, 3, 2},
                      {5, 64, 14, 64, 3, 2}, {5, 1, 28, 32, 3, 1},  {4, 32, 28, 1, 3, 1}, {1, 17, 9, 5, 3, 2}};
  for_each_kernel_path([&](KernelPath) {
    for (int threads : {1, 2, 3}) {
      omp_set_num_threads(threads);
      CAPTURE(threads);
      uint64_t seed = 500;
      for (const G& s : shapes) {
        CAPTURE(s.C);
        CAPTURE(s.O);
        CAPTURE(s.H);
        CAPTURE(s.k);
        CAPTURE(s.stride);
        const Shape xs{s.N, s.C, s.H, s.H}, wsh{s.O, s.C, s.k, s.k}, bs{s.O};
        const Conv2dGeometry g = conv2d_geometry(xs, wsh, &bs, s.stride, s.k / 2);
        Rng rng(seed++);
        Tensor<float> x = rng.normal<float>(xs), w = rng.normal<float>(wsh), b = rng.normal<float>(bs);
        Tensor<float> gy = rng.normal<float>({g.N, g.O, g.Ho, g.Wo});
        const int64_t ny = g.N * g.O * g.Ho * g.Wo;
        Workspace<float> wsf;
        Workspace<double> wsd;
        std::vector<float> y(ny, NAN), dx(x.numel(), NAN), dw(w.numel(), NAN), db(g.O, NAN);
        conv2d_forward_generic(g, x.data(), w.data(), b.data(), y.data(), wsf);
        conv2d_backward_input_generic(g, gy.data(), w.data(), dx.data(), wsf);
        conv2d_backward_weight_generic(g, gy.data(), x.data(), dw.data(), db.data(), wsf);
        const std::vector<double> xd = to_double(x), wd = to_double(w), bd = to_double(b), gyd = to_double(gy);
        std::vector<double> yd(ny), dxd(x.numel()), dwd(w.numel()), dbd(g.O);
        conv2d_forward_generic(g, xd.data(), wd.data(), bd.data(), yd.data(), wsd);
        conv2d_backward_input_generic(g, gyd.data(), wd.data(), dxd.data(), wsd);
        conv2d_backward_weight_generic(g, gyd.data(), xd.data(), dwd.data(), dbd.data(), wsd);
        const double ey = rel_err(y.data(), yd.data(), ny), edx = rel_err(dx.data(), dxd.data(), x.numel());
        const double edw = rel_err(dw.data(), dwd.data(), w.numel()), edb = rel_err(db.data(), dbd.data(), g.O);
        CHECK(ey <= 1e-5);
        CHECK(edx <= 1e-5);
        CHECK(edw <= 1e-5);
        CHECK(edb <= 1e-5);
        // the public dispatch gives the same (it runs these kernels, or Winograd for conv_out)
        std::vector<float> dw2(w.numel(), NAN);
        conv2d_backward_weight(g, gy.data(), x.data(), dw2.data(), static_cast<float*>(nullptr), wsf);
        CHECK(rel_err(dw2.data(), dwd.data(), w.numel()) <= (winograd_supported(g) && g.C >= 8 ? 1e-4 : 1e-5));
        if (threads == 1)
          MESSAGE("generic f32 vs f64 C" << s.C << "->O" << s.O << " k" << s.k << "/" << s.stride << " @" << s.H
                                         << ": y " << ey << " dx " << edx << " dw " << edw);
      }
    }
  });
  omp_set_num_threads(saved);
}
