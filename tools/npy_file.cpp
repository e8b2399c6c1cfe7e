// Reading and writing .npy files: the header's Python-literal dict is parsed by a small
// strict scanner, and every length is checked before it is trusted.
#include "npy_file.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>

#include "atomic_file.h"

namespace convjit {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicSize = 6;
// NumPy pads the header so that the data starts at a multiple of 64 bytes.
constexpr size_t kHeaderAlignment = 64;

Status header_error(const std::string& origin, const std::string& what) {
  return Status::invalid_argument(origin + ": invalid .npy header: " + what);
}

// A value of the header dict: the dict only ever holds strings, booleans and
// tuples of non-negative integers.
struct DictValue {
  enum Kind { kString, kBool, kTuple } kind = kString;
  std::string text;
  bool boolean = false;
  std::vector<int64_t> tuple;
};

// Scans the Python literal NumPy writes, e.g.
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
class DictScanner {
 public:
  DictScanner(const std::string& text, const std::string& origin) : text_(text), origin_(origin) {}

  Status parse(std::string* descr, bool* fortran_order, std::vector<int64_t>* shape) {
    bool have_descr = false, have_order = false, have_shape = false;
    skip_space();
    if (!consume('{')) return error("expected '{' at the start of the dict");
    while (true) {
      skip_space();
      if (consume('}')) break;
      std::string key;
      CONVJIT_RETURN_IF_ERROR(parse_string(&key));
      skip_space();
      if (!consume(':')) return error("expected ':' after key '" + key + "'");
      skip_space();
      DictValue value;
      CONVJIT_RETURN_IF_ERROR(parse_value(&value));
      if (key == "descr") {
        if (have_descr) return error("key 'descr' appears twice");
        if (value.kind != DictValue::kString) {
          return Status::invalid_argument(origin_ +
                                          ": structured dtypes are not supported; expected "
                                          "'descr' '<f4' (float32) or '<f2' (float16)");
        }
        *descr = value.text;
        have_descr = true;
      } else if (key == "fortran_order") {
        if (have_order) return error("key 'fortran_order' appears twice");
        if (value.kind != DictValue::kBool) return error("'fortran_order' must be True or False");
        *fortran_order = value.boolean;
        have_order = true;
      } else if (key == "shape") {
        if (have_shape) return error("key 'shape' appears twice");
        if (value.kind != DictValue::kTuple) return error("'shape' must be a tuple of integers");
        *shape = value.tuple;
        have_shape = true;
      } else {
        return error("unexpected key '" + key + "' (a .npy header has exactly 'descr', "
                     "'fortran_order' and 'shape')");
      }
      skip_space();
      if (consume(',')) continue;
      skip_space();
      if (consume('}')) break;
      return error("expected ',' or '}' after the value of '" + key + "'");
    }
    skip_space();
    if (pos_ != text_.size()) return error("unexpected text after the closing '}'");
    if (!have_descr) return error("key 'descr' is missing");
    if (!have_order) return error("key 'fortran_order' is missing");
    if (!have_shape) return error("key 'shape' is missing");
    return Status::ok_status();
  }

 private:
  Status error(const std::string& what) const {
    return header_error(origin_, what + " (at offset " + std::to_string(pos_) + " of the dict)");
  }
  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                   text_[pos_] == '\n' || text_[pos_] == '\r')) {
      ++pos_;
    }
  }
  bool consume(char c) {
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  bool consume_word(const char* word) {
    size_t n = std::strlen(word);
    if (text_.compare(pos_, n, word) == 0) {
      pos_ += n;
      return true;
    }
    return false;
  }
  Status parse_string(std::string* out) {
    if (pos_ >= text_.size() || (text_[pos_] != '\'' && text_[pos_] != '"')) {
      return error("expected a quoted string");
    }
    char quote = text_[pos_++];
    size_t end = text_.find(quote, pos_);
    if (end == std::string::npos) return error("unterminated string");
    *out = text_.substr(pos_, end - pos_);
    if (out->find('\\') != std::string::npos) return error("escapes in strings are not supported");
    pos_ = end + 1;
    return Status::ok_status();
  }
  Status parse_int(int64_t* out) {
    if (pos_ < text_.size() && text_[pos_] == '-') {
      return error("shape has a negative dimension");
    }
    size_t start = pos_;
    int64_t value = 0;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9') {
      int digit = text_[pos_] - '0';
      if (value > (std::numeric_limits<int64_t>::max() - digit) / 10) {
        return error("shape dimension '" + text_.substr(start, pos_ - start + 1) +
                     "...' does not fit in 64 bits");
      }
      value = value * 10 + digit;
      ++pos_;
    }
    if (pos_ == start) return error("expected an integer in 'shape'");
    consume('L');  // Python 2 longs, written by old NumPy versions
    *out = value;
    return Status::ok_status();
  }
  Status parse_value(DictValue* value) {
    if (pos_ >= text_.size()) return error("expected a value");
    char c = text_[pos_];
    if (c == '\'' || c == '"') {
      value->kind = DictValue::kString;
      return parse_string(&value->text);
    }
    if (consume_word("True")) {
      value->kind = DictValue::kBool;
      value->boolean = true;
      return Status::ok_status();
    }
    if (consume_word("False")) {
      value->kind = DictValue::kBool;
      value->boolean = false;
      return Status::ok_status();
    }
    if (c == '[') return error("structured dtypes (a list in 'descr') are not supported");
    if (consume('(')) {
      value->kind = DictValue::kTuple;
      skip_space();
      if (consume(')')) return Status::ok_status();
      while (true) {
        int64_t dim = 0;
        CONVJIT_RETURN_IF_ERROR(parse_int(&dim));
        value->tuple.push_back(dim);
        skip_space();
        if (consume(')')) {
          // Python needs the trailing comma in a one-element tuple; "(5)" is an int.
          if (value->tuple.size() == 1) return error("'(n)' is not a tuple; expected '(n,)'");
          return Status::ok_status();
        }
        if (!consume(',')) return error("expected ',' or ')' in 'shape'");
        skip_space();
        if (consume(')')) return Status::ok_status();
      }
    }
    return error("unexpected value");
  }

  const std::string& text_;
  const std::string& origin_;
  size_t pos_ = 0;
};

uint32_t read_le(const uint8_t* p, int bytes) {
  uint32_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

int64_t NpyArray::element_count() const {
  int64_t count = 1;
  for (int64_t d : shape) count *= d;
  return count;
}

std::string shape_to_string(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

StatusOr<NpyHeader> parse_npy_header(const uint8_t* bytes, size_t size, const std::string& origin) {
  if (size < kMagicSize + 2 || std::memcmp(bytes, kMagic, kMagicSize) != 0) {
    return Status::invalid_argument(origin + ": not a .npy file (it does not start with the "
                                    "magic string \\x93NUMPY)");
  }
  NpyHeader header;
  header.major_version = bytes[6];
  header.minor_version = bytes[7];
  if (header.minor_version != 0 || header.major_version < 1 || header.major_version > 3) {
    return Status::invalid_argument(origin + ": .npy format version " +
                                    std::to_string(header.major_version) + "." +
                                    std::to_string(header.minor_version) +
                                    " is not supported (1.0, 2.0 and 3.0 are)");
  }
  // Version 1.0 stores the dict length in 16 bits, 2.0 and 3.0 (UTF-8 dict) in 32 bits.
  int length_bytes = header.major_version == 1 ? 2 : 4;
  size_t prefix = kMagicSize + 2 + length_bytes;
  if (size < prefix) return header_error(origin, "file ends inside the header length field");
  size_t dict_length = read_le(bytes + kMagicSize + 2, length_bytes);
  if (dict_length > size - prefix) {
    return header_error(origin, "the header says its dict has " + std::to_string(dict_length) +
                                    " bytes but the file has only " + std::to_string(size - prefix) +
                                    " after the length field (truncated file?)");
  }
  std::string dict(reinterpret_cast<const char*>(bytes + prefix), dict_length);
  if (dict.find('\0') != std::string::npos) return header_error(origin, "dict contains a NUL byte");

  std::string descr;
  bool fortran_order = false;
  CONVJIT_RETURN_IF_ERROR(DictScanner(dict, origin).parse(&descr, &fortran_order, &header.shape));

  if (fortran_order) {
    return Status::invalid_argument(origin + ": fortran_order is True; only C-order arrays are "
                                    "supported (save with np.ascontiguousarray)");
  }
  if (descr == "<f4") {
    header.dtype = DataType::kFloat32;
  } else if (descr == "<f2") {
    header.dtype = DataType::kFloat16;
  } else if (descr == ">f4" || descr == ">f2") {
    return Status::invalid_argument(origin + ": dtype '" + descr + "' is big-endian; only "
                                    "little-endian '<f4' and '<f2' are supported");
  } else {
    return Status::invalid_argument(origin + ": dtype '" + descr + "' is not supported; expected "
                                    "'<f4' (float32) or '<f2' (float16)");
  }

  // Every dimension is non-negative (the scanner rejects '-'); the byte count must not
  // overflow, or a hostile header would make the reader allocate nonsense.
  const uint64_t kMaxBytes = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
  uint64_t bytes_needed = static_cast<uint64_t>(element_size(header.dtype));
  bool zero = false;
  for (int64_t d : header.shape) zero = zero || d == 0;
  if (!zero) {
    for (int64_t d : header.shape) {
      if (bytes_needed > kMaxBytes / static_cast<uint64_t>(d)) {
        return Status::invalid_argument(origin + ": shape " + shape_to_string(header.shape) +
                                        " is too large: its byte count overflows 63 bits");
      }
      bytes_needed *= static_cast<uint64_t>(d);
    }
  } else {
    bytes_needed = 0;
  }
  if (bytes_needed > std::numeric_limits<size_t>::max()) {
    return Status::invalid_argument(origin + ": shape " + shape_to_string(header.shape) +
                                    " is too large for this machine");
  }
  header.data_offset = prefix + dict_length;
  header.data_bytes = static_cast<size_t>(bytes_needed);
  return header;
}

StatusOr<NpyArray> parse_npy(const std::vector<uint8_t>& bytes, const std::string& origin) {
  StatusOr<NpyHeader> header = parse_npy_header(bytes.data(), bytes.size(), origin);
  if (!header.ok()) return header.status();
  size_t available = bytes.size() - header->data_offset;
  if (available != header->data_bytes) {
    return Status::invalid_argument(
        origin + ": shape " + shape_to_string(header->shape) + " of " +
        to_string(header->dtype) + " needs " + std::to_string(header->data_bytes) +
        " bytes of data but the file has " + std::to_string(available) +
        (available < header->data_bytes ? " (truncated file?)" : " (trailing bytes)"));
  }
  NpyArray array;
  array.dtype = header->dtype;
  array.shape = header->shape;
  array.data.assign(bytes.begin() + static_cast<std::ptrdiff_t>(header->data_offset), bytes.end());
  return array;
}

StatusOr<NpyArray> read_npy(const std::string& path) {
  struct stat st;
  if (stat(path.c_str(), &st) != 0) {
    return Status::not_found("cannot open '" + path + "': " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) {
    return Status::invalid_argument("cannot read '" + path + "': not a regular file");
  }
  std::unique_ptr<FILE, int (*)(FILE*)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!file) return Status::not_found("cannot open '" + path + "': " + std::strerror(errno));
  // Memory follows the file's real size, never a length the header claims.
  std::vector<uint8_t> bytes;
  bytes.reserve(static_cast<size_t>(st.st_size));
  uint8_t chunk[1 << 16];
  while (true) {
    size_t n = std::fread(chunk, 1, sizeof(chunk), file.get());
    bytes.insert(bytes.end(), chunk, chunk + n);
    if (n < sizeof(chunk)) break;
  }
  if (std::ferror(file.get())) {
    return Status::invalid_argument("cannot read '" + path + "': " + std::strerror(errno));
  }
  return parse_npy(bytes, path);
}

StatusOr<std::string> make_npy_header(DataType dtype, const std::vector<int64_t>& shape,
                                      int major_version) {
  std::string dict = std::string("{'descr': '") + (dtype == DataType::kFloat16 ? "<f2" : "<f4") +
                     "', 'fortran_order': False, 'shape': " + shape_to_string(shape) + ", }";
  for (int64_t d : shape) {
    if (d < 0) {
      return Status::invalid_argument("shape " + shape_to_string(shape) +
                                      ": dimensions must be >= 0");
    }
  }
  // Padded with spaces and ended with '\n' so that magic + version + length + dict is a
  // multiple of kHeaderAlignment, as NumPy writes it.
  auto padded_dict = [&](size_t prefix) {
    size_t total = prefix + dict.size() + 1;
    size_t padding = (kHeaderAlignment - total % kHeaderAlignment) % kHeaderAlignment;
    return dict + std::string(padding, ' ') + "\n";
  };
  if (major_version == 0) major_version = padded_dict(10).size() <= 0xffff ? 1 : 2;
  if (major_version < 1 || major_version > 3) {
    return Status::invalid_argument(".npy format version " + std::to_string(major_version) +
                                    " cannot be written (1, 2 and 3 can)");
  }
  size_t prefix = major_version == 1 ? 10 : 12;
  std::string body = padded_dict(prefix);
  if (major_version == 1 && body.size() > 0xffff) {
    return Status::invalid_argument("a .npy 1.0 header holds at most 65535 bytes; shape " +
                                    shape_to_string(shape) + " needs version 2.0");
  }
  std::string header(kMagic, kMagicSize);
  header += static_cast<char>(major_version);
  header += '\0';
  uint32_t length = static_cast<uint32_t>(body.size());
  for (size_t i = 0; i < prefix - 8; ++i) header += static_cast<char>((length >> (8 * i)) & 0xff);
  return header + body;
}

Status write_npy(const std::string& path, const NpyArray& array, int major_version) {
  int64_t count = array.element_count();
  if (count < 0 || static_cast<uint64_t>(count) * element_size(array.dtype) != array.data.size()) {
    return Status::invalid_argument("cannot write '" + path + "': shape " +
                                    shape_to_string(array.shape) + " of " + to_string(array.dtype) +
                                    " does not match the " + std::to_string(array.data.size()) +
                                    " bytes of data");
  }
  StatusOr<std::string> header = make_npy_header(array.dtype, array.shape, major_version);
  if (!header.ok()) return header.status();
  StatusOr<AtomicFile> file = AtomicFile::create(path);
  if (!file.ok()) return file.status();
  CONVJIT_RETURN_IF_ERROR(file->write(header->data(), header->size()));
  CONVJIT_RETURN_IF_ERROR(file->write(array.data.data(), array.data.size()));
  return file->commit();
}

}  // namespace convjit
