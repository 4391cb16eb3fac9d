// Checkpoints: round trip of model + EMA + Adam + metadata, weights-only files, and files that do
// not fit the model (wrong architecture, a missing or an extra tensor) rejected with the tensor named.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

#include "autograd/ops.h"
#include "nn/checkpoint.h"
#include "nn/unet.h"
#include "tensor/io/atomic_file.h"
#include "tensor/io/io_error.h"
#include "tensor/io/safetensors.h"
#include "tests/scratch_dir.h"
#include "tests/tiny_unet.h"

using namespace dd;

namespace {

UNetConfig tiny_config(int ch = 8) { return dd_test::tiny_unet_config(ch); }

// A file in this process's own fresh folder under $TMPDIR (mkdtemp), removed with the folder at exit.
std::string temp_path(const std::string& name) {
  static const dd_test::ScratchDir dir;
  return dir.file(name);
}

struct Removed {
  std::string path;
  ~Removed() { std::remove(path.c_str()); }
};

bool same(const TensorF& a, const TensorF& b) { return a.shape() == b.shape() && a.to_vector() == b.to_vector(); }

// A model with moved weights, moments and EMA (so nothing is at its initial value).
void train_two_steps(UNet<float>& net, Adam<float>& adam, Ema<float>& ema) {
  Rng rng(11);
  for (int s = 0; s < 2; ++s) {
    net.zero_grad();
    VarF x(rng.normal<float>({2, 1, 8, 8}));
    mse_loss(net.forward(x, {5, 50}), VarF(rng.normal<float>({2, 1, 8, 8}))).backward();
    adam.step();
    ema.update();
  }
}

}  // namespace

TEST_CASE("checkpoint round trip: weights, EMA, Adam moments and step, metadata") {
  Rng rng(1);
  UNet<float> net(tiny_config(), rng);
  Adam<float> adam(net, AdamConfig{});
  Ema<float> ema(net, 0.99);
  train_two_steps(net, adam, ema);
  CheckpointInfo info;
  info.step = 2;
  info.config = "{\"lr\": 0.0002}";
  info.dataset = "mnist train, 60000 images";
  info.rng = Rng(5, 77).state();
  info.unet_config = net.config().to_json();
  Removed file{temp_path("ckpt.safetensors")};
  save_checkpoint(file.path, net, &ema, &adam, info);

  // The file's names and metadata keys are docs/conventions.md's.
  const SafetensorsFile f = load_safetensors(file.path);
  CHECK(f.has("conv_in.weight"));
  CHECK(f.has("ema.mid.attn_1.q.weight"));
  CHECK(f.has("adam.m.up.1.upsample.conv.bias"));
  CHECK(f.has("adam.v.norm_out.weight"));
  CHECK(f.entries().size() == 4 * net.named_parameters().size());
  CHECK(f.metadata.at("format") == "ddpm-cpp-checkpoint");
  CHECK(f.metadata.at("version") == "2");
  CHECK(f.metadata.at("crc32") == checkpoint_data_crc32(f));
  for (const char* key : {"step", "config", "dataset", "rng"}) CHECK(f.metadata.count(key) == 1);

  Rng other(2);
  UNet<float> net2(UNetConfig::from_json(read_unet_config(file.path)), other);
  Adam<float> adam2(net2, AdamConfig{});
  Ema<float> ema2(net2, 0.99);
  CHECK_FALSE(same(net2.flat_values(), net.flat_values()));
  const CheckpointInfo got = load_checkpoint(file.path, net2, &ema2, &adam2);
  CHECK(same(net2.flat_values(), net.flat_values()));
  CHECK(same(ema2.values(), ema.values()));
  CHECK(same(adam2.m(), adam.m()));
  CHECK(same(adam2.v(), adam.v()));
  CHECK(adam2.steps() == 2);
  CHECK(ema2.num_updates() == 2);
  CHECK(got.step == 2);
  CHECK(got.config == info.config);
  CHECK(got.dataset == info.dataset);
  CHECK(Rng::from_state(got.rng).counter() == 77);
  CHECK(UNetConfig::from_json(got.unet_config) == net.config());

  // Resuming continues exactly: one more step on both gives the same weights.
  train_two_steps(net, adam, ema);
  train_two_steps(net2, adam2, ema2);
  CHECK(same(net2.flat_values(), net.flat_values()));
  CHECK(same(ema2.values(), ema.values()));
}

TEST_CASE("weights file: only model names; loads into a model; load_weights can take the EMA weights") {
  Rng rng(3);
  UNet<float> net(tiny_config(), rng);
  Adam<float> adam(net, AdamConfig{});
  Ema<float> ema(net, 0.5);
  train_two_steps(net, adam, ema);
  Removed weights{temp_path("weights.safetensors")}, ckpt{temp_path("ckpt2.safetensors")};
  save_weights(weights.path, net, net.config().to_json());
  save_checkpoint(ckpt.path, net, &ema, &adam, CheckpointInfo{});
  const SafetensorsFile f = load_safetensors(weights.path);
  CHECK(f.entries().size() == net.named_parameters().size());
  CHECK(f.metadata.count("format") == 0);

  Rng other(4);
  UNet<float> a(tiny_config(), other);
  load_weights(weights.path, a);
  CHECK(same(a.flat_values(), net.flat_values()));
  UNet<float> b(tiny_config(), other);
  load_weights(ckpt.path, b, /*from_ema=*/true);
  CHECK(same(b.flat_values(), ema.values()));
  // A weights file is not a checkpoint.
  CHECK_THROWS_WITH_AS(load_checkpoint(weights.path, a, &ema, &adam), doctest::Contains("format"), IoError);
  CHECK_THROWS_WITH_AS(load_weights(weights.path, b, true), doctest::Contains("'ema.temb.dense.0.weight'"), IoError);
}

TEST_CASE("a checkpoint of another model is rejected, naming the tensor, and changes nothing") {
  Rng rng(5);
  UNet<float> small(tiny_config(8), rng);
  UNet<float> wide(tiny_config(16), rng);
  Removed file{temp_path("small.safetensors")};
  save_checkpoint(file.path, small, nullptr, nullptr, CheckpointInfo{});
  const std::vector<float> before = wide.flat_values().to_vector();
  CHECK_THROWS_WITH_AS(load_checkpoint<float>(file.path, wide, nullptr, nullptr),
                       doctest::Contains("tensor 'temb.dense.0.weight' of shape [64, 16]"), IoError);
  CHECK(wide.flat_values().to_vector() == before);
  // Architecture differences that keep the first shapes: a learned-variance head.
  UNetConfig lv = tiny_config(8);
  lv.learn_variance = true;
  UNet<float> two_out(lv, rng);
  CHECK_THROWS_WITH_AS(load_checkpoint<float>(file.path, two_out, nullptr, nullptr),
                       doctest::Contains("'conv_out.weight'"), IoError);
  // And a model with more blocks finds a tensor missing.
  UNetConfig deeper = tiny_config(8);
  deeper.num_res_blocks = 2;
  UNet<float> more(deeper, rng);
  CHECK_THROWS_WITH_AS(load_checkpoint<float>(file.path, more, nullptr, nullptr),
                       doctest::Contains("expected a tensor named 'down.0.block.1.norm1.weight', found none"), IoError);
}

TEST_CASE("a missing or an unexpected tensor is named; EMA and Adam tensors are required when asked for") {
  Rng rng(6);
  UNet<float> net(tiny_config(), rng);
  Adam<float> adam(net, AdamConfig{});
  Ema<float> ema(net, 0.9);
  Removed good{temp_path("good.safetensors")}, bad{temp_path("bad.safetensors")};
  save_checkpoint(good.path, net, &ema, nullptr, CheckpointInfo{});
  const SafetensorsFile f = load_safetensors(good.path);

  SafetensorsFile missing;
  missing.metadata = f.metadata;
  for (const auto& e : f.entries())
    if (e.name != "ema.mid.block_2.conv1.bias") missing.add_raw(e.name, e.dtype, e.shape, e.bytes);
  missing.metadata["crc32"] = checkpoint_data_crc32(missing);
  save_safetensors(bad.path, missing);
  CHECK_THROWS_WITH_AS(load_checkpoint<float>(bad.path, net, &ema, nullptr),
                       doctest::Contains("'ema.mid.block_2.conv1.bias', found none"), IoError);
  CHECK_NOTHROW(load_checkpoint<float>(bad.path, net, nullptr, nullptr));  // EMA not asked for

  SafetensorsFile extra = load_safetensors(good.path);
  extra.add("mid.block_3.conv1.bias", TensorF({16}));
  extra.metadata["crc32"] = checkpoint_data_crc32(extra);
  save_safetensors(bad.path, extra);
  CHECK_THROWS_WITH_AS(load_checkpoint<float>(bad.path, net, &ema, nullptr),
                       doctest::Contains("unexpected tensor 'mid.block_3.conv1.bias'"), IoError);

  // This checkpoint has no Adam moments.
  CHECK_THROWS_WITH_AS(load_checkpoint<float>(good.path, net, &ema, &adam),
                       doctest::Contains("'adam.m.temb.dense.0.weight', found none"), IoError);
}

TEST_CASE("a truncated checkpoint is rejected with an IoError") {
  Rng rng(7);
  UNet<float> net(tiny_config(), rng);
  Removed good{temp_path("t.safetensors")}, bad{temp_path("t_cut.safetensors")};
  save_checkpoint<float>(good.path, net, nullptr, nullptr, CheckpointInfo{});
  std::vector<uint8_t> bytes = read_file_bytes(good.path);
  bytes.resize(bytes.size() - 100);
  write_file_atomic(bad.path, bytes);
  CHECK_THROWS_AS(load_checkpoint<float>(bad.path, net, nullptr, nullptr), IoError);
}

namespace {
// The first float of tensor `name` of a saved file, replaced by `value` (checksum resealed when asked).
void poke(const std::string& path, const std::string& name, float value, bool reseal) {
  SafetensorsFile f = load_safetensors(path);
  SafetensorsFile g;
  g.metadata = f.metadata;
  for (const auto& e : f.entries()) {
    std::vector<uint8_t> bytes = e.bytes;
    if (e.name == name) std::memcpy(bytes.data(), &value, sizeof value);
    g.add_raw(e.name, e.dtype, e.shape, bytes);
  }
  if (reseal) g.metadata["crc32"] = checkpoint_data_crc32(g);
  save_safetensors(path, g);
}
}  // namespace

TEST_CASE("a non-finite weight, moment or EMA value is never checkpointed; the previous file stays") {
  Rng rng(8);
  UNet<float> net(tiny_config(), rng);
  Adam<float> adam(net, AdamConfig{});
  Ema<float> ema(net, 0.9);
  train_two_steps(net, adam, ema);
  Removed file{temp_path("finite.safetensors")};
  CheckpointInfo info;
  info.step = 2;
  save_checkpoint(file.path, net, &ema, &adam, info);
  const std::vector<uint8_t> before = read_file_bytes(file.path);
  struct Case {
    const char* what;
    TensorF flat;
    const char* prefix;
  };
  for (const Case& c : {Case{"model", net.flat_values(), "'"}, Case{"ema", ema.values(), "'ema."},
                        Case{"adam.m", adam.m(), "'adam.m."}, Case{"adam.v", adam.v(), "'adam.v."}}) {
    INFO(c.what);
    TensorF flat = c.flat;  // a view of the live buffer
    const float old = flat.data()[3];
    flat.data()[3] = c.what[0] == 'e' ? INFINITY : NAN;
    info.step = 3;
    const std::string msg = [&] {
      try {
        save_checkpoint(file.path, net, &ema, &adam, info);
      } catch (const IoError& e) {
        return std::string(e.what());
      }
      return std::string("no error");
    }();
    flat.data()[3] = old;
    CHECK(msg.find("expected finite values to checkpoint in " + std::string(c.prefix)) != std::string::npos);
    CHECK(msg.find("previous checkpoint is kept") != std::string::npos);
    CHECK(read_file_bytes(file.path) == before);
  }
  const std::vector<float> w = net.flat_values().to_vector();
  net.flat_values().data()[0] = NAN;
  CHECK_THROWS_WITH_AS(save_weights(file.path, net), doctest::Contains("finite weights"), IoError);
  net.flat_values().data()[0] = w[0];
  CHECK(read_file_bytes(file.path) == before);
}

TEST_CASE("loading: a NaN/Inf is an error naming the tensor; a flipped bit fails the checksum; nothing changes") {
  Rng rng(9);
  UNet<float> net(tiny_config(), rng);
  Adam<float> adam(net, AdamConfig{});
  Ema<float> ema(net, 0.9);
  Removed file{temp_path("poked.safetensors")};
  save_checkpoint(file.path, net, &ema, &adam, CheckpointInfo{});
  UNet<float> other(tiny_config(), rng);
  Adam<float> adam2(other, AdamConfig{});
  Ema<float> ema2(other, 0.9);
  const std::vector<float> before = other.flat_values().to_vector();

  poke(file.path, "ema.mid.attn_1.q.weight", NAN, /*reseal=*/true);
  CHECK_THROWS_WITH_AS(load_checkpoint(file.path, other, &ema2, &adam2),
                       doctest::Contains("expected finite values in tensor 'ema.mid.attn_1.q.weight', found NaN at element 0"), IoError);
  CHECK_THROWS_WITH_AS(load_weights(file.path, other, true), doctest::Contains("'ema.mid.attn_1.q.weight'"), IoError);
  poke(file.path, "conv_in.weight", -INFINITY, true);
  CHECK_THROWS_WITH_AS(load_weights(file.path, other), doctest::Contains("'conv_in.weight', found -inf"), IoError);
  CHECK(other.flat_values().to_vector() == before);

  // One flipped exponent bit keeps the value finite (0.05 -> ~1.7e37): the checksum catches it.
  save_checkpoint(file.path, net, &ema, &adam, CheckpointInfo{});
  std::vector<uint8_t> bytes = read_file_bytes(file.path);
  bytes[bytes.size() - 1] ^= 0x40;  // the top exponent bit of the last float
  write_file_atomic(file.path, bytes);
  CHECK_THROWS_WITH_AS(load_checkpoint(file.path, other, &ema2, &adam2), doctest::Contains("CRC-32"), IoError);
  CHECK_THROWS_WITH_AS(load_weights(file.path, other, true), doctest::Contains("damaged"), IoError);
  CHECK(other.flat_values().to_vector() == before);
}

TEST_CASE("checkpoint metadata: format, version, step and counters validated, each a one-line error naming the field") {
  Rng rng(10);
  UNet<float> net(tiny_config(), rng);
  Adam<float> adam(net, AdamConfig{});
  Ema<float> ema(net, 0.9);
  Removed file{temp_path("meta.safetensors")};
  CheckpointInfo info;
  info.step = 7;
  save_checkpoint(file.path, net, &ema, &adam, info);
  const SafetensorsFile good = load_safetensors(file.path);
  CHECK(read_checkpoint_info(good).step == 7);
  struct Case {
    const char* key;
    const char* value;
    const char* expect;
  };
  for (const Case& c : {Case{"step", "-1", "an integer 0..1000000000000 in __metadata__ 'step', found '-1'"},
                        Case{"step", "99999999999999999999", "'step', found '99999999999999999999'"},
                        Case{"step", "x0", "'step', found 'x0'"},
                        Case{"step", " 5", "'step', found ' 5'"},
                        Case{"step", "", "'step', found ''"},
                        Case{"version", "3", "an integer 1..2 in __metadata__ 'version', found '3'"},
                        Case{"format", "something-else", "format 'ddpm-cpp-checkpoint'"},
                        Case{"adam.step", "-5", "'adam.step', found '-5'"},
                        Case{"ema.updates", "1e3", "'ema.updates', found '1e3'"},
                        Case{"crc32", "00000000", "CRC-32 00000000"}}) {
    INFO(c.key << " = " << c.value);
    SafetensorsFile f = good;
    f.metadata[c.key] = c.value;
    save_safetensors(file.path, f);
    const std::vector<float> before = net.flat_values().to_vector();
    std::string msg;
    try {
      load_checkpoint(file.path, net, &ema, &adam);
    } catch (const IoError& e) {
      msg = e.what();
    }
    CHECK(msg.find(c.expect) != std::string::npos);
    CHECK(msg.find('\n') == std::string::npos);
    CHECK(net.flat_values().to_vector() == before);
  }
  // A version-1 file (before checksums) still loads.
  SafetensorsFile v1 = good;
  v1.metadata["version"] = "1";
  v1.metadata.erase("crc32");
  save_safetensors(file.path, v1);
  CHECK(load_checkpoint(file.path, net, &ema, &adam).step == 7);
  // ...but a version-2 file without its checksum does not.
  v1.metadata["version"] = "2";
  save_safetensors(file.path, v1);
  CHECK_THROWS_WITH_AS(load_checkpoint(file.path, net, &ema, &adam), doctest::Contains("'crc32'"), IoError);
}

TEST_CASE("checkpoint run state: CheckpointInfo::state tensors round-trip exactly; weights loading ignores them") {
  Rng rng(4);
  UNet<float> net(tiny_config(), rng);
  Adam<float> adam(net, AdamConfig{});
  Ema<float> ema(net, 0.99);
  CheckpointInfo info;
  info.step = 7;
  Tensor<double> history({3, 4});
  for (int64_t i = 0; i < history.numel(); ++i) history.data()[i] = 1.0 / (3.0 + static_cast<double>(i));  // not exact in float
  info.state["t_sampler"] = history;
  const Removed file{temp_path("state.safetensors")};
  save_checkpoint(file.path, net, &ema, &adam, info);
  UNet<float> other(tiny_config(), rng);
  Adam<float> other_adam(other, AdamConfig{});
  Ema<float> other_ema(other, 0.99);
  const CheckpointInfo back = load_checkpoint(file.path, other, &other_ema, &other_adam);
  REQUIRE(back.state.count("t_sampler") == 1);
  CHECK(back.state.at("t_sampler").shape() == history.shape());
  CHECK(back.state.at("t_sampler").to_vector() == history.to_vector());
  CHECK(back.state.size() == 1);
  load_weights(file.path, other, true);  // the state tensor is not a model tensor, and not an error
  // A checkpoint without state loads with none.
  const Removed plain{temp_path("nostate.safetensors")};
  save_checkpoint(plain.path, net, &ema, &adam, CheckpointInfo{});
  CHECK(load_checkpoint(plain.path, other, &other_ema, &other_adam).state.empty());
}
