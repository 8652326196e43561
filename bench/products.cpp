// The float matrix products of workloads A, B and C (bench/workloads.hpp),
// one at a time: minidl's detail::gemm next to plain Eigen (c.noalias() = a·b,
// then c.rowwise() += bias where the layer adds one), in the same process, on
// the same operands, so that the kernel's speed can be told apart from
// everything else a training step does.
//
// Each product takes its operands as the layer does: a transpose is Eigen's
// .transpose() of a stored row-major matrix (xᵀ in the kernel gradient, Wᵀ in
// the input gradient), never a copy. Operands are uniform in [-1, 1) from
// minidl::Rng with a fixed seed.
//
// Timing: the product is first run until a block of calls lasts at least
// min_rep_seconds (warm-up and calibration at once); then `repetitions` such
// blocks are timed, minidl's and Eigen's alternating so that a slow spell of
// the machine touches both, and the fastest block counts (as fma_peak: a
// best case, the product's speed without interruptions). --steps N sets the
// repetitions; --smoke times a single call of each, which measures nothing.
//
// Before any timing, minidl's result is checked against Eigen's; a mismatch
// ends the program with status 1 and no figures.
//
// Output: {"workload": "products", "impl": "minidl+eigen", "threads": N,
// "repetitions": R, "min_rep_s": S, "products": [{"workload": "A", "name":
// "x·W + b", "role": "Dense 1 forward", "m": .., "n": .., "k": ..,
// "minidl_gflops": .., "eigen_gflops": .., "error_ratio": ..}, ...],
// "max_rss_kib": ..}. GFLOP/s = 2·m·n·k / seconds per product (the bias's m·n
// additions not counted); error_ratio = the largest |minidl − Eigen| over the
// tolerance (at most 1, or the program fails).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <minidl/detail/gemm.hpp>
#include <minidl/random.hpp>
#include <minidl/threads.hpp>
#include <vector>

#include "common.hpp"

namespace {

using Index = minidl::Index;
using Mat = minidl::Matrix<float>;
using Vec = minidl::Vector<float>;

constexpr int default_repetitions = 5;
constexpr double min_rep_seconds = 0.02;  // bench::calls_per_block's block length

/// One product C (m x n) = A (m x k) · B (k x n) (+ bias) of a workload.
struct Product {
  const char* workload;
  const char* name;  // as the layer's comment writes it
  const char* role;  // which layer, which pass
  Index m, n, k;
  bool transpose_a;  // A is the transpose of a stored k x m matrix
  bool transpose_b;  // B is the transpose of a stored n x k matrix
  bool bias;         // the layer adds a bias to every row
};

// Workload A: batch 32, Dense 100 -> 1000 (its Dense 1000 -> 1 is below the
// size at which gemm leaves the product to Eigen). B: batch 128, Dense 784 ->
// 512 -> 512 -> 10; the first layer computes no input gradient. C: batch 64 of
// 28x28 images, 3x3 'same' convolutions as im2col products: rows = 64 images x
// output pixels, inner size = 3·3·channels; conv1's input gradient is not computed.
constexpr Product products[] = {
    {"A", "x·W + b", "Dense 1 forward", 32, 1000, 100, false, false, true},
    {"A", "xᵀ·dz", "Dense 1 kernel gradient", 100, 1000, 32, true, false, false},
    {"B", "x·W1 + b1", "Dense 1 forward", 128, 512, 784, false, false, true},
    {"B", "xᵀ·dz1", "Dense 1 kernel gradient", 784, 512, 128, true, false, false},
    {"B", "h1·W2 + b2", "Dense 2 forward", 128, 512, 512, false, false, true},
    {"B", "h1ᵀ·dz2", "Dense 2 kernel gradient", 512, 512, 128, true, false, false},
    {"B", "dz2·W2ᵀ", "Dense 2 input gradient", 128, 512, 512, false, true, false},
    {"B", "h2·W3 + b3", "Dense 3 forward", 128, 10, 512, false, false, true},
    {"B", "h2ᵀ·dz3", "Dense 3 kernel gradient", 512, 10, 128, true, false, false},
    {"B", "dz3·W3ᵀ", "Dense 3 input gradient", 128, 512, 10, false, true, false},
    {"C", "cols1·K1 + b1", "Conv 1 forward", 64 * 28 * 28, 32, 9, false, false, true},
    {"C", "cols1ᵀ·dZ1", "Conv 1 kernel gradient", 9, 32, 64 * 28 * 28, true, false, false},
    {"C", "cols2·K2 + b2", "Conv 2 forward", 64 * 14 * 14, 64, 288, false, false, true},
    {"C", "cols2ᵀ·dZ2", "Conv 2 kernel gradient", 288, 64, 64 * 14 * 14, true, false, false},
    {"C", "dZ2·K2ᵀ", "Conv 2 input gradient", 64 * 14 * 14, 288, 64, false, true, false},
};

template <class Dense>
Dense random_uniform(Index rows, Index cols, minidl::Rng& rng) {
  Dense m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<float>(rng.uniform(-1.0, 1.0));
  return m;
}

/// Calls f(A, B) with the stored operands, each as itself or as its transpose.
template <class F>
void with_operands(const Mat& a, bool transpose_a, const Mat& b, bool transpose_b, F&& f) {
  if (transpose_a && transpose_b)
    f(a.transpose(), b.transpose());
  else if (transpose_a)
    f(a.transpose(), b);
  else if (transpose_b)
    f(a, b.transpose());
  else
    f(a, b);
}

// The largest |mine − reference| over its tolerance; ends the program if
// any element is beyond it. Tolerance per element: λ·√k·ε·(Σ_p |a_ip||b_pj| + |bias_j|), the
// probabilistic form of the k·ε·Σ|a||b| bound (Higham and Mary, 2019), with
// λ = 8 covering both results' errors. The worst-case form, 2·k·ε·Σ|a||b|,
// is useless here: with operands of mixed signs |c| grows as √k while Σ|a||b|
// grows as k, and at k = 50176 (conv1's kernel gradient) that bound exceeds
// |c| itself, so it would pass a kernel that dropped most of k.
template <class A, class B>
double error_ratio(const Product& p, const A& a, const B& b, const Vec& bias, const Mat& mine, const Mat& reference) {
  constexpr double lambda = 8;
  Mat magnitude(p.m, p.n);
  magnitude.noalias() = a.cwiseAbs() * b.cwiseAbs();
  if (p.bias) magnitude.rowwise() += bias.cwiseAbs().transpose();
  const double scale = lambda * std::sqrt(static_cast<double>(p.k)) * std::numeric_limits<float>::epsilon();
  double worst = 0;
  for (Index i = 0; i < p.m; ++i)
    for (Index j = 0; j < p.n; ++j) {
      const double difference = std::abs(static_cast<double>(mine(i, j)) - reference(i, j));
      const double tolerance = scale * magnitude(i, j);
      if (!(difference <= tolerance)) {  // also catches NaN
        std::fprintf(stderr,
                     "products: workload %s, %s (%s), %ld x %ld x %ld: minidl's result differs from Eigen's at "
                     "(%ld, %ld): %.9g vs %.9g, difference %.3g > tolerance %.3g\n",
                     p.workload, p.name, p.role, static_cast<long>(p.m), static_cast<long>(p.n),
                     static_cast<long>(p.k), static_cast<long>(i), static_cast<long>(j),
                     static_cast<double>(mine(i, j)), static_cast<double>(reference(i, j)), difference, tolerance);
        std::exit(1);
      }
      if (tolerance > 0) worst = std::max(worst, difference / tolerance);
    }
  return worst;
}

}  // namespace

int main(int argc, char** argv) {
  const bench::Options options = bench::parse_options(argc, argv);
  minidl::set_num_threads(options.threads);
  const int repetitions = options.smoke ? 1 : (options.steps > 0 ? options.steps : default_repetitions);
  minidl::Rng rng(/*seed=*/2024);

  std::vector<bench::JsonLine> figures;
  for (const Product& p : products) {
    const Mat a = p.transpose_a ? random_uniform<Mat>(p.k, p.m, rng) : random_uniform<Mat>(p.m, p.k, rng);
    const Mat b = p.transpose_b ? random_uniform<Mat>(p.n, p.k, rng) : random_uniform<Mat>(p.k, p.n, rng);
    const Vec bias = p.bias ? random_uniform<Vec>(p.n, 1, rng) : Vec();
    Mat mine(p.m, p.n), reference(p.m, p.n);
    with_operands(a, p.transpose_a, b, p.transpose_b, [&](const auto& lhs, const auto& rhs) {
      const auto run_minidl = [&] { minidl::detail::gemm(lhs, rhs, mine, false, p.bias ? bias.data() : nullptr); };
      const auto run_eigen = [&] {
        reference.noalias() = lhs * rhs;
        if (p.bias) reference.rowwise() += bias.transpose();
      };
      run_minidl();
      run_eigen();
      const double ratio = error_ratio(p, lhs, rhs, bias, mine, reference);

      double minidl_s = std::numeric_limits<double>::infinity(), eigen_s = minidl_s;
      const long minidl_calls = options.smoke ? 1 : bench::calls_per_block(run_minidl, min_rep_seconds);
      const long eigen_calls = options.smoke ? 1 : bench::calls_per_block(run_eigen, min_rep_seconds);
      for (int r = 0; r < repetitions; ++r) {
        minidl_s = std::min(minidl_s, bench::seconds_per_call(run_minidl, minidl_calls));
        eigen_s = std::min(eigen_s, bench::seconds_per_call(run_eigen, eigen_calls));
      }
      const double flops = 2.0 * static_cast<double>(p.m) * static_cast<double>(p.n) * static_cast<double>(p.k);
      figures.push_back(bench::JsonLine()
                            .add("workload", p.workload).add("name", p.name).add("role", p.role)
                            .add("m", static_cast<long>(p.m)).add("n", static_cast<long>(p.n))
                            .add("k", static_cast<long>(p.k))
                            .add("minidl_gflops", flops / minidl_s / 1e9).add("eigen_gflops", flops / eigen_s / 1e9)
                            .add("error_ratio", ratio));
    });
  }

  bench::JsonLine()
      .add("workload", "products").add("impl", "minidl+eigen").add("threads", options.threads)
      .add("repetitions", repetitions).add("min_rep_s", options.smoke ? 0.0 : min_rep_seconds)
      .add("products", figures).add("max_rss_kib", bench::max_rss_kib())
      .print();
}
