// square_conv and square_deconv: the spec builders the schedule tests share: a
// batch-1 convolution (or transposed convolution) with a square kernel, one stride and
// one padding on all four sides (fields are then adjusted by each case).
#pragma once

#include <cstdint>

#include "convjit/conv_spec.h"

namespace convjit {

inline ConvSpec square_conv(int64_t c_in, int64_t c_out, int64_t h, int64_t w, int64_t k, int64_t stride,
                            int64_t pad) {
  ConvSpec s;
  s.n = 1;
  s.c_in = c_in;
  s.c_out = c_out;
  s.h_in = h;
  s.w_in = w;
  s.kh = s.kw = k;
  s.stride_h = s.stride_w = stride;
  s.pad_top = s.pad_bottom = s.pad_left = s.pad_right = pad;
  return s;
}

// The transposed counterpart: the same shape fields, weights in IOHW (the layout a
// transposed convolution takes by default).
inline ConvSpec square_deconv(int64_t c_in, int64_t c_out, int64_t h, int64_t w, int64_t k, int64_t stride,
                              int64_t pad) {
  ConvSpec s = square_conv(c_in, c_out, h, w, k, stride, pad);
  s.transposed = true;
  s.weight_layout = WeightLayout::kIOHW;
  return s;
}

}  // namespace convjit
