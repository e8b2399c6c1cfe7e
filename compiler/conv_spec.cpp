// Derived quantities of a ConvSpec (output size, tensor shapes, FLOPs) and enum names.
#include "convjit/conv_spec.h"

#include <algorithm>
#include <cstring>
#include <tuple>

namespace convjit {
namespace {

// Floor division for a possibly negative numerator (the seeds' formulas use floor).
int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

int64_t forward_output_size(int64_t in, int64_t pad_begin, int64_t pad_end, int64_t dilated_kernel,
                            int64_t stride, bool cover_all) {
  // Chainer's cover_all adds stride-1 to the numerator: one more output when the
  // last stride does not reach the end, i.e. extra zero padding at the end.
  int64_t extra = cover_all ? stride - 1 : 0;
  return floor_div(in + pad_begin + pad_end + extra - dilated_kernel, stride) + 1;
}

// Transposed output size before output_padding: stride*(in-1) + dilated_kernel - pads.
int64_t transposed_natural_size(int64_t in, int64_t pad_begin, int64_t pad_end,
                                int64_t dilated_kernel, int64_t stride) {
  return stride * (in - 1) + dilated_kernel - pad_begin - pad_end;
}

}  // namespace

ConvSpec ConvSpec::depthwise(int64_t n, int64_t c_in, int64_t h_in, int64_t w_in,
                             int64_t multiplier, int64_t kh, int64_t kw) {
  ConvSpec s;
  s.n = n;
  s.c_in = c_in;
  s.h_in = h_in;
  s.w_in = w_in;
  s.c_out = c_in * multiplier;
  s.groups = c_in;
  s.kh = kh;
  s.kw = kw;
  return s;
}

bool ConvSpec::operator==(const ConvSpec& o) const {
  auto tie = [](const ConvSpec& s) {
    return std::make_tuple(s.n, s.c_in, s.h_in, s.w_in, s.c_out, s.kh, s.kw, s.stride_h, s.stride_w,
                           s.pad_top, s.pad_bottom, s.pad_left, s.pad_right, s.dilation_h,
                           s.dilation_w, s.groups, s.transposed, s.output_padding_h,
                           s.output_padding_w, s.outsize_h, s.outsize_w, s.cover_all,
                           s.padding_mode, s.conv_mode, s.dtype, s.compute_mode, s.weight_layout,
                           s.has_bias);
  };
  return tie(*this) == tie(o);
}

int64_t dilated_kernel_h(const ConvSpec& s) { return s.dilation_h * (s.kh - 1) + 1; }
int64_t dilated_kernel_w(const ConvSpec& s) { return s.dilation_w * (s.kw - 1) + 1; }

int64_t effective_output_padding_h(const ConvSpec& s) {
  if (!s.transposed) return 0;
  if (s.outsize_h == 0) return s.output_padding_h;
  return s.outsize_h -
         transposed_natural_size(s.h_in, s.pad_top, s.pad_bottom, dilated_kernel_h(s), s.stride_h);
}

int64_t effective_output_padding_w(const ConvSpec& s) {
  if (!s.transposed) return 0;
  if (s.outsize_w == 0) return s.output_padding_w;
  return s.outsize_w -
         transposed_natural_size(s.w_in, s.pad_left, s.pad_right, dilated_kernel_w(s), s.stride_w);
}

int64_t output_h(const ConvSpec& s) {
  if (s.transposed) {
    return transposed_natural_size(s.h_in, s.pad_top, s.pad_bottom, dilated_kernel_h(s),
                                   s.stride_h) +
           effective_output_padding_h(s);
  }
  return forward_output_size(s.h_in, s.pad_top, s.pad_bottom, dilated_kernel_h(s), s.stride_h,
                             s.cover_all);
}

int64_t output_w(const ConvSpec& s) {
  if (s.transposed) {
    return transposed_natural_size(s.w_in, s.pad_left, s.pad_right, dilated_kernel_w(s),
                                   s.stride_w) +
           effective_output_padding_w(s);
  }
  return forward_output_size(s.w_in, s.pad_left, s.pad_right, dilated_kernel_w(s), s.stride_w,
                             s.cover_all);
}

bool is_depthwise(const ConvSpec& s) { return s.groups == s.c_in && s.c_out % s.c_in == 0; }

int64_t depthwise_multiplier(const ConvSpec& s) { return is_depthwise(s) ? s.c_out / s.c_in : 0; }

std::array<int64_t, 4> input_shape(const ConvSpec& s) { return {s.n, s.c_in, s.h_in, s.w_in}; }

std::array<int64_t, 4> output_shape(const ConvSpec& s) {
  return {s.n, s.c_out, output_h(s), output_w(s)};
}

int weight_rank(const ConvSpec& s) {
  return s.weight_layout == WeightLayout::kGOIHW || s.weight_layout == WeightLayout::kOIHW16o ? 5 : 4;
}

std::array<int64_t, 5> weight_shape(const ConvSpec& s) {
  const int64_t g = s.groups;
  switch (s.weight_layout) {
    case WeightLayout::kOIHW:
      return {s.c_out, s.c_in / g, s.kh, s.kw, 0};
    case WeightLayout::kGOIHW:
      return {g, s.c_out / g, s.c_in / g, s.kh, s.kw};
    case WeightLayout::kIOHW:
      return {s.c_in, s.c_out / g, s.kh, s.kw, 0};
    case WeightLayout::kMIHW:
      return {s.c_out / s.c_in, s.c_in, s.kh, s.kw, 0};
    case WeightLayout::kOIHW16o:
      return {s.c_out / 16, s.c_in / g, s.kh, s.kw, 16};
  }
  CONVJIT_CHECK(false, "unknown weight layout");
  return {};
}

int64_t weight_offset(const ConvSpec& s, int64_t o, int64_t i, int64_t ky, int64_t kx) {
  const int64_t cog = s.c_out / s.groups, cig = s.c_in / s.groups;
  switch (s.weight_layout) {
    case WeightLayout::kOIHW:
    case WeightLayout::kGOIHW:  // the same memory
      return ((o * cig + i) * s.kh + ky) * s.kw + kx;
    case WeightLayout::kIOHW:  // (c_in, c_out/g, kh, kw): row of the global input channel
      return ((((o / cog) * cig + i) * cog + o % cog) * s.kh + ky) * s.kw + kx;
    case WeightLayout::kMIHW: {  // output channel c*m+j uses W[j, c]
      const int64_t m = s.c_out / s.c_in;
      return (((o % m) * s.c_in + o / m) * s.kh + ky) * s.kw + kx;
    }
    case WeightLayout::kOIHW16o:
      return ((((o / 16) * cig + i) * s.kh + ky) * s.kw + kx) * 16 + o % 16;
  }
  CONVJIT_CHECK(false, "unknown weight layout");
  return 0;
}

WeightLayout preferred_weight_layout(const ConvSpec& spec) {
  // IOHW too: repacking it gathers (a vector of output channels is kh * kw apart).
  // DCGAN's 2 MiB 256 -> 128 transposed layer spent 30% of its time there (Halide's
  // profiler), and ran 1.44x faster with oihw16o weights (bench/schedule_ab --warm,
  // 7 rounds, 1 thread, 2-core AVX-512 Xeon, 2026-11-22: 1.03 ms against 1.48).
  if (spec.weight_layout != WeightLayout::kOIHW && spec.weight_layout != WeightLayout::kGOIHW &&
      spec.weight_layout != WeightLayout::kIOHW) {
    return spec.weight_layout;
  }
  const int64_t bytes = spec.c_out * (spec.c_in / std::max<int64_t>(spec.groups, 1)) * spec.kh * spec.kw * element_size(spec.dtype);
  if (bytes < (int64_t{1} << 20)) return spec.weight_layout;
  ConvSpec blocked = spec;
  blocked.weight_layout = WeightLayout::kOIHW16o;
  return validate(blocked).ok() ? WeightLayout::kOIHW16o : spec.weight_layout;
}

Status convert_weights(const ConvSpec& spec, const void* src, WeightLayout to, void* dst) {
  CONVJIT_RETURN_IF_ERROR(validate(spec));
  ConvSpec target = spec;
  target.weight_layout = to;
  CONVJIT_RETURN_IF_ERROR(validate(target));
  const int64_t size = element_size(spec.dtype);
  const int64_t cig = spec.c_in / spec.groups;
  const auto* from = static_cast<const unsigned char*>(src);
  auto* into = static_cast<unsigned char*>(dst);
  for (int64_t o = 0; o < spec.c_out; ++o)
    for (int64_t i = 0; i < cig; ++i)
      for (int64_t ky = 0; ky < spec.kh; ++ky)
        for (int64_t kx = 0; kx < spec.kw; ++kx)
          std::memcpy(into + weight_offset(target, o, i, ky, kx) * size, from + weight_offset(spec, o, i, ky, kx) * size,
                      static_cast<size_t>(size));
  return Status();
}

int64_t bias_size(const ConvSpec& s) { return s.c_out; }

double flops(const ConvSpec& s) {
  const double per_group_reduction =
      static_cast<double>(s.transposed ? s.c_out / s.groups : s.c_in / s.groups) * s.kh * s.kw;
  const double points = s.transposed
                            ? static_cast<double>(s.n) * s.c_in * s.h_in * s.w_in
                            : static_cast<double>(s.n) * s.c_out * output_h(s) * output_w(s);
  return 2.0 * points * per_group_reduction;
}

int element_size(DataType t) { return t == DataType::kFloat16 ? 2 : 4; }

const char* to_string(PaddingMode m) {
  switch (m) {
    case PaddingMode::kZeros: return "zeros";
    case PaddingMode::kReflect: return "reflect";
    case PaddingMode::kReplicate: return "replicate";
    case PaddingMode::kCircular: return "circular";
  }
  return "invalid";
}

const char* to_string(ConvMode m) {
  switch (m) {
    case ConvMode::kCrossCorrelation: return "cross_correlation";
    case ConvMode::kConvolution: return "convolution";
  }
  return "invalid";
}

const char* to_string(DataType t) {
  switch (t) {
    case DataType::kFloat32: return "f32";
    case DataType::kFloat16: return "f16";
  }
  return "invalid";
}

const char* to_string(ComputeMode m) {
  switch (m) {
    case ComputeMode::kDefault: return "default";
    case ComputeMode::kFloat32: return "float32";
  }
  return "invalid";
}

const char* to_string(WeightLayout l) {
  switch (l) {
    case WeightLayout::kOIHW: return "oihw";
    case WeightLayout::kGOIHW: return "goihw";
    case WeightLayout::kIOHW: return "iohw";
    case WeightLayout::kMIHW: return "mihw";
    case WeightLayout::kOIHW16o: return "oihw16o";
  }
  return "invalid";
}

namespace {

// Looks `text` up among the names to_string gives to the enumerators of E.
template <typename E, size_t N>
StatusOr<E> parse_enum(const std::string& text, const E (&values)[N], const char* what) {
  std::string names;
  for (E v : values) {
    if (text == to_string(v)) return v;
    names += names.empty() ? "" : ", ";
    names += to_string(v);
  }
  return Status::invalid_argument(std::string("unknown ") + what + " '" + text + "': expected one of " +
                                  names);
}

}  // namespace

StatusOr<PaddingMode> parse_padding_mode(const std::string& text) {
  static const PaddingMode kAll[] = {PaddingMode::kZeros, PaddingMode::kReflect,
                                     PaddingMode::kReplicate, PaddingMode::kCircular};
  return parse_enum(text, kAll, "padding mode");
}

StatusOr<ConvMode> parse_conv_mode(const std::string& text) {
  static const ConvMode kAll[] = {ConvMode::kCrossCorrelation, ConvMode::kConvolution};
  return parse_enum(text, kAll, "conv mode");
}

StatusOr<DataType> parse_data_type(const std::string& text) {
  static const DataType kAll[] = {DataType::kFloat32, DataType::kFloat16};
  return parse_enum(text, kAll, "data type");
}

StatusOr<ComputeMode> parse_compute_mode(const std::string& text) {
  static const ComputeMode kAll[] = {ComputeMode::kDefault, ComputeMode::kFloat32};
  return parse_enum(text, kAll, "compute mode");
}

StatusOr<WeightLayout> parse_weight_layout(const std::string& text) {
  static const WeightLayout kAll[] = {WeightLayout::kOIHW, WeightLayout::kGOIHW, WeightLayout::kIOHW,
                                      WeightLayout::kMIHW, WeightLayout::kOIHW16o};
  return parse_enum(text, kAll, "weight layout");
}

}  // namespace convjit
