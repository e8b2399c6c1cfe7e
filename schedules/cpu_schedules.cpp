// Default CPU schedules: register-blocked direct convolution (dense, 1x1, strided,
// dilated, grouped), depthwise, transposed, and a channel-vectorized fallback for
// outputs narrower than a vector.
//
// All activations are NCHW, so x (width) is the contiguous axis: schedules vectorize
// along x at the target's natural float width (16 lanes with AVX-512, 8 with AVX2)
// and spread rows (and, for few rows, channel blocks) over the thread pool.
#include "cpu_schedules.h"

#include <algorithm>
#include <sstream>

namespace convjit {

using Halide::Func;
using Halide::TailStrategy;
using Halide::Var;

namespace {

int floor_pow2(int64_t v) {
  int p = 1;
  while (static_cast<int64_t>(p) * 2 <= v) p *= 2;
  return p;
}

// Enough parallel tasks that two cores (or more) stay busy despite uneven rows.
constexpr int64_t kMinParallelTasks = 8;

// The input extended by padding is computed into a small scratch buffer at `level`
// (a tile of rows), so that boundary selects run once per input value instead of
// once per multiply-add, and the hot loop loads dense vectors.
void stage_padded_input(ConvAlgorithm& a, const Func& consumer, const Var& level, int vec) {
  if (!a.reads_padding) return;  // input_extended is a plain wrapper: inline it
  // Boundary-condition Funcs name their own pure vars; the first is x.
  a.input_extended.compute_at(consumer, level)
      .vectorize(a.input_extended.args()[0], vec, TailStrategy::RoundUp);
}

// Direct convolution, register-blocked: each task owns output rows; a tile of
// x_vectors*vec columns by c_tile channels is accumulated in registers over the
// whole reduction (input channels of the group, ky, kx).
// Accumulators = c_tile * x_vectors: 12 (2 vectors x 6 channels) or 8 of AVX-512's
// 32 vector registers, leaving room for the input vectors and the broadcast weights
// LLVM hoists out of the unrolled kx loop. Measured on the ResNet-50 res2 3x3 layer
// (2-core AVX-512 Xeon, 2026-11-21, medians of 20): 2x6 with kx unrolled 195-204
// GFLOP/s, 2x8 155, 1x8 154, 2x4 125-141, 1x12 114.
AppliedSchedule schedule_direct(ConvAlgorithm& a, int vec, const char* name) {
  const ConvSpec& s = a.spec;
  const int64_t w_out = output_w(s), h_out = output_h(s);
  Var &x = a.x, &y = a.y, &c = a.c, &n = a.n;
  Func& out = a.output;
  Func& acc = a.accumulator;

  const int lanes = std::min<int>(vec, floor_pow2(w_out));
  const int x_vectors = w_out >= 2 * lanes ? 2 : 1;
  const int x_tile = lanes * x_vectors;
  const int c_tile = static_cast<int>(std::min<int64_t>(s.c_out, x_vectors == 2 ? 6 : 8));

  Var xo("xo"), xi("xi"), co("co"), ci("ci"), task("task");
  out.split(x, xo, xi, x_tile, TailStrategy::ShiftInwards)
      .split(c, co, ci, c_tile, TailStrategy::ShiftInwards)
      .reorder(xi, ci, xo, co, y, n)
      .vectorize(xi, lanes)
      .unroll(xi)
      .unroll(ci);
  std::string parallel;
  if (s.n * h_out >= kMinParallelTasks) {
    // Rows are the tasks; the staged input rows are shared by every channel block.
    out.fuse(y, n, task).parallel(task);
    parallel = "rows";
  } else {
    // Few rows (late layers at batch 1): channel blocks become tasks too.
    Var row_block("row_block");
    out.reorder(xi, ci, xo, y, co, n).fuse(y, co, row_block).fuse(row_block, n, task).parallel(task);
    parallel = "rows*channel_blocks";
  }
  stage_padded_input(a, out, task, lanes);

  acc.compute_at(out, xo).vectorize(x, lanes).unroll(x).unroll(c);
  auto update = acc.update();
  update.reorder(x, c, a.r.x, a.r.y, a.r.z, y, n).vectorize(x, lanes).unroll(x).unroll(c);
  // Transposed taps are few per output (kernel/stride): unroll them like small kernels.
  const int64_t* taps_x = Halide::Internal::as_const_int(a.r.x.extent());
  const bool unroll_kx = taps_x && *taps_x <= 5;
  if (unroll_kx) update.unroll(a.r.x);

  std::ostringstream p;
  p << "vec=" << lanes << ",x_tile=" << x_tile << ",c_tile=" << c_tile << ",unroll_kx=" << unroll_kx
    << ",parallel=" << parallel;
  return {name, p.str()};
}

// Depthwise: one input channel per output channel, so there is no channel reuse to
// block for; tiles of rows are staged with their halo and the small kernel is unrolled.
AppliedSchedule schedule_depthwise(ConvAlgorithm& a, int vec) {
  const ConvSpec& s = a.spec;
  const int64_t w_out = output_w(s), h_out = output_h(s);
  Var &x = a.x, &y = a.y, &c = a.c, &n = a.n;
  Func& out = a.output;
  Func& acc = a.accumulator;

  const int lanes = std::min<int>(vec, floor_pow2(w_out));
  const int x_tile = lanes * (w_out >= 2 * lanes ? 2 : 1);
  const int y_tile = static_cast<int>(std::min<int64_t>(h_out, 8));
  Var xo("xo"), xi("xi"), yo("yo"), yi("yi"), task("task");
  out.split(x, xo, xi, x_tile, TailStrategy::ShiftInwards)
      .split(y, yo, yi, y_tile, TailStrategy::ShiftInwards)
      .reorder(xi, xo, yi, yo, c, n)
      .vectorize(xi, lanes)
      .unroll(xi);
  if (s.c_out * s.n >= kMinParallelTasks) {
    out.fuse(c, n, task).parallel(task);
    stage_padded_input(a, out, yo, lanes);
  } else {
    Var strip("strip");
    out.fuse(yo, c, strip).fuse(strip, n, task).parallel(task);
    stage_padded_input(a, out, task, lanes);
  }

  acc.compute_at(out, xo).vectorize(x, lanes).unroll(x);
  auto update = acc.update();
  update.reorder(x, a.r.x, a.r.y, a.r.z, y, c, n).vectorize(x, lanes).unroll(x);
  // Small kernels unrolled completely; 7x7 (and larger) keep a loop to limit code size.
  const bool unroll_kernel = s.kh * s.kw <= 25;
  if (unroll_kernel) update.unroll(a.r.x).unroll(a.r.y);

  std::ostringstream p;
  p << "vec=" << lanes << ",x_tile=" << x_tile << ",y_tile=" << y_tile
    << ",unroll_kernel=" << (unroll_kernel ? 1 : 0);
  return {"cpu_depthwise", p.str()};
}

// Outputs narrower than 4 columns: vectorize over output channels instead (weights
// become gathers, the input a broadcast), still never a scalar loop nest when
// c_out >= 4.
AppliedSchedule schedule_channel_vectorized(ConvAlgorithm& a, int vec) {
  const ConvSpec& s = a.spec;
  Var &x = a.x, &y = a.y, &c = a.c, &n = a.n;
  Func& out = a.output;
  Func& acc = a.accumulator;
  const int lanes = std::min<int>(vec, floor_pow2(s.c_out));
  Var co("co"), ci("ci"), task("task");
  out.split(c, co, ci, lanes, TailStrategy::ShiftInwards).reorder(ci, x, y, co, n);
  if (lanes >= 4) out.vectorize(ci);
  out.fuse(co, n, task).parallel(task);
  stage_padded_input(a, out, task, std::min(vec, 4));
  acc.compute_at(out, x);
  auto update = acc.update();
  update.reorder(c, a.r.x, a.r.y, a.r.z, x, y, n);
  if (lanes >= 4) {
    acc.vectorize(c);
    update.vectorize(c);
  }
  std::ostringstream p;
  p << "vec_c=" << lanes;
  return {"cpu_channel_vectorized", p.str()};
}

}  // namespace

AppliedSchedule apply_default_cpu_schedule(ConvAlgorithm& a, const Halide::Target& target) {
  const int vec = target.natural_vector_size<float>();
  if (output_w(a.spec) < 4) return schedule_channel_vectorized(a, vec);
  switch (a.family) {
    case ConvFamily::kDepthwise:
      return schedule_depthwise(a, vec);
    case ConvFamily::kTransposed:
      return schedule_direct(a, vec, "cpu_transposed");
    case ConvFamily::kDirect:
      return schedule_direct(a, vec, "cpu_direct");
  }
  CONVJIT_CHECK(false, "unknown family");
  return {};
}

}  // namespace convjit
