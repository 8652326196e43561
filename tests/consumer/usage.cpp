// The README's usage program, built by the consumer check exactly as printed
// there (C++20 for the designated initializers of FitOptions).
#include <iostream>
#include <minidl/minidl.hpp>

int main() {
  // 256 samples of 100 features and one target each: one sample per row, as in Keras.
  minidl::Matrix<float> x = minidl::Matrix<float>::Random(256, 100);
  minidl::Matrix<float> y = x.leftCols(10).rowwise().sum();

  minidl::Sequential<float> model(/*seed=*/42);
  model.add(minidl::Dense<float>(100, 1000, minidl::Activation::relu));
  model.add(minidl::BatchNorm<float>(1000));
  model.add(minidl::Dropout<float>(0.2));
  model.add(minidl::Dense<float>(1000, 1));
  model.compile(minidl::MeanSquaredError{}, minidl::Adam<float>{1e-3});
  model.summary();

  auto history = model.fit(x, y, {.batch_size = 32, .epochs = 5, .validation_data = {{x, y}}});
  float loss = model.evaluate(x, y);
  std::cout << "fit's last loss: " << history.loss().back() << ", evaluate: " << loss << "\n"
            << minidl::explain_gap(model, x, y, &history);
}
