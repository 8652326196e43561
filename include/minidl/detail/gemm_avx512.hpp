// minidl — the AVX-512 float kernel of detail/gemm.hpp's products, in the
// layout of BLIS and OpenBLAS: B is cut into panels of 32 columns, A into
// panels of 8 rows packed k-major, and an 8 x 32 block of C is held in 16
// vector registers while k runs: each step loads two vectors of B, broadcasts
// 8 values of A and issues 16 FMAs, so the loop is bound by the FMA units, not
// by memory. Blocks of 8 rows fit the usual batch sizes (32, 64, 128) exactly,
// where 12 x 32 blocks (Eigen's 48 x 4 is the other common choice) leave a
// third of a block empty on 32 rows. bench/products.cpp compares it with
// Eigen's product on the layers' shapes; bench/DESIGN.md records what each
// choice below was measured against.
// A row-major B with contiguous rows (a Dense kernel, the forward x·W) is read
// in place, without packing; operands read across their rows (Wᵀ in dx = dz·Wᵀ,
// the batch x in x·W) are packed by 16 x 16 transposes in registers.
// Compiled only where the compiler targets AVX-512 (__AVX512F__).
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <immintrin.h>

#include "../tensor.hpp"
#include "../threads.hpp"

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
      // (std::copy_n of a few dozen bytes is a call to memmove, visible in a training step's profile)
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
  // the FMAs, rather than missed at the end (bench/DESIGN.md).
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
        // broadcasts, from L1, is faster than mr streams from the rows
        // (measured on Dense's forward, bench/DESIGN.md). Against a single panel of B (a
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

}  // namespace detail
}  // namespace minidl
