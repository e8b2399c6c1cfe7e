// Tests of the benchdnn descriptor parser and printer, the problem options and shape files.
#include "convjit/descriptor.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <vector>

namespace convjit {
namespace {

// Parses or fails the test with the parser's message.
Problem parse_ok(const std::string& text, const ConvSpec& base = ConvSpec()) {
  StatusOr<Problem> p = parse_descriptor(text, base);
  EXPECT_TRUE(p.ok()) << text << ": " << p.status().message();
  return p.ok() ? p.value() : Problem{};
}

ConvSpec transposed_base() {
  ConvSpec base;
  base.transposed = true;
  base.weight_layout = WeightLayout::kIOHW;
  return base;
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// The command-line options that restate the fields of `s` a descriptor cannot say.
std::vector<std::string> options_of(const ConvSpec& s) {
  std::vector<std::string> t;
  if (s.transposed) t.push_back("--deconv");
  if (s.cover_all) t.push_back("--cover-all");
  if (s.has_bias) t.push_back("--bias");
  t.push_back("--padding-mode");
  t.push_back(to_string(s.padding_mode));
  t.push_back(std::string("--conv-mode=") + to_string(s.conv_mode));
  t.push_back("--wtag");
  t.push_back(to_string(s.weight_layout));
  t.push_back("--dt");
  t.push_back(to_string(s.dtype));
  t.push_back("--compute-mode");
  t.push_back(to_string(s.compute_mode));
  return t;
}

TEST(Descriptor, DefaultsApply) {
  const Problem p = parse_ok("ic3ih5oc4kh3");
  const ConvSpec& s = p.spec;
  EXPECT_EQ(s.groups, 1);
  EXPECT_EQ(s.n, 2);  // benchdnn's default minibatch
  EXPECT_EQ(s.stride_h, 1);
  EXPECT_EQ(s.stride_w, 1);
  EXPECT_EQ(s.pad_top, 0);
  EXPECT_EQ(s.pad_bottom, 0);
  EXPECT_EQ(s.pad_left, 0);
  EXPECT_EQ(s.pad_right, 0);
  EXPECT_EQ(s.dilation_h, 1);
  EXPECT_EQ(s.dilation_w, 1);
  EXPECT_FALSE(s.transposed);
  EXPECT_EQ(output_h(s), 3);
  EXPECT_EQ(p.name, "");
}

TEST(Descriptor, AllEntriesInAnyOrderWithSeparators) {
  const Problem a = parse_ok("g2mb4_ic8ih10iw12_oc6oh5ow6_kh3kw2_sh2sw2_ph1pw0_dh0dw0_nconv1");
  const Problem b = parse_ok("__dw0ow6sw2pw0kw2iw12_oc6g2kh3sh2_ph1dh0ih10oh5mb4ic8_nconv1");
  EXPECT_EQ(a.spec, b.spec);
  EXPECT_EQ(a.name, "conv1");
  const ConvSpec& s = a.spec;
  EXPECT_EQ(s.groups, 2);
  EXPECT_EQ(s.n, 4);
  EXPECT_EQ(s.c_in, 8);
  EXPECT_EQ(s.c_out, 6);
  EXPECT_EQ(s.h_in, 10);
  EXPECT_EQ(s.w_in, 12);
  EXPECT_EQ(s.kh, 3);
  EXPECT_EQ(s.kw, 2);
  EXPECT_EQ(output_h(s), 5);
  EXPECT_EQ(output_w(s), 6);
}

TEST(Descriptor, HEntriesAreCopiedToW) {
  const ConvSpec s = parse_ok("mb1ic4ih9oc4oh5kh3sh2ph1dh1").spec;
  EXPECT_EQ(s.w_in, 9);
  EXPECT_EQ(s.kw, 3);
  EXPECT_EQ(s.stride_w, 2);
  EXPECT_EQ(s.pad_left, 1);
  EXPECT_EQ(s.dilation_w, 2);
  EXPECT_EQ(output_w(s), 5);
  EXPECT_EQ(s.pad_right, s.pad_bottom);
}

TEST(Descriptor, NoCopyWhenAnyWEntryIsGiven) {
  // sw alone stops the copy, so iw and kw are then missing.
  const auto p = parse_descriptor("ic4ih9oc4kh3sw2");
  ASSERT_FALSE(p.ok());
  EXPECT_TRUE(contains(p.status().message(), "missing iw")) << p.status().message();
}

TEST(Descriptor, OnlyWEntriesMakeAOneDimensionalProblem) {
  const ConvSpec s = parse_ok("mb1ic4iw20oc8ow9kw4sw2pw1dw0").spec;
  EXPECT_EQ(s.h_in, 1);
  EXPECT_EQ(s.kh, 1);
  EXPECT_EQ(s.stride_h, 1);
  EXPECT_EQ(s.pad_top, 0);
  EXPECT_EQ(s.pad_bottom, 0);
  EXPECT_EQ(s.dilation_h, 1);
  EXPECT_EQ(output_h(s), 1);
  EXPECT_EQ(s.w_in, 20);
  EXPECT_EQ(output_w(s), 9);
}

TEST(Descriptor, DilationIsZeroBased) {
  EXPECT_EQ(parse_ok("ic1ih9oc1kh3").spec.dilation_h, 1);
  const ConvSpec s = parse_ok("ic1ih9iw9oc1kh3kw3dh0dw2").spec;
  EXPECT_EQ(s.dilation_h, 1);
  EXPECT_EQ(s.dilation_w, 3);
  EXPECT_EQ(output_w(s), 3);  // dilated kernel 7 on 9 columns
}

TEST(Descriptor, DerivesNegativeBottomPadding) {
  // ResNet-50's stride-2 1x1 projection: the last input row and column are never read.
  const ConvSpec s = parse_ok("mb1ic256ih56oc512oh28kh1sh2").spec;
  EXPECT_EQ(s.pad_top, 0);
  EXPECT_EQ(s.pad_bottom, -1);
  EXPECT_EQ(s.pad_left, 0);
  EXPECT_EQ(s.pad_right, -1);
  EXPECT_EQ(output_shape(s), (std::array<int64_t, 4>{1, 512, 28, 28}));
}

TEST(Descriptor, BottomPaddingEqualsTopWithoutOutputSize) {
  const ConvSpec s = parse_ok("mb1ic3ih224oc64kh7sh2ph3").spec;
  EXPECT_EQ(s.pad_bottom, 3);
  EXPECT_EQ(output_h(s), 112);
  // With oh the smallest padding giving 112 rows is derived: 111*2 + 7 - 224 - 3 = 2.
  // The third bottom row is never read, so both are the same convolution.
  const ConvSpec t = parse_ok("mb1ic3ih224oc64oh112kh7sh2ph3").spec;
  EXPECT_EQ(t.pad_bottom, 2);
  EXPECT_EQ(output_h(t), 112);
  EXPECT_EQ(canonical_key(t), canonical_key(s));
}

TEST(Descriptor, CoverAllKeepsTheGivenOutputSize) {
  // With cover_all the derived (smallest) bottom padding still gives oh.
  ConvSpec base;
  base.cover_all = true;
  const ConvSpec s = parse_ok("mb10ic3ih30iw40oc1oh7ow7kh10kw10sh5sw7ph5pw5", base).spec;
  EXPECT_TRUE(s.cover_all);
  EXPECT_EQ(output_h(s), 7);
  EXPECT_EQ(output_w(s), 7);
  // Without oh/ow, cover_all acts as in Chainer.
  const ConvSpec t = parse_ok("mb10ic3ih30iw40oc1kh10kw10sh5sw7ph5pw5", base).spec;
  EXPECT_EQ(output_h(t), 7);
  EXPECT_EQ(output_w(t), 7);
  EXPECT_EQ(canonical_key(s), canonical_key(t));
}

TEST(Descriptor, NameRunsToTheEndAndLosesItsQuotes) {
  EXPECT_EQ(parse_ok("ic3ih5oc3kh3nresnet_50:res2a*3").name, "resnet_50:res2a*3");
  EXPECT_EQ(parse_ok("ic3ih5oc3kh3_n\"resnet_50:res2a*3\"").name, "resnet_50:res2a*3");
  EXPECT_EQ(parse_ok("ic3ih5oc3kh3n\"\"").name, "");
}

TEST(Descriptor, DeconvTurnsLargerOutputIntoOutputPadding) {
  // full = 2*(4-1) + 3 = 9, natural = 9 - 2 = 7, oh 8 = natural + 1 < stride.
  const ConvSpec s = parse_ok("mb1ic8ih4oc4oh8kh3sh2ph1", transposed_base()).spec;
  EXPECT_TRUE(s.transposed);
  EXPECT_EQ(s.pad_top, 1);
  EXPECT_EQ(s.pad_bottom, 1);
  EXPECT_EQ(s.output_padding_h, 1);
  EXPECT_EQ(s.pad_left, 1);
  EXPECT_EQ(s.pad_right, 1);
  EXPECT_EQ(s.output_padding_w, 1);
  EXPECT_EQ(output_shape(s), (std::array<int64_t, 4>{1, 4, 8, 8}));
}

TEST(Descriptor, DeconvWithoutOutputSizeHasSymmetricPadding) {
  const ConvSpec s = parse_ok("mb1ic8ih4oc4kh3sh2ph1", transposed_base()).spec;
  EXPECT_EQ(s.pad_bottom, 1);
  EXPECT_EQ(s.output_padding_h, 0);
  EXPECT_EQ(output_h(s), 7);
}

TEST(Descriptor, DeconvOutputPaddingMayExceedBottomPadding) {
  // ph0: natural = full = 9; oh 10 needs output_padding 1 with bottom padding 0.
  const ConvSpec s = parse_ok("mb1ic8ih4oc4oh10kh3sh2ph0", transposed_base()).spec;
  EXPECT_EQ(s.pad_bottom, 0);
  EXPECT_EQ(s.output_padding_h, 1);
  EXPECT_EQ(output_h(s), 10);
  // Dilation also allows output_padding (PyTorch: smaller than stride or dilation).
  const ConvSpec d = parse_ok("mb1ic8ih4oc4oh9kh3dh1", transposed_base()).spec;
  EXPECT_EQ(d.output_padding_h, 1);
  EXPECT_EQ(output_h(d), 9);
}

TEST(Descriptor, DeconvSmallerOrMuchLargerOutputMovesBottomPadding) {
  // oh 6 < natural 7: two more rows cropped at the bottom.
  const ConvSpec smaller = parse_ok("mb1ic8ih4oc4oh6kh3sh2ph1", transposed_base()).spec;
  EXPECT_EQ(smaller.pad_bottom, 2);
  EXPECT_EQ(smaller.output_padding_h, 0);
  EXPECT_EQ(output_h(smaller), 6);
  // oh 9 = natural + stride: bottom padding would be -1, so output_padding 1 instead.
  const ConvSpec larger = parse_ok("mb1ic8ih4oc4oh9kh3sh2ph1", transposed_base()).spec;
  EXPECT_EQ(larger.pad_bottom, 0);
  EXPECT_EQ(larger.output_padding_h, 1);
  EXPECT_EQ(output_h(larger), 9);
  // Further than output_padding can reach: validate()'s message comes back.
  const auto too_large = parse_descriptor("mb1ic8ih4oc4oh11kh3sh2ph1", transposed_base());
  ASSERT_FALSE(too_large.ok());
  EXPECT_EQ(too_large.status().code(), StatusCode::kInvalidSpec);
  EXPECT_TRUE(contains(too_large.status().message(), "output_padding")) << too_large.status().message();
}

TEST(Descriptor, AsymmetricTransposedSpecRoundTrips) {
  ConvSpec s = transposed_base();
  s.n = 1;
  s.c_in = 6;
  s.c_out = 4;
  s.groups = 2;
  s.h_in = 5;
  s.w_in = 7;
  s.kh = 4;
  s.kw = 3;
  s.stride_h = 3;
  s.stride_w = 2;
  s.pad_top = 2;
  s.pad_bottom = 0;
  s.pad_left = 0;
  s.pad_right = 3;
  s.output_padding_h = 2;
  ASSERT_TRUE(validate(s).ok()) << validate(s).message();
  const std::string text = print_descriptor(s, "up");
  const Problem p = parse_ok(text, s);
  EXPECT_EQ(p.name, "up");
  EXPECT_EQ(canonical_key(p.spec), canonical_key(s)) << text;
  EXPECT_EQ(output_shape(p.spec), output_shape(s));
}

TEST(Descriptor, PrintsCanonicalText) {
  const ConvSpec s = parse_ok("mb1ic256ih56oc512oh28kh1sh2").spec;
  EXPECT_EQ(print_descriptor(s),
            "g1mb1ic256ih56iw56oc512oh28ow28kh1kw1sh2sw2ph0pw0dh0dw0");
  EXPECT_EQ(print_descriptor(s, "res3a"),
            "g1mb1ic256ih56iw56oc512oh28ow28kh1kw1sh2sw2ph0pw0dh0dw0nres3a");
  EXPECT_EQ(print_descriptor(s, "resnet_50:res3a"),
            "g1mb1ic256ih56iw56oc512oh28ow28kh1kw1sh2sw2ph0pw0dh0dw0n\"resnet_50:res3a\"");
}

TEST(Descriptor, MalformedDescriptorsAreRejected) {
  struct Case {
    const char* text;
    const char* expected;  // part of the message
  };
  const Case cases[] = {
      {"", "empty descriptor"},
      {"x3ic3ih5oc3kh3", "unknown entry 'x' at offset 0"},
      {"ic3ih5oc3kh3q7", "unknown entry 'q' at offset 12"},
      {"IC3ih5oc3kh3", "unknown entry 'I"},
      {"ic3ih5oc3kh3 ", "unknown entry ' ' at offset 12"},
      {"ic3ih-5oc3kh3", "entry 'ih' at offset 3 has no number"},
      {"mbic3ih5oc3kh3", "entry 'mb' at offset 0 has no number"},
      {"ic3ih5oc3kh", "entry 'kh' at offset 9 has no number"},
      {"ic3ih5oc3kh3ih4", "entry 'ih4' at offset 12 repeats 'ih' given at offset 3"},
      {"ic3ih2147483648oc3kh3", "'ih2147483648' at offset 3: value must be < 2^31"},
      {"ic3ih99999999999999999999999oc3kh3", "value must be < 2^31"},
      {"ic3id5ih5oc3kh3", "'id' at offset 3: 3-D descriptors are not supported"},
      {"ic3ih5oc3kh3kd3", "3-D descriptors are not supported"},
      {"ic3ih5oc3kh3dd1", "3-D descriptors are not supported"},
      {"ih5oc3kh3", "missing ic"},
      {"ic3ih5kh3", "missing oc"},
      {"ic3oc3kh3", "missing ih"},
      {"ic3ih5oc3", "missing kh"},
      {"ic3ih5iw5oc3kh3", "missing kw"},
      {"ic3ih5oc3kh3oh0", "oh0: output size must be >= 1"},
      {"ic0ih5oc3kh3", "c_in=0"},
      {"ic3ih5oc3kh3sh0", "stride_h=0"},
      {"g2ic3ih5oc4kh3", "c_in must be divisible by groups"},
      {"ic3ih5oc3kh7", "output height"},
      {"nfoo", "missing ic"},
  };
  for (const Case& c : cases) {
    const auto p = parse_descriptor(c.text);
    ASSERT_FALSE(p.ok()) << "accepted '" << c.text << "'";
    EXPECT_TRUE(contains(p.status().message(), c.expected))
        << "'" << c.text << "' gave: " << p.status().message();
  }
}

TEST(Descriptor, SyntaxErrorsAreInvalidArgumentsAndRuleErrorsInvalidSpecs) {
  EXPECT_EQ(parse_descriptor("ic3ih5oc3kh3x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(parse_descriptor("g2ic3ih5oc4kh3").status().code(), StatusCode::kInvalidSpec);
}

TEST(Descriptor, FieldsTheDescriptorCannotSayComeFromBase) {
  ConvSpec base;
  base.padding_mode = PaddingMode::kReflect;
  base.conv_mode = ConvMode::kConvolution;
  base.dtype = DataType::kFloat16;
  base.compute_mode = ComputeMode::kFloat32;
  base.weight_layout = WeightLayout::kGOIHW;
  base.has_bias = true;
  // Geometry in base is overwritten, not merged.
  base.h_in = 99;
  base.pad_bottom = 7;
  const ConvSpec s = parse_ok("ic4ih8oc4kh3ph1", base).spec;
  EXPECT_EQ(s.padding_mode, PaddingMode::kReflect);
  EXPECT_EQ(s.conv_mode, ConvMode::kConvolution);
  EXPECT_EQ(s.dtype, DataType::kFloat16);
  EXPECT_EQ(s.compute_mode, ComputeMode::kFloat32);
  EXPECT_EQ(s.weight_layout, WeightLayout::kGOIHW);
  EXPECT_TRUE(s.has_bias);
  EXPECT_EQ(s.h_in, 8);
  EXPECT_EQ(s.pad_bottom, 1);
}

TEST(Descriptor, RoundTripsRandomValidSpecs) {
  std::mt19937 rng(20240611);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  int checked = 0, with_cover_all = 0, with_negative_pad = 0, transposed = 0, with_output_padding = 0;
  for (int attempt = 0; attempt < 20000 && checked < 400; ++attempt) {
    ConvSpec s;
    s.transposed = pick(0, 2) == 0;
    s.n = pick(1, 4);
    s.groups = pick(1, 4);
    s.c_in = s.groups * pick(1, 3);
    s.c_out = s.groups * pick(1, 3);
    s.h_in = pick(1, 20);
    s.w_in = pick(1, 20);
    s.kh = pick(1, 5);
    s.kw = pick(1, 5);
    s.stride_h = pick(1, 4);
    s.stride_w = pick(1, 4);
    s.dilation_h = pick(1, 3);
    s.dilation_w = pick(1, 3);
    s.pad_top = pick(0, 4);
    s.pad_left = pick(0, 4);
    s.pad_bottom = pick(s.transposed ? 0 : -3, 4);
    s.pad_right = pick(s.transposed ? 0 : -3, 4);
    if (s.transposed) {
      if (pick(0, 3) == 0) {
        // Chainer's outsize instead of output_padding.
        const int64_t natural_h =
            s.stride_h * (s.h_in - 1) + dilated_kernel_h(s) - s.pad_top - s.pad_bottom;
        s.outsize_h = natural_h + pick(0, static_cast<int>(s.stride_h) - 1);
      } else {
        s.output_padding_h = pick(0, static_cast<int>(std::max(s.stride_h, s.dilation_h)) - 1);
      }
      s.output_padding_w = pick(0, static_cast<int>(std::max(s.stride_w, s.dilation_w)) - 1);
    } else {
      s.cover_all = pick(0, 2) == 0;
      if (!s.cover_all) s.padding_mode = static_cast<PaddingMode>(pick(0, 3));
    }
    s.conv_mode = static_cast<ConvMode>(pick(0, 1));
    s.dtype = static_cast<DataType>(pick(0, 1));
    s.compute_mode = static_cast<ComputeMode>(pick(0, 1));
    s.weight_layout = static_cast<WeightLayout>(pick(0, 3));
    if (s.weight_layout == WeightLayout::kMIHW) s.groups = s.c_in, s.c_out = s.c_in * pick(1, 3);
    s.has_bias = pick(0, 1) == 1;
    if (!validate(s).ok()) continue;
    ++checked;
    with_cover_all += s.cover_all;
    with_negative_pad += s.pad_bottom < 0 || s.pad_right < 0;
    transposed += s.transposed;
    with_output_padding += effective_output_padding_h(s) > s.pad_bottom;

    const std::string name = pick(0, 1) ? "layer" + std::to_string(checked) : "net_" + std::to_string(checked);
    const std::string text = print_descriptor(s, name);
    const auto p = parse_descriptor(text, s);
    ASSERT_TRUE(p.ok()) << text << ": " << p.status().message();
    EXPECT_EQ(canonical_key(p->spec), canonical_key(s)) << text;
    EXPECT_EQ(output_shape(p->spec), output_shape(s)) << text;
    EXPECT_EQ(p->name, name);
    // Printing again gives the same text: the printed form is canonical.
    EXPECT_EQ(print_descriptor(p->spec, name), text);

    if (s.cover_all) {
      // The printed output size already includes cover_all's extra row/column.
      ConvSpec base = s;
      base.cover_all = false;
      const auto q = parse_descriptor(text, base);
      ASSERT_TRUE(q.ok()) << text << ": " << q.status().message();
      EXPECT_EQ(canonical_key(q->spec), canonical_key(s)) << text;
    }

    // The same through the command-line form, with the options restating the rest.
    std::vector<std::string> tokens = options_of(s);
    tokens.push_back(split_command_line(text).back());
    const auto r = parse_problem(tokens);
    ASSERT_TRUE(r.ok()) << text << ": " << r.status().message();
    EXPECT_EQ(canonical_key(r->spec), canonical_key(s)) << text;
    EXPECT_EQ(r->name, name);
  }
  EXPECT_GE(checked, 300);
  // The generator must reach the cases the rules are about.
  EXPECT_GT(with_cover_all, 20);
  EXPECT_GT(with_negative_pad, 20);
  EXPECT_GT(transposed, 50);
  EXPECT_GT(with_output_padding, 10);
}

TEST(Descriptor, ProblemOptionsSetTheFieldsTheDescriptorCannotSay) {
  const auto p = parse_problem({"--padding-mode", "replicate", "--conv-mode=convolution", "--dt", "f16",
                                "--compute-mode", "float32", "--wtag", "goihw", "--bias",
                                "g2ic4ih8oc4kh3ph1nx"});
  ASSERT_TRUE(p.ok()) << p.status().message();
  EXPECT_EQ(p->spec.padding_mode, PaddingMode::kReplicate);
  EXPECT_EQ(p->spec.conv_mode, ConvMode::kConvolution);
  EXPECT_EQ(p->spec.dtype, DataType::kFloat16);
  EXPECT_EQ(p->spec.compute_mode, ComputeMode::kFloat32);
  EXPECT_EQ(p->spec.weight_layout, WeightLayout::kGOIHW);
  EXPECT_TRUE(p->spec.has_bias);
  EXPECT_FALSE(p->spec.transposed);
  EXPECT_EQ(p->name, "x");
}

TEST(Descriptor, ProblemDefaultsAndDeconvWeightLayout) {
  const auto plain = parse_problem({"ic4ih8oc4kh3"});
  ASSERT_TRUE(plain.ok()) << plain.status().message();
  EXPECT_EQ(plain->spec.weight_layout, WeightLayout::kOIHW);
  EXPECT_EQ(plain->spec.padding_mode, PaddingMode::kZeros);
  EXPECT_FALSE(plain->spec.has_bias);

  const auto deconv = parse_problem({"--deconv", "mb1ic8ih4oc4oh8kh3sh2ph1"});
  ASSERT_TRUE(deconv.ok()) << deconv.status().message();
  EXPECT_TRUE(deconv->spec.transposed);
  EXPECT_EQ(deconv->spec.weight_layout, WeightLayout::kIOHW);
  EXPECT_EQ(deconv->spec.output_padding_h, 1);

  const auto deconv_oihw = parse_problem({"--wtag=oihw", "--deconv", "mb1ic8ih4oc4kh3"});
  ASSERT_TRUE(deconv_oihw.ok()) << deconv_oihw.status().message();
  EXPECT_EQ(deconv_oihw->spec.weight_layout, WeightLayout::kOIHW);

  const auto cover_all = parse_problem({"--cover-all", "mb10ic3ih30iw40oc1kh10kw10sh5sw7ph5pw5"});
  ASSERT_TRUE(cover_all.ok()) << cover_all.status().message();
  EXPECT_TRUE(cover_all->spec.cover_all);
  EXPECT_EQ(output_w(cover_all->spec), 7);
}

TEST(Descriptor, ProblemBadCommandLinesAreRejected) {
  struct Case {
    std::vector<std::string> tokens;
    const char* expected;
  };
  const Case cases[] = {
      {{"--frobnicate", "ic4ih8oc4kh3"}, "unknown option '--frobnicate'"},
      {{"--frob=1", "ic4ih8oc4kh3"}, "unknown option '--frob'"},
      {{"ic4ih8oc4kh3", "--padding-mode"}, "--padding-mode is missing its value"},
      {{"--padding-mode", "mirror", "ic4ih8oc4kh3"}, "unknown padding mode 'mirror'"},
      {{"--conv-mode=flipped", "ic4ih8oc4kh3"}, "unknown conv mode 'flipped'"},
      {{"--wtag", "hwio", "ic4ih8oc4kh3"}, "unknown weight layout 'hwio'"},
      {{"--dt", "bf16", "ic4ih8oc4kh3"}, "unknown data type 'bf16'"},
      {{"--compute-mode", "fast", "ic4ih8oc4kh3"}, "unknown compute mode 'fast'"},
      {{"--deconv=yes", "ic4ih8oc4kh3"}, "--deconv takes no value"},
      {{"--bias"}, "no descriptor"},
      {{}, "no descriptor"},
      {{"ic4ih8oc4kh3", "ic4ih8oc4kh5"}, "two descriptors 'ic4ih8oc4kh3' and 'ic4ih8oc4kh5'"},
      {{"--deconv", "--cover-all", "ic4ih8oc4kh3"}, "cover_all on a transposed convolution"},
      {{"--wtag", "mihw", "ic4ih8oc4kh3"}, "mihw describes a depthwise convolution"},
  };
  for (const Case& c : cases) {
    const auto p = parse_problem(c.tokens);
    std::string joined;
    for (const std::string& t : c.tokens) joined += t + " ";
    ASSERT_FALSE(p.ok()) << "accepted: " << joined;
    EXPECT_TRUE(contains(p.status().message(), c.expected)) << joined << "gave: " << p.status().message();
  }
}

TEST(Descriptor, ProblemRecognisesItsOptions) {
  bool takes_value = false;
  EXPECT_TRUE(is_problem_option("--padding-mode", &takes_value));
  EXPECT_TRUE(takes_value);
  EXPECT_TRUE(is_problem_option("--deconv", &takes_value));
  EXPECT_FALSE(takes_value);
  EXPECT_TRUE(is_problem_option("--wtag=iohw", &takes_value));
  EXPECT_FALSE(takes_value);  // the value is inside the token
  for (const char* option : {"--conv-mode", "--wtag", "--dt", "--compute-mode"}) {
    EXPECT_TRUE(is_problem_option(option, &takes_value)) << option;
    EXPECT_TRUE(takes_value) << option;
  }
  for (const char* flag : {"--cover-all", "--bias"}) {
    EXPECT_TRUE(is_problem_option(flag, &takes_value)) << flag;
    EXPECT_FALSE(takes_value) << flag;
  }
  EXPECT_FALSE(is_problem_option("--target", &takes_value));
  EXPECT_FALSE(is_problem_option("ic3ih5oc3kh3", &takes_value));
  EXPECT_TRUE(is_problem_option("--bias", nullptr));
}

TEST(Descriptor, ProblemSplitsCommandLinesHonouringQuotes) {
  EXPECT_EQ(split_command_line("  --deconv\tmb1ic8ih4oc4kh3  "),
            (std::vector<std::string>{"--deconv", "mb1ic8ih4oc4kh3"}));
  EXPECT_EQ(split_command_line("--dt f16 ic3ih5oc3kh3n\"my net # 1\""),
            (std::vector<std::string>{"--dt", "f16", "ic3ih5oc3kh3nmy net # 1"}));
  EXPECT_EQ(split_command_line("a \"\" b"), (std::vector<std::string>{"a", "", "b"}));
  EXPECT_TRUE(split_command_line(" \t\r\n").empty());
}

// A temporary directory, removed with its files at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = ::testing::TempDir() + "convjit_descriptor_XXXXXX";
    char* made = mkdtemp(pattern.data());
    EXPECT_NE(made, nullptr);
    path_ = pattern;
  }
  ~TempDir() {
    for (const std::string& f : files_) std::remove(f.c_str());
    rmdir(path_.c_str());
  }
  std::string write(const std::string& name, const std::string& text) {
    const std::string file = path_ + "/" + name;
    std::ofstream(file) << text;
    files_.push_back(file);
    return file;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::vector<std::string> files_;
};

TEST(Descriptor, ShapeFileReadsProblemsCommentsAndOptions) {
  TempDir dir;
  const std::string file = dir.write("shapes_test",
                                     "# ResNet-50, the benchdnn way\n"
                                     "\n"
                                     "mb1ic3ih224oc64oh112kh7sh2ph3n\"resnet_50:conv1\"  # stem\n"
                                     "   \t\n"
                                     "--dt f16 --bias mb1ic256ih56oc512oh28kh1sh2nres3a_branch1\r\n"
                                     "--deconv --padding-mode=zeros mb1ic8ih4oc4oh8kh3sh2ph1 n\"up # 2\"\n"
                                     "#--deconv ic1ih1oc1kh1\n");
  // Line 6 separates the name from its descriptor by a space: benchdnn descriptors hold
  // no spaces, so the name is a second descriptor.
  const auto problems = read_problem_file(file);
  ASSERT_FALSE(problems.ok());
  EXPECT_TRUE(contains(problems.status().message(), file + ":6: two descriptors"))
      << problems.status().message();

  const std::string good = dir.write("shapes_good",
                                     "# ResNet-50, the benchdnn way\n"
                                     "\n"
                                     "mb1ic3ih224oc64oh112kh7sh2ph3n\"resnet_50:conv1\"  # stem\n"
                                     "   \t\n"
                                     "--dt f16 --bias mb1ic256ih56oc512oh28kh1sh2nres3a_branch1\r\n"
                                     "--deconv --padding-mode=zeros mb1ic8ih4oc4oh8kh3sh2ph1n\"up # 2\"\n"
                                     "#--deconv ic1ih1oc1kh1\n");
  const auto read = read_problem_file(good);
  ASSERT_TRUE(read.ok()) << read.status().message();
  ASSERT_EQ(read->size(), 3u);
  const std::vector<Problem>& p = *read;
  EXPECT_EQ(p[0].name, "resnet_50:conv1");
  EXPECT_EQ(output_h(p[0].spec), 112);
  EXPECT_EQ(p[0].spec.dtype, DataType::kFloat32);
  EXPECT_EQ(p[1].name, "res3a_branch1");
  EXPECT_EQ(p[1].spec.pad_bottom, -1);
  EXPECT_EQ(p[1].spec.dtype, DataType::kFloat16);
  EXPECT_TRUE(p[1].spec.has_bias);
  EXPECT_FALSE(p[0].spec.has_bias);  // options hold for their own line only
  EXPECT_EQ(p[2].name, "up # 2");
  EXPECT_TRUE(p[2].spec.transposed);
  EXPECT_EQ(p[2].spec.output_padding_h, 1);
}

TEST(Descriptor, ShapeFilePrintedProblemsReadBack) {
  ConvSpec s;
  s.n = 1;
  s.c_in = 3;
  s.c_out = 8;
  s.h_in = 9;
  s.w_in = 11;
  s.kh = s.kw = 3;
  s.stride_h = 2;
  s.pad_top = 1;
  s.pad_bottom = -1;
  const std::string text = "# printed\n" + print_descriptor(s, "odd name_with # and space") + "\n";
  const auto read = parse_problem_text(text, "printed.txt");
  ASSERT_TRUE(read.ok()) << read.status().message();
  ASSERT_EQ(read->size(), 1u);
  EXPECT_EQ((*read)[0].name, "odd name_with # and space");
  EXPECT_EQ(canonical_key((*read)[0].spec), canonical_key(s));
}

TEST(Descriptor, ShapeFileErrorsNameTheFileAndLine) {
  const std::string text =
      "# header\n"
      "ic3ih5oc3kh3\n"
      "\n"
      "ic3ih5oc3kh3 # fine\n"
      "ic3ih5oc3kh3x9\n"
      "ic3ih5oc3kh3\n";
  const auto p = parse_problem_text(text, "shapes_bad");
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(p.status().message().rfind("shapes_bad:5: descriptor 'ic3ih5oc3kh3x9': unknown entry 'x'", 0), 0u)
      << p.status().message();

  const auto rule = parse_problem_text("ic3ih5oc3kh3\n--padding-mode reflect ic3ih5oc3kh3ph5\n", "f");
  ASSERT_FALSE(rule.ok());
  EXPECT_EQ(rule.status().code(), StatusCode::kInvalidSpec);
  EXPECT_EQ(rule.status().message().rfind("f:2: pad_top=5 with padding mode reflect", 0), 0u)
      << rule.status().message();

  const auto option = parse_problem_text("\n\n--bogus ic3ih5oc3kh3\n", "g");
  ASSERT_FALSE(option.ok());
  EXPECT_EQ(option.status().message().rfind("g:3: unknown option '--bogus'", 0), 0u)
      << option.status().message();
}

TEST(Descriptor, ShapeFileWithoutProblemsIsAnError) {
  TempDir dir;
  const std::string file = dir.write("only_comments", "# nothing here\n\n   # nor here\n");
  const auto p = read_problem_file(file);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().message(), file + ": no problems found");
  const auto empty = read_problem_file(dir.write("empty", ""));
  ASSERT_FALSE(empty.ok());
  EXPECT_TRUE(contains(empty.status().message(), "no problems found"));
}

TEST(Descriptor, ShapeFileMissingFileIsNotFound) {
  TempDir dir;
  const std::string file = dir.path() + "/does_not_exist";
  const auto p = read_problem_file(file);
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(contains(p.status().message(), file)) << p.status().message();
  EXPECT_TRUE(contains(p.status().message(), "No such file or directory")) << p.status().message();
}

}  // namespace
}  // namespace convjit
