// minidl — what EarlyStopping and ReduceLROnPlateau share: the direction of a
// monitored value and the check that fit reports it.
#pragma once

#include <string>
#include <vector>

#include "../error.hpp"

namespace minidl {

/// Whether a monitored value should go down (min) or up (max); `automatic`
/// infers it from the name, each callback by Keras's rule for it.
enum class MonitorMode { automatic, min, max };

namespace detail {

/// Throws ValueError unless `monitor` is one of the names fit will report.
/// Keras only warns (and the callback then never acts, silently): a typo or a
/// missing validation_data is far more likely than an intent, so minidl
/// refuses before the first epoch, while the model is still unchanged.
inline void check_monitored(const char* callback, const std::string& monitor, const std::vector<std::string>& names) {
  for (const auto& name : names)
    if (name == monitor) return;
  std::string available;
  for (const auto& name : names) available += (available.empty() ? "" : ", ") + name;
  throw ValueError(message(callback, ": monitor '", monitor, "' is not among the values fit reports (", available, ")",
                           monitor.rfind("val_", 0) == 0 ? "; val_ values need fit's validation_data" : ""));
}

}  // namespace detail
}  // namespace minidl
