// safetensors: round trips, the layout on disk, a file written from PyTorch, and rejection of
// every kind of broken file with a one-line IoError (never a crash, never another exception).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>

#include "io_test_util.h"
#include "tensor/io/atomic_file.h"
#include "tensor/io/safetensors.h"

using namespace dd;
using dd_test::contains;
using dd_test::io_error_message;
using dd_test::ScratchDir;

namespace {

SafetensorsFile sample_file() {
  SafetensorsFile f;
  f.add("conv_in.weight", TensorF::from({2, 3}, {1.5f, -2.0f, 0.0f, 1e-30f, -7.25f, 3.0f}));
  f.add("temb.dense.0.bias", TensorD::from({3}, {M_PI, -1e300, 0.1}));
  f.add_i64("step", {2}, {-5, int64_t(1) << 62});
  f.add("empty", TensorF::zeros({0, 4}));
  f.metadata["format"] = "ddpm-cpp-checkpoint";
  f.metadata["config"] = R"({"lr": 2e-4, "name": "quote \" and \\ and é"})";
  return f;
}

uint64_t header_length(const std::vector<uint8_t>& bytes) {
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= uint64_t(bytes[i]) << (8 * i);
  return n;
}

// A file with a hand-written header (padded to 8) and `data_size` zero bytes of data.
std::vector<uint8_t> handmade(std::string header, size_t data_size) {
  header.append((8 - header.size() % 8) % 8, ' ');
  std::vector<uint8_t> out(8 + header.size() + data_size, 0);
  for (int i = 0; i < 8; ++i) out[i] = uint8_t(uint64_t(header.size()) >> (8 * i));
  std::copy(header.begin(), header.end(), out.begin() + 8);
  return out;
}

std::string parse_error(const std::vector<uint8_t>& bytes) {
  return io_error_message([&] { parse_safetensors(bytes, "bad.safetensors"); });
}

}  // namespace

TEST_CASE("safetensors round trip keeps names, order, dtypes, shapes, bytes and metadata") {
  ScratchDir dir;
  SafetensorsFile f = sample_file();
  // a non-contiguous view is written in row-major order of its shape
  TensorF base = TensorF::from({2, 3}, {1, 2, 3, 4, 5, 6});
  f.add("transposed", base.transpose(0, 1));
  save_safetensors(dir.file("ckpt.safetensors"), f);
  SafetensorsFile g = load_safetensors(dir.file("ckpt.safetensors"));

  REQUIRE(g.entries().size() == 5);
  const char* names[] = {"conv_in.weight", "temb.dense.0.bias", "step", "empty", "transposed"};
  for (int i = 0; i < 5; ++i) CHECK(g.entries()[i].name == names[i]);
  CHECK(g.metadata == f.metadata);

  TensorF w = g.get_f32("conv_in.weight", {2, 3});
  CHECK(w.to_vector() == std::vector<float>{1.5f, -2.0f, 0.0f, 1e-30f, -7.25f, 3.0f});
  TensorD b = g.get_f64("temb.dense.0.bias");
  CHECK(b.shape() == Shape{3});
  CHECK(b.to_vector() == std::vector<double>{M_PI, -1e300, 0.1});
  CHECK(g.get_i64("step", {2}) == std::vector<int64_t>{-5, int64_t(1) << 62});
  CHECK(g.get_f32("empty").shape() == Shape{0, 4});
  CHECK(g.get_f32("transposed", {3, 2}).to_vector() == std::vector<float>{1, 4, 2, 5, 3, 6});
  CHECK(dir.listing() == std::vector<std::string>{"ckpt.safetensors"});
}

TEST_CASE("safetensors layout on disk: little-endian length, space-padded JSON, packed data") {
  SafetensorsFile f;
  f.add("a", TensorF::from({2}, {1.0f, 2.0f}));
  f.add("b", TensorD::from({1}, {-3.0}));
  std::vector<uint8_t> bytes = serialize_safetensors(f);
  uint64_t n = header_length(bytes);
  CHECK(n % 8 == 0);
  REQUIRE(bytes.size() == 8 + n + 8 + 8);
  std::string header(bytes.begin() + 8, bytes.begin() + 8 + n);
  CHECK(header.front() == '{');
  CHECK(header.find_last_not_of(' ') == header.find_last_of('}'));
  CHECK(contains(header, R"("a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})"));
  CHECK(contains(header, R"("b":{"dtype":"F64","shape":[1],"data_offsets":[8,16]})"));
  float a[2];
  double b;
  std::memcpy(a, bytes.data() + 8 + n, 8);
  std::memcpy(&b, bytes.data() + 8 + n + 8, 8);
  CHECK(a[0] == 1.0f);
  CHECK(a[1] == 2.0f);
  CHECK(b == -3.0);
}

TEST_CASE("safetensors reads a file written from PyTorch (tests/golden/torch_fixture.safetensors)") {
  SafetensorsFile f = load_safetensors("tests/golden/torch_fixture.safetensors");
  CHECK(f.metadata.at("format") == "ddpm-cpp-test-fixture");
  CHECK(contains(f.metadata.at("made_by"), "torch"));
  TensorF w = f.get_f32("weight", {2, 3});
  const double expected_w[] = {-1.0, -0.6, -0.2, 0.2, 0.6, 1.0};  // torch.linspace(-1, 1, 6)
  for (int i = 0; i < 6; ++i) CHECK(w.flat(i) == doctest::Approx(expected_w[i]).epsilon(1e-6));
  TensorD b = f.get_f64("bias", {4});
  CHECK(b.flat(0) == M_PI);
  CHECK(b.flat(1) == M_E);
  CHECK(b.flat(2) == 0.0);
  CHECK(std::signbit(b.flat(2)));
  CHECK(b.flat(3) == 1e-300);
  CHECK(f.get_i64("steps", {3}) == std::vector<int64_t>{-1, 0, (int64_t(1) << 40) + 3});
  CHECK(f.get_f32("scalar", {}).item() == 0.25f);
}

TEST_CASE("getting a tensor checks name, dtype and shape, and the message names the tensor") {
  SafetensorsFile f = parse_safetensors(serialize_safetensors(sample_file()), "model.safetensors");
  std::string m = io_error_message([&] { f.get_f64("conv_in.weight"); });
  CHECK(contains(m, "model.safetensors"));
  CHECK(contains(m, "'conv_in.weight'"));
  CHECK(contains(m, "expected dtype F64, found dtype F32"));

  m = io_error_message([&] { f.get_f32("conv_in.weight", {3, 2}); });
  CHECK(contains(m, "'conv_in.weight'"));
  CHECK(contains(m, "expected shape [3, 2], found shape [2, 3]"));

  m = io_error_message([&] { f.get_f32("conv_out.weight"); });
  CHECK(contains(m, "model.safetensors: expected a tensor named 'conv_out.weight'"));

  m = io_error_message([&] { f.get_i64("step", {3}); });
  CHECK(contains(m, "'step'"));

  TensorF dst = TensorF::zeros({2, 3});
  f.copy_to("conv_in.weight", dst);
  CHECK(dst.at({1, 2}) == 3.0f);
  TensorF wrong = TensorF::zeros({6});
  CHECK(contains(io_error_message([&] { f.copy_to("conv_in.weight", wrong); }), "shape [6]"));
  // a strided destination (e.g. a view into a bigger buffer) is filled element by element
  TensorF big = TensorF::zeros({3, 2});
  f.copy_to("conv_in.weight", big.transpose(0, 1));
  CHECK(big.at({2, 1}) == 3.0f);
  CHECK(big.at({1, 0}) == -2.0f);
}

TEST_CASE("adding a tensor twice or a reserved name is an error") {
  SafetensorsFile f;
  f.add("x", TensorF::zeros({1}));
  CHECK(contains(io_error_message([&] { f.add("x", TensorF::zeros({1})); }), "'x'"));
  io_error_message([&] { f.add("__metadata__", TensorF::zeros({1})); });
  io_error_message([&] { f.add("", TensorF::zeros({1})); });
  io_error_message([&] { f.add_i64("n", {3}, {1, 2}); });
}

TEST_CASE("a truncated safetensors file is rejected at every cut point") {
  std::vector<uint8_t> bytes = serialize_safetensors(sample_file());
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    std::vector<uint8_t> part(bytes.begin(), bytes.begin() + cut);
    CAPTURE(cut);
    std::string m = parse_error(part);
    CHECK(contains(m, "bad.safetensors"));
  }
  // and through a real file
  ScratchDir dir;
  write_file_atomic(dir.file("cut.safetensors"), bytes.data(), bytes.size() - 1);
  CHECK(contains(io_error_message([&] { load_safetensors(dir.file("cut.safetensors")); }),
                 dir.file("cut.safetensors")));
  CHECK(contains(io_error_message([&] { load_safetensors(dir.file("missing.safetensors")); }),
                 "missing.safetensors"));
}

TEST_CASE("bit flips in the length and header are rejected cleanly or read as a consistent file") {
  std::vector<uint8_t> bytes = serialize_safetensors(sample_file());
  const size_t header_end = 8 + header_length(bytes);
  int rejected = 0, accepted = 0;
  for (size_t i = 0; i < header_end; ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      std::vector<uint8_t> flipped = bytes;
      flipped[i] ^= uint8_t(1u << bit);
      try {
        SafetensorsFile f = parse_safetensors(flipped, "flipped.safetensors");
        // Accepted (e.g. a flipped letter in a name): it must then be a well-formed file.
        SafetensorsFile again = parse_safetensors(serialize_safetensors(f), "again");
        CHECK(again.entries().size() == f.entries().size());
        ++accepted;
      } catch (const IoError& e) {
        CHECK(contains(e.what(), "flipped.safetensors"));
        CHECK(std::string(e.what()).find('\n') == std::string::npos);
        ++rejected;
      }
      if (i < 8) CHECK_MESSAGE(rejected == int(i * 8 + bit + 1), "a flipped length bit must be rejected");
    }
  }
  MESSAGE("header bit flips: " << rejected << " rejected, " << accepted << " accepted");
  CHECK(rejected > accepted);
}

TEST_CASE("a huge header length is rejected before allocating it") {
  std::vector<uint8_t> bytes = serialize_safetensors(sample_file());
  for (uint64_t n : {uint64_t(-1), uint64_t(1) << 40, uint64_t(kSafetensorsMaxHeader) + 1}) {
    std::vector<uint8_t> b = bytes;
    for (int i = 0; i < 8; ++i) b[i] = uint8_t(n >> (8 * i));
    CHECK(contains(parse_error(b), "header length of at most " + std::to_string(kSafetensorsMaxHeader)));
  }
  std::vector<uint8_t> b = bytes;
  uint64_t n = bytes.size() - 8 + 1;  // one byte more than the file has
  for (int i = 0; i < 8; ++i) b[i] = uint8_t(n >> (8 * i));
  CHECK(contains(parse_error(b), "truncated"));
  CHECK(contains(parse_error({1, 2, 3}), "at least 8 bytes"));
}

TEST_CASE("malformed headers are rejected with a message naming the tensor") {
  auto ok = [](const std::string& h, size_t n) { return parse_safetensors(handmade(h, n), "ok"); };
  // the reference shape: one F32 [2] tensor covering 8 bytes
  CHECK(ok(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8).get_f32("x").numel() == 2);
  CHECK(ok("{}", 0).entries().empty());

  CHECK(contains(parse_error(handmade("[1, 2]", 0)), "a JSON object as header"));
  CHECK(contains(parse_error(handmade(R"({"x": )", 0)), "valid JSON"));
  CHECK(contains(parse_error(handmade(R"({"x":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", 8)),
                 "'x': expected a known dtype"));
  CHECK(contains(parse_error(handmade(R"({"x":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8)),
                 "non-negative integers"));
  CHECK(contains(parse_error(handmade(R"({"x":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", 8)),
                 "non-negative integers"));
  CHECK(contains(parse_error(handmade(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 4)),
                 "'x': expected 8 bytes for F32 [2]"));
  CHECK(contains(parse_error(handmade(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8)),
                 "begin <= end"));
  CHECK(contains(parse_error(handmade(R"({"x":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})", 8)),
                 "inside the 8-byte data section"));
  CHECK(contains(parse_error(handmade(R"({"x":{"dtype":"F32","shape":[2]}})", 8)), "data_offsets"));
  CHECK(contains(parse_error(handmade(R"({"x":7})", 0)), "'x'"));
  // a shape whose byte count overflows 64 bits must not wrap around to a small number
  CHECK(contains(parse_error(handmade(
                     R"({"x":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,0]}})", 0)),
                 "fits in 64 bits"));
  // overlap, gap and trailing data
  CHECK(contains(parse_error(handmade(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                                      R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8)),
                 "'b': expected data that does not overlap"));
  CHECK(contains(parse_error(handmade(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8)),
                 "'a': expected data starting at 0 (no gaps)"));
  CHECK(contains(parse_error(handmade(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 8)),
                 "4 trailing bytes"));
  // metadata must be an object of strings
  CHECK(contains(parse_error(handmade(R"({"__metadata__":{"step":3}})", 0)), "__metadata__['step']"));
  CHECK(contains(parse_error(handmade(R"({"__metadata__":[]})", 0)), "__metadata__ to be an object"));
  CHECK(ok(R"({"__metadata__":{"step":"3"}})", 0).metadata.at("step") == "3");
}

TEST_CASE("write_file_atomic: a failed write keeps the old file and leaves no temporary file") {
  ScratchDir dir;
  const std::string path = dir.file("weights.safetensors");
  write_file_atomic(path, std::string("old content"));
  CHECK_THROWS_WITH_AS(write_file_atomic(path,
                                         [](const ByteSink& sink) {
                                           sink("new", 3);
                                           throw std::runtime_error("interrupted");
                                         }),
                       "interrupted", std::runtime_error);
  std::vector<uint8_t> now = read_file_bytes(path);
  CHECK(std::string(now.begin(), now.end()) == "old content");
  CHECK(dir.listing() == std::vector<std::string>{"weights.safetensors"});

  write_file_atomic(path, std::string("new content"));
  now = read_file_bytes(path);
  CHECK(std::string(now.begin(), now.end()) == "new content");
  CHECK(dir.listing() == std::vector<std::string>{"weights.safetensors"});

  CHECK(contains(io_error_message([&] { write_file_atomic(dir.file("no/such/dir/x"), std::string("x")); }),
                 "no/such/dir/x"));
}
