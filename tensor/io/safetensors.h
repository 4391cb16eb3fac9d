// safetensors: the checkpoint format (https://github.com/huggingface/safetensors), readable by
// PyTorch tools. Layout: an 8-byte little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "value", ...}}
// padded with spaces, then the raw little-endian tensor data; offsets are relative to the start of
// the data section and the tensors tile it exactly (no gaps, no overlaps).
//
// SafetensorsFile is the whole file in memory: an ordered list of named entries (dtype, shape, raw
// bytes) plus the metadata. Loading validates everything before returning, so a SafetensorsFile
// always describes a well-formed file; every problem is an IoError naming the file (and the tensor).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "tensor/tensor.h"

namespace dd {

enum class Dtype { BOOL, U8, I8, I16, I32, I64, F16, BF16, F32, F64 };

const char* dtype_name(Dtype d);     // "F32"
size_t dtype_size(Dtype d);          // bytes per element
bool parse_dtype(const std::string& name, Dtype* out);  // false when the name is unknown

struct SafetensorsEntry {
  std::string name;
  Dtype dtype;
  Shape shape;
  std::vector<uint8_t> bytes;  // numel * dtype_size little-endian bytes
};

class SafetensorsFile {
 public:
  // String-to-string metadata ("__metadata__"): format, version, step, config, ... (docs/conventions.md, "Checkpoints").
  std::map<std::string, std::string> metadata;

  // Where this file came from (the path when loaded), used in error messages.
  std::string source = "<memory>";

  // Adding a name twice, an empty name or "__metadata__" throws IoError.
  void add(const std::string& name, const Tensor<float>& t);   // F32 (any strides)
  void add(const std::string& name, const Tensor<double>& t);  // F64
  void add_i64(const std::string& name, const Shape& shape, const std::vector<int64_t>& values);
  void add_raw(const std::string& name, Dtype dtype, const Shape& shape, std::vector<uint8_t> bytes);

  bool has(const std::string& name) const { return index_.count(name) != 0; }
  // Throws IoError "FILE: expected a tensor named 'x', found none" when missing.
  const SafetensorsEntry& entry(const std::string& name) const;
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }

  // The tensor as a new contiguous Tensor. Throws IoError naming the tensor when it is missing,
  // its dtype is not F32 / F64, or (when expected_shape is given) its shape differs.
  Tensor<float> get_f32(const std::string& name) const;
  Tensor<float> get_f32(const std::string& name, const Shape& expected_shape) const;
  Tensor<double> get_f64(const std::string& name) const;
  Tensor<double> get_f64(const std::string& name, const Shape& expected_shape) const;
  // Copies into an existing tensor of the same shape (e.g. a parameter view into a flat buffer).
  void copy_to(const std::string& name, const Tensor<float>& dst) const;
  void copy_to(const std::string& name, const Tensor<double>& dst) const;
  std::vector<int64_t> get_i64(const std::string& name) const;
  std::vector<int64_t> get_i64(const std::string& name, const Shape& expected_shape) const;

 private:
  const SafetensorsEntry& checked(const std::string& name, Dtype dtype, const Shape* expected) const;
  std::vector<SafetensorsEntry> entries_;
  std::unordered_map<std::string, size_t> index_;
};

// The file's bytes (header length, JSON header padded with spaces to a multiple of 8, data).
std::vector<uint8_t> serialize_safetensors(const SafetensorsFile& file);
// Parses and validates bytes; `source` names them in error messages.
SafetensorsFile parse_safetensors(const std::vector<uint8_t>& bytes, const std::string& source);

// Atomic write (temporary file, fsync, rename) / read + validate.
void save_safetensors(const std::string& path, const SafetensorsFile& file);
SafetensorsFile load_safetensors(const std::string& path);

// Headers longer than this are rejected before anything is allocated for them.
constexpr uint64_t kSafetensorsMaxHeader = 100u << 20;

}  // namespace dd
