#include "autograd/var.h"

#include <unordered_set>
#include <utility>

#include "tensor/elementwise.h"
#include "tensor/profile.h"

namespace dd {

namespace {
thread_local bool g_grad_enabled = true;
}

bool grad_enabled() { return g_grad_enabled; }
void set_grad_enabled(bool on) { g_grad_enabled = on; }

// Destroying the head of a long chain would recurse once per node through shared_ptr destructors.
// Instead, nodes that only this chain owns are detached onto a local stack and released one by one.
template <class T>
VarImpl<T>::~VarImpl() {
  if (!node) return;
  std::vector<std::shared_ptr<Node<T>>> stack;
  stack.push_back(std::move(node));
  while (!stack.empty()) {
    std::shared_ptr<Node<T>> n = std::move(stack.back());
    stack.pop_back();
    if (n.use_count() != 1) continue;
    for (auto& in : n->inputs)
      if (in && in.use_count() == 1 && in->node) stack.push_back(std::move(in->node));
  }
}

template <class T>
Var<T>::Var(Tensor<T> value, bool requires_grad) : impl_(std::make_shared<VarImpl<T>>()) {
  impl_->value = std::move(value);
  impl_->requires_grad = requires_grad;
}

template <class T>
Var<T> make_result(const char* op, Tensor<T> value, const std::vector<Var<T>>& inputs, BackwardFn<T> backward) {
  profile_mark("forward", op);  // the op's forward ran just before it recorded its result
  Var<T> out(std::move(value), false);
  if (!grad_enabled()) return out;
  bool any = false;
  for (const auto& v : inputs) any = any || (v.defined() && v.requires_grad());
  if (!any) return out;
  auto node = std::make_shared<Node<T>>();
  node->op = op;
  for (const auto& v : inputs) node->inputs.push_back(v.impl());
  node->backward = std::move(backward);
  out.impl()->requires_grad = true;
  out.impl()->node = std::move(node);
  return out;
}

namespace {

// Adds g into v's gradient. A first gradient is taken as is when nobody else holds its storage
// (backward rules often pass the upstream gradient straight through to several inputs, so a
// shared one is copied before anything adds into it).
template <class T>
void accumulate(VarImpl<T>& v, const Tensor<T>& g, const char* op) {
  if (g.shape() != v.value.shape())
    shape_error(std::string("backward of ") + op, "a gradient of shape " + shape_str(v.value.shape()),
                shape_str(g.shape()));
  if (v.grad_is_buffer) {
    add_inplace(v.grad, g);
  } else if (!v.grad.defined()) {
    v.grad = g;
  } else if (v.grad.is_contiguous() && v.grad.storage().use_count() == 1) {
    add_inplace(v.grad, g);
  } else {
    v.grad = zip(v.grad, g, [](T a, T b) { return a + b; }, "accumulate");
  }
}

// Reverse topological order of the nodes reachable from root: iterative post-order DFS. The list
// owns its Vars, so releasing a node during backward never destroys a Var still to be visited.
template <class T>
std::vector<std::shared_ptr<VarImpl<T>>> topo_order(const std::shared_ptr<VarImpl<T>>& root) {
  std::vector<std::shared_ptr<VarImpl<T>>> order;
  std::unordered_set<VarImpl<T>*> seen{root.get()};
  std::vector<std::pair<std::shared_ptr<VarImpl<T>>, size_t>> stack{{root, 0}};
  while (!stack.empty()) {
    auto& [v, next] = stack.back();
    if (v->node && next < v->node->inputs.size()) {
      const std::shared_ptr<VarImpl<T>>& child = v->node->inputs[next++];
      if (child && child->node && seen.insert(child.get()).second) stack.push_back({child, 0});
    } else {
      order.push_back(std::move(v));
      stack.pop_back();
    }
  }
  return order;  // children before parents; walk it backwards
}

}  // namespace

template <class T>
void Var<T>::backward() const {
  if (numel() != 1)
    shape_error("backward", "a scalar output (or pass the upstream gradient)", shape_str(shape()));
  backward(Tensor<T>::ones(shape()));
}

template <class T>
void Var<T>::backward(const Tensor<T>& grad_out) const {
  if (!impl_->requires_grad)
    throw std::logic_error("backward: this Var does not require grad (no input required it, or no-grad was on)");
  NoGradGuard no_record;  // backward rules compute with tensors, but be explicit
  accumulate(*impl_, grad_out.contiguous(), "backward");
  std::vector<std::shared_ptr<VarImpl<T>>> order = topo_order(impl_);
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    std::shared_ptr<VarImpl<T>> v = std::move(*it);  // dropped at the end of this iteration
    if (!v->node) continue;                           // a leaf keeps its gradient
    std::shared_ptr<Node<T>> node = std::move(v->node);  // frees the graph as we go
    Tensor<T> g = std::move(v->grad);                     // non-leaf gradients are not retained
    if (!g.defined()) continue;
    std::vector<bool> needs;
    for (auto& in : node->inputs) needs.push_back(in && in->requires_grad);
    ProfileScope timed("backward", node->op);
    std::vector<Tensor<T>> grads = node->backward(g, needs);
    for (size_t i = 0; i < node->inputs.size(); ++i)
      if (needs[i] && i < grads.size() && grads[i].defined()) accumulate(*node->inputs[i], grads[i], node->op);
  }
}

template <class T>
void Var<T>::zero_grad() const {
  if (impl_->grad_is_buffer) impl_->grad.fill(T(0));
  else impl_->grad = Tensor<T>();
}

template <class T>
void Var<T>::set_grad_buffer(const Tensor<T>& buffer) const {
  if (buffer.shape() != shape() || !buffer.is_contiguous())
    shape_error("set_grad_buffer", "a contiguous buffer of shape " + shape_str(shape()), shape_str(buffer.shape()));
  impl_->grad = buffer;
  impl_->grad_is_buffer = true;
}

template <class T>
void Var<T>::assign(const Tensor<T>& v) const {
  impl_->value.copy_from(v);
}

template struct VarImpl<float>;
template struct VarImpl<double>;
template class Var<float>;
template class Var<double>;
template Var<float> make_result(const char*, Tensor<float>, const std::vector<Var<float>>&, BackwardFn<float>);
template Var<double> make_result(const char*, Tensor<double>, const std::vector<Var<double>>&, BackwardFn<double>);

}  // namespace dd
