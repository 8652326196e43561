// minidl — Sequential::summary(): the Keras-like table of a model's layers.
#pragma once

#include <iomanip>
#include <ostream>
#include <string>
#include <vector>

#include "../sequential.hpp"

namespace minidl {

template <class Scalar>
void Sequential<Scalar>::summary(std::ostream& out) const {
  const auto grouped = [](Index n) {  // 101000 -> "101,000"
    std::string digits = std::to_string(n), text;
    for (std::size_t i = 0; i < digits.size(); ++i) {
      if (i > 0 && (digits.size() - i) % 3 == 0) text += ',';
      text += digits[i];
    }
    return text;
  };
  std::vector<std::string> names;
  std::size_t name_width = 28;  // the first column fits the longest "name (Type)"
  for (const auto& l : layers_) {
    names.push_back(l->name() + " (" + l->type() + ")");
    name_width = std::max(name_width, names.back().size() + 2);
  }
  const int first = static_cast<int>(name_width);
  const auto rule = [&](char c) { out << std::string(name_width + 48, c) << '\n'; };
  out << "Model: \"sequential\"\n";
  rule('_');
  out << std::left << ' ' << std::setw(first) << "Layer (type)" << std::setw(22) << "Output Shape" << std::setw(14)
      << "Param #" << "Frozen\n";
  rule('=');
  Index total = 0, trainable = 0;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    const Layer<Scalar>& l = *layers_[i];
    const Index params = l.parameter_count() + l.state_count();
    total += params;
    if (!l.frozen()) trainable += l.parameter_count();
    out << ' ' << std::setw(first) << names[i] << std::setw(22) << l.output_shape().str() << std::setw(14)
        << grouped(params) << (l.frozen() ? "yes" : "no")
        << (l.inference_pinned() ? ", pinned to inference" : "") << '\n';
    if (i + 1 < layers_.size()) out << '\n';
  }
  rule('=');
  out << "Total params: " << grouped(total) << '\n'
      << "Trainable params: " << grouped(trainable) << '\n'
      << "Non-trainable params: " << grouped(total - trainable) << " (frozen weights and moving statistics)\n";
  rule('_');
  out << std::right;
}

}  // namespace minidl
