// libFuzzer target: load_model (the overload taking a SafetensorsFile) on
// arbitrary bytes, as float and as double, then predict on what loaded and a
// save/load round trip. The promises checked:
//   - a load throws nothing but a minidl::Error; std::bad_alloc is a failure
//     too, as is any huge allocation (libFuzzer's -malloc_limit_mb): a load
//     costs memory proportional to the file;
//   - a model that loads has positive input and output sizes, only finite
//     weights and moving variances >= 0 (the loader rejects NaN, Inf and
//     negative variances), and no more values than the file has room for;
//   - predict on 2 finite rows never throws and gives 2 x output-size values;
//   - save_model of the loaded model and load_model of that file give the
//     same layers (type, name, frozen flag, shapes) and bitwise the same
//     weights and predictions, and saving the reloaded model writes the same
//     bytes again.
// predict runs only when its cost stays small (see predict_is_cheap): a file
// of a few KB can describe a model that is cheap to load but slow to run, and
// the library promises nothing about predict's cost. Any broken promise,
// crash, sanitizer report, leak, hang or huge allocation is a failure.
// Build and run: bash tests/fuzz/run.sh [SECONDS]
//
// Inputs are made by a mutator that knows the safetensors layout and edits
// the architecture JSON as JSON (fuzz_load_weights.cpp, shared).
//
// save_model only writes to a path (atomically, with fsync), so the round trip
// goes through a folder of this process's own under $TMPDIR (run.sh points it
// at a RAM-backed folder when there is one, where fsync costs nothing).
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <iterator>
#include <minidl/io.hpp>
#include <new>
#include <string>
#include <vector>

// For the mutator both load targets share (its entry points are left out).
#define MINIDL_FUZZ_NO_TARGET
#include "fuzz_load_weights.cpp"

namespace {

using minidl::Index;
using minidl::Sequential;

[[noreturn]] void fail(const char* scalar, const std::string& what) {
  std::fprintf(stderr, "fuzz_load_model: load_model<%s>: %s\n", scalar, what.c_str());
  std::abort();
}

// This process's scratch folder, removed at exit.
const std::string& scratch() {
  static const std::string dir = [] {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/minidl_fuzz_load_model.XXXXXX";
    if (!::mkdtemp(pattern.data())) {
      std::perror("fuzz_load_model: mkdtemp");
      std::abort();
    }
    return pattern;
  }();
  static const bool cleanup = std::atexit([] {
                                std::remove((scratch() + "/a.safetensors").c_str());
                                std::remove((scratch() + "/b.safetensors").c_str());
                                ::rmdir(scratch().c_str());
                              }) == 0;
  (void)cleanup;
  return dir;
}

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

template <class S>
bool same_bits(const std::vector<minidl::Vector<S>>& a, const std::vector<minidl::Vector<S>>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].size() != b[i].size() ||
        std::memcmp(a[i].data(), b[i].data(), static_cast<std::size_t>(a[i].size()) * sizeof(S)) != 0)
      return false;
  return true;
}

template <class S>
bool same_bits(const minidl::Matrix<S>& a, const minidl::Matrix<S>& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.size()) * sizeof(S)) == 0;
}

// Deterministic finite inputs in [-0.9, 0.9], never all zero.
template <class S>
minidl::Matrix<S> fixed_input(Index rows, Index cols) {
  minidl::Matrix<S> x(rows, cols);
  for (Index i = 0; i < rows; ++i)
    for (Index j = 0; j < cols; ++j) x(i, j) = static_cast<S>((i * 31 + j * 17) % 19 - 9) / S(10);
  return x;
}

// predict's work per sample, roughly: each layer's output size times the
// inputs one output value reads (a Dense's inputs, a Conv2D's kernel volume,
// a pooling window clipped to the image). Sizes are the library's own
// (Shape::size()), so a size the library computes wrongly is not hidden.
constexpr Index max_input_size = Index{1} << 16;
constexpr double max_predict_cost = double(1 << 24);

template <class S>
bool predict_is_cheap(const Sequential<S>& model) {
  if (model.input_shape().size() > max_input_size) return false;
  double cost = 0;
  for (std::size_t i = 0; i < model.size(); ++i) {
    const minidl::Layer<S>& layer = model.layer(i);
    const minidl::Shape& in = layer.input_shape();
    double reads = 1;
    if (const auto* dense = dynamic_cast<const minidl::Dense<S>*>(&layer)) {
      reads = static_cast<double>(dense->kernel().rows());
    } else if (const auto* conv = dynamic_cast<const minidl::Conv2D<S>*>(&layer)) {
      reads = double(conv->kernel_size()[0]) * double(conv->kernel_size()[1]) * double(in[2]);
    } else if (const auto* max = dynamic_cast<const minidl::MaxPooling2D<S>*>(&layer)) {
      reads = double(std::min(max->pool_size()[0], in[0])) * double(std::min(max->pool_size()[1], in[1]));
    } else if (const auto* avg = dynamic_cast<const minidl::AveragePooling2D<S>*>(&layer)) {
      reads = double(std::min(avg->pool_size()[0], in[0])) * double(std::min(avg->pool_size()[1], in[1]));
    }
    cost += static_cast<double>(layer.output_size()) * reads + static_cast<double>(layer.input_size());
    if (cost > max_predict_cost) return false;
  }
  return true;
}

template <class S>
void check_loaded(Sequential<S>& model, std::size_t file_size, const char* scalar) {
  if (model.size() == 0) fail(scalar, "loaded a model without layers");
  if (model.input_shape().size() <= 0 || model.output_shape().size() <= 0)
    fail(scalar, "loaded a model with input size " + std::to_string(model.input_shape().size()) + " and output size " +
                     std::to_string(model.output_shape().size()));
  double values = 0;
  for (std::size_t i = 0; i < model.size(); ++i) {
    minidl::Layer<S>& layer = model.layer(i);
    if (layer.output_size() <= 0) fail(scalar, "layer " + layer.name() + " has output size <= 0");
    std::vector<minidl::Parameter<S>> tensors = layer.parameters();
    for (const auto& p : layer.state()) tensors.push_back(p);
    for (const auto& p : tensors) {
      values += static_cast<double>(p.size);
      if (!p.values().allFinite()) fail(scalar, "loaded a NaN or Inf into " + layer.name() + "." + p.name);
      if (p.name == "moving_variance" && (p.values().array() < S(0)).any())
        fail(scalar, "loaded a negative moving variance into " + layer.name());
    }
  }
  // Every value came from the file, as an F32 or F64 of at least 4 bytes.
  if (values * 4 > static_cast<double>(file_size))
    fail(scalar, "the model holds more values than a file of " + std::to_string(file_size) + " bytes can");
}

template <class S>
void check_same_layers(const Sequential<S>& a, const Sequential<S>& b, const char* scalar) {
  if (a.size() != b.size()) fail(scalar, "the reloaded model has another number of layers");
  for (std::size_t i = 0; i < a.size(); ++i) {
    const minidl::Layer<S>&x = a.layer(i), &y = b.layer(i);
    if (std::strcmp(x.type(), y.type()) != 0 || x.name() != y.name() || x.frozen() != y.frozen() ||
        x.input_shape() != y.input_shape() || x.output_shape() != y.output_shape())
      fail(scalar, "layer " + std::to_string(i) + " differs after the round trip: " + x.describe() + " " +
                       x.output_shape().str() + " vs " + y.describe() + " " + y.output_shape().str());
  }
}

template <class S>
void exercise(const minidl::SafetensorsFile& file, std::size_t file_size, const char* scalar) {
  Sequential<S> model;
  try {
    model = minidl::load_model<S>(file, "fuzz input");
  } catch (const minidl::Error&) {
    return;
  } catch (const std::bad_alloc&) {
    fail(scalar, "std::bad_alloc");
  } catch (const std::exception& e) {
    fail(scalar, std::string("an exception that is not a minidl::Error: ") + e.what());
  }
  check_loaded(model, file_size, scalar);

  minidl::Matrix<S> x, y;
  const bool run = predict_is_cheap(model);
  if (run) {
    x = fixed_input<S>(2, model.input_shape().size());
    try {
      y = model.predict(x);
    } catch (const std::exception& e) {
      fail(scalar, std::string("predict threw on a model that loaded: ") + e.what());
    }
    if (y.rows() != 2 || y.cols() != model.output_shape().size()) fail(scalar, "predict's output has the wrong shape");
  }

  const std::string a = scratch() + "/a.safetensors", b = scratch() + "/b.safetensors";
  try {
    minidl::save_model(model, a);
    Sequential<S> again = minidl::load_model<S>(a);
    check_same_layers(model, again, scalar);
    if (!same_bits(model.get_weights(), again.get_weights()))
      fail(scalar, "the weights differ after save_model and load_model");
    if (run && !same_bits(y, again.predict(x))) fail(scalar, "the reloaded model predicts other values");
    minidl::save_model(again, b);
    if (file_bytes(a) != file_bytes(b)) fail(scalar, "saving the reloaded model writes other bytes");
  } catch (const std::exception& e) {
    fail(scalar, std::string("the save/load round trip of a loaded model threw: ") + e.what());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  minidl::SafetensorsFile file;
  try {
    file = minidl::parse_safetensors(data, size, "fuzz input");
  } catch (const minidl::Error&) {
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz_load_model: parse_safetensors threw a non-minidl exception: %s\n", e.what());
    std::abort();
  }
  exercise<float>(file, size, "float");
  exercise<double>(file, size, "double");
  return 0;
}

// The mutator both load targets share (see fuzz_load_weights.cpp), here with
// a third of the mutations on the architecture JSON.
extern "C" std::size_t LLVMFuzzerCustomMutator(std::uint8_t* data, std::size_t size, std::size_t max_size,
                                               unsigned int seed) {
  return load_fuzz::mutate(data, size, max_size, seed, "minidl.architecture");
}
