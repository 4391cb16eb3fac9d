// The tape. A Var holds a tensor (value), its gradient, and the Node that made it. Ops record a
// Node with their inputs and a backward function; backward() walks the Nodes in reverse
// topological order with an explicit stack (no recursion, so a chain of 100,000 ops works),
// accumulates gradients of reused Vars, and frees the graph as it goes.
//
// Rule for op authors: a backward closure captures Tensors, never Vars (a Var in a closure would
// keep the graph alive in a cycle).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace dd {

template <class T>
struct Node;

template <class T>
struct VarImpl {
  Tensor<T> value;
  Tensor<T> grad;               // undefined until a gradient arrives
  bool requires_grad = false;   // leaves: set by the user; results: any input requires it
  bool grad_is_buffer = false;  // grad is a preassigned view (flat parameter buffer): add in place
  std::shared_ptr<Node<T>> node;  // null for leaves and for results made without recording
  ~VarImpl();                   // tears a long graph down iteratively
};

// Gradients of an op's inputs given the gradient of its output. `needs[i]` says whether input i
// wants one; an op may return an undefined Tensor for inputs that do not.
template <class T>
using BackwardFn = std::function<std::vector<Tensor<T>>(const Tensor<T>& grad_out, const std::vector<bool>& needs)>;

template <class T>
struct Node {
  const char* op;
  std::vector<std::shared_ptr<VarImpl<T>>> inputs;
  BackwardFn<T> backward;
};

template <class T>
class Var {
 public:
  Var() = default;
  explicit Var(Tensor<T> value, bool requires_grad = false);

  const Tensor<T>& value() const { return impl_->value; }
  const Tensor<T>& grad() const { return impl_->grad; }
  const Shape& shape() const { return impl_->value.shape(); }
  int64_t dim() const { return impl_->value.dim(); }
  int64_t size(int64_t d) const { return impl_->value.size(d); }
  int64_t numel() const { return impl_->value.numel(); }
  T item() const { return impl_->value.item(); }
  bool defined() const { return impl_ != nullptr; }
  bool requires_grad() const { return impl_->requires_grad; }
  bool is_leaf() const { return impl_->node == nullptr; }
  const char* op() const { return impl_->node ? impl_->node->op : "leaf"; }

  // Backward from a scalar (upstream gradient 1), or from any shape with a given upstream gradient.
  void backward() const;
  void backward(const Tensor<T>& grad_out) const;

  void zero_grad() const;  // zeroes a buffer gradient in place, drops any other
  // Gradients of this (leaf) Var accumulate in place into `buffer` (a view into a flat buffer).
  void set_grad_buffer(const Tensor<T>& buffer) const;
  void set_requires_grad(bool r) const { impl_->requires_grad = r; }
  // Replaces the value in place (same shape): optimizers, EMA swaps, checkpoint loads.
  void assign(const Tensor<T>& v) const;
  Var detach() const { return Var(impl_->value, false); }

  const std::shared_ptr<VarImpl<T>>& impl() const { return impl_; }

 private:
  std::shared_ptr<VarImpl<T>> impl_;
};

// Records an op. The result requires grad when recording is on and any input requires it; only
// then is a Node kept. Every differentiable op in autograd/ ends with this call.
template <class T>
Var<T> make_result(const char* op, Tensor<T> value, const std::vector<Var<T>>& inputs, BackwardFn<T> backward);

// Recording switch, per thread. NoGradGuard turns it off for its scope (sampling, evaluation).
bool grad_enabled();
void set_grad_enabled(bool on);
class NoGradGuard {
 public:
  NoGradGuard() : prev_(grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(prev_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool prev_;
};

using VarF = Var<float>;
using VarD = Var<double>;

}  // namespace dd
