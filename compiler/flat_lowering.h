// The flat form of a 1x1 convolution: output positions flattened, p = x + w_out * y,
// so the convolution of image n is the matrix product
//   flat_accumulator(p, c, n) = bias(c) + sum_i weight(c, i) * flat_input(p, i, n)
// over every position of the image at once (internal header: includes Halide.h).
//
// Why: a row is rarely a whole number of vectors (56, 28, 14, 7 wide), so the
// row-wise templates redo the overlap of their last tile in every row (ShiftInwards)
// and their register tiles end at every row end. Flattened, a tile of 64 positions
// runs across rows, and the tail is paid once per image. Measured before the form
// existed (2-core AVX-512 Xeon, 2026-11-21, Halide JIT, 1 thread): the 64 -> 64
// 1x1 layer on 56x56 at 93% of the FMA peak, against 73% for cpu_direct's rows.
//
// With a stride or padding, output position p reads the input at
// (stride * x - pad, stride * y - pad), which is no longer element p of the input
// plane: flat_input is then a staged copy, made by an update over the output's
// (x, y) so that it stores in dense vectors (the ResNet stride-2 projections: 1/4
// of the input, once, against c_out multiply-adds per element copied). As a pure
// function of p each vector would be a gather: the copy took 0.83 ms of the
// profiled 4.6 ms of res3a_branch1 (56x56 256 -> 512) that way, 0.45 ms as the
// update (host-profile, 1 thread, 2-core AVX-512 Xeon, 2026-11-22).
#pragma once

#include <string>

#include "lowering.h"

namespace convjit {

// Empty when `spec` has a flat form (a forward 1x1 convolution); else why not.
std::string why_no_flat_form(const ConvSpec& spec);

// Whether flat position p of a spec with a flat form is element p of the input
// plane (stride 1, no padding), so that flat_input can be read in place.
bool flat_input_is_input_plane(const ConvSpec& spec);

// The flat form (ConvAlgorithm::flat_form) of a spec that has one. With
// `zero_beyond_image`, flat_input is defined for every p: zero past the image's
// h_out * w_out positions, so that a staged copy of it can round the positions up
// to whole register tiles (small images); then its in-bounds loads are clamped
// (gathers), so it is only worth staging. With a stride or padding flat_input has
// an update (over flat_window), so it must be computed, never inlined.
ConvAlgorithm lower_as_flat(const ConvSpec& spec, bool zero_beyond_image = false);

}  // namespace convjit
