// One fuzz target = one function of (bytes, size), built two ways:
// - `make fuzz` (clang, -DDD_LIBFUZZER): it is LLVMFuzzerTestOneInput of its own libFuzzer binary,
//   with address and undefined-behaviour sanitizers;
// - `make test` (g++): every target registers itself in one test binary (tests/fuzz/test_replay.cpp)
//   that replays the seed corpus and every regression input through it.
// A target returns 0 for any input: a rejected input is an expected exception, caught; what is
// found is a crash, a sanitizer report, an uncaught exception or a hang.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace dd_fuzz {

using Target = int (*)(const uint8_t* data, size_t size);
struct Registered {
  std::string name;
  Target target;
};
inline std::vector<Registered>& registry() {
  static std::vector<Registered> targets;
  return targets;
}
struct Registrar {
  Registrar(const char* name, Target t) { registry().push_back({name, t}); }
};

// The input as a file (the readers under test take paths), one per process and target.
std::string as_file(const char* target, const uint8_t* data, size_t size);

}  // namespace dd_fuzz

#ifdef DD_LIBFUZZER
#define DD_FUZZ_TARGET(name) extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
#else
#define DD_FUZZ_TARGET(name)                                          \
  static int fuzz_##name(const uint8_t* data, size_t size);           \
  static const dd_fuzz::Registrar registrar_##name(#name, fuzz_##name); \
  static int fuzz_##name(const uint8_t* data, size_t size)
#endif
