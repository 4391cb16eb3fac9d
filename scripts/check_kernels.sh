#!/usr/bin/env bash
# The vector kernel objects (built with their own -march, see the Makefile) may define only
# symbols of their own instruction set's namespace (dd::avx2::, dd::avx512::) and their kernel
# table (dd::kKernels*). Any other global or weak symbol (an inline library function emitted out of
# line, say std::vector<float>::resize compiled for AVX-512) could be picked by the linker for
# ordinary code and then fault on a CPU without that instruction set. Symbols the compiler makes
# for the sanitizers (__odr_asan.*, __asan_*) and the C++ personality reference hold no code and
# are let through. A lambda of a kernel (its operator(), "auto dd::avx512::...", emitted out of line
# at -O1) is in its namespace. Usage: check_kernels.sh OBJ...
set -u
bad=0
for obj in "$@"; do
  if [ ! -f "$obj" ]; then
    echo "check_kernels: expected the object file $obj, found nothing (build it first)"
    bad=1
    continue
  fi
  # global (upper-case type) and weak / unique (W, V, u) definitions, demangled
  leaks=$(nm -C --defined-only "$obj" | awk '$2 ~ /^[A-Zuvw]$/' | cut -d' ' -f3- |
          grep -Ev '^(void |float |int |long |bool |auto |)?(dd::(avx2|avx512)::|dd::kKernels)' |
          grep -Ev '^(__odr_asan\.|__asan_|DW\.ref\.__gxx_personality_v0$)' || true)
  if [ -n "$leaks" ]; then
    echo "check_kernels: $obj defines symbols outside its instruction set's namespace:"
    echo "$leaks" | sed 's/^/  /'
    bad=1
  fi
done
exit $bad
