// Workload A with tiny-dnn (timing only): 100 -> fully connected 1000 ReLU ->
// fully connected 1, MSE, Adam, batch 32. One fit() call trains over the same
// batch repeated, so its per-call setup is paid once; the batch callback
// times every step.
#include "tinydnn.hpp"
#include "workloads.hpp"

int main(int argc, char** argv) {
  const bench::Options options = bench::parse_options(argc, argv);
  bench::tinydnn::set_threads(options.threads);
  namespace A = bench::a;
  const A::Batch data = A::make_batch();
  const auto x = bench::tinydnn::samples(data.x, 0, A::batch);
  const auto y = bench::tinydnn::samples(data.y, 0, A::batch);

  using namespace tiny_dnn;
  using namespace tiny_dnn::activation;
  network<sequential> net;
  net << fully_connected_layer<relu>(A::inputs, A::hidden) << fully_connected_layer<identity>(A::hidden, A::outputs);
  adam optimizer;
  optimizer.alpha = A::learning_rate;

  const int steps = A::steps(options), per_block = steps / A::blocks, warmup = per_block;
  std::vector<vec_t> xs, ys;  // the batch, repeated once per step
  for (int s = 0; s < warmup + A::blocks * per_block; ++s)
    for (std::size_t i = 0; i < x.size(); ++i) {
      xs.push_back(x[i][0]);
      ys.push_back(y[i][0]);
    }
  bench::tinydnn::BatchClock clock;
  clock.start();
  net.fit<mse>(optimizer, xs, ys, A::batch, 1, [&] { clock.mark(); }, [] {}, false, options.threads);
  const double train_us = bench::median(clock.block_seconds(A::blocks, warmup)) * 1e6;

  float checksum = 0;
  const double infer_us = bench::median_us_per_call(A::blocks, per_block, [&] { checksum += net.predict(x)[0][0][0]; });
  double loss = 0;
  for (int i = 0; i < A::batch; ++i) loss += mse::f(net.predict(x[static_cast<std::size_t>(i)])[0], y[static_cast<std::size_t>(i)][0]);

  bench::JsonLine()
      .add("workload", "A").add("impl", "tiny-dnn").add("threads", options.threads).add("steps", A::blocks * per_block)
      .add("train_us", train_us).add("infer_us", infer_us).add("last_loss", loss / A::batch)
      .add("checksum", static_cast<double>(checksum)).add("max_rss_kib", bench::max_rss_kib())
      .print();
}
