#include "tensor/allocator.h"

#include <cstdlib>
#include <map>
#include <mutex>
#include <new>
#include <string>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define DD_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define DD_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define DD_POISON(p, n) ((void)(p), (void)(n))
#define DD_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace dd {

namespace {

constexpr size_t kCacheFrom = size_t(64) << 10;  // blocks at least this large are cached

struct Cache {
  std::mutex mutex;
  std::map<size_t, std::vector<void*>> free_blocks;  // exact rounded size -> blocks
  AllocatorStats stats;
  int64_t limit_bytes = 0;
  Cache() {
    int64_t mib = 4096;
    if (const char* s = std::getenv("DD_ALLOC_CACHE_MIB")) {
      try {
        mib = std::stoll(s);
      } catch (...) {
        mib = 4096;  // an unreadable setting keeps the default
      }
    }
    limit_bytes = (mib < 0 ? 0 : mib) << 20;
  }
  ~Cache() {
    for (auto& [size, blocks] : free_blocks)
      for (void* p : blocks) std::free(p);
  }
};

Cache& cache() {
  static Cache* c = new Cache();  // never destroyed: tensors in static objects may be freed late
  return *c;
}

size_t round_up(size_t bytes) { return ((bytes ? bytes : 1) + 63) / 64 * 64; }

void* system_alloc(size_t bytes) {
  void* p = std::aligned_alloc(64, bytes);
  if (!p) throw std::bad_alloc();
  return p;
}

}  // namespace

void* storage_alloc(size_t bytes) {
  bytes = round_up(bytes);
  if (bytes < kCacheFrom) return system_alloc(bytes);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    auto it = c.free_blocks.find(bytes);
    if (it != c.free_blocks.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      c.stats.cached_bytes -= static_cast<int64_t>(bytes);
      c.stats.reused += 1;
      DD_UNPOISON(p, bytes);
      return p;
    }
    c.stats.fresh += 1;
  }
  return system_alloc(bytes);
}

void storage_free(void* p, size_t bytes) {
  if (!p) return;
  bytes = round_up(bytes);
  if (bytes < kCacheFrom) {
    std::free(p);
    return;
  }
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    if (c.stats.cached_bytes + static_cast<int64_t>(bytes) <= c.limit_bytes) {
      c.free_blocks[bytes].push_back(p);
      c.stats.cached_bytes += static_cast<int64_t>(bytes);
      DD_POISON(p, bytes);
      return;
    }
  }
  std::free(p);
}

AllocatorStats allocator_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.stats;
}

void release_cached_storage() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  for (auto& [size, blocks] : c.free_blocks)
    for (void* p : blocks) {
      DD_UNPOISON(p, size);
      std::free(p);
    }
  c.free_blocks.clear();
  c.stats.cached_bytes = 0;
}

}  // namespace dd
