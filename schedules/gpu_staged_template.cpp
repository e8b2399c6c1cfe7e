// gpu_staged: a shared-memory convolution for dense forward layers. A block is one
// warp whose 32 lanes span 32 output columns; each lane accumulates rows x output
// channels in registers. The reduction over input channels runs in chunks, and for
// each chunk the warp first copies the padded input tile and the chunk's weights
// into shared memory (coalesced), so the taps and channels that reuse a value read
// it from shared memory, not from global memory.
//
// One warp per block is what Halide 14 can keep in registers: accumulators computed
// at block level stay per-lane only under gpu_lanes; with gpu_threads they became a
// whole-block array on each thread's stack (16 KiB per thread for the default tile,
// ptxas -v, 2026-11-21).
//
// Applies to forward convolutions with one group (dense, 1x1, strided, dilated,
// first layers); grouped and depthwise layers have too little channel reuse for the
// copy to pay, transposed ones read a different tap set per output phase.
#include <algorithm>

#include "gpu_templates.h"

namespace convjit {
namespace {

using Halide::Func;
using Halide::MemoryType;
using Halide::RVar;
using Halide::TailStrategy;
using Halide::Var;

constexpr int kWarpSize = 32;

// The tile a block (one warp) computes, after clamping the knobs to the output:
// tx columns (one per lane), ry rows and rc channels per lane, chunk input
// channels staged per step.
struct BlockTile {
  int tx, ry, rc, chunk;
};

// Shared memory one chunk needs: the input rows and columns the tile's windows
// cover, and the weights of the tile's channels.
int64_t shared_bytes(const ConvSpec& s, const BlockTile& t) {
  const int64_t in_w = (t.tx - 1) * s.stride_w + (s.kw - 1) * s.dilation_w + 1;
  const int64_t in_h = (t.ry - 1) * s.stride_h + (s.kh - 1) * s.dilation_h + 1;
  const int64_t elements = in_w * in_h * t.chunk + s.kw * s.kh * t.chunk * t.rc;
  return elements * 4;  // staged as float32 or float16; float32 bounds both
}

BlockTile clamp_tile(const ConvSpec& s, const ScheduleParams& p) {
  BlockTile t;
  t.tx = clamp_pow2(kWarpSize, output_w(s));
  t.ry = clamp_pow2(p.get("y_per_thread"), output_h(s));
  t.rc = clamp_pow2(p.get("c_per_thread"), s.c_out);
  t.chunk = p.get("chunk");
  // Halve the chunk (it stays a divisor of c_in) until the copy fits.
  while (t.chunk > 1 && shared_bytes(s, t) > kGpuMaxSharedBytes) t.chunk /= 2;
  return t;
}

class GpuStagedTemplate final : public ScheduleTemplate {
 public:
  const char* name() const override { return "gpu_staged"; }

  std::string why_not_applicable(const ConvAlgorithm& a, const Halide::Target& target) const override {
    if (!is_cuda_target(target)) return "needs a CUDA target";
    if (a.family != ConvFamily::kDirect || a.spec.groups != 1)
      return "needs a forward convolution with one group (channel reuse pays for the copy)";
    BlockTile smallest{1, 1, 1, 1};
    if (shared_bytes(a.spec, smallest) > kGpuMaxSharedBytes)
      return "one input channel of the smallest tile exceeds 48 KiB of shared memory";
    return "";
  }

  // A warp spans at most the output width: below 16 columns most lanes would idle
  // (a 7x7 layer uses 4 of 32), so narrow layers default to gpu_tiled, whose blocks
  // also spread threads over channels. Occupancy reasoning, not yet measured on a GPU.
  bool preferred_by_default(const ConvAlgorithm& a, const Halide::Target&) const override {
    return output_w(a.spec) >= 16;
  }

  std::vector<Knob> knobs(const ConvAlgorithm& a, const Halide::Target&) const override {
    std::vector<int> chunks;  // divisors of c_in, so every chunk is full
    for (int k : {1, 2, 4, 8, 16, 32}) {
      if (a.spec.c_in % k == 0) chunks.push_back(k);
    }
    return {
        {"y_per_thread", {1, 2, 4}, "adjacent rows accumulated per lane (clamped to the height)"},
        {"c_per_thread", {2, 4, 8, 16}, "output channels accumulated per lane (clamped to c_out)"},
        {"chunk", chunks, "input channels staged in shared memory per step (halved to fit 48 KiB)"},
        {"unroll_taps", {0, 1}, "unroll the kernel-tap loops"},
    };
  }

  ScheduleParams defaults(const ConvAlgorithm& a, const Halide::Target& t) const override {
    const ConvSpec& s = a.spec;
    const std::vector<int> chunks = knobs(a, t)[2].choices;
    // 2 rows x 8 channels = 16 accumulators per lane, each staged input value reused
    // by 8 channels x the taps that cover it; 8 input channels a step stage
    // (34 x 4 x 8 + 9 x 8 x 8) floats = 6.6 KiB for a 3x3 layer, so shared memory
    // never limits how many warps an SM holds.
    return {{"y_per_thread", output_h(s) >= 2 ? 2 : 1},
            {"c_per_thread", 8},
            {"chunk", std::min(8, chunks.back())},
            {"unroll_taps", s.kh * s.kw <= 25 ? 1 : 0}};
  }

  void apply(ConvAlgorithm& a, const Halide::Target&, const ScheduleParams& p) const override {
    const BlockTile t = clamp_tile(a.spec, p);
    Var &x = a.x, &y = a.y, &c = a.c, &n = a.n;
    Var xo("xo"), xl("xl"), yo("yo"), yr("yr"), co("co"), cr("cr"), block_z("block_z");
    a.output.split(x, xo, xl, t.tx, TailStrategy::ShiftInwards)
        .split(y, yo, yr, t.ry, TailStrategy::ShiftInwards)
        .split(c, co, cr, t.rc, TailStrategy::ShiftInwards)
        .reorder(yr, cr, xl, xo, yo, co, n)
        .fuse(co, n, block_z)
        .gpu_blocks(xo, yo, block_z)
        .gpu_lanes(xl)
        .unroll(yr)
        .unroll(cr);

    // The block (one warp) accumulates at block level, so the chunk loop can sit
    // outside the per-lane work; Register storage with gpu_lanes keeps each lane's
    // ry x rc accumulators in its own registers.
    Func& acc = a.accumulator;
    acc.compute_at(a.output, xo).store_in(MemoryType::Register).gpu_lanes(x).unroll(y).unroll(c);
    RVar chunk_outer("chunk_outer"), chunk_inner("chunk_inner");
    auto update = acc.update();
    update.split(a.r.z, chunk_outer, chunk_inner, t.chunk)
        .reorder(x, y, c, a.r.x, a.r.y, chunk_inner, chunk_outer, n)
        .gpu_lanes(x)
        .unroll(y)
        .unroll(c);
    if (p.get("unroll_taps") == 1) update.unroll(a.r.x).unroll(a.r.y);

    // Per chunk: the padded input tile and the weights, copied by the warp's lanes
    // into shared memory (Halide places the barriers around the copy). A 1x1 kernel
    // reads its input through window_input: the tile then holds only the positions read.
    Func input_tile = (a.window_input.defined() ? a.window_input : a.input_extended).in(acc);
    Func weight_tile = a.weights.in(acc);
    for (Func* staged : {&input_tile, &weight_tile}) {
      staged->compute_at(acc, chunk_outer).store_in(MemoryType::GPUShared);
      spread_over_block_threads(*staged, t.tx, 1, 1);
    }
  }
};

}  // namespace

const ScheduleTemplate& gpu_staged_template() {
  static const GpuStagedTemplate instance;
  return instance;
}

}  // namespace convjit
