// Cause 1 of the fit/evaluate mismatch: update order.
//
// The story's second program: 32 random samples, Dense(1000, relu) on 100
// inputs, then Dense(1); MSE; Adam; one epoch of one batch. fit reports the
// loss computed *before* the batch's weight update; evaluate runs *after* it.
// Validation on the same data runs after the update too, so val_loss equals
// evaluate exactly.
#include <cstdio>
#include <minidl/minidl.hpp>

int main() {
  using namespace minidl;
  Rng data_rng(7);
  Matrix<float> x(32, 100), y(32, 1);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(data_rng.uniform());
  for (Index i = 0; i < y.size(); ++i) y.data()[i] = static_cast<float>(data_rng.uniform(0, 10));

  Sequential<float> model(/*seed=*/1);
  model.add(Dense<float>(100, 1000, Activation::relu));
  model.add(Dense<float>(1000, 1));
  model.compile(MeanSquaredError{}, Adam<float>{1e-3f});

  FitOptions<float> options;
  options.batch_size = 32;
  options.epochs = 1;
  options.validation_data = ValidationData<float>{x, y};
  const History history = model.fit(x, y, options);
  const float fit_loss = static_cast<float>(history.loss().back());
  const float val_loss = static_cast<float>(history.val_loss().back());
  const float eval_loss = model.evaluate(x, y);

  std::printf("\nfit loss (before the update)        %10.4f\n", fit_loss);
  std::printf("evaluate (after the update)         %10.4f\n", eval_loss);
  std::printf("val_loss (after the update)         %10.4f\n", val_loss);
  std::printf("val_loss == evaluate, bit for bit:  %s\n", val_loss == eval_loss ? "yes" : "NO");

  const bool ok = val_loss == eval_loss && fit_loss != eval_loss;
  if (!ok) std::printf("FAILED: expected fit loss != evaluate and val_loss == evaluate\n");
  return ok ? 0 : 1;
}
