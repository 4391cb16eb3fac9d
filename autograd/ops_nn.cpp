// Network layers other than convolution and normalization: nearest upsampling, linear, attention,
// dropout, the sinusoidal timestep embedding (a constant), 2x2 pooling and cross-entropy.
#include <algorithm>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <string>

#include "autograd/ops.h"
#include "tensor/attention.h"
#include "tensor/blas.h"
#include "tensor/elementwise.h"
#include "tensor/pool.h"
#include "tensor/softmax.h"
#include "tensor/upsample.h"

namespace dd {

// y[n,c,i,j] = x[n,c, floor(i/2), floor(j/2)]
//   dL/dx[n,c,h,w] = sum_{a,b in {0,1}} g[n,c, 2h+a, 2w+b]
template <class T>
Var<T> upsample_nearest2x(const Var<T>& x) {
  const Shape& s = x.shape();
  if (s.size() != 4) shape_error("upsample_nearest2x", "input [N, C, H, W]", shape_str(s));
  const int64_t planes = s[0] * s[1], H = s[2], W = s[3];
  Tensor<T> xv = x.value().contiguous();
  Tensor<T> y = Tensor<T>::uninitialized({s[0], s[1], 2 * H, 2 * W});
  upsample_nearest2x_forward(planes, H, W, xv.data(), y.data());
  return make_result<T>("upsample_nearest2x", y, {x}, [s, planes, H, W](const Tensor<T>& g, const std::vector<bool>&) {
    const Tensor<T> gc = g.contiguous();
    Tensor<T> dx = Tensor<T>::uninitialized(s);
    upsample_nearest2x_backward(planes, H, W, gc.data(), dx.data());
    return std::vector<Tensor<T>>{dx};
  });
}

// y = x W^T + b, x [..., in] (rows M), W [out, in], b [out]
//   dL/dx = G W,   dL/dW = G^T x,   dL/db = sum over rows of G
template <class T>
Var<T> linear(const Var<T>& x, const Var<T>& w, const Var<T>& b) {
  const Shape& xs = x.shape();
  const Shape& ws = w.shape();
  if (xs.empty() || ws.size() != 2 || ws[1] != xs.back())
    shape_error("linear", "weight [out, " + (xs.empty() ? std::string("in") : std::to_string(xs.back())) +
                              "] for input " + shape_str(xs),
                "weight " + shape_str(ws));
  const bool has_bias = b.defined();
  if (has_bias && b.shape() != Shape{ws[0]})
    shape_error("linear", "bias [" + std::to_string(ws[0]) + "] for weight " + shape_str(ws),
                "bias " + shape_str(b.shape()));
  const int64_t in = ws[1], out = ws[0], M = in > 0 ? x.numel() / in : 0;
  Shape ys = xs;
  ys.back() = out;
  Tensor<T> xv = x.value().contiguous(), wv = w.value().contiguous();
  Tensor<T> y(ys);
  if (has_bias) {
    Tensor<T> bv = b.value().contiguous();
    for (int64_t r = 0; r < M; ++r) std::copy(bv.data(), bv.data() + out, y.data() + r * out);
  }
  if (M > 0 && out > 0 && in > 0)
    gemm(false, true, M, out, in, T(1), xv.data(), in, wv.data(), in, has_bias ? T(1) : T(0), y.data(), out);
  return make_result<T>("linear", y, {x, w, b}, [xv, wv, M, in, out](const Tensor<T>& g, const std::vector<bool>& needs) {
    const Tensor<T> gc = g.contiguous();
    Tensor<T> dx, dw, db;
    if (needs[0]) {
      dx = Tensor<T>(xv.shape());
      if (M > 0 && in > 0 && out > 0) gemm(false, false, M, in, out, T(1), gc.data(), out, wv.data(), in, T(0), dx.data(), in);
    }
    if (needs[1]) {
      dw = Tensor<T>(wv.shape());
      if (M > 0 && in > 0 && out > 0) gemm(true, false, out, in, M, T(1), gc.data(), out, xv.data(), in, T(0), dw.data(), in);
    }
    if (needs[2]) {
      db = Tensor<T>({out});
      for (int64_t o = 0; o < out; ++o) {
        double s = 0;
        for (int64_t r = 0; r < M; ++r) s += gc.data()[r * out + o];
        db.data()[o] = static_cast<T>(s);
      }
    }
    return std::vector<Tensor<T>>{dx, dw, db};
  });
}

namespace {
template <class T>
Workspace<T>& attention_workspace() {
  thread_local Workspace<T> ws;
  return ws;
}
}  // namespace

// Per batch item, Q, K, V [C, N]: S = scale Q^T K, P = softmax over each row of S, out = V P^T.
//   dL/dV = G P,   dL/dP = G^T V,   dL/dS[i,j] = P[i,j] (dL/dP[i,j] - sum_l dL/dP[i,l] P[i,l])
//   dL/dQ = scale K (dL/dS)^T,   dL/dK = scale Q dL/dS
template <class T>
Var<T> attention(const Var<T>& q, const Var<T>& k, const Var<T>& v, double scale) {
  const Shape& s = q.shape();
  if (s.size() != 3) shape_error("attention", "q [B, C, N]", "q " + shape_str(s));
  if (k.shape() != s || v.shape() != s)
    shape_error("attention", "k and v of the shape of q " + shape_str(s),
                "k " + shape_str(k.shape()) + ", v " + shape_str(v.shape()));
  const int64_t B = s[0], C = s[1], N = s[2];
  const T sc = static_cast<T>(scale);
  Tensor<T> qv = q.value().contiguous(), kv = k.value().contiguous(), vv = v.value().contiguous();
  Tensor<T> probs({B, N, N}), out(s);
  attention_forward(B, C, N, sc, qv.data(), kv.data(), vv.data(), probs.data(), out.data());
  return make_result<T>("attention", out, {q, k, v},
                        [qv, kv, vv, probs, B, C, N, sc](const Tensor<T>& g, const std::vector<bool>& needs) {
                          const Tensor<T> gc = g.contiguous();
                          Tensor<T> dq = needs[0] ? Tensor<T>(qv.shape()) : Tensor<T>();
                          Tensor<T> dk = needs[1] ? Tensor<T>(qv.shape()) : Tensor<T>();
                          Tensor<T> dv = needs[2] ? Tensor<T>(qv.shape()) : Tensor<T>();
                          attention_backward(B, C, N, sc, qv.data(), kv.data(), vv.data(), probs.data(), gc.data(),
                                             needs[0] ? dq.data() : nullptr, needs[1] ? dk.data() : nullptr,
                                             needs[2] ? dv.data() : nullptr, attention_workspace<T>());
                          return std::vector<Tensor<T>>{dq, dk, dv};
                        });
}

namespace {
void check_dropout_p(double p) {
  if (!(p >= 0 && p <= 1)) throw std::invalid_argument("dropout: expected p in [0, 1], got " + std::to_string(p));
}

// y = x m with the mask m = 0 where u < p, else 1/(1-p); u in [0, 1) (double, so that p is compared at
// full precision whatever T is), one per element of x.
template <class T>
Var<T> apply_dropout_mask(const Var<T>& x, double p, const Tensor<double>& u) {
  const T keep_scale = p < 1 ? static_cast<T>(1.0 / (1.0 - p)) : T(0);
  Tensor<T> mask(x.shape());
  for (int64_t i = 0, n = mask.numel(); i < n; ++i) mask.data()[i] = u.data()[i] >= p ? keep_scale : T(0);
  Tensor<T> y = zip(x.value(), mask, [](T a, T m) { return a * m; }, "dropout");
  return make_result<T>("dropout", y, {x}, [mask](const Tensor<T>& g, const std::vector<bool>&) {
    return std::vector<Tensor<T>>{zip(g, mask, [](T a, T m) { return a * m; }, "dropout backward")};
  });
}
}  // namespace

// y = x m, m = 0 with probability p, else 1/(1-p) (inverted dropout, so E[y] = x)
//   dL/dx = g m
template <class T>
Var<T> dropout(const Var<T>& x, double p, bool training, Rng& rng) {
  check_dropout_p(p);
  if (!training || p == 0) return x;
  return apply_dropout_mask(x, p, rng.uniform<double>(x.shape()));
}

// The same y = x m, dL/dx = g m, with row r's uniforms (r = first_row + i for row i of x along
// dim 0, b = ceil(row size / 2) Philox blocks per row) from blocks [r b, (r + 1) b) of `stream`.
template <class T>
Var<T> dropout_rows(const Var<T>& x, double p, bool training, const Rng& stream, int64_t first_row) {
  check_dropout_p(p);
  if (first_row < 0) throw std::invalid_argument("dropout_rows: expected first_row >= 0, got " + std::to_string(first_row));
  if (x.dim() < 1) shape_error("dropout_rows", "a tensor with a batch dimension", shape_str(x.shape()));
  if (!training || p == 0) return x;
  const int64_t rows = x.size(0), row_size = rows > 0 ? x.numel() / rows : 0;
  const uint64_t blocks_per_row = static_cast<uint64_t>((row_size + 1) / 2);
  Shape row_shape = x.shape();
  row_shape[0] = 1;
  Tensor<double> u(x.shape());
  for (int64_t i = 0; i < rows; ++i) {
    Rng row_rng = stream.at_block(static_cast<uint64_t>(first_row + i) * blocks_per_row);
    const Tensor<double> row = row_rng.uniform<double>(row_shape);
    std::copy_n(row.data(), row_size, u.data() + i * row_size);
  }
  return apply_dropout_mask(x, p, u);
}

// e[n, i] = sin(t_n f_i), e[n, half + i] = cos(t_n f_i), f_i = exp(-ln(10000) i / (half - 1)),
// half = dim / 2 (Ho et al.'s get_timestep_embedding, as in tools/torch_unet.py). Computed in T
// step by step as PyTorch does in float32, so the float path rounds as PyTorch's does.
template <class T>
Tensor<T> timestep_embedding(const std::vector<int64_t>& t, int dim) {
  if (dim < 4 || dim % 2 != 0)
    throw std::invalid_argument("timestep_embedding: expected an even dim >= 4 (half - 1 > 0), got " +
                                std::to_string(dim));
  const int64_t half = dim / 2, n = static_cast<int64_t>(t.size());
  const T step = static_cast<T>(-std::log(10000.0) / static_cast<double>(half - 1));
  Tensor<T> e({n, static_cast<int64_t>(dim)});
  for (int64_t i = 0; i < half; ++i) {
    const T f = std::exp(static_cast<T>(i) * step);
    for (int64_t r = 0; r < n; ++r) {
      const T a = static_cast<T>(t[r]) * f;
      e.data()[r * dim + i] = std::sin(a);
      e.data()[r * dim + half + i] = std::cos(a);
    }
  }
  return e;
}

namespace {
// x [N,C,H,W] with H, W >= 2 -> the output shape [N,C,H/2,W/2]
Shape pool2x2_shape(const Shape& s, const char* op) {
  if (s.size() != 4 || s[2] < 2 || s[3] < 2) shape_error(op, "input [N, C, H, W] with H, W >= 2", shape_str(s));
  return {s[0], s[1], s[2] / 2, s[3] / 2};
}
}  // namespace

// y[n,c,i,j] = max_{a,b in {0,1}} x[n,c,2i+a,2j+b]
//   dL/dx = g at the (first) maximum of each window, 0 elsewhere
template <class T>
Var<T> max_pool2x2(const Var<T>& x) {
  const Shape& s = x.shape();
  const Shape ys = pool2x2_shape(s, "max_pool2x2");
  Tensor<T> xv = x.value().contiguous();
  Tensor<T> y(ys);
  auto argmax = std::make_shared<std::vector<int64_t>>(static_cast<size_t>(y.numel()));
  max_pool2x2_forward(s[0] * s[1], s[2], s[3], xv.data(), y.data(), argmax->data());
  return make_result<T>("max_pool2x2", y, {x}, [s, argmax](const Tensor<T>& g, const std::vector<bool>&) {
    const Tensor<T> gc = g.contiguous();
    Tensor<T> dx = Tensor<T>::uninitialized(s);
    max_pool2x2_backward(s[0] * s[1], s[2], s[3], gc.data(), argmax->data(), dx.data());
    return std::vector<Tensor<T>>{dx};
  });
}

// y[n,c,i,j] = (1/4) sum_{a,b in {0,1}} x[n,c,2i+a,2j+b]
//   dL/dx[n,c,2i+a,2j+b] = g[n,c,i,j] / 4  (0 in a dropped odd last row or column)
template <class T>
Var<T> avg_pool2x2(const Var<T>& x) {
  const Shape& s = x.shape();
  const Shape ys = pool2x2_shape(s, "avg_pool2x2");
  Tensor<T> xv = x.value().contiguous();
  Tensor<T> y(ys);
  avg_pool2x2_forward(s[0] * s[1], s[2], s[3], xv.data(), y.data());
  return make_result<T>("avg_pool2x2", y, {x}, [s](const Tensor<T>& g, const std::vector<bool>&) {
    const Tensor<T> gc = g.contiguous();
    Tensor<T> dx = Tensor<T>::uninitialized(s);
    avg_pool2x2_backward(s[0] * s[1], s[2], s[3], gc.data(), dx.data());
    return std::vector<Tensor<T>>{dx};
  });
}

// L = -(1/N) sum_n ls[n, y_n],  ls = log_softmax(z) over the K classes
//   dL/dz[n,k] = g (softmax(z)[n,k] - [k == y_n]) / N
template <class T>
Var<T> cross_entropy(const Var<T>& logits, const std::vector<int64_t>& labels) {
  const Shape& s = logits.shape();
  if (s.size() != 2 || s[0] != static_cast<int64_t>(labels.size()))
    shape_error("cross_entropy", "logits [" + std::to_string(labels.size()) + ", K] for " +
                                     std::to_string(labels.size()) + " labels",
                "logits " + shape_str(s));
  const int64_t N = s[0], K = s[1];
  for (int64_t n = 0; n < N; ++n)
    if (labels[n] < 0 || labels[n] >= K)
      throw std::invalid_argument("cross_entropy: expected labels in [0, " + std::to_string(K) + "), got " +
                                  std::to_string(labels[n]) + " at position " + std::to_string(n));
  const Tensor<T> ls = dd::log_softmax(logits.value().contiguous(), 1);
  double acc = 0;
  for (int64_t n = 0; n < N; ++n) acc -= ls.data()[n * K + labels[n]];
  Tensor<T> loss = Tensor<T>::scalar(static_cast<T>(N > 0 ? acc / N : 0.0));
  return make_result<T>("cross_entropy", loss, {logits}, [ls, labels, N, K](const Tensor<T>& g, const std::vector<bool>&) {
    const T scale = N > 0 ? g.item() / static_cast<T>(N) : T(0);
    Tensor<T> dz = map(ls, [scale](T v) { return scale * std::exp(v); });
    for (int64_t n = 0; n < N; ++n) dz.data()[n * K + labels[n]] -= scale;
    return std::vector<Tensor<T>>{dz};
  });
}

// y[n, :] = W[i_n, :]
//   dL/dW[k, :] = sum_{n : i_n = k} g[n, :]  (rows never looked up get 0)
template <class T>
Var<T> embedding(const Var<T>& weight, const std::vector<int64_t>& indices) {
  const Shape& s = weight.shape();
  if (s.size() != 2) shape_error("embedding", "a weight [K, D]", shape_str(s));
  const int64_t K = s[0], D = s[1], N = static_cast<int64_t>(indices.size());
  for (int64_t n = 0; n < N; ++n)
    if (indices[n] < 0 || indices[n] >= K)
      throw std::invalid_argument("embedding: expected indices in [0, " + std::to_string(K) + "), got " +
                                  std::to_string(indices[n]) + " at position " + std::to_string(n));
  const Tensor<T> w = weight.value().contiguous();
  Tensor<T> y = Tensor<T>::uninitialized({N, D});
  for (int64_t n = 0; n < N; ++n) std::copy_n(w.data() + indices[n] * D, D, y.data() + n * D);
  return make_result<T>("embedding", y, {weight}, [indices, K, D, N](const Tensor<T>& g, const std::vector<bool>&) {
    const Tensor<T> gc = g.contiguous();
    Tensor<T> dw({K, D});
    for (int64_t n = 0; n < N; ++n) {
      T* row = dw.data() + indices[n] * D;
      const T* gr = gc.data() + n * D;
      for (int64_t d = 0; d < D; ++d) row[d] += gr[d];
    }
    return std::vector<Tensor<T>>{dw};
  });
}

template <class T>
double accuracy(const Tensor<T>& logits, const std::vector<int64_t>& labels) {
  const Shape& s = logits.shape();
  if (s.size() != 2 || s[0] != static_cast<int64_t>(labels.size()) || s[0] < 1)
    shape_error("accuracy", "logits [" + std::to_string(labels.size()) + ", K] for " + std::to_string(labels.size()) +
                                " labels (at least one)",
                "logits " + shape_str(s));
  const Tensor<T> z = logits.contiguous();
  const int64_t N = s[0], K = s[1];
  int64_t correct = 0;
  for (int64_t n = 0; n < N; ++n) {
    if (labels[n] < 0 || labels[n] >= K)
      throw std::invalid_argument("accuracy: expected labels in [0, " + std::to_string(K) + "), got " +
                                  std::to_string(labels[n]) + " at position " + std::to_string(n));
    const T* row = z.data() + n * K;
    correct += (std::max_element(row, row + K) - row) == labels[n];
  }
  return static_cast<double>(correct) / static_cast<double>(N);
}

#define DD_INSTANTIATE(T)                                                          \
  template Var<T> upsample_nearest2x(const Var<T>&);                               \
  template Var<T> linear(const Var<T>&, const Var<T>&, const Var<T>&);             \
  template Var<T> attention(const Var<T>&, const Var<T>&, const Var<T>&, double);  \
  template Var<T> dropout(const Var<T>&, double, bool, Rng&);                      \
  template Var<T> dropout_rows(const Var<T>&, double, bool, const Rng&, int64_t);  \
  template Tensor<T> timestep_embedding(const std::vector<int64_t>&, int);        \
  template Var<T> max_pool2x2(const Var<T>&);                                      \
  template Var<T> avg_pool2x2(const Var<T>&);                                      \
  template Var<T> cross_entropy(const Var<T>&, const std::vector<int64_t>&);        \
  template double accuracy(const Tensor<T>&, const std::vector<int64_t>&);          \
  template Var<T> embedding(const Var<T>&, const std::vector<int64_t>&);
DD_INSTANTIATE(float)
DD_INSTANTIATE(double)
#undef DD_INSTANTIATE

}  // namespace dd
