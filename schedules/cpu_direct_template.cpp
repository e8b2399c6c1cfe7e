// cpu_direct and cpu_transposed: register-blocked direct convolution on NCHW, for
// dense, 1x1, strided, dilated and grouped forward convolutions, and for the
// gather form of transposed ones.
//
// x (width) is the contiguous axis: a tile of x_vectors*lanes columns by c_tile
// output channels is accumulated in registers over the whole reduction (input
// channels of the group, ky, kx); rows, rows x channel blocks, or channel blocks over
// all rows are the parallel tasks; the padded input rows a task reads are staged once
// per task.
#include <algorithm>

#include "cpu_templates.h"

namespace convjit {
namespace {

using Halide::Func;
using Halide::TailStrategy;
using Halide::Var;

int native_lanes(const Halide::Target& target) { return target.natural_vector_size<float>(); }

class CpuDirectTemplate final : public ScheduleTemplate {
 public:
  explicit CpuDirectTemplate(bool transposed) : transposed_(transposed) {}

  const char* name() const override { return transposed_ ? "cpu_transposed" : "cpu_direct"; }

  // cpu_transposed yields to cpu_channel_blocked where that takes the layer
  // (channel_blocked_takes_transposed; its measurements are there); cpu_direct is
  // always willing.
  bool preferred_by_default(const ConvAlgorithm& a, const Halide::Target& target) const override {
    return !transposed_ || !channel_blocked_takes_transposed(a.spec, target.natural_vector_size<float>());
  }

  std::string why_not_applicable(const ConvAlgorithm& a, const Halide::Target& target) const override {
    if (std::string why = needs_x86_cpu(target); !why.empty()) return why;
    if (transposed_ != (a.family == ConvFamily::kTransposed))
      return transposed_ ? "not a transposed convolution" : "a transposed convolution (use cpu_transposed)";
    if (output_w(a.spec) < 4) return "output narrower than 4 columns: no vector along x";
    return "";
  }

  std::vector<Knob> knobs(const ConvAlgorithm& a, const Halide::Target& target) const override {
    const ConvSpec& s = a.spec;
    const int max_lanes = std::min<int>(native_lanes(target), floor_pow2(output_w(s)));
    std::vector<int> c_tiles;
    for (int t : {1, 2, 3, 4, 6, 8, 12, 16}) {
      if (t <= s.c_out) c_tiles.push_back(t);
    }
    return {
        {"lanes", vector_widths_up_to(max_lanes), "vector width along x"},
        {"x_vectors", {1, 2, 3, 4}, "vectors per register tile along x (clamped to the width)"},
        {"c_tile", c_tiles, "output channels per register tile"},
        {"unroll_kx", {0, 1}, "unroll the kernel-width (or transposed tap) loop"},
        {"parallel", {0, 1, 2}, "tasks: 0 = output rows, 1 = rows x channel blocks, 2 = channel blocks (all rows)"},
        // No plain row copy (2) where the copy would be read at a horizontal stride
        // (no column phases): Halide 14 miscompiles such loads (column_phases_choices).
        {"stage", a.reads_padding ? std::vector<int>{0, 1, 2}
                  : s.stride_w > 1 && !has_column_phase_form(s) ? std::vector<int>{0}
                                                                 : std::vector<int>{0, 2},
         "padded input staged per 0 = task, 1 = channel block; 2 = the task's rows copied even "
         "without padding"},
        {"reduction", {0, 1}, "innermost reduction loop: 0 = kx, 1 = input channel"},
        {"y_tile", {1, 2, 3, 4}, "output rows per register tile (clamped to the height): each broadcast "
         "weight feeds all of them"},
        {"column_phases", transposed_ ? std::vector<int>{0} : column_phases_choices(a),
         "with a horizontal stride: 0 = the input rows are read at the stride, 1 = staged split into "
         "stride_w column phases (at the stage level), so that every tap loads a dense run"},
        {"phase_rows", transposed_ ? std::vector<int>{0} : phase_rows_choices(a),
         "with column phases and padding: 0 = the phases read the input through the boundary condition, "
         "1 = each row is first copied padded (dense vectors) and split from the copy"},
    };
  }

  // Measured on the ResNet-50 res2 3x3 layer (2-core AVX-512 Xeon, 2026-11-21,
  // medians of 20): 2 vectors x 6 channels with kx unrolled 195-204 GFLOP/s, 2x8
  // 155, 1x8 154, 2x4 125-141, 1x12 114. 12 accumulators leave registers for the
  // input vectors and the broadcast weights LLVM hoists out of the kx loop.
  ScheduleParams defaults(const ConvAlgorithm& a, const Halide::Target& target) const override {
    const ConvSpec& s = a.spec;
    const int64_t w_out = output_w(s);
    const int lanes = std::min<int>(native_lanes(target), floor_pow2(w_out));
    int x_vectors = w_out >= 2 * lanes ? 2 : 1;
    // AVX2 (16 vector registers): tiles of 8 accumulators, which measured faster than
    // 12 or 16 there (bench/schedule_ab --warm, 5 rounds, 1 thread, 2-core AMD EPYC
    // Zen 3, 2026-12-02; ratios to oneDNN): MobileNetV2 conv1 (3 -> 32, 3x3 stride 2)
    // 4 channels x 2 vectors 0.88x, 4 x 3 0.86x, 6 x 2 0.74x, 8 x 2 (the AVX-512 rule
    // below) 0.58x; ResNeXt-50 res2a (groups of 4) 4 channels x 2 rows 6.7x, x 3 rows
    // 4.1x, x 2 vectors 5.4x, 4 x 2 x 2 4.5x.
    const int accumulators = native_lanes(target) >= 16 ? 16 : 8;
    int wanted_c_tile = accumulators == 8 ? 8 / x_vectors : x_vectors == 2 ? 6 : 8;
    int y_tile = 1;
    const int64_t cog = s.c_out / s.groups;
    // Forward only: in the gather form of a transposed layer consecutive rows take
    // different taps (their phases differ), so rows of a tile share no weight.
    const bool small_groups = !transposed_ && s.groups > 1 && cog <= 8;
    if (transposed_ && s.groups > 1 && cog < 6) {
      // A tile within one group shares its input vectors: ResNeXt's 4 channels a
      // group (forward, before the row tiles) took 1.04 ms as 4 channels x 4 vectors
      // against 1.17 as 6 x 2 (bench/schedule_ab, 1.08-1.24x over 5 rounds).
      wanted_c_tile = static_cast<int>(cog);
      x_vectors = std::max(1, std::min<int>(4, accumulators / wanted_c_tile));
    } else if (small_groups) {
      // A tile within one group shares its input vectors, and a tile of several rows
      // shares each broadcast weight among them: the group's channels by up to 4 rows
      // (16 accumulators), then vectors along x. ResNeXt-50's 3x3 layers against 4
      // channels x 3 vectors (res2a, groups of 4) and cpu_channel_blocked's channel
      // vectors of a group's width (bench/schedule_ab --warm, 9 rounds, 1 and 2
      // threads, 2-core AVX-512 Xeon, 2026-11-22): res2a 4 channels x 4 rows 2.68x and
      // 2.08x the channel vectors, against 1.43x and 1.49x for 4 x 3 vectors; res3a
      // (groups of 8, stride 2) 8 x 2 rows 1.41x and 1.25x, 8 x 3 rows 0.84x and 0.91x
      // of that, 4 x 4 rows 0.77x and 0.80x.
      wanted_c_tile = static_cast<int>(cog);
      y_tile = static_cast<int>(std::min<int64_t>(4, std::max<int64_t>(1, accumulators / cog)));
      x_vectors = std::max(1, std::min<int>(4, accumulators / (wanted_c_tile * y_tile)));
    }
    // Where 6 channels a tile redo more than a tenth of the channels (the last tile
    // shifts inwards) and 8 divide them, 8 (16 accumulators): MobileNetV2 conv1
    // (3 -> 32, 3x3 stride 2; 6 tiles of 6 compute 36 channels) 1.12x and 1.13x on 1
    // and 2 threads (bench/schedule_ab --warm, 7 rounds, 2-core AVX-512 Xeon,
    // 2026-11-22). ResNet-50 res2 3x3 (64: 66 computed) measured 6 faster above.
    if (wanted_c_tile == 6 && tiles_redo_over_a_tenth(cog, 6) && cog % 8 == 0) {
      wanted_c_tile = 8;
      // Those 16 accumulators as two rows (forward, AVX-512 only): with a
      // vertical stride, 8 channels x 1 vector x 2 rows; else 4 channels x 2 vectors x
      // 2 rows. 3 -> 32 layers (bench/schedule_ab --warm, 9 rounds, 1 / 2 threads,
      // 2026-11-22) against 8 x 2 vectors: MobileNetV2 conv1 (stride 2) 1.09x / 1.14x
      // (4 x 2 x 2 there: 1.03x / 0.99x); stride 1 on 224x224 1.08x / 1.07x (8 x 1 x 2
      // there: 0.94x / 1.00x). Confirmed over 15 rounds: 1.07x / 1.10x and 1.08x / 1.12x.
      if (!transposed_ && native_lanes(target) >= 16 && x_vectors == 2 && output_h(s) >= 2) {
        y_tile = 2;
        if (s.stride_h > 1) {
          x_vectors = 1;
        } else {
          wanted_c_tile = 4;
        }
      }
    }
    // The largest allowed tile not above the wanted one (c_out may be smaller).
    const std::vector<Knob> space = knobs(a, target);
    int c_tile = 1;
    for (int t : space[2].choices) {
      if (t <= wanted_c_tile) c_tile = t;
    }
    const int64_t taps = taps_x(a);
    const std::vector<int> phase_choices = column_phases_choices(a);
    return {{"lanes", lanes},
            {"x_vectors", x_vectors},
            {"c_tile", c_tile},
            {"unroll_kx", taps <= 5 ? 1 : 0},
            // With small groups, tasks per block of rows and channel tile: the task's
            // staged rows are the tile's group only (a task of rows stages every
            // channel). On ResNeXt-50 res2a (4 channels x 4 rows, as above) 1.30x and
            // 1.09x against tasks of rows, which staged per channel tile (stage=1)
            // took 1.16x and 0.94x.
            //
            // Where the channel tiles alone make enough tasks and a group's input is
            // small, tasks of one channel tile over all rows: each stages its group's
            // whole planes in one pass (long runs the prefetchers follow) and computes
            // every row from L2. Against tasks of rows x tiles (bench/schedule_ab, 11
            // rounds, ratios to oneDNN; 1 / 2 threads, warm then with 8 cold buffer
            // sets; 2-core AMD EPYC Zen 4, 2026-12-03; the same default against itself
            // differed by up to 8%): ResNeXt-50 res3a (56x56, groups of 8, stride 2)
            // warm 0.80x / 1.18x against 0.79x / 1.09x, cold 0.57x / 0.80x against 0.52x
            // / 0.70x; 28x28 groups of 8 warm 0.97x / 1.35x against 0.85x / 1.03x, cold
            // 0.73x / 1.10x against 0.67x / 0.90x; res2a (56x56, groups of 4) warm 1.76x
            // / 2.25x against 1.68x / 2.06x, cold 1.29x / 1.67x against 1.29x / 1.54x.
            // The 512 KiB bound on a group's input (half this Zen 4's L2) is a choice,
            // not a measurement.
            {"parallel", small_groups && channel_tile_tasks_suffice(s, c_tile) ? 2
                         : small_groups || s.n * output_h(s) < kMinParallelTasks ? 1
                                                                                   : 0},
            {"stage", 0},  // 2 measured equal on res2b_branch2a (schedule_ab, 7 rounds)
            {"reduction", 0},
            {"y_tile", y_tile},
            // A horizontal stride with the taps unrolled: rows staged split into column
            // phases (each tap's phase a constant, its loads dense). Against rows read
            // at the stride (bench/schedule_ab --warm, 2-core AVX-512 Xeon, 2026-11-22,
            // 1 / 2 threads): MobileNetV2 conv1 (3 -> 32, 15 rounds) 1.20x / 1.07x,
            // ResNeXt-50 res3a (32 groups, 11 rounds) 1.10x / 1.06x.
            // At strides of 3 or more the phases are the only choice (column_phases_choices).
            {"column_phases", transposed_ ? 0 : phase_choices.size() == 1 ? phase_choices[0] : (taps <= 5 ? 1 : 0)},
            // The phases split from a padded copy of each row, where padding is read
            // (cpu_depthwise has the figures). Here (bench/schedule_ab --warm, 7 rounds,
            // 2-core AMD EPYC Zen 5, 2026-12-02; 1 / 2 threads): MobileNetV2 conv1 1.07x /
            // 1.04x, ResNeXt-50 res3a 1.13x / 1.06x.
            {"phase_rows", transposed_ ? 0 : phase_rows_choices(a).back()}};
  }

  void apply(ConvAlgorithm& a, const Halide::Target&, const ScheduleParams& p) const override {
    const bool phases = !transposed_ && p.get("column_phases") == 1 && has_column_phase_form(a.spec);
    if (phases && !a.column_phase_form) a = lower(a.spec, /*transposed_phases=*/false, /*forward_column_phases=*/true);
    const ConvSpec& s = a.spec;
    Var &x = a.x, &y = a.y, &c = a.c, &n = a.n;
    Func& out = a.output;
    Func& acc = a.accumulator;
    const int lanes = p.get("lanes");
    // ShiftInwards needs a tile no wider than the output.
    const int x_vectors = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(p.get("x_vectors"), output_w(s) / lanes)));
    const int c_tile = static_cast<int>(std::min<int64_t>(p.get("c_tile"), s.c_out));

    const int y_tile = static_cast<int>(std::min<int64_t>(p.get("y_tile"), output_h(s)));

    Var xo("xo"), xi("xi"), co("co"), ci("ci"), yo("yo"), yi("yi"), task("task");
    out.split(x, xo, xi, lanes * x_vectors, TailStrategy::ShiftInwards)
        .split(c, co, ci, c_tile, TailStrategy::ShiftInwards)
        .split(y, yo, yi, y_tile, TailStrategy::ShiftInwards)
        .reorder(xi, ci, yi, xo, co, yo, n)
        .vectorize(xi, lanes)
        .unroll(xi)
        .unroll(ci)
        .unroll(yi);
    Var stage_level = task;
    if (p.get("parallel") == 0) {
      out.fuse(yo, n, task).parallel(task);
      if (p.get("stage") == 1) stage_level = co;
    } else if (p.get("parallel") == 2) {
      out.reorder(xi, ci, yi, xo, yo, co, n).fuse(co, n, task).parallel(task);
    } else {
      Var row_block("row_block");
      out.reorder(xi, ci, yi, xo, yo, co, n).fuse(yo, co, row_block).fuse(row_block, n, task).parallel(task);
    }
    stage_padded_input(a, out, stage_level, lanes, /*even_without_padding=*/p.get("stage") == 2,
                       /*phases_from_padded_rows=*/p.get("phase_rows") == 1);

    acc.compute_at(out, xo).vectorize(x, lanes).unroll(x).unroll(c).unroll(y);
    auto update = acc.update();
    if (p.get("reduction") == 1) {
      update.reorder(x, c, y, a.r.z, a.r.x, a.r.y, n);
    } else {
      update.reorder(x, c, y, a.r.x, a.r.y, a.r.z, n);
    }
    update.vectorize(x, lanes).unroll(x).unroll(c).unroll(y);
    if (p.get("unroll_kx") == 1) update.unroll(a.r.x);
  }

 private:
  // Whether tasks of one channel tile over all rows (parallel=2) suit small groups
  // (see defaults()): the tiles make kMinParallelTasks tasks or more, and each group's
  // input is at most 512 KiB.
  static bool channel_tile_tasks_suffice(const ConvSpec& s, int c_tile) {
    const int64_t channel_tiles = (s.c_out + c_tile - 1) / c_tile * s.n;
    const int64_t group_input_bytes = s.c_in / s.groups * s.h_in * s.w_in * element_size(s.dtype);
    return channel_tiles >= kMinParallelTasks && group_input_bytes <= (int64_t{512} << 10);
  }

  // Kernel-width taps per output: kw forward, about kw/stride transposed.
  static int64_t taps_x(const ConvAlgorithm& a) {
    const int64_t* taps = Halide::Internal::as_const_int(a.r.x.extent());
    return taps ? *taps : a.spec.kw;
  }

  bool transposed_;
};

}  // namespace

const ScheduleTemplate& cpu_direct_template() {
  static const CpuDirectTemplate instance(false);
  return instance;
}

const ScheduleTemplate& cpu_transposed_template() {
  static const CpuDirectTemplate instance(true);
  return instance;
}

}  // namespace convjit
