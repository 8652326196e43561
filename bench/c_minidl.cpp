// Workload C with minidl: a small convolutional net on Fashion-MNIST batches
// (bench/workloads.hpp), trained with train_on_batch on consecutive batches.
// Prints ms per training step and per inference batch of 64 (predict).
#include "c_model.hpp"

int main(int argc, char** argv) {
  const bench::Options options = bench::parse_options(argc, argv);
  minidl::set_num_threads(options.threads);
  namespace C = bench::c;
  const auto data = C::load(options);
  const minidl::Matrix<float> labels = minidl::one_hot<float>(data.train_y, C::classes);

  minidl::Sequential<float> model = C::make_minidl_model();

  // Consecutive batches of the loaded images, wrapping around.
  const Eigen::Index batches = data.train_x.rows() / C::batch;
  Eigen::Index next = 0;
  const auto step = [&] {
    const Eigen::Index begin = (next++ % batches) * C::batch;
    return model.train_on_batch(data.train_x.middleRows(begin, C::batch), labels.middleRows(begin, C::batch));
  };
  const int steps = C::steps(options), per_block = steps / C::blocks;
  const float first_loss = step();  // also the warm-up: buffers get their size
  for (int i = 1; i < per_block; ++i) step();
  float loss = 0;
  const double train_ms = bench::median_us_per_call(C::blocks, per_block, [&] { loss = step(); }) / 1e3;

  const minidl::Matrix<float> x = data.train_x.topRows(C::batch);
  minidl::Matrix<float> out(C::batch, C::classes);
  float checksum = 0;  // uses every prediction, so none can be skipped
  const double infer_ms = bench::median_us_per_call(C::blocks, per_block, [&] {
    model.predict(x, out, C::batch);
    checksum += out(0, 0);
  }) / 1e3;

  bench::JsonLine()
      .add("workload", "C").add("impl", "minidl").add("threads", options.threads).add("steps", C::blocks * per_block)
      .add("train_ms", train_ms).add("infer_ms", infer_ms)
      .add("first_loss", static_cast<double>(first_loss)).add("last_loss", static_cast<double>(loss))
      .add("checksum", static_cast<double>(checksum)).add("max_rss_kib", bench::max_rss_kib())
      .print();
}
