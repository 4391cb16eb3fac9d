// 2-d convolution (NCHW, PyTorch's nn.Conv2d: a cross-correlation). The kernels live in tensor/conv.
#include "autograd/ops.h"
#include "tensor/conv.h"
#include "tensor/reduce.h"

#include <stdexcept>

namespace dd {

namespace {
// One im2col workspace per thread that records ops, reused by every convolution (forward and
// backward), so a training step allocates no scratch after the first one.
template <class T>
ConvWorkspace<T>& conv_workspace() {
  thread_local ConvWorkspace<T> ws;
  return ws;
}

// conv2d, and conv2d_add when `addend` is defined: y = conv + b + addend, with
//   dL/daddend = g                          for addend [N,O,Ho,Wo]
//   dL/daddend[n,o] = sum_{i,j} g[n,o,i,j]  for addend [N,O,1,1]
template <class T>
Var<T> conv2d_impl(const char* op, const Var<T>& x, const Var<T>& w, const Var<T>& b, const Var<T>& addend, int stride,
                   int padding) {
  const bool has_bias = b.defined();
  const Conv2dGeometry geo = conv2d_geometry(x.shape(), w.shape(), has_bias ? &b.shape() : nullptr, stride, padding, op);
  Tensor<T> xv = x.value().contiguous(), wv = w.value().contiguous();
  Tensor<T> bv = has_bias ? b.value().contiguous() : Tensor<T>();
  const Shape out_shape{geo.N, geo.O, geo.Ho, geo.Wo}, per_channel{geo.N, geo.O, 1, 1};
  const Shape addend_shape = addend.defined() ? addend.shape() : Shape{};
  Tensor<T> av;
  ConvAddend<T> add;
  if (addend.defined()) {
    const bool per_image_bias = addend.shape() == per_channel;
    if (!per_image_bias && addend.shape() != out_shape)
      shape_error(op, "an addend of shape " + shape_str(per_channel) + " or " + shape_str(out_shape),
                  shape_str(addend.shape()));
    av = addend.value().contiguous();
    (per_image_bias ? add.image_bias : add.residual) = av.data();
  }
  Tensor<T> y = Tensor<T>::uninitialized(out_shape);  // the kernels write every element
  conv2d_forward(geo, xv.data(), wv.data(), has_bias ? bv.data() : static_cast<const T*>(nullptr), y.data(),
                 conv_workspace<T>(), add);
  return make_result<T>(op, y, {x, w, b, addend},
                        [geo, xv, wv, addend_shape](const Tensor<T>& g, const std::vector<bool>& needs) {
    const Tensor<T> gc = g.contiguous();
    Tensor<T> dx, dw, db, da;
    if (needs[0]) {
      dx = Tensor<T>::uninitialized({geo.N, geo.C, geo.H, geo.W});
      conv2d_backward_input(geo, gc.data(), wv.data(), dx.data(), conv_workspace<T>());
    }
    if (needs[1]) dw = Tensor<T>::uninitialized({geo.O, geo.C, geo.kh, geo.kw});
    if (needs[2]) db = Tensor<T>({geo.O});
    if (needs[1] || needs[2])
      conv2d_backward_weight(geo, gc.data(), xv.data(), needs[1] ? dw.data() : nullptr,
                             needs[2] ? db.data() : nullptr, conv_workspace<T>());
    if (needs.size() > 3 && needs[3]) da = sum_to(gc, addend_shape);  // as add's backward
    return std::vector<Tensor<T>>{dx, dw, db, da};
  });
}

}  // namespace

// y[n,o,i,j] = b[o] + sum_{c,p,q} w[o,c,p,q] x[n,c, i s - pad + p, j s - pad + q]   (zero outside x)
// With cols_n[(c,p,q),(i,j)] = x[n,c, i s - pad + p, j s - pad + q] (im2col) this is y_n = W cols_n + b:
//   dL/dx_n = col2im(W^T g_n)   i.e. dL/dx[n,c,h,w] = sum over (o,p,q,i,j) with i s - pad + p = h,
//                               j s - pad + q = w of g[n,o,i,j] w[o,c,p,q]
//   dL/dW   = sum_n g_n cols_n^T   i.e. dL/dw[o,c,p,q] = sum_{n,i,j} g[n,o,i,j] x[n,c, i s - pad + p, j s - pad + q]
//   dL/db[o] = sum_{n,i,j} g[n,o,i,j]
template <class T>
Var<T> conv2d(const Var<T>& x, const Var<T>& w, const Var<T>& b, int stride, int padding) {
  return conv2d_impl<T>("conv2d", x, w, b, Var<T>(), stride, padding);
}

// y = conv2d(x, w, b) + addend: the derivatives above, and for the addend
//   dL/daddend = g  (addend [N,O,Ho,Wo]),   dL/daddend[n,o] = sum_{i,j} g[n,o,i,j]  (addend [N,O,1,1])
template <class T>
Var<T> conv2d_add(const Var<T>& x, const Var<T>& w, const Var<T>& b, const Var<T>& addend, int stride, int padding) {
  if (!addend.defined()) throw std::invalid_argument("conv2d_add: expected a defined addend, got an undefined Var");
  return conv2d_impl<T>("conv2d_add", x, w, b, addend, stride, padding);
}

#define DD_INSTANTIATE(T)                                                                                    \
  template Var<T> conv2d(const Var<T>&, const Var<T>&, const Var<T>&, int, int);                            \
  template Var<T> conv2d_add(const Var<T>&, const Var<T>&, const Var<T>&, const Var<T>&, int, int);
DD_INSTANTIATE(float)
DD_INSTANTIATE(double)
#undef DD_INSTANTIATE

}  // namespace dd
