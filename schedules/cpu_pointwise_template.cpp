// cpu_pointwise: 1x1 convolutions as a matrix product over flattened output
// positions (compiler/flat_lowering.h), on NCHW. With a stride or padding the input
// is always staged: a gathered copy of the positions the layer reads.
//
// A register tile is x_vectors * lanes consecutive positions, across row ends, by
// c_tile output channels, accumulated over all input channels of the group: each
// step loads x_vectors input vectors and broadcasts c_tile weights. A parallel task
// owns about `rows` output rows by c_block channels, and runs its tiles with channel
// tiles outer (its input rows stay in L2 for all of them) or position tiles outer
// (one tile's input, optionally copied into a dense panel, stays in L1 for every
// channel tile). Each tile is stored straight into the output rows (direct_output),
// or into a block of flat sums per task that is copied to the output rows after;
// the block is what lets a small image be padded to whole tiles.
//
// When the caller's input or output rows are not contiguous (a strided view), the
// kernel runs the same schedule with per-element loads or stores (a
// specialization), so it is always right.
#include <algorithm>
#include <cmath>

#include "cpu_templates.h"
#include "flat_lowering.h"

namespace convjit {
namespace {

using Halide::Func;
using Halide::TailStrategy;
using Halide::Var;

// Chunks of input channels (per group) for c_in_chunk: 0 (no chunks) and the sizes
// from 16 to 128 that divide the group's channels into two chunks or more.
std::vector<int> c_in_chunk_choices(const ConvSpec& s) {
  std::vector<int> chunks = {0};
  for (int chunk : input_channel_chunks(s, {16, 32, 64, 128})) chunks.push_back(chunk);
  return chunks;
}

class CpuPointwiseTemplate final : public ScheduleTemplate {
 public:
  const char* name() const override { return "cpu_pointwise"; }
  AlgorithmForm form() const override { return AlgorithmForm::kFlat; }

  std::string why_not_applicable(const ConvAlgorithm& a, const Halide::Target& target) const override {
    if (std::string why = needs_x86_cpu(target); !why.empty()) return why;
    return why_no_flat_form(a.spec);
  }

  std::vector<Knob> knobs(const ConvAlgorithm& a, const Halide::Target& target) const override {
    const ConvSpec& s = a.spec;
    std::vector<int> c_tiles, rows, c_blocks;
    for (int t : {1, 2, 3, 4, 6, 8, 12}) {
      if (t <= s.c_out) c_tiles.push_back(t);
    }
    for (int r = 1; r <= output_h(s); ++r) rows.push_back(r);
    // c_out / 2^k, rounded up, down to 8 channels: the task counts defaults() picks from.
    for (int64_t parts = 1; parts == 1 || (s.c_out + parts - 1) / parts >= 8; parts *= 2) {
      c_blocks.insert(c_blocks.begin(), static_cast<int>((s.c_out + parts - 1) / parts));
    }
    return {
        {"lanes", {target.natural_vector_size<float>()}, "positions per vector"},
        {"x_vectors", {1, 2, 3, 4}, "vectors of positions per register tile"},
        {"c_tile", c_tiles, "output channels per register tile"},
        {"rows", rows, "output rows per parallel task (raised to cover one register tile)"},
        {"c_block", c_blocks, "output channels per parallel task (at least c_tile)"},
        {"stage", flat_input_is_input_plane(s) ? std::vector<int>{0, 1} : std::vector<int>{1},
         "input 0 = read in place, 1 = copied once, zero-padded to whole register tiles (for images "
         "smaller than a few tiles; 0 falls back to 1 when the image is smaller than one tile; "
         "always 1 with a stride or padding)"},
        {"pack_input", {0, 1}, "1 = copy each position tile's input into a dense buffer (tile by input "
         "channels) before its channel tiles run over it"},
        {"direct_output", {0, 1}, "1 = store register tiles straight into the output rows; 0 = into a block "
         "of sums per task, copied to the output rows after (needs an image of at least one tile, not "
         "padded to whole tiles)"},
        {"tile_order", {0, 1}, "0 = channel tiles outer (the task's input block stays in L2 for all of them), "
         "1 = position tiles outer (one tile's input stays in L1 for every channel tile)"},
        {"c_in_chunk", c_in_chunk_choices(s),
         "with tile_order=1 and direct_output=1: input channels every channel tile sums before the "
         "next chunk runs (the position tile's sums kept in memory, so that a chunk of its input stays "
         "in L1 for all channel tiles); 0 = all of them at once, the sums stored from registers"},
    };
  }

  // The default for 1x1 layers on images of 4 tiles or more (zero-copy input), and
  // on smaller ones whose zero-padded input fits in 128 KiB. Against the previous
  // defaults (bench/schedule_ab, 3 rounds, 2-core AVX-512 Xeon, 2026-11-21; the
  // previous default named): 56x56 64 -> 64 1.21x (cpu_direct), 256 -> 64 1.09x
  // (cpu_direct), 64 -> 256 1.23x (cpu_channel_blocked); 112x112 16 -> 96 1.21x
  // (cpu_channel_blocked), 32 -> 16 1.19x (cpu_direct); 7x7 512 -> 2048 1.11x and
  // 0.97x in two runs, a tie (cpu_channel_blocked). It lost on 7x7 960 -> 320
  // (0.84x): every register tile streams the whole 240 KiB input from L2, where
  // cpu_channel_blocked streams packed weights. With more input channels than fit a
  // tile's input in L1 the reduction is not split (no K blocking; see the issue 4 note).
  //
  // The default with a stride or padding (but for the small images below): the
  // staged copy holds only the positions read. On the ResNet-50 stride-2 projections
  // against cpu_channel_blocked (bench/schedule_ab, 3 rounds, 2 threads, 2026-11-21):
  // 56x56 256 -> 512 1.55x, 28x28 512 -> 1024 1.84x.
  //
  // cpu_channel_blocked's tiles of two channel vectors by 7 columns beat these
  // defaults on 7x7 images with cold caches (bench/schedule_ab, rotating buffers, 2
  // threads, 2026-11-21: 512 -> 2048 1.29x and 1.39x, 160 -> 960 1.18x, 64 -> 256
  // 1.73x), but lost on 512 -> 2048 in convjit bench (warm: 0.58x and 0.52x
  // oneDNN's ratio against 0.71x, 1 and 2 threads), so this rule stands.
  //
  // With weights in oihw16o (read without repacking) cpu_channel_blocked's two-vector
  // tiles take the small images (bench/schedule_ab --warm, 5 rounds, 2 threads,
  // 2026-11-22): 7x7 512 -> 2048 1.59x, 160 -> 960 1.18x, 64 -> 256 2.20x; 14x14
  // 96 -> 576 1.36x. On 56x56 and 28x28 the two were within 10% (64 -> 256 1.04x,
  // 128 -> 512 1.07x, 64 -> 64 0.74x), so those stay here. The same holds with a
  // stride, cpu_channel_blocked staging the positions read (bench/schedule_ab --warm,
  // 7 rounds, 2026-11-22, against this template's defaults): ResNet-50 res4a_branch1
  // (28x28 512 -> 1024, stride 2) 1.08x on 1 thread, 1.20x on 2 (before that staging);
  // res5a_branch1 (14x14 1024 -> 2048) 1.31x and 1.37x. With that staging, res4a_branch1
  // took 1.39x and 1.47x (9 rounds).
  //
  // On AVX2 (16 registers) cpu_channel_blocked's one-vector tiles of 14 accumulators
  // take oihw16o weights on images of fewer than 256 positions, as the two-vector
  // tiles do on AVX-512 (which counts the same positions as small). Against this
  // template's 12-accumulator tiles (bench/schedule_ab --warm, 3 rounds, 1 thread,
  // 2-core AMD EPYC Zen 3, 2026-12-02; ratios to oneDNN): 7x7 512 -> 2048 0.64x
  // against 0.41x, res4a_branch1 (14x14 512 -> 1024, stride 2) 0.81x against 0.66x.
  bool preferred_by_default(const ConvAlgorithm& a, const Halide::Target& target) const override {
    const ConvSpec& s = a.spec;
    if (!has_32_vector_registers(target) && s.weight_layout == WeightLayout::kOIHW16o &&
        output_w(s) * output_h(s) < 256) {
      return false;
    }
    if (!pads_by_default(s, target)) return true;
    if (s.weight_layout == WeightLayout::kOIHW16o &&
        channel_blocked_takes_two_vectors(s, target.natural_vector_size<float>())) {
      return false;
    }
    if (!flat_input_is_input_plane(s)) return true;
    const int64_t tile = default_tile(target);
    const int64_t padded_bytes = (output_w(s) * output_h(s) + tile - 1) / tile * tile * (s.c_in / s.groups) * 4;
    return padded_bytes <= (int64_t{128} << 10);
  }

  ScheduleParams defaults(const ConvAlgorithm& a, const Halide::Target& target) const override {
    const ConvSpec& s = a.spec;
    const int lanes = target.natural_vector_size<float>();
    const int64_t w = output_w(s), h = output_h(s);
    const bool small_image = pads_by_default(s, target);
    const int64_t positions = w * h;
    const int stage = (small_image && positions < default_tile(target)) || !flat_input_is_input_plane(s) ? 1 : 0;
    // Register tiles of 24 accumulators on AVX-512 (4 or 3 vectors of positions), of
    // 12 on AVX2 (3 or 2): see c_tile below.
    const bool wide_file = has_32_vector_registers(target);
    const int first_vectors = wide_file ? kDefaultVectors : 3;
    const int second_vectors = wide_file ? 3 : 2;
    int x_vectors = first_vectors, rows = static_cast<int>(h);
    if (!small_image) {
      // Rows per task: the least work redone by overlapping tiles and row blocks,
      // among blocks whose input fits in 128 KiB so that it stays in cache while
      // every channel tile of the task runs over it. Measured on the 256 -> 64 layer
      // on 56x56 (bench/schedule_ab, 2026-11-21): 2 rows (112 KiB) 1.49 ms, 8 rows
      // 1.82. Ties go to 4 vectors, then to more rows.
      const int64_t row_bytes = w * (s.c_in / s.groups) * 4;
      double best = 1e9;
      for (int v : {first_vectors, second_vectors}) {
        const int64_t tile = int64_t{lanes} * v;
        for (int64_t r = 1; r <= h; ++r) {
          if (r * w < tile) continue;
          if (r * row_bytes > (int64_t{128} << 10) && r * w >= 2 * tile) break;
          const double redone = static_cast<double>((r * w + tile - 1) / tile * tile) / (r * w) *
                                static_cast<double>((h + r - 1) / r * r) / h;
          if (redone < best - 0.005 || (redone < best + 0.005 && v == x_vectors)) {
            best = redone;
            x_vectors = v;
            rows = static_cast<int>(r);
          }
        }
      }
    }
    // Channel blocks: all channels unless the row blocks are too few to share the
    // cores, since each channel block reads the input block again. On the 64 -> 64
    // layer on 56x56 (7 blocks of 8 rows) all 64 channels took 0.29 ms, blocks of 32
    // 0.39 (bench/schedule_ab, 2026-11-21).
    const int64_t row_tasks = (h + rows - 1) / rows * s.n;
    int64_t parts = 1;
    while (row_tasks < 4 && row_tasks * parts < kMinParallelTasks && (s.c_out + 2 * parts - 1) / (2 * parts) >= 16) {
      parts *= 2;
    }
    int64_t c_block = (s.c_out + parts - 1) / parts;
    // Register tiles stored straight into the output rows wherever the image holds
    // one default tile. Against the block of sums copied after (bench/schedule_ab
    // --warm, 3 rounds, 2 threads, 2-core AVX-512 Xeon, 2026-11-22, with the tile
    // order below): 56x56 64 -> 64 1.35x, 64 -> 256 1.19x, 256 -> 64 1.41x; 112x112
    // 32 -> 16 1.52x, 16 -> 96 1.52x; 28x28 128 -> 512 1.26x; 14x14 96 -> 576 1.24x
    // and 256 -> 1024 1.06x (input read in place, not padded to whole tiles); the
    // stride-2 projections (staged input, 256 or 512 input channels) within the
    // noise, 1.01-1.07x. On 7x7 (49 positions, one tile of 3 vectors) the padded
    // block stays (960 -> 320: 0.97x).
    const bool direct = positions >= default_tile(target);
    // Position tiles outer unless the input channels are few: a position tile then
    // stores into all c_block output planes (a page each) after only a few
    // multiply-adds per store, where channel tiles outer stream a few planes at a time.
    // Measured as above, position tiles outer (then with the input panel, pack_input=1)
    // against channel tiles outer: 256 -> 64 1.41x against 1.13x, 64 -> 64 1.35x against
    // 1.23x, 128 -> 512 1.26x against 0.96x, 32 -> 16 1.52x against 1.34x, 64 -> 256
    // 1.17x against 1.19x; 16 -> 96 0.94x against 1.52x.
    //
    // On AVX2 the tiles are narrower (one or two cache lines of each input plane, 16
    // or 24 positions), and what pays differs (bench/schedule_ab --warm, 3 rounds, 1
    // thread, 2-core AMD EPYC Zen 3, 32 KiB L1d, 2026-12-02; ratios to oneDNN):
    // position tiles outer only with 128 input channels or more, or 64 that do not
    // widen, and then with the input panel, whose dense copy keeps the tile's lines
    // from crowding a few L1 sets (the planes lie 4 sets apart on 56x56): 256 -> 64
    // 0.82x against 0.47x in place; 256 -> 512 stride 2 0.85x against 0.76-0.78x;
    // 64 -> 64 0.81x and 0.92x (two sweeps) against 0.72-0.75x and 0.86x with channel
    // tiles outer. Channel tiles outer elsewhere, where a position tile outer would
    // stream the weights of many channel tiles: 64 -> 256 0.77x against 0.51x with the
    // panel, 0.44x without; 32 -> 16 0.84x against 0.63-0.82x (4 x 3 tiles).
    const int64_t group_in = s.c_in / s.groups, group_out = s.c_out / s.groups;
    const bool position_tiles_outer =
        direct && (wide_file ? group_in >= 32 : group_in >= 128 || (group_in >= 64 && group_out <= group_in));
    const bool pack_input = position_tiles_outer && !wide_file;
    // The planned tasks keep the whole layer's channel tile (plan_position_tasks).
    const bool planned = wide_file && direct && position_tiles_outer;
    if (planned) {
      plan_position_tasks(s, lanes * x_vectors, default_c_tile(wide_file, x_vectors, s.c_out), rows, c_block);
    }
    // On AVX-512 the position tile's input is read in place by every channel tile, not
    // copied into a dense panel first (pack_input=0). The panel came in together with
    // position tiles outer (5e83204) and was never measured apart from them on the
    // AVX-512 Xeon, where the copy took a fifth of res2b_branch2a's time waiting on
    // its 256 input planes (bench/README.md). Without it, on a 2-core AMD EPYC (Zen 4,
    // 32 KiB L1d; bench/schedule_ab --warm, 7 rounds, 1 thread, 2026-12-02):
    // MobileNetV2 conv2_1/linear (32 -> 16) 1.25x, ResNet-50 res2a_branch2a (64 -> 64)
    // 1.07x, res2a_branch2c (64 -> 256) 1.06x, res2b_branch2a (256 -> 64) 1.11x. The
    // panel stays in the tuner's space.
    const int c_tile = default_c_tile(wide_file, x_vectors, planned ? s.c_out : c_block);
    return {{"lanes", lanes},
            {"x_vectors", x_vectors},
            {"c_tile", static_cast<int>(std::min<int64_t>(c_tile, s.c_out))},
            {"rows", rows},
            {"c_block", static_cast<int>(c_block)},
            {"stage", stage},
            {"pack_input", pack_input ? 1 : 0},
            {"direct_output", direct ? 1 : 0},
            {"tile_order", position_tiles_outer ? 1 : 0},
            {"c_in_chunk", 0}};
  }

  void apply(ConvAlgorithm& a, const Halide::Target&, const ScheduleParams& params) const override {
    const ConvSpec& s = a.spec;
    const int w = static_cast<int>(output_w(s)), h = static_cast<int>(output_h(s));
    const int positions = w * h;
    const int lanes = params.get("lanes");
    int x_vectors = params.get("x_vectors");
    bool stage = params.get("stage") == 1 || !flat_input_is_input_plane(s);
    if (!stage && positions < lanes * x_vectors) {
      x_vectors = std::max(1, positions / lanes);
      stage = positions < lanes;
    }
    if (stage) a = lower_as_flat(s, /*zero_beyond_image=*/true);
    const int tile = lanes * x_vectors;
    const int c_tile = static_cast<int>(std::min<int64_t>(params.get("c_tile"), s.c_out));
    const int c_block = static_cast<int>(std::clamp<int64_t>(params.get("c_block"), c_tile, s.c_out));
    // A block of rows holds at least one tile, so that its last tile can shift
    // inwards. Only a staged whole image is rounded up to whole tiles instead (its copy
    // is zero-padded there): rounding up a block of fewer rows would recompute the
    // tiles it shares with its neighbours, up to two per block.
    int rows = task_rows(params.get("rows"), w, h, tile);
    const bool direct = params.get("direct_output") == 1 && positions >= tile;
    const bool round_up_to_tiles = stage && rows == h && !direct;
    const bool position_tiles_outer = params.get("tile_order") == 1;
    const bool pack_input = params.get("pack_input") == 1;
    if (stage) {
      // The copy of the positions read (zero-padded to whole tiles), once for all tasks;
      // with a stride or padding it gathers them.
      a.flat_input.compute_root().reorder(a.p, a.c, a.n).vectorize(a.p, lanes).parallel(a.c);
      if (a.flat_window.defined()) {
        // The copy proper: rows of the window along x, in vectors where rows are wide
        // enough. Each position is stored once (x + w * y is one-to-one on the window),
        // which Halide cannot prove.
        const Halide::RVar &wx = a.flat_window.x, &wy = a.flat_window.y;
        Halide::Stage copy = a.flat_input.update();
        copy.allow_race_conditions().reorder(wx, wy, a.c, a.n).parallel(a.c);
        if (w >= 4) copy.vectorize(wx, w >= lanes ? lanes : floor_pow2(w));
      }
    }
    if (direct) {
      const int chunk = position_tiles_outer ? params.get("c_in_chunk") : 0;
      schedule_direct_output(a, tile, c_tile, c_block, (rows * w + tile - 1) / tile, position_tiles_outer,
                             pack_input, chunk, lanes);
      return;
    }

    Var &x = a.x, &y = a.y, &c = a.c, &n = a.n, &p = a.p;
    Func& out = a.output;
    Var xo("xo"), xi("xi"), yo("yo"), yi("yi"), cb("cb"), cbi("cbi"), task("task");
    Var po("po"), pi("pi"), cc("cc"), cci("cci");

    // The output: a copy of the block, along x in vectors where the rows are wide enough.
    out.split(y, yo, yi, rows, TailStrategy::ShiftInwards).split(c, cb, cbi, c_block, TailStrategy::ShiftInwards);
    const int copy_lanes = w >= lanes ? lanes : floor_pow2(w);
    if (copy_lanes >= 4) {
      out.split(x, xo, xi, copy_lanes, TailStrategy::ShiftInwards).vectorize(xi);
      out.reorder(xi, xo, yi, cbi, yo, cb, n);
    } else {
      out.reorder(x, yi, cbi, yo, cb, n);
    }
    out.fuse(yo, cb, task).fuse(task, n, task).parallel(task);

    // The task's block of sums, by register tiles: channel tiles outer, so the input
    // block is read from cache by all of them.
    Func block = a.flat_accumulator.in();
    block.compute_at(out, task);
    if (round_up_to_tiles) block.align_bounds(p, tile);
    block.split(p, po, pi, tile, TailStrategy::ShiftInwards)
        .split(c, cc, cci, c_tile, TailStrategy::ShiftInwards)
        .reorder(pi, cci, position_tiles_outer ? cc : po, position_tiles_outer ? po : cc, n)
        .vectorize(pi, lanes)
        .unroll(pi)
        .unroll(cci);
    a.flat_accumulator.compute_at(block, position_tiles_outer ? cc : po).vectorize(p, lanes).unroll(p).unroll(c);
    a.flat_accumulator.update().reorder(p, c, a.r.x, n).vectorize(p, lanes).unroll(p).unroll(c);

    if (pack_input) a.flat_input.in(a.flat_accumulator).compute_at(block, po).vectorize(p, lanes).unroll(p);
    // Only now: a specialization copies the schedule as it is when made. Both
    // branches run the schedule; the condition lets each keep one side of
    // flat_input's select (dense loads, or per-element loads of strided rows).
    if (a.input_rows_contiguous.defined()) out.specialize(a.input_rows_contiguous);
  }

 private:
  // Register tiles stored straight into the output rows, without a block of sums:
  // the output is redefined as an update over a reduction domain that enumerates
  // (from the inside) a tile's positions, its channels, then channel tiles and
  // position tiles in `position_tiles_outer` order, then tasks of position tiles,
  // channel blocks and images. The last tile of each kind shifts inwards (min) and
  // is recomputed, which is harmless: the update only assigns. Positions are flat
  // (x + w * y); with rows of stride w, (q % w) + (q / w) * w simplifies back to q,
  // so the stores are dense vectors across row ends, which Halide's bounds of a
  // fused (x, y) loop could not give (a tile spanning two rows computed both).
  static void schedule_direct_output(ConvAlgorithm& a, int tile, int c_tile, int c_block, int wanted_tiles_per_task,
                                     bool position_tiles_outer, bool pack_input, int chunk, int lanes) {
    const ConvSpec& s = a.spec;
    const int w = static_cast<int>(output_w(s)), positions = w * static_cast<int>(output_h(s));
    const int c_out = static_cast<int>(s.c_out);
    const int tiles = (positions + tile - 1) / tile;
    const int tiles_per_task = balanced_share(tiles, wanted_tiles_per_task);
    const int position_tasks = (tiles + tiles_per_task - 1) / tiles_per_task;
    const int c_tiles = (c_out + c_tile - 1) / c_tile;
    const int c_tiles_per_block = balanced_share(c_tiles, (c_block + c_tile - 1) / c_tile);
    const int c_blocks = (c_tiles + c_tiles_per_block - 1) / c_tiles_per_block;

    Halide::Region ranges = {{0, tile}, {0, c_tile}};
    if (position_tiles_outer) {
      ranges.insert(ranges.end(), {{0, c_tiles_per_block}, {0, tiles_per_task}});
    } else {
      ranges.insert(ranges.end(), {{0, tiles_per_task}, {0, c_tiles_per_block}});
    }
    ranges.insert(ranges.end(), {{0, position_tasks}, {0, c_blocks}, {0, static_cast<int>(s.n)}});
    Halide::RDom r(ranges, "tiles");
    Halide::RVar position = r[0], channel = r[1], c_tile_index = r[position_tiles_outer ? 2 : 3],
                 position_tile = r[position_tiles_outer ? 3 : 2], position_task = r[4], c_block_index = r[5],
                 image = r[6];
    Halide::Expr q = Halide::min((position_task * tiles_per_task + position_tile) * tile, positions - tile) + position;
    Halide::Expr o = Halide::min((c_block_index * c_tiles_per_block + c_tile_index) * c_tile, c_out - c_tile) + channel;

    // With chunks (position tiles outer only) the stores read the position tile's sums
    // by channel tile, which every chunk of input channels runs over in turn.
    Var tile_index("tile_index"), tile_channel("tile_channel"), chunk_var("chunk");
    Func chunk_sums("chunk_sums"), tile_sums("tile_sums");
    Halide::RDom chunk_channel, chunk_index;
    if (chunk > 0) {
      const int cig = static_cast<int>(s.c_in / s.groups), cog = static_cast<int>(s.c_out / s.groups);
      chunk_channel = Halide::RDom(0, chunk, "chunk_channel");
      chunk_index = Halide::RDom(0, cig / chunk, "chunk_index");
      // The channel of (tile_index, tile_channel), shifted inwards as o is.
      const Halide::Expr channel_of_tile = Halide::min(tile_index * c_tile, c_out - c_tile) + tile_channel;
      const Halide::Expr k = chunk_var * chunk + chunk_channel;
      chunk_sums(a.p, tile_channel, tile_index, chunk_var, a.n) = 0.0f;
      chunk_sums(a.p, tile_channel, tile_index, chunk_var, a.n) +=
          Halide::cast<float>(a.flat_input(a.p, (channel_of_tile / cog) * cig + k, a.n)) *
          Halide::cast<float>(weight_at(a.weights, s, channel_of_tile, k, 0, 0));
      tile_sums(a.p, tile_channel, tile_index, a.n) =
          s.has_bias ? Halide::cast<float>(a.bias(channel_of_tile)) : Halide::Expr(0.0f);
      tile_sums(a.p, tile_channel, tile_index, a.n) += chunk_sums(a.p, tile_channel, tile_index, chunk_index, a.n);
    }
    const Halide::Expr sum =
        chunk > 0 ? tile_sums(q, channel, c_block_index * c_tiles_per_block + c_tile_index, image)
                  : a.flat_accumulator(q, o, image);

    const Halide::Type type = a.input.type();
    Func out("output");
    out(a.x, a.y, a.c, a.n) = Halide::undef(type);
    out(q % w, q / w, o, image) = Halide::cast(type, sum);
    a.output = out;
    pin_output_shape(a);

    Halide::RVar task("task");
    Halide::Stage stores = out.update();
    // The reduction's dimensions are independent (each output element is assigned
    // once, or twice with the same value where a last tile shifts inwards).
    stores.allow_race_conditions()
        .vectorize(position, lanes)
        .unroll(position)
        .unroll(channel)
        .fuse(position_task, c_block_index, task)
        .fuse(task, image, task)
        .parallel(task);
    if (chunk > 0) {
      // The position tile's sums (tile positions by the block's channel tiles) in
      // memory, a chunk at a time over every channel tile; each chunk's sums in
      // registers, added to them.
      tile_sums.compute_at(out, position_tile).vectorize(a.p, lanes);
      tile_sums.update()
          .reorder(a.p, tile_channel, tile_index, chunk_index.x, a.n)
          .vectorize(a.p, lanes)
          .unroll(a.p)
          .unroll(tile_channel);
      chunk_sums.compute_at(tile_sums, tile_index).vectorize(a.p, lanes).unroll(a.p).unroll(tile_channel);
      chunk_sums.update()
          .reorder(a.p, tile_channel, chunk_channel.x, chunk_var, tile_index, a.n)
          .vectorize(a.p, lanes)
          .unroll(a.p)
          .unroll(tile_channel);
      if (pack_input) {
        // The chunk's input, copied into a dense panel for all channel tiles.
        a.flat_input.in(chunk_sums).compute_at(tile_sums, chunk_index.x).vectorize(a.p, lanes).unroll(a.p);
      }
    } else {
      const Halide::RVar& tile_level = position_tiles_outer ? c_tile_index : position_tile;
      a.flat_accumulator.compute_at(out, tile_level).vectorize(a.p, lanes).unroll(a.p).unroll(a.c);
      a.flat_accumulator.update().reorder(a.p, a.c, a.r.x, a.n).vectorize(a.p, lanes).unroll(a.p).unroll(a.c);
      if (pack_input) {
        a.flat_input.in(a.flat_accumulator).compute_at(out, position_tile).vectorize(a.p, lanes).unroll(a.p);
      }
    }
    // Only now: a specialization copies the schedule as it is when made. Dense rows
    // of output and input get vector stores and loads; other strides run the same
    // schedule with per-element stores and loads.
    Halide::Expr dense = out.output_buffer().dim(1).stride() == w;
    if (a.input_rows_contiguous.defined()) dense = dense && a.input_rows_contiguous;
    stores.specialize(dense);
  }

  // The output rows of a task: the rows asked for, at most the height, and at least
  // enough to hold one register tile of `tile` positions.
  static int task_rows(int wanted, int w, int h, int tile) {
    return std::max(std::min(wanted, h), std::min(h, (tile + w - 1) / w));
  }

  // Tasks of equal size: the count a wanted size gives, then the total shared out.
  static int balanced_share(int total, int wanted_per_group) {
    const int groups = (total + std::max(1, wanted_per_group) - 1) / std::max(1, wanted_per_group);
    return (total + groups - 1) / groups;
  }

  // The register tile's channels for x_vectors vectors of positions. 24 accumulators
  // (6 x 4 vectors, or 8 x 3) leave 8 registers for the input vectors and a broadcast
  // weight; 8 x 4 spilled. AVX2's 16 registers take 12 (6 x 2, or 4 x 3): against the
  // AVX-512 tiles on AVX2 (6 x 4: 24 accumulators spilled) on ResNet-50 res2a_branch2a
  // (56x56 64 -> 64; bench/schedule_ab --warm, 3 rounds, 1 thread, 2-core AMD EPYC
  // Zen 3, 2026-12-02): 6 x 2 0.39 ms, 4 x 3 0.40, 6 x 4 0.83-0.86, 4 x 4 0.92; oneDNN
  // 0.31. Tiles of 6 or 8 accumulators were 0.48-0.67. 4 x 3 first (ties): 32 -> 16
  // on 112x112 0.84x oneDNN against 0.75x for 6 x 2, 16 -> 96 0.83x against
  // 0.74-0.80x (channel tiles outer).
  //
  // Where tiles of 6 channels redo more than a tenth of a block's (the last tile
  // shifts inwards) and 4 divide it, tiles of 4 (16 accumulators). Against 6
  // (bench/schedule_ab --warm, 1 thread, 2-core AVX-512 Xeon, 2026-11-22):
  // MobileNetV2 conv2_1/linear (112x112 32 -> 16, 18 channels computed) 1.06x and
  // 1.08x (11 and 15 rounds; 2 threads 1.10x), 56x56 64 -> 32 1.05x (15 rounds).
  static int default_c_tile(bool wide_file, int x_vectors, int64_t c_block) {
    int c_tile = wide_file ? (x_vectors == kDefaultVectors ? 6 : 8) : (x_vectors == 2 ? 6 : 4);
    if (c_tile == 6 && tiles_redo_over_a_tenth(c_block, 6) && c_block % 4 == 0) c_tile = 4;
    return c_tile;
  }

  // Tasks for position tiles outer with 32 vector registers, stored straight into
  // the output: each position tile's input is used by all the block's channel tiles
  // at once, so the rows of a task need not stay in cache, and what counts is the
  // work the tasks' tile slots redo (a task of t tiles over an image of T gives
  // ceil(T / t) * t slots, the last ones shifted inwards) and how evenly the tasks
  // share two cores. Picks rows (as apply() turns them into tiles per task) and
  // c_block (c_out halved) for the least of (slots on one core + the busier of two
  // cores' slots), in units of the work itself, 2% more per halving of c_block (each
  // block reads the input again); ties to fewer rows. The register tile stays.
  // Against the row-block rule before it (bench/schedule_ab --warm, 9 rounds, 2-core
  // AMD EPYC Zen 4, 2026-12-02): ResNet-50 res3a_branch1 (784 positions, 12.25
  // tiles of 64; the row blocks' 7 tasks of 2 tiles redid 1.75 of them) 1.10x on 1
  // thread, 1.18x on 2 (c_block 256 over the whole image).
  static void plan_position_tasks(const ConvSpec& s, int tile, int c_tile, int& rows, int64_t& c_block) {
    const int w = static_cast<int>(output_w(s)), h = static_cast<int>(output_h(s));
    const int64_t positions = int64_t{w} * h;
    if (positions < tile) return;
    const int c_out = static_cast<int>(s.c_out);
    const int tiles = static_cast<int>((positions + tile - 1) / tile);
    const int c_tiles = (c_out + c_tile - 1) / c_tile;
    const double work = static_cast<double>(positions) * c_out * s.n;
    double best = 1e30;
    int last_tiles_per_task = -1;
    for (int r = 1; r <= h; ++r) {
      // As apply() and schedule_direct_output() turn rows into tiles per task.
      const int tiles_per_task = balanced_share(tiles, (task_rows(r, w, h, tile) * w + tile - 1) / tile);
      if (tiles_per_task == last_tiles_per_task) continue;
      last_tiles_per_task = tiles_per_task;
      const int64_t position_tasks = (tiles + tiles_per_task - 1) / tiles_per_task;
      for (int64_t parts = 1; parts == 1 || (c_out + parts - 1) / parts >= 2 * c_tile; parts *= 2) {
        const int64_t block = (c_out + parts - 1) / parts;
        const int c_tiles_per_block = balanced_share(c_tiles, static_cast<int>((block + c_tile - 1) / c_tile));
        const int64_t tasks = position_tasks * ((c_tiles + c_tiles_per_block - 1) / c_tiles_per_block) * s.n;
        const double task_work = static_cast<double>(tiles_per_task) * tile * c_tiles_per_block * c_tile;
        const double cost = (tasks * task_work / work + (tasks + 1) / 2 * task_work / (work / 2)) *
                            (1.0 + 0.02 * std::log2(static_cast<double>(parts)));
        if (cost < best - 1e-9) {
          best = cost;
          rows = r;
          c_block = block;
        }
      }
    }
  }

  // The default register tile: kDefaultVectors vectors of positions.
  static constexpr int kDefaultVectors = 4;
  static int64_t default_tile(const Halide::Target& target) {
    return int64_t{kDefaultVectors} * target.natural_vector_size<float>();
  }
  // Images of fewer than 4 default tiles: the overlap of the last tile would redo a
  // large share, so by default the input is padded to whole tiles instead (the whole
  // image is then one block of rows).
  static bool pads_by_default(const ConvSpec& s, const Halide::Target& target) {
    return output_w(s) * output_h(s) < 4 * default_tile(target);
  }
};

}  // namespace

const ScheduleTemplate& cpu_pointwise_template() {
  static const CpuPointwiseTemplate instance;
  return instance;
}

}  // namespace convjit
