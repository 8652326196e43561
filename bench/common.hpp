// minidl benchmarks — what every benchmark program shares: the command line,
// the clock, peak memory and the one JSON result line.
//
// Each program runs one workload for one implementation and prints exactly one
// line of JSON on stdout (progress, if any, goes to stderr), so that
// bench/run_suite.py can repeat it and collect the figures.
#pragma once

#include <sys/resource.h>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace bench {

/// The command line every benchmark program takes.
struct Options {
  int steps = -1;    ///< A: timed steps; B: train on this many batches only (-1: the default)
  int epochs = -1;   ///< workload B: training epochs (-1: the program's default)
  int threads = 1;   ///< worker threads for the products
  bool smoke = false;  ///< a few steps on a little data: checks that the program runs, measures nothing
  int samples = -1;    ///< workload D: training images (-1: the default)
  bool cache = true;   ///< workload D: fit caches the frozen prefix (--cache on) or runs it every batch (off)
  std::string data = "/usr/share/datasets/fashion-mnist";  ///< Fashion-MNIST folder (workload B)
};

[[noreturn]] inline void usage(const char* program, const std::string& problem) {
  std::cerr << program << ": " << problem << "\n"
            << "usage: " << program
            << " [--steps N] [--epochs N] [--threads N] [--samples N] [--cache on|off] [--smoke]"
            << " [--data DIR]\n";
  std::exit(2);
}

inline int positive_int(const char* program, const char* flag, const char* text) {
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || value <= 0 || value > 1000000000)
    usage(program, std::string(flag) + " expects a positive integer, got '" + text + "'");
  return static_cast<int>(value);
}

inline Options parse_options(int argc, char** argv) {
  Options options;
  const char* program = argv[0];
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    const auto value = [&]() -> const char* {
      if (i + 1 >= argc) usage(program, flag + " needs a value");
      return argv[++i];
    };
    if (flag == "--steps") options.steps = positive_int(program, "--steps", value());
    else if (flag == "--epochs") options.epochs = positive_int(program, "--epochs", value());
    else if (flag == "--threads") options.threads = positive_int(program, "--threads", value());
    else if (flag == "--samples") options.samples = positive_int(program, "--samples", value());
    else if (flag == "--cache") {
      const std::string mode = value();
      if (mode != "on" && mode != "off") usage(program, "--cache expects on or off, got '" + mode + "'");
      options.cache = mode == "on";
    }
    else if (flag == "--smoke") options.smoke = true;
    else if (flag == "--data") options.data = value();
    else usage(program, "unknown argument '" + flag + "'");
  }
  return options;
}

/// Seconds on a monotonic clock since construction or the last restart().
class Stopwatch {
 public:
  Stopwatch() : start_(Clock::now()) {}
  void restart() { start_ = Clock::now(); }
  double seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }

 private:
  using Clock = std::chrono::steady_clock;
  Clock::time_point start_;
};

/// Calls per timed block: doubled from 1 until a block lasts `min_seconds`
/// (which also warms up caches, page mappings and packing buffers).
template <class Run>
long calls_per_block(Run&& run, double min_seconds) {
  for (long calls = 1;; calls *= 2) {
    Stopwatch clock;
    for (long i = 0; i < calls; ++i) run();
    if (clock.seconds() >= min_seconds) return calls;
  }
}

/// Seconds per call of `run`, over a block of `calls` calls.
template <class Run>
double seconds_per_call(Run&& run, long calls) {
  Stopwatch clock;
  for (long i = 0; i < calls; ++i) run();
  return clock.seconds() / static_cast<double>(calls);
}

/// Peak resident set size of this process so far, in KiB (Linux's ru_maxrss unit).
inline long max_rss_kib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

/// The median of a non-empty list (mean of the middle two for an even count).
inline double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

/// Times `blocks` blocks of `per_block` calls of step() and returns the median
/// over blocks of the mean time per call in µs: one slow block (a page fault,
/// another process) does not move the figure.
template <class Step>
double median_us_per_call(int blocks, int per_block, Step&& step) {
  std::vector<double> us;
  for (int b = 0; b < blocks; ++b) {
    Stopwatch clock;
    for (int i = 0; i < per_block; ++i) step();
    us.push_back(clock.seconds() * 1e6 / per_block);
  }
  return median(us);
}

/// One JSON object on one line: {"key": value, ...}.
class JsonLine {
 public:
  JsonLine& add(const std::string& key, const std::string& value) { return raw(key, quoted(value)); }
  JsonLine& add(const std::string& key, const char* value) { return raw(key, quoted(value)); }
  JsonLine& add(const std::string& key, bool value) { return raw(key, value ? "true" : "false"); }
  JsonLine& add(const std::string& key, int value) { return raw(key, std::to_string(value)); }
  JsonLine& add(const std::string& key, long value) { return raw(key, std::to_string(value)); }
  JsonLine& add(const std::string& key, double value) { return raw(key, number(value)); }
  JsonLine& add(const std::string& key, const std::vector<double>& values) {
    std::string list = "[";
    for (std::size_t i = 0; i < values.size(); ++i) list += (i ? ", " : "") + number(values[i]);
    return raw(key, list + "]");
  }
  /// A list of objects, each a JsonLine of its own: [{...}, {...}].
  JsonLine& add(const std::string& key, const std::vector<JsonLine>& objects) {
    std::string list = "[";
    for (std::size_t i = 0; i < objects.size(); ++i) list += (i ? ", " : "") + objects[i].text();
    return raw(key, list + "]");
  }
  std::string text() const { return "{" + body_ + "}"; }
  void print() const { std::cout << text() << std::endl; }

 private:
  JsonLine& raw(const std::string& key, const std::string& value) {
    body_ += (body_.empty() ? "" : ", ") + quoted(key) + ": " + value;
    return *this;
  }
  static std::string quoted(const std::string& text) {
    std::string out = "\"";
    for (char c : text) out += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
    return out + "\"";
  }
  static std::string number(double value) {
    char text[32];
    std::snprintf(text, sizeof text, "%.6g", value);
    return text;
  }
  std::string body_;
};

/// Fraction of rows whose largest output sits at the label's column (first
/// index on ties). `outputs(i, j)` is sample i's score for class j.
template <class Outputs>
double accuracy(const Outputs& outputs, const std::vector<int>& labels) {
  std::size_t correct = 0;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    Eigen::Index best = 0;
    outputs.row(static_cast<Eigen::Index>(i)).maxCoeff(&best);
    correct += best == labels[i];
  }
  return labels.empty() ? 0.0 : static_cast<double>(correct) / static_cast<double>(labels.size());
}

}  // namespace bench
