// Checks of the reference convolution itself: hand-computed values, and identities
// between features (adjoint, layouts, flips, groups, dilation, stride) that hold by
// mathematics, so that the reference is trusted before it judges the compiler.
#include "reference_conv.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

namespace convjit {
namespace {

ConvSpec make_spec(int64_t n, int64_t c_in, int64_t h, int64_t w, int64_t c_out, int64_t kh,
                   int64_t kw) {
  ConvSpec s;
  s.n = n;
  s.c_in = c_in;
  s.h_in = h;
  s.w_in = w;
  s.c_out = c_out;
  s.kh = kh;
  s.kw = kw;
  return s;
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double sum = 0.0;
  for (size_t k = 0; k < a.size(); ++k) sum += a[k] * b[k];
  return sum;
}

// ---- Half precision and data helpers ---------------------------------------

TEST(HalfConversion, KnownValuesRoundToNearestEven) {
  EXPECT_EQ(double_to_half(0.0), 0x0000);
  EXPECT_EQ(double_to_half(-0.0), 0x8000);
  EXPECT_EQ(double_to_half(1.0), 0x3C00);
  EXPECT_EQ(double_to_half(-2.0), 0xC000);
  EXPECT_EQ(double_to_half(65504.0), 0x7BFF);           // largest finite
  EXPECT_EQ(double_to_half(65519.99), 0x7BFF);          // below the halfway point
  EXPECT_EQ(double_to_half(65520.0), 0x7C00);           // tie rounds to even = overflow
  EXPECT_EQ(double_to_half(std::ldexp(1.0, -24)), 0x0001);     // smallest subnormal
  EXPECT_EQ(double_to_half(std::ldexp(1.0, -25)), 0x0000);     // tie to even (0)
  EXPECT_EQ(double_to_half(std::ldexp(3.0, -25)), 0x0002);     // tie to even (2)
  EXPECT_EQ(double_to_half(std::ldexp(1023.5, -24)), 0x0400);  // subnormal rounds up to normal
  EXPECT_EQ(double_to_half(1.0 + std::ldexp(1.0, -11)), 0x3C00);  // tie to even mantissa 0
  EXPECT_EQ(double_to_half(1.0 + std::ldexp(3.0, -11)), 0x3C02);  // tie to even mantissa 2
  EXPECT_EQ(double_to_half(2.0 - std::ldexp(1.0, -12)), 0x4000);  // rounds into next binade
  EXPECT_EQ(double_to_half(std::numeric_limits<double>::infinity()), 0x7C00);
  EXPECT_TRUE(std::isnan(half_to_float(double_to_half(std::nan("")))));
  EXPECT_EQ(half_to_float(0x3555), static_cast<float>(0.333251953125));
  EXPECT_EQ(float_to_half(0.1f), 0x2E66);
}

TEST(HalfConversion, EveryHalfRoundTrips) {
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    const uint16_t h = static_cast<uint16_t>(bits);
    const float f = half_to_float(h);
    if (std::isnan(f)) continue;
    ASSERT_EQ(float_to_half(f), h) << "bits=0x" << std::hex << bits;
    ASSERT_EQ(round_to_half(static_cast<double>(f)), static_cast<double>(f));
  }
}

TEST(HalfConversion, MidpointsBetweenNeighboursGoToTheEvenOne) {
  for (uint16_t h = 0x0001; h < 0x7BFF; h += 7) {
    const double lo = half_to_float(h), hi = half_to_float(static_cast<uint16_t>(h + 1));
    const uint16_t even = (h % 2 == 0) ? h : static_cast<uint16_t>(h + 1);
    ASSERT_EQ(double_to_half((lo + hi) / 2), even) << "h=0x" << std::hex << h;
    ASSERT_EQ(double_to_half(lo + (hi - lo) * 0.49), h);
    ASSERT_EQ(double_to_half(lo + (hi - lo) * 0.51), h + 1);
  }
}

TEST(RandomValues, DeterministicAndInRange) {
  const auto a = random_values(1000, 42, -2.0, 3.0);
  const auto b = random_values(1000, 42, -2.0, 3.0);
  const auto c = random_values(1000, 43, -2.0, 3.0);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  for (double v : a) {
    EXPECT_GE(v, -2.0);
    EXPECT_LT(v, 3.0);
  }
}

TEST(RelativeError, ScalesByLargestReferenceMagnitude) {
  EXPECT_DOUBLE_EQ(relative_error({1.0, 2.5}, {1.0, 2.0}), 0.25);
  EXPECT_DOUBLE_EQ(relative_error({0.0}, {0.0}), 0.0);
  EXPECT_EQ(relative_error({1.0}, {1.0, 2.0}), std::numeric_limits<double>::infinity());
  EXPECT_EQ(relative_error({std::nan("")}, {1.0}), std::numeric_limits<double>::infinity());
}

// ---- Hand-computed values ---------------------------------------------------

// One row [1 2 3 4] with a 1x1 identity kernel and two columns of padding on each
// side shows each padding mode's extension directly.
std::vector<double> pad_row(PaddingMode mode) {
  ConvSpec s = make_spec(1, 1, 1, 4, 1, 1, 1);
  s.pad_left = s.pad_right = 2;
  s.padding_mode = mode;
  EXPECT_TRUE(validate(s).ok()) << validate(s).message();
  return reference_conv(s, {1, 2, 3, 4}, {1}, nullptr);
}

TEST(ReferenceConv, PaddingModesExtendTheInputLikePyTorch) {
  EXPECT_EQ(pad_row(PaddingMode::kZeros), (std::vector<double>{0, 0, 1, 2, 3, 4, 0, 0}));
  EXPECT_EQ(pad_row(PaddingMode::kReflect), (std::vector<double>{3, 2, 1, 2, 3, 4, 3, 2}));
  EXPECT_EQ(pad_row(PaddingMode::kReplicate), (std::vector<double>{1, 1, 1, 2, 3, 4, 4, 4}));
  EXPECT_EQ(pad_row(PaddingMode::kCircular), (std::vector<double>{3, 4, 1, 2, 3, 4, 1, 2}));
}

TEST(ReferenceConv, CircularPaddingAsLargeAsTheInputWrapsOnce) {
  ConvSpec s = make_spec(1, 1, 1, 3, 1, 1, 1);
  s.pad_left = s.pad_right = 3;
  s.padding_mode = PaddingMode::kCircular;
  ASSERT_TRUE(validate(s).ok()) << validate(s).message();
  EXPECT_EQ(reference_conv(s, {1, 2, 3}, {1}, nullptr),
            (std::vector<double>{1, 2, 3, 1, 2, 3, 1, 2, 3}));
}

TEST(ReferenceConv, MegEngineExampleWithUnitWeights) {
  // MegEngine Conv2d(3, 1, 3) on arange(96).reshape(2, 3, 4, 4): element
  // (n, c, y, x) = 48n + 16c + 4y + x; a 3x3x3 window of ones at (0, 0) sums to
  // 16*3*9 + 4*3*9 + 3*9 = 567, each step right adds 27, each step down 108.
  ConvSpec s = make_spec(2, 3, 4, 4, 1, 3, 3);
  s.has_bias = true;
  std::vector<double> src(96);
  for (int k = 0; k < 96; ++k) src[k] = k;
  const std::vector<double> bias = {0.5};
  const auto out = reference_conv(s, src, std::vector<double>(27, 1.0), &bias);
  EXPECT_EQ(out, (std::vector<double>{567.5, 594.5, 675.5, 702.5, 1863.5, 1890.5, 1971.5, 1998.5}));
}

TEST(ReferenceConv, TransposedScattersEachInputThroughTheKernel) {
  // 1-D: input [1 2], kernel [1 1 1], stride 2: copies of the kernel at 0 and 2.
  ConvSpec s = make_spec(1, 1, 1, 2, 1, 1, 3);
  s.stride_w = 2;
  s.transposed = true;
  ASSERT_EQ(output_w(s), 5);
  EXPECT_EQ(reference_conv(s, {1, 2}, {1, 1, 1}, nullptr), (std::vector<double>{1, 1, 3, 2, 2}));
  // pad_left crops the first output column; output_padding appends one past the
  // natural end, which nothing reaches, and dilation 2 spreads the taps.
  s.pad_left = 1;
  s.output_padding_w = 1;
  ASSERT_EQ(output_w(s), 5);
  EXPECT_EQ(reference_conv(s, {1, 2}, {1, 10, 100}, nullptr),
            (std::vector<double>{10, 100 + 2, 20, 200, 0}));
  s.pad_left = 0;
  s.output_padding_w = 0;
  s.stride_w = 1;
  s.dilation_w = 2;
  ASSERT_EQ(output_w(s), 6);
  EXPECT_EQ(reference_conv(s, {1, 2}, {1, 10, 100}, nullptr),
            (std::vector<double>{1, 2, 10, 20, 100, 200}));
}

TEST(ReferenceConv, BiasIsAddedAtEveryOutputPosition) {
  for (bool transposed : {false, true}) {
    ConvSpec s = make_spec(2, 4, 3, 5, 6, 2, 3);
    s.groups = 2;
    s.transposed = transposed;
    s.weight_layout = transposed ? WeightLayout::kIOHW : WeightLayout::kOIHW;
    s.has_bias = true;
    const std::vector<double> bias = {1, 2, 3, 4, 5, 6};
    const auto out = reference_conv(s, random_values(input_elements(s), 1),
                                    std::vector<double>(weight_elements(s), 0.0), &bias);
    const int64_t plane = output_h(s) * output_w(s);
    for (int64_t k = 0; k < output_elements(s); ++k) ASSERT_EQ(out[k], bias[(k / plane) % 6]);
  }
}

// ---- Identities between features --------------------------------------------

struct Geometry {
  int64_t n, c_in, c_out, groups, h, w, kh, kw, sh, sw, pt, pb, pl, pr, dh, dw;
};

const Geometry kGeometries[] = {
    {1, 1, 1, 1, 5, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
    {2, 4, 6, 2, 7, 9, 3, 2, 2, 3, 1, 2, 0, 1, 1, 1},
    {1, 3, 5, 1, 8, 6, 2, 3, 3, 2, 0, 0, 2, 1, 2, 1},
    {2, 6, 6, 3, 9, 7, 3, 3, 2, 2, 2, 0, 1, 3, 1, 2},
    {1, 4, 8, 4, 6, 6, 3, 3, 1, 2, 1, 1, 1, 1, 2, 2},
    {1, 2, 2, 1, 10, 4, 4, 1, 3, 1, 3, 1, 0, 0, 1, 1},
    {1, 3, 3, 3, 5, 7, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1},
    {2, 2, 3, 1, 9, 11, 3, 3, 2, 2, 0, -1, 0, -2, 1, 1},  // negative bottom/right padding
};

ConvSpec forward_spec(const Geometry& g) {
  ConvSpec s = make_spec(g.n, g.c_in, g.h, g.w, g.c_out, g.kh, g.kw);
  s.groups = g.groups;
  s.stride_h = g.sh;
  s.stride_w = g.sw;
  s.pad_top = g.pt;
  s.pad_bottom = g.pb;
  s.pad_left = g.pl;
  s.pad_right = g.pr;
  s.dilation_h = g.dh;
  s.dilation_w = g.dw;
  return s;
}

// The transposed convolution whose output has the forward input's shape: the
// bottom/right input rows the forward convolution never reaches (`leftover`) become
// output_padding when they exceed the forward bottom padding.
ConvSpec adjoint_spec(const ConvSpec& f) {
  ConvSpec t = f;
  t.transposed = true;
  t.c_in = f.c_out;
  t.c_out = f.c_in;
  t.h_in = output_h(f);
  t.w_in = output_w(f);
  t.weight_layout = WeightLayout::kIOHW;
  const int64_t left_h = f.h_in + f.pad_top + f.pad_bottom - dilated_kernel_h(f) - f.stride_h * (t.h_in - 1);
  const int64_t left_w = f.w_in + f.pad_left + f.pad_right - dilated_kernel_w(f) - f.stride_w * (t.w_in - 1);
  const int64_t net_h = f.pad_bottom - left_h, net_w = f.pad_right - left_w;
  t.pad_bottom = net_h > 0 ? net_h : 0;
  t.output_padding_h = net_h < 0 ? -net_h : 0;
  t.pad_right = net_w > 0 ? net_w : 0;
  t.output_padding_w = net_w < 0 ? -net_w : 0;
  return t;
}

TEST(ReferenceConv, TransposedIsTheAdjointOfForward) {
  // <conv(x), y> == <x, convT(y)>, with OIHW forward weights read as IOHW
  // transposed weights on the same memory (PyTorch's convention).
  int checked = 0;
  for (const Geometry& g : kGeometries) {
    const ConvSpec f = forward_spec(g);
    ASSERT_TRUE(validate(f).ok()) << validate(f).message();
    const ConvSpec t = adjoint_spec(f);
    ASSERT_EQ(output_h(t), f.h_in);
    ASSERT_EQ(output_w(t), f.w_in);
    // output_padding beyond stride and dilation is outside what validate() accepts,
    // though the adjoint identity would still hold.
    if (!validate(t).ok()) continue;
    const auto x = random_values(input_elements(f), 11);
    const auto y = random_values(output_elements(f), 12);
    const auto w = random_values(weight_elements(f), 13);
    const double lhs = dot(reference_conv(f, x, w, nullptr), y);
    const double rhs = dot(x, reference_conv(t, y, w, nullptr));
    EXPECT_NEAR(lhs, rhs, 1e-9 * (1 + std::fabs(lhs))) << "geometry #" << (&g - kGeometries);
    ++checked;
  }
  EXPECT_GE(checked, 6);
}

TEST(ReferenceConv, GoihwIsOihwOnTheSameMemory) {
  for (const Geometry& g : kGeometries) {
    ConvSpec a = forward_spec(g);
    const auto x = random_values(input_elements(a), 21);
    const auto w = random_values(weight_elements(a), 22);
    ConvSpec b = a;
    b.weight_layout = WeightLayout::kGOIHW;
    EXPECT_EQ(reference_conv(a, x, w, nullptr), reference_conv(b, x, w, nullptr));
    a.transposed = b.transposed = true;
    a.h_in = b.h_in = 3;
    a.w_in = b.w_in = 4;
    a.pad_bottom = b.pad_bottom = std::max<int64_t>(a.pad_bottom, 0);
    a.pad_right = b.pad_right = std::max<int64_t>(a.pad_right, 0);
    if (!validate(a).ok()) continue;
    const auto xt = random_values(input_elements(a), 23);
    EXPECT_EQ(reference_conv(a, xt, w, nullptr), reference_conv(b, xt, w, nullptr));
  }
}

TEST(ReferenceConv, MihwIsOihwWithOutputChannelIMPlusJFromRowJI) {
  for (bool transposed : {false, true}) {
    for (int64_t m : {1, 2, 3}) {
      ConvSpec s = ConvSpec::depthwise(2, 3, 5, 6, m, 3, 2);
      s.stride_h = 2;
      s.pad_top = s.pad_left = 1;
      s.transposed = transposed;
      s.weight_layout = WeightLayout::kMIHW;
      ASSERT_TRUE(validate(s).ok()) << validate(s).message();
      const auto x = random_values(input_elements(s), 31);
      const auto w_mihw = random_values(weight_elements(s), 32);
      // OIHW row i*m + j (a single input channel per group) is MIHW's W[j, i].
      std::vector<double> w_oihw(w_mihw.size());
      const int64_t taps = s.kh * s.kw;
      for (int64_t i = 0; i < s.c_in; ++i)
        for (int64_t j = 0; j < m; ++j)
          for (int64_t t = 0; t < taps; ++t)
            w_oihw[(i * m + j) * taps + t] = w_mihw[(j * s.c_in + i) * taps + t];
      ConvSpec o = s;
      o.weight_layout = WeightLayout::kOIHW;
      EXPECT_EQ(reference_conv(s, x, w_mihw, nullptr), reference_conv(o, x, w_oihw, nullptr))
          << "transposed=" << transposed << " m=" << m;
    }
  }
}

TEST(ReferenceConv, IohwIsOihwWithInputAndOutputChannelsSwapped) {
  // Forward conv with IOHW weights: buf[i][o % cog] against OIHW buf[o][i % cig].
  ConvSpec s = forward_spec(kGeometries[3]);  // c_in 6, c_out 6, groups 3
  s.weight_layout = WeightLayout::kIOHW;
  const int64_t cig = s.c_in / s.groups, cog = s.c_out / s.groups, taps = s.kh * s.kw;
  const auto x = random_values(input_elements(s), 41);
  const auto w_iohw = random_values(weight_elements(s), 42);
  std::vector<double> w_oihw(w_iohw.size());
  for (int64_t o = 0; o < s.c_out; ++o)
    for (int64_t il = 0; il < cig; ++il) {
      const int64_t i = (o / cog) * cig + il;
      for (int64_t t = 0; t < taps; ++t)
        w_oihw[(o * cig + il) * taps + t] = w_iohw[(i * cog + o % cog) * taps + t];
    }
  ConvSpec o = s;
  o.weight_layout = WeightLayout::kOIHW;
  EXPECT_EQ(reference_conv(s, x, w_iohw, nullptr), reference_conv(o, x, w_oihw, nullptr));
}

TEST(ReferenceConv, ConvolutionModeIsCorrelationWithFlippedWeights) {
  for (bool transposed : {false, true}) {
    for (const Geometry& g : kGeometries) {
      ConvSpec s = forward_spec(g);
      if (transposed) s = adjoint_spec(s);
      if (!validate(s).ok()) continue;
      const auto x = random_values(input_elements(s), 51);
      const auto w = random_values(weight_elements(s), 52);
      std::vector<double> flipped(w.size());
      const int64_t taps = s.kh * s.kw;
      for (size_t k = 0; k < w.size(); ++k) {
        const int64_t t = k % taps, ky = t / s.kw, kx = t % s.kw;
        flipped[k - t + (s.kh - 1 - ky) * s.kw + (s.kw - 1 - kx)] = w[k];
      }
      ConvSpec c = s;
      c.conv_mode = ConvMode::kConvolution;
      EXPECT_EQ(reference_conv(c, x, w, nullptr), reference_conv(s, x, flipped, nullptr));
    }
  }
}

TEST(ReferenceConv, GroupedIsPerGroupConvolutionsConcatenated) {
  ConvSpec s = forward_spec(kGeometries[3]);  // 6 -> 6, groups 3
  s.has_bias = true;
  const auto x = random_values(input_elements(s), 61);
  const auto w = random_values(weight_elements(s), 62);
  const auto b = random_values(s.c_out, 63);
  const auto full = reference_conv(s, x, w, &b);
  ConvSpec one = s;
  one.groups = 1;
  one.c_in = s.c_in / s.groups;
  one.c_out = s.c_out / s.groups;
  const int64_t in_plane = s.h_in * s.w_in, out_plane = output_h(s) * output_w(s);
  const int64_t w_per_group = weight_elements(one);
  for (int64_t g = 0; g < s.groups; ++g) {
    std::vector<double> xg, wg(w.begin() + g * w_per_group, w.begin() + (g + 1) * w_per_group);
    std::vector<double> bg(b.begin() + g * one.c_out, b.begin() + (g + 1) * one.c_out);
    for (int64_t n = 0; n < s.n; ++n)
      for (int64_t c = 0; c < one.c_in; ++c) {
        const auto begin = x.begin() + (n * s.c_in + g * one.c_in + c) * in_plane;
        xg.insert(xg.end(), begin, begin + in_plane);
      }
    const auto part = reference_conv(one, xg, wg, &bg);
    for (int64_t n = 0; n < s.n; ++n)
      for (int64_t c = 0; c < one.c_out; ++c)
        for (int64_t p = 0; p < out_plane; ++p)
          ASSERT_EQ(part[(n * one.c_out + c) * out_plane + p],
                    full[(n * s.c_out + g * one.c_out + c) * out_plane + p]);
  }
}

TEST(ReferenceConv, DilationIsAZeroInsertedKernel) {
  for (bool transposed : {false, true}) {
    ConvSpec d = make_spec(1, 2, 9, 8, 3, 3, 2);
    d.dilation_h = 3;
    d.dilation_w = 2;
    d.pad_top = 2;
    d.pad_right = 1;
    d.transposed = transposed;
    ASSERT_TRUE(validate(d).ok());
    ConvSpec dense = d;
    dense.dilation_h = dense.dilation_w = 1;
    dense.kh = dilated_kernel_h(d);
    dense.kw = dilated_kernel_w(d);
    ASSERT_EQ(output_shape(dense), output_shape(d));
    const auto x = random_values(input_elements(d), 71);
    const auto w = random_values(weight_elements(d), 72);
    std::vector<double> wz(weight_elements(dense), 0.0);
    for (int64_t oc = 0; oc < d.c_out * d.c_in; ++oc)
      for (int64_t ky = 0; ky < d.kh; ++ky)
        for (int64_t kx = 0; kx < d.kw; ++kx)
          wz[(oc * dense.kh + ky * d.dilation_h) * dense.kw + kx * d.dilation_w] =
              w[(oc * d.kh + ky) * d.kw + kx];
    EXPECT_EQ(reference_conv(d, x, w, nullptr), reference_conv(dense, x, wz, nullptr));
  }
}

TEST(ReferenceConv, StrideSubsamplesTheDenseOutput) {
  ConvSpec s = make_spec(2, 2, 11, 10, 3, 3, 3);
  s.stride_h = 3;
  s.stride_w = 2;
  s.pad_top = 1;
  s.pad_left = 2;
  s.padding_mode = PaddingMode::kReflect;
  ConvSpec dense = s;
  dense.stride_h = dense.stride_w = 1;
  const auto x = random_values(input_elements(s), 81);
  const auto w = random_values(weight_elements(s), 82);
  const auto strided = reference_conv(s, x, w, nullptr);
  const auto full = reference_conv(dense, x, w, nullptr);
  const int64_t oh = output_h(s), ow = output_w(s), fh = output_h(dense), fw = output_w(dense);
  for (int64_t nc = 0; nc < s.n * s.c_out; ++nc)
    for (int64_t y = 0; y < oh; ++y)
      for (int64_t x2 = 0; x2 < ow; ++x2)
        ASSERT_EQ(strided[(nc * oh + y) * ow + x2],
                  full[(nc * fh + y * s.stride_h) * fw + x2 * s.stride_w]);
}

TEST(ReferenceConv, CoverAllEqualsExtraZeroPadding) {
  // Chainer's seed example: 30x40, k10, pad 5, stride (5, 7): cover_all adds one
  // output column, computed over zeros beyond pad_right.
  ConvSpec s = make_spec(1, 3, 30, 40, 1, 10, 10);
  s.pad_top = s.pad_bottom = s.pad_left = s.pad_right = 5;
  s.stride_h = 5;
  s.stride_w = 7;
  ConvSpec c = s;
  c.cover_all = true;
  ASSERT_EQ(output_shape(s), (std::array<int64_t, 4>{1, 1, 7, 6}));
  ASSERT_EQ(output_shape(c), (std::array<int64_t, 4>{1, 1, 7, 7}));
  ConvSpec padded = s;
  padded.pad_bottom += s.stride_h - 1;
  padded.pad_right += s.stride_w - 1;
  const auto x = random_values(input_elements(s), 91);
  const auto w = random_values(weight_elements(s), 92);
  EXPECT_EQ(reference_conv(c, x, w, nullptr), reference_conv(padded, x, w, nullptr));
}

}  // namespace
}  // namespace convjit
