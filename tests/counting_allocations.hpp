// Counts heap allocations: replaces the global operator new and delete, every
// form, with versions that count allocations while a measured region runs.
// Eigen allocates with malloc, not new, so its allocations are counted
// through Eigen's own hook: with EIGEN_RUNTIME_NO_MALLOC, every Eigen heap
// allocation first asserts that allocation is allowed; inside a measured
// region it is not, and the eigen_assert below counts that assertion instead
// of aborting. Allocations by C libraries (malloc in MPI, say) are not seen.
//
// Include it first, once per program (it defines the global operators), before
// anything includes Eigen.
#pragma once

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

namespace counting {
std::atomic<bool> active{false};   // true only inside a measured region
std::atomic<long> allocations{0};  // heap allocations seen while active

void note() {
  if (active.load(std::memory_order_relaxed)) allocations.fetch_add(1, std::memory_order_relaxed);
}

// Eigen's failed assertions: "heap allocation is forbidden" counts an allocation
// (the allocation then proceeds); any other assertion aborts, as assert() would.
void eigen_assertion_failed(const char* condition, const char* file, int line) {
  if (std::strstr(condition, "heap allocation is forbidden")) {
    note();
    return;
  }
  std::fprintf(stderr, "%s:%d: Eigen assertion failed: %s\n", file, line, condition);
  std::abort();
}
}  // namespace counting

#define EIGEN_RUNTIME_NO_MALLOC
#define eigen_assert(x) ((x) ? static_cast<void>(0) : counting::eigen_assertion_failed(#x, __FILE__, __LINE__))

#include <Eigen/Core>
#include <doctest/doctest.h>
#include <memory>
#include <minidl/minidl.hpp>
#include <vector>

// ---- counting operator new / delete ----------------------------------------

namespace counting {
void* allocate(std::size_t size) {
  note();
  return std::malloc(size == 0 ? 1 : size);
}
void* allocate(std::size_t size, std::align_val_t alignment) {
  note();
  const auto align = static_cast<std::size_t>(alignment);
  return std::aligned_alloc(align, (size + align - 1) / align * align + (size == 0 ? align : 0));
}
template <class... Alignment>
void* allocate_or_throw(std::size_t size, Alignment... alignment) {
  if (void* p = allocate(size, alignment...)) return p;
  throw std::bad_alloc();
}
}  // namespace counting

void* operator new(std::size_t n) { return counting::allocate_or_throw(n); }
void* operator new[](std::size_t n) { return counting::allocate_or_throw(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return counting::allocate(n); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return counting::allocate(n); }
void* operator new(std::size_t n, std::align_val_t a) { return counting::allocate_or_throw(n, a); }
void* operator new[](std::size_t n, std::align_val_t a) { return counting::allocate_or_throw(n, a); }
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return counting::allocate(n, a);
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return counting::allocate(n, a);
}
// Both allocate() versions take memory from malloc / aligned_alloc: free releases either.
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }

namespace counting {

/// Number of heap allocations (operator new and Eigen's) while `run` runs.
template <class Run>
long allocations_in(Run&& run) {
  struct Region {  // ends the region even if run() throws
    Region() {
      Eigen::internal::set_is_malloc_allowed(false);
      counting::active = true;
    }
    ~Region() {
      counting::active = false;
      Eigen::internal::set_is_malloc_allowed(true);
    }
  };
  const long before = counting::allocations.load();
  {
    Region region;
    run();
  }
  return counting::allocations.load() - before;
}

/// Fits `model` (options.epochs >= 2, every batch of options.batch_size rows) and checks that no batch after the
/// first epoch's, but an epoch's first (which follows the validation's batches), allocates; and that the counter
/// ran (the first batch sizes the buffers).
template <class Scalar>
void check_steady_state_fit(minidl::Sequential<Scalar>& model, const minidl::Matrix<Scalar>& x,
                            const minidl::Matrix<Scalar>& y, minidl::FitOptions<Scalar> options) {
  const minidl::Index batches = x.rows() / options.batch_size;
  REQUIRE(batches * options.batch_size == x.rows());
  REQUIRE(options.epochs >= 2);
  std::vector<long> counter_at_batch_end;  // the allocation counter after each batch
  counter_at_batch_end.reserve(static_cast<std::size_t>(batches * options.epochs));  // push_back never allocates
  auto record = std::make_shared<minidl::LambdaCallback<Scalar>>();
  record->batch_end = [&](minidl::Sequential<Scalar>&, minidl::Index, const minidl::Logs&) {
    counter_at_batch_end.push_back(allocations.load());
  };
  options.callbacks.push_back(record);
  const long total = allocations_in([&] { model.fit(x, y, options); });

  REQUIRE(counter_at_batch_end.size() == static_cast<std::size_t>(batches * options.epochs));
  CHECK(total > 0);
  for (int epoch = 1; epoch < options.epochs; ++epoch)
    for (minidl::Index b = 1; b < batches; ++b) {
      const auto i = static_cast<std::size_t>(epoch * batches + b);
      INFO("epoch ", epoch, ", batch ", b);
      CHECK(counter_at_batch_end[i] - counter_at_batch_end[i - 1] == 0);
    }
}

}  // namespace counting
