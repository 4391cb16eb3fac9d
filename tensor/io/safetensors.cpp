#include "tensor/io/safetensors.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "tensor/io/atomic_file.h"
#include "tensor/io/io_error.h"

// The data section is little-endian; tensors are copied byte for byte, which is only right on a
// little-endian host (x86-64, AArch64 as configured by every mainstream OS).
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors I/O assumes a little-endian host");

namespace dd {

using ordered_json = nlohmann::ordered_json;

namespace {

struct DtypeInfo {
  Dtype dtype;
  const char* name;
  size_t size;
};
constexpr DtypeInfo kDtypes[] = {
    {Dtype::BOOL, "BOOL", 1}, {Dtype::U8, "U8", 1},     {Dtype::I8, "I8", 1},
    {Dtype::I16, "I16", 2},   {Dtype::I32, "I32", 4},   {Dtype::I64, "I64", 8},
    {Dtype::F16, "F16", 2},   {Dtype::BF16, "BF16", 2}, {Dtype::F32, "F32", 4},
    {Dtype::F64, "F64", 8},
};

const DtypeInfo& info(Dtype d) {
  for (const auto& i : kDtypes)
    if (i.dtype == d) return i;
  throw IoError("unknown Dtype enum value " + std::to_string(static_cast<int>(d)));
}

std::string tensor_where(const std::string& source, const std::string& name) {
  return source + ": tensor '" + name + "'";
}

// numel * itemsize, or false on overflow (a corrupt shape must not wrap around to a small size).
bool byte_count(const Shape& shape, size_t itemsize, uint64_t* out) {
  uint64_t n = itemsize;
  for (int64_t d : shape)
    if (d < 0 || __builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) return false;
  *out = n;
  return true;
}

bool json_to_u64(const ordered_json& j, uint64_t* out) {
  if (j.is_number_unsigned()) {
    *out = j.get<uint64_t>();
    return true;
  }
  if (j.is_number_integer() && j.get<int64_t>() >= 0) {
    *out = static_cast<uint64_t>(j.get<int64_t>());
    return true;
  }
  return false;
}

std::string json_excerpt(const ordered_json& j) {
  std::string s = j.dump();
  return s.size() > 60 ? s.substr(0, 57) + "..." : s;
}

// Writes the file through sink: header length, padded JSON header, data in entry order.
void write_safetensors(const SafetensorsFile& file, const ByteSink& sink) {
  ordered_json header = ordered_json::object();
  uint64_t offset = 0;
  for (const auto& e : file.entries()) {
    ordered_json t;
    t["dtype"] = dtype_name(e.dtype);
    t["shape"] = e.shape;
    t["data_offsets"] = {offset, offset + e.bytes.size()};
    header[e.name] = std::move(t);
    offset += e.bytes.size();
  }
  if (!file.metadata.empty()) {
    ordered_json meta = ordered_json::object();
    for (const auto& kv : file.metadata) meta[kv.first] = kv.second;
    header["__metadata__"] = std::move(meta);
  }
  std::string text = header.dump();
  // Pad with spaces so the data section starts 8-byte aligned (8 + N is a multiple of 8).
  text.append((8 - text.size() % 8) % 8, ' ');
  uint8_t length[8];
  uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(n >> (8 * i));
  sink(length, 8);
  sink(text.data(), text.size());
  for (const auto& e : file.entries()) sink(e.bytes.data(), e.bytes.size());
}

template <class T>
std::vector<uint8_t> tensor_bytes(const Tensor<T>& t) {
  Tensor<T> c = t.contiguous();
  std::vector<uint8_t> bytes(static_cast<size_t>(c.numel()) * sizeof(T));
  if (!bytes.empty()) std::memcpy(bytes.data(), c.data(), bytes.size());
  return bytes;
}

template <class T>
Tensor<T> entry_tensor(const SafetensorsEntry& e) {
  Tensor<T> t(e.shape);
  if (!e.bytes.empty()) std::memcpy(t.data(), e.bytes.data(), e.bytes.size());
  return t;
}

template <class T>
void copy_entry_to(const SafetensorsEntry& e, const Tensor<T>& dst) {
  if (dst.is_contiguous()) {
    if (!e.bytes.empty()) std::memcpy(dst.data(), e.bytes.data(), e.bytes.size());
  } else {
    dst.copy_from(entry_tensor<T>(e));
  }
}

}  // namespace

const char* dtype_name(Dtype d) { return info(d).name; }
size_t dtype_size(Dtype d) { return info(d).size; }

bool parse_dtype(const std::string& name, Dtype* out) {
  for (const auto& i : kDtypes)
    if (name == i.name) {
      *out = i.dtype;
      return true;
    }
  return false;
}

// ---- SafetensorsFile ------------------------------------------------------------------------

void SafetensorsFile::add_raw(const std::string& name, Dtype dtype, const Shape& shape,
                              std::vector<uint8_t> bytes) {
  if (name.empty() || name == "__metadata__")
    io_error(source, "a tensor name other than \"\" and \"__metadata__\"", "'" + name + "'");
  if (has(name)) io_error(tensor_where(source, name), "a name used once", "it added twice");
  uint64_t expected = 0;
  if (!byte_count(shape, dtype_size(dtype), &expected))
    io_error(tensor_where(source, name), "a non-negative shape whose size fits in 64 bits", shape_str(shape));
  if (expected != bytes.size())
    io_error(tensor_where(source, name),
             std::to_string(expected) + " bytes for " + dtype_name(dtype) + " " + shape_str(shape),
             std::to_string(bytes.size()) + " bytes");
  index_[name] = entries_.size();
  entries_.push_back({name, dtype, shape, std::move(bytes)});
}

void SafetensorsFile::add(const std::string& name, const Tensor<float>& t) {
  add_raw(name, Dtype::F32, t.shape(), tensor_bytes(t));
}
void SafetensorsFile::add(const std::string& name, const Tensor<double>& t) {
  add_raw(name, Dtype::F64, t.shape(), tensor_bytes(t));
}
void SafetensorsFile::add_i64(const std::string& name, const Shape& shape, const std::vector<int64_t>& values) {
  std::vector<uint8_t> bytes(values.size() * sizeof(int64_t));
  if (!bytes.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
  add_raw(name, Dtype::I64, shape, std::move(bytes));
}

const SafetensorsEntry& SafetensorsFile::entry(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) io_error(source, "a tensor named '" + name + "'", "none");
  return entries_[it->second];
}

const SafetensorsEntry& SafetensorsFile::checked(const std::string& name, Dtype dtype,
                                                 const Shape* expected) const {
  const SafetensorsEntry& e = entry(name);
  if (e.dtype != dtype) io_error(tensor_where(source, name), std::string("dtype ") + dtype_name(dtype),
                                 std::string("dtype ") + dtype_name(e.dtype));
  if (expected && e.shape != *expected)
    io_error(tensor_where(source, name), "shape " + shape_str(*expected), "shape " + shape_str(e.shape));
  return e;
}

Tensor<float> SafetensorsFile::get_f32(const std::string& name) const {
  return entry_tensor<float>(checked(name, Dtype::F32, nullptr));
}
Tensor<float> SafetensorsFile::get_f32(const std::string& name, const Shape& expected_shape) const {
  return entry_tensor<float>(checked(name, Dtype::F32, &expected_shape));
}
Tensor<double> SafetensorsFile::get_f64(const std::string& name) const {
  return entry_tensor<double>(checked(name, Dtype::F64, nullptr));
}
Tensor<double> SafetensorsFile::get_f64(const std::string& name, const Shape& expected_shape) const {
  return entry_tensor<double>(checked(name, Dtype::F64, &expected_shape));
}
void SafetensorsFile::copy_to(const std::string& name, const Tensor<float>& dst) const {
  copy_entry_to(checked(name, Dtype::F32, &dst.shape()), dst);
}
void SafetensorsFile::copy_to(const std::string& name, const Tensor<double>& dst) const {
  copy_entry_to(checked(name, Dtype::F64, &dst.shape()), dst);
}
std::vector<int64_t> SafetensorsFile::get_i64(const std::string& name) const {
  const SafetensorsEntry& e = checked(name, Dtype::I64, nullptr);
  std::vector<int64_t> v(e.bytes.size() / sizeof(int64_t));
  if (!v.empty()) std::memcpy(v.data(), e.bytes.data(), e.bytes.size());
  return v;
}
std::vector<int64_t> SafetensorsFile::get_i64(const std::string& name, const Shape& expected_shape) const {
  checked(name, Dtype::I64, &expected_shape);
  return get_i64(name);
}

// ---- whole files ----------------------------------------------------------------------------

std::vector<uint8_t> serialize_safetensors(const SafetensorsFile& file) {
  std::vector<uint8_t> out;
  write_safetensors(file, [&out](const void* data, size_t n) {
    const uint8_t* p = static_cast<const uint8_t*>(data);
    out.insert(out.end(), p, p + n);
  });
  return out;
}

void save_safetensors(const std::string& path, const SafetensorsFile& file) {
  write_file_atomic(path, [&file](const ByteSink& sink) { write_safetensors(file, sink); });
}

SafetensorsFile parse_safetensors(const std::vector<uint8_t>& bytes, const std::string& source) {
  const std::string& src = source;
  if (bytes.size() < 8)
    io_error(src, "a safetensors file of at least 8 bytes", std::to_string(bytes.size()) + " bytes");
  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= static_cast<uint64_t>(bytes[i]) << (8 * i);
  const uint64_t available = bytes.size() - 8;
  // Both checks come before anything is allocated for the header.
  if (header_len > kSafetensorsMaxHeader)
    io_error(src, "a header length of at most " + std::to_string(kSafetensorsMaxHeader) + " bytes",
             std::to_string(header_len));
  if (header_len > available)
    io_error(src, "a header length of at most the " + std::to_string(available) + " bytes after it (truncated file?)",
             std::to_string(header_len));

  ordered_json header;
  try {
    header = ordered_json::parse(bytes.begin() + 8, bytes.begin() + 8 + static_cast<ptrdiff_t>(header_len));
  } catch (const ordered_json::exception& e) {
    io_error(src, "a valid JSON header", std::string("a parse error (") + e.what() + ")");
  }
  if (!header.is_object()) io_error(src, "a JSON object as header", json_excerpt(header));

  const uint64_t data_size = available - header_len;
  const uint8_t* data = bytes.data() + 8 + header_len;
  SafetensorsFile file;
  file.source = src;

  struct Span {
    uint64_t begin, end;
    std::string name;
  };
  std::vector<Span> spans;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const ordered_json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) io_error(src, "__metadata__ to be an object", json_excerpt(v));
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          io_error(src, "__metadata__['" + m.key() + "'] to be a string", json_excerpt(m.value()));
        file.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string where = tensor_where(src, name);
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
      io_error(where, "an object with dtype, shape and data_offsets", json_excerpt(v));
    const ordered_json& jdtype = v["dtype"];
    Dtype dtype;
    if (!jdtype.is_string() || !parse_dtype(jdtype.get<std::string>(), &dtype))
      io_error(where, "a known dtype (F32, F64, I64, ...)", json_excerpt(jdtype));
    const ordered_json& jshape = v["shape"];
    if (!jshape.is_array()) io_error(where, "shape to be an array", json_excerpt(jshape));
    Shape shape;
    for (const auto& d : jshape) {
      uint64_t u;
      if (!json_to_u64(d, &u) || u > static_cast<uint64_t>(INT64_MAX))
        io_error(where, "shape of non-negative integers", json_excerpt(jshape));
      shape.push_back(static_cast<int64_t>(u));
    }
    const ordered_json& joff = v["data_offsets"];
    uint64_t begin, end;
    if (!joff.is_array() || joff.size() != 2 || !json_to_u64(joff[0], &begin) || !json_to_u64(joff[1], &end) ||
        begin > end)
      io_error(where, "data_offsets [begin, end] with 0 <= begin <= end", json_excerpt(joff));
    uint64_t nbytes = 0;
    if (!byte_count(shape, dtype_size(dtype), &nbytes))
      io_error(where, "a shape whose byte size fits in 64 bits", shape_str(shape));
    if (end - begin != nbytes)
      io_error(where, std::to_string(nbytes) + " bytes for " + dtype_name(dtype) + " " + shape_str(shape),
               "data_offsets " + json_excerpt(joff) + " (" + std::to_string(end - begin) + " bytes)");
    if (end > data_size)
      io_error(where, "data_offsets inside the " + std::to_string(data_size) + "-byte data section",
               json_excerpt(joff));
    spans.push_back({begin, end, name});
    file.add_raw(name, dtype, shape, std::vector<uint8_t>(data + begin, data + end));
  }

  // The tensors must tile the data section: sorted by offset, each starts where the last ended.
  std::sort(spans.begin(), spans.end(),
            [](const Span& a, const Span& b) { return a.begin != b.begin ? a.begin < b.begin : a.end < b.end; });
  uint64_t cursor = 0;
  for (const Span& s : spans) {
    if (s.begin < cursor)
      io_error(tensor_where(src, s.name), "data that does not overlap another tensor's",
               "data_offsets starting at " + std::to_string(s.begin) + " before " + std::to_string(cursor));
    if (s.begin > cursor)
      io_error(tensor_where(src, s.name), "data starting at " + std::to_string(cursor) + " (no gaps)",
               "data_offsets starting at " + std::to_string(s.begin));
    cursor = s.end;
  }
  if (cursor != data_size)
    io_error(src, "tensors covering the " + std::to_string(data_size) + "-byte data section",
             std::to_string(cursor) + " bytes covered (" + std::to_string(data_size - cursor) + " trailing bytes)");
  return file;
}

SafetensorsFile load_safetensors(const std::string& path) { return parse_safetensors(read_file_bytes(path), path); }

}  // namespace dd
