// minidl — explain_gap: why does fit's loss differ from evaluate's on the same data?
//
// For a compiled model and (x, y) it measures, on deep copies of the model (the
// model itself is never changed):
//   inference loss      all layers in the inference phase (= evaluate);
//   training loss       all layers in the training phase, no weight update;
//   per layer           the loss with only that Dropout/BatchNorm layer in the
//                       training phase, minus the inference loss: that layer's
//                       share of the train/inference gap;
//   interaction         what the single-layer shares do not add up to;
// and, given the History of the fit that trained the model on the same data,
//   update order        fit's last-epoch loss (the mean of pre-update batch
//                       losses) minus the training loss after the updates.
// So fit's loss = inference loss + update order + Σ per-layer shares + interaction.
//
// The training-phase losses use batches of `batch_size` in data order (fit
// shuffles, so batch statistics differ slightly), and a single draw of each
// Dropout mask, taken from a copy of the layer's generator.
#pragma once

#include <cmath>
#include <iomanip>
#include <limits>
#include <ostream>
#include <string>
#include <vector>

#include "layers/batch_norm.hpp"
#include "layers/dropout.hpp"
#include "sequential.hpp"

namespace minidl {

struct GapShare {
  std::string layer;        ///< "batch_normalization (BatchNormalization)"
  std::string behaviour;    ///< what the layer does differently in the training phase
  double contribution = 0;  ///< loss with only this layer in training phase − inference loss
};

struct GapReport {
  double fit_loss = std::numeric_limits<double>::quiet_NaN();      ///< History's last epoch loss, if given
  double training_loss = 0;                                        ///< all layers in the training phase
  double inference_loss = 0;                                       ///< all layers in the inference phase
  double update_order = std::numeric_limits<double>::quiet_NaN();  ///< fit_loss − training_loss
  std::vector<GapShare> layers;
  double interaction = 0;  ///< (training − inference) − Σ contributions

  double phase_gap() const { return training_loss - inference_loss; }
};

inline std::ostream& operator<<(std::ostream& out, const GapReport& report) {
  const auto row = [&](const std::string& what, double value, const std::string& note = "") {
    out << "  " << std::left << std::setw(44) << what << std::right << std::setw(12) << std::fixed
        << std::setprecision(4) << value << (note.empty() ? "" : "   " + note) << '\n';
  };
  out << "Where the gap between fit's loss and evaluate's comes from\n";
  if (!std::isnan(report.fit_loss)) row("fit's loss (mean of pre-update batch losses)", report.fit_loss);
  if (!std::isnan(report.update_order))
    row("  update order (fit loss - training loss now)", report.update_order, "weights changed during the epoch");
  row("training-phase loss now", report.training_loss);
  for (const auto& share : report.layers) row("  " + share.layer, share.contribution, share.behaviour);
  row("  interaction between layers", report.interaction);
  row("inference-phase loss (= evaluate)", report.inference_loss);
  out.unsetf(std::ios::floatfield);
  return out;
}

struct ExplainOptions {
  Index batch_size = 32;  ///< the batch size fit used: BatchNorm's batch statistics depend on it
};

namespace detail {

/// What a layer does differently in the training phase; empty if nothing.
template <class Scalar>
std::string training_behaviour(const Layer<Scalar>& layer) {
  if (const auto* bn = dynamic_cast<const BatchNorm<Scalar>*>(&layer)) {
    if (!bn->frozen()) return "batch statistics (trainable)";
    return bn->frozen_policy() == FrozenBatchNormPolicy::batch_statistics
               ? "batch statistics while frozen (legacy policy)"
               : "moving statistics (frozen): no gap";
  }
  if (const auto* dropout = dynamic_cast<const Dropout<Scalar>*>(&layer))
    return "drops " + std::to_string(static_cast<int>(std::lround(dropout->rate() * 100))) + "% of units";
  return "";
}

}  // namespace detail

template <class Scalar>
GapReport explain_gap(const Sequential<Scalar>& model, ConstMatrixRef<Scalar> x, ConstMatrixRef<Scalar> y,
                      const History* history = nullptr, const ExplainOptions& options = {}) {
  const std::size_t n = model.size();
  const auto loss_with = [&](const std::vector<Phase>& phases) {
    Sequential<Scalar> copy = model.clone();  // training-phase side effects land on the copy
    return static_cast<double>(copy.loss_in_phases(x, y, phases, options.batch_size));
  };
  GapReport report;
  report.inference_loss = loss_with(std::vector<Phase>(n, Phase::inference));
  report.training_loss = loss_with(std::vector<Phase>(n, Phase::training));
  double shares = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::string behaviour = detail::training_behaviour(model.layer(i));
    if (behaviour.empty()) continue;
    std::vector<Phase> phases(n, Phase::inference);
    phases[i] = Phase::training;
    const double contribution = loss_with(phases) - report.inference_loss;
    shares += contribution;
    report.layers.push_back({model.layer(i).name() + " (" + model.layer(i).type() + ")", behaviour, contribution});
  }
  report.interaction = report.phase_gap() - shares;
  if (history && history->contains("loss") && !history->loss().empty()) {
    report.fit_loss = history->loss().back();
    report.update_order = report.fit_loss - report.training_loss;
  }
  return report;
}

}  // namespace minidl
