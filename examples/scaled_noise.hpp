// ScaledNoise — a layer written outside minidl, as a user would write one:
// a learned scale per feature, with Gaussian noise on its input while training
// (Keras's GaussianNoise followed by a per-feature scale).
//
//   training phase:  y = s ⊙ (x + ε),  ε ~ N(0, stddev²), fresh for every batch
//   inference phase: y = s ⊙ x
//
// It shows what a layer implements to be first-class in minidl:
//   - the two forward paths and backward_impl (which, after an inference-path
//     forward in the training phase, i.e. when the layer is pinned,
//     differentiates that path);
//   - phases_differ_impl() and phase_behaviour(), which explain_gap reports;
//   - collect_parameters() and weight_shapes(): the weight and its shape;
//   - config() and from_config(): what save_model writes and load_model reads,
//     once the type is registered (register_layer<ScaledNoise>("ScaledNoise"));
//   - generator_state() and set_generator_state(): its noise generator, which
//     BackupAndRestore saves so that a resumed run draws the same noise.
// Used by examples/custom_layer.cpp and tests/test_custom_layer.cpp.
#pragma once

#include <minidl/minidl.hpp>

#include <cmath>
#include <cstdint>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

template <class Scalar>
class ScaledNoise : public minidl::LayerBase<ScaledNoise<Scalar>, Scalar> {
  using Matrix = minidl::Matrix<Scalar>;
  using Vector = minidl::Vector<Scalar>;

 public:
  /// Input shape taken from the previous layer. stddev >= 0; the noise comes
  /// from Rng(seed) if given, else from the model's generator.
  explicit ScaledNoise(double stddev, std::optional<std::uint64_t> seed = std::nullopt)
      : stddev_(stddev), seed_(seed) {
    if (!(stddev >= 0) || !std::isfinite(stddev))
      throw minidl::ValueError("ScaledNoise: stddev must be a finite number >= 0, got " + text(stddev));
    if (seed_) rng_.reseed(*seed_);
  }

  const char* type() const override { return "ScaledNoise"; }
  double stddev() const { return stddev_; }
  const Vector& scale() const { return scale_; }
  void set_scale(const Vector& scale) { this->assign_tensor(scale_, scale, "scale"); }

  minidl::LayerConfig config() const override {
    minidl::LayerConfig c;
    c.set("stddev", stddev_).set("seed", seed_);
    return c;
  }
  static ScaledNoise from_config(const minidl::LayerConfig& c) {
    return ScaledNoise(c.number("stddev"), c.seed("seed"));
  }
  std::optional<std::vector<minidl::WeightShape>> weight_shapes(const minidl::Shape& input) const override {
    return std::vector<minidl::WeightShape>{{"scale", minidl::Shape{input.size()}, "features"}};
  }
  std::string phase_behaviour() const override {
    return "adds N(0, " + text(stddev_) + "^2) noise";
  }

  void initialize(minidl::Rng& rng) override {
    rng_.reseed(seed_ ? *seed_ : rng.split());
    has_generator_ = true;
  }
  bool initialized() const override { return has_generator_; }
  // The noise generator's state, so that BackupAndRestore resumes the noise
  // stream where a killed run left it.
  std::vector<std::uint64_t> generator_state() const override { return this->generator_words(rng_); }
  void set_generator_state(const std::vector<std::uint64_t>& state) override {
    this->restore_generator(rng_, state);
    has_generator_ = true;
  }

 protected:
  minidl::Shape build_impl(const minidl::Shape& input) override {
    scale_ = Vector::Ones(input.size());  // the identity, as Keras's "ones" initializer
    grad_scale_ = Vector::Zero(input.size());
    return input;
  }
  bool phases_differ_impl() const override { return stddev_ > 0; }

  void forward_training(const Matrix& x, Matrix& y) override {
    noisy_ = stddev_ > 0;
    if (!noisy_) return forward_inference(x, y);
    noise_.resize(x.rows(), x.cols());  // no-op while the batch size stays the same
    for (minidl::Index i = 0; i < noise_.size(); ++i) noise_.data()[i] = static_cast<Scalar>(stddev_ * rng_.normal());
    y.array() = (x + noise_).array().rowwise() * scale_.transpose().array();
  }
  void forward_inference(const Matrix& x, Matrix& y) override {
    noisy_ = false;  // a pinned layer's backward differentiates this path
    y.array() = x.array().rowwise() * scale_.transpose().array();
  }
  // ds = Σ_n dy ⊙ (x + ε);  dx = dy ⊙ s.
  void backward_impl(const Matrix& x, const Matrix& dy, Matrix* dx) override {
    if (!this->frozen()) {
      if (noisy_)
        grad_scale_.noalias() = (dy.array() * (x + noise_).array()).matrix().colwise().sum().transpose();
      else
        grad_scale_.noalias() = (dy.array() * x.array()).matrix().colwise().sum().transpose();
    }
    if (dx) dx->array() = dy.array().rowwise() * scale_.transpose().array();
  }
  void collect_parameters(std::vector<minidl::Parameter<Scalar>>& out) override {
    out.emplace_back("scale", scale_.data(), grad_scale_.data(), scale_.size());
  }

 private:
  static std::string text(double value) {
    std::ostringstream out;
    out << value;
    return out.str();
  }

  double stddev_;
  std::optional<std::uint64_t> seed_;
  minidl::Rng rng_;
  bool has_generator_ = seed_.has_value();
  bool noisy_ = false;  // the last training forward added noise_
  Vector scale_, grad_scale_;
  Matrix noise_;
};
