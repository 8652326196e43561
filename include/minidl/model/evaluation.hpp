// minidl — Sequential's inference-phase side: evaluate, evaluate_all,
// test_on_batch, predict, and loss_in_phases (what explain_gap measures with).
// The class and its contracts are in sequential.hpp, which includes this file
// at its end; the training loop is in training.hpp.
#pragma once

#include "training.hpp"  // detail::RunningMeans

namespace minidl {

template <class Scalar>
template <class PhaseOf>
const Matrix<Scalar>& Sequential<Scalar>::forward_layers(const Matrix<Scalar>& x, PhaseOf phase_of, Layers layers) {
  check_batch(x.rows(), phase_of, layers);  // a rejected batch changes no layer
  const Matrix<Scalar>* h = &x;
  for (std::size_t i = layers.first; i < std::min(layers.last, layers_.size()); ++i)
    h = &layers_[i]->forward(*h, phase_of(i));
  return *h;
}

template <class Scalar>
template <class PhaseOf, class Each>
void Sequential<Scalar>::for_each_batch(ConstMatrixRef<Scalar> x, const ConstMatrixRef<Scalar>* y, Index batch_size,
                                        PhaseOf phase_of, Each each, Layers layers) {
  for (Index begin = 0; begin < x.rows(); begin += batch_size) {
    const Index n = std::min(batch_size, x.rows() - begin);
    eval_x_ = x.middleRows(begin, n);
    if (y) eval_y_ = y->middleRows(begin, n);
    each(begin, n, forward_layers(eval_x_, phase_of, layers), eval_y_);
  }
}

template <class Scalar>
void Sequential<Scalar>::predict_batches(ConstMatrixRef<Scalar> x, Matrix<Scalar>& out, Index batch_size,
                                         Layers layers) {
  const auto store = [&](Index begin, Index n, const Matrix<Scalar>& y_pred, const Matrix<Scalar>&) {
    out.middleRows(begin, n) = y_pred;
  };
  for_each_batch(x, nullptr, batch_size, inference, store, layers);
}

template <class Scalar>
Logs Sequential<Scalar>::evaluate_logs(ConstMatrixRef<Scalar> x, ConstMatrixRef<Scalar> y,
                                       const Vector<Scalar>* sample_weight, Index batch_size, const char* prefix,
                                       Layers layers, detail::ReplicaFit<Scalar>* replicas) {
  detail::RunningMeans<Scalar> means;
  means.reset(metrics_.size());
  // A data-parallel fit's replicas each evaluate a contiguous share of the rows and add up their sums.
  const std::pair<Index, Index> share = replicas ? replicas->share(x.rows()) : std::pair<Index, Index>{0, x.rows()};
  const Index first = share.first, rows = share.second - share.first;
  const ConstMatrixRef<Scalar> x_share = x.middleRows(first, rows), y_share = y.middleRows(first, rows);
  if (rows > 0)
    for_each_batch(x_share, &y_share, batch_size, inference,
                   [&](Index begin, Index n, const Matrix<Scalar>& out, const Matrix<Scalar>& y_batch) {
                     if (sample_weight) eval_w_ = sample_weight->segment(first + begin, n);
                     const Vector<Scalar>* w = sample_weight ? &eval_w_ : nullptr;
                     const Scalar loss = loss_->value(out, y_batch, nullptr, w) +
                                         penalties_.total(layers_, parameters_);
                     means.add(loss, metrics_, out, y_batch, w);
                   },
                   layers);
  if (replicas) replicas->sum(means.sums());
  // Round the means to Scalar, as the reported values are Scalars.
  const auto rounded = [](double mean) { return static_cast<double>(static_cast<Scalar>(mean)); };
  Logs logs;
  logs.set(std::string(prefix) + "loss", rounded(means.loss()));
  for (std::size_t m = 0; m < metrics_.size(); ++m)
    logs.set(std::string(prefix) + metric_name(metrics_[m]), rounded(means.metric(m)));
  return logs;
}

template <class Scalar>
Logs Sequential<Scalar>::checked_evaluate(const char* call, ConstMatrixRef<Scalar> x, ConstMatrixRef<Scalar> y,
                                          const Vector<Scalar>* sample_weight, Index batch_size) {
  check_compiled(call);
  check_data(call, x, y, sample_weight);
  check_batch_size(call, batch_size);
  return evaluate_logs(x, y, sample_weight, batch_size, "");
}

template <class Scalar>
Scalar Sequential<Scalar>::evaluate(ConstMatrixRef<Scalar> x, ConstMatrixRef<Scalar> y, Index batch_size) {
  return static_cast<Scalar>(checked_evaluate("evaluate", x, y, nullptr, batch_size)["loss"]);
}

template <class Scalar>
Scalar Sequential<Scalar>::evaluate(ConstMatrixRef<Scalar> x, ConstMatrixRef<Scalar> y,
                                    const Vector<Scalar>& sample_weight, Index batch_size) {
  return static_cast<Scalar>(checked_evaluate("evaluate", x, y, &sample_weight, batch_size)["loss"]);
}

template <class Scalar>
Logs Sequential<Scalar>::evaluate_all(ConstMatrixRef<Scalar> x, ConstMatrixRef<Scalar> y, Index batch_size) {
  return checked_evaluate("evaluate_all", x, y, nullptr, batch_size);
}

template <class Scalar>
Logs Sequential<Scalar>::evaluate_all(ConstMatrixRef<Scalar> x, ConstMatrixRef<Scalar> y,
                                      const Vector<Scalar>& sample_weight, Index batch_size) {
  return checked_evaluate("evaluate_all", x, y, &sample_weight, batch_size);
}

template <class Scalar>
Matrix<Scalar> Sequential<Scalar>::predict(ConstMatrixRef<Scalar> x, Index batch_size) {
  check_input_data("predict", x);
  check_batch_size("predict", batch_size);
  Matrix<Scalar> out(x.rows(), output_shape().size());
  predict_batches(x, out, batch_size);
  return out;
}

template <class Scalar>
void Sequential<Scalar>::predict(ConstMatrixRef<Scalar> x, Matrix<Scalar>& out, Index batch_size) {
  check_input_data("predict", x);
  check_batch_size("predict", batch_size);
  if (out.rows() != x.rows() || out.cols() != output_shape().size())
    throw ShapeError(detail::message("Sequential::predict: out is ", out.rows(), " x ", out.cols(), ", expected ",
                                     x.rows(), " x ", output_shape().size(),
                                     " (a row per row of x, a column per output)"));
  predict_batches(x, out, batch_size);
}

template <class Scalar>
Scalar Sequential<Scalar>::test_on_batch(ConstMatrixRef<Scalar> x, ConstMatrixRef<Scalar> y) {
  return static_cast<Scalar>(checked_evaluate("test_on_batch", x, y, nullptr, x.rows())["loss"]);
}

template <class Scalar>
Scalar Sequential<Scalar>::test_on_batch(ConstMatrixRef<Scalar> x, ConstMatrixRef<Scalar> y,
                                         const Vector<Scalar>& sample_weight) {
  return static_cast<Scalar>(checked_evaluate("test_on_batch", x, y, &sample_weight, x.rows())["loss"]);
}

template <class Scalar>
Scalar Sequential<Scalar>::loss_in_phases(ConstMatrixRef<Scalar> x, ConstMatrixRef<Scalar> y,
                                          const std::vector<Phase>& phases, Index batch_size) {
  check_compiled("loss_in_phases");
  check_not_training("loss_in_phases");
  check_data("loss_in_phases", x, y);
  check_batch_size("loss_in_phases", batch_size);
  if (phases.size() != size())
    throw ShapeError(detail::message("Sequential::loss_in_phases: phases has ", phases.size(),
                                     " entries, expected one per layer (", size(), ")"));
  // Training-phase layers change (statistics, generators) batch by batch:
  // every batch size is checked against every layer before the first runs.
  check_batch_sizes(x.rows(), batch_size, [&](std::size_t i) { return phases[i]; });
  double sum = 0;
  for_each_batch(x, &y, batch_size, [&](std::size_t i) { return phases[i]; },
                 [&](Index, Index n, const Matrix<Scalar>& out, const Matrix<Scalar>& y_batch) {
                   const Scalar loss = loss_->value(out, y_batch, nullptr) + penalties_.total(layers_, parameters_);
                   sum += static_cast<double>(loss) * static_cast<double>(n);
                 });
  return static_cast<Scalar>(sum / static_cast<double>(x.rows()));
}

}  // namespace minidl
