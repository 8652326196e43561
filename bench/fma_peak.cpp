// The machine's measured fp32 FMA peak, the yardstick of the benchmarks'
// "fraction of peak" figures.
//
// Each thread runs a register-only loop of fused multiply-adds on 16
// independent accumulators: enough to cover the FMA latency (4-5 cycles) times
// the number of FMA pipes (2) on current x86 cores, so the loop is bound by
// FMA throughput alone, with no load, store or dependency stall. AVX-512
// (16 floats per instruction) when the CPU has it, else AVX2 + FMA (8 floats).
// The functions carry their own target attribute, so the program needs no
// -march flag and picks the instruction set at run time.
//
// Output: {"workload": "peak", "isa": ..., "threads": N, "gflops": ...}, the
// best of a few timed runs (the peak is a maximum, not a typical value).
#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "common.hpp"

namespace {

constexpr int accumulators = 16;

template <std::size_t N>
float sum_of(const float (&lanes)[N]) {
  float total = 0;
  for (float lane : lanes) total += lane;
  return total;
}

// acc ← acc·a + b for every accumulator, `iterations` times; returns a sum of
// the accumulators so the compiler must compute them. With a just below 1 and
// b small, the values converge to b/(1 − a) and stay normal floats.
__attribute__((target("avx512f"))) float fma_loop_avx512(long iterations) {
  const __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-6f);
  __m512 acc[accumulators];
  for (int k = 0; k < accumulators; ++k) acc[k] = _mm512_set1_ps(static_cast<float>(k));
  for (long i = 0; i < iterations; ++i) {
#pragma GCC unroll 16  // fully unrolled, so the accumulators live in registers
    for (int k = 0; k < accumulators; ++k) acc[k] = _mm512_fmadd_ps(acc[k], a, b);
  }
  __m512 sum = acc[0];
  for (int k = 1; k < accumulators; ++k) sum = _mm512_add_ps(sum, acc[k]);
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, sum);  // (not _mm512_reduce_add_ps: GCC 12 warns inside it, bug 105593)
  return sum_of(lanes);
}

__attribute__((target("avx2,fma"))) float fma_loop_avx2(long iterations) {
  const __m256 a = _mm256_set1_ps(0.999999f), b = _mm256_set1_ps(1e-6f);
  __m256 acc[accumulators];
  for (int k = 0; k < accumulators; ++k) acc[k] = _mm256_set1_ps(static_cast<float>(k));
  for (long i = 0; i < iterations; ++i) {
#pragma GCC unroll 16  // fully unrolled, so the accumulators live in registers
    for (int k = 0; k < accumulators; ++k) acc[k] = _mm256_fmadd_ps(acc[k], a, b);
  }
  __m256 sum = acc[0];
  for (int k = 1; k < accumulators; ++k) sum = _mm256_add_ps(sum, acc[k]);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum);
  return sum_of(lanes);
}

/// GFLOP/s of `threads` threads each running `iterations` of the loop; the
/// clock runs from the moment all threads are released to the last one's end.
double measure(int threads, long iterations, bool avx512, float& sink) {
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<float> results(static_cast<std::size_t>(threads));
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t)
    workers.emplace_back([&, t] {
      ready.fetch_add(1);
      while (!go.load()) std::this_thread::yield();
      results[static_cast<std::size_t>(t)] = avx512 ? fma_loop_avx512(iterations) : fma_loop_avx2(iterations);
    });
  while (ready.load() < threads) std::this_thread::yield();
  bench::Stopwatch clock;
  go.store(true);
  for (auto& w : workers) w.join();
  const double seconds = clock.seconds();
  for (float r : results) sink += r;
  const double lanes = avx512 ? 16 : 8;
  const double flops = 2.0 * lanes * accumulators * static_cast<double>(iterations) * threads;  // FMA = 2 FLOPs
  return flops / seconds * 1e-9;
}

}  // namespace

int main(int argc, char** argv) {
  const bench::Options options = bench::parse_options(argc, argv);
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f");
  if (!avx512 && !(__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))) {
    std::cerr << argv[0] << ": this CPU has neither AVX-512 nor AVX2 + FMA\n";
    return 1;
  }
  // --steps N: N million iterations per run, 100 by default (about 0.5 s at
  // 100 GFLOP/s per thread; shorter runs under-report the second thread of a
  // virtual machine, whose core the host may take a while to hand over).
  const long iterations = options.smoke ? 100000L : (options.steps > 0 ? options.steps : 100) * 1000000L;
  const int runs = options.smoke ? 1 : 5;
  float sink = 0;
  std::vector<double> gflops;
  for (int r = 0; r < runs; ++r) gflops.push_back(measure(options.threads, iterations, avx512, sink));
  bench::JsonLine()
      .add("workload", "peak").add("impl", "fma").add("isa", avx512 ? "avx512" : "avx2")
      .add("threads", options.threads).add("gflops", *std::max_element(gflops.begin(), gflops.end()))
      .add("runs_gflops", gflops).add("checksum", static_cast<double>(sink)).add("max_rss_kib", bench::max_rss_kib())
      .print();
}
