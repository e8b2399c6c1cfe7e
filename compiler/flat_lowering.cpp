// Lowering to the flat form: the input read as a matrix of positions by channels,
// the sums over flattened positions, and the output as a view of them.
#include "flat_lowering.h"

namespace convjit {

using Halide::Expr;
using Halide::Func;

std::string why_no_flat_form(const ConvSpec& requested) {
  const ConvSpec s = canonicalize(requested);
  if (s.transposed) return "a transposed convolution";
  if (s.kh != 1 || s.kw != 1) return "a kernel larger than 1x1";
  return "";
}

bool flat_input_is_input_plane(const ConvSpec& requested) {
  const ConvSpec s = canonicalize(requested);
  return s.stride_h == 1 && s.stride_w == 1 && s.pad_top == 0 && s.pad_left == 0 && s.pad_bottom == 0 &&
         s.pad_right == 0;
}

ConvAlgorithm lower_as_flat(const ConvSpec& spec, bool zero_beyond_image) {
  CONVJIT_CHECK(why_no_flat_form(spec).empty(), "lower_as_flat needs a spec with a flat form");
  // The plain form supplies the parameters and the weight accessor's layout rules;
  // its sums are replaced.
  ConvAlgorithm a = lower(spec);
  const ConvSpec& s = a.spec;
  a.flat_form = true;
  Halide::Var &x = a.x, &y = a.y, &c = a.c, &n = a.n, &p = a.p;
  const int w = static_cast<int>(output_w(s));
  const int positions = static_cast<int>(output_h(s)) * w;
  const int cig = static_cast<int>(s.c_in / s.groups);
  const int cog = static_cast<int>(s.c_out / s.groups);
  a.flat_input = Func("flat_input");
  if (flat_input_is_input_plane(s)) {
    // Rows of the caller's input are usually contiguous (stride w): then position p
    // of channel i is element p of the channel's plane, and a vector of positions is
    // one dense load even where it crosses a row end. unsafe_promise_clamped keeps
    // bounds inference (and its asserts) to the input's real x range, since the load
    // itself runs past it into the next rows. Strided rows are read element by
    // element; a template specializes on input_rows_contiguous, and in each branch
    // the simplifier keeps only the matching side of the select.
    Expr q = zero_beyond_image ? Halide::clamp(p, 0, positions - 1) : Expr(p);
    a.input_rows_contiguous = a.input.dim(1).stride() == w;
    Expr value = Halide::select(a.input_rows_contiguous,
                                a.input(Halide::unsafe_promise_clamped(q, 0, w - 1), 0, c, n),
                                a.input(q % w, q / w, c, n));
    a.flat_input(p, c, n) =
        zero_beyond_image ? Halide::select(p < positions, value, Halide::cast(value.type(), 0)) : value;
  } else {
    // Strided or padded: the window of output (x, y) starts at (stride * x - pad_left,
    // stride * y - pad_top), through the padding mode's boundary condition. Written
    // as an update over (x, y) stored at x + w * y, so that a vector along x stores
    // densely and loads a strided run (deinterleaved by Halide); read as a pure
    // function of p, each vector of positions would be a gather (q % w, q / w).
    // Zero everywhere else, so every p is defined.
    a.flat_window = Halide::RDom(0, w, 0, static_cast<int>(output_h(s)), "window");
    const Halide::RVar &wx = a.flat_window.x, &wy = a.flat_window.y;
    a.flat_input(p, c, n) = Halide::cast(a.input.type(), 0);
    a.flat_input(wx + w * wy, c, n) = a.input_extended(wx * static_cast<int>(s.stride_w) - static_cast<int>(s.pad_left),
                                                        wy * static_cast<int>(s.stride_h) - static_cast<int>(s.pad_top),
                                                        c, n);
  }

  a.r = Halide::RDom(0, cig, "r");
  a.flat_accumulator = Func("flat_accumulator");
  a.flat_accumulator(p, c, n) = s.has_bias ? Halide::cast<float>(a.bias(c)) : Expr(0.0f);
  a.flat_accumulator(p, c, n) += Halide::cast<float>(a.flat_input(p, (c / cog) * cig + a.r, n)) *
                                 Halide::cast<float>(weight_at(a.weights, s, c, a.r, 0, 0));
  a.accumulator = Func("accumulator");
  a.accumulator(x, y, c, n) = a.flat_accumulator(x + w * y, c, n);
  a.output = Func("output");
  a.output(x, y, c, n) = Halide::cast(a.input.type(), a.accumulator(x, y, c, n));
  pin_output_shape(a);
  return a;
}

}  // namespace convjit
