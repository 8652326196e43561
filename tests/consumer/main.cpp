// An outside program built against the installed minidl package: it must find
// the headers, get C++17 and Eigen from minidl::idx (or the minidl-idx
// pkg-config file), and link zlib for the IDX reader. Usage: consumer [IDX images file]
#include <iostream>
#include <minidl/idx.hpp>  // not part of minidl.hpp: it needs zlib
#include <minidl/minidl.hpp>
#include <minidl/tensor.hpp>

int main(int argc, char** argv) {
  try {
    minidl::Matrix<float> x(2, 3);
    x << 1, 2, 3, 4, 5, 6;
    // One-hot rows pick x(0, 2) = 3 and x(1, 0) = 4.
    const minidl::Matrix<float> picks = minidl::one_hot<float>({2, 0}, 3);
    const float sum = (x.array() * picks.array()).sum();
    std::cout << "consumer: x is " << x.rows() << " x " << x.cols() << ", one-hot picks sum to " << sum << "\n";
    if (sum != 7.0f) {
      std::cerr << "consumer: expected 7\n";
      return 1;
    }
    if (argc > 1) {  // reading an IDX file exercises zlib through the installed target
      const minidl::Matrix<float> images = minidl::read_idx_images<float>(argv[1]);
      std::cout << "consumer: " << argv[1] << " holds " << images.rows() << " images of " << images.cols()
                << " pixels\n";
    }
  } catch (const minidl::Error& e) {
    std::cerr << "consumer: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
