#include <doctest/doctest.h>

#include <minidl/gradient_check.hpp>

namespace {

// y = x .* x, written with a deliberately wrong backward when `buggy` is set,
// to show that the checker catches a wrong gradient.
class Square : public minidl::LayerBase<Square, double> {
 public:
  Square(minidl::Index n, bool buggy) : LayerBase({n}, {n}), buggy_(buggy) {}
  const char* type() const override { return "Square"; }

 protected:
  void forward_training(const minidl::Matrix<double>& x, minidl::Matrix<double>& y) override {
    y = x.array().square().matrix();
  }
  void forward_inference(const minidl::Matrix<double>& x, minidl::Matrix<double>& y) override {
    forward_training(x, y);
  }
  void backward_impl(const minidl::Matrix<double>& x, const minidl::Matrix<double>& dy,
                     minidl::Matrix<double>* dx) override {
    if (dx) *dx = ((buggy_ ? 3.0 : 2.0) * x.array() * dy.array()).matrix();
  }

 private:
  bool buggy_;
};

}  // namespace

TEST_CASE("gradient checker accepts a correct backward and rejects a wrong one") {
  minidl::Matrix<double> x(3, 4);
  x << 0.5, -1.0, 2.0, 0.25, 1.5, -0.5, 0.75, -2.0, 0.1, 0.2, -0.3, 0.4;
  const auto good = minidl::check_gradients(Square(4, false), x);
  CHECK(good.passed());
  CHECK(good.input_error < 1e-8);
  const auto bad = minidl::check_gradients(Square(4, true), x);
  CHECK_FALSE(bad.passed());
  CHECK(bad.input_error > 0.1);
}

TEST_CASE("backward before a training forward is a StateError naming the layer") {
  Square layer(4, false);
  layer.set_name("sq");
  minidl::Matrix<double> x = minidl::Matrix<double>::Ones(2, 4);
  CHECK_THROWS_WITH_AS(layer.backward(x, x), "Square 'sq': backward() needs a training-phase forward() first",
                       minidl::StateError);
  layer.forward(x, minidl::Phase::inference);
  CHECK_THROWS_AS(layer.backward(x, x), minidl::StateError);
  layer.forward(x, minidl::Phase::training);
  CHECK_NOTHROW(layer.backward(x, x));
  minidl::Matrix<double> wrong = minidl::Matrix<double>::Ones(2, 3);
  CHECK_THROWS_WITH_AS(layer.forward(wrong, minidl::Phase::training),
                       "Square 'sq': forward() input has 3 values per sample, expected 4 (input shape (None, 4))",
                       minidl::ShapeError);
}
