// minidl — what fit reports: Logs (one set of named values) and History
// (one value per epoch per name), as Keras's `logs` dict and `History.history`.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "error.hpp"
#include "tensor.hpp"

namespace minidl {

/// Named values ("loss", "accuracy", "val_loss", ...) in insertion order.
/// Values are updated in place, so a training loop that sets the same names
/// every batch does not allocate after the first.
class Logs {
 public:
  void set(std::string_view name, double value) {
    for (auto& entry : entries_)
      if (entry.first == name) {
        entry.second = value;
        return;
      }
    entries_.emplace_back(std::string(name), value);
  }
  bool contains(std::string_view name) const {
    for (const auto& entry : entries_)
      if (entry.first == name) return true;
    return false;
  }
  double operator[](std::string_view name) const {
    for (const auto& entry : entries_)
      if (entry.first == name) return entry.second;
    throw ValueError(detail::message("Logs: no value named '", name, "'"));
  }
  const std::vector<std::pair<std::string, double>>& entries() const { return entries_; }
  void clear() { entries_.clear(); }

 private:
  std::vector<std::pair<std::string, double>> entries_;
};

/// What fit was asked to do, as Keras's `history.params` (epochs, steps,
/// verbose), with the batch size and the number of training samples.
struct FitParams {
  int epochs = 0;
  Index steps = 0;  ///< batches per epoch
  Index batch_size = 0;
  Index samples = 0;
  int verbose = 0;
};

/// Per-epoch values of every name fit reported: history["loss"][epoch].
class History {
 public:
  /// fit's parameters; unset for a History that fit did not make.
  const std::optional<FitParams>& params() const { return params_; }
  void set_params(const FitParams& params) { params_ = params; }

  void append(const Logs& logs) {
    for (const auto& [name, value] : logs.entries()) {
      auto [it, inserted] = values_.try_emplace(name);
      if (inserted) names_.push_back(name);
      it->second.push_back(value);
    }
  }
  const std::vector<double>& operator[](const std::string& name) const {
    auto it = values_.find(name);
    if (it == values_.end()) throw ValueError(detail::message("History: no values named '", name, "'"));
    return it->second;
  }
  bool contains(const std::string& name) const { return values_.count(name) != 0; }
  const std::vector<double>& loss() const { return (*this)["loss"]; }
  const std::vector<double>& val_loss() const { return (*this)["val_loss"]; }
  /// Names in the order fit reported them.
  const std::vector<std::string>& names() const { return names_; }
  std::size_t epochs() const { return names_.empty() ? 0 : values_.at(names_.front()).size(); }

 private:
  std::vector<std::string> names_;
  std::map<std::string, std::vector<double>> values_;
  std::optional<FitParams> params_;
};

}  // namespace minidl
