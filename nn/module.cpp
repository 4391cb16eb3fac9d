#include "nn/module.h"

#include <cmath>
#include <stdexcept>

namespace dd {

template <class T>
Var<T> Module<T>::register_parameter(const std::string& name, Tensor<T> init) {
  for (const auto& p : params_)
    if (p.first == name) throw std::logic_error("Module: parameter '" + name + "' registered twice");
  Var<T> v(init.contiguous(), true);
  params_.push_back({name, v});
  return v;
}

template <class T>
void Module<T>::collect(const std::string& prefix, std::vector<NamedParameter<T>>& out) const {
  for (const auto& p : params_) out.push_back({prefix + p.first, p.second, -1});
  for (const auto& c : children_) c.second->collect(prefix + c.first + ".", out);
}

template <class T>
std::vector<NamedParameter<T>> Module<T>::named_parameters() const {
  std::vector<NamedParameter<T>> out;
  collect("", out);
  if (flat_values_) {
    int64_t off = 0;
    for (auto& p : out) {
      p.offset = off;
      off += p.var.numel();
    }
  }
  return out;
}

template <class T>
int64_t Module<T>::num_parameters() const {
  int64_t n = 0;
  for (const auto& p : named_parameters()) n += p.var.numel();
  return n;
}

template <class T>
void Module<T>::train(bool on) {
  training_ = on;
  for (auto& c : children_) c.second->train(on);
}

template <class T>
void Module<T>::zero_grad() {
  if (flat_grads_) {
    std::fill(flat_grads_->data(), flat_grads_->data() + flat_grads_->size(), T(0));
    return;
  }
  for (const auto& p : named_parameters()) p.var.zero_grad();
}

template <class T>
void Module<T>::build_flat_buffers() {
  std::vector<NamedParameter<T>> params;
  collect("", params);
  int64_t n = 0;
  for (const auto& p : params) n += p.var.numel();
  auto values = std::make_shared<Storage<T>>(n);
  auto grads = std::make_shared<Storage<T>>(n);  // zero-initialised
  int64_t off = 0;
  for (const auto& p : params) {
    Tensor<T> value_view = Tensor<T>::view_of(values, off, p.var.shape());
    value_view.copy_from(p.var.value());
    // The Var keeps its identity (modules hold handles to it); only the tensor it wraps moves.
    p.var.impl()->value = value_view;
    p.var.impl()->grad = Tensor<T>();
    p.var.impl()->grad_is_buffer = false;
    p.var.set_grad_buffer(Tensor<T>::view_of(grads, off, p.var.shape()));
    off += p.var.numel();
  }
  flat_values_ = std::move(values);
  flat_grads_ = std::move(grads);
}

template <class T>
Tensor<T> Module<T>::flat_values() const {
  if (!flat_values_) throw std::logic_error("Module::flat_values: build_flat_buffers() has not been called");
  return Tensor<T>::view_of(flat_values_, 0, {flat_values_->size()});
}

template <class T>
Tensor<T> Module<T>::flat_grads() const {
  if (!flat_grads_) throw std::logic_error("Module::flat_grads: build_flat_buffers() has not been called");
  return Tensor<T>::view_of(flat_grads_, 0, {flat_grads_->size()});
}

template <class T>
Tensor<T> uniform_fan_in(Rng& rng, const Shape& shape, int64_t fan_in) {
  const T bound = static_cast<T>(1.0 / std::sqrt(static_cast<double>(fan_in)));
  return rng.uniform<T>(shape, -bound, bound);
}

template class Module<float>;
template class Module<double>;
template Tensor<float> uniform_fan_in<float>(Rng&, const Shape&, int64_t);
template Tensor<double> uniform_fan_in<double>(Rng&, const Shape&, int64_t);

}  // namespace dd
