// Workload B with tiny-dnn, timing only: its BatchNorm has no γ/β and its
// Dropout keeps each unit with probability `rate` (not 1 − rate) while scaling
// by 1/(1 − rate), so its accuracy is not comparable. 784 -> fc 512 -> BatchNorm -> ReLU -> Dropout(0.2) -> fc 512
// -> BatchNorm -> ReLU -> Dropout(0.2) -> fc 10 softmax, multiclass
// cross-entropy, Adam, batch 128. tiny-dnn's train() does not shuffle.
#include "tinydnn.hpp"
#include "workloads.hpp"

int main(int argc, char** argv) {
  const bench::Options options = bench::parse_options(argc, argv);
  bench::tinydnn::set_threads(options.threads);
  namespace B = bench::b;
  const auto data = B::load(options);
  std::vector<tiny_dnn::vec_t> train_x;
  for (const auto& sample : bench::tinydnn::samples(data.train_x, 0, data.train_x.rows())) train_x.push_back(sample[0]);
  const std::vector<tiny_dnn::label_t> train_y(data.train_y.begin(), data.train_y.end());

  using namespace tiny_dnn;
  using namespace tiny_dnn::activation;
  network<sequential> net;
  net << fully_connected_layer<identity>(B::inputs, B::hidden) << batch_normalization_layer(1, B::hidden, 1e-3f, 0.99f)
      << linear_layer<relu>(B::hidden) << dropout_layer(B::hidden, static_cast<float_t>(B::dropout))
      << fully_connected_layer<identity>(B::hidden, B::hidden) << batch_normalization_layer(1, B::hidden, 1e-3f, 0.99f)
      << linear_layer<relu>(B::hidden) << dropout_layer(B::hidden, static_cast<float_t>(B::dropout))
      << fully_connected_layer<softmax>(B::hidden, B::classes);
  adam optimizer;
  optimizer.alpha = B::learning_rate;

  std::vector<double> epoch_seconds;
  bench::Stopwatch clock;
  net.train<cross_entropy_multiclass>(
      optimizer, train_x, train_y, B::batch, B::epochs(options), [] {},
      [&] {
        epoch_seconds.push_back(clock.seconds());
        clock.restart();
      },
      false, options.threads);

  bench::Stopwatch predict_clock;
  net.set_netphase(net_phase::test);
  minidl::Matrix<float> outputs(data.test_x.rows(), B::classes);
  for (Eigen::Index begin = 0; begin < data.test_x.rows(); begin += B::predict_batch) {
    const Eigen::Index end = std::min<Eigen::Index>(begin + B::predict_batch, data.test_x.rows());
    const auto predicted = net.predict(bench::tinydnn::samples(data.test_x, begin, end));
    for (Eigen::Index r = begin; r < end; ++r)
      for (int c = 0; c < B::classes; ++c) outputs(r, c) = predicted[static_cast<std::size_t>(r - begin)][0][static_cast<std::size_t>(c)];
  }
  const double predict_seconds = predict_clock.seconds();

  bench::JsonLine()
      .add("workload", "B").add("impl", "tiny-dnn").add("threads", options.threads)
      .add("train_samples", static_cast<long>(data.train_x.rows())).add("epoch_s", epoch_seconds)
      .add("test_samples", static_cast<long>(data.test_x.rows())).add("predict_s", predict_seconds)
      .add("predict_images_per_s", static_cast<double>(data.test_x.rows()) / predict_seconds)
      .add("test_accuracy", bench::accuracy(outputs, data.test_y)).add("max_rss_kib", bench::max_rss_kib())
      .print();
}
