// The yardstick of bench/compile_time.sh: a file that includes only
// <Eigen/Dense> and does one float product, the smallest Eigen program a
// user of minidl would write anyway.
#include <Eigen/Dense>
#include <iostream>

int main() {
  const Eigen::MatrixXf a = Eigen::MatrixXf::Random(256, 100), b = Eigen::MatrixXf::Random(100, 1000);
  const Eigen::MatrixXf c = a * b;
  std::cout << c.sum() << "\n";
}
