// Tensor<T>: an n-d strided view over shared, reference-counted, 64-byte aligned storage.
// One template serves float (training) and double (gradient checks). Views (reshape of a contiguous
// tensor, permute, transpose, slice, expand) share storage; contiguous() and clone() copy.
// Kernels elsewhere in tensor/ work on contiguous row-major memory: call contiguous() first.
#pragma once

#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <numeric>
#include <type_traits>
#include <vector>

#include "tensor/allocator.h"
#include "tensor/shape.h"

namespace dd {

// A flat buffer of n elements, aligned for AVX loads, from the caching allocator (tensor/allocator.h).
// Zero-initialised unless made with Uninitialized (for kernels that write every element).
struct Uninitialized {};
template <class T>
class Storage {
 public:
  explicit Storage(int64_t n) : Storage(n, Uninitialized{}) {
    std::memset(static_cast<void*>(ptr_), 0, bytes());
  }
  Storage(int64_t n, Uninitialized) : n_(n) { ptr_ = static_cast<T*>(storage_alloc(bytes())); }
  ~Storage() { storage_free(ptr_, bytes()); }
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  T* data() { return ptr_; }
  const T* data() const { return ptr_; }
  int64_t size() const { return n_; }

 private:
  size_t bytes() const { return static_cast<size_t>(n_) * sizeof(T); }
  T* ptr_ = nullptr;
  int64_t n_ = 0;
};

template <class T>
class Tensor {
  static_assert(std::is_floating_point<T>::value, "Tensor<T> is for float and double");

 public:
  using value_type = T;

  Tensor() = default;  // undefined: no storage
  explicit Tensor(const Shape& shape)
      : storage_(std::make_shared<Storage<T>>(shape_numel(check_shape(shape)))),
        shape_(shape),
        strides_(contiguous_strides(shape)) {}

  // Contents unspecified: for outputs a kernel overwrites completely (saves zeroing large buffers).
  static Tensor uninitialized(const Shape& shape) {
    Tensor t;
    t.storage_ = std::make_shared<Storage<T>>(shape_numel(check_shape(shape)), Uninitialized{});
    t.shape_ = shape;
    t.strides_ = contiguous_strides(shape);
    return t;
  }
  static Tensor zeros(const Shape& s) { return Tensor(s); }
  static Tensor full(const Shape& s, T v) {
    Tensor t(s);
    std::fill(t.data(), t.data() + t.numel(), v);
    return t;
  }
  static Tensor ones(const Shape& s) { return full(s, T(1)); }
  static Tensor scalar(T v) { return full({}, v); }
  static Tensor from(const Shape& s, const std::vector<T>& values) {
    if (static_cast<int64_t>(values.size()) != shape_numel(s))
      shape_error("Tensor::from", std::to_string(shape_numel(s)) + " values for shape " + shape_str(s),
                  std::to_string(values.size()) + " values");
    Tensor t(s);
    std::copy(values.begin(), values.end(), t.data());
    return t;
  }
  // A view of `shape` into existing storage (used for parameters living in one flat buffer).
  static Tensor view_of(std::shared_ptr<Storage<T>> storage, int64_t offset, const Shape& shape) {
    Tensor t;
    if (offset < 0 || offset + shape_numel(shape) > storage->size())
      shape_error("Tensor::view_of", "a view inside storage of " + std::to_string(storage->size()),
                  "offset " + std::to_string(offset) + " + " + std::to_string(shape_numel(shape)));
    t.storage_ = std::move(storage);
    t.offset_ = offset;
    t.shape_ = shape;
    t.strides_ = contiguous_strides(shape);
    return t;
  }

  bool defined() const { return storage_ != nullptr; }
  const Shape& shape() const { return shape_; }
  const Shape& strides() const { return strides_; }
  int64_t offset() const { return offset_; }
  int64_t dim() const { return static_cast<int64_t>(shape_.size()); }
  int64_t size(int64_t d) const { return shape_[wrap_dim(d, dim(), "Tensor::size")]; }
  int64_t numel() const { return shape_numel(shape_); }
  const std::shared_ptr<Storage<T>>& storage() const { return storage_; }

  // Pointer to element 0 of this view (not necessarily contiguous: mind strides()).
  T* data() const { return storage_->data() + offset_; }

  bool is_contiguous() const {
    int64_t expect = 1;
    for (int i = static_cast<int>(shape_.size()) - 1; i >= 0; --i) {
      if (shape_[i] == 1) continue;
      if (strides_[i] != expect) return false;
      expect *= shape_[i];
    }
    return true;
  }

  // Element access by full index (slow path: tests, small loops, gradcheck).
  T& at(const Shape& idx) const { return data()[linear_offset(idx)]; }
  T& at(std::initializer_list<int64_t> idx) const { return at(Shape(idx)); }
  // Element by position in row-major order of this view's shape.
  T& flat(int64_t i) const {
    int64_t off = 0;
    for (int d = static_cast<int>(shape_.size()) - 1; d >= 0; --d) {
      off += (i % shape_[d]) * strides_[d];
      i /= shape_[d];
    }
    return data()[off];
  }
  T item() const {
    if (numel() != 1) shape_error("Tensor::item", "a tensor with one element", shape_str(shape_));
    return flat(0);
  }

  // ---- views ----------------------------------------------------------------------------------
  // reshape: a view when contiguous, otherwise a contiguous copy. One dimension may be -1.
  Tensor reshape(Shape s) const {
    int64_t known = 1, infer = -1;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == -1) {
        if (infer >= 0) shape_error("reshape", "at most one -1", shape_str(s));
        infer = static_cast<int64_t>(i);
      } else {
        known *= s[i];
      }
    }
    if (infer >= 0 && known > 0) s[infer] = numel() / known;
    if (shape_numel(s) != numel())
      shape_error("reshape", shape_str(s) + " with " + std::to_string(numel()) + " elements",
                  shape_str(shape_));
    Tensor src = is_contiguous() ? *this : contiguous();
    src.shape_ = s;
    src.strides_ = contiguous_strides(s);
    return src;
  }
  Tensor permute(const std::vector<int>& order) const {
    if (static_cast<int64_t>(order.size()) != dim())
      shape_error("permute", std::to_string(dim()) + " axes", std::to_string(order.size()));
    Tensor t = *this;
    std::vector<bool> seen(dim(), false);
    for (size_t i = 0; i < order.size(); ++i) {
      int d = wrap_dim(order[i], dim(), "permute");
      if (seen[d]) shape_error("permute", "each axis once", "axis " + std::to_string(d) + " twice");
      seen[d] = true;
      t.shape_[i] = shape_[d];
      t.strides_[i] = strides_[d];
    }
    return t;
  }
  Tensor transpose(int64_t a, int64_t b) const {
    std::vector<int> order(dim());
    std::iota(order.begin(), order.end(), 0);
    std::swap(order[wrap_dim(a, dim(), "transpose")], order[wrap_dim(b, dim(), "transpose")]);
    return permute(order);
  }
  // Elements start, start+step, ... < end along dimension d (end clamped to the size).
  Tensor slice(int64_t d, int64_t start, int64_t end, int64_t step = 1) const {
    int dd = wrap_dim(d, dim(), "slice");
    end = std::min(end, shape_[dd]);
    if (start < 0 || start > end || step < 1)
      shape_error("slice", "0 <= start <= end and step >= 1 on dimension of size " + std::to_string(shape_[dd]),
                  "start " + std::to_string(start) + ", end " + std::to_string(end) + ", step " +
                      std::to_string(step));
    Tensor t = *this;
    t.offset_ += start * strides_[dd];
    t.shape_[dd] = (end - start + step - 1) / step;
    t.strides_[dd] *= step;
    return t;
  }
  // Broadcast to `s` without copying: stretched dimensions get stride 0.
  Tensor expand(const Shape& s) const {
    if (s.size() < shape_.size()) shape_error("expand", "at least " + std::to_string(dim()) + " dims", shape_str(s));
    Tensor t = *this;
    size_t lead = s.size() - shape_.size();
    t.shape_ = s;
    t.strides_.assign(s.size(), 0);
    for (size_t i = 0; i < s.size(); ++i) {
      if (i < lead) continue;
      int64_t have = shape_[i - lead];
      if (have == s[i]) {
        t.strides_[i] = strides_[i - lead];
      } else if (have != 1) {
        shape_error("expand", "a shape " + shape_str(shape_) + " broadcasts to", shape_str(s));
      }
    }
    return t;
  }
  Tensor unsqueeze(int64_t d) const {
    int dd = wrap_dim(d, dim() + 1, "unsqueeze");
    Tensor t = *this;
    t.shape_.insert(t.shape_.begin() + dd, 1);
    t.strides_.insert(t.strides_.begin() + dd, dd < dim() ? strides_[dd] * shape_[dd] : 1);
    return t;
  }

  // ---- copies ---------------------------------------------------------------------------------
  Tensor contiguous() const { return !defined() || is_contiguous() ? *this : clone(); }
  Tensor clone() const {
    Tensor out = uninitialized(shape_);
    copy_strided(*this, out);
    return out;
  }
  // Copies src (same shape, any strides) into this view (any strides), element by element.
  void copy_from(const Tensor& src) const {
    if (src.shape_ != shape_) shape_error("copy_from", shape_str(shape_), shape_str(src.shape_));
    copy_strided(src, *this);
  }
  void fill(T v) const {
    if (is_contiguous()) {
      std::fill(data(), data() + numel(), v);
    } else {
      for (int64_t i = 0, n = numel(); i < n; ++i) flat(i) = v;
    }
  }
  std::vector<T> to_vector() const {
    Tensor c = contiguous();
    return std::vector<T>(c.data(), c.data() + c.numel());
  }
  template <class U>
  Tensor<U> to() const {
    Tensor c = contiguous();
    Tensor<U> out(shape_);
    for (int64_t i = 0, n = numel(); i < n; ++i) out.data()[i] = static_cast<U>(c.data()[i]);
    return out;
  }

 private:
  static const Shape& check_shape(const Shape& s) {
    for (int64_t d : s)
      if (d < 0) shape_error("Tensor", "non-negative sizes", shape_str(s));
    return s;
  }
  int64_t linear_offset(const Shape& idx) const {
    if (static_cast<int64_t>(idx.size()) != dim())
      shape_error("Tensor::at", std::to_string(dim()) + " indices", std::to_string(idx.size()));
    int64_t off = 0;
    for (size_t i = 0; i < idx.size(); ++i) {
      if (idx[i] < 0 || idx[i] >= shape_[i])
        shape_error("Tensor::at", "an index inside " + shape_str(shape_), shape_str(idx));
      off += idx[i] * strides_[i];
    }
    return off;
  }
  // Strided copy; the innermost dimension is a tight loop.
  static void copy_strided(const Tensor& src, const Tensor& dst) {
    const int64_t n = src.numel();
    if (n == 0) return;
    if (src.is_contiguous() && dst.is_contiguous()) {
      std::memmove(dst.data(), src.data(), n * sizeof(T));
      return;
    }
    if (src.dim() == 0) {
      *dst.data() = *src.data();
      return;
    }
    // Merge neighbouring dimensions that are laid out as one in both tensors (size-1 dimensions
    // dropped), so e.g. a channel slice of NCHW copies whole C*H*W runs with memcpy.
    Shape shape, sst, dst_st;
    for (int64_t d = 0; d < src.dim(); ++d) {
      if (src.shape_[d] == 1) continue;
      if (!shape.empty() && sst.back() == src.strides_[d] * src.shape_[d] &&
          dst_st.back() == dst.strides_[d] * src.shape_[d]) {
        shape.back() *= src.shape_[d];
        sst.back() = src.strides_[d];
        dst_st.back() = dst.strides_[d];
      } else {
        shape.push_back(src.shape_[d]);
        sst.push_back(src.strides_[d]);
        dst_st.push_back(dst.strides_[d]);
      }
    }
    if (shape.empty()) {
      *dst.data() = *src.data();
      return;
    }
    const int nd = static_cast<int>(shape.size());
    const int64_t inner = shape[nd - 1], ss = sst[nd - 1], ds = dst_st[nd - 1];
    const int64_t outer = n / inner;
#pragma omp parallel for schedule(static) if (n > (1 << 16))
    for (int64_t o = 0; o < outer; ++o) {
      int64_t so = 0, dof = 0, r = o;
      for (int d = nd - 2; d >= 0; --d) {
        int64_t i = r % shape[d];
        r /= shape[d];
        so += i * sst[d];
        dof += i * dst_st[d];
      }
      const T* s = src.data() + so;
      T* dp = dst.data() + dof;
      if (ss == 1 && ds == 1) {
        std::memcpy(dp, s, inner * sizeof(T));
      } else {
        for (int64_t i = 0; i < inner; ++i) dp[i * ds] = s[i * ss];
      }
    }
  }

  template <class U>
  friend class Tensor;

  std::shared_ptr<Storage<T>> storage_;
  int64_t offset_ = 0;
  Shape shape_;
  Shape strides_;
};

using TensorF = Tensor<float>;
using TensorD = Tensor<double>;

}  // namespace dd
