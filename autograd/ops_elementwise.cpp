// Elementwise ops and their derivatives. g is the upstream gradient dL/dy.
#include <cmath>

#include "autograd/ops.h"
#include "tensor/elementwise.h"
#include "tensor/fastmath.h"
#include "tensor/reduce.h"

namespace dd {

namespace {

// y = f(x) elementwise; dL/dx = g * df(x, y). df sees both x and y so each rule can use the
// cheaper one (exp: y; log: 1/x).
template <class T, class F, class DF>
Var<T> unary(const char* op, const Var<T>& x, F f, DF df) {
  Tensor<T> xv = x.value();
  Tensor<T> y = map(xv, f);
  return make_result<T>(op, y, {x}, [xv, y, df](const Tensor<T>& g, const std::vector<bool>&) {
    return std::vector<Tensor<T>>{zip3(g, xv, y, [df](T gi, T xi, T yi) { return gi * df(xi, yi); }, "unary backward")};
  });
}

}  // namespace

// y = a + b          dL/da = sum_to(g, a),  dL/db = sum_to(g, b)
template <class T>
Var<T> add(const Var<T>& a, const Var<T>& b) {
  Shape sa = a.shape(), sb = b.shape();
  return make_result<T>("add", zip(a.value(), b.value(), [](T x, T y) { return x + y; }, "add"), {a, b},
                        [sa, sb](const Tensor<T>& g, const std::vector<bool>& needs) {
                          return std::vector<Tensor<T>>{needs[0] ? sum_to(g, sa) : Tensor<T>(),
                                                        needs[1] ? sum_to(g, sb) : Tensor<T>()};
                        });
}

// y = a - b          dL/da = sum_to(g, a),  dL/db = -sum_to(g, b)
template <class T>
Var<T> sub(const Var<T>& a, const Var<T>& b) {
  Shape sa = a.shape(), sb = b.shape();
  return make_result<T>("sub", zip(a.value(), b.value(), [](T x, T y) { return x - y; }, "sub"), {a, b},
                        [sa, sb](const Tensor<T>& g, const std::vector<bool>& needs) {
                          return std::vector<Tensor<T>>{
                              needs[0] ? sum_to(g, sa) : Tensor<T>(),
                              needs[1] ? map(sum_to(g, sb), [](T v) { return -v; }) : Tensor<T>()};
                        });
}

// y = a * b          dL/da = sum_to(g * b, a),  dL/db = sum_to(g * a, b)
template <class T>
Var<T> mul(const Var<T>& a, const Var<T>& b) {
  Tensor<T> av = a.value(), bv = b.value();
  auto times = [](T x, T y) { return x * y; };
  return make_result<T>("mul", zip(av, bv, times, "mul"), {a, b},
                        [av, bv, times](const Tensor<T>& g, const std::vector<bool>& needs) {
                          return std::vector<Tensor<T>>{
                              needs[0] ? sum_to(zip(g, bv, times, "mul backward"), av.shape()) : Tensor<T>(),
                              needs[1] ? sum_to(zip(g, av, times, "mul backward"), bv.shape()) : Tensor<T>()};
                        });
}

// y = a / b          dL/da = sum_to(g / b, a),  dL/db = sum_to(-g a / b^2, b)
template <class T>
Var<T> div(const Var<T>& a, const Var<T>& b) {
  Tensor<T> av = a.value(), bv = b.value();
  return make_result<T>(
      "div", zip(av, bv, [](T x, T y) { return x / y; }, "div"), {a, b},
      [av, bv](const Tensor<T>& g, const std::vector<bool>& needs) {
        Tensor<T> ga, gb;
        if (needs[0]) ga = sum_to(zip(g, bv, [](T gi, T y) { return gi / y; }, "div backward"), av.shape());
        if (needs[1])
          gb = sum_to(zip3(g, av, bv, [](T gi, T x, T y) { return -gi * x / (y * y); }, "div backward"), bv.shape());
        return std::vector<Tensor<T>>{ga, gb};
      });
}

// y = -x             dL/dx = -g
template <class T>
Var<T> neg(const Var<T>& x) {
  return unary<T>("neg", x, [](T v) { return -v; }, [](T, T) { return T(-1); });
}

// y = x + c          dL/dx = g
template <class T>
Var<T> add_scalar(const Var<T>& x, T c) {
  return unary<T>("add_scalar", x, [c](T v) { return v + c; }, [](T, T) { return T(1); });
}

// y = c x            dL/dx = c g
template <class T>
Var<T> mul_scalar(const Var<T>& x, T c) {
  return unary<T>("mul_scalar", x, [c](T v) { return v * c; }, [c](T, T) { return c; });
}

// y = x^p            dL/dx = g p x^(p-1)
template <class T>
Var<T> pow(const Var<T>& x, T p) {
  return unary<T>("pow", x, [p](T v) { return std::pow(v, p); }, [p](T v, T) { return p * std::pow(v, p - 1); });
}

// y = e^x            dL/dx = g y
template <class T>
Var<T> exp(const Var<T>& x) {
  return unary<T>("exp", x, [](T v) { return std::exp(v); }, [](T, T y) { return y; });
}

// y = log x          dL/dx = g / x
template <class T>
Var<T> log(const Var<T>& x) {
  return unary<T>("log", x, [](T v) { return std::log(v); }, [](T v, T) { return T(1) / v; });
}

// y = sqrt x         dL/dx = g / (2 y)
template <class T>
Var<T> sqrt(const Var<T>& x) {
  return unary<T>("sqrt", x, [](T v) { return std::sqrt(v); }, [](T, T y) { return T(0.5) / y; });
}

// y = x^2            dL/dx = 2 g x
template <class T>
Var<T> square(const Var<T>& x) {
  return unary<T>("square", x, [](T v) { return v * v; }, [](T v, T) { return T(2) * v; });
}

// y = tanh x         dL/dx = g (1 - y^2)
template <class T>
Var<T> tanh(const Var<T>& x) {
  return unary<T>("tanh", x, [](T v) { return std::tanh(v); }, [](T, T y) { return T(1) - y * y; });
}

// y = 1 / (1 + e^-x) dL/dx = g y (1 - y)
template <class T>
Var<T> sigmoid(const Var<T>& x) {
  return unary<T>("sigmoid", x, [](T v) { return T(1) / (T(1) + std::exp(-v)); },
                  [](T, T y) { return y * (T(1) - y); });
}

// y = x s(x), s = sigmoid     dL/dx = g s(x) (1 + x (1 - s(x)))
template <class T>
Var<T> silu(const Var<T>& x) {
  // float: the vectorizable exp of tensor/fastmath.h; double: std::exp
  return unary<T>("silu", x, [](T v) { return silu_fast(v); }, [](T v, T) { return silu_grad_fast(v); });
}

// y = max(x, 0)      dL/dx = g [x > 0]
template <class T>
Var<T> relu(const Var<T>& x) {
  return unary<T>("relu", x, [](T v) { return v > 0 ? v : T(0); }, [](T v, T) { return v > 0 ? T(1) : T(0); });
}

#define DD_INSTANTIATE(T)                                   \
  template Var<T> add(const Var<T>&, const Var<T>&);        \
  template Var<T> sub(const Var<T>&, const Var<T>&);        \
  template Var<T> mul(const Var<T>&, const Var<T>&);        \
  template Var<T> div(const Var<T>&, const Var<T>&);        \
  template Var<T> neg(const Var<T>&);                       \
  template Var<T> add_scalar(const Var<T>&, T);             \
  template Var<T> mul_scalar(const Var<T>&, T);             \
  template Var<T> pow(const Var<T>&, T);                    \
  template Var<T> exp(const Var<T>&);                       \
  template Var<T> log(const Var<T>&);                       \
  template Var<T> sqrt(const Var<T>&);                      \
  template Var<T> square(const Var<T>&);                    \
  template Var<T> tanh(const Var<T>&);                      \
  template Var<T> sigmoid(const Var<T>&);                   \
  template Var<T> silu(const Var<T>&);                      \
  template Var<T> relu(const Var<T>&);
DD_INSTANTIATE(float)
DD_INSTANTIATE(double)
#undef DD_INSTANTIATE

}  // namespace dd
