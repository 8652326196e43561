// Workload A with minidl: 100 -> Dense 1000 ReLU -> Dense 1, MSE, Adam, batch 32.
// Prints µs per training step (train_on_batch) and per inference batch of 32 (predict).
#include <minidl/minidl.hpp>

#include "workloads.hpp"

int main(int argc, char** argv) {
  const bench::Options options = bench::parse_options(argc, argv);
  minidl::set_num_threads(options.threads);
  namespace A = bench::a;
  const A::Batch data = A::make_batch();

  minidl::Sequential<float> model(/*seed=*/42);
  model.add(minidl::Dense<float>(A::inputs, A::hidden, minidl::Activation::relu));
  model.add(minidl::Dense<float>(A::hidden, A::outputs));
  model.compile(minidl::MeanSquaredError{}, minidl::Adam<float>{A::learning_rate});

  const int steps = A::steps(options), per_block = steps / A::blocks;
  const float first_loss = model.train_on_batch(data.x, data.y);  // also the warm-up: buffers get their size
  for (int i = 0; i < per_block; ++i) model.train_on_batch(data.x, data.y);
  float loss = 0;
  const double train_us = bench::median_us_per_call(A::blocks, per_block, [&] { loss = model.train_on_batch(data.x, data.y); });

  float checksum = 0;  // uses every prediction, so none can be skipped
  const double infer_us = bench::median_us_per_call(A::blocks, per_block, [&] { checksum += model.predict(data.x, A::batch)(0, 0); });

  bench::JsonLine()
      .add("workload", "A").add("impl", "minidl").add("threads", options.threads).add("steps", A::blocks * per_block)
      .add("train_us", train_us).add("infer_us", infer_us)
      .add("first_loss", static_cast<double>(first_loss)).add("last_loss", static_cast<double>(loss))
      .add("checksum", static_cast<double>(checksum)).add("max_rss_kib", bench::max_rss_kib())
      .print();
}
