// validate(): every rule a ConvSpec must obey before it is lowered, each failure a
// message that names the value and the rule.
#include <limits>
#include <sstream>
#include <string>

#include "convjit/conv_spec.h"

namespace convjit {
namespace {

// Halide indexes buffers with 32-bit integers unless compiled with large_buffers;
// keeping every tensor under 2^31 bytes keeps every index and every byte offset in range.
constexpr int64_t kMaxTensorBytes = std::numeric_limits<int32_t>::max();
constexpr int64_t kMaxField = std::numeric_limits<int32_t>::max();

template <typename... Parts>
std::string cat(const Parts&... parts) {
  std::ostringstream out;
  (out << ... << parts);
  return out.str();
}

// Product that saturates instead of overflowing (each factor is < 2^31 here).
int64_t saturating_product(std::initializer_list<int64_t> factors) {
  __int128 p = 1;
  for (int64_t f : factors) {
    p *= f;
    if (p > std::numeric_limits<int64_t>::max()) return std::numeric_limits<int64_t>::max();
  }
  return static_cast<int64_t>(p);
}

Status check_enums(const ConvSpec& s) {
  auto bad = [](const char* field, int value, const char* allowed) {
    return Status::invalid_spec(cat(field, "=", value, ": unknown enum value (expected one of ",
                                    allowed, ")"));
  };
  if (static_cast<unsigned>(s.padding_mode) > static_cast<unsigned>(PaddingMode::kCircular))
    return bad("padding_mode", static_cast<int>(s.padding_mode),
               "zeros, reflect, replicate, circular");
  if (static_cast<unsigned>(s.conv_mode) > static_cast<unsigned>(ConvMode::kConvolution))
    return bad("conv_mode", static_cast<int>(s.conv_mode), "cross_correlation, convolution");
  if (static_cast<unsigned>(s.dtype) > static_cast<unsigned>(DataType::kFloat16))
    return bad("dtype", static_cast<int>(s.dtype), "f32, f16");
  if (static_cast<unsigned>(s.compute_mode) > static_cast<unsigned>(ComputeMode::kFloat32))
    return bad("compute_mode", static_cast<int>(s.compute_mode), "default, float32");
  if (static_cast<unsigned>(s.weight_layout) > static_cast<unsigned>(WeightLayout::kOIHW16o))
    return bad("weight_layout", static_cast<int>(s.weight_layout), "oihw, goihw, iohw, mihw, oihw16o");
  return Status();
}

Status check_positive_sizes(const ConvSpec& s) {
  struct Field {
    const char* name;
    int64_t value;
    const char* what;
  };
  const Field fields[] = {
      {"n", s.n, "batch size"},
      {"c_in", s.c_in, "input channels"},
      {"h_in", s.h_in, "input height"},
      {"w_in", s.w_in, "input width"},
      {"c_out", s.c_out, "output channels"},
      {"kh", s.kh, "kernel height"},
      {"kw", s.kw, "kernel width"},
      {"stride_h", s.stride_h, "stride"},
      {"stride_w", s.stride_w, "stride"},
      {"dilation_h", s.dilation_h, "dilation (1 = dense)"},
      {"dilation_w", s.dilation_w, "dilation (1 = dense)"},
      {"groups", s.groups, "groups"},
  };
  for (const Field& f : fields) {
    if (f.value < 1) return Status::invalid_spec(cat(f.name, "=", f.value, ": ", f.what, " must be >= 1"));
    if (f.value > kMaxField)
      return Status::invalid_spec(cat(f.name, "=", f.value, ": ", f.what, " must be < 2^31"));
  }
  const Field pads[] = {{"pad_top", s.pad_top, ""},
                        {"pad_bottom", s.pad_bottom, ""},
                        {"pad_left", s.pad_left, ""},
                        {"pad_right", s.pad_right, ""},
                        {"output_padding_h", s.output_padding_h, ""},
                        {"output_padding_w", s.output_padding_w, ""},
                        {"outsize_h", s.outsize_h, ""},
                        {"outsize_w", s.outsize_w, ""}};
  for (const Field& f : pads) {
    if (f.value > kMaxField || f.value < -kMaxField)
      return Status::invalid_spec(cat(f.name, "=", f.value, ": magnitude must be < 2^31"));
  }
  if (s.pad_top < 0 || s.pad_left < 0) {
    const bool top = s.pad_top < 0;
    return Status::invalid_spec(cat(top ? "pad_top=" : "pad_left=", top ? s.pad_top : s.pad_left,
                                    ": top and left padding must be >= 0"));
  }
  return Status();
}

Status check_groups(const ConvSpec& s) {
  if (s.c_in % s.groups != 0)
    return Status::invalid_spec(
        cat("c_in=", s.c_in, " with groups=", s.groups, ": c_in must be divisible by groups"));
  if (s.c_out % s.groups != 0)
    return Status::invalid_spec(
        cat("c_out=", s.c_out, " with groups=", s.groups, ": c_out must be divisible by groups"));
  if (s.weight_layout == WeightLayout::kMIHW && s.groups != s.c_in)
    return Status::invalid_spec(cat("weight layout mihw with groups=", s.groups, " and c_in=", s.c_in,
                                    ": mihw describes a depthwise convolution and needs groups == c_in"));
  if (s.weight_layout == WeightLayout::kOIHW16o && s.c_out % 16 != 0)
    return Status::invalid_spec(cat("weight layout oihw16o with c_out=", s.c_out,
                                    ": oihw16o holds the output channels in blocks of 16 and needs c_out a "
                                    "multiple of 16"));
  return Status();
}

Status check_transposed_rules(const ConvSpec& s) {
  if (!s.transposed) {
    if (s.output_padding_h != 0 || s.output_padding_w != 0)
      return Status::invalid_spec(cat("output_padding=(", s.output_padding_h, ", ", s.output_padding_w,
                                      "): output_padding applies only to transposed convolutions"));
    if (s.outsize_h != 0 || s.outsize_w != 0)
      return Status::invalid_spec(cat("outsize=(", s.outsize_h, ", ", s.outsize_w,
                                      "): outsize applies only to transposed convolutions"));
    return Status();
  }
  if (s.padding_mode != PaddingMode::kZeros)
    return Status::invalid_spec(cat("padding mode ", to_string(s.padding_mode),
                                    " on a transposed convolution: only zeros padding is defined there"));
  if (s.cover_all)
    return Status::invalid_spec("cover_all on a transposed convolution: cover_all applies only to forward convolutions");
  if (s.pad_bottom < 0 || s.pad_right < 0)
    return Status::invalid_spec(cat("pad_bottom=", s.pad_bottom, ", pad_right=", s.pad_right,
                                    ": padding of a transposed convolution must be >= 0"));
  if (s.output_padding_h < 0 || s.output_padding_w < 0)
    return Status::invalid_spec(cat("output_padding=(", s.output_padding_h, ", ", s.output_padding_w,
                                    "): output_padding must be >= 0"));
  struct Axis {
    const char* name;
    int64_t outsize, output_padding, in, pad_begin, pad_end, dilated_kernel, stride, dilation;
  };
  const Axis axes[] = {
      {"h", s.outsize_h, s.output_padding_h, s.h_in, s.pad_top, s.pad_bottom, dilated_kernel_h(s),
       s.stride_h, s.dilation_h},
      {"w", s.outsize_w, s.output_padding_w, s.w_in, s.pad_left, s.pad_right, dilated_kernel_w(s),
       s.stride_w, s.dilation_w}};
  for (const Axis& a : axes) {
    if (a.outsize != 0) {
      if (a.output_padding != 0)
        return Status::invalid_spec(cat("outsize_", a.name, "=", a.outsize, " with output_padding_",
                                        a.name, "=", a.output_padding,
                                        ": give outsize or output_padding, not both"));
      // Chainer accepts outsize when the forward convolution of that size gives back
      // the input size: natural <= outsize <= natural + stride - 1.
      const int64_t natural = a.stride * (a.in - 1) + a.dilated_kernel - a.pad_begin - a.pad_end;
      if (a.outsize < natural || a.outsize > natural + a.stride - 1)
        return Status::invalid_spec(cat("outsize_", a.name, "=", a.outsize, ": outsize must lie in [",
                                        natural, ", ", natural + a.stride - 1,
                                        "] (stride*(in-1) + dilation*(k-1) + 1 - pads, plus at most stride-1)"));
    } else if (a.output_padding >= a.stride && a.output_padding >= a.dilation) {
      return Status::invalid_spec(cat("output_padding_", a.name, "=", a.output_padding, " with stride_",
                                      a.name, "=", a.stride, " and dilation_", a.name, "=", a.dilation,
                                      ": output_padding must be smaller than stride or dilation"));
    }
  }
  return Status();
}

Status check_padding_mode(const ConvSpec& s) {
  if (s.cover_all && s.padding_mode != PaddingMode::kZeros)
    return Status::invalid_spec(cat("cover_all with padding mode ", to_string(s.padding_mode),
                                    ": cover_all needs zeros padding"));
  if (s.padding_mode != PaddingMode::kReflect && s.padding_mode != PaddingMode::kCircular) return Status();
  struct Pad {
    const char* name;
    int64_t pad;
    const char* size_name;
    int64_t size;
  };
  const Pad pads[] = {{"pad_top", s.pad_top, "h_in", s.h_in},
                      {"pad_bottom", s.pad_bottom, "h_in", s.h_in},
                      {"pad_left", s.pad_left, "w_in", s.w_in},
                      {"pad_right", s.pad_right, "w_in", s.w_in}};
  for (const Pad& p : pads) {
    if (s.padding_mode == PaddingMode::kReflect && p.pad >= p.size)
      return Status::invalid_spec(cat(p.name, "=", p.pad, " with padding mode reflect and ", p.size_name, "=",
                                      p.size, ": reflect padding must be smaller than the input size"));
    if (s.padding_mode == PaddingMode::kCircular && p.pad > p.size)
      return Status::invalid_spec(cat(p.name, "=", p.pad, " with padding mode circular and ", p.size_name,
                                      "=", p.size, ": circular padding must not be larger than the input size"));
  }
  return Status();
}

Status check_output_size(const ConvSpec& s) {
  const int64_t oh = output_h(s), ow = output_w(s);
  if (oh < 1)
    return Status::invalid_spec(cat("output height ", oh, " (h_in=", s.h_in, ", pad_top=", s.pad_top,
                                    ", pad_bottom=", s.pad_bottom, ", kh=", s.kh, ", dilation_h=", s.dilation_h,
                                    ", stride_h=", s.stride_h, "): output size must be >= 1"));
  if (ow < 1)
    return Status::invalid_spec(cat("output width ", ow, " (w_in=", s.w_in, ", pad_left=", s.pad_left,
                                    ", pad_right=", s.pad_right, ", kw=", s.kw, ", dilation_w=", s.dilation_w,
                                    ", stride_w=", s.stride_w, "): output size must be >= 1"));
  return Status();
}

Status check_32bit_indexing(const ConvSpec& s) {
  const int64_t bytes = element_size(s.dtype);
  const auto in = input_shape(s);
  const auto out = output_shape(s);
  const auto w = weight_shape(s);
  struct Tensor {
    const char* name;
    int64_t elements;
  };
  const Tensor tensors[] = {
      {"input", saturating_product({in[0], in[1], in[2], in[3]})},
      {"output", saturating_product({out[0], out[1], out[2], out[3]})},
      {"weights", saturating_product({w[0], w[1], w[2], w[3], weight_rank(s) == 5 ? w[4] : 1})},
  };
  for (const Tensor& t : tensors) {
    if (saturating_product({t.elements, bytes}) > kMaxTensorBytes) {
      const std::string count = t.elements == std::numeric_limits<int64_t>::max()
                                    ? std::string("more than 2^63")
                                    : std::to_string(t.elements);
      return Status::invalid_spec(cat(t.name, " tensor of ", count, " ", to_string(s.dtype),
                                      " elements: every tensor must be smaller than 2^31 bytes "
                                      "(the kernels use 32-bit indexing)"));
    }
  }
  // Positions read in the padded input (and written in a transposed output) must
  // also fit: stride*(out-1) + dilated kernel spans the padded extent.
  const int64_t span_h = saturating_product({s.stride_h, std::max(out[2], in[2])}) + dilated_kernel_h(s);
  const int64_t span_w = saturating_product({s.stride_w, std::max(out[3], in[3])}) + dilated_kernel_w(s);
  if (span_h > kMaxField || span_w > kMaxField)
    return Status::invalid_spec(cat("padded extent ", span_h, "x", span_w,
                                    ": input positions must fit 32-bit indexing (< 2^31)"));
  return Status();
}

}  // namespace

Status validate(const ConvSpec& s) {
  CONVJIT_RETURN_IF_ERROR(check_enums(s));
  CONVJIT_RETURN_IF_ERROR(check_positive_sizes(s));
  CONVJIT_RETURN_IF_ERROR(check_groups(s));
  CONVJIT_RETURN_IF_ERROR(check_transposed_rules(s));
  CONVJIT_RETURN_IF_ERROR(check_padding_mode(s));
  CONVJIT_RETURN_IF_ERROR(check_output_size(s));
  CONVJIT_RETURN_IF_ERROR(check_32bit_indexing(s));
  return Status();
}

}  // namespace convjit
