// Lowering to the GEMM form: the column matrix, the extern GEMM stage and the bias
// epilogue.
#include "gemm_lowering.h"

#include <limits>

#include "flat_lowering.h"

namespace convjit {

using Halide::Expr;
using Halide::ExternFuncArgument;
using Halide::Func;

// The input is the column matrix exactly where it is the flat form's matrix of
// positions by channels.
bool gemm_reads_input_directly(const ConvSpec& spec) {
  return why_no_flat_form(spec).empty() && flat_input_is_input_plane(spec);
}

std::string why_no_gemm_form(const ConvSpec& requested) {
  const ConvSpec s = canonicalize(requested);
  if (s.transposed) return "transposed convolutions have no im2col form here (col2im is not built)";
  if (s.groups == s.c_in && s.groups > 1) {
    return "depthwise: one input channel per group makes GEMMs of only kh*kw rows";
  }
  if (s.weight_layout != WeightLayout::kOIHW && s.weight_layout != WeightLayout::kGOIHW) {
    return std::string(to_string(s.weight_layout)) +
           " weights: the GEMM reads OIHW or GOIHW weights in place, where a weight row (i, ky, kx) is contiguous";
  }
  const double column_elements = static_cast<double>(s.n) * output_h(s) * output_w(s) * s.c_in * s.kh * s.kw;
  if (!gemm_reads_input_directly(s) && column_elements > std::numeric_limits<int32_t>::max()) {
    return "its im2col matrix would hold " + std::to_string(static_cast<int64_t>(column_elements)) +
           " elements, more than 32-bit indexing reaches";
  }
  return "";
}

ConvAlgorithm lower_as_gemm(const ConvSpec& spec, bool on_cuda) {
  CONVJIT_CHECK(why_no_gemm_form(spec).empty(), "lower_as_gemm needs a spec with a GEMM form");
  // The plain form supplies the parameters and the padded input; its sums are dropped.
  ConvAlgorithm a = lower(spec);
  const ConvSpec& s = a.spec;
  a.gemm_form = true;
  a.accumulator = Func();
  Halide::Var &x = a.x, &y = a.y, &c = a.c, &n = a.n;

  const int kw = static_cast<int>(s.kw), kh = static_cast<int>(s.kh);
  const int cig = static_cast<int>(s.c_in / s.groups);
  const int taps = kh * kw;
  ExternFuncArgument columns_argument;
  if (gemm_reads_input_directly(s)) {
    columns_argument = ExternFuncArgument(a.input.parameter());
  } else {
    // Row k of group g's weight matrix is (i, ky, kx) in weight memory order; a true
    // convolution reads the kernel flipped, so its input tap mirrors (ky, kx).
    Halide::Var k("k");
    Expr group = k / (cig * taps), within = k % (cig * taps);
    Expr i = within / taps, ky = (within / kw) % kh, kx = within % kw;
    if (s.conv_mode == ConvMode::kConvolution) {
      ky = kh - 1 - ky;
      kx = kw - 1 - kx;
    }
    a.gemm_columns = Func("gemm_columns");
    a.gemm_columns(x, y, k, n) = a.input_extended(
        x * static_cast<int>(s.stride_w) + kx * static_cast<int>(s.dilation_w) - static_cast<int>(s.pad_left),
        y * static_cast<int>(s.stride_h) + ky * static_cast<int>(s.dilation_h) - static_cast<int>(s.pad_top),
        group * cig + i, n);
    columns_argument = ExternFuncArgument(a.gemm_columns);
  }

  const Halide::Type data_type = a.input.type();
  a.gemm_product = Func("gemm_product");
  const std::vector<ExternFuncArgument> arguments = {
      columns_argument,
      ExternFuncArgument(a.weights.parameter()),
      Expr(static_cast<int>(s.groups)),
      Expr(kw),
      Expr(kh),
      Expr(cig),
      Expr(static_cast<int>(s.c_out)),
      Expr(on_cuda ? 1 : 0),
  };
  // With a bias the product stays float32 until the bias is added; without one the
  // GEMM rounds its float32 sums to the data type itself.
  a.gemm_product.define_extern(kConvGemmFunction, arguments, s.has_bias ? Halide::Float(32) : data_type,
                               {x, y, c, n}, Halide::NameMangling::C,
                               on_cuda ? Halide::DeviceAPI::CUDA : Halide::DeviceAPI::Host);
  if (s.has_bias) {
    // The stage computes whole outputs (every channel of a group at once), so it is
    // computed at root, never per point of its consumer (Halide's default for an
    // extern stage another Func reads).
    a.gemm_product.compute_root();
    a.output = Func("output");
    a.output(x, y, c, n) = Halide::cast(data_type, a.gemm_product(x, y, c, n) + Halide::cast<float>(a.bias(c)));
  } else {
    a.output = a.gemm_product;
  }
  pin_output_shape(a);
  return a;
}

}  // namespace convjit
