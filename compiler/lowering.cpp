// Lowering of a ConvSpec to a Halide algorithm: boundary conditions for the padding
// modes, the logical weight accessor for each layout, forward and transposed sums.
#include "lowering.h"

#include <numeric>

namespace convjit {

using Halide::Expr;
using Halide::Func;
using Halide::ImageParam;
using Halide::Region;

ConvFamily family_of(const ConvSpec& s) {
  if (s.transposed) return ConvFamily::kTransposed;
  if (s.groups == s.c_in && s.groups > 1) return ConvFamily::kDepthwise;
  return ConvFamily::kDirect;
}

const char* to_string(ConvFamily f) {
  switch (f) {
    case ConvFamily::kDirect: return "direct";
    case ConvFamily::kDepthwise: return "depthwise";
    case ConvFamily::kTransposed: return "transposed";
  }
  return "invalid";
}

std::vector<Halide::Argument> ConvAlgorithm::arguments() const {
  std::vector<Halide::Argument> args = {input, weights};
  if (spec.has_bias) args.push_back(bias);
  return args;
}

namespace {

Halide::Type halide_type(DataType t) {
  return t == DataType::kFloat16 ? Halide::Float(16) : Halide::Float(32);
}

// Pins every dimension of a buffer to the spec's extent (outermost-first `shape`)
// and the innermost stride to 1, so loops get constant bounds and dense vector loads.
template <typename Dims>
void pin_shape(Dims&& dim_of, const int64_t* shape, int rank) {
  for (int d = 0; d < rank; ++d) {
    auto dim = dim_of(d);
    dim.set_bounds(0, static_cast<int>(shape[rank - 1 - d]));
  }
  dim_of(0).set_stride(1);
}

// The input extended by the padding mode over x (width) and y (height) only.
Func extend_input(const ImageParam& input, const ConvSpec& s) {
  const Region bounds = {{0, static_cast<int>(s.w_in)}, {0, static_cast<int>(s.h_in)}};
  if (s.w_in == 2 && (s.padding_mode == PaddingMode::kReflect || s.padding_mode == PaddingMode::kCircular)) {
    // Two columns: both modes read column x & 1 (reflect excluding the edge repeats
    // with period 2 * (w_in - 1) = 2). Halide 14's boundary conditions, vectorized
    // along x from column 0 (no left padding) in vectors of 4 or more, crash its
    // compiler with a division by zero (SIGFPE; found by a seeded random-spec run of
    // the default kernels, 2026-12-02); this form compiles.
    const Region rows_only = {{Expr(), Expr()}, {0, static_cast<int>(s.h_in)}};
    Func rows = s.padding_mode == PaddingMode::kReflect ? Halide::BoundaryConditions::mirror_interior(input, rows_only)
                                                        : Halide::BoundaryConditions::repeat_image(input, rows_only);
    Func two_columns("input_extended");
    Halide::Var x("x"), y("y"), c("c"), n("n");
    two_columns(x, y, c, n) = rows(x & 1, y, c, n);
    return two_columns;
  }
  switch (s.padding_mode) {
    case PaddingMode::kZeros:
      return Halide::BoundaryConditions::constant_exterior(input, Halide::cast(input.type(), 0), bounds);
    case PaddingMode::kReflect:  // PyTorch reflect excludes the edge: mirror_interior
      return Halide::BoundaryConditions::mirror_interior(input, bounds);
    case PaddingMode::kReplicate:
      return Halide::BoundaryConditions::repeat_edge(input, bounds);
    case PaddingMode::kCircular:
      return Halide::BoundaryConditions::repeat_image(input, bounds);
  }
  CONVJIT_CHECK(false, "unknown padding mode");
  return Func();
}

// Modular inverse of a modulo m (a and m coprime, m >= 1), by search: m is a stride.
int mod_inverse(int a, int m) {
  for (int v = 0; v < m; ++v) {
    if ((a * v) % m == 1 % m) return v;
  }
  CONVJIT_CHECK(false, "no modular inverse");
  return 0;
}

// For one spatial axis of a transposed convolution: output position t (padding
// included) receives input position i through kernel tap k iff i*stride + k*dilation == t.
// For fixed t the valid taps form an arithmetic progression k0(t) + step*j, so the
// sum runs over j only: about kernel/stride taps per output instead of kernel taps.
struct TransposedTaps {
  int step = 1;        // stride / gcd(stride, dilation)
  int count = 1;       // taps per output: ceil(kernel / step)
  Expr tap;            // kernel index of tap j at position t
  Expr valid;          // the tap exists (t reachable, k < kernel)
  Expr input_position;
  // Where the tap is valid, input_position == first_input_position - input_step * j:
  // linear in j, so that a bound on it can trim the loop over j.
  Expr first_input_position;
  int input_step = 1;  // dilation / gcd(stride, dilation)
};

TransposedTaps transposed_taps(Expr t, Expr j, int kernel, int stride, int dilation) {
  TransposedTaps taps;
  const int g = std::gcd(stride, dilation);
  taps.step = stride / g;
  taps.count = (kernel + taps.step - 1) / taps.step;
  const int inverse = mod_inverse((dilation / g) % taps.step, taps.step);
  Expr phase = t % stride;
  // k*dilation == phase (mod stride) has solutions only when g divides phase; then
  // k == (phase/g) * inverse(dilation/g) (mod step).
  Expr first = taps.step == 1 ? Expr(0) : ((phase / g) * inverse) % taps.step;
  taps.tap = first + taps.step * j;
  taps.valid = (phase % g == 0) && taps.tap < kernel;
  taps.input_position = (t - taps.tap * dilation) / stride;
  taps.first_input_position = (t - first * dilation) / stride;
  taps.input_step = dilation / g;
  return taps;
}

}  // namespace

Expr weight_at(const ImageParam& w, const ConvSpec& s, Expr o, Expr i_local, Expr ky, Expr kx) {
  const int cog = static_cast<int>(s.c_out / s.groups);
  const int cig = static_cast<int>(s.c_in / s.groups);
  switch (s.weight_layout) {
    case WeightLayout::kOIHW:
      return w(kx, ky, i_local, o);
    case WeightLayout::kGOIHW:
      return w(kx, ky, i_local, o % cog, o / cog);
    case WeightLayout::kIOHW:
      // One group: o itself. The general form's o % cog has bounds [0, cog) for any
      // range of o, which made a channel block's repacked weights all of them
      // (8x the bytes on DCGAN's 128-channel layer, 31% of its time).
      if (s.groups == 1) return w(kx, ky, o, i_local);
      return w(kx, ky, o % cog, (o / cog) * cig + i_local);
    case WeightLayout::kMIHW: {
      // groups == c_in: the group of o is its input channel; m = c_out / c_in.
      const int m = static_cast<int>(s.c_out / s.c_in);
      return w(kx, ky, o / m, o % m);
    }
    case WeightLayout::kOIHW16o:
      return w(o % 16, kx, ky, i_local, o / 16);
  }
  CONVJIT_CHECK(false, "unknown weight layout");
  return Expr();
}

ConvAlgorithm lower(const ConvSpec& requested, bool transposed_phases, bool forward_column_phases,
                    bool skip_zero_padding_rows) {
  ConvAlgorithm a;
  a.spec = canonicalize(requested);
  const ConvSpec& s = a.spec;
  a.family = family_of(s);
  const Halide::Type type = halide_type(s.dtype);

  a.input = ImageParam(type, 4, "input");
  a.weights = ImageParam(type, weight_rank(s), "weights");
  const auto in_shape = input_shape(s);
  const auto w_shape = weight_shape(s);
  pin_shape([&](int d) { return a.input.dim(d); }, in_shape.data(), 4);
  pin_shape([&](int d) { return a.weights.dim(d); }, w_shape.data(), weight_rank(s));
  if (s.has_bias) {
    a.bias = ImageParam(type, 1, "bias");
    const int64_t b_shape[] = {s.c_out};
    pin_shape([&](int d) { return a.bias.dim(d); }, b_shape, 1);
  }

  const int cig = static_cast<int>(s.c_in / s.groups);
  const int cog = static_cast<int>(s.c_out / s.groups);
  const int kw = static_cast<int>(s.kw), kh = static_cast<int>(s.kh);
  const bool flip = s.conv_mode == ConvMode::kConvolution;
  Halide::Var &x = a.x, &y = a.y, &c = a.c, &n = a.n;
  Expr group_first_input = (c / cog) * cig;

  a.accumulator = Func("accumulator");
  a.accumulator(x, y, c, n) = s.has_bias ? Halide::cast<float>(a.bias(c)) : Expr(0.0f);

  if (!s.transposed) {
    // Padded positions are read only if a window starts before 0 or ends past the
    // input; canonical bottom/right padding is exactly what the last window reads.
    a.reads_padding = s.pad_top > 0 || s.pad_left > 0 || s.pad_bottom > 0 || s.pad_right > 0;
    if (a.reads_padding) {
      a.input_extended = extend_input(a.input, s);
    } else {
      a.input_extended = Func("input_extended");
      a.input_extended(x, y, c, n) = a.input(x, y, c, n);
    }
    a.r = Halide::RDom(0, kw, 0, kh, 0, cig, "r");
    Expr ix = x * static_cast<int>(s.stride_w) + a.r.x * static_cast<int>(s.dilation_w) - static_cast<int>(s.pad_left);
    Expr iy = y * static_cast<int>(s.stride_h) + a.r.y * static_cast<int>(s.dilation_h) - static_cast<int>(s.pad_top);
    if (skip_zero_padding_rows && has_zero_padding_rows(s)) {
      // Padding rows read zeros (zero padding only: the other modes read image values
      // there), so leaving them out of the sum changes nothing; Halide trims the ky
      // loop to the rows the predicate admits for each output row.
      a.skips_padding_rows = true;
      a.r.where(iy >= 0 && iy < static_cast<int>(s.h_in));
    }
    Expr kx = flip ? kw - 1 - a.r.x : Expr(a.r.x);
    Expr ky = flip ? kh - 1 - a.r.y : Expr(a.r.y);
    Expr value = a.input_extended(ix, iy, group_first_input + a.r.z, n);
    if (forward_column_phases && has_column_phase_form(s)) {
      // Halide's integer division and modulo round towards negative infinity, so a
      // negative tap offset (left padding) lands in the right phase and column.
      a.column_phase_form = true;
      const int sw = static_cast<int>(s.stride_w);
      a.column_phases = Func("column_phases");
      Halide::Var &q = a.q, &ph = a.phase;
      // The copy is a box over (q, phase): its last q can hold, for a later phase, a
      // column past the input that no tap reads. Without padding (no boundary
      // condition to read it through) that column is clamped to the last one.
      Expr column = q * sw + ph;
      if (!a.reads_padding) column = Halide::min(column, static_cast<int>(s.w_in) - 1);
      a.column_phases(q, ph, y, c, n) = a.input_extended(column, y, c, n);
      Expr offset = a.r.x * static_cast<int>(s.dilation_w) - static_cast<int>(s.pad_left);
      value = a.column_phases(x + offset / sw, offset % sw, iy, group_first_input + a.r.z, n);
    }
    if (kw == 1 && kh == 1) {
      a.window_input = Func("window_input");
      a.window_input(x, y, c, n) = a.input_extended(x * static_cast<int>(s.stride_w) - static_cast<int>(s.pad_left),
                                                    y * static_cast<int>(s.stride_h) - static_cast<int>(s.pad_top), c, n);
      value = a.window_input(x, y, group_first_input + a.r.z, n);
    }
    a.accumulator(x, y, c, n) +=
        Halide::cast<float>(value) * Halide::cast<float>(weight_at(a.weights, s, c, a.r.z, ky, kx));
  } else {
    a.reads_padding = true;
    a.input_extended = extend_input(a.input, s);
    Halide::RVar jx("tap_x"), jy("tap_y");
    // Built in two steps: the tap counts size the RDom the taps are expressed in.
    TransposedTaps probe_x = transposed_taps(x, 0, kw, static_cast<int>(s.stride_w), static_cast<int>(s.dilation_w));
    TransposedTaps probe_y = transposed_taps(y, 0, kh, static_cast<int>(s.stride_h), static_cast<int>(s.dilation_h));
    a.r = Halide::RDom({{0, probe_x.count}, {0, probe_y.count}, {0, cig}}, "r");
    // One term of the sum at output column `column`: invalid taps read a clamped
    // weight and contribute zero through the select.
    TransposedTaps ty = transposed_taps(y + static_cast<int>(s.pad_top), a.r.y, kh,
                                        static_cast<int>(s.stride_h), static_cast<int>(s.dilation_h));
    if (skip_zero_padding_rows && has_zero_padding_rows(s)) {
      // Taps whose input row lies outside the input contribute nothing (the select
      // below), so leaving them out changes nothing; Halide trims the tap loop to the
      // rows the (linear) predicate admits for each output row.
      a.skips_padding_rows = true;
      Expr row = ty.first_input_position - ty.input_step * a.r.y;
      a.r.where(row >= 0 && row < static_cast<int>(s.h_in));
    }
    auto term = [&](Expr column) {
      TransposedTaps tx = transposed_taps(column + static_cast<int>(s.pad_left), a.r.x, kw,
                                          static_cast<int>(s.stride_w), static_cast<int>(s.dilation_w));
      Expr kx = Halide::clamp(flip ? kw - 1 - tx.tap : tx.tap, 0, kw - 1);
      Expr ky = Halide::clamp(flip ? kh - 1 - ty.tap : ty.tap, 0, kh - 1);
      Expr product = Halide::cast<float>(a.input_extended(tx.input_position, ty.input_position,
                                                          group_first_input + a.r.z, n)) *
                     Halide::cast<float>(weight_at(a.weights, s, c, a.r.z, ky, kx));
      return Halide::select(tx.valid && ty.valid, product, 0.0f);
    };
    if (!transposed_phases || s.stride_w == 1) {
      a.accumulator(x, y, c, n) += term(x);
    } else {
      // The same sum with x = stride_w * q + phase: (x + pad) % stride becomes
      // (phase + pad) % stride, a constant once the phase loop is unrolled.
      a.phase_form = true;
      const int sw = static_cast<int>(s.stride_w);
      a.phase_accumulator = Func("phase_accumulator");
      Halide::Var &q = a.q, &ph = a.phase;
      a.phase_accumulator(q, ph, y, c, n) = s.has_bias ? Halide::cast<float>(a.bias(c)) : Expr(0.0f);
      a.phase_accumulator(q, ph, y, c, n) += term(q * sw + ph);
      a.accumulator = Func("accumulator");
      a.accumulator(x, y, c, n) = a.phase_accumulator(x / sw, x % sw, y, c, n);
    }
  }

  a.output = Func("output");
  a.output(x, y, c, n) = Halide::cast(type, a.accumulator(x, y, c, n));
  pin_output_shape(a);
  return a;
}

bool has_column_phase_form(const ConvSpec& spec) { return !spec.transposed && spec.stride_w > 1 && spec.kw > 1; }

bool has_zero_padding_rows(const ConvSpec& spec) {
  const ConvSpec s = canonicalize(spec);
  if (s.transposed) {
    // Some output row has a tap on an input row outside the input: more than one tap
    // per output row, so that the rows at either end (where the taps' input rows run
    // past the input) keep fewer.
    return transposed_taps(Expr(0), Expr(0), static_cast<int>(s.kh), static_cast<int>(s.stride_h),
                           static_cast<int>(s.dilation_h)).count > 1;
  }
  return s.padding_mode == PaddingMode::kZeros && s.kh > 1 && (s.pad_top > 0 || s.pad_bottom > 0);
}

double transposed_row_taps_outside_input(const ConvSpec& spec) {
  const ConvSpec s = canonicalize(spec);
  if (!s.transposed) return 0.0;
  const int stride = static_cast<int>(s.stride_h), dilation = static_cast<int>(s.dilation_h);
  const int kh = static_cast<int>(s.kh);
  const int g = std::gcd(stride, dilation);
  const int step = stride / g;
  const int count = (kh + step - 1) / step;
  const int inverse = mod_inverse((dilation / g) % step, step);
  auto floor_div = [](int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); };
  int64_t outside = 0;
  const int64_t rows = output_h(s);
  for (int64_t y = 0; y < rows; ++y) {
    // As transposed_taps at t = y + pad_top, in integers (t >= 0: no negative modulo).
    const int64_t t = y + s.pad_top;
    const int64_t phase = t % stride;
    if (phase % g != 0) continue;
    const int64_t first = step == 1 ? 0 : ((phase / g) * inverse) % step;
    for (int j = 0; j < count; ++j) {
      const int64_t tap = first + int64_t{step} * j;
      if (tap >= kh) continue;
      const int64_t row = floor_div(t - tap * dilation, stride);
      if (row < 0 || row >= s.h_in) ++outside;
    }
  }
  return static_cast<double>(outside) / static_cast<double>(rows * count);
}

void pin_output_shape(ConvAlgorithm& a) {
  const auto out_shape = output_shape(a.spec);
  pin_shape([&](int d) { return a.output.output_buffer().dim(d); }, out_shape.data(), 4);
}

}  // namespace convjit
