// Tests of the .npy reader and writer: round trips and every kind of corrupt input.
#include "npy_file.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace convjit {
namespace {

// A scratch directory per test, removed with its files at the end.
class NpyFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char templ[] = "/tmp/convjit_npy_test_XXXXXX";
    ASSERT_NE(mkdtemp(templ), nullptr);
    dir_ = templ;
  }
  void TearDown() override {
    for (const std::string& f : files_) unlink(f.c_str());
    rmdir(dir_.c_str());
  }
  std::string path(const std::string& name) {
    files_.push_back(dir_ + "/" + name);
    return files_.back();
  }
  std::string dir_;
  std::vector<std::string> files_;
};

NpyArray make_f32(const std::vector<int64_t>& shape) {
  NpyArray a;
  a.dtype = DataType::kFloat32;
  a.shape = shape;
  int64_t count = a.element_count();
  std::vector<float> values(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) values[i] = 0.5f * static_cast<float>(i) - 3.0f;
  a.data.resize(values.size() * sizeof(float));
  std::memcpy(a.data.data(), values.data(), a.data.size());
  return a;
}

std::vector<uint8_t> bytes_of(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

// A file image with a hand-written dict (padded as NumPy pads it) and `data_bytes` zeros.
std::vector<uint8_t> image_with_dict(const std::string& dict, size_t data_bytes, int version = 1) {
  std::string body = dict;
  size_t prefix = version == 1 ? 10 : 12;
  while ((prefix + body.size() + 1) % 64 != 0) body += ' ';
  body += '\n';
  std::string image = std::string("\x93NUMPY", 6) + static_cast<char>(version) + '\0';
  for (size_t i = 0; i < prefix - 8; ++i) image += static_cast<char>((body.size() >> (8 * i)) & 0xff);
  image += body;
  image += std::string(data_bytes, '\0');
  return bytes_of(image);
}

std::string error_of(const std::vector<uint8_t>& image) {
  StatusOr<NpyArray> a = parse_npy(image, "x.npy");
  EXPECT_FALSE(a.ok());
  return a.ok() ? "" : a.status().message();
}

TEST_F(NpyFileTest, RoundTripsFloat32) {
  NpyArray a = make_f32({2, 3, 4, 5});
  std::string p = path("a.npy");
  ASSERT_TRUE(write_npy(p, a).ok());
  StatusOr<NpyArray> b = read_npy(p);
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ(b->dtype, DataType::kFloat32);
  EXPECT_EQ(b->shape, a.shape);
  EXPECT_EQ(b->data, a.data);
}

TEST_F(NpyFileTest, RoundTripsFloat16Bits) {
  NpyArray a;
  a.dtype = DataType::kFloat16;
  a.shape = {3, 7};
  for (int i = 0; i < 21; ++i) {
    uint16_t bits = static_cast<uint16_t>(0x3c00 + 37 * i);  // 1.0 and up, arbitrary mantissas
    a.data.push_back(bits & 0xff);
    a.data.push_back(bits >> 8);
  }
  std::string p = path("h.npy");
  ASSERT_TRUE(write_npy(p, a).ok());
  StatusOr<NpyArray> b = read_npy(p);
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ(b->dtype, DataType::kFloat16);
  EXPECT_EQ(b->shape, a.shape);
  EXPECT_EQ(b->data, a.data);
}

TEST_F(NpyFileTest, RoundTripsEveryHeaderVersion) {
  for (int version : {1, 2, 3}) {
    NpyArray a = make_f32({4, 1, 2, 3});
    std::string p = path("v" + std::to_string(version) + ".npy");
    ASSERT_TRUE(write_npy(p, a, version).ok());
    std::ifstream in(p, std::ios::binary);
    std::vector<uint8_t> image((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ASSERT_GT(image.size(), 8u);
    EXPECT_EQ(image[6], version);
    StatusOr<NpyHeader> h = parse_npy_header(image.data(), image.size(), p);
    ASSERT_TRUE(h.ok()) << h.status().message();
    EXPECT_EQ(h->data_offset % 64, 0u) << "NumPy aligns the data to 64 bytes";
    StatusOr<NpyArray> b = read_npy(p);
    ASSERT_TRUE(b.ok()) << b.status().message();
    EXPECT_EQ(b->shape, a.shape);
    EXPECT_EQ(b->data, a.data);
  }
}

TEST_F(NpyFileTest, ReadsScalarAndOneDimensionalShapes) {
  for (std::vector<int64_t> shape : {std::vector<int64_t>{}, std::vector<int64_t>{5}}) {
    NpyArray a = make_f32(shape);
    std::string p = path("s" + std::to_string(shape.size()) + ".npy");
    ASSERT_TRUE(write_npy(p, a).ok());
    StatusOr<NpyArray> b = read_npy(p);
    ASSERT_TRUE(b.ok()) << b.status().message();
    EXPECT_EQ(b->shape, shape);
  }
  EXPECT_EQ(shape_to_string({5}), "(5,)");
  EXPECT_EQ(shape_to_string({1, 2}), "(1, 2)");
}

TEST_F(NpyFileTest, AcceptsNumpyStyleHeaderVariants) {
  // Keys in another order, double quotes, no trailing comma, Python 2 long suffix.
  StatusOr<NpyArray> a = parse_npy(
      image_with_dict("{\"shape\": (2L, 3L), \"fortran_order\": False, \"descr\": \"<f2\"}", 12), "x");
  ASSERT_TRUE(a.ok()) << a.status().message();
  EXPECT_EQ(a->dtype, DataType::kFloat16);
  EXPECT_EQ(a->shape, (std::vector<int64_t>{2, 3}));
}

TEST_F(NpyFileTest, RejectsTruncatedHeader) {
  std::vector<uint8_t> good = image_with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8);
  for (size_t keep : {0, 3, 7, 9, 20, 60}) {
    std::vector<uint8_t> cut(good.begin(), good.begin() + keep);
    EXPECT_FALSE(error_of(cut).empty()) << "kept " << keep << " bytes";
  }
  EXPECT_NE(error_of(std::vector<uint8_t>(good.begin(), good.begin() + 20)).find("truncated"),
            std::string::npos);
}

TEST_F(NpyFileTest, RejectsBadMagic) {
  std::vector<uint8_t> image = image_with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8);
  image[1] = 'X';
  EXPECT_NE(error_of(image).find("magic"), std::string::npos);
  EXPECT_FALSE(error_of(bytes_of("PK\x03\x04 this is a zip")).empty());
}

TEST_F(NpyFileTest, RejectsUnknownVersion) {
  std::vector<uint8_t> image = image_with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8);
  image[6] = 4;
  EXPECT_NE(error_of(image).find("version 4.0"), std::string::npos);
}

TEST_F(NpyFileTest, RejectsBadDict) {
  const char* dicts[] = {
      "",
      "{",
      "not a dict",
      "{'descr': '<f4', 'fortran_order': False}",                              // no shape
      "{'descr': '<f4', 'shape': (2,)}",                                       // no fortran_order
      "{'fortran_order': False, 'shape': (2,)}",                               // no descr
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}",   // unknown key
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'shape': (2,)}",
      "{'descr': '<f4', 'fortran_order': 0, 'shape': (2,)}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': 2}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2)}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, x)}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2,) junk}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} junk",
      "{'descr': '<f4 , 'fortran_order': False, 'shape': (2,)}",
      "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,)}",
  };
  for (const char* dict : dicts) {
    EXPECT_FALSE(error_of(image_with_dict(dict, 8)).empty()) << dict;
  }
  std::string with_nul = std::string("{'descr': '<f4',\0 'fortran_order': False, 'shape': (2,)}", 57);
  EXPECT_FALSE(error_of(image_with_dict(with_nul, 8)).empty());
}

TEST_F(NpyFileTest, RejectsFortranOrder) {
  std::string e = error_of(image_with_dict("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }", 24));
  EXPECT_NE(e.find("fortran_order"), std::string::npos) << e;
}

TEST_F(NpyFileTest, RejectsBigEndian) {
  std::string e = error_of(image_with_dict("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8));
  EXPECT_NE(e.find("big-endian"), std::string::npos) << e;
}

TEST_F(NpyFileTest, RejectsOtherDtypes) {
  for (const char* descr : {"<f8", "<i4", "|u1", "|b1", "<c8", "f4", "=f4", "<f16"}) {
    std::string e = error_of(image_with_dict(std::string("{'descr': '") + descr +
                                                 "', 'fortran_order': False, 'shape': (2,), }",
                                             8));
    EXPECT_NE(e.find("not supported"), std::string::npos) << descr << ": " << e;
  }
}

TEST_F(NpyFileTest, RejectsDataShorterOrLongerThanTheShape) {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  EXPECT_NE(error_of(image_with_dict(dict, 23)).find("truncated"), std::string::npos);
  EXPECT_NE(error_of(image_with_dict(dict, 0)).find("truncated"), std::string::npos);
  EXPECT_NE(error_of(image_with_dict(dict, 25)).find("trailing"), std::string::npos);
  EXPECT_TRUE(parse_npy(image_with_dict(dict, 24), "x").ok());
}

TEST_F(NpyFileTest, RejectsNegativeAndOverflowingShapes) {
  EXPECT_NE(error_of(image_with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (-1, 3), }", 0))
                .find("negative"),
            std::string::npos);
  // 2^31 * 2^31 * 4 bytes overflows 63 bits; so does a dimension past int64.
  EXPECT_NE(error_of(image_with_dict("{'descr': '<f4', 'fortran_order': False, "
                                     "'shape': (2147483648, 2147483648, 4), }",
                                     0))
                .find("overflow"),
            std::string::npos);
  EXPECT_FALSE(error_of(image_with_dict("{'descr': '<f4', 'fortran_order': False, "
                                        "'shape': (99999999999999999999,), }",
                                        0))
                   .empty());
  // Huge but representable: rejected by the length check, without allocating it.
  EXPECT_NE(error_of(image_with_dict("{'descr': '<f2', 'fortran_order': False, "
                                     "'shape': (1000000000000,), }",
                                     4))
                .find("truncated"),
            std::string::npos);
}

TEST_F(NpyFileTest, RejectsHeaderLengthPastTheEnd) {
  std::vector<uint8_t> image = image_with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8);
  image[8] = 0xff;
  image[9] = 0xff;
  EXPECT_NE(error_of(image).find("truncated"), std::string::npos);
  std::vector<uint8_t> v2 = image_with_dict("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8, 2);
  v2[11] = 0x7f;
  EXPECT_FALSE(error_of(v2).empty());
}

TEST_F(NpyFileTest, NeverCrashesOnMutatedImages) {
  // Deterministic single- and double-byte mutations and truncations of a valid image:
  // each must parse or fail with a message, never crash (run under ASan to mean more).
  std::vector<uint8_t> good = image_with_dict("{'descr': '<f2', 'fortran_order': False, 'shape': (3, 2), }", 12);
  uint32_t state = 12345;
  auto next = [&] { return state = state * 1664525u + 1013904223u; };
  for (int trial = 0; trial < 4000; ++trial) {
    std::vector<uint8_t> image = good;
    int mutations = 1 + trial % 2;
    for (int m = 0; m < mutations; ++m) image[next() % image.size()] = static_cast<uint8_t>(next() >> 24);
    if (trial % 3 == 0) image.resize(next() % (image.size() + 1));
    StatusOr<NpyArray> a = parse_npy(image, "x");
    if (!a.ok()) {
      EXPECT_FALSE(a.status().message().empty());
    }
  }
}

TEST_F(NpyFileTest, ReportsMissingAndUnreadableFiles) {
  StatusOr<NpyArray> missing = read_npy(dir_ + "/does_not_exist.npy");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("does_not_exist.npy"), std::string::npos);
  StatusOr<NpyArray> directory = read_npy(dir_);
  ASSERT_FALSE(directory.ok());
  EXPECT_NE(directory.status().message().find("not a regular file"), std::string::npos);
}

TEST_F(NpyFileTest, FailedWriteLeavesNoFile) {
  NpyArray bad = make_f32({2, 2});
  bad.data.pop_back();  // data no longer matches the shape
  std::string p = path("bad.npy");
  EXPECT_FALSE(write_npy(p, bad).ok());
  EXPECT_NE(access(p.c_str(), F_OK), 0);
  EXPECT_FALSE(write_npy(dir_ + "/no_such_dir/x.npy", make_f32({2})).ok());
}

TEST_F(NpyFileTest, WriteReplacesAnExistingFileCompletely) {
  std::string p = path("r.npy");
  ASSERT_TRUE(write_npy(p, make_f32({100, 100})).ok());
  ASSERT_TRUE(write_npy(p, make_f32({2})).ok());
  StatusOr<NpyArray> b = read_npy(p);
  ASSERT_TRUE(b.ok()) << b.status().message();
  EXPECT_EQ(b->shape, std::vector<int64_t>{2});
}

}  // namespace
}  // namespace convjit
