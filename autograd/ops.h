// Every differentiable op: the table of contents. Each is defined in autograd/ops_*.cpp as one
// forward/backward pair with its derivative written above it as math (compare with MATH.md).
// Binary elementwise ops broadcast as NumPy does; their gradients are summed back to each input's
// shape. All ops exist for float (training) and double (gradient checks).
#pragma once

#include <vector>

#include "autograd/var.h"

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
