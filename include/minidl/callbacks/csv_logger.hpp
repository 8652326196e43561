// minidl — CSVLogger: one CSV row per epoch, as keras.callbacks.CSVLogger.
//
//   epoch,loss,mae,val_loss,val_mae
//   0,0.51234,0.60087,0.4312,0.5521
//   1,...
//
// The file is opened (truncated, or appended to with append = true) when fit
// starts, the header is written with the first row, and every row is flushed
// at its epoch's end, so a crash keeps the rows written so far. With append,
// the header is written only if the file was empty or missing (Keras's rule).
// Epochs are 0-based, as Keras writes them. Values are the shortest text that
// reads back as the same double (as Python's repr, which Keras writes), so a
// parsed file equals History bit for bit; NaN and Inf are "nan", "inf".
// The columns are the first epoch's values, then any value fit reports that
// the first epoch lacked (val_* when fit's validation_freq skips epoch 1); an
// epoch without a column's value writes "NA" there, as Keras.
// Difference from Keras: the columns follow History's order (loss, metrics,
// then val_ values), where Keras sorts the names alphabetically.
#pragma once

#include <charconv>
#include <fstream>
#include <string>
#include <vector>

#include "callback.hpp"

namespace minidl {

template <class Scalar>
class CSVLogger : public Callback<Scalar> {
 public:
  explicit CSVLogger(std::string filename, std::string separator = ",", bool append = false)
      : filename_(std::move(filename)), separator_(std::move(separator)), append_(append) {
    if (filename_.empty()) throw ValueError("CSVLogger: filename must not be empty");
    if (separator_.empty()) throw ValueError("CSVLogger: separator must not be empty");
  }

  void on_train_begin(Sequential<Scalar>& model, const std::vector<std::string>& log_names) override {
    (void)model;
    if (!this->main_replica()) return;  // replica 0 of a data-parallel fit writes the file
    log_names_ = log_names;
    columns_.clear();
    write_header_ = true;
    if (append_) {
      std::ifstream existing(filename_);
      std::string first_line;
      if (existing && std::getline(existing, first_line) && !first_line.empty()) write_header_ = false;
    }
    file_.close();
    file_.clear();
    file_.open(filename_, append_ ? std::ios::app : std::ios::trunc);
    if (!file_) throw IOError(detail::message("CSVLogger: cannot open '", filename_, "' for writing"));
  }

  void on_epoch_end(Sequential<Scalar>& model, int epoch, const Logs& logs) override {
    (void)model;
    if (!this->main_replica()) return;
    if (!file_.is_open()) throw StateError("CSVLogger: on_epoch_end before on_train_begin (the file is not open)");
    if (columns_.empty()) {
      for (const auto& entry : logs.entries()) columns_.push_back(entry.first);
      for (const auto& name : log_names_)
        if (!logs.contains(name)) columns_.push_back(name);
    }
    if (write_header_) {
      file_ << "epoch";
      for (const auto& column : columns_) file_ << separator_ << column;
      file_ << '\n';
      write_header_ = false;
    }
    file_ << epoch;
    for (const auto& column : columns_) file_ << separator_ << (logs.contains(column) ? format(logs[column]) : "NA");
    file_ << '\n';
    file_.flush();
    if (!file_) throw IOError(detail::message("CSVLogger: writing to '", filename_, "' failed"));
  }

  void on_train_end(Sequential<Scalar>& model, const Logs& logs) override {
    (void)model, (void)logs;
    file_.close();
  }

  const std::string& filename() const { return filename_; }

  /// The shortest text that reads back (strtod) as exactly `value`.
  static std::string format(double value) {
    char text[32];
    const auto result = std::to_chars(text, text + sizeof text, value);
    return std::string(text, result.ptr);
  }

 private:
  std::string filename_, separator_;
  bool append_;
  bool write_header_ = true;
  std::vector<std::string> log_names_;  // what fit said it reports
  std::vector<std::string> columns_;    // fixed by the first row
  std::ofstream file_;
};

}  // namespace minidl
