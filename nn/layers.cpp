#include "nn/layers.h"

#include <cmath>
#include <stdexcept>
#include <string>

namespace dd {

// ---- Linear ----------------------------------------------------------------------------------
template <class T>
Linear<T>::Linear(int in_features, int out_features, Rng& rng) {
  weight = this->register_parameter("weight", uniform_fan_in<T>(rng, {out_features, in_features}, in_features));
  bias = this->register_parameter("bias", uniform_fan_in<T>(rng, {out_features}, in_features));
}

template <class T>
Var<T> Linear<T>::forward(const Var<T>& x) const {
  return linear(x, weight, bias);
}

// ---- Conv2d ----------------------------------------------------------------------------------
template <class T>
Conv2d<T>::Conv2d(int in_ch, int out_ch, int k, int s, int p, Rng& rng)
    : in_channels(in_ch), out_channels(out_ch), kernel(k), stride(s), padding(p) {
  const int64_t fan_in = static_cast<int64_t>(in_ch) * k * k;
  weight = this->register_parameter("weight", uniform_fan_in<T>(rng, {out_ch, in_ch, k, k}, fan_in));
  bias = this->register_parameter("bias", uniform_fan_in<T>(rng, {out_ch}, fan_in));
}

template <class T>
Var<T> Conv2d<T>::forward(const Var<T>& x) const {
  if (x.dim() != 4 || x.size(1) != in_channels)
    shape_error("Conv2d(" + std::to_string(in_channels) + "->" + std::to_string(out_channels) + ")",
                "input [N," + std::to_string(in_channels) + ",H,W]", shape_str(x.shape()));
  return conv2d(x, weight, bias, stride, padding);
}

template <class T>
Var<T> Conv2d<T>::forward_add(const Var<T>& x, const Var<T>& addend) const {
  if (x.dim() != 4 || x.size(1) != in_channels)
    shape_error("Conv2d(" + std::to_string(in_channels) + "->" + std::to_string(out_channels) + ")",
                "input [N," + std::to_string(in_channels) + ",H,W]", shape_str(x.shape()));
  return conv2d_add(x, weight, bias, addend, stride, padding);
}

// ---- GroupNorm -------------------------------------------------------------------------------
template <class T>
GroupNorm<T>::GroupNorm(int channels, int g, double e) : groups(g), eps(e) {
  if (g < 1 || channels % g != 0)
    throw std::invalid_argument("GroupNorm: expected a channel count divisible by " + std::to_string(g) +
                                " groups, got " + std::to_string(channels) + " channels");
  weight = this->register_parameter("weight", Tensor<T>::ones({channels}));
  bias = this->register_parameter("bias", Tensor<T>::zeros({channels}));
}

template <class T>
Var<T> GroupNorm<T>::forward(const Var<T>& x) const {
  return group_norm(x, groups, weight, bias, eps);
}

template <class T>
Var<T> GroupNorm<T>::forward_silu(const Var<T>& x) const {
  return group_norm_silu(x, groups, weight, bias, eps);
}

// ---- AttnBlock -------------------------------------------------------------------------------
template <class T>
AttnBlock<T>::AttnBlock(int c, Rng& rng)
    : norm(c), q(c, c, 1, 1, 0, rng), k(c, c, 1, 1, 0, rng), v(c, c, 1, 1, 0, rng), proj_out(c, c, 1, 1, 0, rng) {
  this->register_module("norm", norm);
  this->register_module("q", q);
  this->register_module("k", k);
  this->register_module("v", v);
  this->register_module("proj_out", proj_out);
}

template <class T>
Var<T> AttnBlock<T>::forward(const Var<T>& x) const {
  const int64_t b = x.size(0), c = x.size(1), hh = x.size(2), ww = x.size(3);
  Var<T> h = norm.forward(x);
  const Shape flat{b, c, hh * ww};
  Var<T> out = attention(reshape(q.forward(h), flat), reshape(k.forward(h), flat), reshape(v.forward(h), flat),
                         1.0 / std::sqrt(static_cast<double>(c)));
  return proj_out.forward_add(reshape(out, {b, c, hh, ww}), x);  // x + proj_out(out), fused
}

// ---- ResBlock --------------------------------------------------------------------------------
template <class T>
ResBlock<T>::ResBlock(int in_ch, int out_ch, int temb_ch, double p, Rng& rng)
    : norm1(in_ch),
      conv1(in_ch, out_ch, 3, 1, 1, rng),
      temb_proj(temb_ch, out_ch, rng),
      norm2(out_ch),
      conv2(out_ch, out_ch, 3, 1, 1, rng),
      dropout(p) {
  if (p < 0 || p >= 1)
    throw std::invalid_argument("ResBlock: expected dropout in [0, 1), got " + std::to_string(p));
  this->register_module("norm1", norm1);
  this->register_module("conv1", conv1);
  this->register_module("temb_proj", temb_proj);
  this->register_module("norm2", norm2);
  this->register_module("conv2", conv2);
  if (in_ch != out_ch) {
    nin_shortcut = std::make_unique<Conv2d<T>>(in_ch, out_ch, 1, 1, 0, rng);
    this->register_module("nin_shortcut", *nin_shortcut);
  }
}

template <class T>
Var<T> ResBlock<T>::forward(const Var<T>& x, const Var<T>& temb, DropoutCalls& dropout_calls) const {
  // h = conv1(silu(norm1(x))) + temb_proj(silu(temb)) broadcast over H, W; out = skip + conv2(...).
  // Both additions happen inside the convolutions' output pass (Conv2d::forward_add).
  Var<T> t = temb_proj.forward(silu(temb));  // [N, C]
  Var<T> h = conv1.forward_add(norm1.forward_silu(x), reshape(t, {t.size(0), t.size(1), 1, 1}));
  Var<T> skip = nin_shortcut ? nin_shortcut->forward(x) : x;
  return conv2.forward_add(dropout_calls.next(norm2.forward_silu(h), dropout, this->training()), skip);
}

// ---- Downsample / Upsample -------------------------------------------------------------------
template <class T>
Downsample<T>::Downsample(int c, Rng& rng) : conv(c, c, 3, 2, 1, rng) {
  this->register_module("conv", conv);
}

template <class T>
Var<T> Downsample<T>::forward(const Var<T>& x) const {
  return conv.forward(x);
}

template <class T>
Upsample<T>::Upsample(int c, Rng& rng) : conv(c, c, 3, 1, 1, rng) {
  this->register_module("conv", conv);
}

template <class T>
Var<T> Upsample<T>::forward(const Var<T>& x) const {
  return conv.forward(upsample_nearest2x(x));
}

// ---- TimeEmbedding ---------------------------------------------------------------------------
template <class T>
TimeEmbedding<T>::TimeEmbedding(int c, int temb_ch, Rng& rng) : ch(c), dense0(c, temb_ch, rng), dense1(temb_ch, temb_ch, rng) {
  // get_timestep_embedding divides by (ch/2 - 1): it needs an even width of at least 4.
  if (c < 4 || c % 2 != 0)
    throw std::invalid_argument("TimeEmbedding: expected an even width >= 4, got " + std::to_string(c));
  this->register_module("dense.0", dense0);
  this->register_module("dense.1", dense1);
}

template <class T>
Var<T> TimeEmbedding<T>::forward(const std::vector<int64_t>& t) const {
  Var<T> sinusoid(timestep_embedding<T>(t, ch), false);
  return dense1.forward(silu(dense0.forward(sinusoid)));
}

template class Linear<float>;
template class Linear<double>;
template class Conv2d<float>;
template class Conv2d<double>;
template class GroupNorm<float>;
template class GroupNorm<double>;
template class AttnBlock<float>;
template class AttnBlock<double>;
template class ResBlock<float>;
template class ResBlock<double>;
template class Downsample<float>;
template class Downsample<double>;
template class Upsample<float>;
template class Upsample<double>;
template class TimeEmbedding<float>;
template class TimeEmbedding<double>;

}  // namespace dd
