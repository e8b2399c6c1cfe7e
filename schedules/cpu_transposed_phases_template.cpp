// cpu_transposed_phases: transposed convolutions with a horizontal stride, computed
// one output column phase at a time (lowering.h: the phase form).
//
// In the gather form every output column x has its own taps, so a vector along x
// needs a different weight per lane (a gather) and reads the input at x/stride (a
// shuffle). Split into the stride's phases, x = stride * q + phase, all the columns
// of one phase share their taps: a vector along q loads its input densely and
// broadcasts one weight per output channel, like a forward convolution. The output
// tile then reads the phases back in column order (one gather per output element,
// against c_in x taps multiply-adds each).
#include <algorithm>

#include "cpu_templates.h"

namespace convjit {
namespace {

using Halide::Func;
using Halide::TailStrategy;
using Halide::Var;

// Vectors of output channels need a full vector of them inside one group, so that
// the input value they multiply is one broadcast.
bool channel_vectors_fit(const ConvAlgorithm& a, const Halide::Target& target) {
  const int lanes = target.natural_vector_size<float>();
  return (a.spec.c_out / a.spec.groups) % lanes == 0;
}

class CpuTransposedPhasesTemplate final : public ScheduleTemplate {
 public:
  const char* name() const override { return "cpu_transposed_phases"; }

  AlgorithmForm form() const override { return AlgorithmForm::kTransposedPhases; }

  // Not where cpu_channel_blocked takes the layer (channel_blocked_takes_transposed;
  // its measurements are there).
  bool preferred_by_default(const ConvAlgorithm& a, const Halide::Target& target) const override {
    return !channel_blocked_takes_transposed(a.spec, target.natural_vector_size<float>());
  }

  std::string why_not_applicable(const ConvAlgorithm& a, const Halide::Target& target) const override {
    if (std::string why = needs_x86_cpu(target); !why.empty()) return why;
    const ConvSpec& s = a.spec;
    if (a.family != ConvFamily::kTransposed) return "not a transposed convolution";
    if (s.stride_w == 1) return "horizontal stride 1: every column already shares its taps";
    // Tiles start at multiples of the stride, so that each tile's phases cover
    // exactly tile/stride columns of q.
    if (output_w(s) % s.stride_w != 0) return "output width not a multiple of the horizontal stride";
    if (output_w(s) / s.stride_w < 4) return "fewer than 4 columns per phase: no vector along q";
    return "";
  }

  std::vector<Knob> knobs(const ConvAlgorithm& a, const Halide::Target& target) const override {
    const ConvSpec& s = a.spec;
    const int max_lanes = std::min<int>(target.natural_vector_size<float>(), floor_pow2(output_w(s) / s.stride_w));
    std::vector<int> c_tiles;
    for (int t : {1, 2, 4, 6, 8, 12}) {
      if (t <= s.c_out) c_tiles.push_back(t);
    }
    std::vector<int> axes = {0};
    if (channel_vectors_fit(a, target)) axes.push_back(1);
    std::vector<int> x_tiles;  // columns per tile along channel vectors: a multiple of the stride
    for (int t = static_cast<int>(s.stride_w); t <= 16 && t <= output_w(s); t += static_cast<int>(s.stride_w)) {
      if (t >= 4) x_tiles.push_back(t);
    }
    if (x_tiles.empty()) x_tiles.push_back(static_cast<int>(s.stride_w));
    return {
        {"vector_axis", axes, "0 = vectors along q (columns of one phase), 1 = along output channels"},
        {"lanes", vector_widths_up_to(max_lanes), "axis 0: vector width along q"},
        {"q_vectors", {1, 2}, "axis 0: vectors per phase in a register tile (clamped to the width)"},
        {"c_tile", c_tiles, "axis 0: output channels per register tile"},
        {"x_tile", x_tiles, "axis 1: output columns per register tile (one channel vector each)"},
        {"unroll_taps", {0, 1}, "unroll the horizontal tap loop"},
    };
  }

  // Axis 0 holds stride x q_vectors x c_tile accumulators: DCGAN's stride 2 with one
  // vector and 6 channels holds 12, as cpu_direct's measured best tile does. When a
  // phase is narrower than a native vector (DCGAN's 16-wide output: 8 columns a
  // phase), axis 1 keeps full vectors by running them along the output channels.
  ScheduleParams defaults(const ConvAlgorithm& a, const Halide::Target& target) const override {
    const ConvSpec& s = a.spec;
    const std::vector<Knob> space = knobs(a, target);
    const int lanes = space[1].choices.back();
    const int64_t per_phase = output_w(s) / s.stride_w;
    const int64_t accumulators_per_channel = s.stride_w * (per_phase >= 2 * lanes ? 2 : 1);
    int c_tile = 1;
    for (int t : space[3].choices) {
      if (t * accumulators_per_channel <= 12) c_tile = t;
    }
    int x_tile = space[4].choices.front();
    for (int t : space[4].choices) {
      // Up to 16 accumulators (of 32 registers): on DCGAN's 16-wide layer 16 columns
      // took 0.59 ms, 8 columns 0.62, 4 columns 0.74 (bench/schedule_ab).
      if (!tiles_redo_over_a_tenth(output_w(s), t)) x_tile = t;
    }
    const bool narrow = lanes < target.natural_vector_size<float>();
    return {{"vector_axis", narrow && channel_vectors_fit(a, target) ? 1 : 0},
            {"lanes", lanes},
            {"q_vectors", per_phase >= 2 * lanes && accumulators_per_channel * c_tile <= 16 ? 2 : 1},
            {"c_tile", c_tile},
            {"x_tile", x_tile},
            {"unroll_taps", 1}};
  }

  void apply(ConvAlgorithm& a, const Halide::Target& target, const ScheduleParams& p) const override {
    CONVJIT_CHECK(a.phase_form, "cpu_transposed_phases needs the phase form (lower(spec, true))");
    if (p.get("vector_axis") == 1) {
      apply_channel_vectors(a, target, p);
    } else {
      apply_phase_vectors(a, p);
    }
  }

 private:
  // Vectors along q: dense input loads, one broadcast weight per output channel.
  static void apply_phase_vectors(ConvAlgorithm& a, const ScheduleParams& p) {
    const ConvSpec& s = a.spec;
    const int sw = static_cast<int>(s.stride_w);
    const int lanes = p.get("lanes");
    const int64_t per_phase = output_w(s) / sw;
    const int q_vectors = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(p.get("q_vectors"), per_phase / lanes)));
    const int c_tile = static_cast<int>(std::min<int64_t>(p.get("c_tile"), s.c_out));
    const int tile = sw * lanes * q_vectors;  // output columns; a multiple of the stride

    Var &x = a.x, &y = a.y, &c = a.c, &n = a.n;
    Var xo("xo"), xi("xi"), co("co"), ci("ci"), task("task");
    // Tiles start at multiples of the stride (output_w is one, and so is the
    // shifted last tile), which is what lets bound_extent below hold.
    a.output.split(x, xo, xi, tile, TailStrategy::ShiftInwards)
        .split(c, co, ci, c_tile, TailStrategy::ShiftInwards)
        .reorder(xi, ci, xo, co, y, n)
        .vectorize(xi, std::min(tile, 16))
        .unroll(ci)
        .fuse(y, n, task)
        .parallel(task);
    stage_padded_input(a, a.output, task, lanes);

    Func& acc = a.phase_accumulator;
    acc.compute_at(a.output, xo)
        .bound_extent(a.phase, sw)
        .bound_extent(a.q, lanes * q_vectors)
        .reorder(a.q, a.phase, c, y, n)
        .vectorize(a.q, lanes)
        .unroll(a.q)
        .unroll(a.phase)
        .unroll(c);
    auto update = acc.update();
    update.reorder(a.q, a.phase, c, a.r.x, a.r.y, a.r.z, y, n)
        .vectorize(a.q, lanes)
        .unroll(a.q)
        .unroll(a.phase)
        .unroll(c);
    if (p.get("unroll_taps") == 1) update.unroll(a.r.x);
  }

  // Vectors along output channels (weights repacked channel-innermost): each input
  // value is one broadcast, each (phase, tap) one dense weight vector.
  static void apply_channel_vectors(ConvAlgorithm& a, const Halide::Target& target, const ScheduleParams& p) {
    const ConvSpec& s = a.spec;
    const int sw = static_cast<int>(s.stride_w);
    const int lanes = target.natural_vector_size<float>();
    const int x_tile = static_cast<int>(std::min<int64_t>(p.get("x_tile"), output_w(s)));
    Var &x = a.x, &y = a.y, &c = a.c, &n = a.n;
    Var xo("xo"), xi("xi"), co("co"), ci("ci"), task("task");
    a.output.split(c, co, ci, lanes, TailStrategy::ShiftInwards)
        .split(x, xo, xi, x_tile, TailStrategy::ShiftInwards)
        .reorder(ci, xi, xo, y, co, n)
        .vectorize(ci)
        .unroll(xi);
    const int64_t blocks = s.c_out / lanes * s.n;
    if (blocks >= kMinParallelTasks) {
      a.output.fuse(co, n, task).parallel(task);
    } else {
      Var block_row("block_row");
      a.output.fuse(y, co, block_row).fuse(block_row, n, task).parallel(task);
    }
    stage_padded_input(a, a.output, task, 8);

    Func& acc = a.phase_accumulator;
    acc.compute_at(a.output, xo)
        .bound_extent(a.phase, sw)
        .bound_extent(a.q, x_tile / sw)
        .reorder_storage(c, a.q, a.phase, y, n)
        .reorder(c, a.q, a.phase, y, n)
        .vectorize(c)
        .unroll(a.q)
        .unroll(a.phase);
    auto update = acc.update();
    update.reorder(c, a.q, a.phase, a.r.x, a.r.y, a.r.z, y, n).vectorize(c).unroll(a.q).unroll(a.phase);
    if (p.get("unroll_taps") == 1) update.unroll(a.r.x);
    pack_weights_channel_innermost(a, acc, a.output, task, lanes);
  }
};

}  // namespace

const ScheduleTemplate& cpu_transposed_phases_template() {
  static const CpuTransposedPhasesTemplate instance;
  return instance;
}

}  // namespace convjit
