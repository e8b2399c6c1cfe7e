// NumPy .npy files of float32 or float16 tensors in C order: reading, validating and writing.
//
// Only what convjit's tensors need is accepted: little-endian '<f4' or '<f2', C order,
// format versions 1.0, 2.0 and 3.0. Everything else (Fortran order, big-endian data,
// other dtypes, a malformed header, data shorter or longer than the shape says) is an
// error naming the file, the value and the rule; a corrupt file never crashes the reader.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "convjit/conv_spec.h"
#include "convjit/status.h"

namespace convjit {

// A dense C-order tensor as stored in a .npy file; `data` holds the raw little-endian
// element bytes (float16 stays float16: the tools never convert it).
struct NpyArray {
  DataType dtype = DataType::kFloat32;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;

  int64_t element_count() const;
};

// What the header of a .npy file says.
struct NpyHeader {
  int major_version = 1;
  int minor_version = 0;
  DataType dtype = DataType::kFloat32;
  std::vector<int64_t> shape;
  size_t data_offset = 0;  // bytes before the first element
  size_t data_bytes = 0;   // element_size * product(shape), overflow-checked
};

// Parses and checks a header at the start of `bytes` (of which `size` are available).
// `origin` names the file in error messages.
StatusOr<NpyHeader> parse_npy_header(const uint8_t* bytes, size_t size, const std::string& origin);

// Parses a whole file image; the data must be exactly as long as the header's shape says.
StatusOr<NpyArray> parse_npy(const std::vector<uint8_t>& bytes, const std::string& origin);

// Reads and parses `path`.
StatusOr<NpyArray> read_npy(const std::string& path);

// The header bytes (magic, version, length, dict padded with spaces to a multiple of 64
// bytes, newline) for a tensor. `major_version` 0 picks 1 when the dict fits its 16-bit
// length field, else 2; 1, 2 and 3 force that version (1 fails when the dict is too long).
StatusOr<std::string> make_npy_header(DataType dtype, const std::vector<int64_t>& shape,
                                      int major_version = 0);

// Writes `array` to `path` through a temporary file and rename(), so that `path` is
// either the complete new file or untouched.
Status write_npy(const std::string& path, const NpyArray& array, int major_version = 0);

// "(1, 3, 224, 224)": a shape as Python prints it, for messages.
std::string shape_to_string(const std::vector<int64_t>& shape);

}  // namespace convjit
