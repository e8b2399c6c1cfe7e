// A naive double-precision reference convolution and the data helpers the tests
// check compiled kernels with (tests only; no Halide, no code shared with compiler/).
//
// The reference is written directly from the definitions in DESIGN.md "Semantics":
// a forward convolution as a gather over input positions and a transposed one as a
// scatter from every input position, so that a mistake in the compiler's gather form
// of the transposed convolution cannot be repeated here.
#pragma once

#include <cstdint>
#include <vector>

#include "convjit/conv_spec.h"

namespace convjit {

// Offset of the logical weight w(o, i, ky, kx) in a dense buffer of s.weight_layout.
// o is a global output channel, i a global input channel of the same group.
int64_t reference_weight_offset(const ConvSpec& s, int64_t o, int64_t i, int64_t ky, int64_t kx);

// out = conv(src, weights) + bias for a spec that validate() accepted.
// src: dense NCHW of input_shape(s); weights: dense in s.weight_layout of
// weight_shape(s); bias: c_out values or nullptr (read only when s.has_bias);
// result: dense NCHW of output_shape(s). s.dtype and s.compute_mode are ignored:
// everything is computed in double.
std::vector<double> reference_conv(const ConvSpec& s, const std::vector<double>& src,
                                   const std::vector<double>& weights,
                                   const std::vector<double>* bias);

// Number of elements of the dense tensors of a spec.
int64_t input_elements(const ConvSpec& s);
int64_t weight_elements(const ConvSpec& s);
int64_t output_elements(const ConvSpec& s);

// `count` values uniform in [lo, hi) from std::mt19937(seed). The mapping from the
// generator's words to doubles is written out here (not std::uniform_real_distribution)
// so that the data are the same with every standard library.
std::vector<double> random_values(int64_t count, uint32_t seed, double lo = -1.0, double hi = 1.0);

// IEEE 754 binary16 conversions, round to nearest even, with subnormals, infinities
// and NaN. Converting from double directly avoids double rounding through float.
uint16_t double_to_half(double value);
uint16_t float_to_half(float value);
float half_to_float(uint16_t bits);
// value rounded to the nearest half-precision number, returned as a double.
double round_to_half(double value);

std::vector<float> to_float(const std::vector<double>& values);
std::vector<uint16_t> to_half(const std::vector<double>& values);
std::vector<double> from_float(const std::vector<float>& values);
std::vector<double> from_half(const std::vector<uint16_t>& values);
// Every value replaced by its nearest half-precision number (f16 test inputs: the
// kernel and the reference then see exactly the same numbers).
std::vector<double> round_to_half(const std::vector<double>& values);

// max|actual - expected| / max(max|expected|, 1e-30): one number per tensor, scale
// free, so one tolerance serves every size. Sizes must match; NaN gives +inf.
double relative_error(const std::vector<double>& actual, const std::vector<double>& expected);

}  // namespace convjit
