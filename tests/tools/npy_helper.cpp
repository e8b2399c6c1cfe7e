// npy_helper: a tiny tool the command-line tests use to make and read .npy files
// without depending on NumPy.
//
//   npy_helper write FILE f32|f16 SHAPE VALUES [VERSION]
//       SHAPE "1,2,3,3" ("" for a scalar); VALUES a comma list, "iota" (0,1,2,...),
//       or "const:V"; VERSION 1, 2 or 3 (default: the smallest that fits).
//   npy_helper raw FILE DICT DATA_BYTES [VERSION]
//       a file with DICT as its header text (padded as NumPy pads it) and
//       DATA_BYTES zero bytes: for corrupt-header tests.
//   npy_helper print FILE
//       "dtype shape" on the first line, then every value (%.9g), one a line.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "npy_file.h"

namespace {

using convjit::DataType;
using convjit::NpyArray;

// IEEE binary16 <-> binary32 with round-to-nearest-even, as NumPy's astype(float16).
uint16_t float_to_half(float value) {
  uint32_t f;
  std::memcpy(&f, &value, 4);
  uint32_t sign = (f >> 16) & 0x8000;
  int32_t exponent = static_cast<int32_t>((f >> 23) & 0xff) - 127 + 15;
  uint32_t mantissa = f & 0x7fffff;
  if (((f >> 23) & 0xff) == 0xff) return static_cast<uint16_t>(sign | 0x7c00 | (mantissa ? 0x200 : 0));
  if (exponent >= 31) return static_cast<uint16_t>(sign | 0x7c00);
  if (exponent <= 0) {
    if (exponent < -10) return static_cast<uint16_t>(sign);
    mantissa |= 0x800000;
    int shift = 14 - exponent;
    uint32_t half = mantissa >> shift;
    uint32_t rest = mantissa & ((1u << shift) - 1);
    uint32_t midpoint = 1u << (shift - 1);
    if (rest > midpoint || (rest == midpoint && (half & 1))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t half = (static_cast<uint32_t>(exponent) << 10) | (mantissa >> 13);
  uint32_t rest = mantissa & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (half & 1))) ++half;  // may carry into the exponent
  return static_cast<uint16_t>(sign | half);
}

float half_to_float(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16;
  uint32_t exponent = (h >> 10) & 0x1f;
  uint32_t mantissa = h & 0x3ff;
  float magnitude;
  if (exponent == 0) {
    magnitude = std::ldexp(static_cast<float>(mantissa), -24);
  } else if (exponent == 31) {
    magnitude = mantissa ? NAN : INFINITY;
  } else {
    magnitude = std::ldexp(static_cast<float>(mantissa | 0x400), static_cast<int>(exponent) - 25);
  }
  uint32_t bits;
  std::memcpy(&bits, &magnitude, 4);
  bits |= sign;
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
}

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  if (text.empty()) return parts;
  size_t start = 0;
  while (true) {
    size_t end = text.find(sep, start);
    parts.push_back(text.substr(start, end - start));
    if (end == std::string::npos) return parts;
    start = end + 1;
  }
}

int fail(const std::string& message) {
  std::fprintf(stderr, "npy_helper: %s\n", message.c_str());
  return 1;
}

int write_command(int argc, char** argv) {
  if (argc < 6) return fail("write needs FILE DTYPE SHAPE VALUES [VERSION]");
  NpyArray array;
  std::string dtype = argv[3];
  if (dtype != "f32" && dtype != "f16") return fail("dtype must be f32 or f16");
  array.dtype = dtype == "f16" ? DataType::kFloat16 : DataType::kFloat32;
  for (const std::string& d : split(argv[4], ',')) array.shape.push_back(std::stoll(d));
  int64_t count = array.element_count();
  std::string spec = argv[5];
  std::vector<float> values;
  if (spec == "iota") {
    for (int64_t i = 0; i < count; ++i) values.push_back(static_cast<float>(i));
  } else if (spec.rfind("const:", 0) == 0) {
    values.assign(static_cast<size_t>(count), std::stof(spec.substr(6)));
  } else {
    for (const std::string& v : split(spec, ',')) values.push_back(std::stof(v));
    if (static_cast<int64_t>(values.size()) != count) {
      return fail("got " + std::to_string(values.size()) + " values for " + std::to_string(count) +
                  " elements");
    }
  }
  for (float v : values) {
    if (array.dtype == DataType::kFloat32) {
      uint8_t bytes[4];
      std::memcpy(bytes, &v, 4);
      array.data.insert(array.data.end(), bytes, bytes + 4);
    } else {
      uint16_t h = float_to_half(v);
      array.data.push_back(static_cast<uint8_t>(h & 0xff));
      array.data.push_back(static_cast<uint8_t>(h >> 8));
    }
  }
  int version = argc > 6 ? std::atoi(argv[6]) : 0;
  convjit::Status status = convjit::write_npy(argv[2], array, version);
  if (!status.ok()) return fail(status.message());
  return 0;
}

int raw_command(int argc, char** argv) {
  if (argc < 5) return fail("raw needs FILE DICT DATA_BYTES [VERSION]");
  std::string body = argv[3];
  size_t data_bytes = static_cast<size_t>(std::stoull(argv[4]));
  int version = argc > 5 ? std::atoi(argv[5]) : 1;
  size_t prefix = version == 1 ? 10 : 12;
  while ((prefix + body.size() + 1) % 64 != 0) body += ' ';
  body += '\n';
  std::string image = std::string("\x93NUMPY", 6) + static_cast<char>(version) + '\0';
  for (size_t i = 0; i < prefix - 8; ++i) image += static_cast<char>((body.size() >> (8 * i)) & 0xff);
  image += body + std::string(data_bytes, '\0');
  FILE* f = std::fopen(argv[2], "wb");
  if (f == nullptr) return fail(std::string("cannot open ") + argv[2]);
  std::fwrite(image.data(), 1, image.size(), f);
  std::fclose(f);
  return 0;
}

int print_command(int argc, char** argv) {
  if (argc < 3) return fail("print needs FILE");
  convjit::StatusOr<NpyArray> array = convjit::read_npy(argv[2]);
  if (!array.ok()) return fail(array.status().message());
  std::printf("%s %s\n", convjit::to_string(array->dtype), convjit::shape_to_string(array->shape).c_str());
  for (int64_t i = 0; i < array->element_count(); ++i) {
    float v;
    if (array->dtype == DataType::kFloat32) {
      std::memcpy(&v, array->data.data() + 4 * i, 4);
    } else {
      uint16_t h;
      std::memcpy(&h, array->data.data() + 2 * i, 2);
      v = half_to_float(h);
    }
    std::printf("%.9g\n", v);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string command = argc > 1 ? argv[1] : "";
  if (command == "write") return write_command(argc, argv);
  if (command == "raw") return raw_command(argc, argv);
  if (command == "print") return print_command(argc, argv);
  return fail("usage: npy_helper write|raw|print ...");
}
