// The caching allocator behind Tensor storage (tensor/allocator.h).
#include <doctest/doctest.h>

#include "tensor/allocator.h"
#include "tensor/tensor.h"

using namespace dd;

TEST_CASE("allocator: a freed large block is handed out again for the same size, and zeros() is zero") {
  const Shape shape{64, 1024};  // 256 KiB of float: above the caching threshold
  float* first = nullptr;
  {
    Tensor<float> a = Tensor<float>::uninitialized(shape);
    first = a.data();
    a.fill(7.0f);  // leave garbage behind
  }
  const AllocatorStats before = allocator_stats();
  Tensor<float> b = Tensor<float>::zeros(shape);
  const AllocatorStats after = allocator_stats();
  CHECK(b.data() == first);
  CHECK(after.reused == before.reused + 1);
  CHECK(after.fresh == before.fresh);
  for (int64_t i = 0; i < b.numel(); ++i) REQUIRE(b.data()[i] == 0.0f);
  CHECK(reinterpret_cast<uintptr_t>(b.data()) % 64 == 0);
}

TEST_CASE("allocator: a different size is not served from the cache; release empties it") {
  { Tensor<double> a = Tensor<double>::uninitialized({40000}); }
  const AllocatorStats before = allocator_stats();
  CHECK(before.cached_bytes > 0);
  { Tensor<double> b = Tensor<double>::uninitialized({40001}); }
  CHECK(allocator_stats().fresh == before.fresh + 1);
  release_cached_storage();
  CHECK(allocator_stats().cached_bytes == 0);
  // small blocks bypass the cache entirely
  const AllocatorStats small_before = allocator_stats();
  { Tensor<float> s({16}); }
  CHECK(allocator_stats().fresh == small_before.fresh);
  CHECK(allocator_stats().cached_bytes == 0);
}
