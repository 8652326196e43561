// Helpers shared by the test files: small matrices written out by hand,
// seeded random ones, fixture lines, bitwise comparison, temporary folders.
#pragma once

#include <doctest/doctest.h>
#include <stdlib.h>  // mkdtemp (POSIX)

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <minidl/fit_options.hpp>
#include <minidl/random.hpp>
#include <minidl/tensor.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace minidl::test {

/// A rows x cols matrix from values in row-major order.
template <class Scalar>
Matrix<Scalar> matrix(Index rows, Index cols, std::initializer_list<double> values) {
  REQUIRE(static_cast<Index>(values.size()) == rows * cols);
  Matrix<Scalar> m(rows, cols);
  Index i = 0;
  for (double v : values) m.data()[i++] = static_cast<Scalar>(v);
  return m;
}

/// A rows x cols matrix of values uniform in [low, high) from Rng(seed).
template <class Scalar = double>
Matrix<Scalar> uniform(Index rows, Index cols, std::uint64_t seed, double low = -1, double high = 1) {
  Rng rng(seed);
  Matrix<Scalar> m(rows, cols);
  for (Index i = 0; i < m.size(); ++i) m.data()[i] = static_cast<Scalar>(rng.uniform(low, high));
  return m;
}

/// The matrix of a fixture line "KEY ROWS COLS v1 v2 ..." (values in row-major
/// order), read from `fields` just after KEY. Throws on a malformed line, so a
/// broken fixture fails the test instead of comparing against garbage.
inline Matrix<double> read_fixture_matrix(std::istringstream& fields, const std::string& key) {
  Index rows = 0, cols = 0;
  if (!(fields >> rows >> cols) || rows <= 0 || cols <= 0)
    throw std::runtime_error("bad fixture line: " + key + " needs ROWS COLS > 0");
  Matrix<double> m(rows, cols);
  for (Index i = 0; i < m.size(); ++i)
    if (!(fields >> m.data()[i])) throw std::runtime_error("truncated fixture line: " + key);
  std::string extra;
  if (fields >> extra) throw std::runtime_error("too many values on fixture line: " + key);
  return m;
}

/// A fresh, empty directory under /tmp with a unique name, removed with
/// everything in it when the object goes out of scope.
struct TempDir {
  std::string path;
  explicit TempDir(const std::string& prefix = "minidl_test") {
    std::string pattern = "/tmp/" + prefix + "_XXXXXX";
    if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed for " + pattern);
    path = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ignored;  // a destructor must not throw; a leftover folder in /tmp is harmless
    std::filesystem::remove_all(path, ignored);
  }
  std::string file(const std::string& name) const { return path + "/" + name; }
};

/// fit's options for a test: no output, `epochs` epochs of `batch_size`, shuffled (FitOptions's default seed).
template <class Scalar>
FitOptions<Scalar> quiet(int epochs = 1, Index batch_size = 32) {
  FitOptions<Scalar> options;
  options.epochs = epochs;
  options.batch_size = batch_size;
  options.verbose = 0;
  return options;
}
/// The same, shuffled from `seed`.
template <class Scalar>
FitOptions<Scalar> silent_fit(int epochs, Index batch_size, std::uint64_t seed) {
  FitOptions<Scalar> options = quiet<Scalar>(epochs, batch_size);
  options.seed = seed;
  return options;
}

/// Largest |actual − expected| / max(1, |expected|) over all entries, compared
/// as flat arrays in row-major order; +inf on a size mismatch or a NaN.
template <class A, class B>
double max_error(const A& actual, const B& expected) {
  if (actual.size() != expected.size()) return std::numeric_limits<double>::infinity();
  double worst = 0;
  for (Index i = 0; i < actual.size(); ++i) {
    const double e = static_cast<double>(expected(i / expected.cols(), i % expected.cols()));
    const double a = static_cast<double>(actual(i / actual.cols(), i % actual.cols()));
    const double err = std::abs(a - e) / std::max(1.0, std::abs(e));
    if (!(err <= worst)) worst = err;  // NaN propagates as a failure
  }
  return worst;
}

/// A comparison's relative tolerance in the scalar type under test: the
/// rounding budget of a handful of operations on O(1) values by default;
/// a test whose computation is longer or less exact passes its own budgets.
template <class Scalar>
double tolerance(double in_float = 1e-5, double in_double = 1e-12) {
  return sizeof(Scalar) == sizeof(float) ? in_float : in_double;
}

/// True if both lists hold the same tensors, bit for bit.
template <class Scalar>
bool bitwise_equal(const std::vector<Vector<Scalar>>& a, const std::vector<Vector<Scalar>>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].size() != b[i].size() || !(a[i].array() == b[i].array()).all()) return false;
  return true;
}

}  // namespace minidl::test
