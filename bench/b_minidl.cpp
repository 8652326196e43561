// Workload B with minidl: Fashion-MNIST, 784 -> Dense 512 -> BatchNorm -> ReLU
// -> Dropout(0.2) -> Dense 512 -> BatchNorm -> ReLU -> Dropout(0.2) -> Dense 10
// softmax, categorical cross-entropy, Adam, batch 128, trained with fit().
// Prints seconds per epoch, the predict throughput over the test images and
// the test accuracy.
#include <memory>
#include <minidl/minidl.hpp>

#include "b_model.hpp"

int main(int argc, char** argv) {
  const bench::Options options = bench::parse_options(argc, argv);
  minidl::set_num_threads(options.threads);
  namespace B = bench::b;
  const auto data = B::load(options);
  const minidl::Matrix<float> train_y = minidl::one_hot<float>(data.train_y, B::classes);

  minidl::Sequential<float> model = B::make_minidl_model();

  // Each epoch's wall time, taken by a callback around fit's own loop
  // (shuffling and batch gathering included, as a user's fit would spend it).
  std::vector<double> epoch_seconds;
  bench::Stopwatch clock;
  auto timer = std::make_shared<minidl::LambdaCallback<float>>();
  timer->epoch_begin = [&](minidl::Sequential<float>&, int) { clock.restart(); };
  timer->epoch_end = [&](minidl::Sequential<float>&, int, const minidl::Logs&) { epoch_seconds.push_back(clock.seconds()); };
  minidl::FitOptions<float> fit = B::fit_options(options, {timer});
  const minidl::History history = model.fit(data.train_x, train_y, fit);

  bench::Stopwatch predict_clock;
  const minidl::Matrix<float> outputs = model.predict(data.test_x, B::predict_batch);
  const double predict_seconds = predict_clock.seconds();

  bench::JsonLine()
      .add("workload", "B").add("impl", "minidl").add("threads", options.threads)
      .add("train_samples", static_cast<long>(data.train_x.rows())).add("epoch_s", epoch_seconds)
      .add("last_loss", history.loss().back())
      .add("test_samples", static_cast<long>(data.test_x.rows())).add("predict_s", predict_seconds)
      .add("predict_images_per_s", static_cast<double>(data.test_x.rows()) / predict_seconds)
      .add("test_accuracy", bench::accuracy(outputs, data.test_y)).add("max_rss_kib", bench::max_rss_kib())
      .print();
}
