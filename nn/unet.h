// The DDPM UNet (Ho et al. 2020, the pytorch_diffusion port), exactly like tools/torch_unet.py's UNet:
// the same modules, parameter names, registration order and shapes, so weights move between the
// two. The default configuration has 1,112,801 parameters:
//
//   t (0-based) -> TimeEmbedding(ch -> 4ch)
//   conv_in; per level i: num_res_blocks x (ResBlock [+ AttnBlock at attn resolutions]) then a
//   Downsample except at the last level; every output goes on the skip stack;
//   mid: ResBlock, AttnBlock, ResBlock;
//   per level from the lowest: num_res_blocks+1 x ResBlock(concat(h, skip)) [+ AttnBlock], Upsample
//   except at level 0; norm_out, SiLU, conv_out.
//
// Class-conditional (num_classes > 0, classifier-free guidance, Ho & Salimans 2022): one more
// parameter, label_emb.weight [num_classes + 1, 4ch], registered last so every other parameter keeps
// its name, order and initial value; row y is added to the time embedding, the last row is the null
// label (the unconditional model). With num_classes = 0 the UNet is exactly the reference's.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "nn/layers.h"

namespace dd {

struct UNetConfig {
  int in_channels = 1;
  int ch = 32;                          // base channel count; the time embedding is 4 * ch wide
  std::vector<int> ch_mult{1, 2, 2};    // channels of level i = ch * ch_mult[i]
  int num_res_blocks = 1;               // per encoder level (the decoder has one more)
  std::vector<int> attn_resolutions{7}; // attention after the ResBlocks at these side lengths
  double dropout = 0.0;                 // before each ResBlock's second conv, training mode only
  bool learn_variance = false;          // output 2 * in_channels (eps and the variance interpolation)
  int resolution = 28;                  // input side length (square images)
  int num_classes = 0;                  // > 0: class-conditional, labels 0..num_classes-1 and null = num_classes

  int null_label() const { return num_classes; }

  int out_channels() const { return learn_variance ? 2 * in_channels : in_channels; }
  // Throws naming the field when the configuration cannot build (e.g. GroupNorm(8) on 12 channels).
  void validate() const;
  // JSON with tools/torch_unet.py's UNet constructor argument names (in_ch, ch, ch_mult, num_res_blocks,
  // attn_resolutions, resolution) plus dropout and learn_variance; stored in checkpoints as
  // __metadata__.unet_config and read by tests/golden/make_golden.py --check-cpp.
  std::string to_json() const;
  static UNetConfig from_json(const std::string& json);  // missing keys keep their defaults
  bool operator==(const UNetConfig& o) const;
};

template <class T>
class UNet : public Module<T> {
 public:
  // Draws the initial weights from `init_rng`, then packs all parameters into the flat buffers.
  UNet(const UNetConfig& config, Rng& init_rng);

  // x [N, in_channels, resolution, resolution], t: N 0-based timestep indices (the paper's t - 1)
  // -> [N, out_channels, resolution, resolution].
  Var<T> forward(const Var<T>& x, const std::vector<int64_t>& t);
  // The class-conditional forward: one label per image in 0..num_classes (num_classes = null).
  // Throws when the model is unconditional or a label is out of range.
  Var<T> forward(const Var<T>& x, const std::vector<int64_t>& t, const std::vector<int64_t>& labels);
  bool conditional() const { return config_.num_classes > 0; }

  const UNetConfig& config() const { return config_; }
  // Where the dropout masks of the next forwards come from (nn/dropout.h): set once per training
  // step (train::dropout_stream). Forwards with the same stream draw the same masks; the default
  // is key 0, step 0, first sample 0.
  void set_dropout_stream(const DropoutStream& stream) { dropout_stream_ = stream; }
  const DropoutStream& dropout_stream() const { return dropout_stream_; }

  // One encoder resolution: ResBlocks, each followed by attention where configured, then an
  // optional Downsample. Every output is pushed on the skip stack.
  struct DownLevel : Module<T> {
    DownLevel(int cin, int cout, int n_blocks, int temb_ch, bool attn, bool down, double dropout, Rng& rng);
    Var<T> forward(Var<T> h, const Var<T>& temb, std::vector<Var<T>>& skips, DropoutCalls& dropout_calls) const;
    std::vector<std::unique_ptr<ResBlock<T>>> block;
    std::vector<std::unique_ptr<AttnBlock<T>>> attn;  // empty at levels without attention
    std::unique_ptr<Downsample<T>> downsample;
  };
  // One decoder resolution: a ResBlock per popped skip on concat(h, skip), attention where
  // configured, then an optional Upsample.
  struct UpLevel : Module<T> {
    UpLevel(int cin, int cout, const std::vector<int>& skip_channels, int temb_ch, bool attn, bool up,
            double dropout, Rng& rng);
    Var<T> forward(Var<T> h, const Var<T>& temb, std::vector<Var<T>>& skips, DropoutCalls& dropout_calls) const;
    std::vector<std::unique_ptr<ResBlock<T>>> block;
    std::vector<std::unique_ptr<AttnBlock<T>>> attn;
    std::unique_ptr<Upsample<T>> upsample;
  };
  struct Mid : Module<T> {
    Mid(int c, int temb_ch, double dropout, Rng& rng);
    Var<T> forward(const Var<T>& h, const Var<T>& temb, DropoutCalls& dropout_calls) const;
    ResBlock<T> block_1;
    AttnBlock<T> attn_1;
    ResBlock<T> block_2;
  };

 private:
  UNetConfig config_;
  DropoutStream dropout_stream_;
  std::unique_ptr<TimeEmbedding<T>> temb_;
  std::unique_ptr<Conv2d<T>> conv_in_;
  std::vector<std::unique_ptr<DownLevel>> down_;
  std::unique_ptr<Mid> mid_;
  std::vector<std::unique_ptr<UpLevel>> up_;  // index = resolution level (up.0 is full size)
  std::unique_ptr<GroupNorm<T>> norm_out_;
  std::unique_ptr<Conv2d<T>> conv_out_;
  // A child module (children list after the module's own parameters): its weight comes last.
  struct LabelEmbedding : Module<T> {
    LabelEmbedding(int rows, int width, Rng& rng);  // rows ~ N(0, 1)
    Var<T> weight;  // [num_classes + 1, 4ch]
  };
  std::unique_ptr<LabelEmbedding> label_emb_;  // null when unconditional
  Var<T> forward_impl(const Var<T>& x, const std::vector<int64_t>& t, const std::vector<int64_t>* labels);
};

// One line per parameter, `name` padded to 45 characters then the shape as a Python tuple, and a
// last line `total parameters: N`: the format of `tools/torch_race.py --list-params`.
template <class T>
std::string format_parameter_list(const Module<T>& model);

// "(128,)", "(32, 1, 3, 3)": Python's repr of a tuple of ints.
std::string python_tuple(const Shape& shape);

}  // namespace dd
