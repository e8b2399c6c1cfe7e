// One test per rule of validate() (compiler/spec_validation.cpp): each rule rejects
// its violation with kInvalidSpec and a message naming the value and the rule, and
// the cases on the boundary of each rule are accepted.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "convjit/conv_spec.h"

namespace convjit {
namespace {

// A small valid forward convolution each test breaks in one way.
ConvSpec base_spec() {
  ConvSpec s;
  s.n = 2;
  s.c_in = 4;
  s.h_in = 8;
  s.w_in = 9;
  s.c_out = 6;
  s.kh = 3;
  s.kw = 3;
  return s;
}

ConvSpec base_transposed() {
  ConvSpec s = base_spec();
  s.transposed = true;
  s.weight_layout = WeightLayout::kIOHW;
  return s;
}

// Asserts that validate(s) fails with kInvalidSpec and a message containing every
// fragment (the offending value and the words of the rule).
void expect_rejected(const ConvSpec& s, const std::vector<std::string>& fragments) {
  const Status status = validate(s);
  ASSERT_FALSE(status.ok()) << "accepted: " << canonical_key(s);
  EXPECT_EQ(status.code(), StatusCode::kInvalidSpec) << status.message();
  for (const std::string& f : fragments)
    EXPECT_NE(status.message().find(f), std::string::npos)
        << "message \"" << status.message() << "\" lacks \"" << f << "\"";
}

void expect_valid(const ConvSpec& s) {
  const Status status = validate(s);
  EXPECT_TRUE(status.ok()) << status.message();
}

TEST(SpecValidation, BaseSpecsAreValid) {
  expect_valid(base_spec());
  expect_valid(base_transposed());
}

// ---- Enum values --------------------------------------------------------------

TEST(SpecValidation, RejectsUnknownPaddingMode) {
  ConvSpec s = base_spec();
  s.padding_mode = static_cast<PaddingMode>(7);
  expect_rejected(s, {"padding_mode=7", "unknown enum value", "zeros, reflect, replicate, circular"});
}

TEST(SpecValidation, RejectsUnknownConvMode) {
  ConvSpec s = base_spec();
  s.conv_mode = static_cast<ConvMode>(5);
  expect_rejected(s, {"conv_mode=5", "unknown enum value", "cross_correlation, convolution"});
}

TEST(SpecValidation, RejectsUnknownDataType) {
  ConvSpec s = base_spec();
  s.dtype = static_cast<DataType>(9);
  expect_rejected(s, {"dtype=9", "unknown enum value", "f32, f16"});
}

TEST(SpecValidation, RejectsUnknownComputeMode) {
  ConvSpec s = base_spec();
  s.compute_mode = static_cast<ComputeMode>(3);
  expect_rejected(s, {"compute_mode=3", "unknown enum value", "default, float32"});
}

TEST(SpecValidation, RejectsUnknownWeightLayout) {
  ConvSpec s = base_spec();
  s.weight_layout = static_cast<WeightLayout>(5);
  expect_rejected(s, {"weight_layout=5", "unknown enum value", "oihw, goihw, iohw, mihw, oihw16o"});
}

// ---- Sizes ----------------------------------------------------------------------

struct SizeField {
  const char* name;
  int64_t ConvSpec::*field;
  const char* what;
};

const SizeField kSizeFields[] = {
    {"n", &ConvSpec::n, "batch size"},
    {"c_in", &ConvSpec::c_in, "input channels"},
    {"h_in", &ConvSpec::h_in, "input height"},
    {"w_in", &ConvSpec::w_in, "input width"},
    {"c_out", &ConvSpec::c_out, "output channels"},
    {"kh", &ConvSpec::kh, "kernel height"},
    {"kw", &ConvSpec::kw, "kernel width"},
    {"stride_h", &ConvSpec::stride_h, "stride"},
    {"stride_w", &ConvSpec::stride_w, "stride"},
    {"dilation_h", &ConvSpec::dilation_h, "dilation (1 = dense)"},
    {"dilation_w", &ConvSpec::dilation_w, "dilation (1 = dense)"},
    {"groups", &ConvSpec::groups, "groups"},
};

TEST(SpecValidation, RejectsSizesBelowOne) {
  for (const SizeField& f : kSizeFields) {
    SCOPED_TRACE(f.name);
    for (int64_t bad : {0, -3}) {
      ConvSpec s = base_spec();
      s.*f.field = bad;
      expect_rejected(s, {std::string(f.name) + "=" + std::to_string(bad), f.what, "must be >= 1"});
    }
  }
}

TEST(SpecValidation, RejectsSizesOf2To31OrMore) {
  for (const SizeField& f : kSizeFields) {
    SCOPED_TRACE(f.name);
    ConvSpec s = base_spec();
    s.*f.field = int64_t{1} << 31;
    expect_rejected(s, {std::string(f.name) + "=2147483648", f.what, "must be < 2^31"});
  }
}

TEST(SpecValidation, RejectsPaddingMagnitudesOf2To31OrMore) {
  const std::pair<const char*, int64_t ConvSpec::*> fields[] = {
      {"pad_top", &ConvSpec::pad_top},
      {"pad_bottom", &ConvSpec::pad_bottom},
      {"pad_left", &ConvSpec::pad_left},
      {"pad_right", &ConvSpec::pad_right},
      {"output_padding_h", &ConvSpec::output_padding_h},
      {"output_padding_w", &ConvSpec::output_padding_w},
      {"outsize_h", &ConvSpec::outsize_h},
      {"outsize_w", &ConvSpec::outsize_w},
  };
  for (const auto& [name, field] : fields) {
    SCOPED_TRACE(name);
    for (int64_t bad : {int64_t{1} << 31, -(int64_t{1} << 31)}) {
      ConvSpec s = base_transposed();
      s.*field = bad;
      expect_rejected(s, {std::string(name) + "=" + std::to_string(bad), "magnitude must be < 2^31"});
    }
  }
}

TEST(SpecValidation, RejectsNegativeTopPadding) {
  ConvSpec s = base_spec();
  s.pad_top = -1;
  expect_rejected(s, {"pad_top=-1", "top and left padding must be >= 0"});
}

TEST(SpecValidation, RejectsNegativeLeftPadding) {
  ConvSpec s = base_spec();
  s.pad_left = -2;
  expect_rejected(s, {"pad_left=-2", "top and left padding must be >= 0"});
}

// ---- Groups -------------------------------------------------------------------

TEST(SpecValidation, RejectsInputChannelsNotDivisibleByGroups) {
  ConvSpec s = base_spec();
  s.c_in = 10;
  s.c_out = 6;
  s.groups = 3;
  expect_rejected(s, {"c_in=10", "groups=3", "c_in must be divisible by groups"});
}

TEST(SpecValidation, RejectsOutputChannelsNotDivisibleByGroups) {
  ConvSpec s = base_spec();
  s.c_in = 4;
  s.c_out = 6;
  s.groups = 4;
  expect_rejected(s, {"c_out=6", "groups=4", "c_out must be divisible by groups"});
}

TEST(SpecValidation, RejectsMihwUnlessDepthwise) {
  ConvSpec s = base_spec();
  s.c_in = 4;
  s.c_out = 8;
  s.groups = 2;
  s.weight_layout = WeightLayout::kMIHW;
  expect_rejected(s, {"mihw", "groups=2", "c_in=4", "needs groups == c_in"});
}

TEST(SpecValidation, RejectsOihw16oUnlessTheOutputChannelsFillBlocksOf16) {
  ConvSpec s = base_spec();
  s.c_out = 24;
  s.weight_layout = WeightLayout::kOIHW16o;
  expect_rejected(s, {"oihw16o", "c_out=24", "multiple of 16"});
  s.c_out = 32;
  EXPECT_TRUE(validate(s).ok()) << validate(s).message();
  s.transposed = true;  // O is the operation's output channels here too
  EXPECT_TRUE(validate(s).ok()) << validate(s).message();
}

// ---- Transposed convolution ---------------------------------------------------

TEST(SpecValidation, RejectsOutputPaddingOnForward) {
  ConvSpec s = base_spec();
  s.output_padding_w = 1;
  expect_rejected(s, {"output_padding=(0, 1)", "output_padding applies only to transposed convolutions"});
}

TEST(SpecValidation, RejectsOutsizeOnForward) {
  ConvSpec s = base_spec();
  s.outsize_h = 8;
  expect_rejected(s, {"outsize=(8, 0)", "outsize applies only to transposed convolutions"});
}

TEST(SpecValidation, RejectsNonZeroPaddingModeOnTransposed) {
  for (PaddingMode mode : {PaddingMode::kReflect, PaddingMode::kReplicate, PaddingMode::kCircular}) {
    ConvSpec s = base_transposed();
    s.pad_top = s.pad_left = 1;
    s.padding_mode = mode;
    expect_rejected(s, {std::string("padding mode ") + to_string(mode),
                        "only zeros padding is defined there"});
  }
}

TEST(SpecValidation, RejectsCoverAllOnTransposed) {
  ConvSpec s = base_transposed();
  s.cover_all = true;
  expect_rejected(s, {"cover_all", "cover_all applies only to forward convolutions"});
}

TEST(SpecValidation, RejectsNegativeBottomOrRightPaddingOnTransposed) {
  ConvSpec s = base_transposed();
  s.pad_bottom = -1;
  expect_rejected(s, {"pad_bottom=-1", "padding of a transposed convolution must be >= 0"});
  s = base_transposed();
  s.pad_right = -2;
  expect_rejected(s, {"pad_right=-2", "padding of a transposed convolution must be >= 0"});
}

TEST(SpecValidation, RejectsNegativeOutputPadding) {
  ConvSpec s = base_transposed();
  s.output_padding_h = -1;
  expect_rejected(s, {"output_padding=(-1, 0)", "output_padding must be >= 0"});
}

TEST(SpecValidation, RejectsOutsizeTogetherWithOutputPadding) {
  ConvSpec s = base_transposed();
  s.stride_h = 2;
  s.outsize_h = 17;
  s.output_padding_h = 1;
  expect_rejected(s, {"outsize_h=17", "output_padding_h=1", "give outsize or output_padding, not both"});
}

TEST(SpecValidation, RejectsOutsizeOutsideChainersRange) {
  // Natural size 2*(8-1) + 3 = 17; Chainer accepts 17..18 with stride 2.
  ConvSpec s = base_transposed();
  s.stride_h = 2;
  s.outsize_h = 16;
  expect_rejected(s, {"outsize_h=16", "[17, 18]", "outsize must lie in"});
  s.outsize_h = 19;
  expect_rejected(s, {"outsize_h=19", "[17, 18]", "outsize must lie in"});
  s = base_transposed();
  s.stride_w = 3;
  s.outsize_w = 30;  // natural 3*(9-1) + 3 = 27: range [27, 29]
  expect_rejected(s, {"outsize_w=30", "[27, 29]"});
}

TEST(SpecValidation, RejectsOutputPaddingNotBelowStrideOrDilation) {
  ConvSpec s = base_transposed();
  s.stride_h = 2;
  s.dilation_h = 2;
  s.output_padding_h = 2;
  expect_rejected(s, {"output_padding_h=2", "stride_h=2", "dilation_h=2",
                      "output_padding must be smaller than stride or dilation"});
  s = base_transposed();
  s.output_padding_w = 1;  // stride 1, dilation 1
  expect_rejected(s, {"output_padding_w=1", "stride_w=1", "dilation_w=1"});
}

// ---- Padding modes ----------------------------------------------------------------

TEST(SpecValidation, RejectsCoverAllWithNonZeroPaddingMode) {
  ConvSpec s = base_spec();
  s.cover_all = true;
  s.padding_mode = PaddingMode::kReplicate;
  expect_rejected(s, {"cover_all with padding mode replicate", "cover_all needs zeros padding"});
}

TEST(SpecValidation, RejectsReflectPaddingNotSmallerThanInput) {
  const std::pair<const char*, int64_t ConvSpec::*> fields[] = {{"pad_top", &ConvSpec::pad_top},
                                                                {"pad_bottom", &ConvSpec::pad_bottom},
                                                                {"pad_left", &ConvSpec::pad_left},
                                                                {"pad_right", &ConvSpec::pad_right}};
  for (const auto& [name, field] : fields) {
    ConvSpec s = base_spec();
    s.padding_mode = PaddingMode::kReflect;
    const bool vertical = std::string(name) == "pad_top" || std::string(name) == "pad_bottom";
    s.*field = vertical ? s.h_in : s.w_in;
    expect_rejected(s, {std::string(name) + "=" + std::to_string(s.*field),
                        vertical ? "h_in=8" : "w_in=9",
                        "reflect padding must be smaller than the input size"});
  }
}

TEST(SpecValidation, RejectsCircularPaddingLargerThanInput) {
  ConvSpec s = base_spec();
  s.padding_mode = PaddingMode::kCircular;
  s.pad_right = 10;
  expect_rejected(s, {"pad_right=10", "w_in=9", "circular padding must not be larger than the input size"});
  s = base_spec();
  s.padding_mode = PaddingMode::kCircular;
  s.pad_bottom = 9;
  expect_rejected(s, {"pad_bottom=9", "h_in=8"});
}

// ---- Output size ------------------------------------------------------------------

TEST(SpecValidation, RejectsEmptyOutputHeight) {
  ConvSpec s = base_spec();
  s.kh = 9;  // 8 rows, no padding
  expect_rejected(s, {"output height 0", "h_in=8", "kh=9", "output size must be >= 1"});
  s = base_spec();
  s.pad_bottom = -6;  // forward: may be negative, but not below an empty output
  expect_rejected(s, {"output height 0", "pad_bottom=-6"});
}

TEST(SpecValidation, RejectsEmptyOutputWidth) {
  ConvSpec s = base_spec();
  s.kw = 5;
  s.dilation_w = 3;  // dilated extent 13 > 9
  expect_rejected(s, {"output width -3", "w_in=9", "dilation_w=3", "output size must be >= 1"});
  s = base_transposed();
  s.w_in = 1;
  s.kw = 1;
  s.pad_left = 1;  // 1 - 1 = 0 columns
  expect_rejected(s, {"output width 0", "pad_left=1"});
}

// ---- 32-bit indexing ------------------------------------------------------------

TEST(SpecValidation, RejectsTensorsOf2To31BytesOrMore) {
  ConvSpec s = base_spec();
  s.n = 1;
  s.c_in = 1;
  s.c_out = 1;
  s.kh = s.kw = 1;
  s.h_in = 1 << 15;
  s.w_in = 1 << 14;  // 2^29 f32 elements = 2^31 bytes
  expect_rejected(s, {"input tensor of 536870912 f32 elements", "smaller than 2^31 bytes",
                      "32-bit indexing"});
  s.dtype = DataType::kFloat16;  // 2^30 bytes: fits
  expect_valid(s);
  s.c_out = 2;  // an output twice as large
  expect_rejected(s, {"output tensor of 1073741824 f16 elements"});
  s = base_spec();
  s.c_in = s.c_out = 1 << 16;
  s.kh = s.kw = 1;
  s.h_in = s.w_in = 1;
  s.n = 1;
  expect_rejected(s, {"weights tensor of 4294967296 f32 elements"});
}

TEST(SpecValidation, RejectsPaddedExtentBeyond32Bits) {
  ConvSpec s = base_spec();
  s.stride_h = int64_t{1} << 30;
  s.h_in = 2;
  s.kh = 1;
  expect_rejected(s, {"padded extent 2147483649x", "input positions must fit 32-bit indexing"});
}

// ---- The boundary of each rule is accepted ------------------------------------------

TEST(SpecValidation, AcceptsReflectPaddingOfSizeMinusOne) {
  ConvSpec s = base_spec();
  s.padding_mode = PaddingMode::kReflect;
  s.pad_top = s.pad_bottom = s.h_in - 1;
  s.pad_left = s.pad_right = s.w_in - 1;
  expect_valid(s);
}

TEST(SpecValidation, AcceptsCircularPaddingOfTheInputSize) {
  ConvSpec s = base_spec();
  s.padding_mode = PaddingMode::kCircular;
  s.pad_top = s.pad_bottom = s.h_in;
  s.pad_left = s.pad_right = s.w_in;
  expect_valid(s);
}

TEST(SpecValidation, AcceptsReplicatePaddingLargerThanTheInput) {
  ConvSpec s = base_spec();
  s.padding_mode = PaddingMode::kReplicate;
  s.pad_top = 20;
  s.pad_right = 30;
  expect_valid(s);
}

TEST(SpecValidation, AcceptsOutputPaddingOfStrideMinusOne) {
  ConvSpec s = base_transposed();
  s.stride_h = 3;
  s.stride_w = 2;
  s.output_padding_h = 2;
  s.output_padding_w = 1;
  expect_valid(s);
}

TEST(SpecValidation, AcceptsOutputPaddingOfDilationMinusOneAtStrideOne) {
  ConvSpec s = base_transposed();
  s.dilation_h = 3;
  s.output_padding_h = 2;
  expect_valid(s);
}

TEST(SpecValidation, AcceptsOutputPaddingExceedingPadBottom) {
  ConvSpec s = base_transposed();
  s.stride_h = s.stride_w = 3;
  s.pad_bottom = 1;
  s.output_padding_h = 2;
  expect_valid(s);
}

TEST(SpecValidation, AcceptsOutsizeAtBothEndsOfChainersRange) {
  ConvSpec s = base_transposed();
  s.stride_h = 2;
  s.outsize_h = 17;
  expect_valid(s);
  s.outsize_h = 18;
  expect_valid(s);
  EXPECT_EQ(output_h(s), 18);
  EXPECT_EQ(effective_output_padding_h(s), 1);
}

TEST(SpecValidation, AcceptsKernelAsLargeAsThePaddedInput) {
  ConvSpec s = base_spec();
  s.pad_top = 1;
  s.pad_bottom = 2;
  s.kh = s.h_in + 3;
  s.kw = s.w_in;
  expect_valid(s);
  EXPECT_EQ(output_h(s), 1);
  EXPECT_EQ(output_w(s), 1);
  s.dilation_h = 2;  // a dilated kernel just covering the padded input
  s.kh = (s.h_in + 3 - 1) / 2 + 1;
  expect_valid(s);
}

TEST(SpecValidation, AcceptsNegativeBottomPaddingOnForward) {
  // benchdnn's ResNet-50 projection mb1ic256ih56oc512oh28kh1sh2 derives -1.
  ConvSpec s;
  s.c_in = 256;
  s.h_in = s.w_in = 56;
  s.c_out = 512;
  s.kh = s.kw = 1;
  s.stride_h = s.stride_w = 2;
  s.pad_bottom = s.pad_right = -1;
  expect_valid(s);
  EXPECT_EQ(output_h(s), 28);
}

TEST(SpecValidation, AcceptsOneByOneImagesAndDepthwiseWithMultiplier) {
  ConvSpec s = ConvSpec::depthwise(1, 3, 1, 1, 3, 1, 1);
  s.weight_layout = WeightLayout::kMIHW;
  expect_valid(s);
  s.transposed = true;
  expect_valid(s);
}

TEST(SpecValidation, AcceptsCoverAllWithZerosPadding) {
  ConvSpec s = base_spec();
  s.cover_all = true;
  s.stride_h = 3;
  expect_valid(s);
}

}  // namespace
}  // namespace convjit
