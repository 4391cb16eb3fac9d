// The layers of the DDPM UNet, each a Module built from autograd ops, with the parameter names of
// the project's PyTorch model (tools/torch_unet.py). Conv2d and Linear are initialised like
// PyTorch's defaults (see uniform_fan_in in nn/module.h); GroupNorm starts at weight 1, bias 0.
#pragma once

#include <memory>
#include <vector>

#include "autograd/ops.h"
#include "nn/dropout.h"
#include "nn/module.h"

namespace dd {

// y = x W^T + b; x [N,in], W [out,in], b [out]. Parameters: weight, bias.
template <class T>
class Linear : public Module<T> {
 public:
  Linear(int in_features, int out_features, Rng& rng);
  Var<T> forward(const Var<T>& x) const;
  Var<T> weight, bias;
};

// NCHW convolution with bias. Parameters: weight [out,in,k,k], bias [out].
template <class T>
class Conv2d : public Module<T> {
 public:
  Conv2d(int in_channels, int out_channels, int kernel, int stride, int padding, Rng& rng);
  Var<T> forward(const Var<T>& x) const;
  // forward(x) + addend as one fused op; addend [N,out,1,1] (broadcast) or the output's shape
  Var<T> forward_add(const Var<T>& x, const Var<T>& addend) const;
  Var<T> weight, bias;
  int in_channels, out_channels, kernel, stride, padding;
};

// GroupNorm(groups, eps) with a per-channel affine map. Parameters: weight (1), bias (0).
template <class T>
class GroupNorm : public Module<T> {
 public:
  static constexpr int kGroups = 8;  // as tools/torch_unet.py: GroupNorm(num_groups=8, eps=1e-5)
  static constexpr double kEps = 1e-5;
  explicit GroupNorm(int channels, int groups = kGroups, double eps = kEps);
  Var<T> forward(const Var<T>& x) const;
  Var<T> forward_silu(const Var<T>& x) const;  // silu(forward(x)) as one fused op
  Var<T> weight, bias;
  int groups;
  double eps;
};

// Single-head self-attention over the H*W positions with a residual:
//   h = GN(x); q,k,v = 1x1 convs of h; out[:,i] = sum_j softmax_j(<q_i,k_j>/sqrt(C)) v[:,j];
//   return x + proj_out(out).
template <class T>
class AttnBlock : public Module<T> {
 public:
  AttnBlock(int channels, Rng& rng);
  Var<T> forward(const Var<T>& x) const;
  GroupNorm<T> norm;
  Conv2d<T> q, k, v, proj_out;
};

// h = conv1(SiLU(GN(x))) + temb_proj(SiLU(temb))[:, :, None, None]
// h = conv2(dropout(SiLU(GN(h))));  return (x or nin_shortcut(x)) + h.
// nin_shortcut (1x1 conv) exists only when the channel count changes.
template <class T>
class ResBlock : public Module<T> {
 public:
  ResBlock(int in_channels, int out_channels, int temb_channels, double dropout, Rng& rng);
  // The dropout is the next site of `dropout_calls` (it draws only in training mode with dropout > 0).
  Var<T> forward(const Var<T>& x, const Var<T>& temb, DropoutCalls& dropout_calls) const;
  GroupNorm<T> norm1;
  Conv2d<T> conv1;
  Linear<T> temb_proj;
  GroupNorm<T> norm2;
  Conv2d<T> conv2;
  std::unique_ptr<Conv2d<T>> nin_shortcut;  // null when in_channels == out_channels
  double dropout;
};

// 3x3 convolution, stride 2, padding 1: halves H and W (rounding up). Parameter: conv.
template <class T>
class Downsample : public Module<T> {
 public:
  Downsample(int channels, Rng& rng);
  Var<T> forward(const Var<T>& x) const;
  Conv2d<T> conv;
};

// Nearest-neighbour x2, then a 3x3 convolution (padding 1). Parameter: conv.
template <class T>
class Upsample : public Module<T> {
 public:
  Upsample(int channels, Rng& rng);
  Var<T> forward(const Var<T>& x) const;
  Conv2d<T> conv;
};

// 0-based timesteps -> sinusoid(ch) -> Linear(ch, temb_ch) -> SiLU -> Linear(temb_ch, temb_ch).
// Parameters: dense.0, dense.1.
template <class T>
class TimeEmbedding : public Module<T> {
 public:
  TimeEmbedding(int ch, int temb_channels, Rng& rng);
  Var<T> forward(const std::vector<int64_t>& t) const;
  int ch;
  Linear<T> dense0, dense1;
};

}  // namespace dd
