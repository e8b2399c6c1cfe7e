// ConvSpec: the one description of a 2-D convolution that every part of convjit shares.
//
// Vocabulary (DESIGN.md): n, c_in, h_in, w_in, c_out, kh, kw, stride, four-sided
// padding, 1-based dilation, groups, transposed + output_padding. Activations are
// NCHW. For a transposed convolution c_in/h_in/w_in describe *its* input and
// c_out its output, as in PyTorch's ConvTranspose2d and Chainer's deconvolution_2d.
//
// A ConvSpec is plain data: build it field by field, then call validate(). Every
// other function here assumes a spec that validate() accepted.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "convjit/status.h"

namespace convjit {

// How the input is extended beyond its borders (PyTorch's padding_mode).
enum class PaddingMode { kZeros, kReflect, kReplicate, kCircular };
// Cross-correlation (every framework's default) or true convolution (flipped kernel).
enum class ConvMode { kCrossCorrelation, kConvolution };
// Element type of input, weights, bias and output.
enum class DataType { kFloat32, kFloat16 };
// MegEngine's compute_mode: kFloat32 asks for float32 accumulation of float16 data.
enum class ComputeMode { kDefault, kFloat32 };
// Memory order of the weight tensor. O = the operation's output channels, I = its
// input channels, G = groups, M = depthwise multiplier. All describe the same math.
enum class WeightLayout {
  kOIHW,   // (c_out, c_in/g, kh, kw): PyTorch / Chainer convolution
  kGOIHW,  // (g, c_out/g, c_in/g, kh, kw): MegEngine grouped, same memory as OIHW
  kIOHW,   // (c_in, c_out/g, kh, kw): PyTorch / Chainer transposed convolution
  kMIHW,   // (m, c_in, kh, kw): Chainer depthwise; output channel i*m+j uses W[j, i]
  // (c_out/16, c_in/g, kh, kw, 16): OIHW with the output channels in blocks of 16,
  // innermost (oneDNN's Oihw16o); c_out a multiple of 16. For a transposed
  // convolution too (O is still the operation's output channels, as in OIHW).
  // A vector of output channels is one dense load, so channel-vectorized schedules
  // read the weights as they are instead of repacking them on every run: weights
  // reordered once (convert_weights) and used for many runs.
  kOIHW16o,
};

struct ConvSpec {
  int64_t n = 1;
  int64_t c_in = 0, h_in = 0, w_in = 0;
  int64_t c_out = 0;
  int64_t kh = 0, kw = 0;
  int64_t stride_h = 1, stride_w = 1;
  // Forward: pad_bottom/pad_right may be negative (the last input rows/columns are
  // then never read), as benchdnn derives for ResNet-50's stride-2 1x1 projection.
  int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  int64_t dilation_h = 1, dilation_w = 1;  // 1 = dense
  int64_t groups = 1;
  bool transposed = false;
  int64_t output_padding_h = 0, output_padding_w = 0;  // transposed only (PyTorch)
  // Chainer's deconvolution outsize; 0 = not given. When given it fixes
  // output_padding (which must then be 0 here) and must lie in Chainer's valid range.
  int64_t outsize_h = 0, outsize_w = 0;
  bool cover_all = false;  // Chainer: forward only, zeros padding only
  PaddingMode padding_mode = PaddingMode::kZeros;
  ConvMode conv_mode = ConvMode::kCrossCorrelation;
  DataType dtype = DataType::kFloat32;
  ComputeMode compute_mode = ComputeMode::kDefault;
  WeightLayout weight_layout = WeightLayout::kOIHW;
  bool has_bias = false;

  // A depthwise convolution with channel multiplier m: groups = c_in, c_out = c_in*m.
  static ConvSpec depthwise(int64_t n, int64_t c_in, int64_t h_in, int64_t w_in,
                            int64_t multiplier, int64_t kh, int64_t kw);

  bool operator==(const ConvSpec& other) const;
  bool operator!=(const ConvSpec& other) const { return !(*this == other); }
};

// Checks every rule of the seed documents and of the kernels' 32-bit indexing.
// The message names the offending value and the rule, e.g.
// "c_in=10 with groups=3: c_in must be divisible by groups".
Status validate(const ConvSpec& spec);

// ---- Derived quantities (valid specs only) ----------------------------------

int64_t dilated_kernel_h(const ConvSpec& s);  // dilation_h*(kh-1)+1
int64_t dilated_kernel_w(const ConvSpec& s);
// Output size from the seeds' formulas (PyTorch floor form, Chainer cover_all,
// transposed with output_padding or outsize).
int64_t output_h(const ConvSpec& s);
int64_t output_w(const ConvSpec& s);
// Transposed: output_padding after resolving Chainer's outsize.
int64_t effective_output_padding_h(const ConvSpec& s);
int64_t effective_output_padding_w(const ConvSpec& s);
// Depthwise multiplier c_out/c_in when groups == c_in, else 0.
int64_t depthwise_multiplier(const ConvSpec& s);
bool is_depthwise(const ConvSpec& s);

// Tensor shapes, outermost first (NCHW for activations).
std::array<int64_t, 4> input_shape(const ConvSpec& s);
std::array<int64_t, 4> output_shape(const ConvSpec& s);
int weight_rank(const ConvSpec& s);                  // 5 for GOIHW and OIHW16o, else 4
std::array<int64_t, 5> weight_shape(const ConvSpec& s);  // first weight_rank() entries used
// The element offset, in a dense tensor of weight_shape(s), of the weight joining
// output channel o with input channel i_local of o's group at tap (ky, kx).
int64_t weight_offset(const ConvSpec& s, int64_t o, int64_t i_local, int64_t ky, int64_t kx);
// Copies the dense weights `src` of `spec` (in spec.weight_layout) into `dst` in
// layout `to` (elements of spec.dtype's size; dst holds weight_shape's count for the
// spec with that layout). Fails, naming the rule, where `to` does not fit the spec.
Status convert_weights(const ConvSpec& spec, const void* src, WeightLayout to, void* dst);
// The layout to prepare `spec`'s weights in, once, for many runs on a CPU: oihw16o
// for OIHW, GOIHW or IOHW weights of 1 MiB or more whose output channels fill blocks of
// 16 (read without repacking), else spec.weight_layout. Smaller weights
// cost little to repack per run into one stream per channel block, which measured
// faster than oihw16o's two (ResNet-50 conv1 and res2 3x3: 5-20%).
WeightLayout preferred_weight_layout(const ConvSpec& spec);
int64_t bias_size(const ConvSpec& s);                // c_out

// Multiply-adds counted twice: 2*n*c_out*h_out*w_out*(c_in/g)*kh*kw for a forward
// convolution; the same with input and output swapped for a transposed one.
double flops(const ConvSpec& s);

// The same convolution in its one canonical form: cover_all folded into bottom/right
// padding, outsize turned into output_padding, forward bottom/right padding reduced
// to the smallest value giving the same output (a larger one is never read),
// transposed bottom padding and output_padding merged, compute_mode dropped for f32.
// Two specs with equal canonical forms compute the same function.
ConvSpec canonicalize(const ConvSpec& s);

// Stable text of every field of canonicalize(s): the cache key of a spec. Equal for
// specs that compute the same function, different otherwise; never changes across
// runs or builds (it names fields, not enum integers).
std::string canonical_key(const ConvSpec& s);
// 64-bit FNV-1a of canonical_key, as 16 hex digits.
std::string canonical_hash(const ConvSpec& s);
uint64_t fnv1a64(const std::string& text);

// ---- Enum names used by the command line, JSON and keys ---------------------

const char* to_string(PaddingMode m);   // zeros reflect replicate circular
const char* to_string(ConvMode m);      // cross_correlation convolution
const char* to_string(DataType t);      // f32 f16
const char* to_string(ComputeMode m);   // default float32
const char* to_string(WeightLayout l);  // oihw goihw iohw mihw oihw16o
StatusOr<PaddingMode> parse_padding_mode(const std::string& text);
StatusOr<ConvMode> parse_conv_mode(const std::string& text);
StatusOr<DataType> parse_data_type(const std::string& text);
StatusOr<ComputeMode> parse_compute_mode(const std::string& text);
StatusOr<WeightLayout> parse_weight_layout(const std::string& text);

// Bytes per element of s.dtype.
int element_size(DataType t);

}  // namespace convjit
