// minidl — how many threads the matrix products use.
//
// Eigen splits a large matrix product (Dense's x·W and its two backward
// products) over several threads when it is compiled with OpenMP (-fopenmp,
// or the CMake option MINIDL_OPENMP, which links OpenMP to minidl::minidl).
// Everything else in a training step runs on the calling thread. Without
// OpenMP there is one thread, whatever is asked.
//
// The default is OpenMP's: OMP_NUM_THREADS if set, else one thread per core.
#pragma once

#include <Eigen/Core>

#include "error.hpp"

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

}  // namespace minidl
