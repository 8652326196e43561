// IDX reader: the committed fixture in tests/data/idx/ (made by
// scripts/make_idx_fixture.py), every broken variant, the same bytes through
// parse_idx, what fuzzing found (tests/fuzz/), a pipe, one_hot, the
// Fashion-MNIST loader on fake folders and, where installed, on the real data.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <minidl/fashion_mnist.hpp>
#include <string>
#include <thread>
#include <vector>

namespace {

std::string fixture(const std::string& name) { return std::string(MINIDL_TEST_DATA_DIR) + "/idx/" + name; }

// The fixture's values, by the formulas the generating script documents.
int pixel(int image, int p) { return (12 * image + p) * 255 / 119; }
int label(int image) { return (3 * image) % 10; }

// The message of the IOError that `f` throws ("" and a failed check if none).
std::string io_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const minidl::IOError& e) {
    return e.what();
  }
  FAIL_CHECK("expected minidl::IOError");
  return "";
}

void check_contains(const std::string& text, const std::string& part) {
  INFO("message: ", text);
  CHECK(text.find(part) != std::string::npos);
}

}  // namespace

TEST_CASE("read_idx: the good images file, plain and gzip'd, holds the known bytes") {
  for (const char* name : {"images.idx", "images.idx.gz"}) {
    CAPTURE(name);
    const minidl::IdxArray a = minidl::read_idx(fixture(name));
    CHECK(a.type == minidl::IdxType::UInt8);
    CHECK(a.dims == std::vector<std::uint32_t>{10, 4, 3});
    CHECK(a.elements() == 120);
    REQUIRE(a.bytes.size() == 120);
    for (int i = 0; i < 10; ++i)
      for (int p = 0; p < 12; ++p) CHECK(a.bytes[static_cast<std::size_t>(12 * i + p)] == pixel(i, p));
  }
  CHECK(minidl::read_idx(fixture("images.idx")).bytes == minidl::read_idx(fixture("images.idx.gz")).bytes);
}

TEST_CASE("read_idx_header reads the type and shape only") {
  const minidl::IdxHeader h = minidl::read_idx_header(fixture("images.idx.gz"));
  CHECK(h.type == minidl::IdxType::UInt8);
  CHECK(h.dims == std::vector<std::uint32_t>{10, 4, 3});
  // The data is not read, so a file with a good header but short data passes.
  CHECK(minidl::read_idx_header(fixture("truncated-data.idx")).dims == std::vector<std::uint32_t>{10, 4, 3});
}

TEST_CASE_TEMPLATE("read_idx_images: one image per row, scaled to 0..1", Scalar, float, double) {
  for (const char* name : {"images.idx", "images.idx.gz"}) {
    CAPTURE(name);
    const minidl::Matrix<Scalar> x = minidl::read_idx_images<Scalar>(fixture(name));
    REQUIRE(x.rows() == 10);
    REQUIRE(x.cols() == 12);
    for (int i = 0; i < 10; ++i)
      for (int p = 0; p < 12; ++p) CHECK(x(i, p) == doctest::Approx(pixel(i, p) / 255.0));
    CHECK(x(0, 0) == Scalar(0));
    CHECK(x(9, 11) == Scalar(1));  // the byte 255
    CHECK(x.minCoeff() == Scalar(0));
    CHECK(x.maxCoeff() == Scalar(1));
  }
  const minidl::Matrix<Scalar> raw = minidl::read_idx_images<Scalar>(fixture("images.idx"), Scalar(1));
  CHECK(raw(3, 5) == Scalar(pixel(3, 5)));
  CHECK(raw(9, 11) == Scalar(255));
}

TEST_CASE("read_idx_labels: plain and gzip'd") {
  const std::vector<int> expected = {0, 3, 6, 9, 2, 5, 8, 1, 4, 7};
  for (int i = 0; i < 10; ++i) CHECK(expected[static_cast<std::size_t>(i)] == label(i));
  CHECK(minidl::read_idx_labels(fixture("labels.idx")) == expected);
  CHECK(minidl::read_idx_labels(fixture("labels.idx.gz")) == expected);
}

TEST_CASE_TEMPLATE("limit keeps the first records and still checks the whole file", Scalar, float, double) {
  const minidl::Matrix<Scalar> all = minidl::read_idx_images<Scalar>(fixture("images.idx.gz"));
  const minidl::Matrix<Scalar> three = minidl::read_idx_images<Scalar>(fixture("images.idx.gz"), Scalar(1) / 255, 3);
  REQUIRE(three.rows() == 3);
  REQUIRE(three.cols() == 12);
  CHECK(three == all.topRows(3));
  CHECK(minidl::read_idx_images<Scalar>(fixture("images.idx"), Scalar(1), 0).rows() == 0);
  CHECK(minidl::read_idx_images<Scalar>(fixture("images.idx"), Scalar(1), 1000).rows() == 10);
  CHECK(minidl::read_idx_labels(fixture("labels.idx"), 4) == std::vector<int>{0, 3, 6, 9});
  CHECK(minidl::read_idx(fixture("labels.idx.gz"), 2).dims == std::vector<std::uint32_t>{2});
  // A problem past the kept records is still found.
  for (const char* name : {"truncated-data.idx", "truncated-data.idx.gz"})
    check_contains(io_error([&] { minidl::read_idx_images<Scalar>(fixture(name), Scalar(1), 2); }),
                   "expected 120 bytes of data, file has 119");
  check_contains(io_error([&] { minidl::read_idx_labels(fixture("trailing-bytes.idx.gz"), 2); }),
                 "expected 10 bytes of data, file has 13");
}

TEST_CASE("read_idx decodes every element type, big-endian") {
  const auto values = [](const std::string& name) {
    const minidl::Matrix<double> m = minidl::idx_to_matrix<double>(minidl::read_idx(fixture(name)));
    return std::vector<double>(m.data(), m.data() + m.size());
  };
  CHECK(minidl::read_idx(fixture("byte.idx")).type == minidl::IdxType::Int8);
  CHECK(values("byte.idx") == std::vector<double>{-128, -1, 0, 1, 127});
  CHECK(values("short.idx") == std::vector<double>{-32768, -300, 1000, 32767});
  CHECK(values("int.idx") == std::vector<double>{-2147483648.0, -70000, 0, 2147483647});
  CHECK(values("float.idx") == std::vector<double>{-1.5, 0.25, 1024});
  CHECK(values("double.idx") == std::vector<double>{-2.5, 1e-300, 0.1});

  const minidl::Matrix<double> m = minidl::idx_to_matrix<double>(minidl::read_idx(fixture("short.idx")), 0.5);
  REQUIRE(m.rows() == 2);
  REQUIRE(m.cols() == 2);
  CHECK(m(0, 0) == -16384);
  CHECK(m(0, 1) == -150);
  CHECK(m(1, 0) == 500);
  CHECK(m(1, 1) == 16383.5);
  const minidl::Matrix<float> f = minidl::read_idx_images<float>(fixture("float.idx"), 2.0f);
  CHECK(f.rows() == 1);
  CHECK(f(0, 0) == -3.0f);
  CHECK(f(0, 2) == 2048.0f);

  CHECK(minidl::read_idx_labels(fixture("byte.idx")) == std::vector<int>{-128, -1, 0, 1, 127});
  CHECK(minidl::read_idx_labels(fixture("int.idx")) == std::vector<int>{-2147483647 - 1, -70000, 0, 2147483647});
}

TEST_CASE("every broken file gives an IOError naming the file and the problem") {
  struct Case {
    const char* file;
    const char* problem;
  };
  const Case cases[] = {
      {"missing.idx", "cannot open: No such file or directory"},
      {"empty.idx", "truncated header: expected a 4-byte magic number, file has 0 bytes"},
      {"bad-magic.idx", "bad magic number 0x01000801"},
      {"bad-type.idx", "unknown element type code 0x0A"},
      {"rank-zero.idx", "rank 0"},
      {"truncated-header.idx", "truncated header: rank 3 needs 12 bytes of dimensions, file has 5"},
      {"truncated-data.idx", "truncated data: expected 120 bytes of data, file has 119"},
      {"truncated-data.idx.gz", "truncated data: expected 120 bytes of data, file has 119"},
      {"trailing-bytes.idx", "inconsistent size: expected 10 bytes of data, file has 13"},
      {"trailing-bytes.idx.gz", "inconsistent size: expected 10 bytes of data, file has 13"},
      {"overflow-dims.idx", "absurd dimensions 4294967295 x 4294967295 x 4294967295"},
      {"absurd-dims.idx.gz", "absurd dimensions 1000000 x 28 x 28: 784000000 bytes"},
      {"corrupt.idx.gz", "corrupt gzip stream"},
      {"truncated.idx.gz", "corrupt gzip stream"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.file);
    const std::string message = io_error([&] { minidl::read_idx(fixture(c.file)); });
    check_contains(message, "'" + fixture(c.file) + "'");
    check_contains(message, c.problem);
  }
  // zlib's own words for the two gzip failures: a wrong CRC and a cut stream.
  check_contains(io_error([] { minidl::read_idx(fixture("corrupt.idx.gz")); }), "incorrect data check");
  check_contains(io_error([] { minidl::read_idx(fixture("truncated.idx.gz")); }), "unexpected end of file");
}

TEST_CASE("images and labels readers reject the other kind of file before reading it") {
  check_contains(io_error([] { minidl::read_idx_images<float>(fixture("labels.idx")); }),
                 "expected an images file of rank >= 2 (images x rows x cols), got rank 1");
  check_contains(io_error([] { minidl::read_idx_labels(fixture("images.idx.gz")); }),
                 "expected a labels file of rank 1, got rank 3");
  check_contains(io_error([] { minidl::read_idx_labels(fixture("double.idx")); }),
                 "expected integer labels, got element type double");
}

TEST_CASE_TEMPLATE("one_hot puts a single 1 at each label's column", Scalar, float, double) {
  const minidl::Matrix<Scalar> y = minidl::one_hot<Scalar>({2, 0, 1, 2}, 3);
  REQUIRE(y.rows() == 4);
  REQUIRE(y.cols() == 3);
  const int hot[4] = {2, 0, 1, 2};
  for (int i = 0; i < 4; ++i)
    for (int c = 0; c < 3; ++c) CHECK(y(i, c) == Scalar(c == hot[i] ? 1 : 0));
  CHECK(minidl::one_hot<Scalar>({}, 10).rows() == 0);

  const auto value_error = [](const std::vector<int>& labels, int classes) {
    try {
      minidl::one_hot<Scalar>(labels, classes);
    } catch (const minidl::ValueError& e) {
      return std::string(e.what());
    }
    FAIL_CHECK("expected minidl::ValueError");
    return std::string();
  };
  check_contains(value_error({0, 3}, 3), "one_hot: label 3 at index 1 is outside [0, 3)");
  check_contains(value_error({-1}, 3), "label -1 at index 0");
  check_contains(value_error({0}, 0), "classes must be positive, got 0");
}

TEST_CASE("load_fashion_mnist on fake folders: good, inconsistent, missing") {
  const auto data = minidl::load_fashion_mnist<float>(fixture("fashion-good"));
  const minidl::Matrix<float> images = minidl::read_idx_images<float>(fixture("images.idx"));
  CHECK(data.train_x == images);
  CHECK(data.train_y == std::vector<int>{0, 3, 6, 9, 2, 5, 8, 1, 4, 7});
  CHECK(data.test_x == images.topRows(4));
  CHECK(data.test_y == std::vector<int>{0, 3, 6, 9});
  const auto two = minidl::load_fashion_mnist<double>(fixture("fashion-good"), 2);
  CHECK(two.train_x.rows() == 2);
  CHECK(two.train_y.size() == 2);
  CHECK(two.test_x.rows() == 2);
  CHECK(two.test_y.size() == 2);

  const std::string mismatch = io_error([] { minidl::load_fashion_mnist<float>(fixture("fashion-mismatch")); });
  check_contains(mismatch, "inconsistent");
  check_contains(mismatch, "train-images-idx3-ubyte.gz' has 10 images");
  check_contains(mismatch, "train-labels-idx1-ubyte.gz' has 9 labels");

  const std::string missing = io_error([] { minidl::load_fashion_mnist<float>(fixture("no-such-folder")); });
  check_contains(missing, fixture("no-such-folder") + "/train-images-idx3-ubyte.gz");
  check_contains(missing, "apt-get install dataset-fashion-mnist");
  CHECK(minidl::default_fashion_mnist_dir() == "/usr/share/datasets/fashion-mnist");
}

TEST_CASE("load_fashion_mnist reads the installed data set") {
  const std::string dir = minidl::default_fashion_mnist_dir();
  if (!std::filesystem::exists(dir)) {
    MESSAGE("skipped: ", dir, " not found (apt-get install dataset-fashion-mnist)");
    return;
  }
  const auto data = minidl::load_fashion_mnist<float>(dir);
  CHECK(data.train_x.rows() == 60000);
  CHECK(data.train_x.cols() == 784);
  CHECK(data.test_x.rows() == 10000);
  CHECK(data.test_x.cols() == 784);
  REQUIRE(data.train_y.size() == 60000);
  REQUIRE(data.test_y.size() == 10000);
  CHECK(data.train_x.minCoeff() == 0.0f);
  CHECK(data.train_x.maxCoeff() == 1.0f);
  CHECK(data.test_x.minCoeff() == 0.0f);
  CHECK(data.test_x.maxCoeff() == 1.0f);
  // Fashion-MNIST is balanced: 6000 training and 1000 test images per class.
  std::vector<int> train_count(10, 0), test_count(10, 0);
  for (int y : data.train_y) {
    REQUIRE((y >= 0 && y < 10));
    ++train_count[static_cast<std::size_t>(y)];
  }
  for (int y : data.test_y) {
    REQUIRE((y >= 0 && y < 10));
    ++test_count[static_cast<std::size_t>(y)];
  }
  CHECK(train_count == std::vector<int>(10, 6000));
  CHECK(test_count == std::vector<int>(10, 1000));
  // The first image of each split is an ankle boot (class 9).
  CHECK(std::string(minidl::fashion_mnist_class_names()[static_cast<std::size_t>(data.train_y[0])]) == "Ankle boot");
  CHECK(data.test_y[0] == 9);
}

namespace {

std::vector<unsigned char> file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in);
  return std::vector<unsigned char>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

TEST_CASE("parse_idx: bytes in memory read as the same file does, broken ones fail the same way") {
  const std::vector<unsigned char> images = file_bytes(fixture("images.idx"));
  const minidl::IdxArray a = minidl::parse_idx(images.data(), images.size(), "images in memory");
  const minidl::IdxArray b = minidl::read_idx(fixture("images.idx"));
  CHECK(a.type == b.type);
  CHECK(a.dims == b.dims);
  CHECK(a.bytes == b.bytes);
  CHECK(minidl::parse_idx(images.data(), images.size(), "m", 2).dims == std::vector<std::uint32_t>{2, 4, 3});
  for (const char* name : {"empty.idx", "bad-magic.idx", "truncated-header.idx", "truncated-data.idx",
                           "trailing-bytes.idx", "overflow-dims.idx"}) {
    CAPTURE(name);
    const std::vector<unsigned char> bytes = file_bytes(fixture(name));
    const std::string from_file = io_error([&] { minidl::read_idx(fixture(name)); });
    const std::string from_memory = io_error([&] { minidl::parse_idx(bytes.data(), bytes.size(), "buffer"); });
    check_contains(from_memory, "IDX file 'buffer': ");
    // The same problem, worded the same, after the source's name.
    CHECK(from_memory.substr(from_memory.find("': ")) == from_file.substr(from_file.find("': ")));
  }
}

TEST_CASE("fuzzer finds: records of absurd size are rejected even when there are none") {
  // Found by tests/fuzz/fuzz_idx.cpp: 0 records of 0xFE00 x 0x29FE x
  // 0xD403E800 x ... shorts made a product of 0 (so no overflow was noticed)
  // and then a negative column count in idx_to_matrix.
  const unsigned char found[] = {0x00, 0x00, 0x0b, 0x0a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xfe, 0x00, 0x00,
                                 0x00, 0x29, 0xfe, 0xd4, 0x03, 0xe8, 0x00, 0x04, 0x0c, 0x02, 0x4e, 0x53, 0x74,
                                 0x36, 0x6c, 0x6f, 0x63, 0x61, 0x6c, 0x65, 0x35, 0x00, 0x00, 0x00, 0x01, 0x00,
                                 0x00, 0x00, 0x00, 0x09, 0x01};
  const std::string message = io_error([&] { minidl::parse_idx(found, sizeof found, "crash-8cc84ba6"); });
  check_contains(message, "IDX file 'crash-8cc84ba6': absurd dimensions 0 x 65024 x 10750 x 3557025792 x ");
  check_contains(message, ": a record would have more than 2^63 - 1 bytes");
  // The same by hand: 0 images of 2^32-1 x 2^32-1 bytes (the data, 0 bytes, is all there).
  const unsigned char zero_huge[] = {0, 0, 8, 3, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
  check_contains(io_error([&] { minidl::parse_idx(zero_huge, sizeof zero_huge, "zero-huge"); }),
                 "absurd dimensions 0 x 4294967295 x 4294967295: a record would have more than 2^63 - 1 bytes");
  // 0 images of a sane size still pass, as a 0 x 12 matrix.
  const unsigned char zero_images[] = {0, 0, 8, 3, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 3};
  const minidl::Matrix<float> m =
      minidl::idx_to_matrix<float>(minidl::parse_idx(zero_images, sizeof zero_images, "zero-images"));
  CHECK(m.rows() == 0);
  CHECK(m.cols() == 12);
}

TEST_CASE("idx_to_matrix rejects an array whose bytes do not match its dims") {
  minidl::IdxArray a;
  a.dims = {2, 3};
  a.bytes.assign(5, 0);
  try {
    minidl::idx_to_matrix<double>(a);
    FAIL_CHECK("expected minidl::ValueError");
  } catch (const minidl::ValueError& e) {
    check_contains(e.what(), "idx_to_matrix: dims 2 x 3 of ubyte do not match the 5 bytes held");
  }
}

TEST_CASE("read_idx from a pipe: no size to bound by, so the buffer grows only as data arrives") {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / "minidl_test_idx_pipe";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string fifo = (dir / "labels.idx").string();
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  // The header promises 2^32 - 1 labels; 10 follow. Reading must not allocate 4 GB first.
  std::thread writer([&] {
    std::ofstream out(fifo, std::ios::binary);
    const unsigned char bytes[] = {0, 0, 8, 1, 0xFF, 0xFF, 0xFF, 0xFF, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    out.write(reinterpret_cast<const char*>(bytes), sizeof bytes);
  });
  const std::string message = io_error([&] { minidl::read_idx(fifo); });
  writer.join();
  check_contains(message, "IDX file '" + fifo + "': truncated data: expected 4294967295 bytes of data, file has 10");
  std::filesystem::remove_all(dir);
}
