// Bit-identical training for every fixed thread count: the same few steps (forward, mse_loss,
// backward, global-norm clipping, Adam) run twice at 1, 2, 3 and 4 threads (oversubscribing the
// cores on purpose), on each kernel path of tensor/kernels.h, must leave identical weights each time. With three or more threads an
// `omp reduction` adds the threads' partial sums in the order they finish, so any such reduction
// feeding the loss, the clipping norm or a gradient makes two runs differ in the last bits.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "autograd/ops.h"
#include "nn/optim.h"
#include "nn/unet.h"
#include "tensor/parallel.h"
#include "tests/tensor/kernel_paths.h"

using namespace dd;

namespace {

// Restores the thread count the suite started with.
struct ThreadGuard {
  int saved = get_num_threads();
  ~ThreadGuard() { set_num_threads(saved); }
};

std::vector<float> train_tiny_unet(int threads) {
  set_num_threads(threads);
  UNetConfig c;
  c.ch = 8;  // 8 and 16 channels: the Winograd kernels (C >= 8) and the generic 1x1 / strided / conv_in ones
  c.ch_mult = {1, 2};
  c.attn_resolutions = {8};
  c.resolution = 16;
  Rng rng(11);
  UNet<float> net(c, rng);
  AdamConfig ac;
  ac.lr = 1e-3;
  Adam<float> adam(net, ac);
  for (int step = 0; step < 3; ++step) {
    // 6 images: split unevenly over 4 threads, so partitions differ from one thread count to the next
    VarF x(rng.normal<float>({6, 1, 16, 16}));
    TensorF eps = rng.normal<float>({6, 1, 16, 16});
    net.zero_grad();
    VarF loss = mse_loss(net.forward(x, {0, 100, 250, 500, 750, 999}), VarF(eps));
    loss.backward();
    clip_grad_norm(net, 0.05);  // small enough that it rescales: the norm itself feeds the weights
    adam.step();
  }
  return net.flat_values().to_vector();
}

bool bit_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("training steps give bit-identical weights run to run at 1, 2, 3 and 4 threads, on every kernel path") {
  ThreadGuard guard;
  dd::testing::for_each_kernel_path([&](KernelPath) {
    for (int threads : {1, 2, 3, 4}) {
      CAPTURE(threads);
      const std::vector<float> first = train_tiny_unet(threads);
      const std::vector<float> second = train_tiny_unet(threads);
      CHECK(bit_equal(first, second));
    }
  });
}

TEST_CASE("ordered_sum, mse_loss and clip_grad_norm give the same bits for any thread count") {
  ThreadGuard guard;
  // Large enough that every loop runs in parallel; values of mixed magnitude so that the order of
  // the additions shows in the result.
  const int64_t n = 3 * kOrderedSumChunk * 7 + 123;
  TensorF a = Rng(5).normal<float>({n}), b = Rng(6).normal<float>({n}, 0.0f, 100.0f);
  auto run = [&](int threads, double* sum, float* mse, double* norm) {
    set_num_threads(threads);
    const float* pa = a.data();
    *sum = ordered_sum(n, [&](int64_t i) { return static_cast<double>(pa[i]) * (i % 7 == 0 ? 1e6 : 1.0); });
    *mse = mse_loss(VarF(a), VarF(b)).value().item();
    TensorF g = b.clone();
    *norm = clip_grad_norm(g, 1.0);
  };
  double sum1, norm1;
  float mse1;
  run(1, &sum1, &mse1, &norm1);
  // The chunked sum is the plain sequential sum of the chunk sums.
  double want = 0;
  for (int64_t c0 = 0; c0 < n; c0 += kOrderedSumChunk) {
    double s = 0;
    for (int64_t i = c0; i < std::min(n, c0 + kOrderedSumChunk); ++i)
      s += static_cast<double>(a.data()[i]) * (i % 7 == 0 ? 1e6 : 1.0);
    want += s;
  }
  CHECK(sum1 == want);
  for (int threads : {2, 3, 4}) {
    CAPTURE(threads);
    for (int rep = 0; rep < 3; ++rep) {
      double s, nm;
      float m;
      run(threads, &s, &m, &nm);
      CHECK(s == sum1);
      CHECK(m == mse1);
      CHECK(nm == norm1);
    }
  }
}
