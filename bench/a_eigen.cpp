// Workload A as hand-written plain Eigen (bench/reference.hpp): the ceiling
// for minidl's a_minidl. 100 -> Dense 1000 ReLU -> Dense 1, MSE, Adam, batch 32.
#include "reference.hpp"
#include "workloads.hpp"

namespace {

namespace A = bench::a;
using bench::ref::Mat;

struct Network {
  minidl::Rng rng{42};
  bench::ref::Dense hidden{A::inputs, A::hidden, rng}, output{A::hidden, A::outputs, rng};
  bench::ref::DenseSlots hidden_slots{hidden}, output_slots{output};
  bench::ref::Adam adam{A::learning_rate};
  Mat h, y, dy, dh;  // N x 1000, N x 1, N x 1, N x 1000

  // h = relu(x·W1 + b1), y = h·W2 + b2
  const Mat& forward(const Mat& x) {
    hidden.forward(x, h);
    h.array() = h.array().max(0.0f);
    output.forward(h, y);
    return y;
  }

  // MSE: L = Σ(y − t)²/(N·C), dL/dy = 2(y − t)/(N·C); ReLU': dz = [h > 0]⊙dh.
  float train_step(const Mat& x, const Mat& t) {
    forward(x);
    const float scale = 1.0f / static_cast<float>(y.size());
    const float loss = (y - t).squaredNorm() * scale;
    dy = (y - t) * (2 * scale);
    output.backward(h, dy, &dh);
    dh = (h.array() > 0.0f).select(dh, 0.0f);
    hidden.backward(x, dh, nullptr);
    adam.begin_step();
    hidden_slots.update(adam, hidden);
    output_slots.update(adam, output);
    return loss;
  }
};

}  // namespace

int main(int argc, char** argv) {
  const bench::Options options = bench::parse_options(argc, argv);
  Eigen::setNbThreads(options.threads);  // plain Eigen: its own thread setting
  const A::Batch data = A::make_batch();
  Network net;

  const int steps = A::steps(options), per_block = steps / A::blocks;
  const float first_loss = net.train_step(data.x, data.y);
  for (int i = 0; i < per_block; ++i) net.train_step(data.x, data.y);
  float loss = 0;
  const double train_us = bench::median_us_per_call(A::blocks, per_block, [&] { loss = net.train_step(data.x, data.y); });

  float checksum = 0;
  const double infer_us = bench::median_us_per_call(A::blocks, per_block, [&] { checksum += net.forward(data.x)(0, 0); });

  bench::JsonLine()
      .add("workload", "A").add("impl", "eigen").add("threads", options.threads).add("steps", A::blocks * per_block)
      .add("train_us", train_us).add("infer_us", infer_us)
      .add("first_loss", static_cast<double>(first_loss)).add("last_loss", static_cast<double>(loss))
      .add("checksum", static_cast<double>(checksum)).add("max_rss_kib", bench::max_rss_kib())
      .print();
}
