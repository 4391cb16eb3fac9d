// Tensor storage comes from here: a caching allocator, so a training step allocates nothing new
// after the first one. Freed blocks of 64 KiB and more are kept in a list per exact size and handed
// out again; each step asks for the same sizes in the same order, so after one step every request
// is a hit. Without it each large activation is a fresh mmap whose pages the kernel faults in and
// zeroes again on every step (a third of a training step's time, docs/performance.md).
//
// Smaller blocks go straight to aligned_alloc (glibc's heap already reuses them). The cache is
// capped (DD_ALLOC_CACHE_MIB, default 4096); beyond the cap a freed block is returned to the system.
// Under AddressSanitizer cached blocks are poisoned, so a use after free is still reported.
#pragma once

#include <cstddef>
#include <cstdint>

namespace dd {

// 64-byte aligned, contents unspecified. Never returns null (throws std::bad_alloc).
void* storage_alloc(size_t bytes);
void storage_free(void* p, size_t bytes);

struct AllocatorStats {
  int64_t fresh = 0;         // large requests served by the system (misses)
  int64_t reused = 0;        // large requests served from the cache (hits)
  int64_t cached_bytes = 0;  // bytes held in the cache right now
};
AllocatorStats allocator_stats();
void release_cached_storage();  // returns every cached block to the system

}  // namespace dd
