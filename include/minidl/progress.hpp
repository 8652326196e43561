// minidl — Keras-style progress output for fit.
//
//   Epoch 1/5
//   32/32 [==============================] - 0s 11ms/step - loss: 2.5571 - val_loss: 2.6012
//
// verbose 1: a bar per epoch, redrawn with '\r' while the epoch runs when the
// stream is a terminal; on anything else (a CI log, a file) only the finished
// line is printed, as Keras does, so logs are not filled with redraws.
// verbose 2: one line per epoch without the bar ("188/188 - 1s 7ms/step - loss: ...").
// verbose 0: nothing.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <ostream>
#include <string>

#if defined(_WIN32)
#include <io.h>
#define MINIDL_ISATTY(fd) _isatty(fd)
#else
#include <unistd.h>
#define MINIDL_ISATTY(fd) isatty(fd)
#endif

#include "history.hpp"
#include "tensor.hpp"

namespace minidl {

/// True if `out` is std::cout or std::cerr/clog and that descriptor is a terminal.
inline bool is_terminal(const std::ostream& out) {
  if (&out == &std::cout) return MINIDL_ISATTY(1) != 0;
  if (&out == &std::cerr || &out == &std::clog) return MINIDL_ISATTY(2) != 0;
  return false;
}

/// Keras's number format (its Progbar): %.4f when |v| > 1e-3, else %.4e (so
/// 0.001 prints as 1.0000e-03, and 0 as 0.0000e+00). Keras's verbose-2 line
/// tests v > 1e-3, without the absolute value (a negative value is in
/// e-notation there): `signed_test` does the same.
inline std::string format_metric(double value, bool signed_test = false) {
  char text[32];
  std::snprintf(text, sizeof text, (signed_test ? value : std::abs(value)) > 1e-3 ? "%.4f" : "%.4e", value);
  return text;
}

class ProgressBar {
 public:
  ProgressBar(std::ostream& out, int verbose, bool live) : out_(out), verbose_(verbose), live_(live) {}

  void begin_epoch(int epoch, int epochs, Index steps) {
    steps_ = steps;
    done_ = 0;
    start_ = last_draw_ = Clock::now();
    if (verbose_ >= 1) out_ << "Epoch " << epoch + 1 << '/' << epochs << '\n';
  }

  /// After `step` of `steps` batches; redraws at most every 50 ms (live only).
  void update(Index step, const Logs& logs) {
    done_ = step;
    if (verbose_ != 1 || !live_) return;
    const auto now = Clock::now();
    if (step < steps_ && now - last_draw_ < std::chrono::milliseconds(50)) return;
    last_draw_ = now;
    out_ << '\r' << line(step, logs, /*finished=*/false) << std::flush;
  }

  /// The epoch's last line, at the last batch update() saw: an epoch that
  /// training stopped early shows how far it got ("3/8 [=======>...").
  void end_epoch(const Logs& logs) {
    if (verbose_ == 0) return;
    if (live_ && verbose_ == 1) out_ << '\r';
    out_ << line(done_, logs, /*finished=*/done_ == steps_) << std::endl;
  }

 private:
  using Clock = std::chrono::steady_clock;

  std::string line(Index step, const Logs& logs, bool finished) const {
    std::string text = std::to_string(step) + '/' + std::to_string(steps_);
    if (verbose_ == 1) {
      const int width = 30;
      const int filled = steps_ > 0 ? static_cast<int>(width * step / steps_) : width;
      text += " [";
      for (int i = 0; i < width; ++i)
        text += i < filled ? '=' : (i == filled && !finished ? '>' : '.');
      text += ']';
    }
    text += " - ";
    const double seconds = std::chrono::duration<double>(Clock::now() - start_).count();
    const double per_step = step > 0 ? seconds / static_cast<double>(step) : 0.0;
    char timing[64];
    if (per_step >= 1)
      std::snprintf(timing, sizeof timing, "%.0fs %.0fs/step", seconds, per_step);
    else if (per_step >= 1e-3)
      std::snprintf(timing, sizeof timing, "%.0fs %.0fms/step", seconds, per_step * 1e3);
    else
      std::snprintf(timing, sizeof timing, "%.0fs %.0fus/step", seconds, per_step * 1e6);
    text += timing;
    for (const auto& [name, value] : logs.entries()) text += " - " + name + ": " + format_metric(value, verbose_ == 2);
    return text;
  }

  std::ostream& out_;
  int verbose_;
  bool live_;
  Index steps_ = 0, done_ = 0;
  Clock::time_point start_, last_draw_;
};

}  // namespace minidl
