// Workload B as hand-written plain Eigen (bench/reference.hpp): the ceiling
// for minidl's b_minidl. Fashion-MNIST, 784 -> Dense 512 -> BatchNorm -> ReLU
// -> Dropout(0.2) -> Dense 512 -> BatchNorm -> ReLU -> Dropout(0.2) -> Dense
// 10 softmax, categorical cross-entropy, Adam, batch 128. The epoch loop does
// what minidl's fit does: shuffle, gather each batch's rows, train.
#include <numeric>
#include <utility>

#include "reference.hpp"
#include "workloads.hpp"

namespace {

namespace B = bench::b;
using bench::ref::Mat;
using bench::ref::Row;

struct Network {
  minidl::Rng init{42}, dropout_rng{43};
  bench::ref::Dense d1{B::inputs, B::hidden, init}, d2{B::hidden, B::hidden, init}, d3{B::hidden, B::classes, init};
  bench::ref::BatchNorm bn1{B::hidden}, bn2{B::hidden};
  bench::ref::DenseSlots s1{d1}, s2{d2}, s3{d3};
  Row m_gamma1 = Row::Zero(B::hidden), v_gamma1 = m_gamma1, m_beta1 = m_gamma1, v_beta1 = m_gamma1;
  Row m_gamma2 = m_gamma1, v_gamma2 = m_gamma1, m_beta2 = m_gamma1, v_beta2 = m_gamma1;
  bench::ref::Adam adam{B::learning_rate};
  // Per batch: pre-activations, normalized values, dropout masks, block outputs, gradients.
  Mat z1, a1, mask1, h1, z2, a2, mask2, h2, p, dz, dh, da;

  // h = dropout(relu(a)): one pass; the mask holds 0 or 1/(1 − rate).
  void draw_mask(Mat& mask, Eigen::Index rows) {
    const float scale = static_cast<float>(1.0 / (1.0 - B::dropout));
    mask.resize(rows, B::hidden);
    for (Eigen::Index i = 0; i < mask.size(); ++i) mask.data()[i] = dropout_rng.uniform() < B::dropout ? 0.0f : scale;
  }

  // Softmax over each row, shifted by the row's maximum so exp() cannot overflow.
  static void softmax(Mat& z) {
    for (Eigen::Index r = 0; r < z.rows(); ++r) {
      auto row = z.row(r).array();
      row = (row - row.maxCoeff()).exp();
      row /= row.sum();
    }
  }

  // Cross-entropy of softmax outputs p for one-hot t: L = −(1/N)Σ log p[label];
  // through the softmax, dL/dz = (p − t)/N.
  float train_step(const Mat& x, const Mat& t) {
    const Eigen::Index n = x.rows();
    d1.forward(x, z1);
    bn1.forward_training(z1, a1);
    draw_mask(mask1, n);
    h1 = a1.cwiseMax(0.0f).cwiseProduct(mask1);
    d2.forward(h1, z2);
    bn2.forward_training(z2, a2);
    draw_mask(mask2, n);
    h2 = a2.cwiseMax(0.0f).cwiseProduct(mask2);
    d3.forward(h2, p);
    softmax(p);
    const float loss = -(t.array() * p.array().max(1e-7f).log()).sum() / static_cast<float>(n);

    dz = (p - t) / static_cast<float>(n);
    d3.backward(h2, dz, &dh);
    da = (a2.array() > 0.0f).select(dh.cwiseProduct(mask2), 0.0f);  // through dropout and ReLU
    bn2.backward(da, dz);
    d2.backward(h1, dz, &dh);
    da = (a1.array() > 0.0f).select(dh.cwiseProduct(mask1), 0.0f);
    bn1.backward(da, dz);
    d1.backward(x, dz, nullptr);

    adam.begin_step();
    s1.update(adam, d1);
    adam.update(bn1.gamma, bn1.dgamma, m_gamma1, v_gamma1);
    adam.update(bn1.beta, bn1.dbeta, m_beta1, v_beta1);
    s2.update(adam, d2);
    adam.update(bn2.gamma, bn2.dgamma, m_gamma2, v_gamma2);
    adam.update(bn2.beta, bn2.dbeta, m_beta2, v_beta2);
    s3.update(adam, d3);
    return loss;
  }

  // Inference: moving statistics, no dropout.
  const Mat& predict(const Mat& x) {
    d1.forward(x, z1);
    bn1.forward_inference(z1, a1);
    h1 = a1.cwiseMax(0.0f);
    d2.forward(h1, z2);
    bn2.forward_inference(z2, a2);
    h2 = a2.cwiseMax(0.0f);
    d3.forward(h2, p);
    softmax(p);
    return p;
  }
};

}  // namespace

int main(int argc, char** argv) {
  const bench::Options options = bench::parse_options(argc, argv);
  Eigen::setNbThreads(options.threads);  // plain Eigen: its own thread setting
  const auto data = B::load(options);
  const Mat train_y = minidl::one_hot<float>(data.train_y, B::classes);
  const Eigen::Index samples = data.train_x.rows();

  Network net;
  minidl::Rng shuffle_rng(1);
  std::vector<Eigen::Index> order(static_cast<std::size_t>(samples));
  std::iota(order.begin(), order.end(), Eigen::Index{0});
  Mat xb, yb;
  std::vector<double> epoch_seconds;
  double last_loss = 0;
  for (int epoch = 0; epoch < B::epochs(options); ++epoch) {
    bench::Stopwatch clock;
    for (std::size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[shuffle_rng.below(i)]);
    double loss_sum = 0;
    for (Eigen::Index begin = 0; begin < samples; begin += B::batch) {
      const Eigen::Index n = std::min<Eigen::Index>(B::batch, samples - begin);
      xb.resize(n, B::inputs);
      yb.resize(n, B::classes);
      for (Eigen::Index r = 0; r < n; ++r) {
        const Eigen::Index sample = order[static_cast<std::size_t>(begin + r)];
        xb.row(r) = data.train_x.row(sample);
        yb.row(r) = train_y.row(sample);
      }
      loss_sum += static_cast<double>(net.train_step(xb, yb)) * static_cast<double>(n);
    }
    epoch_seconds.push_back(clock.seconds());
    last_loss = loss_sum / static_cast<double>(samples);
  }

  bench::Stopwatch predict_clock;
  Mat outputs(data.test_x.rows(), B::classes);
  for (Eigen::Index begin = 0; begin < data.test_x.rows(); begin += B::predict_batch) {
    const Eigen::Index n = std::min<Eigen::Index>(B::predict_batch, data.test_x.rows() - begin);
    xb = data.test_x.middleRows(begin, n);
    outputs.middleRows(begin, n) = net.predict(xb);
  }
  const double predict_seconds = predict_clock.seconds();

  bench::JsonLine()
      .add("workload", "B").add("impl", "eigen").add("threads", options.threads)
      .add("train_samples", static_cast<long>(samples)).add("epoch_s", epoch_seconds).add("last_loss", last_loss)
      .add("test_samples", static_cast<long>(data.test_x.rows())).add("predict_s", predict_seconds)
      .add("predict_images_per_s", static_cast<double>(data.test_x.rows()) / predict_seconds)
      .add("test_accuracy", bench::accuracy(outputs, data.test_y)).add("max_rss_kib", bench::max_rss_kib())
      .print();
}
