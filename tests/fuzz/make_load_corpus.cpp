// Writes the seed corpora of fuzz_load_model and fuzz_load_weights with
// minidl's own writers, so that the seeds are exactly what save_model,
// save_weights and safetensors.torch.save_file produce:
//   corpus/load_model/    save_model files: the fixed models of
//                         fuzz_load_weights.cpp (every layer type between
//                         them), one single-layer model per layer type, and
//                         variants (seeds, initializers, frozen layers, other
//                         BatchNorm options, F64);
//   corpus/load_weights/  save_weights files of those fixed models (F32 and
//                         F64), a save_model file (load_weights reads those
//                         too) and PyTorch state_dicts of the two
//                         PyTorch-shaped models.
// Each file is loaded back into its model before it is kept, so every seed
// reaches the code after a successful load. Deterministic: the same files
// every run. Rebuild and rerun from the repository root after changing the
// models in fuzz_load_weights.cpp or the file format, and commit the result:
//   g++ -std=c++17 -O1 -I include -isystem /usr/include/eigen3 tests/fuzz/make_load_corpus.cpp -lz -o /tmp/mlc
//   rm -f tests/fuzz/corpus/load_model/* tests/fuzz/corpus/load_weights/*
//   /tmp/mlc tests/fuzz/corpus
#define MINIDL_FUZZ_MODELS_ONLY
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <map>

#include "fuzz_load_weights.cpp"

namespace {

using namespace minidl;
using load_fuzz::named;

std::string out_dir;
int written = 0;

std::string path_of(const char* kind, const std::string& name) {
  const std::string dir = out_dir + "/" + kind;
  ::mkdir(dir.c_str(), 0777);  // may exist already
  return dir + "/" + name + ".safetensors";
}

long file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<long>(st.st_size) : -1;
}

void report(const std::string& path) {
  std::printf("%6ld %s\n", file_size(path), path.c_str());
  ++written;
}

// A save_model file, checked to load again (as float and as double).
template <class S>
void model_file(const Sequential<S>& model, const std::string& name, DType dtype = dtype_of<S>()) {
  const std::string path = path_of("load_model", name);
  save_model(model, path, dtype);
  (void)load_model<float>(path);
  (void)load_model<double>(path);
  report(path);
}

// A save_weights file, checked to load into a fresh copy of its model.
template <class S>
void weights_file(const load_fuzz::ModelSpec<S>& spec, const std::string& name) {
  const std::string path = path_of("load_weights", name);
  save_weights(spec.make(), path);
  Sequential<S> fresh = spec.make();
  load_weights(fresh, path);
  report(path);
}

// A state_dict as PyTorch names and lays it out (safetensors.torch.save_file):
// module i's Linear weight (units, inputs), Conv2d weight (F, C, kh, kw),
// BatchNorm weight, bias, running_mean, running_var and an I64 scalar
// num_batches_tracked; values from a deterministic formula, variances > 0.
void state_dict_file(const load_fuzz::ModelSpec<float>& spec, const std::string& name) {
  Sequential<float> model = spec.make();
  std::vector<std::vector<float>> values;
  std::vector<TensorToWrite> tensors;
  static const std::int64_t batches = 7;
  int seed = 0;
  const auto add = [&](const std::string& tensor, std::vector<std::int64_t> shape, bool positive) {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    std::vector<float> v(static_cast<std::size_t>(n));
    for (std::size_t k = 0; k < v.size(); ++k) {
      const float u = static_cast<float>((seed * 37 + static_cast<int>(k) * 11) % 23 - 11) / 16.0f;
      v[k] = positive ? 0.5f + u * u : u;
    }
    ++seed;
    values.push_back(std::move(v));
    tensors.push_back({tensor, DType::F32, std::move(shape), values.back().data()});
  };
  for (std::size_t i = 0; i < model.size(); ++i) {
    const std::string prefix = (spec.modules.empty() ? std::to_string(i) : spec.modules[i]) + ".";
    const Layer<float>& layer = model.layer(i);
    if (const auto* d = dynamic_cast<const Dense<float>*>(&layer)) {
      add(prefix + "weight", {d->units(), d->kernel().rows()}, false);
      if (d->use_bias()) add(prefix + "bias", {d->units()}, false);
    } else if (const auto* c = dynamic_cast<const Conv2D<float>*>(&layer)) {
      add(prefix + "weight", {c->filters(), c->input_shape()[2], c->kernel_size()[0], c->kernel_size()[1]}, false);
      if (c->use_bias()) add(prefix + "bias", {c->filters()}, false);
    } else if (dynamic_cast<const BatchNorm<float>*>(&layer)) {
      const std::int64_t C = layer.input_shape().back();
      add(prefix + "weight", {C}, false);
      add(prefix + "bias", {C}, false);
      add(prefix + "running_mean", {C}, false);
      add(prefix + "running_var", {C}, true);
      tensors.push_back({prefix + "num_batches_tracked", DType::I64, {}, &batches});
    }
  }
  const std::string path = path_of("load_weights", name);
  write_safetensors(path, tensors, {{"format", "pt"}});
  PyTorchLoadOptions options;
  options.modules = spec.modules;
  load_pytorch_state_dict(model, path, options);
  report(path);
}

// A model of one layer, built on `input`.
template <class L>
void single_layer(L layer, const Shape& input, const std::string& name) {
  Sequential<float> model(21);
  layer.set_name(name);
  layer.build(input);
  model.add(std::move(layer));
  model_file(model, "layer-" + name);
}

void load_model_corpus() {
  for (const auto& spec : load_fuzz::model_specs<float>()) model_file(spec.make(), spec.name);
  model_file(load_fuzz::dense_model<double>(), "dense-f64");
  model_file(load_fuzz::conv_model<double>(), "conv-f64-as-f32", DType::F32);

  Conv2DOptions conv;
  conv.strides = {2, 1};
  conv.padding = Padding::same;
  conv.use_bias = false;
  conv.kernel_initializer = Initializer::he_normal;
  conv.seed = 9;
  BatchNormOptions bn = BatchNormOptions::pytorch();
  bn.cumulative_average = true;
  bn.frozen_policy = FrozenBatchNormPolicy::batch_statistics;
  single_layer(Dense<float>(3, 2, Activation::relu), Shape{3}, "dense");
  single_layer(Conv2D<float>(2, {3, 2}, conv), Shape{4, 4, 1}, "conv2d");
  single_layer(MaxPooling2D<float>(load_fuzz::Size2{2, 2}, load_fuzz::Size2{1, 1}, Padding::same), Shape{4, 4, 2},
               "max_pooling2d");
  single_layer(AveragePooling2D<float>(load_fuzz::Size2{2, 3}), Shape{4, 6, 1}, "average_pooling2d");
  single_layer(GlobalAveragePooling2D<float>(), Shape{3, 3, 2}, "global_average_pooling2d");
  single_layer(Flatten<float>(), Shape{2, 2, 2}, "flatten");
  single_layer(Dropout<float>(0.3, 42), Shape{5}, "dropout");
  single_layer(BatchNorm<float>(BatchNormOptions::keras()), Shape{3}, "batch_normalization");
  single_layer(BatchNorm<float>(bn), Shape{2, 2, 3}, "batch_normalization_pytorch");
  single_layer(ReLU<float>(), Shape{4}, "relu");
  single_layer(Sigmoid<float>(), Shape{4}, "sigmoid");
  single_layer(Tanh<float>(), Shape{4}, "tanh");
  single_layer(Softmax<float>(), Shape{2, 3}, "softmax");
  single_layer(Linear<float>(), Shape{1, 1, 1, 4}, "linear");

  // Seeds, the other initializers, no bias, frozen layers.
  Sequential<float> variants(22);
  variants.add(named(Dense<float>(2, 3, Activation::relu, DenseOptions{Initializer::he_uniform, true, 5}), "he"));
  variants.add(
      named(Dense<float>(3, 1, Activation::linear, DenseOptions{Initializer::zeros, false, std::nullopt}), "zeros"));
  variants.add(named(Dense<float>(1, 2, Activation::softmax, DenseOptions{Initializer::he_normal, true, 0}), "hn"));
  variants.freeze(0, 2);
  model_file(variants, "variants");
  Sequential<float> frozen = load_fuzz::pool_model<float>();
  frozen.freeze();
  model_file(frozen, "pool-frozen");
}

void load_weights_corpus() {
  for (const auto& spec : load_fuzz::model_specs<float>())
    if (!spec.pytorch) weights_file(spec, spec.name);
  for (const auto& spec : load_fuzz::model_specs<double>())
    if (!spec.pytorch && std::string(spec.name) == "dense") weights_file(spec, "dense-f64");
  {
    const std::string path = path_of("load_weights", "conv-model");
    save_model(load_fuzz::conv_model<float>(), path);
    report(path);
  }
  for (const auto& spec : load_fuzz::model_specs<float>())
    if (spec.pytorch) state_dict_file(spec, spec.name + std::string("-state-dict"));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_load_corpus CORPUS_DIR   (tests/fuzz/corpus)\n");
    return 2;
  }
  out_dir = argv[1];
  try {
    load_model_corpus();
    load_weights_corpus();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_load_corpus: %s\n", e.what());
    return 1;
  }
  std::printf("%d files\n", written);
  return 0;
}
