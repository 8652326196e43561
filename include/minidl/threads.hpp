// minidl — how many threads the matrix products use.
//
// Eigen splits a large matrix product (Dense's x·W and its two backward
// products) over several threads when it is compiled with OpenMP (-fopenmp,
// or the CMake option MINIDL_OPENMP, which links OpenMP to minidl::minidl).
// The optimizers' element-wise updates of large tensors and Dropout's masks
// on large batches are split over the same threads (detail::for_each_chunk);
// everything else in a training step runs on the calling thread. Without OpenMP there is one thread, whatever is
// asked.
//
// The default is OpenMP's: OMP_NUM_THREADS if set, else one thread per core.
#pragma once

#include <Eigen/Core>
#include <algorithm>

#include "error.hpp"
#include "tensor.hpp"

namespace minidl {

/// Sets the number of threads of the matrix products: n >= 1, or 0 for
/// OpenMP's default (OMP_NUM_THREADS, else one per core). Throws ValueError
/// for n < 0. Without OpenMP it changes nothing. Applies to the whole process.
inline void set_num_threads(int n) {
  if (n < 0) throw ValueError(detail::message("set_num_threads: n must be >= 0 (0: the default), got ", n));
  Eigen::setNbThreads(n);
}

/// The number of threads the matrix products use: 1 without OpenMP.
inline int num_threads() { return Eigen::nbThreads(); }

namespace detail {

/// Calls f(begin, n) for the chunks [begin, begin + n) of [0, size), each at
/// most `chunk` long, in order on the calling thread, or split over
/// num_threads() threads when there are several and enough work to pay for
/// waking them (every chunk is independent, so the result is the same).
template <class F>
void for_each_chunk(Index size, Index chunk, F&& f) {
  const Index chunks = (size + chunk - 1) / chunk;
  const auto run = [&](Index c) { f(c * chunk, std::min(chunk, size - c * chunk)); };
#ifdef _OPENMP
  constexpr Index min_parallel_size = Index(1) << 16;  // below this, waking a thread costs more than it saves
  const int threads = num_threads();
  if (threads > 1 && size >= min_parallel_size) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (Index c = 0; c < chunks; ++c) run(c);
    return;
  }
#endif
  for (Index c = 0; c < chunks; ++c) run(c);
}

}  // namespace detail

}  // namespace minidl
