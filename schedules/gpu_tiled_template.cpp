// gpu_tiled: one thread per output column block, a register tile of output
// channels (and columns) per thread, the reduction read through the L1 cache.
// Applies to every family (dense, 1x1, strided, dilated, grouped, depthwise with a
// multiplier, transposed, few-input-channel first layers); the defaults differ by
// family.
//
// Threads of a warp run along x (the contiguous axis), so input loads and output
// stores are coalesced and the weights of one output channel are one broadcast
// per warp. Each thread accumulates c_per_thread x x_per_thread outputs in
// registers over the whole reduction; blocks tile (x, y, channels x batch).
#include <algorithm>

#include "gpu_templates.h"

namespace convjit {
namespace {

using Halide::Func;
using Halide::RVar;
using Halide::TailStrategy;
using Halide::Var;

class GpuTiledTemplate final : public ScheduleTemplate {
 public:
  const char* name() const override { return "gpu_tiled"; }

  std::string why_not_applicable(const ConvAlgorithm&, const Halide::Target& target) const override {
    if (!is_cuda_target(target)) return "needs a CUDA target";
    return "";
  }

  std::vector<Knob> knobs(const ConvAlgorithm& a, const Halide::Target&) const override {
    const ConvSpec& s = a.spec;
    const int64_t cig = s.c_in / s.groups;
    std::vector<int> channel_unroll;
    for (int u : {1, 2, 4, 8}) {
      if (u <= cig) channel_unroll.push_back(u);
    }
    // 64 x 4 x 4 = 1024 threads at most: kGpuMaxThreadsPerBlock.
    return {
        {"threads_x", {4, 8, 16, 32, 64}, "threads per block along x (clamped to the width)"},
        {"threads_y", {1, 2, 4}, "threads per block along y (clamped to the height)"},
        {"threads_c", {1, 2, 4}, "threads per block along output channels"},
        {"c_per_thread", {1, 2, 4, 8}, "output channels accumulated per thread (clamped to c_out)"},
        {"x_per_thread", {1, 2, 4}, "adjacent columns accumulated per thread"},
        {"unroll_taps", {0, 1}, "unroll the kernel-tap loops"},
        {"channel_unroll", channel_unroll, "input channels per unrolled reduction step"},
    };
  }

  ScheduleParams defaults(const ConvAlgorithm& a, const Halide::Target&) const override {
    const ConvSpec& s = a.spec;
    const int64_t cig = s.c_in / s.groups, cog = s.c_out / s.groups;
    const bool depthwise = a.family == ConvFamily::kDepthwise;
    // Depthwise: no input reuse across output channels, so threads go to columns and
    // each thread keeps two adjacent columns, sharing their overlapping input taps.
    // Elsewhere a warp spans 32 columns and each thread 4 channels, which reuse every
    // input value 4 times from a register (the L1 cache serves the rest).
    const int c_per_thread = depthwise ? 1 : clamp_pow2(4, cog);
    const bool unroll_taps = s.kh * s.kw <= 25;
    // About 64 unrolled multiply-adds per reduction step: the ResNeXt 3x3 and DCGAN
    // 4x4 layers with 4 taps x 4 channels x 4 outputs unrolled needed 118-168
    // registers (ptxas -v, sm_90, 2026-11-21), which halves the warps an SM holds.
    const int64_t step_fmas = (unroll_taps ? s.kh * s.kw : 1) * c_per_thread;
    const int channel_unroll = std::min(clamp_pow2(4, cig), clamp_pow2(4, 64 / std::max<int64_t>(step_fmas, 1)));
    // (apply() shrinks threads and register tiles that exceed the output.)
    return {{"threads_x", 32},
            {"threads_y", 4},
            // Narrow outputs (7x7, 14x14) give few threads along x and y: more go to
            // channels so that a block keeps 64 threads or more.
            {"threads_c", depthwise ? 1 : output_w(s) < 16 ? 4 : 2},
            {"c_per_thread", c_per_thread},
            {"x_per_thread", depthwise && output_w(s) >= 64 ? 2 : 1},
            {"unroll_taps", unroll_taps ? 1 : 0},
            {"channel_unroll", channel_unroll}};
  }

  void apply(ConvAlgorithm& a, const Halide::Target&, const ScheduleParams& p) const override {
    const ConvSpec& s = a.spec;
    Var &x = a.x, &y = a.y, &c = a.c, &n = a.n;
    // Tiles never exceed the output (ShiftInwards needs extent >= factor): register
    // blocking shrinks first, then threads.
    int rx = p.get("x_per_thread"), tx = p.get("threads_x");
    while (rx > 1 && tx * rx > output_w(s)) rx /= 2;
    tx = clamp_pow2(tx, output_w(s) / rx);
    const int ty = clamp_pow2(p.get("threads_y"), output_h(s));
    int rc = std::min<int>(p.get("c_per_thread"), floor_pow2(s.c_out)), tc = p.get("threads_c");
    tc = clamp_pow2(tc, s.c_out / rc);

    Var xo("xo"), xi("xi"), xt("xt"), xr("xr"), yo("yo"), yt("yt"), co("co"), ci("ci"), ct("ct"), cr("cr"),
        block_z("block_z");
    a.output.split(x, xo, xi, tx * rx, TailStrategy::ShiftInwards)
        .split(xi, xt, xr, rx)
        .split(y, yo, yt, ty, TailStrategy::ShiftInwards)
        .split(c, co, ci, tc * rc, TailStrategy::ShiftInwards)
        .split(ci, ct, cr, rc)
        .reorder(xr, cr, xt, yt, ct, xo, yo, co, n)
        .fuse(co, n, block_z)
        .gpu_blocks(xo, yo, block_z)
        .gpu_threads(xt, yt, ct)
        .unroll(xr)
        .unroll(cr);

    // The accumulators of one thread: rx x rc values, kept in registers.
    Func& acc = a.accumulator;
    acc.compute_at(a.output, xt).unroll(x).unroll(c);
    auto update = acc.update();
    const int channel_unroll = p.get("channel_unroll");
    if (channel_unroll > 1) {
      RVar ro("ro"), ri("ri");
      update.split(a.r.z, ro, ri, channel_unroll, TailStrategy::GuardWithIf)
          .reorder(x, c, ri, a.r.x, a.r.y, ro, y, n)
          .unroll(ri);
    } else {
      update.reorder(x, c, a.r.x, a.r.y, a.r.z, y, n);
    }
    update.unroll(x).unroll(c);
    if (p.get("unroll_taps") == 1) update.unroll(a.r.x).unroll(a.r.y);
  }
};

}  // namespace

const ScheduleTemplate& gpu_tiled_template() {
  static const GpuTiledTemplate instance;
  return instance;
}

}  // namespace convjit
