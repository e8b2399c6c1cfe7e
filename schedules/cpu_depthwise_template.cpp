// cpu_depthwise: forward depthwise convolution (groups == c_in, any multiplier).
//
// One input channel feeds each output channel, so there is no channel reuse to block
// for: tiles of output rows are computed from a staged strip of padded input rows,
// vectorized along x, with small kernels unrolled completely. With a horizontal
// stride the strip is staged split into column phases (ConvAlgorithm::column_phases),
// so that every tap loads a dense run instead of one at the stride.
#include <algorithm>

#include "cpu_templates.h"
#include "host_target.h"

namespace convjit {
namespace {

using Halide::Func;
using Halide::TailStrategy;
using Halide::Var;

// Unrolled taps read the staged strip at constant offsets; at a horizontal stride of
// 3 or more without column phases (a kernel one column wide) Halide 14 compiled some
// of those strided loads into aligned moves at unaligned addresses (SIGSEGV; a
// random 3x1 stride-3 candidate, 2026-12-02), so the taps stay in a loop there.
std::vector<int> unroll_kernel_choices(const ConvAlgorithm& a) {
  if (a.reads_padding && a.spec.stride_w >= 3 && !has_column_phase_form(a.spec)) return {0};
  return {0, 1};
}

class CpuDepthwiseTemplate final : public ScheduleTemplate {
 public:
  const char* name() const override { return "cpu_depthwise"; }

  std::string why_not_applicable(const ConvAlgorithm& a, const Halide::Target& target) const override {
    if (std::string why = needs_x86_cpu(target); !why.empty()) return why;
    if (a.family != ConvFamily::kDepthwise) return "not a forward depthwise convolution (groups != c_in)";
    if (output_w(a.spec) < 4) return "output narrower than 4 columns: no vector along x";
    return "";
  }

  std::vector<Knob> knobs(const ConvAlgorithm& a, const Halide::Target& target) const override {
    const int max_lanes = std::min<int>(target.natural_vector_size<float>(), floor_pow2(output_w(a.spec)));
    return {
        {"lanes", vector_widths_up_to(max_lanes), "vector width along x"},
        {"x_vectors", {1, 2, 3, 4}, "vectors per tile along x (clamped to the width)"},
        {"y_tile", {1, 2, 4, 8, 16, 32, 64, 128}, "output rows per staged input strip (clamped to the height)"},
        {"unroll_kernel", unroll_kernel_choices(a), "unroll the ky and kx loops"},
        {"parallel", {0, 1}, "tasks: 0 = channels, 1 = channels x row strips"},
        {"row_tile", {1, 2, 4}, "output rows per register tile (clamped to y_tile): an input row "
         "loaded once serves every output row of the tile whose window covers it"},
        {"column_phases", column_phases_choices(a),
         "with a horizontal stride: 0 = the staged rows are read at the stride, 1 = staged split into "
         "stride_w column phases, so that every tap loads a dense run"},
        {"phase_rows", phase_rows_choices(a),
         "with column phases and padding: 0 = the phases read the input through the boundary condition, "
         "1 = each row is first copied padded (dense vectors) and split from the copy"},
    };
  }

  ScheduleParams defaults(const ConvAlgorithm& a, const Halide::Target& target) const override {
    const ConvSpec& s = a.spec;
    const int64_t w_out = output_w(s);
    const int lanes = std::min<int>(target.natural_vector_size<float>(), floor_pow2(w_out));
    // Strips of up to 8 rows, the widest whose last strip (shifted inwards) redoes at
    // most 10% of the rows: MobileNetV2 conv3_2/dw (28 rows) took 0.106 ms in strips
    // of 4 against 0.203 in strips of 8, conv2_2/dw (56 rows) 0.211 in strips of 8
    // against 0.239 in strips of 4 (bench/schedule_ab, 2026-11-21).
    //
    // Without a vertical stride, images of up to 32 rows take one strip: a strip of
    // y rows stages y + kh - 1, and the whole plane fits in L1. Against the rule
    // below, with the unrolled staging (bench/schedule_ab --warm, 7 rounds, 1
    // thread, 2-core AVX-512 Xeon, 2026-11-22): 14x14x384 3x3 1.96x (strips of 2),
    // 27x27x96 3x3 1.11x (4), 15x15x240 5x5 1.20x (8); 7x7x960 the same. With stride 2
    // (28 rows) strips of 4 stay: one strip measured 0.80x. 56x56 and 112x112 keep
    // strips of 8 (whole planes 1.00x and 0.90x).
    const int64_t h_out = output_h(s);
    int y_tile = 8;
    if (s.stride_h == 1 && h_out <= 32) {
      y_tile = floor_pow2(h_out);  // the knob's choices are powers of two; apply() clamps
      if (y_tile < h_out) y_tile *= 2;
    } else if (h_out > 8) {
      for (int t : {8, 4, 2, 1}) {
        if (!tiles_redo_over_a_tenth(h_out, t)) {
          y_tile = t;
          break;
        }
      }
    }
    const bool unroll_kernel = s.kh * s.kw <= 25 && unroll_kernel_choices(a).back() == 1;
    const std::vector<int> phase_choices = column_phases_choices(a);
    const bool phases = phase_choices.size() == 1 ? phase_choices[0] == 1 : unroll_kernel;
    int x_vectors = w_out >= 2 * lanes ? 2 : 1;
    // With column phases, on a CPU that runs 512-bit vectors in two halves (Zen 4):
    // 8 lanes, the tile as wide in columns. Against 16 lanes (bench/schedule_ab --warm,
    // 9 rounds, ratios to oneDNN, 2-core AMD EPYC Zen 4, 2026-12-03; 1 / 2 threads):
    // MobileNetV2 conv2_2/dw 0.88x / 1.50x against 0.74x / 1.22x, conv3_2/dw 0.86x /
    // 2.06x against 0.68x / 1.60x; 1 thread: 224x224x32 3x3 stride 2 0.70x against
    // 0.58x; 112x112x40 5x5 stride 2 and 112x112x32 multiplier 2 the same. The gain is
    // in the taps' loop: the phases split in 8 lanes under 16-lane taps measured as 16
    // lanes. Without phases 16 lanes stay (conv2_1/dw: 1.09x against 1.03x with 8).
    int vector_lanes = lanes;
    if (phases && lanes == 16 && target_splits_512_bit_vectors(target)) {
      vector_lanes = 8;
      x_vectors *= 2;
    }
    return {{"lanes", vector_lanes},
            {"x_vectors", x_vectors},
            {"y_tile", y_tile},
            // 7x7 and larger keep a loop to bound code size.
            {"unroll_kernel", unroll_kernel ? 1 : 0},
            {"parallel", s.c_out * s.n >= kMinParallelTasks ? 0 : 1},
            // Two rows per register tile without a vertical stride, where the rows'
            // windows overlap (3x3: 4 input rows loaded for 2 output rows, not 6).
            // Against one row (bench/schedule_ab --warm, 15 rounds, 1 / 2 threads,
            // 2-core AVX-512 Xeon, 2026-11-22): MobileNetV2 conv2_1/dw (112x112) 1.08x /
            // 1.23x, 56x56x144 1.07x / 1.11x, 14x14x384 0.99x / 1.00x. With stride 2
            // (conv2_2/dw, conv3_2/dw; 9 rounds) 2 or 4 rows measured 0.97-1.07x, but
            // with the column phases below two rows pay there too (same method, 9
            // rounds, 1 thread): conv3_2/dw 0.99x, conv2_2/dw 1.06x, 28x28x240 5x5
            // 1.14x, 14x14x576 1.18x (both to half the size).
            {"row_tile", s.kh > 1 && (s.stride_h == 1 || phases) ? 2 : 1},
            // A horizontal stride: rows staged split into column phases, where every
            // tap then loads a dense run, not a run at the stride (two loads and a
            // shuffle). Only with the taps unrolled, which makes each tap's phase a
            // constant. With two rows per tile, against the rows read at the stride
            // (bench/schedule_ab --warm, 9 rounds, 1 / 2 threads, 2-core AVX-512 Xeon,
            // 2026-11-22): conv3_2/dw 1.07x / 1.14x, conv2_2/dw 1.04x / 1.16x.
            {"column_phases", phases ? 1 : 0},
            // The phases split from a padded copy of each row, where padding is read.
            // Against the phases read through the boundary condition (bench/schedule_ab
            // --warm, 5-7 rounds, 2-core AMD EPYC Zen 5, 2026-12-02; 1 / 2 threads):
            // MobileNetV2 conv2_2/dw 1.29x / 1.25x, conv3_2/dw 1.11x / 1.07x; 1 thread:
            // 57x57x64 1.31x, 45x45x96 stride 3 1.65x, 224x224x32 1.12x, 28x28x240 5x5 1.06x.
            {"phase_rows", phase_rows_choices(a).back()}};
  }

  void apply(ConvAlgorithm& a, const Halide::Target&, const ScheduleParams& p) const override {
    const bool phases = p.get("column_phases") == 1 && has_column_phase_form(a.spec);
    if (phases && !a.column_phase_form) a = lower(a.spec, /*transposed_phases=*/false, /*forward_column_phases=*/true);
    const ConvSpec& s = a.spec;
    Var &x = a.x, &y = a.y, &c = a.c, &n = a.n;
    Func& out = a.output;
    Func& acc = a.accumulator;
    const int lanes = p.get("lanes");
    const int x_vectors = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(p.get("x_vectors"), output_w(s) / lanes)));
    const int y_tile = static_cast<int>(std::min<int64_t>(p.get("y_tile"), output_h(s)));
    const int row_tile = std::min(p.get("row_tile"), y_tile);
    Var xo("xo"), xi("xi"), yo("yo"), yi("yi"), rows("rows"), row("row"), task("task");
    out.split(x, xo, xi, lanes * x_vectors, TailStrategy::ShiftInwards)
        .split(y, yo, yi, y_tile, TailStrategy::ShiftInwards)
        .split(yi, rows, row, row_tile, TailStrategy::ShiftInwards)
        .reorder(xi, row, xo, rows, yo, c, n)
        .vectorize(xi, lanes)
        .unroll(xi)
        .unroll(row);
    Var strip_level = yo;
    if (p.get("parallel") == 0) {
      out.fuse(c, n, task).parallel(task);
    } else {
      Var strip("strip");
      out.fuse(yo, c, strip).fuse(strip, n, task).parallel(task);
      strip_level = task;
    }
    stage_padded_input(a, out, strip_level, lanes, /*even_without_padding=*/false,
                       /*phases_from_padded_rows=*/p.get("phase_rows") == 1);
    acc.compute_at(out, xo).vectorize(x, lanes).unroll(x).unroll(y);
    auto update = acc.update();
    update.reorder(x, y, a.r.x, a.r.y, a.r.z, c, n).vectorize(x, lanes).unroll(x).unroll(y);
    if (p.get("unroll_kernel") == 1) update.unroll(a.r.x).unroll(a.r.y);
  }
};

}  // namespace

const ScheduleTemplate& cpu_depthwise_template() {
  static const CpuDepthwiseTemplate instance;
  return instance;
}

}  // namespace convjit
