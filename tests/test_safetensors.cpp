// safetensors reader and writer (include/minidl/io/safetensors.hpp): round
// trips, the exact bytes of a tiny file against a hand-written byte string,
// and a table of malformed files, each with the message it must produce.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <minidl/io/safetensors.hpp>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

// A fresh, empty folder under the system's temporary directory.
fs::path scratch_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("minidl_test_safetensors_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

minidl::SafetensorsFile parse(const std::string& bytes, const std::string& source = "mem") {
  return minidl::parse_safetensors(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), source);
}

// The message of the exception of type E that `f` throws ("" and a failed check if none).
template <class E = minidl::FormatError>
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  FAIL_CHECK("expected an exception");
  return "";
}

void check_contains(const std::string& text, const std::string& part) {
  INFO("message: ", text);
  CHECK(text.find(part) != std::string::npos);
}

// The 8-byte little-endian length prefix, then the header as given, then the data.
std::string file_bytes(const std::string& header, const std::string& data = "") {
  std::string out;
  for (int k = 0; k < 8; ++k) out += static_cast<char>((header.size() >> (8 * k)) & 0xFF);
  return out + header + data;
}

}  // namespace

TEST_CASE("encode_safetensors: the bytes of a tiny file match the format by hand") {
  const float values[2] = {1.0f, -2.0f};
  const std::string bytes = minidl::encode_safetensors({{"a", minidl::DType::F32, {2}, values}}, {});
  // 54 bytes of JSON padded with 2 spaces to 56 = 0x38; 1.0f = 0x3F800000 and
  // -2.0f = 0xC0000000, little-endian.
  const std::string expected = std::string("\x38\0\0\0\0\0\0\0", 8) +
                               R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}  )" +
                               std::string("\0\0\x80\x3F\0\0\0\xC0", 8);
  CHECK(bytes == expected);
}

TEST_CASE_TEMPLATE("safetensors round trip: F32 and F64, scalar, zero-sized, metadata; read as T", T, float, double) {
  const float f32[6] = {1.5f, -2.25f, 0.0f, 3e-8f, -1e30f, 7.0f};
  const double f64[3] = {0.1, -1e300, 2.5};
  const double scalar = 42.0;
  const std::map<std::string, std::string> meta = {{"format", "pt"}, {"note", "h\xC3\xA9llo"}, {"", "empty key"}};
  const fs::path path = scratch_dir("roundtrip") / "w.safetensors";
  minidl::write_safetensors(path.string(),
                            {{"dense/kernel", minidl::DType::F32, {2, 3}, f32},
                             {"b", minidl::DType::F64, {3}, f64},
                             {"empty", minidl::DType::F32, {0, 4}, nullptr},
                             {"s", minidl::DType::F64, {}, &scalar}},
                            meta);
  const minidl::SafetensorsFile file = minidl::read_safetensors(path.string());
  CHECK(file.metadata() == meta);
  REQUIRE(file.tensors().size() == 4);
  // In data-offset order: kernel [0, 24), b [24, 48), empty [48, 48), s [48, 56).
  CHECK(file.tensors()[0].name == "dense/kernel");
  CHECK(file.tensors()[1].name == "b");
  CHECK(file.tensors()[2].name == "empty");
  CHECK(file.tensors()[3].name == "s");
  CHECK(file.tensors()[1].begin == 24);
  CHECK(file.tensors()[1].end == 48);
  CHECK(file.find("nope") == nullptr);

  const minidl::TensorEntry* kernel = file.find("dense/kernel");
  REQUIRE(kernel != nullptr);
  CHECK(kernel->dtype == minidl::DType::F32);
  CHECK(kernel->shape == std::vector<std::int64_t>{2, 3});
  CHECK(kernel->element_count() == 6);
  std::vector<T> k(6);
  file.read(*kernel, k.data());
  for (int i = 0; i < 6; ++i) CHECK(k[i] == static_cast<T>(f32[i]));  // F32 -> T is exact

  const minidl::TensorEntry* b = file.find("b");
  REQUIRE(b != nullptr);
  CHECK(b->dtype == minidl::DType::F64);
  std::vector<T> bv(3);
  file.read(*b, bv.data());
  for (int i = 0; i < 3; ++i) CHECK(bv[i] == static_cast<T>(f64[i]));  // F64 -> float rounds as static_cast does

  const minidl::TensorEntry* empty = file.find("empty");
  REQUIRE(empty != nullptr);
  CHECK(empty->element_count() == 0);
  CHECK(empty->begin == empty->end);
  file.read(*empty, static_cast<T*>(nullptr));  // nothing to copy

  const minidl::TensorEntry* s = file.find("s");
  REQUIRE(s != nullptr);
  CHECK(s->shape.empty());
  CHECK(s->element_count() == 1);
  T sv = 0;
  file.read(*s, &sv);
  CHECK(sv == T(42));
}

TEST_CASE("parse_safetensors: a hand-made file parses; a broken one names the source") {
  const std::string good = file_bytes(R"({"x":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})",
                                      std::string("\0\0\0\0\0\0\xF0\x3F", 8));  // 1.0
  double x = 0;
  const minidl::SafetensorsFile file = parse(good);
  file.read(*file.find("x"), &x);
  CHECK(x == 1.0);
  check_contains(error_of([&] { parse(good.substr(0, 5), "cut.safetensors"); }), "safetensors file 'cut.safetensors'");
}
