// minidl — the names Sequential gives layers added without one, as Keras does.
#pragma once

#include <cctype>
#include <string>
#include <unordered_set>

namespace minidl::detail {

/// Keras's snake case of a type name, then "_1", "_2", ... until the name is
/// not in `taken`: "BatchNormalization" -> "batch_normalization",
/// "ReLU" -> "re_lu", "Conv2D" -> "conv2d", "MaxPooling2D" -> "max_pooling2d".
/// A '_' goes before an upper-case letter that follows a lower-case one, or
/// that starts a capitalized word ("Pooling") after any character. One lookup
/// per suffix tried: adding n unnamed layers costs O(n²) string work in all.
inline std::string unique_layer_name(const std::string& type, const std::unordered_set<std::string>& taken) {
  const auto upper = [](char c) { return std::isupper(static_cast<unsigned char>(c)) != 0; };
  const auto lower = [](char c) { return std::islower(static_cast<unsigned char>(c)) != 0; };
  std::string base;
  for (std::size_t i = 0; i < type.size(); ++i) {
    const bool starts_word = i > 0 && upper(type[i]) && i + 1 < type.size() && lower(type[i + 1]);
    if ((i > 0 && upper(type[i]) && lower(type[i - 1])) || starts_word) base += '_';
    base += static_cast<char>(std::tolower(static_cast<unsigned char>(type[i])));
  }
  std::string name = base;
  for (int suffix = 1; taken.count(name); ++suffix) name = base + "_" + std::to_string(suffix);
  return name;
}

}  // namespace minidl::detail
