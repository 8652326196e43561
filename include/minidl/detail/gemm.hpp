// minidl — the matrix products of Dense and Conv2D: C = A·B (+ bias), or C += A·B.
//
// This file decides who computes a product. With AVX-512 (-march=native on a
// CPU that has it), a float product large enough to pay for packing runs
// minidl's own kernel (gemm_avx512.hpp). Everything else (double, other CPUs,
// tiny or narrow products) is Eigen's product, cut into bands so that its
// result does not depend on the thread count.
//
// Operands are any Eigen matrices, maps, blocks or transposes with direct
// access: element (i, j) of an operand is data[i·row_stride + j·col_stride],
// so a transpose costs nothing. C must be row-major with contiguous rows.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "../tensor.hpp"
#include "../threads.hpp"

#if defined(__AVX512F__)
#define MINIDL_GEMM_KERNEL 1
#include "gemm_avx512.hpp"
#endif

namespace minidl {
namespace detail {

/// The part [begin, begin + size) of [0, extent) that thread t of `threads`
/// computes: whole blocks of `step` each, the last part shorter, size 0 for a
/// thread left without work. Together the parts cover [0, extent) once.
inline std::pair<Index, Index> thread_slice(Index extent, Index step, int threads, int t) {
  const Index blocks = (extent + step - 1) / step;
  const Index slice = (blocks + threads - 1) / threads * step;
  const Index begin = std::min(extent, t * slice);
  return {begin, std::min(slice, extent - begin)};
}

/// How an Eigen product C (m x n) is cut: into `count` bands of `width` rows
/// or columns of C (the last one narrower), each band its own Eigen product
/// on one thread. The cut is a function of the shape alone, never of the
/// thread count, and each band's values do not depend on which thread
/// computes it, so C is the same on any number of threads.
///
/// This is needed because Eigen 3.4 splits a large product over its threads
/// itself (parallelize_gemm) and each thread then packs and sums its part of
/// the operands differently: a 784-512-512-10 model trained in double, or a
/// float model's 10-class output layer, ended with thousands of weights that
/// differed between one thread and two. Eigen keeps a product on one thread
/// when it has fewer than 2 x 50,000 multiply-adds or fewer than 8 rows of C
/// (2 x its nr = 4), or when it is called inside an OpenMP parallel region of
/// several threads: every product that Eigen could split is therefore cut
/// into at least two bands here, and the bands run inside such a region
/// (or, on one thread, where Eigen's thread count is 1).
struct EigenBands {
  Index count, width;
  bool by_columns;
};

inline EigenBands eigen_bands(Index m, Index n, Index k) {
  constexpr double eigen_parallel_work = 2 * 50000.0;
  constexpr Index eigen_parallel_rows = 8;
  // About 2M multiply-adds per band, at most 4 bands, at least 32 rows or
  // columns wide where the side has room for two: each band re-packs the operand all bands share, which on one thread
  // costs more with more or narrower bands (bench/eigen_bands.cpp measures
  // it). So Eigen's products use at most 4 threads.
  constexpr double band_work = double(Index(1) << 21);
  constexpr Index max_bands = 4, min_width = 32, granule = 4;
  // Along C's longer side: each band re-packs the other operand, the smaller one.
  const bool by_columns = n > m;
  const Index extent = by_columns ? n : m;
  const double work = double(m) * double(n) * double(k);
  if (work < eigen_parallel_work || m < eigen_parallel_rows) return {1, extent, by_columns};
  // extent >= m >= 8: at least two bands of `granule`, whatever the rounding.
  // Where the side is too narrow for two bands of min_width, two narrower ones.
  const Index most = std::max(Index(2), std::min(max_bands, extent / min_width));
  const Index count = std::min(std::clamp(static_cast<Index>(work / band_work), Index(2), most), extent / granule);
  const Index width = ((extent + count - 1) / count + granule - 1) / granule * granule;
  return {(extent + width - 1) / width, width, by_columns};
}

/// c = a·b, or c += a·b when `accumulate`, by Eigen, cut as eigen_bands says.
template <class A, class B, class C>
void eigen_gemm(const A& a, const B& b, C& c, bool accumulate) {
  const auto product = [accumulate](const auto& lhs, const auto& rhs, auto&& out) {
    if (accumulate)
      out.noalias() += lhs * rhs;
    else
      out.noalias() = lhs * rhs;
  };
  const EigenBands bands = eigen_bands(a.rows(), b.cols(), a.cols());
  if (bands.count == 1) return product(a, b, c);
  const Index extent = bands.by_columns ? b.cols() : a.rows();
  const auto band = [&](Index i) {
    const Index begin = i * bands.width, size = std::min(bands.width, extent - begin);
    if (bands.by_columns)
      product(a, b.middleCols(begin, size), c.middleCols(begin, size));
    else
      product(a.middleRows(begin, size), b, c.middleRows(begin, size));
  };
#ifdef _OPENMP
  const int threads = static_cast<int>(std::min<Index>(num_threads(), bands.count));
  if (threads > 1) {
#pragma omp parallel for num_threads(threads) schedule(static)
    for (Index i = 0; i < bands.count; ++i) band(i);
    return;
  }
#endif
  for (Index i = 0; i < bands.count; ++i) band(i);
}

/// c = a·b (+ bias[j] added to every row), or c += a·b (+ bias) when
/// `accumulate`. c must already be a.rows() x b.cols(), row-major with
/// contiguous rows; bias, if given, has b.cols() values.
template <class A, class B, class C>
void gemm(const A& a, const B& b, C&& c, bool accumulate = false, const typename A::Scalar* bias = nullptr) {
  using Scalar = typename A::Scalar;
  eigen_assert(b.rows() == a.cols() && c.rows() == a.rows() && c.cols() == b.cols());
#ifdef MINIDL_GEMM_KERNEL
  const Index m = a.rows(), n = b.cols(), k = a.cols();
  // Below ~32k multiply-adds the packing costs more than Eigen's small-product
  // path. Below 16 columns (a 10-class output layer) most lanes of a 32-wide
  // block would be masked off, and Eigen's product is faster there
  // (bench/products.cpp, bench/DESIGN.md).
  constexpr Index min_kernel_work = Index(1) << 15, min_kernel_columns = 16;
  if constexpr (std::is_same_v<Scalar, float>) {
    static_assert(std::decay_t<C>::IsRowMajor, "gemm: C must be row-major");
    if (k > 0 && m * n * k >= min_kernel_work && n >= min_kernel_columns && c.innerStride() == 1) {
      const Operand<float> oa = operand_of(a), ob = operand_of(b);
      float* out = c.data();
      const Index stride = c.outerStride();
      const int threads = num_threads();
      // Several threads: each takes a slice of C's columns (or rows, if C is
      // taller than wide), whole panels each, and packs its own operands.
      if (threads > 1 && m * n * k >= (Index(1) << 20)) {
        const bool by_columns = n >= m;
        const Index step = by_columns ? gemm_kernel::nr : gemm_kernel::mr;
        const Index extent = by_columns ? n : m;
#ifdef _OPENMP
#pragma omp parallel for num_threads(threads) schedule(static)
#endif
        for (int t = 0; t < threads; ++t) {
          const auto [begin, size] = thread_slice(extent, step, threads, t);
          if (size <= 0) continue;
          if (by_columns)
            gemm_kernel::product(m, size, k, oa, ob.at(0, begin), out + begin, stride, accumulate,
                                 bias ? bias + begin : nullptr);
          else
            gemm_kernel::product(size, n, k, oa.at(begin, 0), ob, out + begin * stride, stride, accumulate, bias);
        }
      } else {
        gemm_kernel::product(m, n, k, oa, ob, out, stride, accumulate, bias);
      }
      return;
    }
  }
#endif
  eigen_gemm(a, b, c, accumulate);
  if (bias) c.rowwise() += Eigen::Map<const Vector<Scalar>>(bias, b.cols()).transpose();
}

}  // namespace detail
}  // namespace minidl
