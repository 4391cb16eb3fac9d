#include "tensor/kernels.h"

#include <atomic>
#include <cstdlib>
#include <stdexcept>

#include "tensor/blas.h"

namespace dd {

// Defined by the kernel files (tensor/winograd_avx2.cpp, tensor/winograd_avx512.cpp).
extern const KernelTable kKernelsAvx2;
extern const KernelTable kKernelsAvx512;

namespace {

bool cpu_has(KernelPath p) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  switch (p) {
    case KernelPath::generic: return true;
    case KernelPath::avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case KernelPath::avx512:
      // the kernel file is built for x86-64-v4: F, BW, DQ and VL (and AVX2 + FMA below them)
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512vl");
  }
  return false;
#else
  return p == KernelPath::generic;
#endif
}

std::string available_list() {
  std::string s;
  for (KernelPath p : {KernelPath::avx512, KernelPath::avx2, KernelPath::generic})
    if (kernel_path_available(p)) s += (s.empty() ? "" : ", ") + std::string(kernel_path_name(p));
  return s;
}

KernelPath initial_path() {
  const char* e = std::getenv("DD_KERNELS");
  if (!e || !*e) return best_kernel_path();
  KernelPath p;
  try {
    p = parse_kernel_path(e);
  } catch (const std::invalid_argument&) {
    throw std::invalid_argument(std::string("DD_KERNELS: expected avx512, avx2 or generic, got '") + e + "'");
  }
  if (!kernel_path_available(p))
    throw std::invalid_argument(std::string("DD_KERNELS: expected a path this CPU has (") + available_list() +
                                "), got '" + e + "'");
  return p;
}

// -1: not chosen yet
std::atomic<int> active{-1};

}  // namespace

const char* kernel_path_name(KernelPath p) {
  switch (p) {
    case KernelPath::generic: return "generic";
    case KernelPath::avx2: return "avx2";
    case KernelPath::avx512: return "avx512";
  }
  return "?";
}

KernelPath parse_kernel_path(const std::string& s) {
  for (KernelPath p : {KernelPath::generic, KernelPath::avx2, KernelPath::avx512})
    if (s == kernel_path_name(p)) return p;
  throw std::invalid_argument("kernel path: expected avx512, avx2 or generic, got '" + s + "'");
}

bool kernel_path_available(KernelPath p) { return cpu_has(p); }

KernelPath best_kernel_path() {
  if (kernel_path_available(KernelPath::avx512)) return KernelPath::avx512;
  if (kernel_path_available(KernelPath::avx2)) return KernelPath::avx2;
  return KernelPath::generic;
}

KernelPath kernel_path() {
  int a = active.load(std::memory_order_acquire);
  if (a < 0) {
    const int chosen = static_cast<int>(initial_path());
    int expected = -1;
    active.compare_exchange_strong(expected, chosen);
    a = active.load(std::memory_order_acquire);
  }
  return static_cast<KernelPath>(a);
}

void set_kernel_path(KernelPath p) {
  if (!kernel_path_available(p))
    throw std::invalid_argument(std::string("kernel path: expected one this CPU has (") + available_list() +
                                "), got '" + kernel_path_name(p) + "'");
  active.store(static_cast<int>(p), std::memory_order_release);
}

std::string cpu_kernel_flags() {
  std::string s;
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  auto add = [&](const char* name, bool has) {
    if (has) s += (s.empty() ? "" : " ") + std::string(name);
  };
  add("avx2", __builtin_cpu_supports("avx2"));
  add("fma", __builtin_cpu_supports("fma"));
  add("avx512f", __builtin_cpu_supports("avx512f"));
  add("avx512bw", __builtin_cpu_supports("avx512bw"));
  add("avx512dq", __builtin_cpu_supports("avx512dq"));
  add("avx512vl", __builtin_cpu_supports("avx512vl"));
  add("avx512bf16", __builtin_cpu_supports("avx512bf16"));
#endif
  return s;
}

const KernelTable* kernel_table() {
  switch (kernel_path()) {
    case KernelPath::avx512: return &kKernelsAvx512;
    case KernelPath::avx2: return &kKernelsAvx2;
    case KernelPath::generic: break;
  }
  return nullptr;
}

void small_gemm(bool trans_a, bool accumulate, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda,
                const float* B, int64_t ldb, float* C, int64_t ldc) {
  if (const KernelTable* t = kernel_table()) return t->small_gemm(trans_a, accumulate, M, N, K, A, lda, B, ldb, C, ldc);
  if (M == 0 || N == 0) return;
  if (K == 0) {
    if (!accumulate)
      for (int64_t r = 0; r < M; ++r)
        for (int64_t n = 0; n < N; ++n) C[r * ldc + n] = 0.0f;
    return;
  }
  gemm(trans_a, false, M, N, K, 1.0f, A, lda, B, ldb, accumulate ? 1.0f : 0.0f, C, ldc);
}

void small_transpose(int64_t rows, int64_t cols, const float* src, float* dst) {
  if (const KernelTable* t = kernel_table()) return t->transpose(rows, cols, src, dst);
  for (int64_t r0 = 0; r0 < rows; r0 += 16) {
    const int64_t r1 = r0 + 16 < rows ? r0 + 16 : rows;
    for (int64_t c = 0; c < cols; ++c)
      for (int64_t r = r0; r < r1; ++r) dst[c * rows + r] = src[r * cols + c];
  }
}

float* workspace_floats(Workspace<float>& ws, size_t n) { return ws.get(n); }

}  // namespace dd
