// minidl — the matrix products of Dense and Conv2D: C = A·B (+ bias), or C += A·B.
//
// With AVX-512 (-march=native on a CPU that has it) a float product runs
// minidl's own kernel, in the layout of BLIS and OpenBLAS: B is cut into
// panels of 32 columns, A into panels of 8 rows packed k-major, and an
// 8 x 32 block of C is held in 16 vector registers while k runs: each step
// loads two vectors of B, broadcasts 8 values of A and issues 16 FMAs, so the
// loop is bound by the FMA units, not by memory. Blocks of 8 rows fit the
// usual batch sizes (32, 64, 128) exactly: against 12 x 32 blocks, which
// leave a third of a block empty on 32 rows, workload A's step ran 7%
// faster and workload B's epoch ~5% (bench/, one thread). On the shapes of a
// Dense layer (a batch of 32 to 128 rows, hundreds of columns) it runs
// 1.16-1.35x as fast as Eigen 3.4's product, whose AVX-512 kernel holds 12
// accumulators (48 x 4) and packs both operands (bench/products.cpp).
// A row-major B with contiguous rows (a Dense kernel, the forward x·W) is read
// in place, without packing; operands read across their rows (Wᵀ in dx = dz·Wᵀ,
// the batch x in x·W) are packed by 16 x 16 transposes in registers.
// Everything else (double, other CPUs, tiny products) is Eigen's product,
// cut into bands so that its result does not depend on the thread count.
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
#include <immintrin.h>
#define MINIDL_GEMM_KERNEL 1
#endif

namespace minidl {
namespace detail {

/// Where operand element (i, j) lives: data[i·row_stride + j·col_stride].
template <class Scalar>
struct Operand {
  const Scalar* data;
  Index row_stride, col_stride;
  Operand at(Index i, Index j) const { return {data + i * row_stride + j * col_stride, row_stride, col_stride}; }
};

template <class Xpr>
Operand<typename Xpr::Scalar> operand_of(const Xpr& m) {
  constexpr bool row_major = Xpr::IsRowMajor;
  return {m.data(), row_major ? m.outerStride() : m.innerStride(), row_major ? m.innerStride() : m.outerStride()};
}

#ifdef MINIDL_GEMM_KERNEL
namespace gemm_kernel {

constexpr Index mr = 8;        // rows of C per block: broadcasts of A per k step
constexpr Index vectors = 2;   // 16-float vectors of C per row of a block
constexpr Index nr = 16 * vectors;  // columns of C per block
constexpr Index kc = 384;      // depth of a packed panel: an 8 x 384 panel of A (12 KiB) stays in L1
constexpr Index mc = 240;      // rows of A packed at once (360 KiB, in L2)
constexpr Index nc = 512;      // columns of B packed at once, when B must be packed (768 KiB)

/// Packing buffers, one set per thread, allocated once at their largest size
/// so that no product allocates after a thread's first.
struct Buffers {
  Eigen::Matrix<float, Eigen::Dynamic, 1> a{mc * kc}, b{nc * kc};
};
inline Buffers& thread_buffers() {
  static thread_local Buffers instance;
  return instance;
}

/// The mask of the first `count` of 16 lanes (none for count <= 0, all for >= 16).
inline __mmask16 first_lanes(Index count) {
  return count >= 16 ? __mmask16(0xffff) : count <= 0 ? __mmask16(0) : __mmask16((1u << count) - 1u);
}

// out[q·out_stride + r] = src[r·stride + q] for r < rows, q < cols (both at
// most 16): a 16 x 16 tile transposed in registers, in four rounds of
// shuffles, in place of 256 scalar loads and stores. Rows past `rows` read as
// zero; only rows [0, rows) of each output line are written.
inline void transpose_tile(const float* src, Index stride, Index rows, Index cols, float* out, Index out_stride) {
  const __mmask16 col_mask = first_lanes(cols), row_mask = first_lanes(rows);
  __m512 t[16], u[16];
  for (Index r = 0; r < 16; ++r)
    u[r] = r < rows ? _mm512_maskz_loadu_ps(col_mask, src + r * stride) : _mm512_setzero_ps();
  // Within each 128-bit lane: pairs of rows, then quadruples of rows.
  for (Index r = 0; r < 16; r += 2) {
    t[r] = _mm512_unpacklo_ps(u[r], u[r + 1]);
    t[r + 1] = _mm512_unpackhi_ps(u[r], u[r + 1]);
  }
  const auto pd = [](__m512 v) { return _mm512_castps_pd(v); };
  for (Index r = 0; r < 16; r += 4)
    for (Index h = 0; h < 2; ++h) {
      u[r + 2 * h] = _mm512_castpd_ps(_mm512_unpacklo_pd(pd(t[r + h]), pd(t[r + h + 2])));
      u[r + 2 * h + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(pd(t[r + h]), pd(t[r + h + 2])));
    }
  // u[4g + j], lane l, now holds column 4l + j of rows 4g..4g+3: gather the
  // four lanes of each column across the four groups.
  for (Index j = 0; j < 4; ++j) {
    const __m512 low02 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0x88), low13 = _mm512_shuffle_f32x4(u[j], u[4 + j], 0xdd);
    const __m512 high02 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0x88);
    const __m512 high13 = _mm512_shuffle_f32x4(u[8 + j], u[12 + j], 0xdd);
    const __m512 column[4] = {_mm512_shuffle_f32x4(low02, high02, 0x88), _mm512_shuffle_f32x4(low13, high13, 0x88),
                              _mm512_shuffle_f32x4(low02, high02, 0xdd), _mm512_shuffle_f32x4(low13, high13, 0xdd)};
    for (Index l = 0; l < 4; ++l)
      if (4 * l + j < cols) _mm512_mask_storeu_ps(out + (4 * l + j) * out_stride, row_mask, column[l]);
  }
}

// Rows [0, rows) x depth [0, depth) of `src` as panels of `width` rows, each
// k-major (the `width` values of one k together); rows past the end are
// zero. A is packed in panels of mr rows; B in panels of nr columns, as the
// rows of Bᵀ (transposed()).
template <Index width>
void pack_panels(Operand<float> src, Index rows, Index depth, float* out) {
  for (Index i0 = 0; i0 < rows; i0 += width, out += width * depth) {
    const Index height = std::min(width, rows - i0);
    if (height < width) std::fill(out, out + width * depth, 0.0f);
    if (src.row_stride == 1) {  // the values of one k are contiguous: masked vector copies
      // (std::copy_n of 48 bytes is a call to memmove: 2% of a training step)
      const float* column = src.data + i0;
      for (Index r = 0; r < height; r += 16) {
        const __mmask16 mask = first_lanes(height - r);
        for (Index p = 0; p < depth; ++p)
          _mm512_mask_storeu_ps(out + p * width + r, mask,
                                _mm512_maskz_loadu_ps(mask, column + p * src.col_stride + r));
      }
    } else if (src.col_stride == 1) {  // each row is contiguous: transpose 16 x 16 tiles
      for (Index r = 0; r < height; r += 16)
        for (Index p = 0; p < depth; p += 16)
          transpose_tile(src.data + (i0 + r) * src.row_stride + p, src.row_stride, std::min<Index>(16, height - r),
                         std::min<Index>(16, depth - p), out + p * width + r, width);
    } else {  // neither: one value at a time
      for (Index r = 0; r < height; ++r) {
        const float* row = src.data + (i0 + r) * src.row_stride;
        for (Index p = 0; p < depth; ++p) out[p * width + r] = row[p * src.col_stride];
      }
    }
  }
}

inline Operand<float> transposed(Operand<float> m) { return {m.data, m.col_stride, m.row_stride}; }

// C block (rows x cols, at most mr x nr) = or += A panel · B panel
// (+ bias[0, cols)). A's value (r, p) is a[r + p·mr] in a packed panel, or
// a[r·a_row + p] for mr rows of A read in place (packed is a template
// argument so that the packed loop addresses A with constant offsets).
// b_stride is the distance between the B panel's rows.
template <bool packed>
void block(Index depth, const float* a, Index a_row, const float* b, Index b_stride, float* c, Index c_stride,
           Index rows, Index cols, bool accumulate, const float* bias) {
  const Index a_step = packed ? mr : 1;
  if (packed) a_row = 1;
  // The block of C is read (accumulate) or written only after the k loop; in
  // a training step it is usually not in cache (the products' operands, ~7 MB
  // on workload B, do not fit in L2), so its lines are fetched now, under
  // the FMAs, rather than missed at the end: workload B's epoch ran 6% faster.
  for (Index r = 0; r < rows; ++r)
    for (Index v = 0; v < vectors; ++v)
      _mm_prefetch(reinterpret_cast<const char*>(c + r * c_stride + 16 * v), _MM_HINT_T0);
  __m512 sum[mr][vectors];
#pragma GCC unroll 16
  for (Index r = 0; r < mr; ++r)
#pragma GCC unroll 4
    for (Index v = 0; v < vectors; ++v) sum[r][v] = _mm512_setzero_ps();
  for (Index p = 0; p < depth; ++p, a += a_step, b += b_stride) {
    __m512 row[vectors];
#pragma GCC unroll 4
    for (Index v = 0; v < vectors; ++v) row[v] = _mm512_loadu_ps(b + 16 * v);
#pragma GCC unroll 16
    for (Index r = 0; r < mr; ++r) {
      const __m512 ar = _mm512_set1_ps(a[r * a_row]);
#pragma GCC unroll 4
      for (Index v = 0; v < vectors; ++v) sum[r][v] = _mm512_fmadd_ps(ar, row[v], sum[r][v]);
    }
  }
  // Only the columns and rows inside C are read or written (masked).
  __mmask16 mask[vectors];
  for (Index v = 0; v < vectors; ++v) mask[v] = first_lanes(cols - 16 * v);
  for (Index r = 0; r < rows; ++r)
    for (Index v = 0; v < vectors; ++v) {
      float* out = c + r * c_stride + 16 * v;
      __m512 value = sum[r][v];
      if (accumulate) value = _mm512_add_ps(value, _mm512_maskz_loadu_ps(mask[v], out));
      if (bias) value = _mm512_add_ps(value, _mm512_maskz_loadu_ps(mask[v], bias + 16 * v));
      _mm512_mask_storeu_ps(out, mask[v], value);
    }
}

// C (m x n) = or += A (m x k) · B (k x n) (+ bias), on the calling thread.
inline void product(Index m, Index n, Index k, Operand<float> a, Operand<float> b, float* c, Index c_stride,
                    bool accumulate, const float* bias) {
  Buffers& buffers = thread_buffers();
  float* packed_a = buffers.a.data();
  float* packed_b = buffers.b.data();
  // Rows of B contiguous: full panels are read in place; only a last, narrow
  // panel is packed (zero-padded), so that no load reads past a row.
  const bool in_place = b.col_stride == 1;
  for (Index j0 = 0; j0 < n; j0 += nc) {
    const Index width = std::min(nc, n - j0);
    const Index full_panels = in_place ? width / nr : 0;
    for (Index p0 = 0; p0 < k; p0 += kc) {
      const Index depth = std::min(kc, k - p0);
      const Operand<float> b_block = b.at(p0, j0);
      pack_panels<nr>(transposed(b_block.at(0, full_panels * nr)), width - full_panels * nr, depth, packed_b);
      // The first depth block writes C (adding the bias); later ones add to it.
      const bool add = accumulate || p0 > 0;
      const float* block_bias = p0 == 0 && bias ? bias + j0 : nullptr;
      for (Index i0 = 0; i0 < m; i0 += mc) {
        const Index height = std::min(mc, m - i0);
        // A is packed when several panels of B will read it: one stream of
        // broadcasts, from L1, runs ~6% faster than mr streams from the rows
        // (measured on Dense's forward). Against a single panel of B (a
        // layer of 16 to 32 units or filters) the packing would not pay:
        // full panels of mr contiguous rows are then read in place, and only
        // a last, shorter one is packed and zero-padded.
        const Index direct_rows = a.col_stride == 1 && width <= nr ? height / mr * mr : 0;
        pack_panels<mr>(a.at(i0 + direct_rows, p0), height - direct_rows, depth, packed_a);
        for (Index jr = 0; jr < width; jr += nr) {
          const Index panel = jr / nr;
          const bool direct = panel < full_panels;
          const float* b_panel = direct ? b_block.data + jr : packed_b + (panel - full_panels) * nr * depth;
          const Index b_stride = direct ? b.row_stride : nr;
          for (Index ir = 0; ir < height; ir += mr) {
            float* c_block = c + (i0 + ir) * c_stride + j0 + jr;
            const Index rows = std::min(mr, height - ir), cols = std::min(nr, width - jr);
            const float* bias_block = block_bias ? block_bias + jr : nullptr;
            if (ir < direct_rows)
              block<false>(depth, a.data + (i0 + ir) * a.row_stride + p0, a.row_stride, b_panel, b_stride, c_block,
                           c_stride, rows, cols, add, bias_block);
            else
              block<true>(depth, packed_a + (ir - direct_rows) * depth, 1, b_panel, b_stride, c_block, c_stride, rows,
                          cols, add, bias_block);
          }
        }
      }
    }
  }
}

}  // namespace gemm_kernel
#endif  // MINIDL_GEMM_KERNEL

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
  // About 2M multiply-adds per band (~0.1 ms on one core in double), at most
  // 4 bands, at least 32 rows or columns wide where the side has room for
  // two: each band re-packs the operand all bands share, which on one thread
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
  const Index m = a.rows(), n = b.cols(), k = a.cols();
  eigen_assert(b.rows() == k && c.rows() == m && c.cols() == n);
#ifdef MINIDL_GEMM_KERNEL
  // Below ~32k multiply-adds the packing costs more than Eigen's small-product
  // path. Below 16 columns (a 10-class output layer) most lanes of a 32-wide
  // block would be masked off: Eigen's product ran 1.3-1.7x faster there
  // (bench/products.cpp).
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
  if (bias) c.rowwise() += Eigen::Map<const Vector<Scalar>>(bias, n).transpose();
}

}  // namespace detail
}  // namespace minidl
