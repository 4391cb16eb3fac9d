// Writing a file so that readers only ever see the old complete file or the new complete file:
// the bytes go to a temporary file in the same folder (same filesystem, so rename is atomic),
// which is flushed, fsync'ed and renamed over the target; the folder is fsync'ed too so the
// rename survives a power cut. On any failure the temporary file is removed, the old file is
// left untouched and IoError is thrown.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace dd {

// Appends n bytes to the file being written (throws IoError when the write fails).
using ByteSink = std::function<void(const void* data, size_t n)>;

// Calls produce(sink) once; everything it passes to sink becomes the new content of path.
// If produce throws, the exception propagates and path is unchanged.
void write_file_atomic(const std::string& path, const std::function<void(const ByteSink&)>& produce);
void write_file_atomic(const std::string& path, const void* data, size_t n);
void write_file_atomic(const std::string& path, const std::string& bytes);
void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes);

// The whole content of a file; throws IoError naming the file when it cannot be opened or read.
std::vector<uint8_t> read_file_bytes(const std::string& path);

}  // namespace dd
