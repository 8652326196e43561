// The README's "Save, load, fine-tune" program: pretrain a base with a head of
// its own, save the base, load it, freeze it, fine-tune a new head on it.
#include <iostream>
#include <minidl/io.hpp>

int main() {
  using namespace minidl;
  // Two related tasks on the same inputs: pretraining predicts one sum, fine-tuning another.
  const Matrix<float> x = Matrix<float>::Random(512, 20);
  const Matrix<float> y_pretrain = x.leftCols(10).rowwise().sum(), y_task = x.leftCols(5).rowwise().sum();
  FitOptions<float> options;
  options.epochs = 20;
  options.verbose = 0;

  Sequential<float> pretrained(/*seed=*/1);
  pretrained.add(Dense<float>(20, 64, Activation::relu));
  pretrained.add(BatchNorm<float>(64));
  pretrained.add(Dense<float>(64, 1));
  pretrained.compile(MeanSquaredError{}, Adam<float>{1e-2f});

  pretrained.fit(x, y_pretrain, options);                                     // 1. pretrain
  save_model(pretrained.split(2).first, "base.safetensors");                  // 2. save the base (atomically)
  Sequential<float> model = load_model<float>("base.safetensors");            // 3. load it
  model.freeze();                                                             // 4. freeze it
  model.add(Dense<float>(64, 1));                                             // 5. fine-tune a new head
  model.compile(MeanSquaredError{}, Adam<float>{1e-2f});
  const float before = model.evaluate(x, y_task);
  model.fit(x, y_task, options);

  const auto base_weights = load_model<float>("base.safetensors").get_weights();
  const auto weights = model.get_weights();
  bool base_unchanged = true;  // the frozen base's kernels, biases and statistics, bit for bit
  for (std::size_t i = 0; i < base_weights.size(); ++i)
    base_unchanged = base_unchanged && (weights[i].array() == base_weights[i].array()).all();
  std::cout << "fine-tuning: loss " << before << " -> " << model.evaluate(x, y_task) << "; frozen base "
            << (base_unchanged ? "unchanged" : "CHANGED") << "\n";
  return base_unchanged ? 0 : 1;
}
