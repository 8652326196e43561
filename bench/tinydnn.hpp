// minidl benchmarks — what the tiny-dnn programs share: data conversion,
// thread count and step timing.
//
// tiny-dnn's thread count is fixed when it is compiled: with CNN_SINGLE_THREAD
// one thread; without, each parallel loop runs on one std::async task per
// hardware thread. (Its OpenMP mode is not used: it opens a parallel region
// per weight in the optimizer.) Its AVX kernels are on (CNN_USE_AVX).
#pragma once

// The parts used, in tiny_dnn.h's order (the headers depend on it): all of
// tiny_dnn.h would also pull in image and quantization code whose third-party
// headers Debian's package does not ship.
// clang-format off
#include <tiny_dnn/config.h>
#include <tiny_dnn/network.h>
#include <tiny_dnn/nodes.h>
#include <tiny_dnn/core/framework/tensor.h>
#include <tiny_dnn/core/framework/device.h>
#include <tiny_dnn/core/framework/program_manager.h>
#include <tiny_dnn/layers/input_layer.h>
#include <tiny_dnn/layers/feedforward_layer.h>
// Unused, but it makes tiny_dnn::core's names visible, which the fully connected kernels need.
#include <tiny_dnn/layers/convolutional_layer.h>
#include <tiny_dnn/layers/fully_connected_layer.h>
#include <tiny_dnn/layers/linear_layer.h>
#include <tiny_dnn/layers/dropout_layer.h>
#include <tiny_dnn/layers/batch_normalization_layer.h>
#include <tiny_dnn/activations/activation_function.h>
#include <tiny_dnn/lossfunctions/loss_function.h>
#include <tiny_dnn/optimizers/optimizer.h>
// clang-format on
#include <thread>
#include <vector>

#include "common.hpp"

namespace bench::tinydnn {

/// Checks that `threads` is what this build of tiny-dnn runs on (see above).
inline void set_threads(int threads) {
#ifdef CNN_SINGLE_THREAD
  const int built_for = 1;
#else
  const int built_for = static_cast<int>(std::thread::hardware_concurrency());
#endif
  if (threads != built_for) {
    std::cerr << "this tiny-dnn program runs on " << built_for << " thread(s), fixed when it was compiled; got --threads "
              << threads << "\n";
    std::exit(2);
  }
}

/// Rows [begin, end) of a row-major matrix as tiny-dnn's one-sample tensors.
template <class MatrixType>
std::vector<tiny_dnn::tensor_t> samples(const MatrixType& m, Eigen::Index begin, Eigen::Index end) {
  std::vector<tiny_dnn::tensor_t> out;
  for (Eigen::Index r = begin; r < end; ++r)
    out.push_back({tiny_dnn::vec_t(m.row(r).data(), m.row(r).data() + m.cols())});
  return out;
}

/// Start times of every batch in a tiny-dnn fit/train call: the batch
/// callback marks each end, so step i took marks[i + 1] − marks[i].
class BatchClock {
 public:
  void start() { marks_.assign(1, clock_.seconds()); }
  void mark() { marks_.push_back(clock_.seconds()); }
  /// Seconds per step of each of `blocks` equal blocks of steps (the first `skip` steps left out).
  std::vector<double> block_seconds(int blocks, int skip) const {
    const int steps = static_cast<int>(marks_.size()) - 1 - skip, per_block = steps / blocks;
    std::vector<double> out;
    for (int b = 0; b < blocks; ++b) {
      const std::size_t first = static_cast<std::size_t>(skip + b * per_block);
      out.push_back((marks_[first + static_cast<std::size_t>(per_block)] - marks_[first]) / per_block);
    }
    return out;
  }
  double total() const { return marks_.back() - marks_.front(); }

 private:
  Stopwatch clock_;
  std::vector<double> marks_;
};

}  // namespace bench::tinydnn
