// Lowering of a valid ConvSpec to an unscheduled Halide algorithm (internal header:
// it includes Halide.h, so only compiler/, schedules/ and runtime/ sources use it).
//
// Every buffer is addressed innermost-first, as Halide does:
//   input   (x, y, c, n)                 = NCHW memory, x (width) contiguous
//   weights (kx, ky, i, o) or, for GOIHW, (kx, ky, i, o_in_group, g), for OIHW16o
//           (o % 16, kx, ky, i, o / 16); see weight_layout
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
  // Forward 1x1 kernels only (else undefined): the value output position (x, y)
  // reads, input_extended(stride_w * x - pad_left, stride_h * y - pad_top, c, n). The
  // accumulator reads it, so that a template can stage a dense copy of only the
  // positions read (a quarter of the input at stride 2); inlined it changes nothing.
  Halide::Func window_input;
  // Float32 accumulation: pure definition (bias or 0) and one update over `r`.
  Halide::Func accumulator;
  Halide::RDom r;  // forward: (kx, ky, i); transposed: (tap_x, tap_y, i)
  Halide::Func output;  // accumulator cast to spec.dtype
  Halide::Var x{"x"}, y{"y"}, c{"c"}, n{"n"};

  // Only in the phase form of a transposed convolution (lower(spec, true)): the sum
  // per output column phase, phase_accumulator(q, phase, y, c, n) for output column
  // x = stride_w * q + phase, with the update over `r`. Within one phase every tap
  // and weight is the same for all q, and the input column is q plus a constant, so
  // a vector along q loads its input densely and broadcasts its weights. The
  // accumulator is then a pure view of it (no update).
  bool phase_form = false;
  Halide::Func phase_accumulator;
  Halide::Var q{"q"}, phase{"phase"};

  // Only in the column-phase form of a forward convolution with a horizontal stride
  // above 1 and a kernel wider than 1 (lower(spec, false, true)): the accumulator reads
  // the input through column_phases(q, phase, y, c, n) = input_extended(stride_w * q +
  // phase, y, c, n), at q = x + (tap offset) / stride_w and phase = (tap offset) %
  // stride_w, tap offset = kx * dilation_w - pad_left. A copy of it holds each row's
  // columns split by phase, so that once the taps are unrolled every tap loads a dense
  // run of it where the input itself would be read at the stride (deinterleaving
  // shuffles per tap).
  bool column_phase_form = false;
  Halide::Func column_phases;

  // Only when lowered with skip_zero_padding_rows (has_zero_padding_rows specs): the
  // reduction's kernel rows are limited to those inside the input (r.where), so that
  // the loop over ky is trimmed for output rows whose window reaches into the zero
  // padding, instead of multiplying padding zeros (transposed: the taps whose input
  // row lies outside the input, which the sum's select would zero).
  bool skips_padding_rows = false;

  // Only in the GEMM form (compiler/gemm_lowering.h): the sums come from an extern
  // matrix-multiply stage instead of `accumulator` (then undefined).
  bool gemm_form = false;
  // im2col: gemm_columns(x, y, k, n) is the input value output position (x, y) of
  // image n multiplies with row k of the weight matrix; undefined when the GEMM
  // reads the input itself (1x1, stride 1, no padding).
  Halide::Func gemm_columns;
  // The extern stage's result (x, y, c, n): float32 sums, or the output itself when
  // no bias is added (then `output` is this Func).
  Halide::Func gemm_product;

  // Scheduled by one of Halide's autoscheduler plugins (halide_autoscheduler
  // template): compiling it writes Halide warnings the user has no use for, which
  // compile_to_object holds back (compiler/quiet_halide_log.h).
  bool halide_autoscheduled = false;

  // Only in the flat form of a 1x1 convolution (compiler/flat_lowering.h): the sums
  // per flattened output position p = x + w_out * y, flat_accumulator(p, c, n), with
  // the update over `r` (input channels of the group), reading flat_input(p, i, n).
  // The accumulator is then a pure view of it. flat_input reads the input in place
  // where input_rows_contiguous holds (a run-time condition to specialize on).
  bool flat_form = false;
  Halide::Func flat_accumulator, flat_input;
  Halide::Expr input_rows_contiguous;
  Halide::Var p{"p"};
  // With a stride or padding, flat_input is a copy instead: zero, then an update over
  // flat_window (output x, output y) that stores the input value each position reads.
  // It has to be computed somewhere (a Func with an update is never inlined).
  Halide::RDom flat_window;

  // The pipeline's arguments in call order: input, weights, [bias].
  std::vector<Halide::Argument> arguments() const;
};

// Builds the algorithm; the spec must be valid (validate() returned OK).
// `transposed_phases` asks for the phase form of a transposed convolution with a
// horizontal stride above 1 (ignored for other specs).
// `forward_column_phases` asks for the column-phase form of a forward convolution
// (ignored unless has_column_phase_form).
// `skip_zero_padding_rows` limits the kernel rows to those inside the input (ignored
// unless has_zero_padding_rows; see ConvAlgorithm::skips_padding_rows).
ConvAlgorithm lower(const ConvSpec& spec, bool transposed_phases = false, bool forward_column_phases = false,
                    bool skip_zero_padding_rows = false);

// Whether `spec` is a forward convolution whose windows reach into zero padding
// above or below the input with more than one kernel row, or a transposed one with
// more than one tap per output row (those of the rows at either end reach past the
// input): the rows a skip_zero_padding_rows lowering leaves out.
bool has_zero_padding_rows(const ConvSpec& spec);

// For a transposed convolution, the fraction of its (output row, tap) slots, count
// taps per row as the lowering sums them, whose tap reads an input row outside the
// input (0 for forward convolutions): the work skip_zero_padding_rows leaves out.
double transposed_row_taps_outside_input(const ConvSpec& spec);

// Whether `spec` has a column-phase form: forward, stride_w > 1, kw > 1.
bool has_column_phase_form(const ConvSpec& spec);

// The weight connecting global output channel o with the i_local-th input channel
// of o's group at tap (ky, kx), for every layout (conv_spec.h).
Halide::Expr weight_at(const Halide::ImageParam& weights, const ConvSpec& spec, Halide::Expr o,
                       Halide::Expr i_local, Halide::Expr ky, Halide::Expr kx);

// Pins `algorithm.output`'s buffer to the spec's output shape with a unit innermost
// stride, as lower() does; for forms that define another output Func.
void pin_output_shape(ConvAlgorithm& algorithm);

}  // namespace convjit
