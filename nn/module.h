// Module: a node of the model tree. It owns its parameters (Var<T> leaves) and its children, both
// registered under a name and kept in registration order, so named_parameters() lists dotted names
// ("down.1.block.0.conv1.weight") in the same order as PyTorch's state_dict of tools/torch_unet.py.
//
// Flat buffers (like llm.c): once the tree is built, the root calls build_flat_buffers(). Every
// parameter's value then becomes a view into ONE value storage and its gradient a view into ONE
// gradient storage, in named_parameters() order. Optimizers, EMA, clipping and checkpoints work on
// these two flat arrays with one loop, instead of one call per tensor.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "autograd/var.h"
#include "tensor/random.h"

namespace dd {

template <class T>
struct NamedParameter {
  std::string name;
  Var<T> var;
  int64_t offset;  // position of its first element in the flat buffers (-1 before they exist)
};

template <class T>
class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  // A module is referenced by its parent and by its registered parameters' names: not copyable.
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Parameters of this module and all below it, depth first: own parameters first, then each child
  // in registration order (PyTorch's order).
  std::vector<NamedParameter<T>> named_parameters() const;
  int64_t num_parameters() const;  // total number of scalars

  // train(true) enables dropout; eval() = train(false). Applies to the whole subtree.
  void train(bool on = true);
  void eval() { train(false); }
  bool training() const { return training_; }

  // Zeroes every parameter gradient (in place in the flat gradient buffer once it exists).
  void zero_grad();

  // Moves every parameter of the subtree into one value and one gradient storage (current values
  // are kept). Call once, on the root, after the tree is built; calling it again re-packs.
  void build_flat_buffers();
  bool has_flat_buffers() const { return flat_values_ != nullptr; }
  // The whole flat buffers as 1-d tensors of num_parameters() elements (views, not copies).
  // Throw when build_flat_buffers() has not run on this module.
  Tensor<T> flat_values() const;
  Tensor<T> flat_grads() const;

 protected:
  // A leaf Var that requires grad, with the given initial value; the caller keeps the returned
  // handle as a member (copies of a Var share the same tensor).
  Var<T> register_parameter(const std::string& name, Tensor<T> init);
  // The child must outlive this module's use of it: keep it as a member (unique_ptr or value).
  template <class M>
  M& register_module(const std::string& name, M& child) {
    children_.push_back({name, &child});
    return child;
  }

 private:
  void collect(const std::string& prefix, std::vector<NamedParameter<T>>& out) const;

  std::vector<std::pair<std::string, Var<T>>> params_;
  std::vector<std::pair<std::string, Module<T>*>> children_;
  bool training_ = true;
  std::shared_ptr<Storage<T>> flat_values_, flat_grads_;
};

// Sets a module's train/eval mode for a scope and puts the previous mode back on exit, also when
// the scope is left by an exception.
template <class T>
class TrainModeGuard {
 public:
  TrainModeGuard(Module<T>& module, bool training) : module_(module), was_training_(module.training()) {
    module_.train(training);
  }
  ~TrainModeGuard() { module_.train(was_training_); }
  TrainModeGuard(const TrainModeGuard&) = delete;
  TrainModeGuard& operator=(const TrainModeGuard&) = delete;

 private:
  Module<T>& module_;
  bool was_training_;
};

// PyTorch's default initialisation of Conv2d and Linear (kaiming_uniform_ with a = sqrt(5), whose
// bound gain * sqrt(3 / fan_in) = sqrt(2 / (1 + 5)) * sqrt(3 / fan_in) = 1 / sqrt(fan_in); the bias
// is drawn from the same U(-1/sqrt(fan_in), 1/sqrt(fan_in))). fan_in = in_channels * kh * kw.
template <class T>
Tensor<T> uniform_fan_in(Rng& rng, const Shape& shape, int64_t fan_in);

}  // namespace dd
