// minidl — ModelCheckpoint: save the model, or its weights, at the end of
// epochs, as keras.callbacks.ModelCheckpoint (Keras 3, save_freq="epoch").
//
//   ModelCheckpointOptions options;  options.save_best_only = true;
//   fit_options.callbacks.push_back(std::make_shared<ModelCheckpoint<float>>("best.safetensors", options));
//
// At each epoch end (Keras 3's rule):
//   path = filepath with {epoch} (1-based) and {<log name>} filled in, Python
//          format specs allowed: "ckpt-{epoch:02d}-{val_loss:.3f}.safetensors";
//   save_best_only: if current beats best strictly (min: current < best, max:
//          current > best; a NaN never does), best = current and save;
//   otherwise: save every epoch.
// save_weights_only picks save_weights over save_model (io/weights.hpp,
// io/model.hpp); each file is written atomically, so an interrupted run leaves
// the previous checkpoint intact. The parent directory is created if missing
// (as Keras 3). `best` is kept across fits of the same callback, as Keras 3.
// Mode `automatic` is Keras's rule for this callback: max if the monitor
// contains "acc" or starts with "fmeasure", else min.
// Differences from Keras: files are safetensors (any extension; Keras 3 wants
// .keras or .weights.h5) and a full model file holds no optimizer state (see
// io/model.hpp); with save_best_only a monitor that fit does not report is a
// ValueError when fit starts (Keras warns at every epoch and never saves), as
// is a model save_model cannot describe or a {name} fit does not report; a
// {name} without a format spec prints a value as %g (Python prints repr()).
// An epoch whose logs lack a value the save needs (val_* in an epoch that fit's
// validation_freq does not validate) saves nothing and says so (Keras warns
// about the monitor, and fails to format a filepath).
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <optional>
#include <ostream>
#include <string>
#include <type_traits>
#include <vector>

#include "../callbacks/callback.hpp"
#include "../callbacks/monitor.hpp"
#include "model.hpp"

namespace minidl {

struct ModelCheckpointOptions {
  std::string monitor = "val_loss";             ///< a name in fit's logs (used with save_best_only)
  MonitorMode mode = MonitorMode::automatic;
  bool save_best_only = false;                  ///< save only when the monitored value improves
  bool save_weights_only = false;               ///< save_weights instead of save_model
  std::optional<double> initial_value_threshold{};  ///< the best value to beat at first (Keras 3)
  std::ostream* out = nullptr;                  ///< Keras's verbose=1 messages go here; null: silent
};

template <class Scalar>
class ModelCheckpoint : public Callback<Scalar> {
 public:
  /// Throws ValueError for a malformed filepath template.
  explicit ModelCheckpoint(std::string filepath, ModelCheckpointOptions options = {})
      : filepath_(std::move(filepath)), options_(std::move(options)) {
    if (filepath_.empty()) throw ValueError("ModelCheckpoint: filepath is empty");
    fields_ = parse(filepath_);
    minimize_ = options_.mode == MonitorMode::automatic
                    ? !(options_.monitor.find("acc") != std::string::npos || options_.monitor.rfind("fmeasure", 0) == 0)
                    : options_.mode == MonitorMode::min;
    best_ = options_.initial_value_threshold.value_or(minimize_ ? std::numeric_limits<double>::infinity()
                                                                : -std::numeric_limits<double>::infinity());
  }

  /// Checks, before any weight changes, everything a save at an epoch's end needs.
  void on_train_begin(Sequential<Scalar>& model, const std::vector<std::string>& log_names) override {
    if (options_.save_best_only) detail::check_monitored("ModelCheckpoint", options_.monitor, log_names);
    for (const Field& f : fields_) {
      if (f.name == "epoch" || f.name.empty()) continue;
      detail::check_monitored("ModelCheckpoint: filepath", f.name, log_names);
      if (!f.spec.empty() && f.spec.back() == 'd')
        throw ValueError(detail::message("ModelCheckpoint: filepath field '{", f.name, ":", f.spec,
                                         "}' formats a real value as an integer"));
    }
    detail::minidl_bindings(model, "ModelCheckpoint");  // layer names unique
    if (!options_.save_weights_only)
      for (std::size_t i = 0; i < model.size(); ++i) detail::layer_json(model.layer(i), i);
    if (this->main_replica()) check_directory();
  }

  void on_epoch_end(Sequential<Scalar>& model, int epoch, const Logs& logs) override {
    if (!this->main_replica()) return;  // replica 0 of a data-parallel fit saves (and prints)
    if (const std::string* missing = missing_value(logs)) {  // an epoch that did not validate (validation_freq)
      if (options_.out)
        *options_.out << "\nEpoch " << epoch + 1 << ": no " << *missing << " in this epoch's logs, not saving\n";
      return;
    }
    const std::string path = file_path(epoch, logs);
    if (options_.save_best_only) {
      const double current = logs[options_.monitor];
      if (!(minimize_ ? current < best_ : current > best_)) {
        if (options_.out)
          *options_.out << "\nEpoch " << epoch + 1 << ": " << options_.monitor << " did not improve from "
                        << number(".5f", best_) << "\n";
        return;
      }
      if (options_.out)
        *options_.out << "\nEpoch " << epoch + 1 << ": " << options_.monitor << " improved from "
                      << number(".5f", best_) << " to " << number(".5f", current) << ", saving model to " << path
                      << "\n";
      best_ = current;
    } else if (options_.out) {
      *options_.out << "\nEpoch " << epoch + 1 << ": saving model to " << path << "\n";
    }
    const auto directory = std::filesystem::path(path).parent_path();
    std::error_code error;
    if (!directory.empty() && !std::filesystem::create_directories(directory, error) && error)
      throw IOError("ModelCheckpoint: cannot create the directory '" + directory.string() + "': " + error.message());
    if (options_.save_weights_only) save_weights(model, path);
    else save_model(model, path);
    last_path_ = path;
  }

  /// The best monitored value so far (±inf, or initial_value_threshold, before the first save).
  double best() const { return best_; }
  bool minimizes() const { return minimize_; }
  /// The file the last save wrote; empty before the first.
  const std::string& last_path() const { return last_path_; }
  /// The file path of epoch `epoch` (0-based) with these logs.
  /// The first value this epoch's save needs (the monitor with save_best_only,
  /// the filepath's fields) that `logs` lacks, or null.
  const std::string* missing_value(const Logs& logs) const {
    if (options_.save_best_only && !logs.contains(options_.monitor)) return &options_.monitor;
    for (const Field& f : fields_)
      if (f.name != "epoch" && !f.name.empty() && !logs.contains(f.name)) return &f.name;
    return nullptr;
  }

  std::string file_path(int epoch, const Logs& logs) const {
    std::string out;
    for (const Field& f : fields_) {
      if (f.name.empty()) out += f.spec;  // literal text
      else if (f.name == "epoch") out += number(f.spec.empty() ? "d" : f.spec, epoch + 1);
      else out += number(f.spec.empty() ? "g" : f.spec, logs[f.name]);
    }
    return out;
  }

 private:
  /// A piece of the filepath: literal text (empty name, text in spec) or a
  /// {name:spec} field.
  struct Field {
    std::string name, spec;
  };

  // The directory that every file path lies in (the part of filepath before
  // its first {field}) must be a directory, or creatable, and writable: an
  // IOError when fit starts rather than after the first epoch's training.
  void check_directory() const {
    std::string fixed;
    for (const Field& f : fields_) {
      if (!f.name.empty()) break;
      fixed += f.spec;
    }
    namespace fs = std::filesystem;
    std::error_code error;
    fs::path existing = fs::path(fixed + "x").parent_path();  // "ckpt/run-" -> "ckpt"
    if (existing.empty()) existing = ".";
    while (!fs::exists(existing, error) && existing.has_parent_path() && existing != existing.parent_path())
      existing = existing.parent_path();
    if (!fs::exists(existing, error)) existing = ".";  // a relative path whose first part is missing
    if (!fs::is_directory(existing, error))
      throw IOError("ModelCheckpoint: cannot save to '" + filepath_ + "': '" + existing.string() +
                    "' is not a directory");
    if (::access(existing.c_str(), W_OK | X_OK) != 0)
      throw IOError("ModelCheckpoint: cannot save to '" + filepath_ + "': directory '" + existing.string() +
                    "' is not writable: " + std::strerror(errno));
  }

  // Python's str.format subset: "{{" and "}}" escape braces; a field is
  // {name} or {name:spec} with spec [0][width][.precision][type], type one of d f e g.
  static std::vector<Field> parse(const std::string& text) {
    std::vector<Field> fields;
    const auto fail = [&](const std::string& problem) {
      throw ValueError("ModelCheckpoint: filepath '" + text + "': " + problem);
    };
    std::string literal;
    for (std::size_t i = 0; i < text.size(); ++i) {
      const char c = text[i];
      if ((c == '{' || c == '}') && i + 1 < text.size() && text[i + 1] == c) {
        literal += c;
        ++i;
      } else if (c == '}') {
        fail("a single '}' (write '}}' for a brace)");
      } else if (c == '{') {
        const std::size_t close = text.find('}', i);
        if (close == std::string::npos) fail("a '{' without its '}'");
        const std::string field = text.substr(i + 1, close - i - 1);
        const std::size_t colon = field.find(':');
        Field f{field.substr(0, colon), colon == std::string::npos ? "" : field.substr(colon + 1)};
        const std::size_t type = f.spec.find_first_not_of("0123456789.");  // the type letter, last if any
        if (f.name.empty() || f.name.find('{') != std::string::npos)
          fail("an empty or malformed field '{" + field + "}'");
        if ((colon != std::string::npos && f.spec.empty()) ||
            (type != std::string::npos &&
             (type + 1 != f.spec.size() || std::string("dfeg").find(f.spec[type]) == std::string::npos)))
          fail("format spec '" + f.spec + "' of '{" + field + "}' is not [0][width][.precision][d|f|e|g]");
        if (f.name == "epoch" && type != std::string::npos && f.spec.back() != 'd')
          fail("{epoch} is an integer: its spec must end in 'd' or have no type");
        if (!literal.empty()) fields.push_back({"", literal});
        literal.clear();
        fields.push_back(f);
        i = close;
      } else {
        literal += c;
      }
    }
    if (!literal.empty()) fields.push_back({"", literal});
    return fields;
  }

  /// printf("%<spec>") of value; a spec without a type gets `d` for integers, `g` for reals.
  template <class T>
  static std::string number(std::string spec, T value) {
    const bool integer = std::is_integral_v<T>;
    if (spec.empty() || std::string("dfeg").find(spec.back()) == std::string::npos) spec += integer ? "d" : "g";
    if (integer != (spec.back() == 'd'))
      throw ValueError("ModelCheckpoint: format spec '" + spec + (integer ? "' formats an integer as a real"
                                                                          : "' formats a real value as an integer"));
    char buffer[128];
    const std::string format = "%" + spec;
    const int n = integer ? std::snprintf(buffer, sizeof buffer, format.c_str(), static_cast<int>(value))
                          : std::snprintf(buffer, sizeof buffer, format.c_str(), static_cast<double>(value));
    return std::string(buffer, static_cast<std::size_t>(std::max(0, std::min(n, int(sizeof buffer) - 1))));
  }

  std::string filepath_;
  ModelCheckpointOptions options_;
  std::vector<Field> fields_;
  bool minimize_ = true;
  double best_ = 0;
  std::string last_path_;
};

}  // namespace minidl
