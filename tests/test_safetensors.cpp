// safetensors reader and writer (include/minidl/safetensors/safetensors.hpp): round
// trips, the exact bytes of a tiny file against a hand-written byte string, a
// table of malformed files, each with the message it must produce, every
// dtype decoded against hand-computed bit patterns, and the errors of
// read_safetensors, SafetensorsFile::read and encode_safetensors.
// Duplicate keys are detected (while parsing, nlohmann would keep the last).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <minidl/safetensors/safetensors.hpp>
#include <string>
#include <vector>

#include "support.hpp"

namespace {

namespace fs = std::filesystem;

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

TEST_CASE_TEMPLATE("safetensors round trip: F32 and F64, scalar, zero-sized, metadata, read as T", T, float, double) {
  const float f32[6] = {1.5f, -2.25f, 0.0f, 3e-8f, -1e30f, 7.0f};
  const double f64[3] = {0.1, -1e300, 2.5};
  const double scalar = 42.0;
  const std::map<std::string, std::string> meta = {{"format", "pt"}, {"note", "h\xC3\xA9llo"}, {"", "empty key"}};
  const minidl::test::TempDir scratch("minidl_test_safetensors_roundtrip");
  const fs::path path = fs::path(scratch.path) / "w.safetensors";
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

TEST_CASE("parse_safetensors: a hand-made file parses, a broken one names the source") {
  const std::string good = file_bytes(R"({"x":{"dtype":"F64","shape":[1],"data_offsets":[0,8]}})",
                                      std::string("\0\0\0\0\0\0\xF0\x3F", 8));  // 1.0
  double x = 0;
  const minidl::SafetensorsFile file = parse(good);
  file.read(*file.find("x"), &x);
  CHECK(x == 1.0);
  check_contains(error_of([&] { parse(good.substr(0, 5), "cut.safetensors"); }), "safetensors file 'cut.safetensors'");
}

TEST_CASE("parse_safetensors: every malformed file gives a FormatError naming the source and the problem") {
  const std::string f32_2 = R"("dtype":"F32","shape":[2])";  // a tensor of 8 bytes
  const std::string zeros8(8, '\0'), zeros12(12, '\0');
  std::string many_ones;  // "1,1,...," (1100 times)
  for (int i = 0; i < 1100; ++i) many_ones += "1,";
  std::string length_only = file_bytes("");
  length_only[0] = 100;  // header length 100, nothing after it
  std::string huge = file_bytes("{}");
  huge[7] = '\x80';  // header length 2^63 + 2
  struct Case {
    const char* what;
    std::string bytes;
    const char* message;
  };
  const Case cases[] = {
      {"empty file", "", "truncated length prefix: expected 8 bytes, file has 0"},
      {"truncated length prefix", std::string("\x02\0\0", 3), "truncated length prefix: expected 8 bytes, file has 3"},
      {"header length larger than the file", length_only,
       "header length 100 is larger than the 0 bytes that follow the length prefix"},
      {"huge header length", huge, "header length 9223372036854775810 exceeds the limit of 104857600 bytes"},
      {"header length 0", file_bytes(""), "header length 0: expected a JSON object"},
      {"JSON not an object", file_bytes("[1, 2]"), "expected '{' as its first byte, got byte 91"},
      {"invalid JSON", file_bytes("{\"a\":}"), "header is not valid JSON: "},
      {"trailing garbage after the object", file_bytes("{} x"), "header is not valid JSON: "},
      {"non-UTF-8 bytes in a name", file_bytes("{\"\xFF\xFE\":{}}"), "header is not valid JSON: "},
      {"NUL byte in a name", file_bytes(std::string("{\"a\0\":{}}", 9)), "header is not valid JSON: "},
      {"tensor entry not an object", file_bytes(R"({"w":[1,2]})"),
       "tensor \"w\": expected an object {dtype, shape, data_offsets}, got [1,2]"},
      {"missing dtype", file_bytes(R"({"w":{"shape":[2],"data_offsets":[0,8]}})", zeros8),
       "tensor \"w\": missing field \"dtype\""},
      {"missing shape", file_bytes(R"({"w":{"dtype":"F32","data_offsets":[0,8]}})", zeros8),
       "tensor \"w\": missing field \"shape\""},
      {"missing data_offsets", file_bytes(R"({"w":{"dtype":"F32","shape":[2]}})", zeros8),
       "tensor \"w\": missing field \"data_offsets\""},
      {"unexpected field", file_bytes(R"({"w":{)" + f32_2 + R"(,"data_offsets":[0,8],"offsets":1}})", zeros8),
       "tensor \"w\": unexpected field \"offsets\", expected only dtype, shape and data_offsets"},
      {"unknown dtype", file_bytes(R"({"w":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", zeros8),
       "tensor \"w\": unknown dtype \"F33\", expected one of F32, F64, BOOL, U8, "},
      {"dtype not a string", file_bytes(R"({"w":{"dtype":32,"shape":[2],"data_offsets":[0,8]}})", zeros8),
       "tensor \"w\": unknown dtype 32"},
      {"lower-case dtype", file_bytes(R"({"w":{"dtype":"f32","shape":[2],"data_offsets":[0,8]}})", zeros8),
       "tensor \"w\": unknown dtype \"f32\""},
      {"shape not an array", file_bytes(R"({"w":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", zeros8),
       "tensor \"w\": shape: expected an array, got 2"},
      {"negative shape", file_bytes(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", zeros8),
       "tensor \"w\": shape [-2]: expected integers in [0, 2^63), got -2"},
      {"fractional shape", file_bytes(R"({"w":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", zeros8),
       "shape [2.0]: expected integers in [0, 2^63), got 2.0"},
      {"shape entry of 2^63", file_bytes(R"({"w":{"dtype":"F32","shape":[9223372036854775808],)"
                                         R"("data_offsets":[0,8]}})", zeros8),
       "expected integers in [0, 2^63), got 9223372036854775808"},
      {"data_offsets of one number", file_bytes(R"({"w":{)" + f32_2 + R"(,"data_offsets":[8]}})", zeros8),
       "tensor \"w\": data_offsets: expected [begin, end], two non-negative integers, got [8]"},
      {"negative data_offsets", file_bytes(R"({"w":{)" + f32_2 + R"(,"data_offsets":[-8,0]}})", zeros8),
       "data_offsets: expected [begin, end], two non-negative integers, got [-8,0]"},
      {"begin > end", file_bytes(R"({"w":{)" + f32_2 + R"(,"data_offsets":[8,0]}})", zeros8),
       "tensor \"w\": data_offsets [8,0]: begin 8 is after end 0"},
      {"offsets out of range", file_bytes(R"({"w":{)" + f32_2 + R"(,"data_offsets":[4,12]}})", zeros8),
       "tensor \"w\": data_offsets [4,12]: end 12 is beyond the data section's 8 bytes"},
      {"offsets near 2^64", file_bytes(R"({"w":{)" + f32_2 + R"(,"data_offsets":[0,18446744073709551615]}})"),
       "end 18446744073709551615 is beyond the data section's 0 bytes"},
      {"dtype x shape size mismatch", file_bytes(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", zeros8),
       "tensor \"w\": dtype F32 x shape [3] needs 12 bytes, data_offsets [0,8] hold 8"},
      {"F64 read as F32 size", file_bytes(R"({"w":{"dtype":"F64","shape":[2],"data_offsets":[0,8]}})", zeros8),
       "dtype F64 x shape [2] needs 16 bytes, data_offsets [0,8] hold 8"},
      {"element count overflows", file_bytes(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],)"
                                             R"("data_offsets":[0,8]}})", zeros8),
       "dtype F32 x shape [4294967296, 4294967296] needs more than 2^64 bytes, data_offsets [0,8] hold 8"},
      {"overlapping tensors",
       file_bytes(R"({"a":{)" + f32_2 + R"(,"data_offsets":[0,8]},"b":{)" + f32_2 + R"(,"data_offsets":[4,12]}})",
                  zeros12),
       "tensor \"b\" (bytes [4, 12)) overlaps tensor \"a\" (bytes [0, 8))"},
      {"a gap between tensors",
       file_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],)"
                  R"("data_offsets":[8,12]}})",
                  zeros12),
       "gap in the data section: bytes [4, 8) belong to no tensor (expected tensor \"b\" to begin at 4)"},
      {"unused bytes at the end", file_bytes(R"({"w":{)" + f32_2 + R"(,"data_offsets":[0,8]}})", zeros12),
       "unused bytes at the end of the data section: tensors end at byte 8 of 12"},
      {"data but no tensors", file_bytes("{}", zeros8), "tensors end at byte 0 of 8"},
      {"metadata not an object", file_bytes(R"({"__metadata__":"a"})"), "__metadata__: expected an object, got \"a\""},
      {"metadata value not a string", file_bytes(R"({"__metadata__":{"epochs":3}})"),
       "__metadata__[\"epochs\"]: expected a string, got 3"},
      {"metadata null", file_bytes(R"({"__metadata__":null})"), "__metadata__: expected an object, got null"},
      {"duplicate tensor names",
       file_bytes(R"({"w":{)" + f32_2 + R"(,"data_offsets":[0,8]},"w":{)" + f32_2 + R"(,"data_offsets":[0,8]}})",
                  zeros8),
       "duplicate key \"w\" in the header JSON"},
      {"duplicate field", file_bytes(R"({"w":{"dtype":"F64",)" + f32_2 + R"(,"data_offsets":[0,8]}})", zeros8),
       "duplicate key \"dtype\" in the header JSON"},
      {"JSON nested too deep", file_bytes(R"({"w":{"dtype":"F32","shape":[[2]],"data_offsets":[0,8]}})", zeros8),
       "header JSON is nested deeper than the format's 3 levels"},
      {"metadata an array", file_bytes(R"({"__metadata__":["a"]})"), "__metadata__: expected an object, got an array"},
      {"metadata value an array", file_bytes(R"({"__metadata__":{"k":["v"]}})"),
       "__metadata__[\"k\"]: expected a string, got an array or object"},
      {"tensor entry too long", file_bytes(R"({"w":{"dtype":"F32","shape":[)" + many_ones + "1]}}"),
       "tensor \"w\": more than 1024 JSON values in its entry"},
      {"tensor entry a number", file_bytes(R"({"w":5})"),
       "tensor \"w\": expected an object {dtype, shape, data_offsets}, got 5"},
  };
  CHECK(std::size(cases) >= 20);
  for (const Case& c : cases) {
    CAPTURE(c.what);
    const std::string message = error_of([&] { parse(c.bytes, "bad.safetensors"); });
    check_contains(message, "safetensors file 'bad.safetensors': ");
    check_contains(message, c.message);
  }
  // nlohmann's own words say where the JSON went wrong.
  check_contains(error_of([&] { parse(file_bytes("{\"\xFF\":{}}")); }), "ill-formed UTF-8 byte");
  // The limit is a parameter: a 2-byte header passes a limit of 2 and fails one of 1.
  const std::string tiny = file_bytes("{}");
  CHECK(minidl::parse_safetensors(reinterpret_cast<const unsigned char*>(tiny.data()), tiny.size(), "t", 2)
            .tensors()
            .empty());
  check_contains(error_of([&] {
                   minidl::parse_safetensors(reinterpret_cast<const unsigned char*>(tiny.data()), tiny.size(), "t", 1);
                 }),
                 "header length 2 exceeds the limit of 1 bytes");
}

TEST_CASE("read_safetensors: missing file, a directory, a truncated file") {
  const minidl::test::TempDir scratch("minidl_test_safetensors_read");
  const fs::path dir = scratch.path;
  const std::string missing = error_of<minidl::IOError>([&] { minidl::read_safetensors((dir / "nope").string()); });
  check_contains(missing, "safetensors file '" + (dir / "nope").string() + "': cannot open: No such file or directory");
  const std::string directory = error_of<minidl::IOError>([&] { minidl::read_safetensors(dir.string()); });
  check_contains(directory, "safetensors file '" + dir.string() + "': cannot read: Is a directory");
  const float one = 1.0f;
  const std::string good = minidl::encode_safetensors({{"x", minidl::DType::F32, {1}, &one}}, {});
  std::ofstream((dir / "cut.safetensors").string(), std::ios::binary) << good.substr(0, good.size() - 1);
  const std::string cut = error_of([&] { minidl::read_safetensors((dir / "cut.safetensors").string()); });
  check_contains(cut, "safetensors file '" + (dir / "cut.safetensors").string() + "': ");
  check_contains(cut, "data_offsets [0,4]: end 4 is beyond the data section's 3 bytes");
}

TEST_CASE("SafetensorsFile::read rejects an entry that does not describe the file's data") {
  const double v[2] = {1, 2};
  const std::string bytes = minidl::encode_safetensors({{"v", minidl::DType::F64, {2}, v}}, {});
  const minidl::SafetensorsFile file = parse(bytes);
  minidl::TensorEntry wrong = *file.find("v");
  wrong.end = 32;
  wrong.shape = {4};
  double out[4] = {};
  check_contains(error_of<minidl::ValueError>([&] { file.read(wrong, out); }),
                 "entry 'v' (F64 [4], bytes [0, 32)) does not describe data of this file (16 data bytes)");
  wrong.shape = {-4};
  check_contains(error_of<minidl::ValueError>([&] { file.read(wrong, out); }), "does not describe data");
}

TEST_CASE("encode_safetensors rejects bad tensors with a ValueError") {
  const float x[2] = {1, 2};
  const auto bad = [&](const std::vector<minidl::TensorToWrite>& tensors) {
    return error_of<minidl::ValueError>([&] { minidl::encode_safetensors(tensors, {}); });
  };
  check_contains(bad({{"x", minidl::DType::F32, {2}, x}, {"x", minidl::DType::F32, {2}, x}}),
                 "encode_safetensors: tensor \"x\": duplicate name");
  check_contains(bad({{"__metadata__", minidl::DType::F32, {2}, x}}), "the name is reserved for the metadata");
  check_contains(bad({{"x", minidl::DType::F32, {-2}, x}}), "tensor \"x\": invalid shape [-2]");
  check_contains(bad({{"x", minidl::DType::F32, {2}, nullptr}}), "tensor \"x\": data is null");
  check_contains(bad({{"\xFF", minidl::DType::F32, {2}, x}}), "names and metadata must be valid UTF-8");
}

TEST_CASE("SafetensorsFile::read converts every dtype of the format, decoded by hand") {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  struct Case {
    const char* dtype;
    std::string data;  // little-endian
    std::vector<double> values;
  };
  const Case cases[] = {
      {"BOOL", std::string("\0\x01", 2), {0, 1}},
      {"U8", "\xFF\x07", {255, 7}},
      {"I8", "\xFF\x80", {-1, -128}},
      {"I16", std::string("\0\x80\x02\x01", 4), {-32768, 258}},
      {"U16", "\xFF\xFF", {65535}},
      {"I32", std::string("\0\0\0\x80", 4), {-2147483648.0}},
      {"U32", "\xFF\xFF\xFF\xFF", {4294967295.0}},
      {"I64", std::string("\xFD\xFF\xFF\xFF\xFF\xFF\xFF\xFF\0\0\0\0\0\x01\0\0", 16), {-3, 1099511627776.0}},  // 2^40
      {"U64", std::string("\0\0\0\0\0\0\0\x80", 8), {9223372036854775808.0}},                                // 2^63
      // F16: 1.0, -2.0, the largest (65504), the smallest subnormal (2^-24), Inf, NaN.
      {"F16", std::string("\0\x3C\0\xC0\xFF\x7B\x01\0\0\x7C\0\x7E", 12),
       {1, -2, 65504, std::ldexp(1.0, -24), inf, nan}},
      // BF16 is the upper half of an F32: 0x3F80 = 1.0, 0xC040 = -3.0, 0x4049 = 3.140625.
      {"BF16", "\x80\x3F\x40\xC0\x49\x40", {1, -3, 3.140625}},
      // F8_E5M2 (bias 15): 0x3C = 1.0, 0xC0 = -2.0, 0x01 = 2^-16, 0x7C = Inf.
      {"F8_E5M2", "\x3C\xC0\x01\x7C", {1, -2, std::ldexp(1.0, -16), inf}},
      // F8_E4M3 "fn" (bias 7, no Inf): 0x38 = 1.0, 0xB8 = -1.0, 0x7E = 448 (the largest), 0x01 = 2^-9, 0x7F = NaN.
      {"F8_E4M3", "\x38\xB8\x7E\x01\x7F", {1, -1, 448, std::ldexp(1.0, -9), nan}},
  };
  for (const Case& c : cases) {
    CAPTURE(c.dtype);
    const std::string header = std::string(R"({"t":{"dtype":")") + c.dtype + R"(","shape":[)" +
                               std::to_string(c.values.size()) + R"(],"data_offsets":[0,)" +
                               std::to_string(c.data.size()) + "]}}";
    const minidl::SafetensorsFile file = parse(file_bytes(header, c.data));
    const minidl::TensorEntry& t = file.tensors().at(0);
    CHECK(minidl::dtype_name(t.dtype) == std::string(c.dtype));
    CHECK(minidl::dtype_size(t.dtype) * c.values.size() == c.data.size());
    CHECK(file.raw_bytes(t) == c.data);
    std::vector<double> d(c.values.size());
    std::vector<float> f(c.values.size());
    file.read(t, d.data());
    file.read(t, f.data());
    for (std::size_t i = 0; i < c.values.size(); ++i) {
      CAPTURE(i);
      if (std::isnan(c.values[i])) {
        CHECK(std::isnan(d[i]));
        CHECK(std::isnan(f[i]));
      } else {
        CHECK(d[i] == c.values[i]);
        CHECK(f[i] == static_cast<float>(c.values[i]));
      }
    }
  }
}

TEST_CASE("write_safetensors writes integer dtypes as given, the bytes come back unchanged") {
  const std::int64_t counter[1] = {-5};
  const std::uint16_t halves[2] = {0x3C00, 0xC000};  // F16 1.0, -2.0
  const std::string bytes = minidl::encode_safetensors(
      {{"bn.num_batches_tracked", minidl::DType::I64, {}, counter}, {"h", minidl::DType::F16, {2}, halves}}, {});
  const minidl::SafetensorsFile file = parse(bytes);
  CHECK(file.raw_bytes(*file.find("bn.num_batches_tracked")) == std::string("\xFB\xFF\xFF\xFF\xFF\xFF\xFF\xFF", 8));
  CHECK(file.raw_bytes(*file.find("h")) == std::string("\0\x3C\0\xC0", 4));
  double h[2];
  file.read(*file.find("h"), h);
  CHECK(h[0] == 1.0);
  CHECK(h[1] == -2.0);
}
