#include "nn/unet.h"

#include <algorithm>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace dd {

namespace {

bool contains(const std::vector<int>& v, int x) { return std::find(v.begin(), v.end(), x) != v.end(); }

std::string vec_str(const std::vector<int>& v) {
  std::string s = "(";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + ")";
}

}  // namespace

void UNetConfig::validate() const {
  auto fail = [](const std::string& field, const std::string& expected, const std::string& got) {
    throw std::invalid_argument("UNetConfig." + field + ": expected " + expected + ", got " + got);
  };
  if (in_channels < 1) fail("in_channels", ">= 1", std::to_string(in_channels));
  if (ch < 4 || ch % 2 != 0) fail("ch", "an even number >= 4 (sinusoidal embedding width)", std::to_string(ch));
  if (ch_mult.empty()) fail("ch_mult", "at least one level", "()");
  for (int m : ch_mult)
    if (m < 1 || (int64_t{ch} * m) % GroupNorm<float>::kGroups != 0)
      fail("ch_mult", "ch * mult divisible by the " + std::to_string(GroupNorm<float>::kGroups) + " GroupNorm groups",
           "ch " + std::to_string(ch) + ", ch_mult " + vec_str(ch_mult));
  if (num_res_blocks < 1) fail("num_res_blocks", ">= 1", std::to_string(num_res_blocks));
  // 2^16 labels is far beyond any data set here and keeps num_classes + 1 (the null label) and the
  // embedding's size from overflowing.
  if (num_classes < 0 || num_classes > 65536) fail("num_classes", "0..65536 (0: unconditional)", std::to_string(num_classes));
  if (dropout < 0 || dropout >= 1) fail("dropout", "a probability in [0, 1)", std::to_string(dropout));
  // Each Downsample halves the side (rounding up) and each Upsample doubles it: the decoder meets
  // the encoder's skips only if every halving is exact.
  int res = resolution;
  for (size_t i = 0; i + 1 < ch_mult.size(); ++i) {
    if (res < 2 || res % 2 != 0)
      fail("resolution", "a side length divisible by 2^" + std::to_string(ch_mult.size() - 1),
           std::to_string(resolution));
    res /= 2;
  }
}

std::string UNetConfig::to_json() const {
  nlohmann::json j = {{"in_ch", in_channels},       {"ch", ch},
                      {"ch_mult", ch_mult},         {"num_res_blocks", num_res_blocks},
                      {"attn_resolutions", attn_resolutions}, {"resolution", resolution},
                      {"dropout", dropout},         {"learn_variance", learn_variance}};
  // Written only for a conditional model, so an unconditional config stays the reference's JSON.
  if (num_classes > 0) j["num_classes"] = num_classes;
  return j.dump();
}

UNetConfig UNetConfig::from_json(const std::string& text) {
  UNetConfig c;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("UNetConfig: expected a JSON object, got unparsable text: ") + e.what());
  }
  if (!j.is_object()) throw std::invalid_argument("UNetConfig: expected a JSON object, got " + text);
  // get<int>() converts any number, and a float outside int's range is undefined behaviour: the
  // integer fields must hold integers that fit.
  auto is_int = [](const nlohmann::json& v) {
    return v.is_number_integer() && (v.is_number_unsigned() ? v.get<uint64_t>() <= uint64_t(INT32_MAX)
                                                            : v.get<int64_t>() >= INT32_MIN && v.get<int64_t>() <= INT32_MAX);
  };
  for (const char* key : {"in_ch", "ch", "num_res_blocks", "resolution", "num_classes"})
    if (j.contains(key) && !is_int(j.at(key)))
      throw std::invalid_argument(std::string("UNetConfig: a field has the wrong type: expected an integer for '") + key + "', got " + j.at(key).dump().substr(0, 40));
  for (const char* key : {"ch_mult", "attn_resolutions"})
    if (j.contains(key)) {
      const auto& v = j.at(key);
      bool ok = v.is_array();
      for (size_t i = 0; ok && i < v.size(); ++i) ok = is_int(v[i]);
      if (!ok) throw std::invalid_argument(std::string("UNetConfig: a field has the wrong type: expected a list of integers for '") + key + "', got " + v.dump().substr(0, 40));
    }
  try {
    if (j.contains("in_ch")) c.in_channels = j.at("in_ch").get<int>();
    if (j.contains("ch")) c.ch = j.at("ch").get<int>();
    if (j.contains("ch_mult")) c.ch_mult = j.at("ch_mult").get<std::vector<int>>();
    if (j.contains("num_res_blocks")) c.num_res_blocks = j.at("num_res_blocks").get<int>();
    if (j.contains("attn_resolutions")) c.attn_resolutions = j.at("attn_resolutions").get<std::vector<int>>();
    if (j.contains("resolution")) c.resolution = j.at("resolution").get<int>();
    if (j.contains("dropout")) c.dropout = j.at("dropout").get<double>();
    if (j.contains("learn_variance")) c.learn_variance = j.at("learn_variance").get<bool>();
    if (j.contains("num_classes")) c.num_classes = j.at("num_classes").get<int>();
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("UNetConfig: a field has the wrong type: ") + e.what());
  }
  c.validate();
  return c;
}

bool UNetConfig::operator==(const UNetConfig& o) const {
  return in_channels == o.in_channels && ch == o.ch && ch_mult == o.ch_mult && num_res_blocks == o.num_res_blocks &&
         attn_resolutions == o.attn_resolutions && dropout == o.dropout && learn_variance == o.learn_variance &&
         resolution == o.resolution && num_classes == o.num_classes;
}

// ---- levels ----------------------------------------------------------------------------------
template <class T>
UNet<T>::DownLevel::DownLevel(int cin, int cout, int n_blocks, int temb_ch, bool with_attn, bool down,
                              double dropout, Rng& rng) {
  for (int i = 0; i < n_blocks; ++i) {
    block.push_back(std::make_unique<ResBlock<T>>(i == 0 ? cin : cout, cout, temb_ch, dropout, rng));
    this->register_module("block." + std::to_string(i), *block.back());
  }
  // Levels without attention have no attn modules: no parameters, no names (as in tools/torch_unet.py).
  if (with_attn)
    for (int i = 0; i < n_blocks; ++i) {
      attn.push_back(std::make_unique<AttnBlock<T>>(cout, rng));
      this->register_module("attn." + std::to_string(i), *attn.back());
    }
  if (down) {
    downsample = std::make_unique<Downsample<T>>(cout, rng);
    this->register_module("downsample", *downsample);
  }
}

template <class T>
Var<T> UNet<T>::DownLevel::forward(Var<T> h, const Var<T>& temb, std::vector<Var<T>>& skips,
                                   DropoutCalls& dropout_calls) const {
  for (size_t i = 0; i < block.size(); ++i) {
    h = block[i]->forward(h, temb, dropout_calls);
    if (!attn.empty()) h = attn[i]->forward(h);
    skips.push_back(h);
  }
  if (downsample) {
    h = downsample->forward(h);
    skips.push_back(h);
  }
  return h;
}

template <class T>
UNet<T>::UpLevel::UpLevel(int cin, int cout, const std::vector<int>& skip_channels, int temb_ch, bool with_attn,
                          bool up, double dropout, Rng& rng) {
  for (size_t i = 0; i < skip_channels.size(); ++i) {
    block.push_back(std::make_unique<ResBlock<T>>(cin + skip_channels[i], cout, temb_ch, dropout, rng));
    this->register_module("block." + std::to_string(i), *block.back());
    cin = cout;
  }
  if (with_attn)
    for (size_t i = 0; i < skip_channels.size(); ++i) {
      attn.push_back(std::make_unique<AttnBlock<T>>(cout, rng));
      this->register_module("attn." + std::to_string(i), *attn.back());
    }
  if (up) {
    upsample = std::make_unique<Upsample<T>>(cout, rng);
    this->register_module("upsample", *upsample);
  }
}

template <class T>
Var<T> UNet<T>::UpLevel::forward(Var<T> h, const Var<T>& temb, std::vector<Var<T>>& skips,
                                 DropoutCalls& dropout_calls) const {
  for (size_t i = 0; i < block.size(); ++i) {
    Var<T> skip = skips.back();
    skips.pop_back();
    h = block[i]->forward(concat<T>({h, skip}, 1), temb, dropout_calls);
    if (!attn.empty()) h = attn[i]->forward(h);
  }
  if (upsample) h = upsample->forward(h);
  return h;
}

template <class T>
UNet<T>::Mid::Mid(int c, int temb_ch, double dropout, Rng& rng)
    : block_1(c, c, temb_ch, dropout, rng), attn_1(c, rng), block_2(c, c, temb_ch, dropout, rng) {
  this->register_module("block_1", block_1);
  this->register_module("attn_1", attn_1);
  this->register_module("block_2", block_2);
}

template <class T>
Var<T> UNet<T>::Mid::forward(const Var<T>& h, const Var<T>& temb, DropoutCalls& dropout_calls) const {
  return block_2.forward(attn_1.forward(block_1.forward(h, temb, dropout_calls)), temb, dropout_calls);
}

template <class T>
UNet<T>::LabelEmbedding::LabelEmbedding(int rows, int width, Rng& rng)
    : weight(this->register_parameter("weight", rng.normal<T>({int64_t{rows}, int64_t{width}}))) {}

// ---- UNet ------------------------------------------------------------------------------------
template <class T>
UNet<T>::UNet(const UNetConfig& cfg, Rng& rng) : config_(cfg) {
  cfg.validate();
  const int ch = cfg.ch, temb_ch = 4 * cfg.ch, levels = static_cast<int>(cfg.ch_mult.size());
  // Construction order = registration order = tools/torch_unet.py's: temb, conv_in, down, mid, up,
  // norm_out, conv_out.
  temb_ = std::make_unique<TimeEmbedding<T>>(ch, temb_ch, rng);
  this->register_module("temb", *temb_);
  conv_in_ = std::make_unique<Conv2d<T>>(cfg.in_channels, ch, 3, 1, 1, rng);
  this->register_module("conv_in", *conv_in_);

  // Encoder; remember the channel count of every skip-stack entry for the decoder.
  std::vector<int> skip_channels{ch};
  int cin = ch, res = cfg.resolution;
  for (int i = 0; i < levels; ++i) {
    const int cout = ch * cfg.ch_mult[i];
    const bool last = i == levels - 1;
    down_.push_back(std::make_unique<DownLevel>(cin, cout, cfg.num_res_blocks, temb_ch,
                                                contains(cfg.attn_resolutions, res), !last, cfg.dropout, rng));
    this->register_module("down." + std::to_string(i), *down_.back());
    for (int b = 0; b < cfg.num_res_blocks; ++b) skip_channels.push_back(cout);
    if (!last) {
      skip_channels.push_back(cout);
      res /= 2;
    }
    cin = cout;
  }

  mid_ = std::make_unique<Mid>(cin, temb_ch, cfg.dropout, rng);
  this->register_module("mid", *mid_);

  // Decoder, built from the lowest resolution up (that is the order weights are drawn in
  // tools/torch_unet.py too), registered in resolution order: up.0 is full size.
  up_.resize(levels);
  for (int i = levels - 1; i >= 0; --i) {
    const int cout = ch * cfg.ch_mult[i];
    std::vector<int> pops;
    for (int b = 0; b < cfg.num_res_blocks + 1; ++b) {
      pops.push_back(skip_channels.back());
      skip_channels.pop_back();
    }
    up_[i] = std::make_unique<UpLevel>(cin, cout, pops, temb_ch, contains(cfg.attn_resolutions, res), i != 0,
                                       cfg.dropout, rng);
    cin = cout;
    if (i != 0) res *= 2;
  }
  for (int i = 0; i < levels; ++i) this->register_module("up." + std::to_string(i), *up_[i]);

  norm_out_ = std::make_unique<GroupNorm<T>>(cin);
  this->register_module("norm_out", *norm_out_);
  conv_out_ = std::make_unique<Conv2d<T>>(cin, cfg.out_channels(), 3, 1, 1, rng);
  this->register_module("conv_out", *conv_out_);
  // Rows drawn from N(0, 1), as PyTorch's nn.Embedding and the guided-diffusion UNet's label_emb
  // (Dhariwal & Nichol 2021): the labels move the time embedding from the first step. With zero
  // rows the labels started as the unconditional network and a 6,000-step run still confused
  // digits (2 as 8, 6 as 0). Drawn last from `rng`, so every other parameter keeps the initial
  // value of the unconditional model.
  if (cfg.num_classes > 0) {
    label_emb_ = std::make_unique<LabelEmbedding>(cfg.num_classes + 1, temb_ch, rng);
    this->register_module("label_emb", *label_emb_);
  }

  this->build_flat_buffers();
}

template <class T>
Var<T> UNet<T>::forward(const Var<T>& x, const std::vector<int64_t>& t) {
  return forward_impl(x, t, nullptr);
}

template <class T>
Var<T> UNet<T>::forward(const Var<T>& x, const std::vector<int64_t>& t, const std::vector<int64_t>& labels) {
  if (!conditional())
    throw std::invalid_argument("UNet.forward: labels given to an unconditional model (num_classes = 0)");
  if (labels.size() != t.size())
    shape_error("UNet.forward", "one label per image (" + std::to_string(t.size()) + ")",
                std::to_string(labels.size()) + " labels");
  for (size_t i = 0; i < labels.size(); ++i)
    if (labels[i] < 0 || labels[i] > config_.num_classes)
      throw std::invalid_argument("UNet.forward: expected labels in 0.." + std::to_string(config_.num_classes) +
                                  " (" + std::to_string(config_.num_classes) + " = null), got " +
                                  std::to_string(labels[i]) + " at position " + std::to_string(i));
  return forward_impl(x, t, &labels);
}

template <class T>
Var<T> UNet<T>::forward_impl(const Var<T>& x, const std::vector<int64_t>& t, const std::vector<int64_t>* labels) {
  const int64_t r = config_.resolution;
  if (x.dim() != 4 || x.size(1) != config_.in_channels || x.size(2) != r || x.size(3) != r)
    shape_error("UNet.forward", "input [N, " + std::to_string(config_.in_channels) + ", " + std::to_string(r) + ", " +
                                    std::to_string(r) + "]",
                shape_str(x.shape()));
  if (static_cast<int64_t>(t.size()) != x.size(0))
    shape_error("UNet.forward", "one timestep per image (" + std::to_string(x.size(0)) + ")",
                std::to_string(t.size()) + " timesteps");
  for (int64_t ti : t)
    if (ti < 0)
      throw std::invalid_argument("UNet.forward: expected 0-based timesteps >= 0, got " + std::to_string(ti));

  Var<T> temb = temb_->forward(t);
  // An unconditional call of a conditional model is the null label's.
  if (conditional())
    temb = temb + embedding(label_emb_->weight, labels ? *labels : std::vector<int64_t>(t.size(), config_.null_label()));
  Var<T> h = conv_in_->forward(x);
  std::vector<Var<T>> skips{h};
  // The ResBlocks' dropouts are sites 0, 1, ... of this forward, in execution order.
  DropoutCalls dropout_calls(dropout_stream_);
  for (const auto& level : down_) h = level->forward(h, temb, skips, dropout_calls);
  h = mid_->forward(h, temb, dropout_calls);
  for (auto it = up_.rbegin(); it != up_.rend(); ++it) h = (*it)->forward(h, temb, skips, dropout_calls);
  return conv_out_->forward(norm_out_->forward_silu(h));
}

// ---- parameter listing -----------------------------------------------------------------------
std::string python_tuple(const Shape& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  if (shape.size() == 1) s += ",";
  return s + ")";
}

template <class T>
std::string format_parameter_list(const Module<T>& model) {
  std::ostringstream out;
  int64_t total = 0;
  for (const auto& p : model.named_parameters()) {
    std::string name = p.name;
    if (name.size() < 45) name.resize(45, ' ');
    out << name << ' ' << python_tuple(p.var.shape()) << '\n';
    total += p.var.numel();
  }
  out << "total parameters: " << total << '\n';
  return out.str();
}

template class UNet<float>;
template class UNet<double>;
template std::string format_parameter_list<float>(const Module<float>&);
template std::string format_parameter_list<double>(const Module<double>&);

}  // namespace dd
