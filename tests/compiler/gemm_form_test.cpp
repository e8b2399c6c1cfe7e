// The GEMM form (compiler/gemm_lowering.h) without a GPU: the form is lowered for
// the host, so the extern stage runs the bridge's host loop on exactly the GEMM calls
// (offsets, leading dimensions, batch strides, transposition) it would hand cuBLAS,
// and the result is checked against the naive reference. What a GPU host adds is
// only cuBLAS executing those calls (tests/runtime/cuda_test.cpp, CudaDevice).
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "Halide.h"
#include "gemm_lowering.h"
#include "layer_cases.h"
#include "reference_conv.h"
#include "square_conv.h"

extern "C" int convjit_conv_gemm(halide_buffer_t* columns, halide_buffer_t* weights, int32_t groups, int32_t kw,
                                 int32_t kh, int32_t cig, int32_t c_out, int32_t on_cuda, halide_buffer_t* out);

namespace convjit {
namespace {

// How the host run lays out its buffers: the column matrix's storage order, and
// rows of the input and output `row_gap` elements apart beyond their width (the
// bridge then makes one GEMM per row instead of merging rows).
struct Layout {
  bool columns_k_innermost = false;
  int row_gap = 0;
};

template <typename T>
Halide::Buffer<T> padded_buffer(const std::vector<int64_t>& nchw, int row_gap) {
  // Halide order: x, y, c, n; allocated wider by row_gap, then cropped to the width.
  Halide::Buffer<T> wide(static_cast<int>(nchw[3]) + row_gap, static_cast<int>(nchw[2]),
                         static_cast<int>(nchw[1]), static_cast<int>(nchw[0]));
  wide.fill(T(0));
  wide.crop(0, 0, static_cast<int>(nchw[3]));
  return wide;
}

template <typename T, typename Convert>
void copy_in(Halide::Buffer<T>& b, const std::vector<double>& values, Convert convert) {
  int64_t i = 0;
  // Dense NCHW order: x fastest.
  for (int n = 0; n < b.dim(3).extent(); ++n)
    for (int c = 0; c < b.dim(2).extent(); ++c)
      for (int y = 0; y < b.dim(1).extent(); ++y)
        for (int x = 0; x < b.dim(0).extent(); ++x) b(x, y, c, n) = convert(values[i++]);
}

// Runs the host GEMM form of `s` and returns its output (dense NCHW, as doubles).
template <typename T, typename ToT, typename FromT>
std::vector<double> run_host_gemm(const ConvSpec& s, const Layout& layout, const std::vector<double>& src,
                                  const std::vector<double>& wei, const std::vector<double>& bias, ToT to_t,
                                  FromT from_t) {
  ConvAlgorithm a = lower_as_gemm(s, /*on_cuda=*/false);
  EXPECT_TRUE(a.gemm_form);
  if (a.gemm_columns.defined()) {
    a.gemm_columns.compute_root();
    if (layout.columns_k_innermost) a.gemm_columns.reorder_storage(a.gemm_columns.args()[2], a.x, a.y, a.n);
  }
  const auto in = input_shape(s), out = output_shape(s);
  Halide::Buffer<T> input = padded_buffer<T>({in[0], in[1], in[2], in[3]}, layout.row_gap);
  copy_in(input, src, to_t);
  const auto w = weight_shape(s);
  std::vector<int> w_extents;
  for (int d = weight_rank(s) - 1; d >= 0; --d) w_extents.push_back(static_cast<int>(w[d]));
  Halide::Buffer<T> weights(w_extents);
  int64_t i = 0;
  weights.for_each_value([&](T& v) { v = to_t(wei[i++]); });  // dense, first dimension fastest
  a.input.set(input);
  a.weights.set(weights);
  Halide::Buffer<T> bias_buffer(static_cast<int>(s.c_out));
  if (s.has_bias) {
    for (int c = 0; c < s.c_out; ++c) bias_buffer(c) = to_t(bias[c]);
    a.bias.set(bias_buffer);
  }
  Halide::Buffer<T> output = padded_buffer<T>({out[0], out[1], out[2], out[3]}, layout.row_gap);
  Halide::Pipeline pipeline(a.output);
  pipeline.set_jit_externs({{kConvGemmFunction, Halide::JITExtern(&convjit_conv_gemm)}});
  pipeline.realize(output, Halide::get_host_target());
  std::vector<double> result;
  for (int n = 0; n < output.dim(3).extent(); ++n)
    for (int c = 0; c < output.dim(2).extent(); ++c)
      for (int y = 0; y < output.dim(1).extent(); ++y)
        for (int x = 0; x < output.dim(0).extent(); ++x) result.push_back(from_t(output(x, y, c, n)));
  return result;
}

double host_gemm_error(const ConvSpec& s, const Layout& layout) {
  std::vector<double> src = random_values(input_elements(s), 1), wei = random_values(weight_elements(s), 2),
                      bias = random_values(s.c_out, 3);
  std::vector<double> actual;
  if (s.dtype == DataType::kFloat16) {
    src = round_to_half(src);
    wei = round_to_half(wei);
    bias = round_to_half(bias);
    auto to_half16 = [](double v) { return Halide::float16_t(static_cast<float>(v)); };
    auto from_half16 = [](Halide::float16_t v) { return static_cast<double>(static_cast<float>(v)); };
    actual = run_host_gemm<Halide::float16_t>(s, layout, src, wei, bias, to_half16, from_half16);
  } else {
    auto to_f = [](double v) { return static_cast<float>(v); };
    auto from_f = [](float v) { return static_cast<double>(v); };
    actual = run_host_gemm<float>(s, layout, src, wei, bias, to_f, from_f);
  }
  return relative_error(actual, reference_conv(s, src, wei, s.has_bias ? &bias : nullptr));
}

double tolerance(const ConvSpec& s) { return s.dtype == DataType::kFloat16 ? 2e-3 : 1e-5; }

std::vector<LayerCase> gemm_cases() {
  std::vector<LayerCase> cases;
  for (const LayerCase& c : layer_cases()) {
    if (why_no_gemm_form(c.spec).empty()) cases.push_back(c);
  }
  cases.push_back({"pointwise_direct", square_conv(12, 20, 6, 9, 1, 1, 0)});
  cases.back().spec.n = 3;  // one GEMM batched over the images
  {
    ConvSpec s = square_conv(12, 8, 5, 7, 1, 1, 0);
    s.groups = 4;  // batched over groups, one call per image
    s.n = 2;
    s.has_bias = true;
    s.dtype = DataType::kFloat16;
    cases.push_back({"pointwise_grouped_f16_bias", s});
  }
  {
    ConvSpec s = square_conv(6, 9, 9, 11, 3, 2, 1);
    s.kw = 2;
    s.pad_right = 0;
    s.padding_mode = PaddingMode::kCircular;
    s.dilation_h = 2;
    s.groups = 3;
    s.weight_layout = WeightLayout::kGOIHW;
    s.conv_mode = ConvMode::kConvolution;
    s.n = 2;
    cases.push_back({"circular_dilated_grouped_flipped", s});
  }
  {
    ConvSpec s = square_conv(5, 7, 8, 6, 3, 1, 1);
    s.padding_mode = PaddingMode::kReplicate;
    s.has_bias = true;
    cases.push_back({"replicate_bias", s});
  }
  return cases;
}

TEST(GemmForm, EveryCaseMatchesTheReferenceInEveryLayout) {
  int checked = 0;
  // Each case in the layout cuBLAS gets from gpu_cublas's defaults, and transposed
  // with rows apart (one GEMM per row).
  for (const LayerCase& c : gemm_cases()) {
    ASSERT_TRUE(validate(c.spec).ok()) << c.name << ": " << validate(c.spec).message();
    for (const Layout layout : {Layout{false, 0}, Layout{true, 3}}) {
      const double error = host_gemm_error(c.spec, layout);
      EXPECT_LE(error, tolerance(c.spec)) << c.name << " columns_k_innermost=" << layout.columns_k_innermost
                                          << " row_gap=" << layout.row_gap;
      ++checked;
    }
  }
  EXPECT_GE(checked, 2 * 10);
}

TEST(GemmForm, RandomForwardSpecsMatchTheReference) {
  std::mt19937 rng(20261121);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  int checked = 0;
  while (checked < 30) {
    ConvSpec s;
    s.groups = pick(1, 3);
    s.c_in = s.groups * pick(1, 5);
    s.c_out = s.groups * pick(1, 5);
    s.n = pick(1, 3);
    s.h_in = pick(1, 12);
    s.w_in = pick(1, 12);
    s.kh = pick(1, 4);
    s.kw = pick(1, 4);
    s.stride_h = pick(1, 3);
    s.stride_w = pick(1, 3);
    s.dilation_h = pick(1, 2);
    s.dilation_w = pick(1, 2);
    s.pad_top = pick(0, 2);
    s.pad_left = pick(0, 2);
    s.pad_bottom = pick(0, 2);
    s.pad_right = pick(0, 2);
    s.has_bias = pick(0, 1) == 1;
    s.conv_mode = pick(0, 1) ? ConvMode::kConvolution : ConvMode::kCrossCorrelation;
    s.padding_mode = static_cast<PaddingMode>(pick(0, 3));
    s.weight_layout = pick(0, 1) ? WeightLayout::kGOIHW : WeightLayout::kOIHW;
    s.dtype = pick(0, 3) == 0 ? DataType::kFloat16 : DataType::kFloat32;
    if (!validate(s).ok() || !why_no_gemm_form(s).empty()) continue;
    const Layout layout{pick(0, 1) == 1, pick(0, 1) * 2};
    const double error = host_gemm_error(s, layout);
    EXPECT_LE(error, tolerance(s)) << "c_in=" << s.c_in << " c_out=" << s.c_out << " g=" << s.groups << " n=" << s.n
                                   << " h=" << s.h_in << " w=" << s.w_in << " k=" << s.kh << "x" << s.kw
                                   << " stride=" << s.stride_h << "," << s.stride_w << " dil=" << s.dilation_h << ","
                                   << s.dilation_w << " pad=" << s.pad_top << "," << s.pad_left << ","
                                   << s.pad_bottom << "," << s.pad_right << " mode=" << to_string(s.padding_mode)
                                   << " " << to_string(s.conv_mode) << " " << to_string(s.weight_layout) << " "
                                   << to_string(s.dtype) << " bias=" << s.has_bias;
    ++checked;
  }
}

TEST(GemmForm, WeightsWithGapsWithinAnOutputChannelAreAClearError) {
  // The GEMM reads each output channel's weights as one dense run of c_in*kh*kw; a
  // caller's view with padded kernel rows cannot be read that way.
  const ConvSpec s = square_conv(2, 3, 5, 5, 3, 1, 1);
  ConvAlgorithm a = lower_as_gemm(s, /*on_cuda=*/false);
  a.gemm_columns.compute_root();
  Halide::Buffer<float> input(5, 5, 2, 1), output(5, 5, 3, 1);
  input.fill(1.0f);
  Halide::Buffer<float> weights(4, 3, 2, 3);  // kx padded from 3 to 4: ky stride 4
  weights.fill(1.0f);
  weights.crop(0, 0, 3);
  a.input.set(input);
  a.weights.set(weights);
  Halide::Pipeline pipeline(a.output);
  pipeline.set_jit_externs({{kConvGemmFunction, Halide::JITExtern(&convjit_conv_gemm)}});
  testing::internal::CaptureStderr();  // without a Halide runtime the bridge reports there
  EXPECT_THROW(pipeline.realize(output, Halide::get_host_target()), Halide::RuntimeError);
  const std::string message = testing::internal::GetCapturedStderr();
  EXPECT_NE(message.find("the weights must be dense within each output channel (strides 1, kw, kh*kw"),
            std::string::npos)
      << message;
}

TEST(GemmForm, SpecsWithoutAGemmFormSayWhy) {
  ConvSpec transposed = square_conv(8, 4, 5, 5, 4, 2, 1);
  transposed.transposed = true;
  transposed.weight_layout = WeightLayout::kIOHW;
  EXPECT_NE(why_no_gemm_form(transposed).find("transposed"), std::string::npos);
  EXPECT_NE(why_no_gemm_form(ConvSpec::depthwise(1, 8, 9, 9, 1, 3, 3)).find("depthwise"), std::string::npos);
  ConvSpec iohw = square_conv(8, 8, 5, 5, 3, 1, 1);
  iohw.weight_layout = WeightLayout::kIOHW;
  EXPECT_NE(why_no_gemm_form(iohw).find("iohw"), std::string::npos) << why_no_gemm_form(iohw);
  // 64 x 3x3 taps x 224 x 224 outputs x 128 images: 3.7e9 column elements.
  ConvSpec huge = square_conv(64, 64, 224, 224, 3, 1, 1);
  huge.n = 128;
  EXPECT_NE(why_no_gemm_form(huge).find("32-bit"), std::string::npos) << why_no_gemm_form(huge);
  EXPECT_EQ(why_no_gemm_form(square_conv(64, 64, 56, 56, 3, 1, 1)), "");
  // 1x1 without padding reads the input itself, so no column matrix bounds its size.
  ConvSpec pointwise = square_conv(512, 512, 224, 224, 1, 1, 0);
  pointwise.n = 64;
  EXPECT_EQ(why_no_gemm_form(pointwise), "");
  EXPECT_TRUE(gemm_reads_input_directly(pointwise));
  EXPECT_FALSE(gemm_reads_input_directly(square_conv(8, 8, 8, 8, 1, 2, 0)));
}

}  // namespace
}  // namespace convjit
