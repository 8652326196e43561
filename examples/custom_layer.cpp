// custom_layer — a layer type written outside minidl (ScaledNoise,
// scaled_noise.hpp) used on Fashion-MNIST through every path a built-in layer
// takes: gradient check, summary, fit, explain_gap, pinning, and save_model /
// load_model once the type is registered with one line.
//
//   custom_layer [FASHION_MNIST_DIR]
//
// Prints each step and exits non-zero if something does not hold.
#include <minidl/fashion_mnist.hpp>
#include <minidl/io.hpp>

#include <cstdio>
#include <iostream>
#include <string>

#include "scaled_noise.hpp"

using namespace minidl;

namespace {

// The one line that makes ScaledNoise known to load_model (float and double).
const bool scaled_noise_registered = register_layer<ScaledNoise>("ScaledNoise");

bool check(bool ok, const char* what) {
  std::printf("  %-64s %s\n", what, ok ? "yes" : "NO");
  return ok;
}

Sequential<float> make_model() {
  Sequential<float> model(7);
  model.add(Dense<float>(784, 64, Activation::relu));
  model.add(ScaledNoise<float>(0.5, 11));
  model.add(Dense<float>(10, Activation::softmax));
  return model;
}

}  // namespace

int main(int argc, char** argv) {
  const FashionMnist<float> data = load_fashion_mnist<float>(argc > 1 ? argv[1] : default_fashion_mnist_dir(), 2048);
  const Matrix<float>& x = data.train_x;
  const Matrix<float> y = one_hot<float>(data.train_y, 10);
  bool ok = scaled_noise_registered;

  std::printf("1. The backward pass against finite differences (double):\n");
  ScaledNoise<double> probe(0.3, 5);
  probe.build(Shape{6});
  Rng rng(3);
  Vector<double> scale(6);
  Matrix<double> probe_x(4, 6);
  for (Index i = 0; i < scale.size(); ++i) scale[i] = rng.uniform(0.5, 1.5);
  for (Index i = 0; i < probe_x.size(); ++i) probe_x.data()[i] = rng.uniform(-1, 1);
  probe.set_scale(scale);
  ok &= check(check_gradients(probe, probe_x).passed(), "input and scale gradients within 1e-6");

  std::printf("\n2. summary():\n");
  Sequential<float> model = make_model();
  model.summary();

  std::printf("\n3. fit, then explain_gap on the same data:\n");
  model.compile(CategoricalCrossentropy{}, Adam<float>{1e-3f}, {Metric::accuracy});
  FitOptions<float> options;
  options.epochs = 3;
  options.batch_size = 32;
  options.seed = 1;
  const History history = model.fit(x, y, options);
  const GapReport gap = explain_gap(model, x, y, &history);
  std::cout << gap << '\n';
  bool reported = false;
  for (const auto& share : gap.layers) reported |= share.layer.find("ScaledNoise") != std::string::npos;
  ok &= check(reported, "explain_gap reports ScaledNoise's share");

  std::printf("\n4. save_model / load_model:\n");
  const std::string path = "custom_layer_model.safetensors";
  save_model(model, path);
  Sequential<float> loaded = load_model<float>(path);
  std::remove(path.c_str());
  ok &= check(loaded.layer(1).type() == std::string("ScaledNoise"), "the loaded model has a ScaledNoise layer");
  ok &= check(loaded.predict(x) == model.predict(x), "its predictions equal the saved model's, bit for bit");

  std::printf("\n5. Pinned to the inference phase, the layer adds no noise while training:\n");
  loaded.pin_inference(1, 2);
  loaded.compile(CategoricalCrossentropy{}, Adam<float>{1e-3f});
  const GapReport pinned = explain_gap(loaded, x, y);
  ok &= check(pinned.inference_loss == pinned.training_loss, "training-phase loss = inference-phase loss");

  std::printf("\n%s\n", ok ? "Every check holds." : "Some check failed.");
  return ok ? 0 : 1;
}
