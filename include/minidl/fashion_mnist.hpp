// minidl — loading Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017): four IDX
// files, training and test images and labels, gzip'd or plain.
//
// Like idx.hpp (which it builds on) it needs zlib, so minidl.hpp leaves it out.
#pragma once

#include <array>
#include <filesystem>
#include <string>
#include <vector>

#include "error.hpp"
#include "idx.hpp"
#include "tensor.hpp"

namespace minidl {

/// Fashion-MNIST as the Debian package dataset-fashion-mnist installs it.
inline std::string default_fashion_mnist_dir() { return "/usr/share/datasets/fashion-mnist"; }

/// Class names of Fashion-MNIST, indexed by label.
inline const std::array<const char*, 10>& fashion_mnist_class_names() {
  static const std::array<const char*, 10> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

template <class Scalar>
struct FashionMnist {
  Matrix<Scalar> train_x;    // 60000 x 784, pixels scaled to [0, 1]
  std::vector<int> train_y;  // 60000 labels in 0..9
  Matrix<Scalar> test_x;     // 10000 x 784
  std::vector<int> test_y;   // 10000 labels
};

namespace detail {

/// dir/name.gz, or dir/name if only the uncompressed file is there.
inline std::string fashion_mnist_file(const std::string& dir, const std::string& name) {
  const std::filesystem::path base = std::filesystem::path(dir) / name;
  const std::string gz = base.string() + ".gz";
  if (std::filesystem::exists(gz)) return gz;
  if (std::filesystem::exists(base)) return base.string();
  throw IOError("Fashion-MNIST: file '" + gz + "' not found (nor '" + base.string() +
                "'); install the data set with `apt-get install dataset-fashion-mnist` "
                "or pass the folder that holds it to load_fashion_mnist");
}

/// Checks an images/labels pair by their headers, before the large read;
/// returns the images' header.
inline IdxHeader fashion_mnist_check_pair(const std::string& images, const std::string& labels) {
  const IdxHeader x = read_idx_header(images);
  const IdxHeader y = read_idx_header(labels);
  if (x.dims.size() != 3) idx_fail(images, "expected rank 3 (images x rows x cols), got dims " + idx_dims_text(x.dims));
  if (y.dims.size() != 1) idx_fail(labels, "expected rank 1 (labels), got dims " + idx_dims_text(y.dims));
  if (x.dims[0] != y.dims[0])
    throw IOError(detail::message("Fashion-MNIST: inconsistent files: '", images, "' has ", x.dims[0], " images but '",
                                  labels, "' has ", y.dims[0], " labels"));
  return x;
}

}  // namespace detail

/// Loads the four Fashion-MNIST files from `dir` (gzip'd or not), keeping at
/// most `limit` samples of each split.
template <class Scalar>
FashionMnist<Scalar> load_fashion_mnist(const std::string& dir = default_fashion_mnist_dir(),
                                        std::size_t limit = idx_all) {
  const std::string train_images = detail::fashion_mnist_file(dir, "train-images-idx3-ubyte");
  const std::string train_labels = detail::fashion_mnist_file(dir, "train-labels-idx1-ubyte");
  const std::string test_images = detail::fashion_mnist_file(dir, "t10k-images-idx3-ubyte");
  const std::string test_labels = detail::fashion_mnist_file(dir, "t10k-labels-idx1-ubyte");
  const IdxHeader train = detail::fashion_mnist_check_pair(train_images, train_labels);
  const IdxHeader test = detail::fashion_mnist_check_pair(test_images, test_labels);
  if (train.dims[1] != test.dims[1] || train.dims[2] != test.dims[2])
    throw IOError(detail::message("Fashion-MNIST: inconsistent files: '", train_images, "' has images of ",
                                  train.dims[1], " x ", train.dims[2], " pixels but '", test_images, "' has ",
                                  test.dims[1], " x ", test.dims[2]));
  const Scalar scale = Scalar(1) / Scalar(255);
  FashionMnist<Scalar> data;
  data.train_x = read_idx_images<Scalar>(train_images, scale, limit);
  data.train_y = read_idx_labels(train_labels, limit);
  data.test_x = read_idx_images<Scalar>(test_images, scale, limit);
  data.test_y = read_idx_labels(test_labels, limit);
  return data;
}

}  // namespace minidl
