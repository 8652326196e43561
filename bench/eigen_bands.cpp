// What it costs to make Eigen's products independent of the thread count.
//
// detail::gemm leaves double products, float products of fewer than 16
// columns (a 10-class output layer) and every product on a CPU without
// AVX-512 to Eigen, cut into bands whose sizes depend on the shape alone
// (detail::eigen_bands). This program times, on the same operands in one
// process, those banded products next to Eigen's product of the whole
// (c.noalias() = a·b, what minidl did before): on one thread the ratio is the
// price of determinism (each band re-packs the operand all bands share); on
// several it compares the bands' fixed split with Eigen's own, which depends
// on the thread count.
//
// Shapes: every product of workload B's Dense layers (batch 128, 784 -> 512
// -> 512 -> 10) in double, the 10-column ones in float too, and workload
// C's convolutions (batch 64 of 28 x 28 images, 3 x 3 kernels) in double.
// A is read through a transpose for the kernel gradients, as the layers do;
// B is stored as it is read. Timing as bench/products.cpp: the fastest of `repetitions` blocks of at
// least 20 ms, the two implementations alternating; --steps N sets the
// repetitions, --smoke times single calls (measures nothing).
//
// Output: {"workload": "eigen_bands", "threads": N, "repetitions": R,
// "products": [{"scalar": "double", "role": .., "m": .., "n": .., "k": ..,
// "bands": .., "banded_gflops": .., "whole_gflops": .., "banded_over_whole": ..}, ...]}.
// Before timing, the banded result is checked against the whole one
// (|difference| <= 8·√k·ε·max Σ|a||b|); a mismatch ends the program with status 1.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <minidl/detail/gemm.hpp>
#include <minidl/random.hpp>
#include <minidl/threads.hpp>
#include <string>
#include <vector>

#include "common.hpp"

namespace {

using Index = minidl::Index;

constexpr int default_repetitions = 5;
constexpr double min_rep_seconds = 0.02;

struct Shape {
  const char* role;
  Index m, n, k;
  bool transpose_a;  // A is read as the transpose of a stored k x m matrix (a kernel gradient)
};

constexpr Shape dense_b[] = {
    {"B Dense 1 forward", 128, 512, 784, false},       {"B Dense 1 kernel gradient", 784, 512, 128, true},
    {"B Dense 2 forward", 128, 512, 512, false},       {"B Dense 2 kernel gradient", 512, 512, 128, true},
    {"B Dense 2 input gradient", 128, 512, 512, false}, {"B Dense 3 forward", 128, 10, 512, false},
    {"B Dense 3 kernel gradient", 512, 10, 128, true},  {"B Dense 3 input gradient", 128, 512, 10, false},
};
constexpr Shape conv_c[] = {
    {"C Conv 1 forward", 64 * 28 * 28, 32, 9, false},
    {"C Conv 1 kernel gradient", 9, 32, 64 * 28 * 28, true},
    {"C Conv 2 forward", 64 * 14 * 14, 64, 288, false},
    {"C Conv 2 kernel gradient", 288, 64, 64 * 14 * 14, true},
};

template <class Scalar>
minidl::Matrix<Scalar> random_uniform(Index rows, Index cols, minidl::Rng& rng) {
  minidl::Matrix<Scalar> m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<Scalar>(rng.uniform(-1.0, 1.0));
  return m;
}

template <class Scalar>
void measure(const Shape& s, const char* scalar, int repetitions, bool smoke, minidl::Rng& rng,
             std::vector<bench::JsonLine>& figures) {
  using Mat = minidl::Matrix<Scalar>;
  const Mat stored_a = s.transpose_a ? random_uniform<Scalar>(s.k, s.m, rng) : random_uniform<Scalar>(s.m, s.k, rng);
  const Mat b = random_uniform<Scalar>(s.k, s.n, rng);
  Mat banded(s.m, s.n), whole(s.m, s.n);
  const auto time = [&](const auto& a) {
    const auto run_banded = [&] { minidl::detail::gemm(a, b, banded); };
    const auto run_whole = [&] { whole.noalias() = a * b; };
    run_banded();
    run_whole();
    const Scalar scale = 8 * std::sqrt(static_cast<Scalar>(s.k)) * std::numeric_limits<Scalar>::epsilon();
    const Mat magnitude = a.cwiseAbs() * b.cwiseAbs();
    const double difference = static_cast<double>((banded - whole).cwiseAbs().maxCoeff());
    if (!(difference <= static_cast<double>(scale * magnitude.maxCoeff()))) {
      std::fprintf(stderr, "eigen_bands: %s (%s): banded and whole products differ by %.3g\n", s.role, scalar,
                   difference);
      std::exit(1);
    }
    double banded_s = std::numeric_limits<double>::infinity(), whole_s = banded_s;
    const long banded_calls = smoke ? 1 : bench::calls_per_block(run_banded, min_rep_seconds);
    const long whole_calls = smoke ? 1 : bench::calls_per_block(run_whole, min_rep_seconds);
    for (int r = 0; r < repetitions; ++r) {
      banded_s = std::min(banded_s, bench::seconds_per_call(run_banded, banded_calls));
      whole_s = std::min(whole_s, bench::seconds_per_call(run_whole, whole_calls));
    }
    const double flops = 2.0 * static_cast<double>(s.m) * static_cast<double>(s.n) * static_cast<double>(s.k);
    figures.push_back(bench::JsonLine()
                          .add("scalar", scalar).add("role", s.role)
                          .add("m", static_cast<long>(s.m)).add("n", static_cast<long>(s.n))
                          .add("k", static_cast<long>(s.k))
                          .add("bands", static_cast<long>(minidl::detail::eigen_bands(s.m, s.n, s.k).count))
                          .add("banded_gflops", flops / banded_s / 1e9).add("whole_gflops", flops / whole_s / 1e9)
                          .add("banded_over_whole", whole_s / banded_s));
  };
  if (s.transpose_a)
    time(stored_a.transpose());
  else
    time(stored_a);
}

}  // namespace

int main(int argc, char** argv) {
  const bench::Options options = bench::parse_options(argc, argv);
  minidl::set_num_threads(options.threads);
  const int repetitions = options.smoke ? 1 : (options.steps > 0 ? options.steps : default_repetitions);
  minidl::Rng rng(/*seed=*/2025);

  std::vector<bench::JsonLine> figures;
  for (const Shape& s : dense_b) measure<double>(s, "double", repetitions, options.smoke, rng, figures);
  for (const Shape& s : dense_b)
    if (s.n < 16) measure<float>(s, "float", repetitions, options.smoke, rng, figures);
  for (const Shape& s : conv_c) measure<double>(s, "double", repetitions, options.smoke, rng, figures);

  bench::JsonLine()
      .add("workload", "eigen_bands").add("threads", options.threads).add("repetitions", repetitions)
      .add("products", figures).add("max_rss_kib", bench::max_rss_kib())
      .print();
}
