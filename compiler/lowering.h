// Lowering of a valid ConvSpec to an unscheduled Halide algorithm (internal header:
// it includes Halide.h, so only compiler/, schedules/ and runtime/ sources use it).
//
// Every buffer is addressed innermost-first, as Halide does:
//   input   (x, y, c, n)                 = NCHW memory, x (width) contiguous
//   weights (kx, ky, i, o) or, for GOIHW, (kx, ky, i, o_in_group, g); see weight_layout
//   bias    (c)
//   output  (x, y, c, n)                 = NCHW memory
// All four are pinned to the spec's extents with a unit innermost stride, so a
// compiled kernel serves exactly one spec and its loops have constant bounds.
#pragma once

#include <vector>

#include "Halide.h"
#include "convjit/conv_spec.h"

namespace convjit {

// The families the default schedules distinguish.
enum class ConvFamily {
  kDirect,      // forward dense, 1x1, strided, dilated and grouped (non-depthwise)
  kDepthwise,   // forward, groups == c_in (any multiplier)
  kTransposed,  // transposed, any groups
};
ConvFamily family_of(const ConvSpec& spec);
const char* to_string(ConvFamily family);

struct ConvAlgorithm {
  ConvSpec spec;  // canonical form of the requested spec
  ConvFamily family;

  Halide::ImageParam input, weights, bias;  // bias is undefined unless spec.has_bias
  // The input extended beyond its borders by the padding mode; the same Func as the
  // input (no boundary condition) when no padded position is ever read.
  Halide::Func input_extended;
  bool reads_padding = false;
  // Float32 accumulation: pure definition (bias or 0) and one update over `r`.
  Halide::Func accumulator;
  Halide::RDom r;  // forward: (kx, ky, i); transposed: (tap_x, tap_y, i)
  Halide::Func output;  // accumulator cast to spec.dtype
  Halide::Var x{"x"}, y{"y"}, c{"c"}, n{"n"};

  // The pipeline's arguments in call order: input, weights, [bias].
  std::vector<Halide::Argument> arguments() const;
};

// Builds the algorithm; the spec must be valid (validate() returned OK).
ConvAlgorithm lower(const ConvSpec& spec);

}  // namespace convjit
