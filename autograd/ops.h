// Every differentiable op: the table of contents. Each is defined in autograd/ops_*.cpp as one
// forward/backward pair with its derivative written above it as math (compare with docs/equations.md).
// Binary elementwise ops broadcast as NumPy does; their gradients are summed back to each input's
// shape. All ops exist for float (training) and double (gradient checks).
#pragma once

#include <vector>

#include "autograd/var.h"
#include "tensor/random.h"

namespace dd {

// ---- elementwise (ops_elementwise.cpp) ----
template <class T> Var<T> add(const Var<T>& a, const Var<T>& b);
template <class T> Var<T> sub(const Var<T>& a, const Var<T>& b);
template <class T> Var<T> mul(const Var<T>& a, const Var<T>& b);
template <class T> Var<T> div(const Var<T>& a, const Var<T>& b);
template <class T> Var<T> neg(const Var<T>& x);
template <class T> Var<T> add_scalar(const Var<T>& x, T c);
template <class T> Var<T> mul_scalar(const Var<T>& x, T c);
template <class T> Var<T> pow(const Var<T>& x, T p);  // x^p, p a constant
template <class T> Var<T> exp(const Var<T>& x);
template <class T> Var<T> log(const Var<T>& x);
template <class T> Var<T> sqrt(const Var<T>& x);
template <class T> Var<T> square(const Var<T>& x);
template <class T> Var<T> tanh(const Var<T>& x);
template <class T> Var<T> sigmoid(const Var<T>& x);
template <class T> Var<T> silu(const Var<T>& x);
template <class T> Var<T> relu(const Var<T>& x);

// ---- reductions (ops_reduce.cpp); empty axes = all ----
template <class T> Var<T> sum(const Var<T>& x, std::vector<int> axes = {}, bool keepdim = false);
template <class T> Var<T> mean(const Var<T>& x, std::vector<int> axes = {}, bool keepdim = false);

// ---- shapes (ops_shape.cpp) ----
template <class T> Var<T> reshape(const Var<T>& x, const Shape& s);
template <class T> Var<T> permute(const Var<T>& x, const std::vector<int>& order);
template <class T> Var<T> transpose(const Var<T>& x, int a, int b);
template <class T> Var<T> slice(const Var<T>& x, int dim, int64_t start, int64_t end, int64_t step = 1);
template <class T> Var<T> expand(const Var<T>& x, const Shape& s);
template <class T> Var<T> concat(const std::vector<Var<T>>& xs, int dim);

// ---- linear algebra (ops_linalg.cpp) ----
template <class T> Var<T> matmul(const Var<T>& a, const Var<T>& b);  // [M,K] x [K,N]
template <class T> Var<T> bmm(const Var<T>& a, const Var<T>& b);     // [B,M,K] x [B,K,N]

// ---- softmax and losses (ops_softmax.cpp, ops_loss.cpp) ----
template <class T> Var<T> softmax(const Var<T>& x, int axis);
template <class T> Var<T> log_softmax(const Var<T>& x, int axis);
// mean((a - b)^2) over all elements (F.mse_loss); b may be a constant target.
template <class T> Var<T> mse_loss(const Var<T>& a, const Var<T>& b);

// ---- layers (ops_conv.cpp, ops_norm.cpp, ops_nn.cpp; kernels in tensor/) ----
// x [N,C,H,W], w [O,C,kh,kw], b [O] (or an undefined Var for no bias) -> [N,O,Ho,Wo]
template <class T> Var<T> conv2d(const Var<T>& x, const Var<T>& w, const Var<T>& b, int stride, int padding);
// conv2d(x, w, b) + addend in the same pass over the output, for addend [N,O,1,1] (broadcast over
// the pixels: the ResBlock's time embedding) or [N,O,Ho,Wo] (a residual connection)
template <class T>
Var<T> conv2d_add(const Var<T>& x, const Var<T>& w, const Var<T>& b, const Var<T>& addend, int stride, int padding);
// x [N,C,...], gamma/beta [C] (undefined Vars: no affine): normalise each (sample, group of C/groups
// channels) with its mean and biased variance, then affine; eps as in PyTorch (1e-5 in the model)
template <class T> Var<T> group_norm(const Var<T>& x, int groups, const Var<T>& gamma, const Var<T>& beta, double eps);
// silu(group_norm(x)) as one op (the UNet's ResBlocks and output): z is recomputed in backward, not stored.
template <class T> Var<T> group_norm_silu(const Var<T>& x, int groups, const Var<T>& gamma, const Var<T>& beta, double eps);
// x [N,C,H,W] -> [N,C,2H,2W], each pixel repeated 2x2
template <class T> Var<T> upsample_nearest2x(const Var<T>& x);
// x [N,in] (or [..., in]), w [out,in], b [out] or undefined (PyTorch layout) -> [N,out]
template <class T> Var<T> linear(const Var<T>& x, const Var<T>& w, const Var<T>& b);
// q, k, v [B,C,N] -> [B,C,N]: out[:,i] = sum_j softmax_j(scale * <q_i, k_j>) v[:,j]
template <class T> Var<T> attention(const Var<T>& q, const Var<T>& k, const Var<T>& v, double scale);
// Inverted dropout: zero with probability p, scale the rest by 1/(1-p); identity when !training or p == 0
template <class T> Var<T> dropout(const Var<T>& x, double p, bool training, Rng& rng);
// The same dropout with one mask stream per row of dim 0: row i of x takes the Philox blocks
// [(first_row + i) b, (first_row + i + 1) b) of `stream` (b = ceil(row size / 2), two uniforms per
// block), so a row's mask depends on its index in the whole batch, not on the slice x is of it.
template <class T> Var<T> dropout_rows(const Var<T>& x, double p, bool training, const Rng& stream, int64_t first_row);
// Sinusoidal embedding of 0-based timesteps, [N, dim]: [sin(t f_i), cos(t f_i)], f_i = 10000^(-i/(dim/2-1))
// (DDPM's get_timestep_embedding). A constant: no gradient.
template <class T> Tensor<T> timestep_embedding(const std::vector<int64_t>& t, int dim);
// 2x2 pooling with stride 2, x [N,C,H,W] -> [N,C,H/2,W/2] (floor), as F.max_pool2d(x, 2) / F.avg_pool2d(x, 2)
template <class T> Var<T> max_pool2x2(const Var<T>& x);
template <class T> Var<T> avg_pool2x2(const Var<T>& x);
// mean_n -log softmax(logits[n])[labels[n]] (F.cross_entropy), logits [N, K], labels in [0, K)
template <class T> Var<T> cross_entropy(const Var<T>& logits, const std::vector<int64_t>& labels);
// Embedding lookup (a gather of rows): weight [K, D], indices in [0, K) -> [N, D], row n = weight[indices[n]].
// The gradient of a row used several times is the sum of its uses.
template <class T> Var<T> embedding(const Var<T>& weight, const std::vector<int64_t>& indices);
// Fraction of rows n whose argmax (first maximum on ties) equals labels[n]; logits [N, K], N >= 1.
// A metric, not differentiable: it takes the values and records nothing on the tape.
template <class T> double accuracy(const Tensor<T>& logits, const std::vector<int64_t>& labels);

// ---- operators ----
template <class T> Var<T> operator+(const Var<T>& a, const Var<T>& b) { return add(a, b); }
template <class T> Var<T> operator-(const Var<T>& a, const Var<T>& b) { return sub(a, b); }
template <class T> Var<T> operator*(const Var<T>& a, const Var<T>& b) { return mul(a, b); }
template <class T> Var<T> operator/(const Var<T>& a, const Var<T>& b) { return div(a, b); }
template <class T> Var<T> operator-(const Var<T>& x) { return neg(x); }
template <class T> Var<T> operator+(const Var<T>& x, T c) { return add_scalar(x, c); }
template <class T> Var<T> operator*(const Var<T>& x, T c) { return mul_scalar(x, c); }
template <class T> Var<T> operator*(T c, const Var<T>& x) { return mul_scalar(x, c); }

}  // namespace dd
