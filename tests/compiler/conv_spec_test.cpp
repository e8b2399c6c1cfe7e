// Tests of ConvSpec's derived quantities against the seed documents' worked examples, and of its canonical key.
#include "convjit/conv_spec.h"

#include <gtest/gtest.h>

#include <array>
#include <set>
#include <string>
#include <vector>

#include "square_conv.h"

namespace convjit {
namespace {

std::array<int64_t, 4> shape4(int64_t a, int64_t b, int64_t c, int64_t d) { return {a, b, c, d}; }
std::array<int64_t, 5> shape5(int64_t a, int64_t b, int64_t c, int64_t d, int64_t e = 0) {
  return {a, b, c, d, e};
}

// Chainer convolution_2d docstring: n=10, c_i=3, c_o=1, 30x40 input, 10x10 kernel,
// pad 5, stride (5, 7).
ConvSpec chainer_convolution_example() {
  ConvSpec s;
  s.n = 10;
  s.c_in = 3;
  s.c_out = 1;
  s.h_in = 30;
  s.w_in = 40;
  s.kh = s.kw = 10;
  s.pad_top = s.pad_bottom = s.pad_left = s.pad_right = 5;
  s.stride_h = 5;
  s.stride_w = 7;
  return s;
}

// Chainer deconvolution_2d docstring: n=10, c_i=1, c_o=3, 5x10 input, 10x10 kernel,
// stride 5, pad 5.
ConvSpec chainer_deconvolution_example() {
  ConvSpec s;
  s.transposed = true;
  s.weight_layout = WeightLayout::kIOHW;
  s.n = 10;
  s.c_in = 1;
  s.c_out = 3;
  s.h_in = 5;
  s.w_in = 10;
  s.kh = s.kw = 10;
  s.stride_h = s.stride_w = 5;
  s.pad_top = s.pad_bottom = s.pad_left = s.pad_right = 5;
  return s;
}

// MegEngine Conv2d(in_channels=3, out_channels=1, kernel_size=3) on a (2, 3, 4, 4) input.
ConvSpec megengine_example() {
  ConvSpec s;
  s.n = 2;
  s.c_in = 3;
  s.c_out = 1;
  s.h_in = s.w_in = 4;
  s.kh = s.kw = 3;
  return s;
}

TEST(ConvSpec, ChainerConvolutionExampleShape) {
  const ConvSpec s = chainer_convolution_example();
  ASSERT_TRUE(validate(s).ok()) << validate(s).message();
  EXPECT_EQ(input_shape(s), shape4(10, 3, 30, 40));
  EXPECT_EQ(output_shape(s), shape4(10, 1, 7, 6));
  EXPECT_EQ(weight_rank(s), 4);
  EXPECT_EQ(weight_shape(s), shape5(1, 3, 10, 10));
  EXPECT_EQ(bias_size(s), 1);
}

TEST(ConvSpec, ChainerCoverAllAddsOneColumn) {
  ConvSpec s = chainer_convolution_example();
  s.cover_all = true;
  ASSERT_TRUE(validate(s).ok()) << validate(s).message();
  // Height: the last stride already reaches the end, so only the width grows.
  EXPECT_EQ(output_shape(s), shape4(10, 1, 7, 7));
}

TEST(ConvSpec, ChainerDepthwiseExampleShape) {
  // x (2, 3, 4, 7), W (2, 3, 3, 3) -> y (2, 6, 2, 5).
  ConvSpec s = ConvSpec::depthwise(2, 3, 4, 7, 2, 3, 3);
  s.weight_layout = WeightLayout::kMIHW;
  ASSERT_TRUE(validate(s).ok()) << validate(s).message();
  EXPECT_TRUE(is_depthwise(s));
  EXPECT_EQ(depthwise_multiplier(s), 2);
  EXPECT_EQ(output_shape(s), shape4(2, 6, 2, 5));
  EXPECT_EQ(weight_shape(s), shape5(2, 3, 3, 3));
  EXPECT_EQ(bias_size(s), 6);
  // The same convolution in PyTorch's layout: (c_out, c_in/g, kh, kw).
  s.weight_layout = WeightLayout::kOIHW;
  EXPECT_EQ(weight_shape(s), shape5(6, 1, 3, 3));
}

TEST(ConvSpec, NotDepthwiseWhenGroupsDifferFromInputChannels) {
  ConvSpec s = megengine_example();
  EXPECT_FALSE(is_depthwise(s));
  EXPECT_EQ(depthwise_multiplier(s), 0);
}

TEST(ConvSpec, ChainerDeconvolutionExampleShape) {
  const ConvSpec s = chainer_deconvolution_example();
  ASSERT_TRUE(validate(s).ok()) << validate(s).message();
  // h_o = 5*(5-1) + 10 - 2*5 = 20, w_o = 5*(10-1) + 10 - 2*5 = 45.
  EXPECT_EQ(output_shape(s), shape4(10, 3, 20, 45));
  EXPECT_EQ(weight_shape(s), shape5(1, 3, 10, 10));
  EXPECT_EQ(effective_output_padding_h(s), 0);
}

TEST(ConvSpec, ChainerOutsizeAcceptedInsideItsRange) {
  // Chainer accepts outsize in [natural, natural + stride - 1]: [20, 24] and [45, 49].
  for (int64_t extra = 0; extra < 5; ++extra) {
    ConvSpec s = chainer_deconvolution_example();
    s.outsize_h = 20 + extra;
    s.outsize_w = 45 + extra;
    ASSERT_TRUE(validate(s).ok()) << "extra " << extra << ": " << validate(s).message();
    EXPECT_EQ(output_shape(s), shape4(10, 3, 20 + extra, 45 + extra));
    EXPECT_EQ(effective_output_padding_h(s), extra);
    EXPECT_EQ(effective_output_padding_w(s), extra);
  }
}

TEST(ConvSpec, ChainerOutsizeRejectedOutsideItsRange) {
  for (int64_t outsize_h : {19, 25}) {
    ConvSpec s = chainer_deconvolution_example();
    s.outsize_h = outsize_h;
    s.outsize_w = 45;
    const Status status = validate(s);
    EXPECT_FALSE(status.ok()) << "outsize_h " << outsize_h;
    EXPECT_NE(status.message().find("outsize_h=" + std::to_string(outsize_h)), std::string::npos)
        << status.message();
  }
}

TEST(ConvSpec, MegEngineExampleShape) {
  const ConvSpec s = megengine_example();
  ASSERT_TRUE(validate(s).ok()) << validate(s).message();
  EXPECT_EQ(output_shape(s), shape4(2, 1, 2, 2));
}

TEST(ConvSpec, MegEngineGroupedWeightShape) {
  ConvSpec s = megengine_example();
  s.c_in = 4;
  s.c_out = 6;
  s.groups = 2;
  s.weight_layout = WeightLayout::kGOIHW;
  ASSERT_TRUE(validate(s).ok()) << validate(s).message();
  // (G, O/G, I/G, kh, kw)
  EXPECT_EQ(weight_rank(s), 5);
  EXPECT_EQ(weight_shape(s), shape5(2, 3, 2, 3, 3));
  // OIHW has the same memory: (O, I/G, kh, kw).
  s.weight_layout = WeightLayout::kOIHW;
  EXPECT_EQ(weight_rank(s), 4);
  EXPECT_EQ(weight_shape(s), shape5(6, 2, 3, 3));
}

TEST(ConvSpec, PyTorchDilatedStridedExampleShape) {
  // nn.Conv2d(16, 33, (3, 5), stride=(2, 1), padding=(4, 2), dilation=(3, 1)) on (20, 16, 50, 100).
  ConvSpec s;
  s.n = 20;
  s.c_in = 16;
  s.c_out = 33;
  s.h_in = 50;
  s.w_in = 100;
  s.kh = 3;
  s.kw = 5;
  s.stride_h = 2;
  s.stride_w = 1;
  s.pad_top = s.pad_bottom = 4;
  s.pad_left = s.pad_right = 2;
  s.dilation_h = 3;
  s.dilation_w = 1;
  ASSERT_TRUE(validate(s).ok()) << validate(s).message();
  // PyTorch: H_out = floor((50 + 2*4 - 3*(3-1) - 1)/2 + 1) = 26,
  //          W_out = floor((100 + 2*2 - 1*(5-1) - 1)/1 + 1) = 100.
  EXPECT_EQ(dilated_kernel_h(s), 7);
  EXPECT_EQ(dilated_kernel_w(s), 5);
  EXPECT_EQ(output_shape(s), shape4(20, 33, 26, 100));
  EXPECT_EQ(weight_shape(s), shape5(33, 16, 3, 5));
}

TEST(ConvSpec, TransposedOutputPaddingAddsRows) {
  // PyTorch ConvTranspose2d(8, 4, 3, stride=2, padding=1, output_padding=1) on 4x4: 8x8.
  ConvSpec s;
  s.transposed = true;
  s.c_in = 8;
  s.c_out = 4;
  s.h_in = s.w_in = 4;
  s.kh = s.kw = 3;
  s.stride_h = s.stride_w = 2;
  s.pad_top = s.pad_bottom = s.pad_left = s.pad_right = 1;
  s.output_padding_h = s.output_padding_w = 1;
  ASSERT_TRUE(validate(s).ok()) << validate(s).message();
  EXPECT_EQ(output_h(s), 8);
  EXPECT_EQ(output_w(s), 8);
}

TEST(ConvSpec, FlopsCountMultiplyAddsTwice) {
  // 2 * n*c_out*h_out*w_out * (c_in/g)*kh*kw = 2 * 2*1*2*2 * 3*3*3.
  EXPECT_DOUBLE_EQ(flops(megengine_example()), 432.0);

  ConvSpec grouped = megengine_example();
  grouped.c_in = 4;
  grouped.c_out = 6;
  grouped.groups = 2;
  // 2 * 2*6*2*2 * 2*3*3
  EXPECT_DOUBLE_EQ(flops(grouped), 1728.0);

  // Transposed: input and output swap roles, 2 * n*c_in*h_in*w_in * (c_out/g)*kh*kw.
  EXPECT_DOUBLE_EQ(flops(chainer_deconvolution_example()), 2.0 * 10 * 1 * 5 * 10 * 3 * 10 * 10);
}

TEST(ConvSpec, CanonicalKeyEqualForCoverAllAndEquivalentPadding) {
  ConvSpec cover_all = chainer_convolution_example();
  cover_all.cover_all = true;
  // cover_all's output is 7x7; the explicit padding that gives 7x7 with pad 5 on top/left:
  // bottom (7-1)*5 + 10 - 30 - 5 = 5, right (7-1)*7 + 10 - 40 - 5 = 7.
  ConvSpec explicit_pad = chainer_convolution_example();
  explicit_pad.pad_right = 7;
  ASSERT_TRUE(validate(explicit_pad).ok());
  EXPECT_EQ(output_shape(explicit_pad), output_shape(cover_all));
  EXPECT_EQ(canonical_key(cover_all), canonical_key(explicit_pad));
  EXPECT_EQ(canonical_hash(cover_all), canonical_hash(explicit_pad));

  // Padding beyond the last window is never read: 11 on the right still gives 7 columns.
  explicit_pad.pad_right = 11;
  EXPECT_EQ(canonical_key(cover_all), canonical_key(explicit_pad));
}

TEST(ConvSpec, CanonicalKeyEqualForEquivalentTransposedForms) {
  ConvSpec a = chainer_deconvolution_example();
  a.outsize_h = 22;
  a.outsize_w = 45;
  ConvSpec b = chainer_deconvolution_example();
  b.output_padding_h = 2;
  ConvSpec c = chainer_deconvolution_example();
  // Same output rows, cropped two fewer at the bottom instead of padded at the end.
  c.pad_bottom = 3;
  for (const ConvSpec* s : {&a, &b, &c}) ASSERT_TRUE(validate(*s).ok()) << validate(*s).message();
  EXPECT_EQ(canonical_key(a), canonical_key(b));
  EXPECT_EQ(canonical_key(a), canonical_key(c));
}

TEST(ConvSpec, CanonicalKeyIgnoresComputeModeForFloat32) {
  ConvSpec a = megengine_example();
  ConvSpec b = a;
  b.compute_mode = ComputeMode::kFloat32;
  EXPECT_EQ(canonical_key(a), canonical_key(b));
  a.dtype = b.dtype = DataType::kFloat16;
  EXPECT_NE(canonical_key(a), canonical_key(b));
}

TEST(ConvSpec, CanonicalKeyDiffersWhenAnyFieldDiffers) {
  // f16 so that compute_mode matters; every variant must stay valid.
  ConvSpec base;
  base.n = 2;
  base.c_in = 4;
  base.c_out = 8;
  base.h_in = base.w_in = 16;
  base.kh = base.kw = 3;
  base.pad_top = base.pad_bottom = base.pad_left = base.pad_right = 1;
  base.dtype = DataType::kFloat16;

  std::vector<std::pair<std::string, ConvSpec>> variants;
  auto add = [&](const std::string& what, auto change) {
    ConvSpec s = base;
    change(s);
    variants.emplace_back(what, s);
  };
  add("base", [](ConvSpec&) {});
  add("n", [](ConvSpec& s) { s.n = 3; });
  add("c_in", [](ConvSpec& s) { s.c_in = 8; });
  add("h_in", [](ConvSpec& s) { s.h_in = 17; });
  add("w_in", [](ConvSpec& s) { s.w_in = 17; });
  add("c_out", [](ConvSpec& s) { s.c_out = 4; });
  add("kh", [](ConvSpec& s) { s.kh = 5; });
  add("kw", [](ConvSpec& s) { s.kw = 5; });
  add("stride_h", [](ConvSpec& s) { s.stride_h = 2; });
  add("stride_w", [](ConvSpec& s) { s.stride_w = 2; });
  add("pad_top", [](ConvSpec& s) { s.pad_top = 2; });
  add("pad_bottom", [](ConvSpec& s) { s.pad_bottom = 2; });
  add("pad_left", [](ConvSpec& s) { s.pad_left = 2; });
  add("pad_right", [](ConvSpec& s) { s.pad_right = 2; });
  add("dilation_h", [](ConvSpec& s) { s.dilation_h = 2; });
  add("dilation_w", [](ConvSpec& s) { s.dilation_w = 2; });
  add("groups", [](ConvSpec& s) { s.groups = 2; });
  add("transposed", [](ConvSpec& s) { s.transposed = true; });
  add("transposed output_padding", [](ConvSpec& s) {
    s.transposed = true;
    s.stride_h = 2;
    s.output_padding_h = 1;
  });
  add("transposed stride", [](ConvSpec& s) {
    s.transposed = true;
    s.stride_h = 2;
  });
  add("padding_mode", [](ConvSpec& s) { s.padding_mode = PaddingMode::kReflect; });
  add("conv_mode", [](ConvSpec& s) { s.conv_mode = ConvMode::kConvolution; });
  add("dtype", [](ConvSpec& s) { s.dtype = DataType::kFloat32; });
  add("compute_mode", [](ConvSpec& s) { s.compute_mode = ComputeMode::kFloat32; });
  add("weight_layout", [](ConvSpec& s) { s.weight_layout = WeightLayout::kGOIHW; });
  add("has_bias", [](ConvSpec& s) { s.has_bias = true; });

  std::set<std::string> keys, hashes;
  for (const auto& [what, s] : variants) {
    ASSERT_TRUE(validate(s).ok()) << what << ": " << validate(s).message();
    EXPECT_TRUE(keys.insert(canonical_key(s)).second) << what << " collides: " << canonical_key(s);
    EXPECT_TRUE(hashes.insert(canonical_hash(s)).second) << what;
  }
}

TEST(ConvSpec, CanonicalHashIsSixteenHexDigitsAndStable) {
  const ConvSpec s = megengine_example();
  const std::string hash = canonical_hash(s);
  ASSERT_EQ(hash.size(), 16u);
  EXPECT_EQ(hash.find_first_not_of("0123456789abcdef"), std::string::npos) << hash;
  EXPECT_EQ(hash, canonical_hash(s));
  char expected[17];
  std::snprintf(expected, sizeof expected, "%016llx",
                static_cast<unsigned long long>(fnv1a64(canonical_key(s))));
  EXPECT_EQ(hash, expected);
  // Pinned: the key names every field and is stored on disk with cached kernels, so
  // an accidental change of its format (field order, names, spacing) must be noticed
  // here; a deliberate change bumps "conv2d.v1" and updates this value. Computed once
  // from the key "conv2d.v1 n=2 c_in=3 h_in=4 w_in=4 c_out=1 kh=3 kw=3 stride=1x1 ..."
  // and checked against an independent FNV-1a implementation.
  EXPECT_EQ(hash, "8b25adede29a6416");
}

TEST(ConvSpec, Fnv1aMatchesPublishedVectors) {
  // FNV-1a 64 test vectors from the reference implementation.
  EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cull);
}

// OIHW16o: (c_out/16, c_in/g, kh, kw, 16), element [o/16][i][ky][kx][o%16]; the
// conversion from OIHW puts every weight there, and back gives the original.
TEST(ConvSpec, Oihw16oShapeOffsetsAndConversionRoundTrip) {
  ConvSpec s = square_conv(6, 32, 5, 5, 3, 1, 0);
  s.kw = 2;  // kh != kw, so that the offsets tell the two apart
  s.groups = 2;
  ConvSpec blocked = s;
  blocked.weight_layout = WeightLayout::kOIHW16o;
  ASSERT_TRUE(validate(blocked).ok()) << validate(blocked).message();
  EXPECT_EQ(weight_rank(blocked), 5);
  const std::array<int64_t, 5> shape = {2, 3, 3, 2, 16};
  EXPECT_EQ(weight_shape(blocked), shape);
  EXPECT_EQ(weight_offset(blocked, 17, 2, 1, 0), (((1 * 3 + 2) * 3 + 1) * 2 + 0) * 16 + 1);
  const int64_t count = 32 * 3 * 3 * 2;
  std::vector<float> oihw(count), packed(count, -1.f), back(count, -1.f);
  for (int64_t k = 0; k < count; ++k) oihw[k] = static_cast<float>(k);
  ASSERT_TRUE(convert_weights(s, oihw.data(), WeightLayout::kOIHW16o, packed.data()).ok());
  for (int64_t o = 0; o < 32; ++o)
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t ky = 0; ky < 3; ++ky)
        for (int64_t kx = 0; kx < 2; ++kx)
          ASSERT_EQ(packed[((((o / 16) * 3 + i) * 3 + ky) * 2 + kx) * 16 + o % 16],
                    oihw[((o * 3 + i) * 3 + ky) * 2 + kx]);
  ASSERT_TRUE(convert_weights(blocked, packed.data(), WeightLayout::kOIHW, back.data()).ok());
  EXPECT_EQ(back, oihw);
  // A layout the spec cannot take fails with the validation rule, writing nothing.
  ConvSpec narrow = s;
  narrow.c_out = 24;
  std::vector<float> out(24 * 3 * 3 * 2, -1.f);
  const Status refused = convert_weights(narrow, oihw.data(), WeightLayout::kOIHW16o, out.data());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.message().find("multiple of 16"), std::string::npos) << refused.message();
  EXPECT_EQ(out, std::vector<float>(out.size(), -1.f));
}

TEST(ConvSpec, PreferredWeightLayoutIsOihw16oForLargeWeightsWhereTheChannelsAllowIt) {
  ConvSpec s = square_conv(512, 512, 7, 7, 3, 1, 0);  // 9 MiB of weights
  EXPECT_EQ(preferred_weight_layout(s), WeightLayout::kOIHW16o);
  s.weight_layout = WeightLayout::kGOIHW;
  s.groups = 2;  // 4.5 MiB
  EXPECT_EQ(preferred_weight_layout(s), WeightLayout::kOIHW16o);
  s.c_out = 520;  // not blocks of 16
  EXPECT_EQ(preferred_weight_layout(s), WeightLayout::kGOIHW);
  s.c_out = 64;  // 576 KiB: repacked per run instead
  EXPECT_EQ(preferred_weight_layout(s), WeightLayout::kGOIHW);
  // Transposed IOHW weights too (DCGAN's 256 -> 128 4x4, 2 MiB), but not the 512 KiB
  // of its 128 -> 64 layer; any layout it does not convert stays as it is.
  ConvSpec t = square_deconv(256, 128, 8, 8, 4, 2, 1);
  EXPECT_EQ(preferred_weight_layout(t), WeightLayout::kOIHW16o);
  ConvSpec u = square_deconv(128, 64, 16, 16, 4, 2, 1);
  EXPECT_EQ(preferred_weight_layout(u), WeightLayout::kIOHW);
  t.weight_layout = WeightLayout::kMIHW;  // not a layout it converts
  EXPECT_EQ(preferred_weight_layout(t), WeightLayout::kMIHW);
}

TEST(ConvSpec, EnumNamesRoundTrip) {
  for (PaddingMode m : {PaddingMode::kZeros, PaddingMode::kReflect, PaddingMode::kReplicate,
                        PaddingMode::kCircular})
    EXPECT_EQ(*parse_padding_mode(to_string(m)), m);
  for (WeightLayout l : {WeightLayout::kOIHW, WeightLayout::kGOIHW, WeightLayout::kIOHW, WeightLayout::kMIHW,
                         WeightLayout::kOIHW16o})
    EXPECT_EQ(*parse_weight_layout(to_string(l)), l);
  const auto bad = parse_padding_mode("mirror");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("'mirror'"), std::string::npos);
}

}  // namespace
}  // namespace convjit
