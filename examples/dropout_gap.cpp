// Cause 2 of the fit/evaluate mismatch: Dropout.
//
// Dropout zeroes units (and scales the rest by 1/(1-rate)) in the training
// phase only; evaluate runs the inference phase, where it is the identity. The
// same weights therefore give two different losses on the same data. This
// program prints both, via explain_gap, as training goes on: the gap is small
// while the model is still far off (its own error dominates), largest once the
// model fits the data (the dropout noise is then most of the training-phase
// loss), and shrinks again as training makes the units redundant, so that
// dropping some changes the output less.
#include <algorithm>
#include <cstdio>
#include <minidl/minidl.hpp>

int main() {
  using namespace minidl;
  // A linear regression target on random inputs: easy to learn.
  Rng data_rng(3);
  Matrix<float> x(1024, 100), y(1024, 1);
  for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<float>(data_rng.uniform(-1, 1));
  for (Index r = 0; r < x.rows(); ++r) y(r, 0) = x.row(r).head(10).sum();

  Sequential<float> model(/*seed=*/1);
  model.add(Dense<float>(100, 512, Activation::relu));
  model.add(Dropout<float>(0.5));
  model.add(Dense<float>(512, 1));
  model.compile(MeanSquaredError{}, Adam<float>{1e-3f});

  FitOptions<float> options;
  options.verbose = 0;
  std::printf("%8s %16s %16s %10s\n", "epochs", "training phase", "inference phase", "gap");
  double largest_gap = 0, last_gap = 0;
  int trained = 0;
  for (int epochs : {0, 1, 3, 10, 30, 100, 300}) {
    options.epochs = epochs - trained;
    options.seed = static_cast<std::uint64_t>(epochs);
    model.fit(x, y, options);
    trained = epochs;
    const GapReport report = explain_gap(model, x, y, nullptr, {options.batch_size});
    const double gap = report.training_loss - report.inference_loss;
    std::printf("%8d %16.4f %16.4f %10.4f\n", epochs, report.training_loss, report.inference_loss, gap);
    largest_gap = std::max(largest_gap, gap);
    last_gap = gap;
  }
  std::printf("\nAfter %d epochs:\n", trained);
  std::cout << explain_gap(model, x, y, nullptr, {options.batch_size});

  const bool ok = last_gap > 0 && last_gap < largest_gap / 2;
  if (!ok) std::printf("FAILED: expected a positive gap that shrinks to less than half its peak\n");
  return ok ? 0 : 1;
}
