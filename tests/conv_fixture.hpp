// The reader of tests/data/conv_torch.txt (written by
// scripts/make_conv_fixture.py; its header documents the format), shared by
// test_conv2d.cpp and test_pooling.cpp, and the error measure they compare with.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>
#include <map>
#include <minidl/layers/window2d.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "support.hpp"

#ifndef MINIDL_TEST_DATA_DIR
#error "MINIDL_TEST_DATA_DIR must name the tests/data directory"
#endif

namespace minidl::test {

/// One case of the fixture: the layer it is for, its options and matrices.
struct ConvCase {
  std::string layer, name;
  std::map<std::string, std::string> options;
  std::map<std::string, Matrix<double>> values;

  bool has(const std::string& key) const { return values.count(key) > 0; }
  const Matrix<double>& at(const std::string& key) const {
    const auto it = values.find(key);
    if (it == values.end()) throw std::runtime_error("fixture case " + name + " has no " + key);
    return it->second;
  }
  const std::string& option(const std::string& key) const {
    const auto it = options.find(key);
    if (it == options.end()) throw std::runtime_error("fixture case " + name + " has no option " + key);
    return it->second;
  }
  Padding padding() const { return option("padding") == "same" ? Padding::same : Padding::valid; }
  /// A 1 x 2 matrix as {height, width}.
  std::array<Index, 2> pair(const std::string& key) const {
    const Matrix<double>& m = at(key);
    return {static_cast<Index>(m(0, 0)), static_cast<Index>(m(0, 1))};
  }
  Shape input_shape() const {
    const Matrix<double>& m = at("input_shape");
    return Shape{static_cast<Index>(m(0, 0)), static_cast<Index>(m(0, 1)), static_cast<Index>(m(0, 2))};
  }
};

/// The cases of conv_torch.txt for `layer` ("Conv2D", "MaxPooling2D", ...).
inline std::vector<ConvCase> read_conv_fixture(const std::string& layer) {
  const std::string path = std::string(MINIDL_TEST_DATA_DIR) + "/conv_torch.txt";
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::vector<ConvCase> cases;
  ConvCase current;
  bool open = false;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string key;
    fields >> key;
    if (key == "case") {
      if (open) throw std::runtime_error("fixture case " + current.name + " has no 'end'");
      current = ConvCase{};
      fields >> current.layer >> current.name;
      open = true;
    } else if (!open) {
      throw std::runtime_error("fixture line outside a case: " + line.substr(0, 60));
    } else if (key == "end") {
      if (current.layer == layer) cases.push_back(current);
      open = false;
    } else if (key == "option") {
      std::string name, word;
      if (!(fields >> name >> word)) throw std::runtime_error("bad fixture option: " + line);
      current.options[name] = word;
    } else {
      current.values[key] = read_fixture_matrix(fields, key);
    }
  }
  if (open) throw std::runtime_error("fixture ends inside case " + current.name);
  return cases;
}

/// Rounding budget of sums of a few dozen O(1) products.
template <class Scalar>
double conv_tolerance() {
  return tolerance<Scalar>(2e-5, 1e-12);
}

}  // namespace minidl::test
