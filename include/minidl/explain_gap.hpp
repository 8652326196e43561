// minidl — explain_gap: why does evaluate's loss differ from fit's on the same data?
//
//   evaluate − fit's loss = update order + Σ per-layer shares
//
// measured on deep copies of the model (the model itself is never changed):
//   fit's loss       the History's last epoch: the mean of the training-phase
//                    losses computed *before* each batch's update;
//   training loss    the loss now, all layers in the training phase, no update;
//   inference loss   all layers in the inference phase: what evaluate returns;
//   update order     training loss − fit's loss: the weights changed during the epoch;
//   layer shares     inference loss − training loss, split among the layers that
//                    behave differently in the two phases (Dropout, BatchNorm
//                    using batch statistics) by their Shapley values: the
//                    average, over every order of switching those layers from
//                    the training to the inference phase, of the change that
//                    switching that layer makes. The shares add up exactly, and
//                    a layer's share does not depend on where it sits. Exact
//                    for up to 8 such layers (2^8 evaluations); beyond that
//                    the layers are switched once, in layer order.
// Regularizers (regularizers.hpp) add the same weight penalties to every one
// of these losses, fit's own included, so they cancel in the layer shares;
// how much those penalties changed during the epoch is part of update order.
// Activity penalties follow their layer's output, hence its phase: what they
// change between the phases is inside the layer shares. The report states both.
// The layers are asked, not looked up by type (Layer::phase_behaviour,
// phases_differ): a user's layer whose phases differ gets its share too. A
// frozen BatchNorm with the moving-statistics policy computes the same
// function in both phases, and so does any layer pinned to the inference
// phase: each is listed, with the reason, and a share of exactly 0.
//
// The training-phase losses use batches in data order (fit shuffles, so batch
// statistics differ slightly from fit's) of fit's batch size: the one the
// History records, unless ExplainOptions::batch_size says otherwise (32, and
// a note under the table, when neither is given); and one draw of
// each Dropout mask — the same draw in every evaluation, from a copy of the
// layer's generator.
#pragma once

#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "sequential.hpp"

namespace minidl {

struct GapShare {
  std::string layer;   ///< "batch_normalization (BatchNormalization)"
  std::string reason;  ///< what the layer does differently in the training phase
  double share = 0;    ///< this layer's part of inference loss − training loss
};

struct GapReport {
  double fit_loss = std::numeric_limits<double>::quiet_NaN();      ///< History's last epoch loss, if given
  double training_loss = 0;                                        ///< all layers in the training phase
  double inference_loss = 0;                                       ///< all layers in the inference phase (= evaluate)
  double update_order = std::numeric_limits<double>::quiet_NaN();  ///< training_loss − fit_loss
  std::vector<GapShare> layers;
  /// The weight penalties of the model now (Sequential::regularization_loss()),
  /// part of the training- and the inference-phase loss alike.
  double weight_penalties = 0;
  /// The layers with an activity regularizer ("dense (Dense)"), whose penalty is in each phase's loss.
  std::vector<std::string> activity_regularized;
  Index batch_size = 0;         ///< the batch size of the training-phase losses
  std::string batch_size_from;  ///< where it came from: "ExplainOptions", "History" or "default"

  /// inference − training: the part of the gap the layers' two phases make.
  double phase_gap() const { return inference_loss - training_loss; }
};

inline std::ostream& operator<<(std::ostream& out, const GapReport& report) {
  char line[256];
  const auto row = [&](const char* sign, const std::string& what, double value, const std::string& note) {
    std::snprintf(line, sizeof line, "  %s %-44s %12.4f", sign, what.c_str(), value);
    out << line << (note.empty() ? "" : "  ") << note << '\n';
  };
  const bool with_fit = !std::isnan(report.fit_loss);
  if (with_fit) {
    row(" ", "fit's loss", report.fit_loss, "mean of the batch losses before each update");
    row("+", "update order", report.update_order, "weights changed during the epoch");
  }
  row(with_fit ? "=" : " ", "training-phase loss now", report.training_loss, "");
  for (const auto& share : report.layers) row("+", share.layer, share.share, share.reason);
  row("=", "inference-phase loss (evaluate)", report.inference_loss, "");
  if (report.weight_penalties != 0 || !report.activity_regularized.empty()) {
    out << "  (every loss above includes the regularizers' penalties: weight penalties " << report.weight_penalties
        << " now, the same in both phases";
    if (!report.activity_regularized.empty()) {
      out << "; activity penalties of";
      for (const auto& layer : report.activity_regularized) out << ' ' << layer;
      out << ", which follow their phase and are within the shares";
    }
    out << ")\n";
  }
  if (report.batch_size_from == "default")
    out << "  (training phase in batches of " << report.batch_size
        << ", the default: pass fit's History or ExplainOptions::batch_size)\n";
  return out;
}

struct ExplainOptions {
  /// The batch size fit used (BatchNorm's batch statistics depend on it);
  /// unset: the one the History records, else 32.
  std::optional<Index> batch_size{};
};

namespace detail {

/// Blocks template deduction, so that a Matrix converts to the Ref parameter.
template <class T>
struct NonDeducedHelper {
  using type = T;
};
template <class T>
using NonDeduced = typename NonDeducedHelper<T>::type;

/// What a layer does differently in the training phase (empty if its phases
/// never differ) and whether its two phases differ now.
template <class Scalar>
std::string training_behaviour(const Layer<Scalar>& layer, bool& differs) {
  differs = layer.phases_differ();
  const std::string behaviour = layer.phase_behaviour();
  if (behaviour.empty() || !layer.inference_pinned()) return behaviour;
  return "pinned to the inference phase (unpinned: " + behaviour + ")";
}

}  // namespace detail

template <class Scalar>
GapReport explain_gap(const Sequential<Scalar>& model, detail::NonDeduced<ConstMatrixRef<Scalar>> x,
                      detail::NonDeduced<ConstMatrixRef<Scalar>> y, const History* history = nullptr,
                      const ExplainOptions& options = {}) {
  GapReport report;
  if (options.batch_size) {
    report.batch_size = *options.batch_size;
    report.batch_size_from = "ExplainOptions";
  } else if (history && history->params()) {
    report.batch_size = history->params()->batch_size;
    report.batch_size_from = "History";
  } else {
    report.batch_size = 32;
    report.batch_size_from = "default";
  }
  if (report.batch_size <= 0)
    throw ValueError(detail::message("explain_gap: batch_size must be > 0, got ", report.batch_size));
  const auto label = [&](std::size_t i) { return model.layer(i).name() + " (" + model.layer(i).type() + ")"; };
  std::vector<std::size_t> switching;  // layers whose two phases differ
  std::vector<std::size_t> row_of;     // their rows in report.layers
  for (std::size_t i = 0; i < model.size(); ++i) {
    bool differs = false;
    std::string reason = detail::training_behaviour(model.layer(i), differs);
    if (reason.empty()) continue;
    if (differs) {
      switching.push_back(i);
      row_of.push_back(report.layers.size());
    }
    report.layers.push_back({label(i), reason, 0.0});
  }
  report.weight_penalties = static_cast<double>(model.regularization_loss());
  for (std::size_t i = 0; i < model.size(); ++i)
    if (model.layer(i).activity_regularizer()) report.activity_regularized.push_back(label(i));

  // loss(switched): layers switching[j] with switched(j) true run in the
  // inference phase, every other layer in the training phase (phases only
  // matter for the former).
  const std::size_t k = switching.size();
  const auto loss = [&](auto switched) {
    std::vector<Phase> phases(model.size(), Phase::training);
    for (std::size_t j = 0; j < k; ++j)
      if (switched(j)) phases[switching[j]] = Phase::inference;
    Sequential<Scalar> copy = model.clone();  // training-phase side effects land on the copy
    return static_cast<double>(copy.loss_in_phases(x, y, phases, report.batch_size));
  };

  if (k <= 8) {  // coalitions as bit masks of k <= 8 bits
    std::vector<double> value(std::size_t{1} << k);
    for (std::size_t mask = 0; mask < value.size(); ++mask)
      value[mask] = loss([mask](std::size_t j) { return (mask >> j & 1) != 0; });
    // Shapley weight of a coalition of size s not containing j: s!(k-s-1)!/k!.
    std::vector<double> factorial(k + 1, 1.0);
    for (std::size_t i = 1; i <= k; ++i) factorial[i] = factorial[i - 1] * static_cast<double>(i);
    for (std::size_t j = 0; j < k; ++j) {
      double share = 0;
      for (std::size_t mask = 0; mask < value.size(); ++mask) {
        if (mask >> j & 1) continue;
        std::size_t s = 0;
        for (std::size_t b = 0; b < k; ++b) s += mask >> b & 1;
        share += factorial[s] * factorial[k - s - 1] / factorial[k] * (value[mask | std::size_t{1} << j] - value[mask]);
      }
      report.layers[row_of[j]].share = share;
    }
    report.training_loss = value.front();
    report.inference_loss = value.back();
  } else {  // layers 0..j switched, one more at a time: any number of layers
    double previous = report.training_loss = loss([](std::size_t) { return false; });
    for (std::size_t j = 0; j < k; ++j) {
      const double current = loss([j](std::size_t b) { return b <= j; });
      report.layers[row_of[j]].share = current - previous;
      previous = current;
    }
    report.inference_loss = previous;
  }

  if (history && history->contains("loss") && !history->loss().empty()) {
    report.fit_loss = history->loss().back();
    report.update_order = report.training_loss - report.fit_loss;
  }
  return report;
}

}  // namespace minidl
