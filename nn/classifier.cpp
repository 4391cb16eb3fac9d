#include "nn/classifier.h"

#include <algorithm>

#include "tensor/softmax.h"

namespace dd {

template <class T>
MnistClassifier<T>::MnistClassifier(Rng& rng)
    : conv1(1, 16, 3, 1, 1, rng), conv2(16, 32, 3, 1, 1, rng), fc1(32 * 7 * 7, kFeatures, rng), fc2(kFeatures, kClasses, rng) {
  this->register_module("conv1", conv1);
  this->register_module("conv2", conv2);
  this->register_module("fc1", fc1);
  this->register_module("fc2", fc2);
  this->build_flat_buffers();
}

template <class T>
Var<T> MnistClassifier<T>::features(const Var<T>& x) const {
  if (x.dim() != 4 || x.size(1) != 1 || x.size(2) != 28 || x.size(3) != 28)
    shape_error("MnistClassifier", "images [N, 1, 28, 28]", shape_str(x.shape()));
  Var<T> h = max_pool2x2(relu(conv1.forward(x)));  // [N,16,14,14]
  h = max_pool2x2(relu(conv2.forward(h)));          // [N,32,7,7]
  return relu(fc1.forward(reshape(h, {x.size(0), 32 * 7 * 7})));
}

template <class T>
Var<T> MnistClassifier<T>::logits_from(const Var<T>& f) const {
  return fc2.forward(f);
}

template class MnistClassifier<float>;
template class MnistClassifier<double>;

ClassifierOutputs classify(const MnistClassifier<float>& model, const Tensor<float>& images, int64_t batch) {
  if (images.dim() != 4 || images.size(1) != 1 || images.size(2) != 28 || images.size(3) != 28)
    shape_error("classify", "images [N, 1, 28, 28]", shape_str(images.shape()));
  NoGradGuard no_grad;
  const int64_t n = images.size(0), d = MnistClassifier<float>::kFeatures, k = MnistClassifier<float>::kClasses;
  ClassifierOutputs out{Tensor<double>({n, d}), Tensor<double>({n, k})};
  const Tensor<float> all = images.contiguous();
  for (int64_t i0 = 0; i0 < n; i0 += batch) {
    const int64_t i1 = std::min(n, i0 + batch);
    Var<float> f = model.features(Var<float>(all.slice(0, i0, i1).contiguous()));
    const Tensor<float> fv = f.value().contiguous();
    const Tensor<float> p = softmax(model.logits_from(f).value().contiguous(), 1);
    std::copy_n(fv.data(), (i1 - i0) * d, out.features.data() + i0 * d);
    std::copy_n(p.data(), (i1 - i0) * k, out.probs.data() + i0 * k);
  }
  return out;
}

}  // namespace dd
