// minidl — a public finite-difference gradient checker.
//
// Checks a layer's backward() against central differences of its
// training-phase forward. Use it on your own layers as the test suite does on
// every built-in one. Run it in double: in float the differences drown in
// rounding.
//
// The scalar loss is L = sum(R .* forward(x)) with a fixed random R, so that
// every output contributes with a different weight. Each evaluation runs on a
// fresh clone of the layer: the layer you pass is never changed, and a
// Dropout layer draws the same mask every time (its generator state is copied).
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "layer.hpp"

namespace minidl {

struct GradientCheckOptions {
  double epsilon = 1e-6;    ///< step of the central difference
  double tolerance = 1e-6;  ///< largest accepted error (see GradientCheckResult)
  std::uint64_t seed = 1;   ///< seed of the random output weights R
};

struct GradientCheckResult {
  /// Largest error over the input, then one entry per parameter. The error of
  /// one element is |analytic - numeric| / max(1, |analytic|, |numeric|):
  /// absolute for small gradients, relative for large ones.
  double input_error = 0;
  std::vector<std::pair<std::string, double>> parameter_errors;
  double tolerance = 0;

  double max_error() const {
    double e = input_error;
    for (const auto& p : parameter_errors) e = std::max(e, p.second);
    return e;
  }
  bool passed() const { return max_error() <= tolerance; }
};

template <class Scalar>
GradientCheckResult check_gradients(const Layer<Scalar>& layer, const Matrix<Scalar>& x,
                                    const GradientCheckOptions& options = {}) {
  Rng rng(options.seed);
  Matrix<Scalar> weights(x.rows(), layer.output_size());
  for (Index i = 0; i < weights.size(); ++i) weights.data()[i] = static_cast<Scalar>(rng.uniform(-1, 1));

  // Analytic gradients from one training forward + backward on a clone.
  auto probe = layer.clone();
  probe->forward(x, Phase::training);
  const Matrix<Scalar> analytic_input = probe->backward(x, weights);
  std::vector<Vector<Scalar>> analytic_params;
  for (const auto& p : probe->parameters()) analytic_params.emplace_back(p.gradient());

  auto loss = [&](const Layer<Scalar>& source, const Matrix<Scalar>& input) {
    auto copy = source.clone();
    return static_cast<double>((copy->forward(input, Phase::training).array() * weights.array()).sum());
  };
  auto element_error = [](double a, double n) {
    return std::abs(a - n) / std::max({1.0, std::abs(a), std::abs(n)});
  };
  const auto eps = static_cast<Scalar>(options.epsilon);

  GradientCheckResult result;
  result.tolerance = options.tolerance;
  Matrix<Scalar> shifted = x;
  for (Index i = 0; i < x.size(); ++i) {
    const Scalar saved = shifted.data()[i];
    shifted.data()[i] = saved + eps;
    const double up = loss(layer, shifted);
    shifted.data()[i] = saved - eps;
    const double down = loss(layer, shifted);
    shifted.data()[i] = saved;
    const double numeric = (up - down) / (2 * options.epsilon);
    result.input_error = std::max(result.input_error, element_error(analytic_input.data()[i], numeric));
  }

  auto perturbed = layer.clone();
  auto params = perturbed->parameters();
  for (std::size_t p = 0; p < params.size(); ++p) {
    double worst = 0;
    for (Index i = 0; i < params[p].size; ++i) {
      Scalar& w = params[p].value[i];
      const Scalar saved = w;
      w = saved + eps;
      const double up = loss(*perturbed, x);
      w = saved - eps;
      const double down = loss(*perturbed, x);
      w = saved;
      const double numeric = (up - down) / (2 * options.epsilon);
      // A frozen layer computes no parameter gradient: nothing to compare.
      if (!layer.frozen()) worst = std::max(worst, element_error(analytic_params[p][i], numeric));
    }
    result.parameter_errors.emplace_back(params[p].name, worst);
  }
  return result;
}

}  // namespace minidl
