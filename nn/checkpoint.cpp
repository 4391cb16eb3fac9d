#include "nn/checkpoint.h"

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

int64_t metadata_int(const SafetensorsFile& f, const std::string& key) {
  auto it = f.metadata.find(key);
  if (it == f.metadata.end()) io_error(f.source, "__metadata__ key '" + key + "'", "none");
  size_t used = 0;
  int64_t v = 0;
  try {
    v = std::stoll(it->second, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != it->second.size())
    io_error(f.source, "an integer in __metadata__ '" + key + "'", "'" + it->second + "'");
  return v;
}

std::string metadata_str(const SafetensorsFile& f, const std::string& key) {
  auto it = f.metadata.find(key);
  return it == f.metadata.end() ? std::string() : it->second;
}

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
  f.metadata["format"] = kCheckpointFormat;
  f.metadata["version"] = std::to_string(kCheckpointVersion);
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
  // The run's extra state (CheckpointInfo::state)
  for (const auto& [key, value] : info.state) f.add("state." + key, value);
  save_safetensors(path, f);
}

template <class T>
CheckpointInfo load_checkpoint(const std::string& path, Module<T>& model, NonDeducedPtr<Ema<T>> ema,
                               NonDeducedPtr<Adam<T>> adam) {
  if (ema && ema->swapped())
    throw std::logic_error("load_checkpoint: the EMA weights are swapped into the model; swap back first");
  const SafetensorsFile f = load_safetensors(path);
  if (metadata_str(f, "format") != kCheckpointFormat)
    io_error(f.source, std::string("__metadata__ format '") + kCheckpointFormat + "'",
             f.metadata.count("format") ? "'" + metadata_str(f, "format") + "'" : "none (a weights file?)");
  const int64_t version = metadata_int(f, "version");
  if (version < 1 || version > kCheckpointVersion)
    io_error(f.source, "checkpoint version 1.." + std::to_string(kCheckpointVersion), std::to_string(version));

  // Validate everything first, so a bad file changes nothing.
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
  CheckpointInfo info;
  for (const auto& e : f.entries())
    if (has_prefix(e.name, "state.")) info.state[e.name.substr(6)] = f.get_f64(e.name);
  info.step = metadata_int(f, "step");
  info.config = metadata_str(f, "config");
  info.dataset = metadata_str(f, "dataset");
  info.rng = metadata_str(f, "rng");
  info.unet_config = metadata_str(f, "unet_config");
  const int64_t ema_updates = ema ? metadata_int(f, "ema.updates") : 0;
  const int64_t adam_step = adam ? metadata_int(f, "adam.step") : 0;

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
  save_safetensors(path, f);
}

template <class T>
void load_weights(const std::string& path, Module<T>& model, bool from_ema) {
  const SafetensorsFile f = load_safetensors(path);
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
template void save_weights<float>(const std::string&, const Module<float>&, const std::string&);
template void save_weights<double>(const std::string&, const Module<double>&, const std::string&);
template void load_weights<float>(const std::string&, Module<float>&, bool);
template void load_weights<double>(const std::string&, Module<double>&, bool);

}  // namespace dd
