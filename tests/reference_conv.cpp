// The naive double-precision reference convolution and the tests' data helpers.
#include "reference_conv.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>

namespace convjit {
namespace {

// Index of position p of an axis of `size` elements after the input has been
// extended by `mode`; -1 when the extension is a zero (zeros padding, or outside).
int64_t extended_index(PaddingMode mode, int64_t p, int64_t size) {
  if (p >= 0 && p < size) return p;
  switch (mode) {
    case PaddingMode::kZeros:
      return -1;
    case PaddingMode::kReflect:
      // PyTorch reflect mirrors about the edge element without repeating it:
      // -1 -> 1, size -> size-2. validate() keeps the padding below the size, so
      // one reflection suffices; the loop only guards against a broken spec.
      if (size == 1) return 0;
      while (p < 0 || p >= size) {
        if (p < 0) p = -p;
        if (p >= size) p = 2 * (size - 1) - p;
      }
      return p;
    case PaddingMode::kReplicate:
      return p < 0 ? 0 : size - 1;
    case PaddingMode::kCircular:
      return ((p % size) + size) % size;
  }
  std::abort();
}

}  // namespace

int64_t input_elements(const ConvSpec& s) { return s.n * s.c_in * s.h_in * s.w_in; }

int64_t output_elements(const ConvSpec& s) {
  const auto shape = output_shape(s);
  return shape[0] * shape[1] * shape[2] * shape[3];
}

int64_t weight_elements(const ConvSpec& s) {
  const auto shape = weight_shape(s);
  int64_t count = 1;
  for (int d = 0; d < weight_rank(s); ++d) count *= shape[d];
  return count;
}

int64_t reference_weight_offset(const ConvSpec& s, int64_t o, int64_t i, int64_t ky, int64_t kx) {
  const int64_t cog = s.c_out / s.groups;
  const int64_t cig = s.c_in / s.groups;
  switch (s.weight_layout) {
    case WeightLayout::kOIHW:  // buf[o][i % cig][ky][kx]
      return ((o * cig + i % cig) * s.kh + ky) * s.kw + kx;
    case WeightLayout::kGOIHW:  // buf[o / cog][o % cog][i % cig][ky][kx]
      return ((((o / cog) * cog + o % cog) * cig + i % cig) * s.kh + ky) * s.kw + kx;
    case WeightLayout::kIOHW:  // buf[i][o % cog][ky][kx]
      return ((i * cog + o % cog) * s.kh + ky) * s.kw + kx;
    case WeightLayout::kMIHW: {  // buf[o % m][i][ky][kx]: output channel i*m+j uses W[j, i]
      const int64_t m = s.c_out / s.c_in;
      return (((o % m) * s.c_in + i) * s.kh + ky) * s.kw + kx;
    }
    case WeightLayout::kOIHW16o:  // buf[o / 16][i % cig][ky][kx][o % 16]
      return ((((o / 16) * cig + i % cig) * s.kh + ky) * s.kw + kx) * 16 + o % 16;
  }
  std::abort();
}

std::vector<double> reference_conv(const ConvSpec& s, const std::vector<double>& src,
                                   const std::vector<double>& weights,
                                   const std::vector<double>* bias) {
  if (static_cast<int64_t>(src.size()) != input_elements(s) ||
      static_cast<int64_t>(weights.size()) != weight_elements(s) ||
      (s.has_bias && (bias == nullptr || static_cast<int64_t>(bias->size()) != s.c_out))) {
    std::abort();  // a test bug, not a kernel bug: fail loudly
  }
  const int64_t oh = output_h(s), ow = output_w(s);
  const int64_t cog = s.c_out / s.groups;
  const int64_t cig = s.c_in / s.groups;
  const bool flip = s.conv_mode == ConvMode::kConvolution;
  // True convolution reads the kernel back to front in both spatial axes.
  auto w = [&](int64_t o, int64_t i, int64_t ky, int64_t kx) {
    if (flip) {
      ky = s.kh - 1 - ky;
      kx = s.kw - 1 - kx;
    }
    return weights[reference_weight_offset(s, o, i, ky, kx)];
  };
  auto in_at = [&](int64_t n, int64_t c, int64_t y, int64_t x) {
    return src[((n * s.c_in + c) * s.h_in + y) * s.w_in + x];
  };
  auto out_offset = [&](int64_t n, int64_t o, int64_t y, int64_t x) {
    return ((n * s.c_out + o) * oh + y) * ow + x;
  };

  std::vector<double> out(output_elements(s), 0.0);
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t o = 0; o < s.c_out; ++o)
      for (int64_t y = 0; y < oh; ++y)
        for (int64_t x = 0; x < ow; ++x)
          out[out_offset(n, o, y, x)] = s.has_bias ? (*bias)[o] : 0.0;

  if (!s.transposed) {
    // Gather: out(n,o,y,x) += in_ext(n, i, y*sh + ky*dh - pad_top, x*sw + kx*dw - pad_left) * w.
    for (int64_t n = 0; n < s.n; ++n)
      for (int64_t o = 0; o < s.c_out; ++o) {
        const int64_t g = o / cog;
        for (int64_t y = 0; y < oh; ++y)
          for (int64_t x = 0; x < ow; ++x) {
            double acc = 0.0;
            for (int64_t i = g * cig; i < (g + 1) * cig; ++i)
              for (int64_t ky = 0; ky < s.kh; ++ky) {
                const int64_t iy =
                    extended_index(s.padding_mode, y * s.stride_h + ky * s.dilation_h - s.pad_top, s.h_in);
                if (iy < 0) continue;
                for (int64_t kx = 0; kx < s.kw; ++kx) {
                  const int64_t ix = extended_index(
                      s.padding_mode, x * s.stride_w + kx * s.dilation_w - s.pad_left, s.w_in);
                  if (ix < 0) continue;
                  acc += in_at(n, i, iy, ix) * w(o, i, ky, kx);
                }
              }
            out[out_offset(n, o, y, x)] += acc;
          }
      }
  } else {
    // Scatter: every input element adds in * w to the output position its kernel
    // tap lands on, y = iy*sh + ky*dh - pad_top; taps landing outside are dropped.
    for (int64_t n = 0; n < s.n; ++n)
      for (int64_t i = 0; i < s.c_in; ++i) {
        const int64_t g = i / cig;
        for (int64_t iy = 0; iy < s.h_in; ++iy)
          for (int64_t ix = 0; ix < s.w_in; ++ix) {
            const double v = in_at(n, i, iy, ix);
            for (int64_t o = g * cog; o < (g + 1) * cog; ++o)
              for (int64_t ky = 0; ky < s.kh; ++ky) {
                const int64_t y = iy * s.stride_h + ky * s.dilation_h - s.pad_top;
                if (y < 0 || y >= oh) continue;
                for (int64_t kx = 0; kx < s.kw; ++kx) {
                  const int64_t x = ix * s.stride_w + kx * s.dilation_w - s.pad_left;
                  if (x < 0 || x >= ow) continue;
                  out[out_offset(n, o, y, x)] += v * w(o, i, ky, kx);
                }
              }
          }
      }
  }
  return out;
}

std::vector<double> random_values(int64_t count, uint32_t seed, double lo, double hi) {
  std::mt19937 gen(seed);
  std::vector<double> values(count);
  for (double& v : values) {
    // 32 random bits -> [0, 1): exact in double and identical on every platform.
    const double unit = static_cast<double>(gen()) / 4294967296.0;
    v = lo + (hi - lo) * unit;
  }
  return values;
}

uint16_t double_to_half(double value) {
  uint16_t sign = std::signbit(value) ? 0x8000 : 0;
  if (std::isnan(value)) return sign | 0x7E00;
  const double a = std::fabs(value);
  // 65520 is halfway between the largest half (65504) and 2^16: ties go to the
  // even neighbour, which is the overflow to infinity.
  if (a >= 65520.0) return sign | 0x7C00;
  if (a < std::ldexp(1.0, -14)) {
    // Subnormal: a multiple of 2^-24. nearbyint rounds to nearest even in the
    // default rounding mode; a result of 1024 is the smallest normal, which the
    // bit pattern expresses by itself.
    const double q = std::nearbyint(std::ldexp(a, 24));
    return sign | static_cast<uint16_t>(q);
  }
  int e2 = 0;
  std::frexp(a, &e2);  // a = f * 2^e2, f in [0.5, 1)
  int exponent = e2 - 1;  // a in [2^exponent, 2^(exponent+1))
  double mantissa = std::nearbyint((std::ldexp(a, -exponent) - 1.0) * 1024.0);
  if (mantissa == 1024.0) {  // rounded up into the next binade
    mantissa = 0.0;
    ++exponent;
  }
  if (exponent + 15 >= 31) return sign | 0x7C00;
  return sign | static_cast<uint16_t>((exponent + 15) << 10) | static_cast<uint16_t>(mantissa);
}

uint16_t float_to_half(float value) { return double_to_half(static_cast<double>(value)); }

float half_to_float(uint16_t bits) {
  const int sign = (bits >> 15) & 1;
  const int exponent = (bits >> 10) & 0x1F;
  const int mantissa = bits & 0x3FF;
  double magnitude;
  if (exponent == 0) {
    magnitude = std::ldexp(static_cast<double>(mantissa), -24);
  } else if (exponent == 31) {
    magnitude = mantissa == 0 ? std::numeric_limits<double>::infinity()
                              : std::numeric_limits<double>::quiet_NaN();
  } else {
    magnitude = std::ldexp(1.0 + mantissa / 1024.0, exponent - 15);
  }
  return static_cast<float>(sign ? -magnitude : magnitude);
}

double round_to_half(double value) { return half_to_float(double_to_half(value)); }

std::vector<float> to_float(const std::vector<double>& values) {
  std::vector<float> out(values.size());
  for (size_t k = 0; k < values.size(); ++k) out[k] = static_cast<float>(values[k]);
  return out;
}

std::vector<uint16_t> to_half(const std::vector<double>& values) {
  std::vector<uint16_t> out(values.size());
  for (size_t k = 0; k < values.size(); ++k) out[k] = double_to_half(values[k]);
  return out;
}

std::vector<double> from_float(const std::vector<float>& values) {
  return std::vector<double>(values.begin(), values.end());
}

std::vector<double> from_half(const std::vector<uint16_t>& values) {
  std::vector<double> out(values.size());
  for (size_t k = 0; k < values.size(); ++k) out[k] = half_to_float(values[k]);
  return out;
}

std::vector<double> round_to_half(const std::vector<double>& values) {
  std::vector<double> out(values.size());
  for (size_t k = 0; k < values.size(); ++k) out[k] = round_to_half(values[k]);
  return out;
}

double relative_error(const std::vector<double>& actual, const std::vector<double>& expected) {
  if (actual.size() != expected.size()) return std::numeric_limits<double>::infinity();
  double max_diff = 0.0, max_ref = 0.0;
  for (size_t k = 0; k < actual.size(); ++k) {
    const double diff = std::fabs(actual[k] - expected[k]);
    if (std::isnan(diff)) return std::numeric_limits<double>::infinity();
    max_diff = std::max(max_diff, diff);
    max_ref = std::max(max_ref, std::fabs(expected[k]));
  }
  return max_diff / std::max(max_ref, 1e-30);
}

}  // namespace convjit
