#include "nn/checkpoint.h"

#include <zlib.h>

#include <cmath>
#include <cstdio>
#include <set>
#include <stdexcept>
#include <type_traits>

#include "tensor/io/io_error.h"
#include "tensor/io/safetensors.h"

namespace dd {

namespace {

template <class T>
constexpr Dtype dtype_of() {
  return std::is_same<T, float>::value ? Dtype::F32 : Dtype::F64;
}

// The part of a flat buffer that belongs to parameter p.
template <class T>
Tensor<T> slice_of(const Tensor<T>& flat, const NamedParameter<T>& p) {
  return Tensor<T>::view_of(flat.storage(), flat.offset() + p.offset, p.var.shape());
}

template <class T>
void require_tensor(const SafetensorsFile& f, const std::string& name, const Shape& shape) {
  if (!f.has(name)) io_error(f.source, "a tensor named '" + name + "'", "none");
  const SafetensorsEntry& e = f.entry(name);
  if (e.dtype != dtype_of<T>())
    io_error(f.source, "tensor '" + name + "' of dtype " + dtype_name(dtype_of<T>()), dtype_name(e.dtype));
  if (e.shape != shape)
    io_error(f.source, "tensor '" + name + "' of shape " + shape_str(shape) + " (the model's)", shape_str(e.shape));
}

bool has_prefix(const std::string& s, const char* prefix) { return s.rfind(prefix, 0) == 0; }

// Every tensor of the file must be expected, or carry one of the ignorable prefixes.
void reject_unexpected(const SafetensorsFile& f, const std::set<std::string>& expected,
                       const std::vector<const char*>& ignorable) {
  for (const auto& e : f.entries()) {
    if (expected.count(e.name)) continue;
    bool ignore = false;
    for (const char* p : ignorable) ignore = ignore || has_prefix(e.name, p);
    if (!ignore) io_error(f.source, "only tensors of this model", "an unexpected tensor '" + e.name + "'");
  }
}

// A decimal integer in [lo, hi], nothing else (no spaces, no '+', no trailing text).
int64_t metadata_int(const SafetensorsFile& f, const std::string& key, int64_t lo, int64_t hi) {
  auto it = f.metadata.find(key);
  if (it == f.metadata.end()) io_error(f.source, "__metadata__ key '" + key + "'", "none");
  const std::string& text = it->second;
  const std::string range = std::to_string(lo) + ".." + std::to_string(hi);
  size_t i = text.size() > 0 && text[0] == '-' ? 1 : 0;
  bool ok = i < text.size() && text.size() - i <= 18;  // 18 digits cannot overflow int64
  for (size_t k = i; ok && k < text.size(); ++k) ok = text[k] >= '0' && text[k] <= '9';
  const std::string shown = text.size() > 40 ? "'" + text.substr(0, 40) + "...'" : "'" + text + "'";
  if (!ok) io_error(f.source, "an integer " + range + " in __metadata__ '" + key + "'", shown);
  const int64_t v = std::stoll(text);
  if (v < lo || v > hi) io_error(f.source, "an integer " + range + " in __metadata__ '" + key + "'", shown);
  return v;
}

std::string metadata_str(const SafetensorsFile& f, const std::string& key) {
  auto it = f.metadata.find(key);
  return it == f.metadata.end() ? std::string() : it->second;
}

}  // namespace

std::string checkpoint_data_crc32(const SafetensorsFile& f) {
  uLong crc = ::crc32(0L, Z_NULL, 0);
  for (const auto& e : f.entries()) {
    const uint8_t* p = e.bytes.data();
    size_t n = e.bytes.size();
    while (n > 0) {
      const uInt chunk = static_cast<uInt>(std::min<size_t>(n, 1u << 30));
      crc = ::crc32(crc, p, chunk);
      p += chunk;
      n -= chunk;
    }
  }
  char hex[16];
  std::snprintf(hex, sizeof hex, "%08lx", static_cast<unsigned long>(crc & 0xffffffffUL));
  return hex;
}

namespace {

// "NaN" / "inf" and its index when a value of the flat tensor is not finite, else "".
template <class T>
std::string first_non_finite(const T* p, int64_t n, int64_t* where) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(p[i])) {
      *where = i;
      return std::isnan(p[i]) ? "NaN" : p[i] > 0 ? "+inf" : "-inf";
    }
  return "";
}

}  // namespace

void require_finite_values(const SafetensorsFile& f) {
  for (const auto& e : f.entries()) {
    int64_t at = 0;
    std::string bad;
    if (e.dtype == Dtype::F32)
      bad = first_non_finite(reinterpret_cast<const float*>(e.bytes.data()), static_cast<int64_t>(e.bytes.size() / 4), &at);
    else if (e.dtype == Dtype::F64)
      bad = first_non_finite(reinterpret_cast<const double*>(e.bytes.data()), static_cast<int64_t>(e.bytes.size() / 8), &at);
    if (!bad.empty())
      io_error(f.source, "finite values in tensor '" + e.name + "'", bad + " at element " + std::to_string(at) +
                             " (a diverged run or a damaged file)");
  }
}

namespace {

// A version-2 file's checksum must match its tensor data (a flipped bit, a torn copy).
void require_checksum(const SafetensorsFile& f) {
  auto it = f.metadata.find("crc32");
  if (it == f.metadata.end()) {
    if (f.metadata.count("version") && f.metadata.at("version") == "1") return;  // written before checksums
    io_error(f.source, "__metadata__ key 'crc32' (the checksum of the tensor data)", "none");
  }
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION  // the fuzzer must get past it to the checks behind
  const std::string actual = checkpoint_data_crc32(f);
  if (it->second != actual)
    io_error(f.source, "tensor data with CRC-32 " + it->second + " (__metadata__ crc32)",
             "CRC-32 " + actual + ": the file is damaged (a changed or flipped bit)");
#endif
}
}  // namespace

namespace {

template <class T>
void add_flat(SafetensorsFile& f, const std::string& prefix, const Tensor<T>& flat,
              const std::vector<NamedParameter<T>>& params) {
  for (const auto& p : params) f.add(prefix + p.name, slice_of(flat, p));
}

}  // namespace

template <class T>
void save_checkpoint(const std::string& path, const Module<T>& model, NonDeducedPtr<const Ema<T>> ema,
                     NonDeducedPtr<const Adam<T>> adam, const CheckpointInfo& info) {
  if (ema && ema->swapped())
    throw std::logic_error("save_checkpoint: the EMA weights are swapped into the model; swap back first");
  const auto params = model.named_parameters();
  SafetensorsFile f;
  add_flat(f, "", model.flat_values(), params);
  if (ema) add_flat(f, "ema.", ema->values(), params);
  if (adam) {
    add_flat(f, "adam.m.", adam->m(), params);
    add_flat(f, "adam.v.", adam->v(), params);
  }
  // Checked before anything is written: a diverged update must not replace the last good file.
  for (const auto& e : f.entries()) {
    int64_t at = 0;
    const std::string bad = first_non_finite(reinterpret_cast<const T*>(e.bytes.data()),
                                             static_cast<int64_t>(e.bytes.size() / sizeof(T)), &at);
    if (!bad.empty())
      io_error(path, "finite values to checkpoint in '" + e.name + "'",
               bad + " at element " + std::to_string(at) + " (not written; the previous checkpoint is kept)");
  }
  // The run's extra state (CheckpointInfo::state), F64; inside the checksum like every tensor.
  for (const auto& [key, value] : info.state) {
    const Tensor<double> v = value.contiguous();
    for (int64_t i = 0; i < v.numel(); ++i)
      if (!std::isfinite(v.data()[i]))
        io_error(path, "finite values to checkpoint in 'state." + key + "'",
                 "a non-finite value at element " + std::to_string(i) + " (not written; the previous checkpoint is kept)");
    f.add("state." + key, v);
  }
  f.metadata["format"] = kCheckpointFormat;
  f.metadata["version"] = std::to_string(kCheckpointVersion);
  f.metadata["crc32"] = checkpoint_data_crc32(f);
  f.metadata["step"] = std::to_string(info.step);
  f.metadata["config"] = info.config;
  f.metadata["dataset"] = info.dataset;
  f.metadata["rng"] = info.rng;
  if (!info.unet_config.empty()) f.metadata["unet_config"] = info.unet_config;
  if (ema) {
    f.metadata["ema.decay"] = std::to_string(ema->decay());
    f.metadata["ema.updates"] = std::to_string(ema->num_updates());
  }
  if (adam) f.metadata["adam.step"] = std::to_string(adam->steps());
  if (!info.kernel_path.empty()) f.metadata["kernel_path"] = info.kernel_path;
  save_safetensors(path, f);
}

namespace {
// format, version and step (no checksum: that is checked after the tensors, which name the problem better).
CheckpointInfo read_metadata(const SafetensorsFile& f) {
  if (metadata_str(f, "format") != kCheckpointFormat)
    io_error(f.source, std::string("__metadata__ format '") + kCheckpointFormat + "'",
             f.metadata.count("format") ? "'" + metadata_str(f, "format").substr(0, 60) + "'" : "none (a weights file?)");
  metadata_int(f, "version", 1, kCheckpointVersion);
  CheckpointInfo info;
  info.step = metadata_int(f, "step", 0, kCheckpointMaxStep);
  info.config = metadata_str(f, "config");
  info.dataset = metadata_str(f, "dataset");
  info.rng = metadata_str(f, "rng");
  info.unet_config = metadata_str(f, "unet_config");
  info.kernel_path = metadata_str(f, "kernel_path");
  return info;
}
}  // namespace

CheckpointInfo read_checkpoint_info(const SafetensorsFile& f) {
  CheckpointInfo info = read_metadata(f);
  require_checksum(f);
  return info;
}

template <class T>
CheckpointInfo load_checkpoint(const std::string& path, Module<T>& model, NonDeducedPtr<Ema<T>> ema,
                               NonDeducedPtr<Adam<T>> adam) {
  return load_checkpoint(load_safetensors(path), model, ema, adam);
}

template <class T>
CheckpointInfo load_checkpoint(const SafetensorsFile& f, Module<T>& model, NonDeducedPtr<Ema<T>> ema,
                               NonDeducedPtr<Adam<T>> adam) {
  if (ema && ema->swapped())
    throw std::logic_error("load_checkpoint: the EMA weights are swapped into the model; swap back first");
  // Validate everything first, so a bad file changes nothing.
  CheckpointInfo info = read_metadata(f);
  const auto params = model.named_parameters();
  std::set<std::string> expected;
  std::vector<std::string> prefixes{""};
  if (ema) prefixes.push_back("ema.");
  if (adam) prefixes.insert(prefixes.end(), {"adam.m.", "adam.v."});
  for (const auto& prefix : prefixes)
    for (const auto& p : params) {
      require_tensor<T>(f, prefix + p.name, p.var.shape());
      expected.insert(prefix + p.name);
    }
  std::vector<const char*> ignorable;
  if (!ema) ignorable.push_back("ema.");
  if (!adam) ignorable.push_back("adam.");
  ignorable.push_back("state.");  // CheckpointInfo::state, read below
  reject_unexpected(f, expected, ignorable);
  require_checksum(f);
  require_finite_values(f);
  const int64_t ema_updates = ema ? metadata_int(f, "ema.updates", 0, kCheckpointMaxStep) : 0;
  const int64_t adam_step = adam ? metadata_int(f, "adam.step", 0, kCheckpointMaxStep) : 0;
  for (const auto& e : f.entries())
    if (has_prefix(e.name, "state.")) info.state[e.name.substr(6)] = f.get_f64(e.name);

  for (const auto& p : params) f.copy_to(p.name, p.var.value());
  if (ema) {
    for (const auto& p : params) f.copy_to("ema." + p.name, slice_of(ema->values(), p));
    ema->set_num_updates(ema_updates);
  }
  if (adam) {
    for (const auto& p : params) {
      f.copy_to("adam.m." + p.name, slice_of(adam->m(), p));
      f.copy_to("adam.v." + p.name, slice_of(adam->v(), p));
    }
    adam->set_steps(adam_step);
  }
  return info;
}

template <class T>
void save_weights(const std::string& path, const Module<T>& model, const std::string& unet_config) {
  SafetensorsFile f;
  add_flat(f, "", model.flat_values(), model.named_parameters());
  if (!unet_config.empty()) f.metadata["unet_config"] = unet_config;
  for (const auto& e : f.entries()) {
    int64_t at = 0;
    const std::string bad = first_non_finite(reinterpret_cast<const T*>(e.bytes.data()),
                                             static_cast<int64_t>(e.bytes.size() / sizeof(T)), &at);
    if (!bad.empty()) io_error(path, "finite weights in '" + e.name + "'", bad + " at element " + std::to_string(at) + " (not written)");
  }
  save_safetensors(path, f);
}

template <class T>
void load_weights(const std::string& path, Module<T>& model, bool from_ema) {
  load_weights(load_safetensors(path), model, from_ema);
}

template <class T>
void load_weights(const SafetensorsFile& f, Module<T>& model, bool from_ema) {
  const auto params = model.named_parameters();
  const std::string prefix = from_ema ? "ema." : "";
  std::set<std::string> expected;
  for (const auto& p : params) {
    require_tensor<T>(f, prefix + p.name, p.var.shape());
    expected.insert(prefix + p.name);
  }
  std::vector<const char*> ignorable{"adam.", "state."};  // a checkpoint's optimizer and run state
  if (from_ema) {
    // The checkpoint's own model tensors are expected too, just not loaded.
    for (const auto& p : params) expected.insert(p.name);
  } else {
    ignorable.push_back("ema.");
  }
  reject_unexpected(f, expected, ignorable);
  if (metadata_str(f, "format") == kCheckpointFormat) read_checkpoint_info(f);  // its metadata and checksum too
  require_finite_values(f);
  for (const auto& p : params) f.copy_to(prefix + p.name, p.var.value());
}

std::string read_unet_config(const std::string& path) {
  return metadata_str(load_safetensors(path), "unet_config");
}

template void save_checkpoint<float>(const std::string&, const Module<float>&, const Ema<float>*, const Adam<float>*,
                                     const CheckpointInfo&);
template void save_checkpoint<double>(const std::string&, const Module<double>&, const Ema<double>*,
                                      const Adam<double>*, const CheckpointInfo&);
template CheckpointInfo load_checkpoint<float>(const std::string&, Module<float>&, Ema<float>*, Adam<float>*);
template CheckpointInfo load_checkpoint<double>(const std::string&, Module<double>&, Ema<double>*, Adam<double>*);
template CheckpointInfo load_checkpoint<float>(const SafetensorsFile&, Module<float>&, Ema<float>*, Adam<float>*);
template CheckpointInfo load_checkpoint<double>(const SafetensorsFile&, Module<double>&, Ema<double>*, Adam<double>*);
template void save_weights<float>(const std::string&, const Module<float>&, const std::string&);
template void save_weights<double>(const std::string&, const Module<double>&, const std::string&);
template void load_weights<float>(const std::string&, Module<float>&, bool);
template void load_weights<double>(const std::string&, Module<double>&, bool);
template void load_weights<float>(const SafetensorsFile&, Module<float>&, bool);
template void load_weights<double>(const SafetensorsFile&, Module<double>&, bool);

}  // namespace dd
