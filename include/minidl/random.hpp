// minidl — the seedable random generator behind every random choice
// (weight initialisation, shuffling, dropout masks).
//
// std::uniform_real_distribution differs between standard libraries, so the
// numbers are derived here from the raw 64-bit stream: the same seed gives the
// same numbers with every compiler.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>

#include "error.hpp"

namespace minidl {

/// Value n (n = 0, 1, 2, ...) of the SplitMix64 stream that starts at `key`:
/// a counter-based generator, each value computed from (key, n) alone. Any
/// part of the stream can be drawn in any order, on any thread, with the same
/// numbers; Dropout draws its masks this way.
inline std::uint64_t splitmix64(std::uint64_t key, std::uint64_t n) {
  std::uint64_t z = key + (n + 1) * 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

/// splitmix64-seeded xoshiro256** generator: small state, cheap to copy, fast.
class Rng {
 public:
  explicit Rng(std::uint64_t seed = 0) { reseed(seed); }

  void reseed(std::uint64_t seed) {
    // splitmix64 spreads any seed (even 0) over the four state words.
    for (std::uint64_t n = 0; n < 4; ++n) state_[n] = splitmix64(seed, n);
  }

  std::uint64_t next() {
    const std::uint64_t result = rotl(state_[1] * 5, 7) * 9;
    const std::uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

  /// Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
  /// Uniform in [low, high).
  double uniform(double low, double high) { return low + (high - low) * uniform(); }
  /// Uniform integer in [0, n), 0 < n < 2^53 (scaled 53-bit draw: no modulo bias
  /// beyond 2^-53, and no 128-bit arithmetic, which ISO C++ lacks).
  std::uint64_t below(std::uint64_t n) {
    return static_cast<std::uint64_t>(uniform() * static_cast<double>(n));
  }
  /// Standard normal (Box–Muller, one value per call for simplicity).
  double normal() {
    const double u1 = 1.0 - uniform();  // (0, 1]: log is finite
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }

  /// A new, independent seed drawn from this stream (to seed a layer's own generator).
  std::uint64_t split() { return next(); }

  /// The four state words: set_state() of them makes a generator that draws
  /// what this one draws from now on (how a backup resumes a run's streams).
  using State = std::array<std::uint64_t, 4>;
  State state() const { return {state_[0], state_[1], state_[2], state_[3]}; }
  /// Throws ValueError, the generator unchanged, for four zero words: no
  /// seed makes them (xoshiro would then draw zeros forever).
  void set_state(const State& state) {
    if (state == State{})
      throw ValueError("Rng::set_state: the state is four zero words, which no generator has (a corrupt state?)");
    for (std::size_t i = 0; i < 4; ++i) state_[i] = state[i];
  }

  friend bool operator==(const Rng& a, const Rng& b) {
    for (int i = 0; i < 4; ++i)
      if (a.state_[i] != b.state_[i]) return false;
    return true;
  }

 private:
  static std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  std::uint64_t state_[4]{};
};

}  // namespace minidl
