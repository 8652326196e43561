// A layer type written outside minidl (examples/scaled_noise.hpp) is
// first-class: gradient-checked, trained by fit, reported by explain_gap and
// summary, saved and loaded once registered, its weights loaded by name and
// from a PyTorch state_dict given the names. And the registry itself: every
// built-in layer type makes itself again from its configuration.
#include <doctest/doctest.h>

#include <filesystem>
#include <functional>
#include <map>
#include <minidl/io.hpp>
#include <nlohmann/json.hpp>
#include <sstream>

#include "../examples/scaled_noise.hpp"
#include "support.hpp"

using namespace minidl;

namespace {

const bool registered = register_layer<ScaledNoise>("ScaledNoise");

template <class Scalar>
Sequential<Scalar> noisy_model(std::uint64_t seed = 3) {
  Sequential<Scalar> model(seed);
  model.add(Dense<Scalar>(6, 8, Activation::tanh));
  model.add(ScaledNoise<Scalar>(0.4));
  model.add(Dense<Scalar>(3));
  return model;
}

std::string error_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// A layer with a weight that declares no shapes and has no from_config: the
// registry default-constructs it, a load checks its tensor once built.
struct Offset : LayerBase<Offset, float> {
  const char* type() const override { return "Offset"; }

 protected:
  Shape build_impl(const Shape& input) override {
    offset_ = Vector<float>::Constant(input.size(), 0.5f);
    grad_ = Vector<float>::Zero(input.size());
    return input;
  }
  void forward_training(const Matrix<float>& x, Matrix<float>& y) override { forward_inference(x, y); }
  void forward_inference(const Matrix<float>& x, Matrix<float>& y) override {
    y = x.rowwise() + offset_.transpose();
  }
  void backward_impl(const Matrix<float>&, const Matrix<float>& dy, Matrix<float>* dx) override {
    if (!frozen()) grad_ = dy.colwise().sum().transpose();
    if (dx) *dx = dy;
  }
  void collect_parameters(std::vector<Parameter<float>>& out) override {
    out.emplace_back("offset", offset_.data(), grad_.data(), offset_.size());
  }

 private:
  Vector<float> offset_, grad_;
};

// Writes the tensors of `file` (as F32) with `metadata` to `path`.
void rewrite(const SafetensorsFile& file, const std::map<std::string, std::string>& metadata,
             const std::string& path) {
  std::vector<TensorToWrite> tensors;
  std::vector<std::vector<float>> values;
  values.reserve(file.tensors().size());  // the tensors point into them
  for (const auto& entry : file.tensors()) {
    values.emplace_back(static_cast<std::size_t>(entry.element_count()));
    file.read(entry, values.back().data());
    tensors.push_back({entry.name, DType::F32, entry.shape, values.back().data()});
  }
  write_safetensors(path, tensors, metadata);
}

}  // namespace

TEST_CASE("a user's layer: its backward pass matches finite differences in both paths (double)") {
  ScaledNoise<double> layer(0.3, 5);
  layer.build(Shape{6});
  Vector<double> scale = test::uniform(6, 1, 2, 0.5, 1.5);
  layer.set_scale(scale);
  const Matrix<double> x = test::uniform(4, 6, 9);
  const auto noisy = check_gradients(layer, x);
  CHECK_MESSAGE(noisy.passed(), noisy.max_error());
  REQUIRE(noisy.parameter_errors.size() == 1);
  layer.set_inference_pinned(true);  // the inference path, differentiated in the training phase
  const auto pinned = check_gradients(layer, x);
  CHECK_MESSAGE(pinned.passed(), pinned.max_error());
  CHECK(layer.forward(x, Phase::training) == layer.forward(x, Phase::inference));
}

TEST_CASE("a user's layer trains in fit, and explain_gap and summary report it") {
  REQUIRE(registered);
  Sequential<double> model = noisy_model<double>();
  const Matrix<double> x = test::uniform(64, 6, 1), y = test::uniform(64, 3, 2);
  model.compile(MeanSquaredError{}, Adam<double>{1e-2});
  const History history = model.fit(x, y, test::silent_fit<double>(3, 16, 4));
  const auto& scale = dynamic_cast<const ScaledNoise<double>&>(model.layer(1)).scale();
  CHECK((scale.array() != 1.0).all());  // initialized to ones, then trained

  const GapReport gap = explain_gap(model, x, y, &history, {16});
  REQUIRE(gap.layers.size() == 1);
  CHECK(gap.layers[0].layer == "scaled_noise (ScaledNoise)");
  CHECK(gap.layers[0].reason == "adds N(0, 0.4^2) noise");
  CHECK(gap.layers[0].share != 0);
  CHECK(gap.inference_loss == doctest::Approx(model.evaluate(x, y)).epsilon(1e-12));

  model.pin_inference(1, 2);
  const GapReport pinned = explain_gap(model, x, y, &history, {16});
  REQUIRE(pinned.layers.size() == 1);
  CHECK(pinned.layers[0].share == 0);
  CHECK(pinned.layers[0].reason.find("pinned to the inference phase") == 0);

  std::ostringstream out;
  model.summary(out);
  CHECK(out.str().find("scaled_noise (ScaledNoise)") != std::string::npos);
  CHECK(out.str().find("pinned to inference") != std::string::npos);
}

TEST_CASE_TEMPLATE("a registered user's layer round-trips through save_model and load_model bit for bit", Scalar,
                   float, double) {
  const test::TempDir dir("minidl_custom_layer");
  Sequential<Scalar> model = noisy_model<Scalar>();
  const Matrix<Scalar> x = test::uniform<Scalar>(32, 6, 1), y = test::uniform<Scalar>(32, 3, 2);
  model.compile(MeanSquaredError{}, Adam<Scalar>{Scalar(1e-2)});
  model.fit(x, y, test::silent_fit<Scalar>(2, 8, 4));
  model.layer(1).set_frozen(true);
  save_model(model, dir.file("m.safetensors"));

  Sequential<Scalar> loaded = load_model<Scalar>(dir.file("m.safetensors"));
  REQUIRE(loaded.size() == 3);
  Layer<Scalar>& layer = loaded.layer(1);
  CHECK(std::string(layer.type()) == "ScaledNoise");
  CHECK(layer.name() == "scaled_noise");
  CHECK(layer.frozen());
  CHECK(layer.config() == model.layer(1).config());
  CHECK(layer.parameters()[0].shape == Shape{8});
  CHECK(test::bitwise_equal(loaded.get_weights(), model.get_weights()));
  CHECK(loaded.predict(x) == model.predict(x));
}

TEST_CASE("an unregistered layer type: save_model and load_model say how to register it") {
  const test::TempDir dir("minidl_custom_layer");
  Sequential<float> model(1);
  model.add(Dense<float>(2, 3));
  model.add(Offset());
  CHECK_THROWS_WITH_AS(save_model(model, dir.file("m.safetensors")),
                       doctest::Contains("layer 1 (Offset 'offset') is of type 'Offset', which is not registered, so "
                                         "load_model could not make it again: call register_layer<Type>(\"Offset\")"),
                       ValueError);
  CHECK_FALSE(std::filesystem::exists(dir.file("m.safetensors")));

  // A file naming a type this program has not registered.
  register_layer<Offset>("Offset");
  save_model(model, dir.file("m.safetensors"));
  const SafetensorsFile file = read_safetensors(dir.file("m.safetensors"));
  auto metadata = file.metadata();
  auto architecture = nlohmann::json::parse(metadata.at("minidl.architecture"));
  architecture["layers"][1]["type"] = "Offset2";
  metadata["minidl.architecture"] = architecture.dump();
  rewrite(file, metadata, dir.file("m2.safetensors"));
  CHECK_THROWS_WITH_AS(load_model<float>(dir.file("m2.safetensors")),
                       doctest::Contains("layer 1 (Offset2 'offset'): config: unknown layer type 'Offset2' (known: "),
                       FormatError);
  CHECK(error_of([&] { load_model<float>(dir.file("m2.safetensors")); })
            .find("needs register_layer<Type>(\"Offset2\") first") != std::string::npos);
}

TEST_CASE("a layer that declares no weight shapes: flat shapes, and its tensors are checked once it is built") {
  register_layer<Offset>("Offset");
  const test::TempDir dir("minidl_custom_layer");
  Sequential<float> model(1);
  model.add(Dense<float>(2, 3));
  model.add(Offset());
  CHECK(model.layer(1).parameters()[0].shape == Shape{3});
  save_model(model, dir.file("m.safetensors"));
  const Sequential<float> loaded = load_model<float>(dir.file("m.safetensors"));
  CHECK(test::bitwise_equal(loaded.get_weights(), model.get_weights()));

  Sequential<float> wider(1);  // the same names, one more feature
  wider.add(Dense<float>(2, 4));
  wider.add(Offset());
  save_weights(wider, dir.file("w.safetensors"));
  // The architecture of 3 features, the tensors of 4.
  rewrite(read_safetensors(dir.file("w.safetensors")), read_safetensors(dir.file("m.safetensors")).metadata(),
          dir.file("bad.safetensors"));
  CHECK_THROWS_WITH_AS(load_model<float>(dir.file("bad.safetensors")),
                       doctest::Contains("tensor 'dense.kernel' has shape [2, 4], expected [2, 3]"), FormatError);
}

TEST_CASE("a user's layer's weights load by name, a wrong shape names the tensor and its layout") {
  const test::TempDir dir("minidl_custom_layer");
  Sequential<double> model = noisy_model<double>(1), other = noisy_model<double>(2);
  auto& noise = dynamic_cast<ScaledNoise<double>&>(model.layer(1));
  noise.set_scale(test::uniform(8, 1, 5));
  save_weights(model, dir.file("w.safetensors"));
  CHECK(read_safetensors(dir.file("w.safetensors")).find("scaled_noise.scale")->shape ==
        std::vector<std::int64_t>{8});
  load_weights(other, dir.file("w.safetensors"));
  CHECK(test::bitwise_equal(other.get_weights(), model.get_weights()));

  Sequential<double> narrow(1);
  narrow.add(Dense<double>(6, 7, Activation::tanh));
  narrow.add(ScaledNoise<double>(0.4));
  narrow.add(Dense<double>(3));
  const auto before = narrow.get_weights();
  CHECK_THROWS_WITH_AS(load_weights(narrow, dir.file("w.safetensors")),
                       doctest::Contains("tensor 'dense.kernel' has shape [6, 8], expected [6, 7] "
                                         "(Dense 'dense' kernel (inputs x units))"),
                       FormatError);
  CHECK(test::bitwise_equal(narrow.get_weights(), before));
}

TEST_CASE("the PyTorch bridge maps a user's layer when given its tensors' names, and otherwise says how") {
  const test::TempDir dir("minidl_custom_layer");
  // nn.Sequential(Linear(6, 8), <a scale module>, Linear(8, 3)), values 0, 1, 2, ... per tensor.
  std::vector<std::vector<float>> values;
  std::vector<TensorToWrite> tensors;
  const auto add = [&](const std::string& name, std::vector<std::int64_t> shape) {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    values.emplace_back(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) values.back()[static_cast<std::size_t>(i)] = 0.01f * static_cast<float>(i);
    tensors.push_back({name, DType::F32, shape, values.back().data()});
  };
  values.reserve(5);
  add("0.weight", {8, 6});
  add("0.bias", {8});
  add("1.weight", {8});
  add("2.weight", {3, 8});
  add("2.bias", {3});
  write_safetensors(dir.file("torch.safetensors"), tensors, {});

  Sequential<float> model = noisy_model<float>();
  const auto before = model.get_weights();
  CHECK_THROWS_WITH_AS(load_pytorch_state_dict(model, dir.file("torch.safetensors")),
                       doctest::Contains("layer 1 (ScaledNoise 'scaled_noise') has no known PyTorch name for its "
                                         "tensor 'scale'; give its tensors' state_dict names in "
                                         "PyTorchLoadOptions::tensor_names[\"scaled_noise\"]"),
                       ValueError);
  CHECK(test::bitwise_equal(model.get_weights(), before));

  PyTorchLoadOptions options;
  options.tensor_names["scaled_noise"] = {{"scale", "weight"}};
  load_pytorch_state_dict(model, dir.file("torch.safetensors"), options);
  const auto& noise = dynamic_cast<const ScaledNoise<float>&>(model.layer(1));
  for (Index i = 0; i < 8; ++i) CHECK(noise.scale()[i] == values[2][static_cast<std::size_t>(i)]);
  const auto& dense = dynamic_cast<const Dense<float>&>(model.layer(2));
  for (Index in = 0; in < 8; ++in)  // kernel[in, u] = weight[u, in]
    for (Index u = 0; u < 3; ++u) CHECK(dense.kernel()(in, u) == values[3][static_cast<std::size_t>(u * 8 + in)]);
}

TEST_CASE_TEMPLATE("every built-in layer type makes itself again from its configuration", Scalar, float, double) {
  Sequential<Scalar> model(5);
  model.add(Conv2D<Scalar>(Shape{8, 8, 2}, 3, {3, 2}, Conv2DOptions{{1, 2}, Padding::same, Activation::relu,
                                                                     false, Initializer::he_normal, 9}));
  model.add(MaxPooling2D<Scalar>({2, 1}));
  model.add(AveragePooling2D<Scalar>({1, 1}, std::array<Index, 2>{1, 1}, Padding::same));
  model.add(BatchNorm<Scalar>(BatchNormOptions::pytorch()));
  model.add(GlobalAveragePooling2D<Scalar>());
  model.add(Dense<Scalar>(5, Activation::sigmoid, DenseOptions{Initializer::zeros, true, 4}));
  model.add(Dropout<Scalar>(0.25, 2));
  model.add(ReLU<Scalar>());
  model.add(Sigmoid<Scalar>());
  model.add(Tanh<Scalar>());
  model.add(Linear<Scalar>());
  model.add(Softmax<Scalar>());
  Sequential<Scalar> flat(5);
  flat.add(Flatten<Scalar>(Shape{2, 2, 1}));
  auto& registry = LayerRegistry<Scalar>::instance();
  std::size_t checked = 0;
  for (const Sequential<Scalar>* m : {&model, &flat})
    for (std::size_t i = 0; i < m->size(); ++i) {
      const Layer<Scalar>& original = m->layer(i);
      auto copy = registry.create(original.type(), original.config());
      CHECK(std::string(copy->type()) == original.type());
      CHECK(copy->config() == original.config());
      copy->build(original.input_shape());
      CHECK(copy->output_shape() == original.output_shape());
      const auto declared = original.weight_shapes(original.input_shape());
      // Every built-in layer with weights declares them (a layer without needs not).
      REQUIRE((declared.has_value() || original.parameter_count() + original.state_count() == 0));
      Index declared_size = 0;
      if (declared)
        for (const auto& w : *declared) declared_size += w.shape.size();
      CHECK(declared_size == original.parameter_count() + original.state_count());
      ++checked;
    }
  CHECK(checked == 13);
  for (const char* type : {"AveragePooling2D", "BatchNormalization", "Conv2D", "Dense", "Dropout", "Flatten",
                           "GlobalAveragePooling2D", "Linear", "MaxPooling2D", "ReLU", "Sigmoid", "Softmax", "Tanh"})
    CHECK(registry.known().find(type) != std::string::npos);
}

TEST_CASE("the registry refuses a creator that makes another type, and a layer whose shapes disagree with it") {
  auto& registry = LayerRegistry<float>::instance();
  registry.add("Mislabelled", [](const LayerConfig&) -> std::unique_ptr<Layer<float>> {
    return std::make_unique<ReLU<float>>();
  });
  CHECK_THROWS_WITH_AS(registry.create("Mislabelled", {}),
                       doctest::Contains("the creator registered as 'Mislabelled' made a layer of type 'ReLU'"),
                       StateError);
  struct Liar : Offset {
    std::optional<std::vector<WeightShape>> weight_shapes(const Shape&) const override {
      return std::vector<WeightShape>{{"offset", Shape{2, 2}, ""}};
    }
  };
  Liar liar;
  liar.build(Shape{3});
  CHECK_THROWS_WITH_AS(liar.parameters(), doctest::Contains("weight_shapes() declares offset as (2, 2)"), StateError);
}
