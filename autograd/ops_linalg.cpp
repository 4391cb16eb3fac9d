// Matrix products. BLAS gets transposed views as flags, so the backward products cost no copies.
#include "autograd/ops.h"
#include "tensor/blas.h"

namespace dd {

// Y = A B, A [M,K], B [K,N]       dL/dA = G B^T,  dL/dB = A^T G
template <class T>
Var<T> matmul(const Var<T>& a, const Var<T>& b) {
  Tensor<T> av = a.value(), bv = b.value();
  return make_result<T>("matmul", dd::matmul(av, bv), {a, b},
                        [av, bv](const Tensor<T>& g, const std::vector<bool>& needs) {
                          return std::vector<Tensor<T>>{needs[0] ? dd::matmul(g, bv.transpose(0, 1)) : Tensor<T>(),
                                                        needs[1] ? dd::matmul(av.transpose(0, 1), g) : Tensor<T>()};
                        });
}

// Y_b = A_b B_b for every batch b   dL/dA_b = G_b B_b^T,  dL/dB_b = A_b^T G_b
template <class T>
Var<T> bmm(const Var<T>& a, const Var<T>& b) {
  Tensor<T> av = a.value(), bv = b.value();
  return make_result<T>("bmm", dd::bmm(av, bv), {a, b}, [av, bv](const Tensor<T>& g, const std::vector<bool>& needs) {
    return std::vector<Tensor<T>>{needs[0] ? dd::bmm(g, bv.transpose(1, 2)) : Tensor<T>(),
                                  needs[1] ? dd::bmm(av.transpose(1, 2), g) : Tensor<T>()};
  });
}

#define DD_INSTANTIATE(T)                                      \
  template Var<T> matmul(const Var<T>&, const Var<T>&);        \
  template Var<T> bmm(const Var<T>&, const Var<T>&);
DD_INSTANTIATE(float)
DD_INSTANTIATE(double)
#undef DD_INSTANTIATE

}  // namespace dd
